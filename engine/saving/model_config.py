"""Functional and Sequential model configs in Keras 3's layout, both ways.

A functional config lists every layer with the calls ("inbound nodes") that
connect it; each call's arguments name the tensors they use as
[layer name, node index, tensor index], node indices counted within the model.
"""
import inspect

from engine import tree
from engine.saving import registry
from engine.saving.serialization import (clean_config, deserialize_keras_object,
                                         serialize_keras_object, to_jsonable)


def _input_layer_class():
    return registry.builtin("layers", "InputLayer")


def _is_symbolic(value):
    return isinstance(value, registry.builtin("tensors", "KerasTensor"))


def _model_nodes(model):
    """Each layer's nodes that belong to this model, in the layer's own order."""
    own = {id(n) for n in model._nodes}
    for t in model.inputs:
        layer, index, _ = t._keras_history
        own.add(id(layer._inbound_nodes[index]))
    return {id(layer): [n for n in layer._inbound_nodes if id(n) in own] for layer in model.layers}


def functional_config(model):
    nodes_of = _model_nodes(model)
    local_index = {id(n): i for nodes in nodes_of.values() for i, n in enumerate(nodes)}

    def history(t):
        layer, index, tensor_index = t._keras_history
        return [layer.name, local_index[id(layer._inbound_nodes[index])], tensor_index]

    def encode(value):
        if _is_symbolic(value):
            return {"class_name": "__keras_tensor__",
                    "config": {"shape": list(value.shape), "dtype": value.dtype, "keras_history": history(value)}}
        return to_jsonable(value)

    input_layer = _input_layer_class()
    layers = []
    for layer in model.layers:
        entry = serialize_keras_object(layer)
        entry["name"] = layer.name
        entry["inbound_nodes"] = [] if isinstance(layer, input_layer) else [
            {"args": tree.map_structure(encode, list(n.args)), "kwargs": tree.map_structure(encode, n.kwargs)}
            for n in nodes_of[id(layer)]]
        layers.append(entry)

    def ends(tensors, structure):
        entries = [history(t) for t in tensors]
        return entries[0] if len(entries) == 1 and not isinstance(structure, (list, tuple, dict)) else entries

    return {"name": model.name, "trainable": model.trainable, "layers": layers,
            "input_layers": ends(model.inputs, model._input_structure),
            "output_layers": ends(model.outputs, model._output_structure)}


def functional_from_config(cls, config, custom_objects=None, safe_mode=None, make_layer=None, call_layer=None):
    """Rebuild the layers, replay their calls in dependency order, then make the model.
    make_layer(name), if given, supplies each non-input layer instead of its config, and
    call_layer(layer, *args, **kwargs) replaces each call (clone_model's clone_function and
    call_function)."""
    InputLayer = _input_layer_class()
    created = {}          # layer name -> layer
    outputs_of = {}       # (layer name, node index) -> flat output tensors
    pending = []
    for entry in config["layers"]:
        if make_layer is not None and entry.get("class_name") != "InputLayer":
            layer = make_layer(entry.get("name", entry.get("config", {}).get("name")))
        elif entry.get("class_name") in ("Functional", "Sequential", "Model"):
            layer = deserialize_keras_object(entry, custom_objects, safe_mode)
        elif entry.get("class_name") == "InputLayer":
            inner = clean_config(InputLayer, entry["config"])
            inner.pop("batch_input_shape", None)
            layer = InputLayer(**inner)
            outputs_of[(layer.name, 0)] = [layer.output_tensor]
        else:
            layer = deserialize_keras_object(entry, custom_objects, safe_mode)
        name = entry.get("name", layer.name)
        created[name] = layer
        for i, node in enumerate(entry.get("inbound_nodes", [])):
            pending.append((name, i, node))

    def decode(value):
        if isinstance(value, dict):
            if value.get("class_name") == "__keras_tensor__":
                lname, index, tensor_index = value["config"]["keras_history"]
                return outputs_of[(lname, index)][tensor_index]
            return {k: decode(v) for k, v in value.items()}
        if isinstance(value, list):
            return [decode(v) for v in value]
        return value

    while pending:
        progressed = False
        for item in list(pending):
            name, i, node = item
            try:
                args = decode(node.get("args", []))
                kwargs = decode(node.get("kwargs", {}))
            except KeyError:
                continue  # an input comes from a call not replayed yet
            layer = created[name]
            # Keras records call arguments such as mask=None for layers whose call takes none.
            accepted = inspect.signature(layer.call).parameters
            kwargs = {k: v for k, v in kwargs.items() if k in accepted or v is not None}
            out = layer(*args, **kwargs) if call_layer is None else call_layer(layer, *args, **kwargs)
            outputs_of[(name, i)] = tree.flatten(out)
            pending.remove(item)
            progressed = True
        if not progressed:
            raise ValueError("Could not rebuild the model: some layer calls use tensors that no call produces "
                             f"({', '.join(sorted({p[0] for p in pending}))})")

    def ends(spec):
        if spec and not isinstance(spec[0], list):
            spec = [spec]
        return [outputs_of[(n, i)][t] for n, i, t in spec]

    inputs, outputs = ends(config["input_layers"]), ends(config["output_layers"])
    single_in = config["input_layers"] and not isinstance(config["input_layers"][0], list)
    single_out = config["output_layers"] and not isinstance(config["output_layers"][0], list)
    return cls(inputs[0] if single_in else inputs, outputs[0] if single_out else outputs,
               name=config.get("name"), trainable=config.get("trainable", True))


def sequential_config(model):
    layers = []
    if model._input_layer is not None:
        layers.append(serialize_keras_object(model._input_layer))
    layers += [serialize_keras_object(layer) for layer in model.layers]
    return {"name": model.name, "trainable": model.trainable, "layers": layers}


def sequential_from_config(cls, config, custom_objects=None, safe_mode=None):
    InputLayer = _input_layer_class()
    model = cls(name=config.get("name"), trainable=config.get("trainable", True))
    for entry in config["layers"]:
        if entry.get("class_name") == "InputLayer":
            inner = clean_config(InputLayer, entry["config"])
            inner.pop("batch_input_shape", None)
            model.add(InputLayer(**inner))
        else:
            model.add(deserialize_keras_object(entry, custom_objects, safe_mode))
    return model
