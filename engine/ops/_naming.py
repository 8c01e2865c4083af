"""Naming the public functions that op factories build."""


def named(name, doc):
    """A decorator giving a factory-made function its public name and docstring."""
    def apply(fn):
        fn.__name__ = fn.__qualname__ = name
        fn.__doc__ = doc
        return fn
    return apply
