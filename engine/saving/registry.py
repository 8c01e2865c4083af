"""Where saving finds engine's own classes and functions: a registry the families fill.

Each family module registers what it defines (`register_builtins("layers", globals())` at the
end of engine/layers/core.py, ...), so engine.saving never imports a layer, loss, metric or
optimizer module to look a name up: imports point down, from the families to this module.
A family loaded lazily (engine.layers.preprocessing) registers "module:attribute" entries for
its names instead, and the module is imported the first time a config names one of them.

Entries are kept by family, the part of a Keras module path after "keras." ("layers",
"initializers", "optimizers", "schedules", "losses", "regularizers", "constraints", "metrics",
"models", and "activations" for functions), so that the Identity initializer and the Identity
layer, or the MeanSquaredError loss and metric, stay apart. Each class also records the module
path Keras 3 writes for it ("keras.layers", "keras.src.models.functional", ...).

This module imports nothing from engine: every family can import it.
"""
import importlib

# family -> {name: class, function or "module:attribute" (loaded on first use)}
_BUILTINS = {}
# class -> the "module" Keras 3 writes in its config
_PACKAGES = {}
# The order a config without a usable "module" is looked up in (Keras's top-level namespace).
FAMILY_ORDER = ("models", "layers", "optimizers", "schedules", "initializers", "regularizers", "constraints",
                "losses", "metrics")


def register_builtins(family, namespace, package=None):
    """Register the public classes a module defines (aliases included) under a family.

    Args:
        family: the family name ("layers", "losses", ...).
        namespace: the module's `globals()`; only classes whose `__module__` is this module's
            and whose names do not start with "_" are registered.
        package: the module path Keras writes for them (default "keras.<family>").
    """
    module = namespace["__name__"]
    table = _BUILTINS.setdefault(family, {})
    for name, obj in list(namespace.items()):
        if isinstance(obj, type) and not name.startswith("_") and obj.__module__ == module:
            table.setdefault(name, obj)
            _PACKAGES.setdefault(obj, package or f"keras.{family}")


def register_builtin(obj, family, package=None, name=None):
    """Register one class or function under a family.

    Args:
        obj: the class or function.
        family: the family name.
        package: the module path Keras writes for a class (default "keras.<family>").
        name: the name to register it under (default its `__name__`).
    """
    _BUILTINS.setdefault(family, {})[name or obj.__name__] = obj
    if isinstance(obj, type):
        _PACKAGES[obj] = package or f"keras.{family}"


def register_functions(family, functions):
    """Register functions by the names configs use for them (activations, loss functions).

    Args:
        family: "activations" or "losses".
        functions: {name: function}; aliases map to the same function.
    """
    _BUILTINS.setdefault(family, {}).update(functions)


def register_lazy(family, entries):
    """Register names whose module is imported only when a config (or a lookup) needs them.

    Args:
        family: the family name.
        entries: {name: "engine.module.path:attribute"}.
    """
    table = _BUILTINS.setdefault(family, {})
    for name, target in entries.items():
        table.setdefault(name, target)


def _materialize(table, name):
    value = table[name]
    if isinstance(value, str):
        module, _, attribute = value.partition(":")
        value = getattr(importlib.import_module(module), attribute)
        table[name] = value         # the imported module registered it too; keep the object
    return value


def builtin(family, name):
    """The object registered under name in a family, importing its module if it is lazy (None if
    the family has no such name).

    Args:
        family: the family name.
        name: the registered name.
    """
    table = _BUILTINS.get(family, {})
    return _materialize(table, name) if name in table else None


def builtin_names(family=None):
    """The names registered in one family, or the class names of all of FAMILY_ORDER's (nothing is
    imported).

    Args:
        family: a family name, or None for the class families.
    """
    if family is not None:
        return set(_BUILTINS.get(family, {}))
    return {name for fam in FAMILY_ORDER for name in _BUILTINS.get(fam, {})}


def builtin_any(name):
    """The class named `name` in the first family of FAMILY_ORDER that has it (None if none does):
    how a config without a Keras module path is resolved."""
    for family in FAMILY_ORDER:
        obj = builtin(family, name)
        if obj is not None:
            return obj
    return None


def builtin_function_name(fn, family):
    """The name a registered function of the family is written under (None if it is not one).

    Args:
        fn: the function.
        family: "activations" or "losses".
    """
    name = getattr(fn, "__name__", None)
    table = _BUILTINS.get(family, {})
    if name in table and table[name] is fn:
        return name
    return None


def keras_package(cls):
    """The module path Keras 3 writes for an engine class: its own registration, else that of the
    nearest registered base class (a user's Layer subclass is written as "keras.layers"); None
    for a class with no registered base."""
    for base in cls.__mro__:
        package = _PACKAGES.get(base)
        if package is not None:
            return package
    return None
