"""Linear algebra (keras.ops.linalg): decompositions, solves, inverses and norms of the
matrices in the last two axes (leading axes are batches), with their gradients.

Gradients follow the standard matrix-calculus results: inv, det / slogdet, solve,
solve_triangular, cholesky, eigh, qr, svd, pinv and lstsq are differentiable, each defined once
here; norm composes recorded ops.  Integer inputs compute in floatx.
"""
import builtins

import numpy as np

from engine import config
from engine.autodiff import differentiable
from engine.dtypes import result_type
from engine.ops._checks import axis_arg
from engine.ops._util import to_array, wrap
from engine.ops import math as m


def _mT(a):
    return np.swapaxes(a, -1, -2)


def _float_matrix(op, x, square=False):
    x = m.convert_to_tensor(x)
    if x.dtype.kind != "f":
        x = m.cast(x, result_type(x.dtype, float))
    if x.ndim < 2:
        raise ValueError(f"{op}: expected a matrix (at least 2 axes), got shape {x.shape}")
    if square and x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{op}: expected square matrices in the last two axes, got shape {x.shape}")
    return x


def _solve_upper_right(x, r):
    """x @ inv(r)^T for upper-triangular r: solves r y^T = x^T."""
    return _mT(np.linalg.solve(r, _mT(x)))


# -- inverses and determinants -------------------------------------------------------------------
@differentiable
def _inv(a):
    out = np.linalg.inv(a)

    def vjp(g, needs):
        return (-(_mT(out) @ g @ _mT(out)),)
    return out, vjp


def inv(x):
    """The inverse of each square matrix (an error for singular matrices)."""
    x = _float_matrix("inv", x, square=True)
    try:
        return _inv(x)
    except np.linalg.LinAlgError as e:
        raise ValueError(f"inv: the matrix is singular ({e}); use pinv for a pseudo-inverse") from None


@differentiable
def _slogdet(a):
    sign, logabs = np.linalg.slogdet(a)

    def vjp(grads, needs):
        g = grads[1]
        if g is None:
            return (np.zeros_like(a),)
        return ((g[..., None, None] * _mT(np.linalg.inv(a))).astype(a.dtype),)
    return (sign.astype(a.dtype), logabs.astype(a.dtype)), vjp


def slogdet(x):
    """(sign, log|det|) of each square matrix, the log-determinant computed without overflow."""
    return _slogdet(_float_matrix("slogdet", x, square=True))


@differentiable
def _det(a):
    out = np.asarray(np.linalg.det(a), dtype=a.dtype)

    def vjp(g, needs):
        # d det / dA is the cofactor matrix: det(A) inv(A)^T where A is invertible.
        singular = out == 0
        safe = np.where(singular[..., None, None], np.eye(a.shape[-1], dtype=a.dtype), a)
        cof = out[..., None, None] * _mT(np.linalg.inv(safe))
        if singular.any():
            cof = np.array(cof)
            for index in np.ndindex(singular.shape):
                if singular[index]:
                    cof[index] = _cofactor(a[index])
        return ((g[..., None, None] * cof).astype(a.dtype),)
    return out, vjp


def _cofactor(a):
    """The cofactor matrix of one (singular) matrix, minor by minor."""
    n = a.shape[0]
    if n == 1:
        return np.ones_like(a)
    cof = np.empty(a.shape, dtype=a.dtype)
    for i in range(n):
        for j in range(n):
            cof[i, j] = (-1) ** (i + j) * np.linalg.det(np.delete(np.delete(a, i, 0), j, 1))
    return cof


def det(x):
    """The determinant of each square matrix."""
    return _det(_float_matrix("det", x, square=True))


def logdet(x):
    """log(det(x)) of each positive-definite (or positive-determinant) matrix; NaN where det < 0."""
    sign, logabs = slogdet(x)
    nan = np.asarray(np.where(to_array(sign) > 0, 0.0, np.nan), dtype=logabs.dtype)
    return m.add(logabs, nan)


# -- solves ----------------------------------------------------------------------------------------
def _rhs_as_matrix(op, a, b):
    vector = b.ndim == 1
    if vector:
        b = m.reshape(b, (-1, 1))
    if b.shape[-2] != a.shape[-1]:
        raise ValueError(f"{op}: a of shape {a.shape} and b of shape {(b.shape[0],) if vector else b.shape} "
                         f"do not fit (b needs {a.shape[-1]} rows)")
    return b, vector


@differentiable
def _solve(a, b):
    out = np.linalg.solve(a, b)

    def vjp(g, needs):
        gb = np.linalg.solve(_mT(a), g)
        ga = -(gb @ _mT(out)) if needs[0] else None
        return (_sum_to(ga, a.shape) if ga is not None else None, _sum_to(gb, b.shape) if needs[1] else None)
    return out, vjp


def _sum_to(g, shape):
    """A batch-broadcast gradient summed back to an input's shape."""
    from engine.ops._util import unbroadcast
    return unbroadcast(g, shape)


def solve(a, b):
    """x with a @ x = b for square a (b a matrix of right-hand sides, or a vector)."""
    a = _float_matrix("solve", a, square=True)
    b = m.convert_to_tensor(b)
    dtype = result_type(a, b, float)
    a, b = m.cast(a, dtype), m.cast(b, dtype)
    b2, vector = _rhs_as_matrix("solve", a, b)
    try:
        out = _solve(a, b2)
    except np.linalg.LinAlgError as e:
        raise ValueError(f"solve: a is singular ({e})") from None
    return m.reshape(out, (-1,)) if vector else out


def _triangular_solve(t, b, lower):
    """t^-1 b for triangular t by substitution, batched over the leading axes."""
    n = t.shape[-1]
    x = np.zeros(np.broadcast_shapes(t.shape[:-2], b.shape[:-2]) + b.shape[-2:], dtype=np.result_type(t, b))
    order = range(n) if lower else range(n - 1, -1, -1)
    for i in order:
        acc = b[..., i, :] - np.einsum("...j,...jk->...k", t[..., i, :], x)
        x[..., i, :] = acc / t[..., i, i][..., None]
    return x


@differentiable
def _solve_triangular(a, b, lower=False):
    t = np.tril(a) if lower else np.triu(a)
    out = _triangular_solve(t, b, lower)

    def vjp(g, needs):
        gb = _triangular_solve(_mT(t), g, not lower)
        ga = None
        if needs[0]:
            full = -(gb @ _mT(out))
            ga = _sum_to(np.tril(full) if lower else np.triu(full), a.shape)
        return ga, (_sum_to(gb, b.shape) if needs[1] else None)
    return out, vjp


def solve_triangular(a, b, lower=False):
    """x with a @ x = b, reading only the lower (lower=True) or upper triangle of a."""
    a = _float_matrix("solve_triangular", a, square=True)
    b = m.convert_to_tensor(b)
    dtype = result_type(a, b, float)
    a, b = m.cast(a, dtype), m.cast(b, dtype)
    b2, vector = _rhs_as_matrix("solve_triangular", a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = _solve_triangular(a, b2, lower=bool(lower))
    return m.reshape(out, (-1,)) if vector else out


# -- decompositions -------------------------------------------------------------------------------
def _phi(x):
    """The lower triangle with its diagonal halved (the cholesky gradient's projection)."""
    return np.tril(x) - 0.5 * np.eye(x.shape[-1], dtype=x.dtype) * x


@differentiable
def _cholesky(a):
    out = np.linalg.cholesky(a)

    def vjp(g, needs):
        # Murray (2016): S = L^-T Phi(L^T G) L^-1, symmetrised, for A = L L^T.
        lt_g = _phi(_mT(out) @ np.tril(g))
        inner = _triangular_solve(_mT(out), _mT(_triangular_solve(_mT(out), _mT(lt_g), lower=False)), lower=False)
        sym = 0.5 * (inner + _mT(inner))
        return (sym.astype(a.dtype),)
    return out, vjp


def cholesky(x, upper=False):
    """The Cholesky factor of each symmetric positive-definite matrix: L with x = L L^T (or the
    upper factor U = L^T with x = U^T U for upper=True)."""
    x = _float_matrix("cholesky", x, square=True)
    try:
        out = _cholesky(x)
    except np.linalg.LinAlgError:
        raise ValueError("cholesky: the matrix is not positive definite") from None
    return m.transpose(out, tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)) if upper else out


def cholesky_inverse(x, upper=False):
    """The inverse of A from its Cholesky factor x (A = x x^T, or x^T x for upper=True)."""
    x = _float_matrix("cholesky_inverse", x, square=True)
    eye = np.broadcast_to(np.eye(x.shape[-1], dtype=x.dtype), x.shape)
    inv_factor = solve_triangular(x, eye, lower=not upper)
    swap = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    if upper:
        return m.matmul(inv_factor, m.transpose(inv_factor, swap))
    return m.matmul(m.transpose(inv_factor, swap), inv_factor)


@differentiable
def _eigh(a):
    w, v = np.linalg.eigh(a)

    def vjp(grads, needs):
        gw, gv = grads
        inner = np.zeros(a.shape, dtype=a.dtype)
        if gw is not None:
            inner = inner + np.eye(a.shape[-1], dtype=a.dtype) * gw[..., None, :]
        if gv is not None:
            diff = w[..., None, :] - w[..., :, None]
            with np.errstate(divide="ignore"):
                f = np.where(diff == 0, 0.0, 1.0 / np.where(diff == 0, 1.0, diff))
            inner = inner + f * (_mT(v) @ gv)
        ga = v @ inner @ _mT(v)
        # numpy reads the lower triangle only; the symmetric part is the gradient for a symmetric a.
        return ((0.5 * (ga + _mT(ga))).astype(a.dtype),)
    return (w, v), vjp


def eigh(x):
    """The eigenvalues (ascending) and eigenvectors (columns) of each symmetric matrix.

    Returns:
        (w, v): w of shape (..., M) and v of shape (..., M, M) with x @ v = v * w.
    """
    return _eigh(_float_matrix("eigh", x, square=True))


def eig(x):
    """The eigenvalues and right eigenvectors of each square matrix (numpy's order).  Real
    results are real tensors; complex eigenvalues give complex tensors (not differentiable)."""
    x = _float_matrix("eig", x, square=True)
    w, v = np.linalg.eig(to_array(x))
    if np.iscomplexobj(w) and not np.any(np.imag(w)):
        w, v = np.real(w), np.real(v)
    if np.iscomplexobj(w):
        cdtype = np.complex64 if x.dtype == np.float32 else np.complex128
        return wrap(w.astype(cdtype)), wrap(v.astype(cdtype))
    return wrap(w.astype(x.dtype)), wrap(v.astype(x.dtype))


def _qr_grad_deep(q, r, dq, dr):
    """The gradient of A = Q R for A with at least as many rows as columns (reduced QR)."""
    qdq = _mT(q) @ dq
    qdq_ = qdq - _mT(qdq)
    rdr = r @ _mT(dr)
    rdr_ = rdr - _mT(rdr)
    low = np.tril(qdq_ + rdr_)
    grad_a = q @ (dr + _solve_upper_right(low, r))
    grad_b = _solve_upper_right(dq - q @ qdq, r)
    return grad_a + grad_b


@differentiable
def _qr(a, mode="reduced"):
    q, r = np.linalg.qr(a, mode=mode)

    def vjp(grads, needs):
        dq = np.zeros_like(q) if grads[0] is None else grads[0]
        dr = np.zeros_like(r) if grads[1] is None else grads[1]
        rows, cols = a.shape[-2:]
        if rows >= cols:
            if mode == "complete" and rows > cols:
                raise ValueError("qr: the gradient of mode='complete' for matrices with more rows than "
                                 "columns is not defined (Q's extra columns are arbitrary); use mode='reduced'")
            return (_qr_grad_deep(q, r, dq, dr).astype(a.dtype),)
        # Wide: A = [X, Y], R = [U, V]; X = Q U is the square case and Y = Q V.
        y, u, dv = a[..., :, rows:], r[..., :, :rows], dr[..., :, rows:]
        dx = _qr_grad_deep(q, u, dq + y @ _mT(dv), dr[..., :, :rows])
        dy = q @ dv
        return (np.concatenate([dx, dy], axis=-1).astype(a.dtype),)
    return (q, r), vjp


def qr(x, mode="reduced"):
    """The QR decomposition of each matrix: x = q @ r with orthonormal columns of q and upper
    triangular r.

    Args:
        x: matrices (..., M, N).
        mode: "reduced" (q of shape (..., M, K), r (..., K, N), K = min(M, N)) or "complete"
            (q (..., M, M), r (..., M, N)).
    """
    if mode not in ("reduced", "complete"):
        raise ValueError(f"qr: mode must be 'reduced' or 'complete', got {mode!r}")
    return _qr(_float_matrix("qr", x), mode=mode)


def _svd_grad(u, s, vt, gu, gs, gv):
    """The gradient of the reduced SVD A = U diag(s) V^T (distinct singular values)."""
    v = _mT(vt)
    k = s.shape[-1]
    eye = np.eye(k, dtype=s.dtype)
    s2 = s * s
    diff = s2[..., None, :] - s2[..., :, None]
    with np.errstate(divide="ignore"):
        f = np.where(eye + (diff == 0), 0.0, 1.0 / np.where(diff == 0, 1.0, diff))
    inner = np.zeros(s.shape + (k,), dtype=s.dtype)
    if gs is not None:
        inner = inner + eye * gs[..., None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        s_inv = np.where(s == 0, 0.0, 1.0 / np.where(s == 0, 1.0, s))
    grad = 0.0
    if gu is not None:
        j = f * (_mT(u) @ gu)
        inner = inner + (j + _mT(j)) * s[..., None, :]
        m_rows = u.shape[-2]
        proj = np.eye(m_rows, dtype=s.dtype) - u @ _mT(u)
        grad = grad + proj @ gu * s_inv[..., None, :] @ vt
    if gv is not None:
        kk = f * (_mT(v) @ gv)
        inner = inner + s[..., :, None] * (kk + _mT(kk))
        n_cols = v.shape[-2]
        proj = np.eye(n_cols, dtype=s.dtype) - v @ vt
        grad = grad + u @ (s_inv[..., :, None] * _mT(gv)) @ proj
    return u @ inner @ vt + grad


@differentiable
def _svd(a, full_matrices=False):
    u, s, vt = np.linalg.svd(a, full_matrices=full_matrices)

    def vjp(grads, needs):
        gu, gs, gvt = grads
        k = s.shape[-1]
        if full_matrices and (u.shape[-1] > k or vt.shape[-2] > k):
            extra_u = gu is not None and np.any(gu[..., :, k:])
            extra_v = gvt is not None and np.any(gvt[..., k:, :])
            if extra_u or extra_v:
                raise ValueError("svd: the gradient through the extra singular vectors of "
                                 "full_matrices=True is not defined; use full_matrices=False")
        uk, vtk = u[..., :, :k], vt[..., :k, :]
        gu_k = None if gu is None else gu[..., :, :k]
        gv_k = None if gvt is None else _mT(gvt[..., :k, :])
        return (_svd_grad(uk, s, vtk, gu_k, gs, gv_k).astype(a.dtype),)
    return (u, s, vt), vjp


@differentiable
def _singular_values(a):
    u, s, vt = np.linalg.svd(a, full_matrices=False)

    def vjp(g, needs):
        return ((u * g[..., None, :]) @ vt,)
    return s, vjp


def svd(x, full_matrices=True, compute_uv=True):
    """The singular value decomposition x = u @ diag(s) @ vh of each matrix.

    Args:
        x: matrices (..., M, N).
        full_matrices: u (..., M, M) and vh (..., N, N) if True, else (..., M, K) and (..., K, N).
        compute_uv: return (u, s, vh) if True, only s (descending) if False.
    """
    x = _float_matrix("svd", x)
    if not compute_uv:
        return _singular_values(x)
    return _svd(x, full_matrices=bool(full_matrices))


@differentiable
def _pinv(a, rcond=None):
    kwargs = {} if rcond is None else {"rcond": rcond}
    p = np.linalg.pinv(a, **kwargs)

    def vjp(g, needs):
        pt, gt = _mT(p), _mT(g)
        left = np.eye(a.shape[-2], dtype=a.dtype) - a @ p
        right = np.eye(a.shape[-1], dtype=a.dtype) - p @ a
        return ((-pt @ g @ pt + left @ gt @ p @ pt + pt @ p @ gt @ right).astype(a.dtype),)
    return p, vjp


def pinv(x, rcond=None):
    """The Moore-Penrose pseudo-inverse of each matrix (singular values below rcond times the
    largest are treated as zero; default: numpy's)."""
    return _pinv(_float_matrix("pinv", x), rcond=rcond)


@differentiable
def _lstsq_tall(a, b, rcond=None):
    out = np.linalg.lstsq(a, b, rcond=rcond)[0]

    def vjp(g, needs):
        # x = (A^T A)^-1 A^T b for full column rank: with Y = (A^T A)^-1 G and r = b - A x,
        # dA = r Y^T - A Y x^T and db = A Y.
        y = np.linalg.solve(a.T @ a, g)
        resid = b - a @ out
        ga = resid @ y.T - a @ y @ out.T if needs[0] else None
        return ga, (a @ y if needs[1] else None)
    return out, vjp


def lstsq(a, b, rcond=None):
    """The least-squares solution x of a @ x = b (the minimum-norm one when a has fewer rows
    than columns).

    Args:
        a: a matrix (M, N).
        b: right-hand sides (M,) or (M, K).
        rcond: cut-off for small singular values (default: numpy's).
    """
    a = _float_matrix("lstsq", a)
    if a.ndim != 2:
        raise ValueError(f"lstsq: a must be a single matrix, got shape {a.shape}")
    b = m.convert_to_tensor(b)
    dtype = result_type(a, b, float)
    a, b = m.cast(a, dtype), m.cast(b, dtype)
    vector = b.ndim == 1
    b2 = m.reshape(b, (-1, 1)) if vector else b
    if b2.ndim != 2 or b2.shape[0] != a.shape[0]:
        raise ValueError(f"lstsq: b of shape {b.shape} does not fit a of shape {a.shape} (needs {a.shape[0]} rows)")
    if a.shape[0] >= a.shape[1]:
        out = _lstsq_tall(a, b2, rcond=rcond)
    else:
        # Minimum norm: x = a^T (a a^T)^-1 b, through the differentiable solve.
        at = m.transpose(a)
        out = m.matmul(at, solve(m.matmul(a, at), b2))
    return m.reshape(out, (-1,)) if vector else out


def lu_factor(x):
    """The LU decomposition with partial pivoting, in LAPACK's packed form.

    Returns:
        (lu, pivots): lu holds L (unit diagonal, below) and U (on and above the diagonal);
        pivots (int32) says that row i was swapped with row pivots[i] (0-based).
    """
    a = np.array(to_array(_float_matrix("lu_factor", x, square=True)))
    n = a.shape[-1]
    batch = a.shape[:-2]
    lu = a.reshape((-1, n, n))
    piv = np.zeros((lu.shape[0], n), dtype=np.int32)
    rows = np.arange(lu.shape[0])
    for k in range(n):
        p = k + np.argmax(np.abs(lu[:, k:, k]), axis=1)
        piv[:, k] = p
        row_k, row_p = lu[rows, k, :].copy(), lu[rows, p, :].copy()
        lu[rows, k, :], lu[rows, p, :] = row_p, row_k
        pivot = lu[:, k, k]
        with np.errstate(divide="ignore", invalid="ignore"):
            factors = np.where(pivot[:, None] != 0, lu[:, k + 1:, k] / np.where(pivot == 0, 1, pivot)[:, None], 0)
        lu[:, k + 1:, k] = factors
        lu[:, k + 1:, k + 1:] -= factors[:, :, None] * lu[:, k, None, k + 1:]
    return wrap(lu.reshape(a.shape)), wrap(piv.reshape(batch + (n,)))


def matrix_rank(x, tol=None):
    """The rank of each matrix (int32): the number of singular values above `tol` (default:
    numpy's, from the largest singular value and the matrix size)."""
    x = _float_matrix("matrix_rank", x)
    return wrap(np.asarray(np.linalg.matrix_rank(to_array(x), tol=tol), dtype=np.int32))


# -- norms -------------------------------------------------------------------------------------------
def _vector_norm(x, ord, axis, keepdims):
    a = m.abs(x)
    if ord is None or ord == 2:
        return m.sqrt(m.sum(m.square(x), axis=axis, keepdims=keepdims))
    if ord == np.inf:
        return m.max(a, axis=axis, keepdims=keepdims)
    if ord == -np.inf:
        return m.min(a, axis=axis, keepdims=keepdims)
    if ord == 0:
        return wrap(np.sum(to_array(x) != 0, axis=axis, keepdims=keepdims).astype(x.dtype))
    if ord == 1:
        return m.sum(a, axis=axis, keepdims=keepdims)
    if isinstance(ord, str):
        raise ValueError(f"norm: ord={ord!r} is a matrix norm; vectors take numbers")
    p = float(ord)
    return m.power(m.sum(m.power(a, p), axis=axis, keepdims=keepdims), 1.0 / p)


def _matrix_norm(x, ord, axes, keepdims):
    r, c = axes
    if ord in (None, "fro"):
        out = m.sqrt(m.sum(m.square(x), axis=axes, keepdims=True))
    elif ord in (1, -1, np.inf, -np.inf):
        sum_axis = r if ord in (1, -1) else c
        sums = m.sum(m.abs(x), axis=sum_axis, keepdims=True)
        out = (m.max if ord in (1, np.inf) else m.min)(sums, axis=c if ord in (1, -1) else r, keepdims=True)
    elif ord in (2, -2, "nuc"):
        perm = [a for a in range(x.ndim) if a not in axes] + [r, c]
        s = svd(m.transpose(x, perm), compute_uv=False)
        out = m.sum(s, axis=-1) if ord == "nuc" else (m.max if ord == 2 else m.min)(s, axis=-1)
        shape = [1 if a in axes else x.shape[a] for a in range(x.ndim)]
        out = m.reshape(out, shape)
    else:
        raise ValueError(f"norm: ord={ord!r} is not a matrix norm; use None, 'fro', 'nuc', 1, -1, 2, -2, "
                         f"inf or -inf")
    return out if keepdims else m.squeeze(out, axis=axes)


def norm(x, ord=None, axis=None, keepdims=False):
    """A vector or matrix norm, as numpy.linalg.norm.

    Args:
        x: input tensor (integers compute in floatx).
        ord: the norm: for vectors None/2, 1, inf, -inf, 0 (count of non-zeros) or any p; for
            matrices None/"fro", "nuc", 1, -1, 2, -2, inf, -inf.
        axis: None (a vector norm of the flattened x with ord None; the matrix norm of a 2-D x
            otherwise), an int (vector norms) or a pair of ints (matrix norms).
        keepdims: keep the reduced axes with size 1.
    """
    x = m.convert_to_tensor(x)
    if x.dtype.kind != "f":
        x = m.cast(x, result_type(x.dtype, float))
    if axis is None:
        if ord is None:
            out = m.sqrt(m.sum(m.square(x)))
            return m.reshape(out, (1,) * x.ndim) if keepdims else out
        if x.ndim == 1:
            axis = 0
        elif x.ndim == 2:
            axis = (0, 1)
        else:
            raise ValueError(f"norm: with ord={ord!r}, x must be 1-D or 2-D or an axis given, got shape {x.shape}")
    if isinstance(axis, (list, tuple)):
        if len(axis) == 1:
            axis = axis[0]
        elif len(axis) == 2:
            axes = tuple(axis_arg("norm", a, x.ndim) for a in axis)
            if axes[0] == axes[1]:
                raise ValueError(f"norm: the two axes must differ, got {axis!r}")
            return _matrix_norm(x, ord, axes, keepdims)
        else:
            raise ValueError(f"norm: axis must be an int or a pair of ints, got {axis!r}")
    return _vector_norm(x, ord, axis_arg("norm", axis, x.ndim), keepdims)


def jvp(fun, primals, tangents, has_aux=False):
    """The product of fun's Jacobian at `primals` with `tangents` (forward-mode differentiation).

    engine's tape is reverse-mode, so the Jacobian is built one output element at a time
    (one backward pass each): exact, and meant for functions with small outputs.

    Args:
        fun: a function of tensors returning a tensor (or (tensor, aux) with has_aux).
        primals: a list or tuple of input tensors.
        tangents: tangents of the same shapes.
        has_aux: whether fun returns (output, aux).

    Returns:
        (output, jvp) or (output, jvp, aux).
    """
    from engine.autodiff import GradientTape
    primals = [m.convert_to_tensor(p) for p in primals]
    tangents = [np.asarray(to_array(t), dtype=np.float64) for t in tangents]
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    for p, t in zip(primals, tangents):
        if p.shape != t.shape:
            raise ValueError(f"jvp: a tangent of shape {t.shape} for a primal of shape {p.shape}")
    with GradientTape(persistent=True) as tape:
        tape.watch(primals)
        result = fun(*primals)
    out, aux = result if has_aux else (result, None)
    out = m.convert_to_tensor(out)
    flat = np.zeros(out.size, dtype=np.float64)
    for k in range(out.size):
        seed = np.zeros(out.size, dtype=out.dtype)
        seed[k] = 1
        grads = tape.gradient(out, primals, output_gradients=seed.reshape(out.shape))
        flat[k] = builtins.sum(float(np.sum(to_array(g) * t)) for g, t in zip(grads, tangents) if g is not None)
    tangent_out = wrap(flat.reshape(out.shape).astype(out.dtype if out.dtype.kind == "f" else config.floatx()))
    return (out, tangent_out, aux) if has_aux else (out, tangent_out)


__all__ = ["inv", "slogdet", "det", "logdet", "solve", "solve_triangular", "cholesky", "cholesky_inverse",
           "eigh", "eig", "qr", "svd", "pinv", "lstsq", "lu_factor", "matrix_rank", "norm", "jvp"]
