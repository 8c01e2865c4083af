"""KerasFileEditor: inspect, edit and resave the weights of a `.keras` or `.weights.h5` file.

The file's weights are read (with the same checks as a load: in-file datasets of numbers only)
into nested dicts that follow the file's groups: {"layers": {"dense": {"0": kernel, "1": bias}}}
(a group's own `vars` datasets sit in its dict beside its sub-groups). Edits change the dicts;
`save` writes them back in Keras 3's layout.
"""
import io
import json
import os
import zipfile

from engine.saving import weights as weights_io

# A weights file the editor reads may belong to no model, so the arrays get the fixed cap of
# layers' own arrays.
_MAX_ELEMENTS = weights_io.OWN_STORE_MAX_ELEMENTS


class KerasFileEditor:
    """Inspect and edit the weights in a Keras 3 `.keras` or `.weights.h5` file (to adapt an old
    file to a changed model), then save them as a `.weights.h5` file.

        editor = KerasFileEditor("old.weights.h5")
        editor.summary()
        editor.rename_object("dense_3", "dense_2")
        editor.delete_object("layers/dropout")
        editor.add_object("layers/dense_4", {"0": kernel, "1": bias})
        editor.save("edited.weights.h5")

    Args:
        filepath: the `.keras` or `.weights.h5` file.
    """

    def __init__(self, filepath):
        filepath = os.fspath(filepath)
        self.filepath = filepath
        self.config = None
        self.metadata = None
        if filepath.endswith(".keras"):
            from engine.saving.archive import CONFIG_MAX_BYTES, read_member
            try:
                archive = zipfile.ZipFile(filepath)
            except (zipfile.BadZipFile, OSError) as e:
                raise ValueError(f"KerasFileEditor: {filepath} is not a .keras file ({e})") from None
            with archive as z:
                self.config = json.loads(read_member(z, "config.json", filepath, CONFIG_MAX_BYTES))
                self.metadata = json.loads(read_member(z, "metadata.json", filepath, CONFIG_MAX_BYTES))
                source = io.BytesIO(read_member(z, "model.weights.h5", filepath, 8 * _MAX_ELEMENTS))
            self.weights_dict = weights_io.read_weights_tree(source, f"{filepath} (model.weights.h5)", _MAX_ELEMENTS)
        elif filepath.endswith(".weights.h5"):
            self.weights_dict = weights_io.read_weights_tree(filepath, filepath, _MAX_ELEMENTS)
        else:
            raise ValueError(f"KerasFileEditor: expected a .keras or .weights.h5 file, got filepath={filepath!r}")

    # -- looking ------------------------------------------------------------------------------------
    def summary(self):
        """Print the file's weights, object by object, with their shapes and dtypes."""
        print(f"Keras weights file ({self.filepath}):")
        if self.metadata:
            print(f"  saved with Keras {self.metadata.get('keras_version')} on {self.metadata.get('date_saved')}")
        self._print(self.weights_dict, "  ")

    def weights_summary(self):
        """The same as `summary`."""
        self.summary()

    def _print(self, tree, indent):
        for key, value in tree.items():
            if isinstance(value, dict):
                print(f"{indent}{key}/")
                self._print(value, indent + "  ")
            else:
                print(f"{indent}{key}: shape={tuple(value.shape)}, dtype={value.dtype}")

    def compare(self, reference_model):
        """Compare the file with a model: every weight the model would save must be in the file at
        the same path with the same shape, and the file may hold nothing more.

        Args:
            reference_model: the model to compare with.

        Returns:
            {"status": "success" or "error", "error_count": n, "match_count": n}; each mismatch
            is printed.
        """
        expected = weights_io.weights_tree_spec(reference_model)
        errors, matches = [], 0
        for path, shape in expected.items():
            found = self._flat().get(path)
            if found is None:
                errors.append(f"Weight {path} is in the reference model but missing from the file")
            elif tuple(found.shape) != shape:
                errors.append(f"Weight {path} has shape {tuple(found.shape)} in the file and {shape} in the model")
            else:
                matches += 1
        errors += [f"Weight {path} is in the file but not in the reference model"
                   for path in self._flat() if path not in expected]
        for message in errors:
            print(message)
        status = "error" if errors else "success"
        print(f"Comparison: {status} ({matches} matching weights, {len(errors)} errors)")
        return {"status": status, "error_count": len(errors), "match_count": matches}

    def _flat(self, tree=None, prefix=""):
        tree = self.weights_dict if tree is None else tree
        out = {}
        for key, value in tree.items():
            path = f"{prefix}/{key}" if prefix else key
            if isinstance(value, dict):
                out.update(self._flat(value, path))
            else:
                out[path] = value
        return out

    # -- editing ------------------------------------------------------------------------------------
    def _parent_of(self, object_name):
        """(the dict holding the object, its key) for a path ("layers/dense") or a name that occurs
        exactly once anywhere in the file ("dense")."""
        if "/" in object_name:
            *parents, leaf = object_name.split("/")
            tree = self.weights_dict
            for part in parents:
                if not isinstance(tree.get(part), dict):
                    raise ValueError(f"KerasFileEditor: path {object_name!r} is not in the file")
                tree = tree[part]
            if leaf not in tree:
                raise ValueError(f"KerasFileEditor: path {object_name!r} is not in the file")
            return tree, leaf
        found = []

        def visit(tree):
            for key, value in tree.items():
                if key == object_name:
                    found.append(tree)
                if isinstance(value, dict):
                    visit(value)
        visit(self.weights_dict)
        if len(found) != 1:
            where = "does not occur" if not found else f"occurs {len(found)} times"
            raise ValueError(f"KerasFileEditor: the name {object_name!r} {where} in the file; pass its full path "
                             "(see summary())")
        return found[0], object_name

    def rename_object(self, object_name, new_name):
        """Rename an object (a layer's group).

        Args:
            object_name: its name ("dense_2") or path ("layers/dense_2").
            new_name: the new name (a name, not a path).
        """
        if "/" in new_name:
            raise ValueError(f"KerasFileEditor.rename_object: new_name must be a name, not a path; got {new_name!r}")
        tree, key = self._parent_of(object_name)
        tree[new_name] = tree.pop(key)

    def delete_object(self, object_name):
        """Remove an object (a layer's group and everything in it).

        Args:
            object_name: its name or path.
        """
        tree, key = self._parent_of(object_name)
        del tree[key]

    def add_object(self, object_path, weights):
        """Add an object with its weights.

        Args:
            object_path: its full path ("layers/dense_2"); the groups above it must exist.
            weights: {weight name: array}, e.g. {"0": kernel, "1": bias}.
        """
        weights = _checked_weights("add_object", weights)
        *parents, leaf = object_path.split("/")
        tree = self.weights_dict
        for part in parents:
            if not isinstance(tree.get(part), dict):
                raise ValueError(f"KerasFileEditor.add_object: {'/'.join(parents)!r} is not in the file")
            tree = tree[part]
        tree[leaf] = weights

    def delete_weight(self, object_name, weight_name):
        """Remove one weight of an object.

        Args:
            object_name: the object's name or path.
            weight_name: the weight's name ("0", "1", ...).
        """
        tree, key = self._parent_of(object_name)
        if weight_name not in tree[key] or isinstance(tree[key][weight_name], dict):
            raise ValueError(f"KerasFileEditor.delete_weight: {object_name!r} has no weight {weight_name!r}; it has "
                             f"{[k for k, v in tree[key].items() if not isinstance(v, dict)]}")
        del tree[key][weight_name]

    def add_weights(self, object_name, weights):
        """Add weights to an existing object.

        Args:
            object_name: the object's name or path.
            weights: {weight name: array}.
        """
        weights = _checked_weights("add_weights", weights)
        tree, key = self._parent_of(object_name)
        tree[key].update(weights)

    # -- writing ------------------------------------------------------------------------------------
    def save(self, filepath):
        """Write the (edited) weights to a `.weights.h5` file in Keras 3's layout.

        Args:
            filepath: the file; it must end in `.weights.h5`.
        """
        filepath = os.fspath(filepath)
        if not filepath.endswith(".weights.h5"):
            raise ValueError(f"KerasFileEditor.save: expected a .weights.h5 file name, got {filepath!r}")
        from engine.saving.archive import atomic_write
        atomic_write(filepath, lambda tmp: weights_io.write_weights_tree(self.weights_dict, tmp))

    def resave_weights(self, filepath):
        """The same as `save`.

        Args:
            filepath: the `.weights.h5` file to write.
        """
        self.save(filepath)


def _checked_weights(method, weights):
    import numpy as np
    if not isinstance(weights, dict):
        raise ValueError(f"KerasFileEditor.{method}: weights must be a dict of weight names to arrays "
                         f"(e.g. {{'0': kernel, '1': bias}}), got {type(weights).__name__}")
    return {str(k): np.asarray(v) for k, v in weights.items()}
