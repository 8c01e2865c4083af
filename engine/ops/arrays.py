"""Rearranging tensors' elements (keras.ops.numpy's shape ops: flip, roll, tile, split, pad, ...).

Every op that only moves, copies or drops elements (flip, roll, tile, triu, diagonal, pad's
reflect / edge / wrap modes, take_along_axis, ...) is one `_rearrange` op: its gradient is the
same rearrangement run on the element indices, with the output gradient summed back onto the
indices it came from.  Ops that are sums of such pieces (split, stack, hstack) compose the
recorded getitem / concatenate ops.
"""
import builtins

import numpy as np

from engine import config
from engine.autodiff import differentiable
from engine.dtypes import result_type, standardize_dtype
from engine.ops._checks import axis_arg, min_rank, positive_int
from engine.ops._util import to_array, wrap
from engine.ops import math as m


def operand_tensor(x):
    """x as an engine tensor (Tensors as they are; Python data converted as convert_to_tensor does)."""
    x = m._operand(x)
    return m.convert_to_tensor(x) if not hasattr(x, "dtype") else x


# -- the one gradient for element rearrangements -------------------------------------------------
@differentiable
def _rearrange(x, fn=None):
    # np.array copies: the result must not be a view of an input (a Variable's array may change).
    out = np.array(fn(x))

    def vjp(g, needs):
        # Run the same rearrangement on 1-based element numbers; 0 marks a filled-in element.
        source = fn(np.arange(1, x.size + 1, dtype=np.int64).reshape(x.shape))
        summed = np.bincount(np.asarray(source).reshape(-1), weights=np.reshape(g, -1), minlength=x.size + 1)
        return (summed[1:].reshape(x.shape).astype(x.dtype),)
    return out, vjp


def rearrange_with(x, fn):
    """Apply `fn` (a numpy function that only moves, repeats or zero-fills elements, the same way
    for any dtype) to x as one recorded op."""
    return _rearrange(operand_tensor(x), fn=fn)


def shape_arg(op, shape):
    """A shape argument (an int or ints) as a tuple; ValueError naming op for negative sizes."""
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(d) for d in shape)
    if any(d < 0 for d in shape):
        raise ValueError(f"{op}: shape must not have negative sizes, got {shape}")
    return shape


# -- rearrangements ------------------------------------------------------------------------------
def flip(x, axis=None):
    """x with the order of elements reversed along `axis` (an int, tuple, or None for all axes)."""
    x = operand_tensor(x)
    axis = axis_arg("flip", axis, x.ndim)
    return rearrange_with(x, lambda a: np.flip(a, axis))


def fliplr(x):
    """x reversed along axis 1 (left/right); x needs at least 2 axes."""
    x = operand_tensor(x)
    min_rank("fliplr", x, 2)
    return flip(x, 1)


def flipud(x):
    """x reversed along axis 0 (up/down)."""
    x = operand_tensor(x)
    min_rank("flipud", x, 1)
    return flip(x, 0)


def roll(x, shift, axis=None):
    """x with elements shifted `shift` places along `axis` (wrapping around); axis=None rolls
    the flattened tensor and restores the shape.

    Args:
        x: input tensor.
        shift: an int, or a tuple of ints (one per axis in `axis`).
        axis: an int, a tuple of ints, or None.
    """
    x = operand_tensor(x)
    if axis is not None:
        for a in (axis if isinstance(axis, (list, tuple)) else (axis,)):
            axis_arg("roll", a, x.ndim)
    shift = tuple(int(s) for s in shift) if isinstance(shift, (list, tuple)) else int(to_array(shift))
    axis = tuple(axis) if isinstance(axis, list) else axis
    return rearrange_with(x, lambda a: np.roll(a, shift, axis))


def rot90(array, k=1, axes=(0, 1)):
    """x rotated by 90 degrees k times in the plane of `axes` (from the first axis towards the second).

    Args:
        array: input tensor with at least 2 axes.
        k: number of quarter turns (negative turns the other way).
        axes: the two axes of the plane.
    """
    x = operand_tensor(array)
    min_rank("rot90", x, 2, "array")
    if len(axes) != 2:
        raise ValueError(f"rot90: axes must be two axes, got {axes!r}")
    a0, a1 = axis_arg("rot90", axes[0], x.ndim), axis_arg("rot90", axes[1], x.ndim)
    if a0 == a1:
        raise ValueError(f"rot90: the two axes must differ, got {axes!r}")
    return rearrange_with(x, lambda a: np.rot90(a, int(k), axes=(a0, a1)))


def swapaxes(x, axis1, axis2):
    """x with axes axis1 and axis2 interchanged."""
    x = operand_tensor(x)
    perm = list(range(x.ndim))
    a1, a2 = axis_arg("swapaxes", axis1, x.ndim), axis_arg("swapaxes", axis2, x.ndim)
    perm[a1], perm[a2] = perm[a2], perm[a1]
    return m.transpose(x, perm)


def moveaxis(x, source, destination):
    """x with axes moved from `source` to `destination` (ints or equal-length sequences of ints),
    the other axes keeping their order."""
    x = operand_tensor(x)
    src = [source] if isinstance(source, (int, np.integer)) else list(source)
    dst = [destination] if isinstance(destination, (int, np.integer)) else list(destination)
    if len(src) != len(dst):
        raise ValueError(f"moveaxis: source {source!r} and destination {destination!r} must have the "
                         f"same number of axes")
    src = [axis_arg("moveaxis", a, x.ndim) for a in src]
    dst = [axis_arg("moveaxis", a, x.ndim) for a in dst]
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise ValueError(f"moveaxis: repeated axes in source {source!r} or destination {destination!r}")
    rest = [a for a in range(x.ndim) if a not in src]
    perm = [None] * x.ndim
    for s, d in zip(src, dst):
        perm[d] = s
    it = iter(rest)
    perm = [p if p is not None else next(it) for p in perm]
    return m.transpose(x, perm)


def ravel(x):
    """x flattened to one axis (row-major order)."""
    return m.reshape(operand_tensor(x), (-1,))


def broadcast_to(x, shape):
    """x broadcast to `shape` (numpy's broadcasting rules; the gradient sums the copies)."""
    x = operand_tensor(x)
    shape = shape_arg("broadcast_to", shape)
    try:
        np.broadcast_shapes(x.shape, shape)
        if len(shape) < x.ndim or np.broadcast_shapes(x.shape, shape) != shape:
            raise ValueError
    except ValueError:
        raise ValueError(f"broadcast_to: a tensor of shape {x.shape} cannot be broadcast to {shape}") from None
    return rearrange_with(x, lambda a: np.broadcast_to(a, shape))


def tile(x, repeats):
    """x repeated `repeats` times along each axis (an int, or one count per axis; a shorter
    tuple applies to the last axes, a longer one adds leading axes)."""
    x = operand_tensor(x)
    reps = (repeats,) if isinstance(repeats, (int, np.integer)) else tuple(int(r) for r in to_array(repeats).reshape(-1))
    if any(r < 0 for r in reps):
        raise ValueError(f"tile: repeats must be non-negative, got {repeats!r}")
    return rearrange_with(x, lambda a: np.tile(a, reps))


def triu(x, k=0):
    """x with the elements below the k-th diagonal of its last two axes set to zero."""
    x = operand_tensor(x)
    min_rank("triu", x, 1)
    return rearrange_with(x, lambda a: np.triu(a, int(k)))


def tril(x, k=0):
    """x with the elements above the k-th diagonal of its last two axes set to zero."""
    x = operand_tensor(x)
    min_rank("tril", x, 1)
    return rearrange_with(x, lambda a: np.tril(a, int(k)))


def diag(x, k=0):
    """For a 1-D x, the square matrix with x on its k-th diagonal; for a 2-D x, its k-th diagonal."""
    x = operand_tensor(x)
    if x.ndim not in (1, 2):
        raise ValueError(f"diag: x must be 1-D or 2-D, got shape {x.shape}")
    return rearrange_with(x, lambda a: np.diag(a, int(k)))


def diagflat(x, k=0):
    """The square matrix with the flattened x on its k-th diagonal."""
    return rearrange_with(operand_tensor(x), lambda a: np.diagflat(a, int(k)))


def diagonal(x, offset=0, axis1=0, axis2=1):
    """The diagonal at `offset` of the planes spanned by axis1 and axis2, as the last axis."""
    x = operand_tensor(x)
    min_rank("diagonal", x, 2)
    a1, a2 = axis_arg("diagonal", axis1, x.ndim), axis_arg("diagonal", axis2, x.ndim)
    if a1 == a2:
        raise ValueError(f"diagonal: axis1 and axis2 must differ, got {axis1} and {axis2}")
    return rearrange_with(x, lambda a: np.diagonal(a, int(offset), a1, a2))


def take_along_axis(x, indices, axis=None):
    """Elements of x picked by `indices` along `axis` (axis=None: of the flattened x); indices
    broadcast against x on the other axes; negative indices count from the end.

    Args:
        x: input tensor.
        indices: integer tensor of x's rank (or 1-D for axis=None).
        axis: the axis to pick along.
    """
    x = operand_tensor(x)
    idx = to_array(indices)
    if idx.dtype.kind not in "iu":
        raise ValueError(f"take_along_axis: indices must be integers, got dtype {idx.dtype}")
    if axis is None:
        x = ravel(x)
        axis = 0
    axis = axis_arg("take_along_axis", axis, x.ndim)
    if idx.ndim != x.ndim:
        raise ValueError(f"take_along_axis: indices of shape {idx.shape} must have the rank of x "
                         f"(shape {x.shape})")
    size = x.shape[axis]
    if idx.size and (idx.max() >= size or idx.min() < -size):
        raise IndexError(f"take_along_axis: indices must lie in [{-size}, {size}) along axis {axis} "
                         f"of a tensor of shape {x.shape}; got {idx.min()} to {idx.max()}")
    # Broadcast x and indices against each other everywhere but along `axis`.
    x_shape = list(np.broadcast_shapes(tuple(1 if i == axis else d for i, d in enumerate(x.shape)),
                                       tuple(1 if i == axis else d for i, d in enumerate(idx.shape))))
    idx_shape = list(x_shape)
    x_shape[axis], idx_shape[axis] = x.shape[axis], idx.shape[axis]
    idx = np.broadcast_to(idx, idx_shape)
    if tuple(x_shape) != x.shape:
        x = broadcast_to(x, x_shape)
    return rearrange_with(x, lambda a: np.take_along_axis(a, idx, axis))


# -- joining and splitting ------------------------------------------------------------------------
def append(x1, x2, axis=None):
    """x2 appended to x1 along `axis` (axis=None: both flattened first)."""
    x1, x2 = operand_tensor(x1), operand_tensor(x2)
    if axis is None:
        x1, x2 = ravel(x1), ravel(x2)
        axis = 0
    return _concat_promoted("append", [x1, x2], axis)


def _concat_promoted(op, xs, axis):
    xs = [operand_tensor(v) for v in xs]
    if not xs:
        raise ValueError(f"{op}: needs at least one tensor")
    ndim = xs[0].ndim
    for v in xs:
        if v.ndim != ndim:
            raise ValueError(f"{op}: all tensors need the same rank, got shapes {[t.shape for t in xs]}")
    axis = axis_arg(op, axis, ndim)
    for v in xs:
        if v.shape[:axis] + v.shape[axis + 1:] != xs[0].shape[:axis] + xs[0].shape[axis + 1:]:
            raise ValueError(f"{op}: shapes {[t.shape for t in xs]} differ off the joining axis {axis}")
    dtype = result_type(*xs)
    return m.concatenate([m.cast(v, dtype) for v in xs], axis=axis)


def hstack(xs):
    """The tensors joined along axis 1 (axis 0 for 1-D tensors)."""
    xs = [operand_tensor(v) for v in xs]
    return _concat_promoted("hstack", xs, 0 if xs and xs[0].ndim == 1 else 1)


def vstack(xs):
    """The tensors joined along axis 0, 1-D tensors taken as rows."""
    xs = [operand_tensor(v) for v in xs]
    return _concat_promoted("vstack", [m.reshape(v, (1, -1)) if v.ndim < 2 else v for v in xs], 0)


def dstack(xs):
    """The tensors joined along axis 2 (1-D tensors as (1, N, 1), 2-D as (M, N, 1))."""
    xs = [operand_tensor(v) for v in xs]
    shaped = [m.reshape(v, (1, -1, 1)) if v.ndim < 2 else (m.expand_dims(v, -1) if v.ndim == 2 else v) for v in xs]
    return _concat_promoted("dstack", shaped, 2)


def _split_bounds(op, size, indices_or_sections, exact):
    if isinstance(indices_or_sections, (int, np.integer)):
        n = positive_int(op, "indices_or_sections", indices_or_sections)
        if exact and size % n:
            raise ValueError(f"{op}: an axis of size {size} cannot be split into {n} equal sections; "
                             f"pass split points instead, or use array_split")
        q, r = divmod(size, n)
        sizes = [q + 1] * r + [q] * (n - r)
        return list(np.cumsum([0] + sizes))
    points = [int(p) for p in to_array(indices_or_sections).reshape(-1)]
    points = [builtins.min(builtins.max(p + size if p < 0 else p, 0), size) for p in points]
    return [0] + points + [size]


@differentiable
def _pieces(x, ranges=None, axis=0, squeeze=False):
    """The pieces x[lo:hi] along `axis` for each (lo, hi) of `ranges` (x[lo] with squeeze, for
    unstack) as one op with one output per piece; the backward pass adds each piece's gradient
    into one array, so cutting into n pieces costs O(size), not O(n * size)."""
    lead = (slice(None),) * axis
    keys = [lead + ((lo if squeeze else slice(lo, hi)),) for lo, hi in ranges]
    outs = tuple(np.array(x[k]) for k in keys)

    def vjp(grads, needs):
        gx = np.zeros_like(x)
        for k, g in zip(keys, grads):
            if g is not None:
                gx[k] += g          # unsorted split points can make pieces overlap
        return (gx,)
    return outs, vjp


def _split(op, x, indices_or_sections, axis, exact=True):
    x = operand_tensor(x)
    axis = axis_arg(op, axis, x.ndim, allow_none=False, allow_tuple=False)
    bounds = _split_bounds(op, x.shape[axis], indices_or_sections, exact)
    # numpy's pieces: x[b_i : b_{i+1}], empty where the points decrease.
    ranges = tuple((lo, builtins.max(lo, hi)) for lo, hi in zip(bounds[:-1], bounds[1:]))
    return list(_pieces(x, ranges=ranges, axis=axis))


def split(x, indices_or_sections, axis=0):
    """x split along `axis` into a list of tensors.

    Args:
        x: input tensor.
        indices_or_sections: an int N (N equal parts; the axis must divide evenly) or a list of
            split points.
        axis: the axis to split.
    """
    return _split("split", x, indices_or_sections, axis)


def array_split(x, indices_or_sections, axis=0):
    """x split along `axis` into `indices_or_sections` parts whose sizes differ by at most one
    (the first ones larger), or at the given split points."""
    return _split("array_split", x, indices_or_sections, axis, exact=False)


def hsplit(x, indices_or_sections):
    """split along axis 1 (axis 0 for 1-D tensors)."""
    x = operand_tensor(x)
    return split(x, indices_or_sections, axis=0 if x.ndim == 1 else 1)


def vsplit(x, indices_or_sections):
    """split along axis 0 (x needs at least 2 axes)."""
    x = operand_tensor(x)
    min_rank("vsplit", x, 2)
    return split(x, indices_or_sections, axis=0)


def dsplit(x, indices_or_sections):
    """split along axis 2 (x needs at least 3 axes)."""
    x = operand_tensor(x)
    min_rank("dsplit", x, 3)
    return split(x, indices_or_sections, axis=2)


def unstack(x, num=None, axis=0):
    """The slices of x along `axis`, as a list of tensors of rank one less.

    Args:
        x: input tensor.
        num: the expected number of slices (checked when given).
        axis: the axis to unstack along.
    """
    x = operand_tensor(x)
    axis = axis_arg("unstack", axis, x.ndim, allow_none=False, allow_tuple=False)
    if num is not None and num != x.shape[axis]:
        raise ValueError(f"unstack: num={num} but axis {axis} of shape {x.shape} has {x.shape[axis]} slices")
    if x.shape[axis] == 0:
        return []
    return list(_pieces(x, ranges=tuple((i, i + 1) for i in range(x.shape[axis])), axis=axis, squeeze=True))


# -- pad in every mode --------------------------------------------------------------------------------
_GATHER_PAD_MODES = ("edge", "reflect", "symmetric", "wrap", "circular", "empty")
_STAT_PAD_MODES = ("maximum", "minimum", "mean", "median", "linear_ramp")


def _pad_widths(x, pad_width):
    try:
        width = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (x.ndim, 2))
    except ValueError:
        raise ValueError(f"pad: pad_width {pad_width!r} does not fit a tensor of rank {x.ndim}; give "
                         f"one (before, after) pair per axis") from None
    if (width < 0).any():
        raise ValueError(f"pad: pad_width must be non-negative, got {pad_width!r}")
    return tuple((int(a), int(b)) for a, b in width)


def pad(x, pad_width, mode="constant", constant_values=None):
    """x padded with `pad_width` elements before and after each axis.

    Args:
        x: input tensor.
        pad_width: ((before, after), ...) per axis, or one pair / int for every axis.
        mode: "constant" (constant_values, default 0), "edge", "reflect", "symmetric", "wrap" /
            "circular", "maximum", "minimum", "mean", "median", "linear_ramp" (from 0 to the
            edge) or "empty" (engine fills it as "constant" with 0); numpy's meanings.
        constant_values: the fill value for mode "constant" (an error for the other modes).
    """
    x = operand_tensor(x)
    width = _pad_widths(x, pad_width)
    if constant_values is not None and mode != "constant":
        raise ValueError(f"pad: constant_values can only be given with mode='constant', got mode={mode!r}")
    if mode == "constant" or mode == "empty":
        return m._pad(x, pad_width=width, constant_values=0 if constant_values is None else constant_values)
    if mode in _GATHER_PAD_MODES:
        np_mode = "wrap" if mode == "circular" else mode
        for axis, (lo, hi) in enumerate(width):
            if mode in ("reflect", "wrap", "circular") and (lo or hi) and x.shape[axis] == 0:
                raise ValueError(f"pad: mode {mode!r} cannot pad the empty axis {axis} of shape {x.shape}")
        return rearrange_with(x, lambda a: np.pad(a, width, mode=np_mode))
    if mode in _STAT_PAD_MODES:
        return _pad_by_statistic(x, width, mode)
    raise ValueError(f"pad: unknown mode {mode!r}; use one of 'constant', {', '.join(map(repr, _GATHER_PAD_MODES + _STAT_PAD_MODES))}")


def _pad_by_statistic(x, width, mode):
    """The statistic modes, axis by axis as numpy does: each axis's pads are filled from the
    tensor already padded along the earlier axes, composed of recorded ops."""
    from engine.ops import reductions as red
    reducers = {"maximum": m.max, "minimum": m.min, "mean": m.mean, "median": red.median}
    for axis, (lo, hi) in enumerate(width):
        if not (lo or hi):
            continue
        if x.shape[axis] == 0:
            raise ValueError(f"pad: mode {mode!r} cannot pad the empty axis {axis} of shape {x.shape}")
        lead = (slice(None),) * axis
        ramp_shape = [1] * x.ndim
        pieces = []
        for count, before in ((lo, True), (hi, False)):
            if not count:
                continue
            target = list(x.shape)
            target[axis] = ramp_shape[axis] = count
            if mode == "linear_ramp":
                # From 0 at the outer end towards the edge value (numpy's ramp, edge excluded).
                edge = m.getitem(x, lead + (slice(0, 1) if before else slice(-1, None),))
                steps = np.arange(count) / count if before else 1.0 - np.arange(1, count + 1) / count
                work = x.dtype if x.dtype.kind == "f" else np.float64
                piece = m.multiply(m.cast(edge, work), steps.astype(work).reshape(ramp_shape))
            else:
                piece = reducers[mode](x, axis=axis, keepdims=True)
            if piece.dtype != x.dtype:   # integer tensors: numpy rounds the statistic
                piece = m.cast(wrap(np.round(to_array(piece))), x.dtype)
            pieces.append((before, broadcast_to(piece, target)))
        x = m.concatenate([p for b, p in pieces if b] + [x] + [p for b, p in pieces if not b], axis=axis)
    return x


__all__ = [
    "flip", "fliplr", "flipud", "roll", "rot90", "swapaxes", "moveaxis", "ravel", "broadcast_to", "tile", "triu",
    "tril", "diag", "diagflat", "diagonal", "take_along_axis", "append", "hstack", "vstack", "dstack",
    "split", "array_split", "hsplit", "vsplit", "dsplit", "unstack", "pad",
]


# -- repeat, select and small helpers -------------------------------------------------------------------
def repeat(x, repeats, axis=None):
    """Each element of x repeated `repeats` times along `axis` (axis=None: of the flattened x).

    Args:
        x: input tensor.
        repeats: an int, or one count per element along the axis.
        axis: the axis to repeat along (None flattens first).
    """
    x = operand_tensor(x)
    if axis is None:
        x, axis = ravel(x), 0
    axis = axis_arg("repeat", axis, x.ndim, allow_none=False, allow_tuple=False)
    if isinstance(repeats, (int, np.integer)) or np.ndim(to_array(repeats)) == 0:
        count = int(to_array(repeats))
        if count < 0:
            raise ValueError(f"repeat: repeats must be non-negative, got {count}")
        if x.dtype.kind == "f":
            return m._repeat(x, repeats=count, axis=axis)
        return wrap(np.repeat(to_array(x), count, axis=axis))
    counts = np.asarray(to_array(repeats), dtype=np.int64).reshape(-1)
    if counts.shape[0] not in (1, x.shape[axis]) or (counts < 0).any():
        raise ValueError(f"repeat: repeats must be non-negative, one per element of axis {axis} "
                         f"(length {x.shape[axis]}), got {counts.shape[0]} counts")
    return rearrange_with(x, lambda a: np.repeat(a, counts, axis=axis))


def select(condlist, choicelist, default=0):
    """Elementwise, the entry of the first choice whose condition holds (`default` where none does).

    Args:
        condlist: a list of bool tensors.
        choicelist: a list of tensors, one per condition (broadcast together).
        default: the value where no condition holds.
    """
    if len(condlist) != len(choicelist):
        raise ValueError(f"select: {len(condlist)} conditions for {len(choicelist)} choices; give one each")
    if not condlist:
        raise ValueError("select: condlist must not be empty")
    out = default
    for cond, choice in reversed(list(zip(condlist, choicelist))):
        c = to_array(operand_tensor(cond))
        if c.dtype != np.bool_:
            raise ValueError(f"select: conditions must be bool tensors, got dtype {c.dtype}")
        out = m.where(c, choice, out)
    return out if hasattr(out, "dtype") else m.convert_to_tensor(out)


def vander(x, N=None, increasing=False):
    """The Vandermonde matrix of the 1-D x: columns x**(N-1), ..., x**0 (or increasing powers).

    Args:
        x: 1-D tensor.
        N: number of columns (default len(x)).
        increasing: whether the powers increase left to right.
    """
    x = operand_tensor(x)
    if x.ndim != 1:
        raise ValueError(f"vander: x must be 1-D, got shape {x.shape}")
    n = x.shape[0] if N is None else positive_int("vander", "N", N, allow_zero=True)
    powers = np.arange(n) if increasing else np.arange(n - 1, -1, -1)
    if x.dtype.kind != "f":
        return wrap(np.vander(to_array(x), n, increasing=increasing))
    cols = [m.power(x, float(p)) if p else m.ones_like(x) for p in powers]
    return m.stack(cols, axis=1) if cols else wrap(np.zeros((x.shape[0], 0), x.dtype))


def unravel_index(indices, shape):
    """The multi-dimensional indices of flat `indices` into a tensor of `shape` (a tuple of int32 tensors)."""
    idx = to_array(operand_tensor(indices))
    shape = shape_arg("unravel_index", shape)
    size = int(np.prod(shape))
    if idx.size and (idx.min() < 0 or idx.max() >= size):
        raise ValueError(f"unravel_index: indices must lie in [0, {size}) for shape {shape}")
    return tuple(wrap(i.astype(np.int32)) for i in np.unravel_index(idx, shape))


def isin(x1, x2, assume_unique=False, invert=False):
    """True (bool) where an element of x1 occurs in x2 (False where it does, with invert=True)."""
    return wrap(np.isin(to_array(operand_tensor(x1)), to_array(operand_tensor(x2)), assume_unique=assume_unique, invert=invert))


def ndim(x):
    """The number of axes of x (a Python int)."""
    return int(np.ndim(to_array(x)))


def size(x):
    """The number of elements of x (a Python int)."""
    return int(np.size(to_array(x)))


def view(x, dtype=None):
    """x's bytes reinterpreted as `dtype` (the last axis rescaled by the itemsize ratio)."""
    arr = to_array(operand_tensor(x))
    if dtype is None:
        return wrap(arr.copy())
    target = np.dtype(standardize_dtype(dtype))
    if arr.ndim == 0 and target.itemsize != arr.dtype.itemsize:
        raise ValueError(f"view: a scalar of {arr.dtype} cannot be viewed as {target}")
    if arr.ndim and (arr.shape[-1] * arr.dtype.itemsize) % target.itemsize:
        raise ValueError(f"view: the last axis of shape {arr.shape} ({arr.dtype}) does not divide into {target}")
    return wrap(np.ascontiguousarray(arr).view(target).copy())


def vectorize(pyfunc, *, excluded=None, signature=None):
    """A function that maps `pyfunc` over the leading elements of its tensor arguments, as
    numpy.vectorize: each call of pyfunc gets tensors (so engine ops inside are recorded) and the
    results are stacked.

    Args:
        pyfunc: the function of single elements (or of core shapes given by `signature`).
        excluded: positions or names of arguments passed through unchanged.
        signature: a generalized-ufunc signature such as "(n),(n)->()" (numpy's meaning).
    """
    excluded = set(excluded or ())
    core_dims = None
    if signature is not None:
        ins, _, outs = signature.replace(" ", "").partition("->")
        if "," in outs.strip("()") and outs.count("(") > 1:
            raise ValueError(f"vectorize: engine supports one output in the signature, got {signature!r}")
        core_dims = [len([d for d in s.strip("()").split(",") if d]) for s in ins.split("),")] if ins else []

    def mapped(*args, **kwargs):
        tensor_pos = [i for i in range(len(args)) if i not in excluded]
        tensors = [operand_tensor(args[i]) for i in tensor_pos]
        cores = core_dims if core_dims is not None else [0] * len(tensors)
        if len(cores) != len(tensors):
            raise ValueError(f"vectorize: signature {signature!r} lists {len(cores)} inputs, got {len(tensors)}")
        loop_shape = np.broadcast_shapes(*[t.shape[:t.ndim - c] for t, c in zip(tensors, cores)])
        tensors = [broadcast_to(t, loop_shape + t.shape[t.ndim - c:]) for t, c in zip(tensors, cores)]
        flat = [m.reshape(t, (-1,) + t.shape[len(loop_shape):]) for t in tensors]
        n = int(np.prod(loop_shape))
        results = []
        for k in range(n):
            call = list(args)
            for pos, t in zip(tensor_pos, flat):
                call[pos] = m.getitem(t, k)
            results.append(operand_tensor(pyfunc(*call, **kwargs)))
        if not results:
            return wrap(np.zeros(loop_shape, config.floatx()))
        out = m.stack(results, axis=0)
        return m.reshape(out, loop_shape + tuple(out.shape[1:]))
    mapped.__doc__ = pyfunc.__doc__
    return mapped


__all__ += ["repeat", "select", "vander", "unravel_index", "isin", "ndim", "size", "view", "vectorize"]
