"""engine.models: Model, Sequential and the functional graph."""
from engine.models.model import Model
from engine.models.functional import Functional
from engine.models.sequential import Sequential
from engine.saving.registry import register_builtin

# The module paths Keras 3 writes for its model classes (functional.py is the execution plan's,
# so the three are registered here, where the package is assembled).
register_builtin(Model, "models", package="keras")
register_builtin(Functional, "models", package="keras.src.models.functional")
register_builtin(Sequential, "models", package="keras")


def __getattr__(name):
    # load_model lives in engine.saving.archive, which pulls in zipfile and json: loaded on first use.
    # (save_model too: keras.models exports both.)
    if name in ("load_model", "save_model"):
        from engine.saving import archive
        return getattr(archive, name)
    raise AttributeError(f"module 'engine.models' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {"load_model", "save_model"})


def model_from_json(json_string, custom_objects=None):
    """A model (new weights) from the JSON that model.to_json() wrote."""
    import json
    from engine.saving.serialization import deserialize_keras_object
    return deserialize_keras_object(json.loads(json_string), custom_objects)


def clone_model(model, input_tensors=None, clone_function=None, custom_objects=None, **kwargs):
    """A new model with the same architecture and freshly initialised weights, as Keras's clone_model.
    clone_function(layer) -> layer, if given, makes each layer (e.g. to share some or change their
    configs); input_tensors (a tensor or a list) gives the clone new inputs."""
    from engine.saving.serialization import deserialize_keras_object, serialize_keras_object
    from engine.saving.model_config import functional_from_config
    if kwargs:
        raise ValueError(f"clone_model: unsupported argument(s) {sorted(kwargs)}")
    if clone_function is None and input_tensors is None:
        return deserialize_keras_object(serialize_keras_object(model), custom_objects)
    if not isinstance(model, Functional):
        raise ValueError("clone_model: clone_function and input_tensors need a functional or Sequential model; "
                         f"{type(model).__name__} is subclassed")
    clone_function = clone_function or (lambda layer: deserialize_keras_object(serialize_keras_object(layer),
                                                                               custom_objects))
    by_name = {layer.name: layer for layer in model.layers}
    if isinstance(model, Sequential):
        clone = Sequential([clone_function(layer) for layer in model.layers], name=model.name)
        if input_tensors is not None:
            return Model(input_tensors, clone(input_tensors), name=model.name)
        if model._input_layer is not None:
            clone.build(model._input_layer.batch_shape)
        return clone
    clone = functional_from_config(type(model), model.get_config(), custom_objects,
                                   make_layer=lambda name: clone_function(by_name[name]))
    if input_tensors is not None:
        return Model(input_tensors, clone(input_tensors), name=model.name)
    return clone
