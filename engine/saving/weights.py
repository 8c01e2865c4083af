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
from engine.layers.input_layer import InputLayer


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
            entries.append((f"{key}/forward_layer/cell/vars", layer.forward_layer.weights))
            entries.append((f"{key}/backward_layer/cell/vars", layer.backward_layer.weights))
        elif _recurrent(layer):
            entries.append((f"{key}/cell/vars", layer.weights))
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
        f.require_group("vars")
        if include_optimizer:
            state = optimizer_variables(model)
            if state:
                g = f.require_group("optimizer/vars")
                for i, value in enumerate(state):
                    g.create_dataset(str(i), data=value)


def load_weights_from_h5(model, path, include_optimizer=False):
    h5py = _h5py()
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path}: not a readable weights file ({e})") from None
    with f:
        assignments = []
        for group, variables in _layer_entries(model):
            stored = f.get(group)
            count = 0 if stored is None else len(stored)
            if count != len(variables):
                raise ValueError(f"{path}: {group} holds {count} arrays but the model's layer has "
                                 f"{len(variables)} weights; the file does not belong to this model")
            for i, v in enumerate(variables):
                value = stored[str(i)][()]
                if value.shape != v.shape:
                    raise ValueError(f"{path}: {group}/{i} has shape {value.shape} but weight {v.path} has "
                                     f"shape {v.shape}")
                assignments.append((v, value))
        opt_values = None
        if include_optimizer and "optimizer/vars" in f:
            g = f["optimizer/vars"]
            opt_values = [g[str(i)][()] for i in range(len(g))]
    for v, value in assignments:  # all checked: now change the model
        v.assign(value)
    if opt_values is not None and getattr(model, "optimizer", None) is not None:
        model.optimizer.load_ordered_state(model.trainable_weights, opt_values)
