"""Argument checks shared by the ops: each raises a ValueError that names the op and the argument."""
import numpy as np


def axis_arg(op, axis, ndim, allow_none=True, allow_tuple=True):
    """`axis` (an int, a sequence of ints or None) made non-negative, or a ValueError naming `op`."""
    if axis is None:
        if allow_none:
            return None
        raise ValueError(f"{op}: axis must be an integer, got None")
    if isinstance(axis, (list, tuple)):
        if not allow_tuple:
            raise ValueError(f"{op}: axis must be a single integer, got {axis!r}")
        axes = tuple(axis_arg(op, a, ndim, allow_none=False, allow_tuple=False) for a in axis)
        if len(set(axes)) != len(axes):
            raise ValueError(f"{op}: repeated axis in {axis!r}")
        return tuple(sorted(axes))
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise ValueError(f"{op}: axis must be an integer, got {axis!r}")
    if not -max(ndim, 1) <= axis < max(ndim, 1):
        raise ValueError(f"{op}: axis {axis} is out of range for a tensor of rank {ndim} "
                         f"(valid axes are {-max(ndim, 1)} to {max(ndim, 1) - 1})")
    return int(axis) % max(ndim, 1)


def min_rank(op, x, rank, what="x"):
    """A ValueError unless x has at least `rank` axes."""
    if np.ndim(x) < rank:
        raise ValueError(f"{op}: {what} must have at least {rank} axes, got shape {np.shape(x)}")


def positive_int(op, name, value, allow_zero=False):
    """value as an int, or a ValueError unless it is a positive (or non-negative) integer."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or \
            value < (0 if allow_zero else 1):
        kind = "a non-negative" if allow_zero else "a positive"
        raise ValueError(f"{op}: {name} must be {kind} integer, got {value!r}")
    return int(value)
