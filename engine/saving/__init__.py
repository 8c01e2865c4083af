"""engine.saving: model configs, weights files and `.keras` archives in Keras 3's formats."""
from engine.saving.serialization import (register_keras_serializable, serialize_keras_object,
                                         deserialize_keras_object, get_registered_object, get_registered_name,
                                         custom_object_scope, CustomObjectScope,
                                         get_custom_objects)
from engine.saving.archive import save_model, load_model
