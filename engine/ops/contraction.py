"""Products that contract axes: einsum, tensordot, numpy's N-D dot, outer, inner, vdot, kron,
trace, cross, correlate.

einsum is one op with its gradient (each operand's is an einsum of the output gradient with
the other operands); the rest compose recorded ops (matmul, reshape, transpose, multiply, sum).
"""
import string

import numpy as np

from engine.autodiff import differentiable
from engine.dtypes import result_type
from engine.ops._checks import axis_arg
from engine.ops._util import to_array
from engine.ops import math as m
from engine.ops.arrays import operand_tensor, diagonal, ravel, moveaxis


# -- einsum --------------------------------------------------------------------------------------
def _explicit_subscripts(subscripts, shapes):
    """The subscripts with '...' spelled out in unused letters and the output written out."""
    spec = subscripts.replace(" ", "")
    ins, arrow, out = spec.partition("->")
    ins = ins.split(",")
    if len(ins) != len(shapes):
        raise ValueError(f"einsum: {subscripts!r} names {len(ins)} operands but {len(shapes)} were given")
    used = set(c for c in spec if c.isalpha())
    free = [c for c in string.ascii_letters if c not in used]
    ell_rank = 0
    for term, shape in zip(ins, shapes):
        letters = len(term.replace("...", ""))
        if "..." in term:
            ell_rank = max(ell_rank, len(shape) - letters)
        elif letters != len(shape):
            raise ValueError(f"einsum: term {term!r} of {subscripts!r} has {letters} letters for an operand "
                             f"of shape {tuple(shape)}")
    ell = "".join(free[:ell_rank])
    terms = []
    for term, shape in zip(ins, shapes):
        if "..." in term:
            k = len(shape) - len(term.replace("...", ""))
            term = term.replace("...", ell[ell_rank - k:])
        terms.append(term)
    if not arrow:
        counts = {}
        for c in "".join(terms):
            counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c in counts if counts[c] == 1 and c not in ell))
    else:
        out = out.replace("...", ell)
    return terms, out


@differentiable
def _einsum(*operands, terms=None, out_term=None):
    spec = ",".join(terms) + "->" + out_term
    out = np.einsum(spec, *operands, optimize=len(operands) > 2)

    def vjp(g, needs):
        grads = []
        for i, (x, term) in enumerate(zip(operands, terms)):
            if not needs[i]:
                grads.append(None)
                continue
            others = [t for j, t in enumerate(terms) if j != i]
            arrays = [a for j, a in enumerate(operands) if j != i]
            reachable = set(out_term).union(*others) if others else set(out_term)
            distinct = "".join(dict.fromkeys(term))
            # Letters of this operand that appear nowhere else were summed away: the gradient is
            # the same for every value of them (broadcast back below).
            kept = "".join(c for c in distinct if c in reachable)
            gk = np.einsum(",".join([out_term] + others) + "->" + kept, g, *arrays, optimize=len(arrays) > 1)
            sizes = {c: x.shape[term.index(c)] for c in distinct}
            full = np.broadcast_to(np.expand_dims(gk, tuple(range(gk.ndim, gk.ndim + len(distinct) - len(kept)))),
                                   [sizes[c] for c in kept] + [sizes[c] for c in distinct if c not in reachable])
            ordered = kept + "".join(c for c in distinct if c not in reachable)
            full = np.transpose(full, [ordered.index(c) for c in distinct])
            if len(distinct) == len(term):
                gx = np.array(full, dtype=x.dtype)
            else:
                # A repeated letter reads a diagonal: write the gradient onto that diagonal.
                gx = np.zeros(x.shape, dtype=x.dtype)
                np.einsum(term + "->" + distinct, gx)[...] = full
            grads.append(gx)
        return tuple(grads)
    return out, vjp


def einsum(subscripts, *operands, **kwargs):
    """Einstein summation over the operands, as numpy.einsum (with '...' and implicit output).

    Args:
        subscripts: e.g. "ij,jk->ik"; letters repeated across operands and absent from the output
            are summed.
        *operands: the tensors.
        **kwargs: none are used by engine; any given is an error (Keras passes them to its backend).
    """
    if kwargs:
        raise ValueError(f"einsum: engine takes no keyword arguments, got {sorted(kwargs)}")
    if not isinstance(subscripts, str):
        raise ValueError(f"einsum: subscripts must be a string, got {type(subscripts).__name__}")
    xs = [operand_tensor(o) for o in operands]
    dtype = result_type(*xs) if xs else None
    if dtype == "bool":
        dtype = "bool"
    xs = [m.cast(x, dtype) if x.dtype != dtype else x for x in xs]
    terms, out_term = _explicit_subscripts(subscripts, [x.shape for x in xs])
    for term, x in zip(terms, xs):
        for c in set(term):
            sizes = {x.shape[k] for k, t in enumerate(term) if t == c}
            if len(sizes) > 1:
                raise ValueError(f"einsum: letter {c!r} of {subscripts!r} has different sizes {sorted(sizes)}")
    try:
        return _einsum(*xs, terms=tuple(terms), out_term=out_term)
    except ValueError as e:
        raise ValueError(f"einsum: {subscripts!r} does not fit operands of shapes "
                         f"{[x.shape for x in xs]}: {e}") from None


# -- tensordot and dot ---------------------------------------------------------------------------
def _same_dtype(x1, x2):
    x1, x2 = operand_tensor(x1), operand_tensor(x2)
    if x1.dtype != x2.dtype:
        dtype = result_type(x1, x2)
        x1, x2 = m.cast(x1, dtype), m.cast(x2, dtype)
    return x1, x2


def tensordot(x1, x2, axes=2):
    """The sum of products over the given axes of x1 and x2.

    Args:
        x1, x2: tensors.
        axes: an int N (the last N axes of x1 with the first N of x2) or a pair of axis
            sequences (x1's axes, x2's axes).
    """
    x1, x2 = _same_dtype(x1, x2)
    if isinstance(axes, (int, np.integer)):
        n = int(axes)
        if n < 0 or n > x1.ndim or n > x2.ndim:
            raise ValueError(f"tensordot: axes={n} is out of range for shapes {x1.shape} and {x2.shape}")
        a1, a2 = list(range(x1.ndim - n, x1.ndim)), list(range(n))
    else:
        a1, a2 = axes
        a1 = [a1] if isinstance(a1, (int, np.integer)) else list(a1)
        a2 = [a2] if isinstance(a2, (int, np.integer)) else list(a2)
        if len(a1) != len(a2):
            raise ValueError(f"tensordot: axes {axes!r} must list as many axes of x1 as of x2")
        a1 = [axis_arg("tensordot", a, x1.ndim) for a in a1]
        a2 = [axis_arg("tensordot", a, x2.ndim) for a in a2]
    for i, j in zip(a1, a2):
        if x1.shape[i] != x2.shape[j]:
            raise ValueError(f"tensordot: axis {i} of shape {x1.shape} and axis {j} of shape {x2.shape} differ")
    free1 = [a for a in range(x1.ndim) if a not in a1]
    free2 = [a for a in range(x2.ndim) if a not in a2]
    k = int(np.prod([x1.shape[a] for a in a1]))
    left = m.reshape(m.transpose(x1, free1 + a1), (-1, k))
    right = m.reshape(m.transpose(x2, a2 + free2), (k, -1))
    if x1.dtype.kind != "f":
        out = m.wrap(np.matmul(to_array(left), to_array(right)))
    else:
        out = m.matmul(left, right)
    return m.reshape(out, tuple(x1.shape[a] for a in free1) + tuple(x2.shape[a] for a in free2))


def dot(x1, x2):
    """numpy's dot: a scalar operand multiplies; 1-D and 2-D operands (and N-D with a 1-D or
    2-D second operand) take the matrix product; otherwise the sum over the last axis of x1
    and the second-to-last of x2."""
    x1, x2 = m._reduction_input(x1), m._reduction_input(x2)
    if x1.ndim == 0 or x2.ndim == 0:
        return m.multiply(x1, x2)
    if x2.ndim <= 2:
        if x1.dtype.kind != "f" or x2.dtype.kind != "f":
            a, b = _same_dtype(x1, x2)
            return m.wrap(np.dot(to_array(a), to_array(b)))
        return m.matmul(x1, x2)
    if x1.shape[-1] != x2.shape[-2]:
        raise ValueError(f"dot: the last axis of x1 (shape {x1.shape}) and the second-to-last of x2 "
                         f"(shape {x2.shape}) differ")
    return tensordot(x1, x2, axes=([x1.ndim - 1], [x2.ndim - 2]))


def outer(x1, x2):
    """The outer product of the flattened x1 and x2: out[i, j] = x1[i] * x2[j]."""
    a, b = ravel(x1), ravel(x2)
    return m.multiply(m.reshape(a, (-1, 1)), m.reshape(b, (1, -1)))


def inner(x1, x2):
    """The sum of products over the last axes of x1 and x2 (a scalar operand multiplies)."""
    x1, x2 = _same_dtype(x1, x2)
    if x1.ndim == 0 or x2.ndim == 0:
        return m.multiply(x1, x2)
    if x1.shape[-1] != x2.shape[-1]:
        raise ValueError(f"inner: the last axes of shapes {x1.shape} and {x2.shape} differ")
    return tensordot(x1, x2, axes=([x1.ndim - 1], [x2.ndim - 1]))


def vdot(x1, x2):
    """The dot product of the flattened x1 and x2 (they need the same number of elements)."""
    a, b = ravel(x1), ravel(x2)
    if a.shape != b.shape:
        raise ValueError(f"vdot: x1 and x2 need the same number of elements, got {a.shape[0]} and {b.shape[0]}")
    a, b = _same_dtype(a, b)
    return tensordot(a, b, axes=1)


def kron(x1, x2):
    """The Kronecker product: blocks of x2 scaled by each element of x1."""
    x1, x2 = _same_dtype(x1, x2)
    nd = max(x1.ndim, x2.ndim)
    a = m.reshape(x1, (1,) * (nd - x1.ndim) + tuple(x1.shape))
    b = m.reshape(x2, (1,) * (nd - x2.ndim) + tuple(x2.shape))
    # Interleave: a's axes (i0, 1, i1, 1, ...) times b's (1, j0, 1, j1, ...), then merge pairs.
    a_shape = [d for s in a.shape for d in (s, 1)]
    b_shape = [d for s in b.shape for d in (1, s)]
    prod = m.multiply(m.reshape(a, a_shape), m.reshape(b, b_shape))
    return m.reshape(prod, tuple(p * q for p, q in zip(a.shape, b.shape)))


def trace(x, offset=0, axis1=0, axis2=1):
    """The sum along the diagonal at `offset` of the planes spanned by axis1 and axis2
    (bools and small integers sum in 32 bits)."""
    from engine.ops.reductions import accumulate_dtype
    x = operand_tensor(x)
    d = diagonal(x, offset, axis1, axis2)
    if d.dtype != accumulate_dtype(d.dtype):
        d = m.cast(d, accumulate_dtype(d.dtype))
    return m.sum(d, axis=-1)


def cross(x1, x2, axisa=-1, axisb=-1, axisc=-1, axis=None):
    """The cross product of 3-vectors (or 2-vectors, taken with a zero third component) along
    the given axes.

    Args:
        x1, x2: tensors with vectors of length 2 or 3 along axisa / axisb.
        axisa, axisb: the vector axes of x1 and x2.
        axisc: the vector axis of the result (for 3-vector results).
        axis: if given, overrides axisa, axisb and axisc.
    """
    x1, x2 = _same_dtype(x1, x2)
    if axis is not None:
        axisa = axisb = axisc = axis
    a = moveaxis(x1, axis_arg("cross", axisa, x1.ndim), -1)
    b = moveaxis(x2, axis_arg("cross", axisb, x2.ndim), -1)
    if a.shape[-1] not in (2, 3) or b.shape[-1] not in (2, 3):
        raise ValueError(f"cross: vectors must have 2 or 3 components, got shapes {x1.shape} and {x2.shape} "
                         f"along axes {axisa} and {axisb}")

    def comp(v, i):
        return m.getitem(v, (Ellipsis, i)) if i < v.shape[-1] else None

    def mul(p, q):
        return None if p is None or q is None else m.multiply(p, q)

    def sub(p, q):
        if p is None:
            return m.negative(q) if q is not None else None
        return p if q is None else m.subtract(p, q)

    a0, a1, a2 = comp(a, 0), comp(a, 1), comp(a, 2)
    b0, b1, b2 = comp(b, 0), comp(b, 1), comp(b, 2)
    z = sub(mul(a0, b1), mul(a1, b0))
    if a.shape[-1] == 2 and b.shape[-1] == 2:
        return z
    x = sub(mul(a1, b2), mul(a2, b1))
    y = sub(mul(a2, b0), mul(a0, b2))
    parts = [p if p is not None else m.zeros_like(z) for p in (x, y, z)]
    parts = [m.add(p, m.zeros_like(z)) if p.shape != z.shape else p for p in parts]
    out = m.stack(parts, axis=-1)
    return moveaxis(out, -1, axis_arg("cross", axisc, out.ndim))


def correlate(x1, x2, mode="valid"):
    """The cross-correlation of two 1-D tensors: out[k] = sum_n x1[n + k] * x2[n].

    Args:
        x1, x2: 1-D tensors.
        mode: "valid" (only full overlaps), "same" (x1's length, centred) or "full".
    """
    x1, x2 = _same_dtype(x1, x2)
    if x1.ndim != 1 or x2.ndim != 1:
        raise ValueError(f"correlate: x1 and x2 must be 1-D, got shapes {x1.shape} and {x2.shape}")
    if mode not in ("valid", "same", "full"):
        raise ValueError(f"correlate: mode must be 'valid', 'same' or 'full', got {mode!r}")
    n, k = x1.shape[0], x2.shape[0]
    if n < k:
        # numpy swaps the operands and reverses the result.
        from engine.ops.arrays import flip
        return flip(correlate(x2, x1, mode), 0)
    if mode == "valid":
        lo, hi = 0, 0
    elif mode == "full":
        lo, hi = k - 1, k - 1
    else:
        lo, hi = k // 2, k - 1 - k // 2
    from engine.ops.arrays import pad
    padded = pad(x1, ((lo, hi),)) if lo or hi else x1
    count = n + lo + hi - k + 1
    windows = np.arange(count)[:, None] + np.arange(k)[None, :]
    return m.matmul(m.take(padded, windows), x2) if x1.dtype.kind == "f" else \
        m.wrap(np.take(to_array(padded), windows) @ to_array(x2))


__all__ = ["einsum", "tensordot", "dot", "outer", "inner", "vdot", "kron", "trace", "cross", "correlate"]
