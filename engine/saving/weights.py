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
    """(h5 path of a variable group, the variables stored there), for every layer of the model."""
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
                    entries += [(f"{key}/{side}/{sub}/vars", variables) for sub, variables in inner._h5_groups()]
                else:
                    entries.append((f"{key}/{side}/cell/vars", inner.weights))
        elif _recurrent(layer):
            entries.append((f"{key}/cell/vars", layer.weights))
        elif hasattr(layer, "_h5_groups"):
            # Layers whose weights live in sublayers that Keras saves under the sublayer's
            # attribute name (MultiHeadAttention: query_dense/vars, ...); own weights stay in vars.
            entries.append((f"{key}/vars", layer._trainable_weights_list + layer._non_trainable_weights_list))
            entries += [(f"{key}/{sub}/vars", variables) for sub, variables in layer._h5_groups()]
        else:
            entries.append((f"{key}/vars", layer.weights))
    return entries


def optimizer_variables(model):
    """The optimizer's state in Keras 3's order (iterations, learning rate, then slots)."""
    opt = getattr(model, "optimizer", None)
    if opt is None:
        return []
    return opt.ordered_state(model.trainable_weights)


def save_weights_to_h5(model, path, include_optimizer=False):
    h5py = _h5py()
    with h5py.File(path, "w") as f:
        for group, variables in _layer_entries(model):
            g = f.require_group(group)
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


def _read_array(stored, key, where, name):
    item = stored.get(key) if stored is not None else None
    if item is None or not hasattr(item, "shape"):
        raise ValueError(f"{name}: {where}/{key} is missing; the file does not belong to this model")
    try:
        value = item[()]
    except (OSError, ValueError, TypeError) as e:
        raise ValueError(f"{name}: {where}/{key} is unreadable ({e}); the file is corrupt") from None
    if not hasattr(value, "dtype") or value.dtype.kind not in "fiub":
        raise ValueError(f"{name}: {where}/{key} holds {getattr(value, 'dtype', type(value))} data, not numbers")
    return value


def _stored_arrays(f, prefix):
    """Paths of every dataset under prefix (to find arrays the model has no place for)."""
    found = []
    group = f.get(prefix)
    if group is not None:
        group.visititems(lambda path, obj: found.append(f"{prefix}/{path}") if hasattr(obj, "shape") else None)
    return found


def load_weights_from_h5(model, source, include_optimizer=False, skip_mismatch=False, name=None):
    """Read, check, then assign.  source is a path or a binary file object; name is how errors call it."""
    h5py = _h5py()
    name = name or str(source)
    with _open(h5py, source, name) as f:
        assignments = []
        used = set()
        for group, variables in _layer_entries(model):
            stored = f.get(group)
            count = 0 if stored is None else sum(1 for k in stored if hasattr(stored[k], "shape"))
            if count != len(variables):
                if skip_mismatch:
                    continue
                raise ValueError(f"{name}: {group} holds {count} arrays but the model's layer has "
                                 f"{len(variables)} weights; the file does not belong to this model")
            values = []
            for i, v in enumerate(variables):
                value = _read_array(stored, str(i), group, name)
                used.add(f"{group}/{i}")
                if value.shape != tuple(v.shape):
                    if skip_mismatch:
                        values = None
                        break
                    raise ValueError(f"{name}: {group}/{i} has shape {value.shape} but weight {v.path} has "
                                     f"shape {tuple(v.shape)}")
                values.append((v, value))
            assignments += values or []
        extra = [p for p in _stored_arrays(f, "layers") if p not in used]
        if extra and not skip_mismatch:
            raise ValueError(f"{name}: holds weights the model has no place for ({', '.join(extra[:5])}"
                             f"{', ...' if len(extra) > 5 else ''}); the file does not belong to this model")
        opt_values = None
        if include_optimizer and "optimizer/vars" in f:
            g = f["optimizer/vars"]
            opt_values = [_read_array(g, str(i), "optimizer/vars", name) for i in range(len(g))]
    # Everything is read and checked.  The optimizer checks its state before changing anything, so it
    # goes first: if it refuses, the model is still untouched.
    if opt_values is not None and getattr(model, "optimizer", None) is not None:
        model.optimizer.load_ordered_state(model.trainable_weights, opt_values)
    for v, value in assignments:
        v.assign(value)
