"""engine.ops.numpy: the numpy-like ops (keras.ops.numpy.*), gathered from the modules that define them.

ops/math.py has the arithmetic, comparisons, basic reductions, matmul, shape ops and dtype
conversion; ops/elementwise.py the other elementwise functions; ops/creation.py creation; ops/arrays.py
rearrangement; ops/reductions.py reductions, scans and order statistics; ops/contraction.py
einsum, tensordot, dot and the other products.
"""
from engine.ops.math import (  # noqa: F401
    add, subtract, multiply, divide, true_divide, power, maximum, minimum, floor_divide, mod, negative,
    square, sqrt, exp, log, log1p, abs, absolute, sin, cos, reciprocal, sign, clip, sum, mean, max, min,
    amax, amin, argmax, argmin, matmul, reshape, transpose, expand_dims, squeeze, concatenate, stack, take,
    where, zeros, ones, zeros_like, ones_like, equal, not_equal, less, less_equal, greater, greater_equal,
    logical_and, logical_or, logical_xor, logical_not, getitem as get_item,
)
from engine.ops.nn import tanh  # noqa: F401  (keras.ops.numpy.tanh is the activation)
from engine.ops.elementwise import *  # noqa: F401,F403
from engine.ops.creation import *  # noqa: F401,F403
from engine.ops.arrays import *  # noqa: F401,F403
from engine.ops.reductions import *  # noqa: F401,F403
from engine.ops.contraction import *  # noqa: F401,F403
from engine.ops.reductions import corrcoef  # noqa: F401


def __getattr__(name):
    # keras.ops.numpy.slogdet lives in linalg, loaded on first use.
    if name == "slogdet":
        from engine.ops.linalg import slogdet
        return slogdet
    raise AttributeError(f"module 'engine.ops.numpy' has no attribute {name!r}")
