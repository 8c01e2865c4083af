"""Objects to and from Keras 3's config dictionaries:
{"module": ..., "class_name": ..., "config": {...}, "registered_name": ...}.

Loading never imports modules named in a config and never executes code from it:
class names are looked up in engine's own namespaces and in the registry of
custom objects (`register_keras_serializable`, `custom_objects=`).
"""
import inspect

import numpy as np

_REGISTRY = {}

# Keys Keras 3 writes that engine's constructors have no use for; dropped on load.
_KERAS_ONLY_KEYS = {"quantization_config", "lora_rank", "lora_alpha", "sparse", "ragged", "optional",
                    "synchronized", "input_axes", "output_axes", "build_config", "compile_config",
                    "shared_object_id", "use_cudnn", "implementation", "time_major", "autocast"}


def register_keras_serializable(package="Custom", name=None):
    """Decorator: make a custom class loadable by name ("package>name", as Keras registers it)."""
    def decorate(cls):
        key = f"{package}>{name or cls.__name__}"
        if key in _REGISTRY and _REGISTRY[key] is not cls:
            raise ValueError(f"register_keras_serializable: {key!r} is already registered")
        _REGISTRY[key] = cls
        cls._registered_name = key
        return cls
    return decorate


def get_registered_object(name, custom_objects=None):
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    return _REGISTRY.get(name)


def _namespaces():
    """Where classes named in configs may come from: engine's public modules only."""
    from engine import layers, initializers, optimizers, losses, regularizers, constraints, metrics
    from engine.models.functional import Functional
    from engine.models.sequential import Sequential
    from engine.models.model import Model
    ns = {"Functional": Functional, "Sequential": Sequential, "Model": Model}
    for module in (layers, initializers, optimizers, losses, regularizers, constraints, metrics):
        for name, obj in vars(module).items():
            if isinstance(obj, type) and not name.startswith("_"):
                ns.setdefault(name, obj)
    return ns


def resolve_class(config, custom_objects=None, safe_mode=True):
    class_name = config.get("class_name")
    registered = config.get("registered_name")
    if not isinstance(class_name, str):
        raise ValueError(f"Could not load an object: its config has no class_name ({config!r:.200})")
    if class_name == "Lambda" and safe_mode:
        raise ValueError("Loading a Lambda layer runs code stored in the file, so it is refused in safe mode. "
                         "If you trust the file, pass safe_mode=False.")
    for key in (registered, class_name):
        if key:
            cls = get_registered_object(key, custom_objects)
            if cls is not None:
                return cls
    ns = _namespaces()
    if class_name in ns:
        return ns[class_name]
    known = sorted(set(ns) | set(_REGISTRY) | set(custom_objects or {}))
    raise ValueError(f"Unknown class {class_name!r} (module {config.get('module')!r}). Register custom classes "
                     f"with engine.saving.register_keras_serializable or pass custom_objects=. Known classes: "
                     f"{', '.join(known)}")


def _module_of(obj):
    from engine import layers as L
    from engine.layers.base import Layer
    from engine.models.model import Model
    if isinstance(obj, Model):
        return "keras.src.models.functional" if type(obj).__name__ == "Functional" else "keras"
    if isinstance(obj, Layer):
        return "keras.layers"
    return {"engine.initializers": "keras.initializers", "engine.optimizers": "keras.optimizers",
            "engine.losses": "keras.losses", "engine.regularizers": "keras.regularizers",
            "engine.constraints": "keras.constraints", "engine.metrics": "keras.metrics"}.get(
        type(obj).__module__, type(obj).__module__)


def to_jsonable(value):
    """Tuples to lists, numpy scalars to Python numbers: what json.dumps accepts."""
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def serialize_keras_object(obj):
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if not hasattr(obj, "get_config"):
        raise ValueError(f"Cannot serialize {obj!r}: it has no get_config()")
    return {"module": _module_of(obj), "class_name": type(obj).__name__,
            "config": to_jsonable(obj.get_config()),
            "registered_name": getattr(type(obj), "_registered_name", None)}


def clean_config(cls, config):
    """The config as keyword arguments for cls: Keras-only keys dropped, dtype policies flattened."""
    config = {k: v for k, v in config.items() if k not in _KERAS_ONLY_KEYS}
    dtype = config.get("dtype")
    if isinstance(dtype, dict):
        config["dtype"] = dtype.get("config", {}).get("name", "float32")
    return config


def deserialize_keras_object(config, custom_objects=None, safe_mode=True):
    if config is None or isinstance(config, (int, float, bool)):
        return config
    if isinstance(config, str):
        return config
    cls = resolve_class(config, custom_objects, safe_mode)
    inner = clean_config(cls, config.get("config", {}))
    if hasattr(cls, "from_config"):
        try:
            return cls.from_config(inner)
        except TypeError as e:
            params = sorted(inspect.signature(cls.__init__).parameters)
            raise ValueError(f"Could not build {config.get('class_name')} from its config: {e}. "
                             f"It takes: {', '.join(p for p in params if p != 'self')}") from None
    return cls(**inner)
