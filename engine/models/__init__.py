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


def clone_model(model, input_tensors=None, clone_function=None, call_function=None, recursive=False,
                custom_objects=None, **kwargs):
    """A new model with the same architecture and freshly initialised weights, as Keras's clone_model.

    Args:
        model: a functional, Sequential or (with none of the other arguments) subclassed model
            whose config rebuilds it.
        input_tensors: a tensor or list of tensors the clone is called on (a model with new
            inputs).
        clone_function: `fn(layer) -> layer` making each layer of the clone (default: a new
            layer from the layer's config); returning the layer itself shares it.
        call_function: `fn(layer, *args, **kwargs)` used instead of `layer(*args, **kwargs)`
            when the clone's graph is rebuilt (functional models only), e.g. to insert layers.
        recursive: also clone nested functional and Sequential models layer by layer with
            `clone_function` (otherwise a nested model is passed to `clone_function` whole).
        custom_objects: classes the layers' configs need (engine's addition).
    """
    from engine.saving.serialization import deserialize_keras_object, serialize_keras_object
    from engine.saving.model_config import functional_from_config
    cache = kwargs.pop("cache", {})             # layer id -> its clone, across nested models (Keras's)
    if kwargs:
        raise ValueError(f"clone_model: unexpected keyword argument(s) {sorted(kwargs)}")
    if isinstance(model, Sequential) and call_function is not None:
        raise ValueError("clone_model: call_function is not supported with Sequential models (their layers are "
                         "not called when the model is made); use it with functional models")
    if not isinstance(model, Functional):
        if clone_function is not None or input_tensors is not None or call_function is not None:
            raise ValueError("clone_model: clone_function, call_function and input_tensors need a functional or "
                             f"Sequential model; {type(model).__name__} is subclassed")
        return deserialize_keras_object(serialize_keras_object(model), custom_objects)
    if clone_function is None and input_tensors is None and call_function is None and not recursive:
        return deserialize_keras_object(serialize_keras_object(model), custom_objects)
    make = clone_function or (lambda layer: deserialize_keras_object(serialize_keras_object(layer), custom_objects))

    def clone_layer(layer):
        if id(layer) not in cache:
            if recursive and isinstance(layer, Functional):
                cache[id(layer)] = clone_model(layer, clone_function=clone_function, call_function=
                                               None if isinstance(layer, Sequential) else call_function,
                                               recursive=True, custom_objects=custom_objects, cache=cache)
            else:
                cache[id(layer)] = make(layer)
        return cache[id(layer)]

    by_name = {layer.name: layer for layer in model.layers}
    if isinstance(model, Sequential):
        clone = Sequential([clone_layer(layer) for layer in model.layers], name=model.name)
        if input_tensors is not None:
            return Model(input_tensors, clone(input_tensors), name=model.name)
        if model._input_layer is not None:
            clone.build(model._input_layer.batch_shape)
        return clone
    clone = functional_from_config(type(model), model.get_config(), custom_objects,
                                   make_layer=lambda name: clone_layer(by_name[name]), call_layer=call_function)
    if input_tensors is not None:
        return Model(input_tensors, clone(input_tensors), name=model.name)
    return clone
