"""Weights in Keras 3's `.weights.h5` layout.

    layers/<name>/vars/<i>      one group per layer of the model, named by class
                                ("dense", "dense_1", ...) in model.layers order;
                                recurrent layers keep their weights under ".../cell/vars"
                                and nested models under their own "layers/" group
    optimizer/vars/<i>          iterations, learning rate, then the slots

Everything is read and checked before any weight is assigned, so a file that
does not fit leaves the model as it was.  h5py is optional: without it these
functions say how to install it.
"""
import math

from engine.layers.base import snake_case


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError("Saving and loading weights needs h5py: pip install h5py "
                          "(or pip install \"engine[h5]\")") from None
    return h5py


def _recurrent(layer):
    from engine.layers.recurrent import _RNN
    return isinstance(layer, _RNN)


def _layer_entries(model, prefix="layers"):
    """(h5 path of a variable group, the variables stored there, the layer), for every layer of the model."""
    from engine.layers.recurrent import Bidirectional
    from engine.models.functional import Functional
    used = {}
    entries = []
    for layer in model.layers:
        base = snake_case(type(layer).__name__)
        n = used.get(base, 0)
        used[base] = n + 1
        key = f"{prefix}/{base if n == 0 else f'{base}_{n}'}"
        if isinstance(layer, Functional):
            entries += _layer_entries(layer, f"{key}/layers")
        elif isinstance(layer, Bidirectional):
            for side in ("forward_layer", "backward_layer"):
                inner = getattr(layer, side)
                if hasattr(inner, "_h5_groups"):        # RNN over cells: a stack keeps cell/cells/...
                    entries += [(f"{key}/{side}/{sub}/vars", variables, inner) for sub, variables in inner._h5_groups()]
                else:
                    entries.append((f"{key}/{side}/cell/vars", inner.weights, inner))
        elif _recurrent(layer):
            entries.append((f"{key}/cell/vars", layer.weights, layer))
        elif hasattr(layer, "_h5_groups"):
            # Layers whose weights live in sublayers that Keras saves under the sublayer's
            # attribute name (MultiHeadAttention: query_dense/vars, ...); own weights stay in vars.
            entries.append((f"{key}/vars", layer._trainable_weights_list + layer._non_trainable_weights_list, layer))
            entries += [(f"{key}/{sub}/vars", variables, layer) for sub, variables in layer._h5_groups()]
        else:
            entries.append((f"{key}/vars", layer.weights, layer))
            # A layer holding another saveable layer (TextVectorization's StringLookup) has it saved
            # at <key>/<attribute> as well, as Keras walks a layer's attributes.
            for attr, child in getattr(layer, "_saveable_children", lambda: [])():
                entries.append((f"{key}/{attr}/vars", [], child))
    return entries


def _has_own_store(layer):
    """Layers whose state is not a list of variables (the lookup layers' idf weights) store named
    arrays through save_own_variables / load_own_variables, as in Keras."""
    return hasattr(layer, "save_own_variables") and hasattr(layer, "load_own_variables")


def layer_paths(model):
    """(path of a layer's state in a .keras file, the layer) for each layer, as the weights use them."""
    return [(group[:-len("/vars")], layer) for group, _, layer in _layer_entries(model)]


def optimizer_variables(model):
    """The optimizer's state in Keras 3's order (iterations, learning rate, then slots)."""
    opt = getattr(model, "optimizer", None)
    if opt is None:
        return []
    return opt.ordered_state(model.trainable_weights)


def save_weights_to_h5(model, path, include_optimizer=False):
    h5py = _h5py()
    with h5py.File(path, "w") as f:
        for group, variables, layer in _layer_entries(model):
            g = f.require_group(group)
            if _has_own_store(layer):
                store = {}
                layer.save_own_variables(store)
                for name, value in store.items():
                    g.create_dataset(name, data=value)
                continue
            for i, v in enumerate(variables):
                g.create_dataset(str(i), data=v.numpy())
        f.require_group("vars").attrs["name"] = model.name
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


def load_weights_from_h5(model, source, include_optimizer=False, skip_mismatch=False, name=None):
    """Read, check, then assign.  source is a path or a binary file object; name is how errors call it."""
    h5py = _h5py()
    name = name or str(source)
    with _open(h5py, source, name) as f:
        assignments = []
        own_stores = []
        used = set()
        entries = _layer_entries(model)
        # No optimizer slot is larger than the largest weight; scalars (iterations, rate) are 1.
        largest = max([1] + [math.prod(v.shape) for _, variables, _ in entries for v in variables])
        for group, variables, layer in entries:
            stored = _resolve(h5py, f, group, group, name)
            keys = _array_keys(h5py, stored, group, name)
            if _has_own_store(layer):
                # Named arrays of a layer's own (a lookup layer's idf weights): no variable bounds
                # their size, so they get the fixed cap of OWN_STORE_MAX_ELEMENTS.
                own_stores.append((layer, {k: _read_array(h5py, stored, k, group, name, OWN_STORE_MAX_ELEMENTS)
                                           for k in keys}))
                used.update(f"{group}/{k}" for k in keys)
                continue
            count = len(keys)
            if count != len(variables):
                if skip_mismatch:
                    continue
                raise ValueError(f"{name}: {group} holds {count} arrays but the model's layer has "
                                 f"{len(variables)} weights; the file does not belong to this model")
            values = []
            for i, v in enumerate(variables):
                item = _dataset(h5py, stored, str(i), group, name)
                used.add(f"{group}/{i}")
                if item.shape != tuple(v.shape):    # checked before reading: a shape costs nothing
                    if skip_mismatch:
                        values = None
                        break
                    raise ValueError(f"{name}: {group}/{i} has shape {item.shape} but weight {v.path} has "
                                     f"shape {tuple(v.shape)}")
                values.append((v, _read(item, f"{group}/{i}", name)))
            assignments += values or []
        extra = [p for p in _stored_arrays(f, "layers") if p not in used]
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
    for v, value in assignments:
        v.assign(value)
    for layer, store in own_stores:
        layer.load_own_variables(store)


# A layer's own named arrays (not variables) are refused past this many elements (1 GiB of float64).
OWN_STORE_MAX_ELEMENTS = 1 << 27


def weights_bytes_bound(model):
    """An upper bound on the size of a weights file for this model (the cap for a .keras member).

    The weights, up to three optimizer slots per trainable weight (Adam's two moments, AdamW's,
    plus slack for others) and the optimizer's scalars, in float64 at most, plus HDF5's own
    metadata: a few KiB per dataset and group, and 1 MiB for the rest; layers storing arrays of
    their own (lookup tables) may add up to OWN_STORE_MAX_ELEMENTS float64 each.
    """
    entries = _layer_entries(model)
    elements = sum(math.prod(v.shape) for _, variables, _ in entries for v in variables)
    datasets = sum(len(variables) for _, variables, _ in entries)
    own = sum(1 for _, _, layer in entries if _has_own_store(layer))
    return 8 * 4 * elements + 16384 * (4 * datasets + 8) + (1 << 20) + 8 * OWN_STORE_MAX_ELEMENTS * own
