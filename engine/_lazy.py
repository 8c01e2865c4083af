"""Names of a package that load on first use (PEP 562), so `import engine` stays cheap.

A package lists {public name: "module" or "module:attribute"} and installs the two hooks:

    _LAZY = lazy_table(__name__, {"engine.ops.linalg": "qr svd", "": "linalg"})
    __getattr__, __dir__ = lazy_attributes(globals(), _LAZY)

`package.Name` (and `from package import Name`) then imports the module the first time and
keeps the value in the package, so later lookups cost nothing; `dir(package)` lists the lazy
names beside the loaded ones.
"""
import importlib


def load(target):
    """The object a "module" or "module:attribute" string names, importing the module."""
    module, _, attribute = target.partition(":")
    value = importlib.import_module(module)
    return getattr(value, attribute) if attribute else value


def lazy_table(package, spec):
    """{public name: target} from a compact listing by module.

    Args:
        package: the package's name; the "" entry lists its submodules.
        spec: {module: "name name alias=attribute ..."}: each name is the module's attribute of
            that name, `alias=attribute` exposes the attribute under another name.

    Returns:
        {public name: "module" or "module:attribute"}.
    """
    table = {}
    for module, names in spec.items():
        for word in names.split():
            name, _, attribute = word.partition("=")
            if module:
                table[name] = f"{module}:{attribute or name}"
            else:
                table[name] = f"{package}.{attribute or name}"
    return table


def public_names(namespace, table):
    """`__all__` for a package with lazy names: its public functions and classes, loaded or lazy
    (submodules left out, so `from engine.ops import *` does not bind `numpy` or `math`).

    Args:
        namespace: the package's `globals()`.
        table: its lazy table.
    """
    plumbing = ("engine._lazy", "engine.saving.registry")     # the package's own machinery
    loaded = [name for name, value in namespace.items()
              if not name.startswith("_") and not isinstance(value, type(importlib))
              and getattr(value, "__module__", None) not in plumbing]
    return sorted(set(loaded) | {name for name, target in table.items() if ":" in target})


def lazy_attributes(namespace, table):
    """The package's `__getattr__` and `__dir__` for the lazy names in table.

    Args:
        namespace: the package's `globals()` (loaded names are stored there).
        table: {public name: "module" or "module:attribute"}.

    Returns:
        (__getattr__, __dir__).
    """
    package = namespace["__name__"]

    def __getattr__(name):
        target = table.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = load(target)
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
