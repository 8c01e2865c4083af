"""engine.models: Model, Sequential and the functional graph."""
from engine.models.model import Model
from engine.models.functional import Functional
from engine.models.sequential import Sequential
from engine.saving.archive import load_model


def model_from_json(json_string, custom_objects=None):
    """A model (new weights) from the JSON that model.to_json() wrote."""
    import json
    from engine.saving.serialization import deserialize_keras_object
    return deserialize_keras_object(json.loads(json_string), custom_objects)


def clone_model(model, custom_objects=None):
    """A new model with the same architecture and freshly initialised weights, as Keras's clone_model."""
    from engine.saving.serialization import deserialize_keras_object, serialize_keras_object
    return deserialize_keras_object(serialize_keras_object(model), custom_objects)
