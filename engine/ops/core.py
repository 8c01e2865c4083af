"""keras.ops core: control flow run eagerly (cond, switch, while_loop, fori_loop, scan, map,
associative_scan, vectorized_map), dynamic slicing and scatters, segment reductions,
custom_gradient, and small dtype helpers.

Control flow calls the user's functions in plain Python, so every op they run is recorded on
the tape as usual: gradients flow through loops and branches without anything special.
"""
import builtins

import numpy as np

from engine.autodiff import differentiable, _active_tapes, _PausedRecording, _flatten, _pack
from engine.dtypes import standardize_dtype
from engine.ops._util import to_array, wrap, unbroadcast
from engine.ops import math as m
from engine.ops.arrays import operand_tensor
from engine.tensor import Tensor
from engine.variables import Variable


# -- nested structures (lists, tuples, dicts of tensors), flattened as the tape flattens them ---------
def _leaves(tree):
    return _flatten(tree)


def _rebuild(tree, leaves):
    return _pack(tree, iter(leaves))


# -- branches and loops -------------------------------------------------------------------------------
def cond(pred, true_fn, false_fn):
    """true_fn() if pred holds, else false_fn() (pred a Python or scalar tensor truth value)."""
    p = to_array(pred)
    if np.size(p) != 1:
        raise ValueError(f"cond: pred must be a scalar, got shape {np.shape(p)}")
    return true_fn() if bool(np.reshape(p, ())) else false_fn()


def switch(index, branches, *operands):
    """branches[index](*operands), index clamped to [0, len(branches) - 1] as in JAX."""
    if not branches:
        raise ValueError("switch: branches must not be empty")
    i = int(np.reshape(to_array(index), ()))
    return branches[builtins.min(builtins.max(i, 0), len(branches) - 1)](*operands)


def while_loop(cond, body, loop_vars, maximum_iterations=None):
    """Run body while cond holds, eagerly.

    Args:
        cond: called with the loop variables (unpacked), returns a truth value.
        body: called with the loop variables (unpacked), returns new ones of the same structure.
        loop_vars: a tuple / list of loop variables, or a single one.
        maximum_iterations: stop after this many iterations at the latest.

    Returns:
        The final loop variables, in loop_vars's structure.
    """
    is_tuple = isinstance(loop_vars, (tuple, list))
    state = tuple(loop_vars) if is_tuple else (loop_vars,)
    count = 0
    while (maximum_iterations is None or count < maximum_iterations) and bool(np.reshape(to_array(cond(*state)), ())):
        out = body(*state)
        out = tuple(out) if is_tuple else (out,)
        if len(out) != len(state):
            raise ValueError(f"while_loop: body returned {len(out)} values for {len(state)} loop variables")
        state = out
        count += 1
    return (type(loop_vars)(state) if is_tuple else state[0])


def fori_loop(lower, upper, body_fun, init_val):
    """val = body_fun(i, val) for i from lower to upper - 1; returns the final val."""
    val = init_val
    for i in range(int(to_array(lower)), int(to_array(upper))):
        val = body_fun(i, val)
    return val


def _slices(xs, length):
    leaves = _leaves(xs)
    tensors = [operand_tensor(x) for x in leaves]
    for t in tensors:
        if t.ndim == 0 or t.shape[0] != length:
            raise ValueError(f"the inputs to scan over must share a leading axis of length {length}, got shapes "
                             f"{[tuple(u.shape) for u in tensors]}")
    from engine.ops.arrays import unstack
    columns = [unstack(t) for t in tensors]
    return [_rebuild(xs, [c[i] for c in columns]) for i in range(length)]


def _stack_structures(items):
    if not items:
        return None
    leaves = [_leaves(it) for it in items]
    stacked = [m.stack([operand_tensor(l[k]) for l in leaves], axis=0) for k in range(len(leaves[0]))]
    return _rebuild(items[0], stacked)


def scan(f, init, xs=None, length=None, reverse=False, unroll=1):
    """Carry a state through f over the leading axis of xs, collecting f's outputs.

    Args:
        f: f(carry, x) -> (new_carry, y).
        init: the initial carry (a nested structure of tensors).
        xs: a nested structure of tensors to scan over along axis 0 (or None: x is None).
        length: the number of steps (needed when xs is None; checked otherwise).
        reverse: scan from the last element to the first (ys keep the order of xs).
        unroll: a positive int or bool: how many steps a compiled loop (Keras on JAX / TF) puts
            in one iteration.  It changes how the loop is compiled, never its result; engine runs
            the steps eagerly one by one, which computes the same result for every value.

    Returns:
        (final carry, stacked ys).
    """
    if not isinstance(unroll, bool) and (not isinstance(unroll, int) or unroll < 1):
        raise ValueError(f"scan: unroll must be a positive integer or a bool, got {unroll!r}")
    if xs is None:
        if length is None:
            raise ValueError("scan: give xs or length")
        steps = [None] * int(length)
    else:
        n = operand_tensor(_leaves(xs)[0]).shape[0]
        if length is not None and int(length) != n:
            raise ValueError(f"scan: length={length} but xs have {n} elements")
        steps = _slices(xs, n)
    order = range(len(steps) - 1, -1, -1) if reverse else range(len(steps))
    carry, ys = init, [None] * len(steps)
    for i in order:
        carry, ys[i] = f(carry, steps[i])
    if not steps or builtins.all(y is None for y in ys):
        return carry, None
    return carry, _stack_structures(ys)


def map(f, xs):
    """f applied to each slice of xs along axis 0, the results stacked."""
    n = operand_tensor(_leaves(xs)[0]).shape[0]
    return _stack_structures([f(x) for x in _slices(xs, n)])


def vectorized_map(function, elements):
    """function applied to each slice of elements along axis 0, the results stacked (as map)."""
    return map(function, elements)


def associative_scan(f, elems, reverse=False, axis=0):
    """The inclusive scan of elems along `axis` with the associative f: out[i] = f(out[i-1], elems[i]).

    Args:
        f: an associative function of two structures of slices (each keeping `axis` with size 1).
        elems: a nested structure of tensors sharing the length of `axis`.
        reverse: scan from the end.
        axis: the axis to scan along.
    """
    leaves = [operand_tensor(x) for x in _leaves(elems)]
    nd = leaves[0].ndim
    ax = axis % nd if nd else 0
    n = leaves[0].shape[ax]
    for t in leaves:
        if t.ndim != nd or t.shape[ax] != n:
            raise ValueError(f"associative_scan: elems must share axis {axis} of length {n}, got shapes "
                             f"{[tuple(u.shape) for u in leaves]}")
    lead = (builtins.slice(None),) * ax

    def at(i):
        return _rebuild(elems, [m.getitem(t, lead + (builtins.slice(i, i + 1),)) for t in leaves])
    order = list(range(n - 1, -1, -1)) if reverse else list(range(n))
    outs = {}
    acc = None
    for i in order:
        acc = at(i) if acc is None else f(acc, at(i))
        outs[i] = acc
    pieces = [_leaves(outs[i]) for i in range(n)]
    joined = [m.concatenate([operand_tensor(p[k]) for p in pieces], axis=ax) for k in range(len(leaves))]
    return _rebuild(elems, joined)


# -- dynamic slices and scatters --------------------------------------------------------------------------
def _start_indices(op, x, start_indices, sizes):
    starts = [int(s) for s in np.reshape(to_array(operand_tensor(start_indices)), -1)]
    if len(starts) != x.ndim:
        raise ValueError(f"{op}: {len(starts)} start indices for a tensor of rank {x.ndim}")
    for d, (n, size) in enumerate(zip(x.shape, sizes)):
        if size > n:
            raise ValueError(f"{op}: size {size} along axis {d} is larger than the axis ({n}) of shape {x.shape}")
    # As JAX's dynamic slices: starts are clamped so the slice lies inside the tensor.
    return [builtins.min(builtins.max(s, 0), n - size) for s, n, size in zip(starts, x.shape, sizes)]


def slice(inputs, start_indices, shape):
    """The block of inputs of the given shape starting at start_indices (a size of -1 runs to
    the end of that axis); starts are clamped so the block fits, as in JAX."""
    x = operand_tensor(inputs)
    sizes = [int(s) for s in shape]
    if len(sizes) != x.ndim:
        raise ValueError(f"slice: shape {tuple(shape)} must have one size per axis of shape {x.shape}")
    raw = [int(s) for s in np.reshape(to_array(operand_tensor(start_indices)), -1)]
    if len(raw) != x.ndim:
        raise ValueError(f"slice: {len(raw)} start indices for a tensor of rank {x.ndim}")
    sizes = [n - s if size == -1 else size for n, s, size in zip(x.shape, raw, sizes)]
    starts = _start_indices("slice", x, raw, sizes)
    return m.getitem(x, tuple(builtins.slice(s, s + n) for s, n in zip(starts, sizes)))


@differentiable
def _slice_update(x, updates, key=None):
    out = x.copy()
    out[key] = updates

    def vjp(g, needs):
        gx = g.copy()
        gx[key] = 0
        return gx, np.ascontiguousarray(g[key]).astype(updates.dtype)
    return out, vjp


def slice_update(inputs, start_indices, updates):
    """inputs with the block at start_indices replaced by updates (starts clamped to fit)."""
    x, u = operand_tensor(inputs), operand_tensor(updates)
    if u.ndim != x.ndim:
        raise ValueError(f"slice_update: updates of shape {u.shape} must have the rank of inputs {x.shape}")
    starts = _start_indices("slice_update", x, start_indices, u.shape)
    if u.dtype != x.dtype:
        u = m.cast(u, x.dtype)
    key = tuple(builtins.slice(s, s + n) for s, n in zip(starts, u.shape))
    return _slice_update(x, u, key=key)


def _index_key(op, indices, x_ndim):
    idx = np.asarray(to_array(operand_tensor(indices)), dtype=np.int64)
    if idx.ndim == 1:
        idx = idx[:, None] if x_ndim == 1 else idx[None, :]
    if idx.shape[-1] > x_ndim:
        raise ValueError(f"{op}: indices address {idx.shape[-1]} axes of a tensor of rank {x_ndim}")
    return tuple(np.moveaxis(idx, -1, 0))


def _check_bounds(op, key, shape):
    for d, k in enumerate(key):
        if k.size and (k.min() < -shape[d] or k.max() >= shape[d]):
            raise ValueError(f"{op}: indices along axis {d} must lie in [0, {shape[d]}), got {k.min()} to {k.max()}")


@differentiable
def _scatter_add(x, updates, key=None):
    out = x.copy()
    np.add.at(out, key, updates)

    def vjp(g, needs):
        return g, np.ascontiguousarray(g[key]).astype(updates.dtype)
    return out, vjp


@differentiable
def _scatter_set(x, updates, key=None):
    out = x.copy()
    out[key] = updates
    # Where an index repeats, numpy keeps the last update: only that one gets a gradient.
    flat = np.ravel_multi_index(tuple(np.broadcast_to(k, key[0].shape) for k in key), x.shape[:len(key)],
                                mode="wrap").reshape(-1)
    last = np.zeros(flat.shape, dtype=bool)
    _, first_from_end = np.unique(flat[::-1], return_index=True)
    last[flat.size - 1 - first_from_end] = True
    last = last.reshape(key[0].shape)

    def vjp(g, needs):
        gx = g.copy()
        gx[key] = 0
        gu = np.ascontiguousarray(g[key])
        mask = last.reshape(last.shape + (1,) * (gu.ndim - last.ndim))
        return gx, (gu * mask).astype(updates.dtype)
    return out, vjp


def scatter(indices, values, shape):
    """A zero tensor of `shape` with values added at indices (repeated indices add up).

    Args:
        indices: (N, k) integer positions into the first k axes of shape.
        values: (N,) + shape[k:] values.
        shape: the result shape.
    """
    v = operand_tensor(values)
    shape = tuple(int(s) for s in shape)
    key = _index_key("scatter", indices, len(shape))
    _check_bounds("scatter", key, shape)
    expected = key[0].shape + shape[len(key):]
    if v.shape != expected:
        raise ValueError(f"scatter: values of shape {v.shape} must have shape {expected} for these indices")
    return _scatter_add(np.zeros(shape, dtype=v.dtype), v, key=key)


def scatter_update(inputs, indices, updates, reduction=None):
    """inputs with the entries at indices set to (or combined with) updates.

    Args:
        inputs: the tensor to update.
        indices: (N, k) integer positions into the first k axes of inputs.
        updates: (N,) + inputs.shape[k:] values.
        reduction: None (set; a repeated index keeps its last update), "add", "mul", "max" or "min".
    """
    x, u = operand_tensor(inputs), operand_tensor(updates)
    key = _index_key("scatter_update", indices, x.ndim)
    _check_bounds("scatter_update", key, x.shape)
    expected = key[0].shape + tuple(x.shape[len(key):])
    if u.shape != expected:
        raise ValueError(f"scatter_update: updates of shape {u.shape} must have shape {expected} for these indices")
    if u.dtype != x.dtype:
        u = m.cast(u, x.dtype)
    if reduction is None:
        return _scatter_set(x, u, key=key)
    if reduction == "add":
        return _scatter_add(x, u, key=key)
    if reduction in ("mul", "max", "min"):
        ufunc = {"mul": np.multiply, "max": np.maximum, "min": np.minimum}[reduction]
        out = to_array(x).copy()
        ufunc.at(out, key, to_array(u))
        if x.dtype.kind == "f":
            return _scatter_combined(x, u, key=key, reduction=reduction)
        return wrap(out)
    raise ValueError(f"scatter_update: reduction must be None, 'add', 'mul', 'max' or 'min', got {reduction!r}")


@differentiable
def _scatter_combined(x, updates, key=None, reduction=None):
    """scatter with "mul", "max" or "min": the gradient through each combination, element by element."""
    ufunc = {"mul": np.multiply, "max": np.maximum, "min": np.minimum}[reduction]
    out = x.copy()
    ufunc.at(out, key, updates)

    def vjp(g, needs):
        if reduction == "mul":
            # out[idx] = x[idx] * (product of the updates at idx).
            partial = np.ones_like(x)
            np.multiply.at(partial, key, updates)
            n = key[0].size
            rows = updates.reshape((n,) + updates.shape[key[0].ndim:])
            where = [tuple(int(k.reshape(-1)[j]) for k in key) for j in range(n)]
            gu = np.empty_like(rows)
            for j, idx in enumerate(where):
                others = x[idx].copy()
                for i, other in enumerate(where):
                    if i != j and other == idx:
                        others = others * rows[i]
                gu[j] = g[idx] * others
            return (g * partial).astype(x.dtype), gu.reshape(updates.shape)
        # max / min: the gradient goes to whichever value won (ties share it).
        winners_x = (x == out)
        count = winners_x.astype(x.dtype)
        hits = np.broadcast_to(updates == out[key], updates.shape)
        np.add.at(count, key, hits.astype(x.dtype))
        share = g / np.maximum(count, 1)
        return np.where(winners_x, share, 0).astype(x.dtype), np.where(hits, share[key], 0).astype(updates.dtype)
    return out, vjp


# -- segment reductions ------------------------------------------------------------------------------------
def _segments(op, data, segment_ids, num_segments):
    d = operand_tensor(data)
    ids = np.asarray(to_array(operand_tensor(segment_ids)), dtype=np.int64)
    if ids.ndim != 1 or d.ndim == 0 or ids.shape[0] != d.shape[0]:
        raise ValueError(f"{op}: segment_ids must be 1-D with one id per row of data (shape {d.shape}), got "
                         f"shape {ids.shape}")
    n = int(ids.max()) + 1 if num_segments is None and ids.size else (0 if num_segments is None else int(num_segments))
    if n < 0:
        raise ValueError(f"{op}: num_segments must be non-negative, got {num_segments}")
    # Rows with negative ids or ids past num_segments are dropped, as in Keras.
    keep = (ids >= 0) & (ids < n)
    return d, ids, keep, n


@differentiable
def _segment_reduce(x, ids=None, keep=None, n=None, kind=None):
    rows = x[keep]
    seg = ids[keep]
    shape = (n,) + x.shape[1:]
    if kind == "sum":
        out = np.zeros(shape, x.dtype)
        np.add.at(out, seg, rows)
    elif kind == "prod":
        out = np.ones(shape, x.dtype)
        np.multiply.at(out, seg, rows)
    else:
        fill = (-np.inf if kind == "max" else np.inf) if x.dtype.kind == "f" else \
            (np.iinfo(x.dtype).min if kind == "max" else np.iinfo(x.dtype).max)
        out = np.full(shape, fill, x.dtype)
        (np.maximum if kind == "max" else np.minimum).at(out, seg, rows)

    def vjp(g, needs):
        gx = np.zeros_like(x)
        if kind == "sum":
            gx[keep] = g[seg]
        elif kind == "prod":
            zero = rows == 0
            zeros_in = np.zeros(shape, np.int64)
            np.add.at(zeros_in, seg, zero.astype(np.int64))
            nonzero_prod = np.ones(shape, x.dtype)
            np.multiply.at(nonzero_prod, seg, np.where(zero, 1, rows))
            # d prod / d x_i: the product of the others (exact with one zero; zero with more).
            others = np.where(zero, np.where(zeros_in[seg] == 1, nonzero_prod[seg], 0),
                              np.where(zeros_in[seg] == 0, nonzero_prod[seg] / np.where(zero, 1, rows), 0))
            gx[keep] = g[seg] * others
        else:
            hit = rows == out[seg]
            count = np.zeros(shape, x.dtype)
            np.add.at(count, seg, hit.astype(x.dtype))
            gx[keep] = np.where(hit, g[seg] / np.maximum(count[seg], 1), 0)
        return (gx,)
    return out, vjp


def _segment(op, kind, data, segment_ids, num_segments, sorted):
    d, ids, keep, n = _segments(op, data, segment_ids, num_segments)
    if sorted and ids.size and np.any(np.diff(ids[ids >= 0]) < 0):
        raise ValueError(f"{op}: sorted=True but segment_ids are not sorted")
    if d.dtype.kind != "f":
        return wrap(to_array(_segment_reduce.raw(to_array(d), ids=ids, keep=keep, n=n, kind=kind)[0]))
    return _segment_reduce(d, ids=ids, keep=keep, n=n, kind=kind)


def segment_sum(data, segment_ids, num_segments=None, sorted=False):
    """The sum of the rows of data in each segment.

    Args:
        data: tensor whose first axis is segmented.
        segment_ids: (data.shape[0],) segment of each row (negative ids are dropped).
        num_segments: the number of segments (default max(segment_ids) + 1); rows with larger
            ids are dropped.
        sorted: whether segment_ids are sorted (checked; the result does not depend on it).
    """
    return _segment("segment_sum", "sum", data, segment_ids, num_segments, sorted)


def segment_max(data, segment_ids, num_segments=None, sorted=False):
    """The maximum of the rows of data in each segment (-inf, or the dtype's minimum, for empty
    segments; tied maxima share the gradient). Arguments as segment_sum."""
    return _segment("segment_max", "max", data, segment_ids, num_segments, sorted)


def segment_min(data, segment_ids, num_segments=None, sorted=False):
    """The minimum of the rows of data in each segment (+inf, or the dtype's maximum, for empty
    segments). Arguments as segment_sum."""
    return _segment("segment_min", "min", data, segment_ids, num_segments, sorted)


def segment_prod(data, segment_ids, num_segments=None, sorted=False):
    """The product of the rows of data in each segment (1 for empty segments). Arguments as segment_sum."""
    return _segment("segment_prod", "prod", data, segment_ids, num_segments, sorted)


# -- custom gradients -------------------------------------------------------------------------------------------
def custom_gradient(f):
    """Decorate f(*args) -> (output, grad_fn) to give it the gradient grad_fn defines.

    grad_fn is called with the output's upstream gradient (positionally; Keras's
    `def grad(*args, upstream=None)` form works) and returns one gradient per positional
    tensor argument of f (a single tensor when f takes one).  f's own ops are not recorded.
    """
    def wrapper(*args, **kwargs):
        tensors = [a for a in args if isinstance(a, (Tensor, Variable, np.ndarray))]
        positions = [i for i, a in enumerate(args) if isinstance(a, (Tensor, Variable, np.ndarray))]

        @differentiable
        def _custom(*arrays):
            call = list(args)
            for pos, arr in zip(positions, arrays):
                call[pos] = Tensor(arr)
            with _PauseAll():
                out, grad_fn = f(*call, **kwargs)
            out_array = np.array(to_array(out))

            def vjp(g, needs):
                with _PauseAll():
                    grads = grad_fn(Tensor(g))
                if not isinstance(grads, (list, tuple)):
                    grads = (grads,)
                if len(grads) != len(arrays):
                    raise ValueError(f"custom_gradient: the gradient function returned {len(grads)} gradients "
                                     f"for {len(arrays)} tensor inputs")
                result = []
                for gr, arr in zip(grads, arrays):
                    if gr is None:
                        result.append(None)
                        continue
                    ga = np.asarray(to_array(gr), dtype=arr.dtype)
                    result.append(unbroadcast(np.broadcast_to(ga, np.broadcast_shapes(ga.shape, arr.shape)), arr.shape))
                return tuple(result)
            return out_array, vjp
        return _custom(*tensors)
    wrapper.__name__ = getattr(f, "__name__", "custom_gradient")
    wrapper.__doc__ = f.__doc__
    return wrapper


class _PauseAll:
    """No tape records inside the block (a custom gradient's own ops are not differentiated)."""

    def __enter__(self):
        self.paused = [_PausedRecording(t) for t in list(_active_tapes)]
        for p in self.paused:
            p.__enter__()

    def __exit__(self, *exc):
        for p in reversed(self.paused):
            p.__exit__(*exc)
        return False


# -- dtype helpers ---------------------------------------------------------------------------------------------
def dtype(x):
    """The dtype of x as its standard name ('float32', 'int32', ...)."""
    return standardize_dtype(to_array(x).dtype if not hasattr(x, "dtype") else x.dtype)


def saturate_cast(x, dtype):
    """x cast to dtype with values clipped to that dtype's range first (no wrap-around)."""
    target = np.dtype(standardize_dtype(dtype))
    x = operand_tensor(x)
    if target.kind in "iu":
        info = np.iinfo(target)
        lo, hi = info.min, info.max
        if x.dtype.kind == "f":
            # Clip in the float type, then round toward zero like a cast.
            arr = np.clip(np.nan_to_num(to_array(x)), float(lo), float(hi))
            return wrap(np.clip(np.trunc(arr), lo, hi).astype(target))
        src = np.iinfo(x.dtype) if x.dtype.kind in "iu" else None
        arr = to_array(x)
        if src is not None:
            arr = np.clip(arr.astype(np.int64 if x.dtype != np.uint64 else np.uint64),
                          builtins.max(lo, src.min), builtins.min(hi, src.max))
        return wrap(np.asarray(arr).astype(target))
    if target.kind == "f" and x.dtype.kind == "f":
        info = np.finfo(target)
        return m.cast(m.clip(x, float(info.min), float(info.max)), target)
    return m.cast(x, target)


def cdist(x, y):
    """The Euclidean distance between every row of x and every row of y: (..., P, M) and
    (..., R, M) give (..., P, R)."""
    x, y = operand_tensor(x), operand_tensor(y)
    if x.ndim < 2 or y.ndim < 2 or x.shape[-1] != y.shape[-1]:
        raise ValueError(f"cdist: x and y must be (..., P, M) and (..., R, M), got {x.shape} and {y.shape}")
    diff = m.subtract(m.expand_dims(x, -2), m.expand_dims(y, -3))
    return m.sqrt(m.sum(m.square(diff), axis=-1))


__all__ = ["cond", "switch", "while_loop", "fori_loop", "scan", "map", "vectorized_map", "associative_scan",
           "slice", "slice_update", "scatter", "scatter_update", "segment_sum", "segment_max", "segment_min",
           "segment_prod", "custom_gradient", "dtype", "saturate_cast", "cdist"]
