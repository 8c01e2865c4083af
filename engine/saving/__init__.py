"""engine.saving: model configs, weights files and `.keras` archives in Keras 3's formats.

The archive functions (save_model, load_model, KerasFileEditor) import zipfile, json and h5py's
helpers, so they load on first use; the registry and the config functions are always here.
"""
from engine.saving.serialization import (register_keras_serializable, serialize_keras_object,
                                         deserialize_keras_object, get_registered_object, get_registered_name,
                                         custom_object_scope, CustomObjectScope,
                                         get_custom_objects)

_LAZY = {"save_model": "engine.saving.archive", "load_model": "engine.saving.archive",
         "save_weights": "engine.saving.archive", "load_weights": "engine.saving.archive"}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'engine.saving' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
