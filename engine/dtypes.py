"""Dtype names and Keras 3's type promotion (keras.backend.result_type).

Keras promotes along a lattice (after JAX's) instead of numpy's rules: a Python
number is a *weak* type that takes the other operand's dtype (float32 * 2.0
stays float32, int8 + 1 stays int8), and integers meeting floats give the float
(int32 + float32 is float32, where numpy says float64).  engine keeps 64-bit
types as they are, as Keras does on its TensorFlow backend, so float64 code
(gradient checks) stays float64.
"""
import functools

import numpy as np

from engine import config

# Each dtype's immediate successors on the promotion lattice; a type promotes to
# the least type reachable from all operands.
_LATTICE = {
    "bool": ("int",),
    "int": ("uint8", "int8"),
    "uint8": ("int16", "uint16"),
    "uint16": ("int32", "uint32"),
    "uint32": ("int64", "uint64"),
    "uint64": ("float",),
    "int8": ("int16",),
    "int16": ("int32",),
    "int32": ("int64",),
    "int64": ("float",),
    "float": ("bfloat16", "float16"),
    "bfloat16": ("float32",),
    "float16": ("float32",),
    "float32": ("float64",),
    "float64": (),
}


def _reachable(node):
    seen, todo = {node}, [node]
    while todo:
        for succ in _LATTICE[todo.pop()]:
            if succ not in seen:
                seen.add(succ)
                todo.append(succ)
    return frozenset(seen)


_UPPER = {node: _reachable(node) for node in _LATTICE}


_NAMES = {}     # dtype (as given) -> its name: numpy's dtype.name runs Python code every call


def standardize_dtype(dtype):
    """The canonical name of a dtype ('float32', 'int64', 'bool', ...) from a numpy dtype, a name,
    a Python type (int -> 'int32', float -> 'float32') or None (floatx)."""
    if dtype is None:
        return config.floatx()
    try:
        return _NAMES[dtype]
    except (KeyError, TypeError):
        pass
    name = _standardize(dtype)
    try:
        _NAMES[dtype] = name
    except TypeError:
        pass
    return name


def _standardize(dtype):
    if dtype is float:
        return "float32"
    if dtype is int:
        return "int32"
    if dtype is bool:
        return "bool"
    if dtype in ("string", str):
        return "string"
    name = np.dtype(dtype).name
    if name.startswith(("str", "bytes")) or name == "object":
        return "string"
    return name


def _node(value):
    """The lattice node of an operand: a Python number (or the type int / float) is a weak type,
    anything else stands for its dtype."""
    kind = type(value)   # exact types: numpy's float64 scalar subclasses float but has a dtype
    if kind is bool or value is bool:
        return "bool"
    if kind is int or value is int:
        return "int"
    if kind is float or value is float:
        return "float"
    dtype = getattr(value, "dtype", None)
    return standardize_dtype(dtype if dtype is not None else value)


@functools.lru_cache(maxsize=512)
def _least_upper_bound(nodes):
    common = frozenset.intersection(*(_UPPER[n] for n in nodes))
    # The least element of the common upper bounds is the one all others are reachable from.
    least = [c for c in common if common <= _UPPER[c]]
    if len(least) != 1:
        raise ValueError(f"No implicit dtype promotion for {sorted(nodes)}; cast the inputs explicitly")
    return least[0]


def result_type(*operands):
    """The dtype (a name) of an elementwise op on `operands`, by Keras 3's promotion rules.

    Operands are arrays, tensors, Variables, dtypes or Python numbers (weak types).
    """
    if not operands:
        return config.floatx()
    nodes = frozenset(_node(x) for x in operands)
    for n in nodes:
        if n not in _LATTICE:
            raise ValueError(f"result_type: dtype {n!r} cannot take part in arithmetic")
    node = next(iter(nodes)) if len(nodes) == 1 else _least_upper_bound(nodes)
    if node == "int":
        return "int32"
    if node == "float":
        return config.floatx()
    return node
