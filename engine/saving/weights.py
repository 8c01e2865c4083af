"""Weights in Keras 3's `.weights.h5` layout, found by walking the model as Keras 3 does.

    vars                        the model's own variables (attribute "name" on each vars group)
    layers/<name>/vars/<i>      one group per layer of a functional or Sequential model, named by
                                class ("dense", "dense_1", ...) in model.layers order
    <path>/<attribute>/vars     what a layer holds: its sublayers under their attribute names
                                (public ones first, then private ones, as Keras's walk sorts
                                them), lists of them as <attribute>/<class name>[_n]
    optimizer/vars/<i>          iterations, learning rate, then the slots

Every layer stores its own state through `save_own_variables(store)` and reads it back through
`load_own_variables(store)` (Keras 3's hooks; users override them), so saving needs to know no
layer family. A layer whose file layout is not its attributes' (an LSTM keeps its weights where
Keras keeps its cell's) lists the saveables at its sub-paths from `_saveable_children()`.

Everything is read and checked before any weight is assigned, so a file that does not fit leaves
the model as it was.  h5py is optional: without it these functions say how to install it.
"""
import math

from engine.saving import registry
from engine.utils.naming import to_snake_case


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError("Saving and loading weights needs h5py: pip install h5py "
                          "(or pip install \"engine[h5]\")") from None
    return h5py


def _is_saveable(obj):
    return callable(getattr(obj, "save_own_variables", None)) and callable(getattr(obj, "load_own_variables", None))


def _name_key(name):
    return f"~{name}" if name.startswith("_") else name     # private attributes are visited last


def _base_attributes():
    """What every Layer has (its own bookkeeping): never walked, as Keras skips a bare Layer's
    attributes."""
    base = registry.builtin("layers", "Layer")
    return set(dir(base)) | {"_layers"} if base is not None else {"_layers"}


def _children(obj, skip):
    """(attribute, value) pairs to walk below obj, in Keras 3's order."""
    hook = getattr(obj, "_saveable_children", None)
    if callable(hook):
        yield from hook()
        return
    functional = registry.builtin("models", "Functional")
    if functional is not None and isinstance(obj, functional):
        yield "layers", obj.layers      # a graph model's own layers first, as Keras does
    for attr in sorted(dir(obj), key=_name_key):
        if attr.startswith("__") or attr in skip:
            continue
        try:
            value = getattr(obj, attr)
        except Exception:  # noqa: BLE001 - a property that cannot be read holds nothing to save
            continue
        if _is_saveable(value) or isinstance(value, (list, tuple, dict)):
            yield attr, value


def _unique(name, used):
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def _walk(obj, path, out, visited, skip):
    # visited maps id -> object: holding the objects keeps their ids from being reused by the
    # fresh lists and stand-ins the walk creates (a property's list, an LSTM's cell) while it runs.
    if _is_saveable(obj):
        if id(obj) in visited:
            return
        visited[id(obj)] = obj
        out.append((path, obj))
        for attr, child in _children(obj, skip):
            _walk(child, f"{path}/{attr}" if path else attr, out, visited, skip)
    elif isinstance(obj, (list, tuple, dict)):
        if id(obj) in visited:
            return
        visited[id(obj)] = obj
        used = {}
        for item in (obj.values() if isinstance(obj, dict) else obj):
            if _is_saveable(item):
                _walk(item, f"{path}/{_unique(to_snake_case(type(item).__name__), used)}", out, visited, skip)
            elif isinstance(item, (list, tuple, dict)):
                _walk(item, f"{path}/{_unique('container', used)}", out, visited, skip)


def saveables(model):
    """(path, saveable) for the model ("" is the model itself) and every layer inside it, each once,
    in the order Keras 3 visits them."""
    out = []
    _walk(model, "", out, {}, _base_attributes())
    return out


def _vars_group(path):
    return f"{path}/vars" if path else "vars"


def layer_paths(model):
    """(path of a layer's state in a .keras file, the layer) for each layer, as the weights use them."""
    return [(path, obj) for path, obj in saveables(model) if path]


def _own_state(obj):
    """What obj.save_own_variables stores: {key: Variable or array}."""
    store = {}
    obj.save_own_variables(store)
    return store


def _as_array(value):
    return value.numpy() if hasattr(value, "numpy") else value


def optimizer_variables(model):
    """The optimizer's state in Keras 3's order (iterations, learning rate, then slots)."""
    opt = getattr(model, "optimizer", None)
    if opt is None:
        return []
    return opt.ordered_state(model.trainable_weights)


def save_weights_to_h5(model, path, include_optimizer=False):
    h5py = _h5py()
    with h5py.File(path, "w") as f:
        for obj_path, obj in saveables(model):
            g = f.require_group(_vars_group(obj_path))
            name = getattr(obj, "name", None)
            if isinstance(name, str):
                g.attrs["name"] = name
            for key, value in _own_state(obj).items():
                g.create_dataset(key, data=_as_array(value))
        if include_optimizer:
            state = optimizer_variables(model)
            if state:
                g = f.require_group("optimizer/vars")
                g.attrs["name"] = model.optimizer.name
                for i, value in enumerate(state):
                    g.create_dataset(str(i), data=value)


def _open(h5py, source, name):
    try:
        return h5py.File(source, "r")
    except (OSError, ValueError) as e:
        raise ValueError(f"{name}: not a readable weights file ({e})") from None


# Every object is reached through links that stay in the file: HDF5 can also make a dataset of
# bytes of another file (external storage), of other datasets or files (virtual datasets) or
# put a link to another file where a group or dataset belongs (external links).  Keras writes
# none of these; a file that has them is refused, naming the path, before anything is read.
_MAX_SOFT_LINKS = 16


def _child(h5py, group, key, path, name, depth=0):
    """group[key] reached only through links inside the file, or None if there is no such link."""
    link = group.get(key, getlink=True)
    if link is None:
        return None
    if isinstance(link, h5py.ExternalLink):
        raise ValueError(f"{name}: {path} is an external link to {link.filename}:{link.path}; weights must "
                         f"be stored in the file itself, so it is refused")
    if isinstance(link, h5py.SoftLink):
        if depth >= _MAX_SOFT_LINKS:
            raise ValueError(f"{name}: {path}: too many soft links in a row")
        start = group.file if link.path.startswith("/") else group
        return _resolve(h5py, start, link.path.strip("/"), path, name, depth + 1)
    return group[key]


def _resolve(h5py, start, rel, path, name, depth=0):
    """The object at rel (a '/'-separated path) from start, through in-file links only."""
    node = start
    for part in [p for p in rel.split("/") if p not in ("", ".")]:
        if not hasattr(node, "keys"):
            return None
        node = _child(h5py, node, part, path, name, depth)
        if node is None:
            return None
    return node


def _check_storage(item, path, name):
    """Refuse datasets whose bytes live outside the file (external storage, virtual datasets)."""
    if getattr(item, "is_virtual", False):
        raise ValueError(f"{name}: {path} is a virtual dataset (its data comes from other datasets or files); "
                         f"weights must be stored in the file itself, so it is refused")
    if item.id.get_create_plist().get_external_count() > 0:
        raise ValueError(f"{name}: {path} keeps its data in an external file; weights must be stored in the "
                         f"file itself, so it is refused")


def _dataset(h5py, stored, key, where, name):
    """The dataset where/key, checked to be a plain in-file numeric dataset (nothing read yet)."""
    path = f"{where}/{key}"
    item = _child(h5py, stored, key, path, name) if stored is not None else None
    if item is None or not isinstance(item, h5py.Dataset):
        raise ValueError(f"{name}: {path} is missing; the file does not belong to this model")
    _check_storage(item, path, name)
    if item.dtype.kind not in "fiub":
        raise ValueError(f"{name}: {path} holds {item.dtype} data, not numbers")
    return item


def _read(item, path, name):
    try:
        return item[()]
    except (OSError, ValueError, TypeError) as e:
        raise ValueError(f"{name}: {path} is unreadable ({e}); the file is corrupt") from None


def _read_array(h5py, stored, key, where, name, max_size):
    """The array where/key, refused before reading when it declares more than max_size elements."""
    item = _dataset(h5py, stored, key, where, name)
    if item.size > max_size:
        raise ValueError(f"{name}: {where}/{key} declares {item.size} elements (shape {item.shape}), more "
                         f"than any weight of this model ({max_size}); the file does not belong to it")
    return _read(item, f"{where}/{key}", name)


def _stored_arrays(f, prefix):
    """Paths of every dataset under prefix (to find arrays the model has no place for)."""
    found = []
    group = f.get(prefix)
    if group is not None:
        group.visititems(lambda path, obj: found.append(f"{prefix}/{path}") if hasattr(obj, "shape") else None)
    return found


def _array_keys(h5py, stored, where, name):
    """Names of the datasets in a group (each reached through in-file links only)."""
    if stored is None:
        return []
    return [k for k in stored.keys() if isinstance(_child(h5py, stored, k, f"{where}/{k}", name), h5py.Dataset)]


def _is_variable(value):
    """A variable (its shape is known before reading) rather than an array a layer stores itself."""
    return hasattr(value, "assign") and hasattr(value, "shape")


def _read_state(h5py, f, group, expected, name, skip_mismatch):
    """The arrays stored at group for a saveable whose save_own_variables gives `expected`, read
    after their shapes and sizes are checked (None: skipped on a mismatch).

    Variables are checked by count and shape before anything is read; arrays a layer stores
    itself (a lookup layer's idf weights) have no size to check against, so they get the fixed
    cap of OWN_STORE_MAX_ELEMENTS and the layer's load_own_variables judges them."""
    stored = _resolve(h5py, f, group, group, name)
    keys = _array_keys(h5py, stored, group, name)
    variables_only = all(_is_variable(v) for v in expected.values())
    if set(keys) != set(expected) and variables_only:
        if skip_mismatch:
            return None
        raise ValueError(f"{name}: {group} holds {len(keys)} arrays but the model's layer has "
                         f"{len(expected)} weights; the file does not belong to this model")
    state = {}
    for key in keys:
        target = expected.get(key)
        if not _is_variable(target):
            state[key] = _read_array(h5py, stored, key, group, name, OWN_STORE_MAX_ELEMENTS)
            continue
        item = _dataset(h5py, stored, key, group, name)
        if item.shape != tuple(target.shape):    # checked before reading: a shape costs nothing
            if skip_mismatch:
                return None
            raise ValueError(f"{name}: {group}/{key} has shape {item.shape} but weight {target.path} has "
                             f"shape {tuple(target.shape)}")
        state[key] = _read(item, f"{group}/{key}", name)
    return state


def load_weights_from_h5(model, source, include_optimizer=False, skip_mismatch=False, name=None):
    """Read, check, then assign.  source is a path or a binary file object; name is how errors call it."""
    h5py = _h5py()
    name = name or str(source)
    with _open(h5py, source, name) as f:
        loads = []
        used = set()
        entries = [(_vars_group(path), obj, _own_state(obj)) for path, obj in saveables(model)]
        # No optimizer slot is larger than the largest weight; scalars (iterations, rate) are 1.
        largest = max([1] + [math.prod(v.shape) for _, _, state in entries for v in state.values()
                             if _is_variable(v)])
        for group, obj, expected in entries:
            state = _read_state(h5py, f, group, expected, name, skip_mismatch)
            if state is not None:
                loads.append((obj, state))
                used.update(f"{group}/{key}" for key in state)
        # Arrays in the groups the model's walk reaches that nothing of the model takes (other
        # top-level groups may hold what soft links point to).
        tops = sorted({group.split("/")[0] for group, _, _ in entries})
        extra = [p for top in tops for p in _stored_arrays(f, top) if p not in used]
        if extra and not skip_mismatch:
            raise ValueError(f"{name}: holds weights the model has no place for ({', '.join(extra[:5])}"
                             f"{', ...' if len(extra) > 5 else ''}); the file does not belong to this model")
        opt_values = None
        g = _resolve(h5py, f, "optimizer/vars", "optimizer/vars", name) if include_optimizer else None
        if g is not None:
            keys = _array_keys(h5py, g, "optimizer/vars", name)
            opt_values = [_read_array(h5py, g, str(i), "optimizer/vars", name, largest)
                          for i in range(len(keys))]
    # Everything is read and checked.  The optimizer checks its state before changing anything, so it
    # goes first: if it refuses, the model is still untouched.
    if opt_values is not None and getattr(model, "optimizer", None) is not None:
        model.optimizer.load_ordered_state(model.trainable_weights, opt_values)
    for obj, state in loads:
        obj.load_own_variables(state)


# A layer's own named arrays (not variables) are refused past this many elements (1 GiB of float64).
OWN_STORE_MAX_ELEMENTS = 1 << 27


def weights_bytes_bound(model):
    """An upper bound on the size of a weights file for this model (the cap for a .keras member).

    The weights, up to three optimizer slots per trainable weight (Adam's two moments, AdamW's,
    plus slack for others) and the optimizer's scalars, in float64 at most, plus HDF5's own
    metadata: a few KiB per dataset and group, and 1 MiB for the rest; layers storing arrays of
    their own (lookup tables) may add up to OWN_STORE_MAX_ELEMENTS float64 each.
    """
    states = [_own_state(obj) for _, obj in saveables(model)]
    elements = sum(math.prod(v.shape) for state in states for v in state.values() if _is_variable(v))
    datasets = sum(len(state) + 1 for state in states)
    own = sum(1 for state in states if not all(_is_variable(v) for v in state.values()))
    return 8 * 4 * elements + 16384 * (4 * datasets + 8) + (1 << 20) + 8 * OWN_STORE_MAX_ELEMENTS * own


# -- the file as nested dicts (KerasFileEditor) -------------------------------------------------------
def read_weights_tree(source, name, max_elements):
    """Every weight in a weights file as nested dicts that follow its groups, a group's `vars`
    datasets in its own dict: {"layers": {"dense": {"0": kernel, "1": bias}}, ...}. Read through
    in-file links only, numeric datasets only, each refused past max_elements; empty groups are
    left out.

    Args:
        source: a path or a binary file object.
        name: how errors name the file.
        max_elements: the largest array accepted.
    """
    h5py = _h5py()

    def read(group, where):
        tree = {}
        for key in group.keys():
            path = f"{where}/{key}" if where else key
            item = _child(h5py, group, key, path, name)
            if isinstance(item, h5py.Group):
                if key == "vars":
                    tree.update({k: _read_array(h5py, item, k, path, name, max_elements)
                                 for k in _array_keys(h5py, item, path, name)})
                else:
                    sub = read(item, path)
                    if sub:
                        tree[key] = sub
            elif isinstance(item, h5py.Dataset):
                tree[key] = _read_array(h5py, group, key, where, name, max_elements)
        return tree

    with _open(h5py, source, name) as f:
        return read(f, "")


def write_weights_tree(tree, path):
    """Write nested dicts of arrays (as read_weights_tree gives them) in Keras 3's layout: each
    dict's arrays in its `vars` group."""
    h5py = _h5py()

    def write(f, node, where):
        arrays = {k: v for k, v in node.items() if not isinstance(v, dict)}
        if arrays:
            g = f.require_group(_vars_group(where))
            for key, value in arrays.items():
                g.create_dataset(key, data=_as_array(value))
        for key, value in node.items():
            if isinstance(value, dict) and value:
                write(f, value, f"{where}/{key}" if where else key)

    with h5py.File(path, "w") as f:
        write(f, tree, "")


def weights_tree_spec(model):
    """{"layers/dense/0": shape, ...}: where each weight of the model (and its optimizer's state,
    if it has any) is saved (the paths of read_weights_tree's dicts, without the `vars` groups),
    and its shape."""
    spec = {}
    for path, obj in saveables(model):
        for key, value in _own_state(obj).items():
            spec[f"{path}/{key}" if path else key] = tuple(_as_array(value).shape)
    for i, value in enumerate(optimizer_variables(model)):      # a compiled model's optimizer state
        spec[f"optimizer/{i}"] = tuple(_as_array(value).shape)
    return spec
