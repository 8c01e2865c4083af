"""The attention and layer-norm kernels refuse every buffer that does not fit (so no caller can
make them read or write out of bounds) and handle empty and one-element sizes."""
import numpy as np
import pytest

from engine._kernels import attention as A
from engine._kernels import layernorm as L


def buffers(b=2, t=3, s=4, n=2, d=3, dv=2, dtype=np.float32):
    rng = np.random.default_rng(0)
    q = rng.standard_normal((b, t, n, d)).astype(dtype)
    k = rng.standard_normal((b, s, n, d)).astype(dtype)
    v = rng.standard_normal((b, s, n, dv)).astype(dtype)
    out = np.empty((b, t, n, dv), dtype)
    stats = np.empty((b, n, t), dtype), np.empty((b, n, t), dtype)
    return q, k, v, out, stats


@pytest.mark.parametrize("bad", ["k depth", "v length", "out shape", "stats shape", "dtype", "strided", "read-only",
                                 "mask batch", "mask heads", "mask dtype", "mask plane"])
def test_sdpa_forward_rejects_buffers_that_do_not_fit(bad):
    q, k, v, out, (m, r) = buffers()
    mask = None
    if bad == "k depth":
        k = np.zeros((2, 4, 2, 4), np.float32)
    elif bad == "v length":
        v = np.zeros((2, 5, 2, 2), np.float32)
    elif bad == "out shape":
        out = np.empty((2, 3, 2, 3), np.float32)
    elif bad == "stats shape":
        m = np.empty((2, 2, 4), np.float32)
    elif bad == "dtype":
        v = v.astype(np.float64)
    elif bad == "strided":
        q = np.zeros((2, 6, 2, 3), np.float32)[:, ::2]
    elif bad == "read-only":
        out.flags.writeable = False
    elif bad == "mask batch":
        mask = np.ones((3, 1, 3, 4), np.uint8)
    elif bad == "mask heads":
        mask = np.ones((1, 3, 3, 4), np.uint8)
    elif bad == "mask dtype":
        mask = np.ones((1, 1, 3, 4), bool)
    elif bad == "mask plane":
        mask = np.ones((1, 1, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="sdpa_forward"):
        A.sdpa_forward(q, k, v, mask, False, 1.0, out, m, r)


def test_sdpa_backward_rejects_mismatched_gradients_and_handles_edges():
    q, k, v, out, (m, r) = buffers()
    A.sdpa_forward(q, k, v, None, True, 0.5, out, m, r)
    dq, dk, dv = np.empty_like(q), np.empty_like(k), np.empty_like(v)
    with pytest.raises(ValueError, match="sdpa_backward"):
        A.sdpa_backward(q, k, v, None, True, 0.5, out, m, r, out[:, :2].copy(), dq, dk, dv)
    with pytest.raises(ValueError, match="sdpa_backward"):
        A.sdpa_backward(q, k, v, None, True, 0.5, out, m, r, out, dq, dk, dv[..., :1].copy())
    A.sdpa_backward(q, k, v, None, True, 0.5, out, m, r, np.ones_like(out), dq, dk, dv)
    assert np.isfinite(dq).all() and np.isfinite(dk).all() and np.isfinite(dv).all()
    # No keys: an error, not a division by zero; one query and one key: the value itself.
    with pytest.raises(ValueError, match="no keys"):
        A.sdpa_forward(q, k[:, :0].copy(), v[:, :0].copy(), None, False, 1.0, out, m, r)
    q1, k1, v1, out1, (m1, r1) = buffers(b=1, t=1, s=1, n=1)
    A.sdpa_forward(q1, k1, v1, None, False, 1.0, out1, m1, r1)
    np.testing.assert_allclose(out1, v1)
    # An empty batch touches nothing.
    q0, k0, v0, out0, (m0, r0) = buffers(b=0)
    A.sdpa_forward(q0, k0, v0, None, False, 1.0, out0, m0, r0)


def test_layer_norm_kernel_edges_and_checks():
    x = np.random.default_rng(1).standard_normal((5, 7))
    y, mean, rstd = np.empty_like(x), np.empty(5), np.empty(5)
    L.layer_norm_forward(x, None, None, 1e-3, y, mean, rstd)
    np.testing.assert_allclose(mean, x.mean(1))
    np.testing.assert_allclose(rstd, 1 / np.sqrt(x.var(1) + 1e-3))
    dg, db = L.layer_norm_backward(x, None, mean, rstd, np.ones_like(x), None)    # dx not wanted
    assert dg.shape == db.shape == (7,)
    np.testing.assert_allclose(db, np.full(7, 5.0))
    empty = np.empty((0, 7))
    L.layer_norm_forward(empty, None, None, 1e-3, np.empty_like(empty), np.empty(0), np.empty(0))
    with pytest.raises(ValueError, match="epsilon"):
        L.layer_norm_forward(x, None, None, -1.0, y, mean, rstd)
    with pytest.raises(ValueError, match="read-only"):
        y.flags.writeable = False
        L.layer_norm_forward(x, None, None, 1e-3, y, mean, rstd)
    with pytest.raises(ValueError, match="2-D"):
        L.layer_norm_forward(x[None], None, None, 1e-3, y, mean, rstd)
    with pytest.raises(ValueError, match="g must be"):
        L.layer_norm_backward(x, None, mean, rstd, np.ones((5, 6)), None)


def _layer_norm_reference(x, gamma, beta, eps, g):
    """float64 layer norm over the last axis and its gradients, written out from the formulas."""
    x, g = x.astype(np.float64), g.astype(np.float64)
    width = x.shape[1]
    gam = np.ones(width) if gamma is None else gamma.astype(np.float64)
    mu = x.mean(axis=1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=1, keepdims=True)
    rstd = 1 / np.sqrt(var + eps)
    xhat = (x - mu) * rstd
    y = xhat * gam + (0 if beta is None else beta.astype(np.float64))
    gg = g * gam
    dx = rstd * (gg - gg.mean(axis=1, keepdims=True) - xhat * (gg * xhat).mean(axis=1, keepdims=True))
    return y, mu[:, 0], rstd[:, 0], dx, (g * xhat).sum(axis=0), g.sum(axis=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows,width", [(3, 1), (5, 7), (9, 33), (300, 257)])
@pytest.mark.parametrize("affine", ["both", "gamma", "beta", "none"])
def test_layer_norm_kernel_matches_float64_on_every_simd_path(isa_level, dtype, rows, width, affine):
    rng = np.random.default_rng(rows * width)
    # an offset row mean far from zero, where a one-pass variance would cancel
    x = (rng.standard_normal((rows, width)) * 0.5 + 40.0).astype(dtype)
    g = rng.standard_normal((rows, width)).astype(dtype)
    gamma = rng.standard_normal(width).astype(dtype) if affine in ("both", "gamma") else None
    beta = rng.standard_normal(width).astype(dtype) if affine in ("both", "beta") else None
    y, mean, rstd = np.empty_like(x), np.empty(rows, dtype), np.empty(rows, dtype)
    L.layer_norm_forward(x, gamma, beta, 1e-3, y, mean, rstd)
    dx = np.empty_like(x)
    dgamma, dbeta = L.layer_norm_backward(x, gamma, mean, rstd, g, dx)
    ry, rmu, rrstd, rdx, rdg, rdb = _layer_norm_reference(x, gamma, beta, 1e-3, g)
    tol = dict(rtol=2e-4, atol=2e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(mean, rmu, **tol)
    np.testing.assert_allclose(rstd, rrstd, **tol)
    np.testing.assert_allclose(y, ry, **tol)
    np.testing.assert_allclose(dx, rdx * (1 if width > 1 else 0), **tol)
    np.testing.assert_allclose(dgamma, rdg, rtol=tol["rtol"], atol=tol["atol"] * rows)
    np.testing.assert_allclose(dbeta, rdb, rtol=tol["rtol"], atol=tol["atol"] * rows)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows,width", [(1, 5), (7, 9), (300, 257)])
def test_layer_norm_backward_reads_one_shared_gradient_row_on_every_simd_path(isa_level, dtype, rows, width):
    # g of shape (1, width) is every row's output gradient (row stride 0 in the kernel)
    rng = np.random.default_rng(rows + width)
    x = rng.standard_normal((rows, width)).astype(dtype)
    gamma = rng.standard_normal(width).astype(dtype)
    g_row = rng.standard_normal((1, width)).astype(dtype)
    y, mean, rstd = np.empty_like(x), np.empty(rows, dtype), np.empty(rows, dtype)
    L.layer_norm_forward(x, gamma, None, 1e-3, y, mean, rstd)
    dx = np.empty_like(x)
    dgamma, dbeta = L.layer_norm_backward(x, gamma, mean, rstd, g_row, dx)
    _, _, _, rdx, rdg, rdb = _layer_norm_reference(x, gamma, None, 1e-3, np.repeat(g_row, rows, axis=0))
    tol = dict(rtol=2e-4, atol=2e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dx, rdx, **tol)
    np.testing.assert_allclose(dgamma, rdg, rtol=tol["rtol"], atol=tol["atol"] * rows)
    np.testing.assert_allclose(dbeta, rdb, rtol=tol["rtol"], atol=tol["atol"] * rows)
    with pytest.raises(ValueError, match="layer_norm_backward"):
        L.layer_norm_backward(x, gamma, mean, rstd, np.zeros((2, width), dtype) if rows != 2 else
                              np.zeros((3, width), dtype), dx)


def _sdpa_reference(q, k, v, visible, scale, dout):
    """float64 attention in the (B, T, N, D) layout and its gradients, from the formulas: masked
    scores replaced by -1e30 (a row that sees nothing is uniform, and no gradient reaches them)."""
    q, k, v, dout = (a.astype(np.float64) for a in (q, k, v, dout))
    s = np.einsum("btnd,bsnd->bnts", q, k) * scale
    s = np.where(visible, s, -1e30)
    e = np.exp(s - s.max(-1, keepdims=True))
    p = e / e.sum(-1, keepdims=True)
    out = np.einsum("bnts,bsnd->btnd", p, v)
    dp = np.einsum("btnd,bsnd->bnts", dout, v)
    ds = p * (dp - (dp * p).sum(-1, keepdims=True))
    ds = np.where(visible, ds, 0.0)
    dq = np.einsum("bnts,bsnd->btnd", ds, k) * scale
    dk = np.einsum("bnts,btnd->bsnd", ds, q) * scale
    dv = np.einsum("bnts,btnd->bsnd", p, dout)
    return out, dq, dk, dv


# Depths 8-64 take the direct small-depth products (every vector count per row of the SIMD
# widths), 3 and 80 the GEMM; partial query / key tiles and row blocks throughout.
@pytest.mark.parametrize("T,S,D,Dv", [(5, 7, 3, 3), (70, 140, 16, 16), (130, 260, 32, 32), (33, 45, 8, 24),
                                      (9, 300, 64, 48), (6, 11, 80, 16), (3, 5, 16, 80)])
@pytest.mark.parametrize("kind", ["none", "causal", "mask"])
def test_sdpa_kernel_matches_float64_on_every_simd_path(isa_level, T, S, D, Dv, kind):
    rng = np.random.default_rng(T + S + D)
    b, n = 2, 2
    q, k, v, dout = (rng.standard_normal(sh).astype(np.float32) for sh in
                     ((b, T, n, D), (b, S, n, D), (b, S, n, Dv), (b, T, n, Dv)))
    mask = None
    visible = np.ones((b, n, T, S), bool)
    if kind == "mask":
        m = rng.random((b, 1, T, S)) > 0.3
        m[0, 0, 1, :] = False                      # a query that sees nothing
        mask = m.astype(np.uint8)
        visible &= m
    if kind == "causal":
        visible &= np.tril(np.ones((T, S), bool))
    scale = 1 / np.sqrt(D)
    out = np.empty_like(dout)
    rm, ri = np.empty((b, n, T), np.float32), np.empty((b, n, T), np.float32)
    A.sdpa_forward(q, k, v, mask, kind == "causal", scale, out, rm, ri)
    dq, dk, dv = np.empty_like(q), np.empty_like(k), np.empty_like(v)
    A.sdpa_backward(q, k, v, mask, kind == "causal", scale, out, rm, ri, dout, dq, dk, dv)
    ref = _sdpa_reference(q, k, v, visible, scale, dout)
    for got, want in zip((out, dq, dk, dv), ref):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
