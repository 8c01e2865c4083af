"""engine.saving: model configs, weights files and `.keras` archives in Keras 3's formats.

Only the registry (which every family imports to register its classes) loads with the package;
the config functions, the archive (zipfile, json, h5py) and KerasFileEditor load on first use.
"""
from engine._lazy import lazy_attributes, lazy_table

_LAZY = lazy_table(__name__, {
    "engine.saving.serialization": ("register_keras_serializable serialize_keras_object deserialize_keras_object "
                                    "get_registered_object get_registered_name custom_object_scope "
                                    "CustomObjectScope get_custom_objects"),
    "engine.saving.archive": "save_model load_model save_weights load_weights",
    "engine.saving.file_editor": "KerasFileEditor",
    "": "archive file_editor model_config registry serialization weights",
})
__getattr__, __dir__ = lazy_attributes(globals(), _LAZY)
