"""einsum, tensordot, numpy's N-D dot and the other products: values against explicit sums
written here, gradients against finite differences."""
import itertools

import numpy as np
import pytest

from engine import ops
from engine.testing import check_gradients

rng = np.random.default_rng(0)


def einsum_ref(spec, *operands):
    """Einstein summation by brute force over every letter's range."""
    ins, out = spec.split("->")
    terms = ins.split(",")
    sizes = {}
    for term, x in zip(terms, operands):
        for c, n in zip(term, x.shape):
            sizes[c] = n
    letters = sorted(sizes)
    result = np.zeros([sizes[c] for c in out])
    for values in itertools.product(*[range(sizes[c]) for c in letters]):
        env = dict(zip(letters, values))
        prod = 1.0
        for term, x in zip(terms, operands):
            prod *= x[tuple(env[c] for c in term)]
        result[tuple(env[c] for c in out)] += prod
    return result


A = rng.standard_normal((2, 3, 4))
B = rng.standard_normal((4, 5))
S = rng.standard_normal((3, 3))
D = rng.standard_normal((3, 3, 2))

EINSUM = [
    ("ijk,kl->ijl", (A, B)), ("ii->", (S,)), ("ii->i", (S,)), ("ijk->", (A,)), ("ijk,ijk->ij", (A, A)),
    ("ij,kl->ijkl", (S, B)), ("iij,jk->ik", (D, rng.standard_normal((2, 2)))),
    ("bij,bjk,kl->bil", (A, rng.standard_normal((2, 4, 2)), rng.standard_normal((2, 3)))),
    ("ijk->kji", (A,)), ("ij,ij->", (S, S)),
]


@pytest.mark.parametrize("spec,operands", EINSUM, ids=[e[0] for e in EINSUM])
def test_einsum(spec, operands):
    np.testing.assert_allclose(np.asarray(ops.einsum(spec, *operands)), einsum_ref(spec, *operands), atol=1e-12)
    check_gradients(lambda *xs: ops.einsum(spec, *xs), list(operands))


def test_einsum_ellipsis_implicit_output_and_errors():
    np.testing.assert_allclose(np.asarray(ops.einsum("...k,kl->...l", A, B)), einsum_ref("ijk,kl->ijl", A, B), atol=1e-12)
    np.testing.assert_allclose(np.asarray(ops.einsum("ij,jk", S, S)), einsum_ref("ij,jk->ik", S, S), atol=1e-12)
    np.testing.assert_allclose(np.asarray(ops.einsum("ba,ab", S, S)), einsum_ref("ba,ab->", S, S), atol=1e-12)
    check_gradients(lambda a, b: ops.einsum("...k,kl->l...", a, b), [A, B])
    assert ops.einsum("ij,jk->ik", np.ones((2, 2), "int32"), np.ones((2, 2), "float32")).dtype == np.float32
    with pytest.raises(ValueError, match="einsum"):
        ops.einsum("ij,jk->ik", A, B)
    with pytest.raises(ValueError, match="einsum"):
        ops.einsum("ij,jk->ik", S, B)


def test_tensordot_and_dot():
    x, y = rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 3, 5))
    ref = np.array([[sum(x[i, j, k] * y[k, j, m] for j in range(3) for k in range(4)) for m in range(5)] for i in range(2)])
    np.testing.assert_allclose(np.asarray(ops.tensordot(x, y, axes=([1, 2], [1, 0]))), ref, atol=1e-12)
    check_gradients(lambda a, b: ops.tensordot(a, b, axes=([1, 2], [1, 0])), [x, y])
    np.testing.assert_allclose(np.asarray(ops.tensordot(x, rng.standard_normal((3, 4)), axes=2)).shape, (2,))
    # numpy's N-D dot: the last axis of x with the second-to-last of y.
    z = rng.standard_normal((5, 4, 6))
    ref = np.array([[[[sum(x[i, j, k] * z[a, k, b] for k in range(4)) for b in range(6)] for a in range(5)]
                     for j in range(3)] for i in range(2)])
    np.testing.assert_allclose(np.asarray(ops.dot(x, z)), ref, atol=1e-12)
    check_gradients(ops.dot, [x, z])
    np.testing.assert_allclose(np.asarray(ops.dot(x, B)), einsum_ref("ijk,kl->ijl", x, B), atol=1e-12)
    np.testing.assert_allclose(np.asarray(ops.dot(3.0, S)), 3.0 * S)
    v = rng.standard_normal(3)
    np.testing.assert_allclose(float(ops.dot(v, v)), sum(a * a for a in v))
    with pytest.raises(ValueError, match="dot"):
        ops.dot(x, rng.standard_normal((5, 3, 6)))
    with pytest.raises(ValueError, match="tensordot"):
        ops.tensordot(x, y, axes=([0], [0]))


def test_small_products():
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    fa, fb = a.reshape(-1), b.reshape(-1)
    np.testing.assert_allclose(np.asarray(ops.outer(a, b)), [[p * q for q in fb] for p in fa])
    np.testing.assert_allclose(np.asarray(ops.inner(a, b)), [[a[i] @ b[j] for j in range(2)] for i in range(2)])
    np.testing.assert_allclose(float(ops.vdot(a, b)), sum(p * q for p, q in zip(fa, fb)))
    k = np.asarray(ops.kron(a, S))
    assert k.shape == (6, 9)
    assert all(k[i * 3 + p, j * 3 + q] == a[i, j] * S[p, q] for i in range(2) for j in range(3) for p in range(3) for q in range(3))
    for fn in (ops.outer, ops.inner, ops.vdot, ops.kron):
        check_gradients(fn, [a, b])
    np.testing.assert_allclose(np.asarray(ops.trace(A, offset=1, axis1=1, axis2=2)),
                               [sum(A[i, j, j + 1] for j in range(3)) for i in range(2)])
    check_gradients(lambda x: ops.trace(x, axis1=0, axis2=2), [A])
    assert ops.trace(np.ones((2, 2), bool)).dtype == np.int32


def test_cross_and_correlate():
    u, w = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    ref = np.stack([u[:, 1] * w[:, 2] - u[:, 2] * w[:, 1], u[:, 2] * w[:, 0] - u[:, 0] * w[:, 2],
                    u[:, 0] * w[:, 1] - u[:, 1] * w[:, 0]], axis=1)
    np.testing.assert_allclose(np.asarray(ops.cross(u, w)), ref)
    np.testing.assert_allclose(np.asarray(ops.cross(u.T, w.T, axis=0)), ref.T)
    check_gradients(ops.cross, [u, w])
    u2 = u[:, :2]
    np.testing.assert_allclose(np.asarray(ops.cross(u2, w[:, :2])), u2[:, 0] * w[:, 1] - u2[:, 1] * w[:, 0])
    check_gradients(ops.cross, [u2, w])
    x, k = rng.standard_normal(7), rng.standard_normal(3)
    full = [sum(x[n + s] * k[n] for n in range(3) if 0 <= n + s < 7) for s in range(-2, 7)]
    np.testing.assert_allclose(np.asarray(ops.correlate(x, k, mode="full")), full)
    np.testing.assert_allclose(np.asarray(ops.correlate(x, k)), full[2:-2])
    np.testing.assert_allclose(np.asarray(ops.correlate(x, k, mode="same")), full[1:-1])
    for mode in ("valid", "same", "full"):
        check_gradients(lambda p, q: ops.correlate(p, q, mode=mode), [x, k])
    with pytest.raises(ValueError, match="cross"):
        ops.cross(rng.standard_normal((2, 4)), rng.standard_normal((2, 4)))


def test_matmul_fast_path_equals_the_recorded_path_and_numpy():
    """ops.matmul of two float matrices with no tape goes straight to the GEMM kernel: the same
    numbers as the recorded op (what a tape or a plan runs), close to float64 numpy, and every
    other case (Variables, row-sliced and transposed views, integers, mixed dtypes) still right."""
    from engine import GradientTape, Variable
    from engine.tensor import Tensor
    rng = np.random.default_rng(0)
    a = rng.standard_normal((128, 64)).astype(np.float32)
    b = rng.standard_normal((64, 32)).astype(np.float32)
    fast = ops.matmul(a, b)
    assert isinstance(fast, Tensor) and fast.dtype == np.float32
    with GradientTape() as tape:
        ta = ops.convert_to_tensor(a)
        tape.watch(ta)
        recorded = ops.matmul(ta, b)
    np.testing.assert_array_equal(fast.numpy(), recorded.numpy())
    np.testing.assert_allclose(fast.numpy(), a.astype(np.float64) @ b.astype(np.float64), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(ops.matmul(Variable(a), Tensor(b)).numpy(), fast.numpy())
    wide = rng.standard_normal((128, 80)).astype(np.float32)
    for x, y in [(wide[:, :64], b), (a.T.copy().T, b), (np.asfortranarray(a), b)]:
        np.testing.assert_allclose(ops.matmul(x, y).numpy(), x.astype(np.float64) @ y, rtol=1e-4, atol=1e-4)
    strided = rng.standard_normal((256, 128)).astype(np.float32)[::2, ::2]    # no unit stride: copied
    np.testing.assert_allclose(ops.matmul(strided, b).numpy(), strided.astype(np.float64) @ b,
                               rtol=1e-4, atol=1e-4)
    ints = ops.matmul(np.arange(6).reshape(2, 3), np.arange(3).reshape(3, 1))
    np.testing.assert_array_equal(ints.numpy(), np.arange(6).reshape(2, 3) @ np.arange(3).reshape(3, 1))
    mixed = ops.matmul(a.astype(np.float64), b)
    assert mixed.dtype == np.float64
    with pytest.raises(ValueError, match="inner dimensions"):
        ops.matmul(a, a)


def test_matmul_of_transposed_views_reads_them_in_place():
    """The layer gradients' products X^T . dY and dY . W^T on transposed views (what bench/gemm.py
    times through ops.matmul): the kernel reads the views in place, giving the bits of the product
    of contiguous copies, on the eager fast path, under a tape, and through gemm_2d (what dense and
    the plans call), whose fallback copies the layouts the kernel refuses."""
    from engine import GradientTape
    from engine.ops.math import gemm_2d
    rng = np.random.default_rng(3)
    x = rng.standard_normal((128, 64)).astype(np.float32)
    dy = rng.standard_normal((128, 32)).astype(np.float32)
    w = rng.standard_normal((64, 32)).astype(np.float32)
    for p, q in [(x.T, dy), (dy, w.T), (x.T, dy.T.T), (w.T, x.T)]:
        want = np.ascontiguousarray(p) @ np.ascontiguousarray(q)
        copies = ops.matmul(np.ascontiguousarray(p), np.ascontiguousarray(q)).numpy()
        np.testing.assert_allclose(copies, p.astype(np.float64) @ q, rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(ops.matmul(p, q).numpy(), copies)
        np.testing.assert_array_equal(gemm_2d(p, q), copies)
        with GradientTape() as tape:
            tp = ops.convert_to_tensor(p)
            tape.watch(tp)
            recorded = ops.matmul(tp, q)
        np.testing.assert_array_equal(recorded.numpy(), copies)
        assert want.shape == copies.shape
    strided = rng.standard_normal((128, 256)).astype(np.float32)[:, ::2].T    # (128, 128) no unit stride
    np.testing.assert_allclose(gemm_2d(strided, np.ascontiguousarray(strided)),
                               strided.astype(np.float64) @ strided, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(gemm_2d(x.astype(np.float64).T, dy),               # mixed dtypes: float32
                               x.T.astype(np.float64) @ dy, rtol=1e-4, atol=1e-4)
