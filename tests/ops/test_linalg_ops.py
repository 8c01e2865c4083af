"""ops.linalg: decompositions checked by their defining identities, solves and inverses by
substitution, norms against sums written out; gradients against finite differences."""
import math

import numpy as np
import pytest

from engine import ops
from engine.ops import linalg
from engine.testing import check_gradients

rng = np.random.default_rng(0)
A = rng.standard_normal((2, 3, 3)) + 3 * np.eye(3)
B = rng.standard_normal((2, 3, 2))
SPD = A @ np.swapaxes(A, -1, -2) + np.eye(3)


def sym(a):
    return ops.multiply(0.5, ops.add(a, ops.swapaxes(a, -1, -2)))


def det3(m):
    return (m[0, 0] * (m[1, 1] * m[2, 2] - m[1, 2] * m[2, 1]) - m[0, 1] * (m[1, 0] * m[2, 2] - m[1, 2] * m[2, 0])
            + m[0, 2] * (m[1, 0] * m[2, 1] - m[1, 1] * m[2, 0]))


def test_inverse_determinant_solve():
    inv = np.asarray(linalg.inv(A))
    np.testing.assert_allclose(inv @ A, np.broadcast_to(np.eye(3), A.shape), atol=1e-12)
    np.testing.assert_allclose(np.asarray(linalg.det(A)), [det3(m) for m in A])
    sign, logabs = linalg.slogdet(A)
    np.testing.assert_allclose(np.asarray(sign) * np.exp(np.asarray(logabs)), [det3(m) for m in A])
    np.testing.assert_allclose(np.asarray(linalg.logdet(SPD)), [math.log(det3(m)) for m in SPD])
    x = np.asarray(linalg.solve(A, B))
    np.testing.assert_allclose(A @ x, B, atol=1e-12)
    xv = np.asarray(linalg.solve(A[0], B[0, :, 0]))
    np.testing.assert_allclose(A[0] @ xv, B[0, :, 0], atol=1e-12)
    for fn in (linalg.inv, linalg.det, lambda a: linalg.slogdet(a)[1]):
        check_gradients(fn, [A])
    check_gradients(linalg.solve, [A, B])
    check_gradients(lambda a, b: linalg.solve(a, ops.getitem(b, (0, slice(None), 0))), [A[0], B])
    singular = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])
    check_gradients(linalg.det, [singular])      # cofactors at a singular matrix
    with pytest.raises(ValueError, match="singular"):
        linalg.inv(singular)
    with pytest.raises(ValueError, match="square"):
        linalg.det(rng.standard_normal((2, 3)))


@pytest.mark.parametrize("lower", [True, False])
def test_solve_triangular(lower):
    t = np.tril(A) if lower else np.triu(A)
    x = np.asarray(linalg.solve_triangular(A, B, lower=lower))
    np.testing.assert_allclose(t @ x, B, atol=1e-12)
    check_gradients(lambda a, b: linalg.solve_triangular(a, b, lower=lower), [A, B])


def test_cholesky_and_inverse():
    low = np.asarray(linalg.cholesky(SPD))
    np.testing.assert_allclose(low @ np.swapaxes(low, -1, -2), SPD, atol=1e-12)
    assert np.allclose(low, np.tril(low)) and (np.diagonal(low, axis1=-2, axis2=-1) > 0).all()
    up = np.asarray(linalg.cholesky(SPD, upper=True))
    np.testing.assert_allclose(np.swapaxes(up, -1, -2) @ up, SPD, atol=1e-12)
    np.testing.assert_allclose(np.asarray(linalg.cholesky_inverse(low)) @ SPD, np.broadcast_to(np.eye(3), SPD.shape), atol=1e-10)
    np.testing.assert_allclose(np.asarray(linalg.cholesky_inverse(up, upper=True)) @ SPD, np.broadcast_to(np.eye(3), SPD.shape), atol=1e-10)
    check_gradients(lambda a: linalg.cholesky(sym(a)), [SPD])
    check_gradients(lambda a: linalg.cholesky_inverse(linalg.cholesky(sym(a))), [SPD])
    with pytest.raises(ValueError, match="positive definite"):
        linalg.cholesky(-SPD)


def test_eigh_and_eig():
    w, v = (np.asarray(t) for t in linalg.eigh(SPD))
    np.testing.assert_allclose(SPD @ v, v * w[:, None, :], atol=1e-10)
    assert (np.diff(w, axis=-1) >= 0).all()
    check_gradients(lambda a: linalg.eigh(sym(a))[0], [SPD])
    check_gradients(lambda a: ops.square(linalg.eigh(sym(a))[1]), [SPD])      # sign-free function of v
    w, v = (np.asarray(t) for t in linalg.eig(A[0]))
    np.testing.assert_allclose(A[0] @ v, v * w, atol=1e-10)
    rot_w, _ = linalg.eig(np.array([[0.0, -1.0], [1.0, 0.0]]))
    np.testing.assert_allclose(np.sort_complex(np.asarray(rot_w)), [-1j, 1j])


@pytest.mark.parametrize("shape", [(4, 3), (3, 3), (3, 5)])
def test_qr_svd_pinv_lstsq(shape):
    x = rng.standard_normal(shape)
    k = min(shape)
    q, r = (np.asarray(t) for t in linalg.qr(x))
    np.testing.assert_allclose(q @ r, x, atol=1e-12)
    np.testing.assert_allclose(q.T @ q, np.eye(k), atol=1e-12)
    assert np.allclose(r, np.triu(r))
    qc, rc = (np.asarray(t) for t in linalg.qr(x, mode="complete"))
    assert qc.shape == (shape[0], shape[0]) and np.allclose(qc @ rc, x)
    check_gradients(lambda a: linalg.qr(a)[0], [x])
    check_gradients(lambda a: linalg.qr(a)[1], [x])
    u, s, vt = (np.asarray(t) for t in linalg.svd(x, full_matrices=False))
    np.testing.assert_allclose((u * s) @ vt, x, atol=1e-12)
    assert (np.diff(s) <= 0).all()
    uf, sf, vtf = linalg.svd(x)
    assert uf.shape == (shape[0], shape[0]) and vtf.shape == (shape[1], shape[1])
    np.testing.assert_allclose(np.asarray(linalg.svd(x, compute_uv=False)), s)
    check_gradients(lambda a: linalg.svd(a, compute_uv=False), [x])
    check_gradients(lambda a: ops.square(linalg.svd(a, full_matrices=False)[0]), [x])
    check_gradients(lambda a: ops.square(linalg.svd(a, full_matrices=False)[2]), [x])
    p = np.asarray(linalg.pinv(x))
    np.testing.assert_allclose(x @ p @ x, x, atol=1e-12)
    np.testing.assert_allclose(p @ x @ p, p, atol=1e-12)
    check_gradients(linalg.pinv, [x])
    rhs = rng.standard_normal((shape[0], 2))
    sol = np.asarray(linalg.lstsq(x, rhs))
    np.testing.assert_allclose(sol, p @ rhs, atol=1e-10)          # least squares / minimum norm
    check_gradients(linalg.lstsq, [x, rhs])
    assert int(linalg.matrix_rank(x)) == k


def test_lu_factor():
    lu, piv = (np.asarray(t) for t in linalg.lu_factor(A))
    assert piv.dtype == np.int32
    for b in range(2):
        lower = np.tril(lu[b], -1) + np.eye(3)
        upper = np.triu(lu[b])
        rows = np.arange(3)
        for i, p in enumerate(piv[b]):
            rows[[i, p]] = rows[[p, i]]
        np.testing.assert_allclose(A[b][rows], lower @ upper, atol=1e-12)


def test_norms():
    x = rng.standard_normal((3, 4))
    flat = x.reshape(-1)
    assert abs(float(linalg.norm(x)) - math.sqrt(sum(v * v for v in flat))) < 1e-12
    for ord_, ref in [(None, lambda r: math.sqrt(sum(v * v for v in r))), (1, lambda r: sum(abs(v) for v in r)),
                      (np.inf, lambda r: max(abs(v) for v in r)), (-np.inf, lambda r: min(abs(v) for v in r)),
                      (0, lambda r: sum(v != 0 for v in r)), (3, lambda r: sum(abs(v) ** 3 for v in r) ** (1 / 3))]:
        np.testing.assert_allclose(np.asarray(ops.norm(x, ord=ord_, axis=1)), [ref(r) for r in x])
        if ord_ != 0:
            check_gradients(lambda a: ops.norm(a, ord=ord_, axis=-1, keepdims=True), [x])
    sv = np.linalg.svd(x, compute_uv=False)
    matrix = {"fro": math.sqrt((x * x).sum()), "nuc": sv.sum(), 2: sv.max(), -2: sv.min(),
              1: max(abs(x[:, j]).sum() for j in range(4)), -1: min(abs(x[:, j]).sum() for j in range(4)),
              np.inf: max(abs(x[i]).sum() for i in range(3)), -np.inf: min(abs(x[i]).sum() for i in range(3))}
    for ord_, ref in matrix.items():
        np.testing.assert_allclose(float(linalg.norm(x, ord=ord_)), ref)
        check_gradients(lambda a: linalg.norm(a, ord=ord_), [x])
    assert linalg.norm(np.ones((2, 3, 4)), ord="fro", axis=(0, 2), keepdims=True).shape == (1, 3, 1)
    assert ops.norm(np.array([3, 4], "int32")).dtype == np.float32
    with pytest.raises(ValueError, match="norm"):
        linalg.norm(x, ord="fro", axis=0)
    with pytest.raises(ValueError, match="norm"):
        linalg.norm(x, axis=(0, 0))


def test_jvp_is_the_jacobian_times_the_tangent():
    x = rng.standard_normal(4)
    t = rng.standard_normal(4)
    out, tangent = linalg.jvp(lambda a: ops.multiply(ops.sin(a), ops.sum(a)), [x], [t])
    jac = np.diag(np.cos(x) * x.sum()) + np.outer(np.sin(x), np.ones(4))
    np.testing.assert_allclose(np.asarray(tangent), jac @ t)
    out, tangent, aux = linalg.jvp(lambda a: (ops.square(a), "aux"), [x], [t], has_aux=True)
    np.testing.assert_allclose(np.asarray(tangent), 2 * x * t)
    assert aux == "aux"
