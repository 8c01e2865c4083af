"""Every Keras 3 name in the namespaces issue #17 gives this area (losses, metrics, optimizers,
schedules, random, tree, saving helpers) exists in engine at the same path and takes every named
parameter Keras's signature has, with the same defaults (checked where Keras is installed)."""
import inspect
import os

import pytest

import engine

NAMESPACES = ["losses", "metrics", "optimizers", "optimizers.schedules", "random", "tree"]
SAVING_NAMES = ["get_custom_objects", "custom_object_scope", "CustomObjectScope", "get_registered_name",
                "get_registered_object", "register_keras_serializable", "serialize_keras_object",
                "deserialize_keras_object", "save_model", "load_model", "save_weights", "load_weights",
                "KerasFileEditor"]
CONFIG_NAMES = ["floatx", "set_floatx", "epsilon", "set_epsilon", "image_data_format", "set_image_data_format",
                "enable_unsafe_deserialization"]
SKIP = {("optimizers", "legacy")}   # the TF 2 legacy optimizers module


def _resolve(root, path):
    for part in path.split("."):
        root = getattr(root, part)
    return root


def _parameters(obj):
    """Named parameters (name -> default), following **kwargs up the MRO as super().__init__ does."""
    if inspect.isclass(obj):
        params = {}
        for cls in obj.__mro__:
            init = cls.__dict__.get("__init__")
            if init is None:
                continue
            sig = inspect.signature(init)
            for name, p in sig.parameters.items():
                if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                    params.setdefault(name, p.default)
            if not any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
                break
        return params
    sig = inspect.signature(obj)
    return {n: p.default for n, p in sig.parameters.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    return pytest.importorskip("keras")


def _pairs(keras):
    for ns in NAMESPACES:
        theirs = _resolve(keras, ns)
        for name in sorted(n for n in dir(theirs) if not n.startswith("_")):
            if (ns, name) not in SKIP and not inspect.ismodule(getattr(theirs, name)):
                yield f"{ns}.{name}"
    for name in SAVING_NAMES:
        yield f"saving.{name}"
    for name in CONFIG_NAMES:
        yield f"config.{name}"


def test_every_name_exists_with_keras_parameters_and_defaults():
    keras = _keras()
    problems = []
    for path in _pairs(keras):
        theirs = _resolve(keras, path)
        try:
            mine = _resolve(engine, path)
        except AttributeError:
            problems.append(f"{path}: missing")
            continue
        if not callable(theirs) or theirs is getattr(keras.tree, "MAP_TO_NONE", None):
            continue
        keras_params, engine_params = _parameters(theirs), _parameters(mine)
        for name, default in keras_params.items():
            if name not in engine_params:
                problems.append(f"{path}: no parameter {name!r}")
            elif default is not inspect.Parameter.empty and engine_params[name] != default and \
                    not (default is None or engine_params[name] is None):
                problems.append(f"{path}: {name}={engine_params[name]!r}, Keras has {default!r}")
    assert not problems, "\n".join(problems)
