"""Objects to and from Keras 3's config dictionaries:
{"module": ..., "class_name": ..., "config": {...}, "registered_name": ...}.

Loading never imports modules named in a config and never executes code from it:
class names are looked up in engine's own namespaces (chosen by the config's
"module", so the Identity initializer and the Identity layer, or the
MeanSquaredError loss and metric, stay apart) and in the registry of custom
objects (`register_keras_serializable`, `custom_objects=`, `custom_object_scope`).
"""
import inspect
import types
import threading

import numpy as np

from engine.saving import registry

# The global custom objects: {name: class or function}. Registered objects are stored under
# "package>name"; users may add plain names through get_custom_objects(), as in Keras.
_REGISTRY = {}
# The name each registered object was registered under (by object, so a subclass of a registered
# class does not inherit its parent's name, as a class attribute would).
_NAMES = {}

# Keys Keras 3 writes that engine's constructors have no use for; dropped on load.
_KERAS_ONLY_KEYS = {"quantization_config", "sparse", "ragged", "optional",
                    "synchronized", "input_axes", "output_axes", "build_config", "compile_config",
                    "shared_object_id", "use_cudnn", "implementation", "time_major", "autocast"}

# Config keys whose values are nested objects a layer's constructor accepts as instances.
_NESTED_OBJECT_SUFFIXES = ("_initializer", "_regularizer", "_constraint")
_ACTIVATION_KEYS = ("activation", "recurrent_activation")

# Loading state shared by nested calls (a layer inside a nested model inside the loaded model):
# the custom objects in effect and whether safe mode is on.
_STATE = threading.local()
_DEFAULTS = {"safe_mode": True}


def _scope():
    return getattr(_STATE, "scope", ({}, _DEFAULTS["safe_mode"]))


def enable_unsafe_deserialization():
    """Turn safe mode off for every later load in this process (as keras.config's does): a Lambda
    layer whose function is named in custom_objects can then be loaded. Engine still never runs
    bytecode stored in a file."""
    _DEFAULTS["safe_mode"] = False


def in_safe_mode():
    """Whether loads currently refuse Lambda layers (safe mode)."""
    return _scope()[1]


class CustomObjectScope:
    """A context in which extra custom objects (and optionally a safe-mode setting) are visible to
    every load.

        with CustomObjectScope({"MyLayer": MyLayer}):
            model = engine.saving.load_model("m.keras")

    Args:
        custom_objects: {name: class or function} (None: none).
        safe_mode: if not None, the safe mode inside the block.
    """

    def __init__(self, custom_objects=None, safe_mode=None):
        if custom_objects is not None and not isinstance(custom_objects, dict):
            raise TypeError(f"CustomObjectScope: expected a dictionary of custom objects, got {custom_objects!r}")
        self.custom_objects = dict(custom_objects or {})
        self.safe_mode = safe_mode
        self._previous = None

    def __enter__(self):
        objects, safe = _scope()
        self._previous = getattr(_STATE, "scope", None)
        _STATE.scope = ({**objects, **self.custom_objects}, safe if self.safe_mode is None else bool(self.safe_mode))
        return self

    def __exit__(self, *exc):
        if self._previous is None:
            del _STATE.scope
        else:
            _STATE.scope = self._previous
        return False


def custom_object_scope(custom_objects=None, safe_mode=None):
    """`CustomObjectScope` as a function: `with custom_object_scope({"MyLayer": MyLayer}): ...`.

    Args:
        custom_objects: {name: class or function}.
        safe_mode: if not None, the safe mode inside the block.
    """
    return CustomObjectScope(custom_objects, safe_mode=safe_mode)


def get_custom_objects():
    """The global dictionary of custom objects, {name: class or function}: registered objects are
    in it under "package>name", and objects added to it by plain name load by that name.

    Returns:
        The dictionary itself (changes to it take effect).
    """
    return _REGISTRY


def register_keras_serializable(package="Custom", name=None):
    """Decorator: make a custom class or function loadable by name ("package>name", as Keras registers it).

    Args:
        package: the package part of the registered name.
        name: the name part (default: the object's __name__).
    """
    def decorate(obj):
        key = f"{package}>{name or obj.__name__}"
        if key in _REGISTRY and _REGISTRY[key] is not obj:
            raise ValueError(f"register_keras_serializable: {key!r} is already registered")
        if inspect.isclass(obj) and not hasattr(obj, "get_config"):
            raise ValueError(f"register_keras_serializable: {obj.__name__} must define get_config() to be "
                             "serializable")
        _REGISTRY[key] = obj
        _NAMES[obj] = key
        return obj
    return decorate


def _registered_key(obj):
    """The "package>name" obj was registered under, or None."""
    try:
        return _NAMES.get(obj)
    except TypeError:  # an unhashable object is never registered
        return None


def get_registered_name(obj):
    """The name obj is saved under: its registered "package>name", else its __name__.

    Args:
        obj: a class or function.
    """
    return _registered_key(obj) or getattr(obj, "__name__", type(obj).__name__)


def get_registered_object(name, custom_objects=None, module_objects=None):
    """The object saved under `name`: from custom_objects, the active custom object scopes, the
    global custom objects, or module_objects, in that order (None if none has it).

    Args:
        name: the registered or plain name.
        custom_objects: optional {name: object} looked at first.
        module_objects: optional {name: object} looked at last.
    """
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    objects = _scope()[0]
    if name in objects:
        return objects[name]
    if name in _REGISTRY:
        return _REGISTRY[name]
    if module_objects and name in module_objects:
        return module_objects[name]
    return None


# -- where classes come from ----------------------------------------------------------------------
def _family_of_module(module):
    """The family a Keras or engine module path names, "" for the top-level package, None if foreign."""
    if module in ("keras", "engine"):
        return ""
    for prefix in ("keras.src.", "keras.", "engine."):
        if isinstance(module, str) and module.startswith(prefix):
            parts = module[len(prefix):].split(".")
            if parts[0] == "optimizers" and "schedules" in parts:
                return "schedules"
            return parts[0]
    return None


def _refuse_lambda():
    raise ValueError("Loading a Lambda layer would run code stored in the file, so it is refused in safe mode. "
                     "If you trust the file, pass safe_mode=False (the function itself must then be given "
                     "through custom_objects=; engine never runs code read from a file).")


def resolve_class(config, custom_objects=None, safe_mode=None):
    """The class (or registered function) a config names, looked up in the custom objects and in
    engine's namespaces chosen by the config's "module"; never imported from the config."""
    class_name = config.get("class_name")
    registered = config.get("registered_name")
    module = config.get("module")
    safe = _scope()[1] if safe_mode is None else safe_mode
    if not isinstance(class_name, str):
        raise ValueError(f"Could not load an object: its config has no class_name ({config!r:.200})")
    if class_name == "Lambda" and safe:
        _refuse_lambda()
    for key in (registered, class_name):
        if isinstance(key, str):
            obj = get_registered_object(key, custom_objects)
            if obj is not None:
                return obj
    family = _family_of_module(module)
    if family:
        obj = registry.builtin(family, class_name)
    elif family == "" or module is None:
        obj = registry.builtin_any(class_name)
    else:
        obj = None  # a module engine does not know: only registered or custom objects may come from it
    if obj is not None:
        return obj
    known = sorted(registry.builtin_names() | set(_REGISTRY) | set(_scope()[0]) | set(custom_objects or {}))
    raise ValueError(f"Unknown class {class_name!r} (module {module!r}). Engine loads only its own classes and "
                     "custom ones registered with engine.saving.register_keras_serializable or passed as "
                     f"custom_objects=. Known classes: {', '.join(known)}")


def _module_of(obj):
    """The "module" written in obj's config: a registered custom class's own module, else the
    Keras module path its family registered (that of its nearest registered base class)."""
    cls = type(obj)
    if _registered_key(cls):
        return cls.__module__
    return registry.keras_package(cls) or cls.__module__


# -- to configs --------------------------------------------------------------------------------------
def to_jsonable(value):
    """Tuples to lists, numpy scalars to Python numbers, objects to their configs: what json.dumps takes."""
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.dtype):
        return value.name
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return serialize_keras_object(value)


def _function_name(fn):
    """The name a function is stored under: its registration, or an engine activation or loss name."""
    name = (_registered_key(fn) or registry.builtin_function_name(fn, "activations")
            or registry.builtin_function_name(fn, "losses"))
    if name:
        return name
    raise ValueError(f"Cannot serialize the function {fn!r}: it is neither an engine activation or loss nor "
                     "registered with engine.saving.register_keras_serializable")


def serialize_keras_object(obj):
    """An object as Keras 3's config dictionary ({"module", "class_name", "config",
    "registered_name"}); plain values, lists and dicts as JSON-ready values; functions by name.

    Args:
        obj: a layer, model, loss, metric, optimizer, schedule, initializer, ..., a function, or a
            plain value.
    """
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if isinstance(obj, (list, tuple, dict, np.ndarray, np.generic)):
        return to_jsonable(obj)
    if not hasattr(obj, "get_config"):
        if callable(obj) and not isinstance(obj, type):
            # Keras 3's form for a plain function (an activation, a loss).
            return {"module": "builtins", "class_name": "function", "config": _function_name(obj),
                    "registered_name": "function"}
        raise ValueError(f"Cannot serialize {obj!r}: it has no get_config()")
    config = obj.get_config()
    for key in _ACTIVATION_KEYS:
        # Layers name their activations; a registered custom one is written as Keras does, as a
        # function config carrying its registered name.
        fn = getattr(obj, key, None) if isinstance(config.get(key), str) else None
        if callable(fn) and _registered_key(fn):
            config = {**config, key: serialize_keras_object(fn)}
    # A class Keras exports under another name than its own (GroupedQueryAttention is written as
    # GroupQueryAttention) says so in _keras_api_name; subclasses do not inherit it.
    class_name = type(obj).__dict__.get("_keras_api_name", type(obj).__name__)
    return {"module": _module_of(obj), "class_name": class_name, "config": to_jsonable(config),
            "registered_name": _registered_key(type(obj))}


# -- from configs ------------------------------------------------------------------------------------
def clean_config(cls, config):
    """The config as keyword arguments for cls: Keras-only keys dropped, dtype policies flattened."""
    config = {k: v for k, v in config.items() if k not in _KERAS_ONLY_KEYS}
    dtype = config.get("dtype")
    if isinstance(dtype, dict):
        config["dtype"] = dtype.get("config", {}).get("name", "float32")
    return config


def _is_object_config(value):
    return isinstance(value, dict) and isinstance(value.get("class_name"), str) and "config" in value


def _function_from_name(name):
    obj = get_registered_object(name)
    if obj is None and ">" in name:
        obj = get_registered_object(name.split(">", 1)[1])
    if obj is None:
        obj = registry.builtin("activations", name) or registry.builtin("losses", name)
    if obj is not None:
        return obj
    raise ValueError(f"Unknown function {name!r}: register it with engine.saving.register_keras_serializable "
                     "or pass it in custom_objects=")


def _resolve_nested(config):
    """Turn nested initializer/regularizer/constraint configs and custom activations into objects, so the
    constructor receives them whatever their origin (engine, Keras, a registered custom class)."""
    out = dict(config)
    for key, value in config.items():
        if key.endswith(_NESTED_OBJECT_SUFFIXES) and _is_object_config(value):
            try:
                out[key] = deserialize_keras_object(value)
            except ValueError as e:
                if "Unknown class" in str(e):
                    raise
                # Keras may write settings engine's class does not take (a newer initializer option):
                # the layer's own initializers.get / regularizers.get decides what to keep.
        elif key in _ACTIVATION_KEYS:
            if _is_object_config(value):
                out[key] = deserialize_keras_object(value)
            elif isinstance(value, str) and registry.builtin("activations", value) is None:
                out[key] = _function_from_name(value)
    return out


def _lambda_config(config):
    """Only reached with safe_mode=False: a Lambda whose function is named (registered or in
    custom_objects) is rebuilt; stored bytecode is never run."""
    config = dict(config)
    for key in ("function", "output_shape", "mask"):
        value = config.get(key)
        if isinstance(value, dict) and value.get("class_name") == "__lambda__":
            raise ValueError(f"Lambda layer: its {key} is stored as Python bytecode, which engine never runs "
                             "even with safe_mode=False. Define the function in your code and load the model "
                             "with custom_objects={'<name>': function} after saving it as a named function.")
        if _is_object_config(value):
            config[key] = deserialize_keras_object(value)
        elif key == "function" and isinstance(value, str):
            config[key] = _function_from_name(value)
    return config


def deserialize_keras_object(config, custom_objects=None, safe_mode=None):
    """The object a config dictionary describes (plain values come back as they are).

    Args:
        config: a dictionary from `serialize_keras_object` (engine's or Keras's).
        custom_objects: optional {name: class or function} for custom objects.
        safe_mode: refuse Lambda layers (default: on, unless enable_unsafe_deserialization was called).
    """
    if config is None or isinstance(config, (int, float, bool, str)):
        return config
    if isinstance(config, list):
        return [deserialize_keras_object(c, custom_objects, safe_mode) for c in config]
    if not isinstance(config, dict):
        raise ValueError(f"Could not load an object from {config!r:.200}: expected a config dictionary")
    with custom_object_scope(custom_objects, safe_mode):
        if config.get("class_name") == "function" or config.get("registered_name") == "function":
            if not isinstance(config.get("config"), str):
                raise ValueError(f"Could not load a function from {config!r:.200}")
            return _function_from_name(config["config"])
        cls = resolve_class(config)
        inner = config.get("config", {})
        if not isinstance(inner, dict):
            raise ValueError(f"Could not build {config['class_name']}: its config is not a dictionary")
        inner = _resolve_nested(clean_config(cls, inner))
        if config["class_name"] == "Lambda":
            inner = _lambda_config(inner)
        if not isinstance(cls, type):  # a registered function named as a class
            return cls
        if hasattr(cls, "from_config"):
            try:
                obj = cls.from_config(inner)
            except TypeError as e:
                params = sorted(inspect.signature(cls.__init__).parameters)
                raise ValueError(f"Could not build {config.get('class_name')} from its config: {e}. "
                                 f"It takes: {', '.join(p for p in params if p != 'self')}") from None
        else:
            obj = cls(**inner)
        build_config = config.get("build_config")
        if build_config and hasattr(obj, "build_from_config"):
            obj.build_from_config(build_config)     # Keras's hook: a subclassed model's weights
        return obj


def deserialize_in_family(config, family, base, custom_objects=None):
    """Keras's `keras.<family>.deserialize`: the `base` instance a config dictionary describes.

    A config without a "module" is looked up in `family` first (so {"class_name": "Identity"}
    is the initializer, not the layer); registered and custom classes are found as everywhere.

    Args:
        config: a dictionary from `serialize_keras_object` (engine's or Keras's).
        family: "initializers", "regularizers" or "constraints".
        base: the class every result must be an instance of.
        custom_objects: optional {name: class} for custom classes.
    """
    if not _is_object_config(config):
        raise ValueError(f"{family}.deserialize: expected a config dictionary with 'class_name' and 'config', "
                         f"got {config!r:.200}")
    if config.get("module") is None:
        config = {**config, "module": f"keras.{family}"}
    obj = deserialize_keras_object(config, custom_objects=custom_objects)
    if isinstance(obj, type) and issubclass(obj, base):
        obj = obj()
    if not isinstance(obj, (base, types.FunctionType)):
        # (A registered plain function is accepted, as Keras accepts one: a custom regularizer.)
        raise ValueError(f"{family}.deserialize: {config['class_name']!r} is not an instance of {base.__name__} "
                         f"(got {type(obj).__name__})")
    return obj
