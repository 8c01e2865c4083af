"""Tests for the elementwise kernel modules (activation, bias, loss, optimizer_step, softmax)
against independent float64 numpy references.

Gradients are checked against central finite differences of the kernels' own
forward passes in float64 on small arrays; larger arrays (past the parallel
threshold) are checked against the analytic references.
"""
import math

import numpy as np
import pytest

from types import SimpleNamespace

from engine._kernels import activation, bias, loss, optimizer_step, softmax

# The elementwise families' modules under one name (each kernel lives in exactly one of them).
E = SimpleNamespace(**{name: getattr(mod, name) for mod in (activation, bias, loss, optimizer_step, softmax)
                       for name in dir(mod) if not name.startswith("_")})

DTYPES = [np.float32, np.float64]
# Shapes for elementwise ops: scalar, empty, single, small 2-D/3-D, and one
# large enough to start a thread team.
SHAPES = [(), (0,), (1,), (3, 5), (2, 3, 4), (70001,)]
BIG = 70001


def rng(seed=0):
    return np.random.default_rng(seed)


def rand(shape, dtype, seed=0, scale=2.0):
    return np.asarray(rng(seed).standard_normal(shape) * scale).astype(dtype)


def tol(dtype):
    return dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-13)


def _erf(v):
    return np.vectorize(math.erf, otypes=[np.float64])(v)


# ---------------------------------------------------------------------------
# References (float64)
# ---------------------------------------------------------------------------

SELU_SCALE = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717
GT_K = math.sqrt(2.0 / math.pi)
GT_C = 0.044715


def ref_sigmoid(x):
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def ref_gelu_tanh_slope(x):
    t = np.tanh(GT_K * (x + GT_C * x ** 3))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GT_K * (1 + 3 * GT_C * x * x)


# name -> (forward reference, which array the grad takes: "y" or "x",
#          reference d/dx as a function of x, kwargs)
ACTIVATIONS = {
    "relu": (lambda x: np.maximum(x, 0.0), "y", lambda x: (x > 0) * 1.0, {}),
    "sigmoid": (ref_sigmoid, "y", lambda x: ref_sigmoid(x) * (1 - ref_sigmoid(x)), {}),
    "tanh": (np.tanh, "y", lambda x: 1 - np.tanh(x) ** 2, {}),
    "elu": (lambda x: np.where(x > 0, x, 0.7 * (np.exp(x) - 1)), "y",
            lambda x: np.where(x > 0, 1.0, 0.7 * np.exp(x)), {"alpha": 0.7}),
    "selu": (lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * (np.exp(x) - 1)), "y",
             lambda x: SELU_SCALE * np.where(x > 0, 1.0, SELU_ALPHA * np.exp(x)), {}),
    "softplus": (lambda x: np.logaddexp(x, 0.0), "x", ref_sigmoid, {}),
    "gelu": (lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))), "x",
             lambda x: 0.5 * (1 + _erf(x / math.sqrt(2)))
             + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi), {}),
    "gelu_tanh": (lambda x: 0.5 * x * (1 + np.tanh(GT_K * (x + GT_C * x ** 3))), "x",
                  ref_gelu_tanh_slope, {}),
    "silu": (lambda x: x * ref_sigmoid(x), "x",
             lambda x: ref_sigmoid(x) * (1 + x * (1 - ref_sigmoid(x))), {}),
    "leaky_relu": (lambda x: np.where(x >= 0, x, 0.3 * x), "x",
                   lambda x: np.where(x > 0, 1.0, 0.3), {"negative_slope": 0.3}),
}


def _grad_input(name, x, dtype):
    """The array the backward of `name` takes: forward output or input."""
    fwd = getattr(E, name)
    _, kind, _, kw = ACTIVATIONS[name]
    if kind == "y":
        return fwd(x, np.empty_like(x), **kw)
    return x


# ---------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_forward(name, shape, dtype):
    ref, _, _, kw = ACTIVATIONS[name]
    x = rand(shape, dtype, seed=1)
    expect = ref(x.astype(np.float64))
    out = np.empty_like(x)
    assert getattr(E, name)(x, out, **kw) is out
    np.testing.assert_allclose(out, expect, **tol(dtype))
    inplace = x.copy()
    getattr(E, name)(inplace, inplace, **kw)
    np.testing.assert_array_equal(inplace, out)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (1,), (4, 6), (BIG,)])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_grad_matches_reference(name, shape, dtype):
    _, _, slope, kw = ACTIVATIONS[name]
    x = rand(shape, dtype, seed=2)
    g = rand(shape, dtype, seed=3, scale=1.0)
    a = _grad_input(name, x, dtype)
    expect = g.astype(np.float64) * slope(x.astype(np.float64))
    out = np.empty_like(x)
    assert getattr(E, name + "_grad")(a, g, out, **kw) is out
    t = tol(dtype)
    if dtype == np.float32:
        # Derived from the rounded float32 forward output.
        t = dict(rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out, expect, **t)
    g_inplace = g.copy()
    getattr(E, name + "_grad")(a, g_inplace, g_inplace, **kw)
    np.testing.assert_array_equal(g_inplace, out)


def _fd_elementwise(fwd, x, h=1e-6, **kw):
    xp, xm = x + h, x - h
    return (fwd(xp, np.empty_like(x), **kw) - fwd(xm, np.empty_like(x), **kw)) / (2 * h)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_grad_finite_differences(name):
    _, _, _, kw = ACTIVATIONS[name]
    x = rand((5, 7), np.float64, seed=4)
    x[np.abs(x) < 1e-3] = 0.5          # keep away from the kinks at 0
    g = rand((5, 7), np.float64, seed=5, scale=1.0)
    fwd = getattr(E, name)
    expect = g * _fd_elementwise(fwd, x, **kw)
    got = getattr(E, name + "_grad")(_grad_input(name, x, np.float64), g, np.empty_like(x), **kw)
    np.testing.assert_allclose(got, expect, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", DTYPES)
def test_activations_extreme_inputs_stay_finite(dtype):
    x = np.array([-1e4, -200.0, -50.0, 0.0, 50.0, 200.0, 1e4], dtype=dtype)
    for name in ("sigmoid", "softplus", "silu", "gelu", "gelu_tanh", "tanh"):
        out = getattr(E, name)(x, np.empty_like(x))
        assert np.all(np.isfinite(out)), (name, out)
    s = E.sigmoid(x, np.empty_like(x))
    assert s[0] == 0 and s[-1] == 1
    sp = E.softplus(x, np.empty_like(x))
    assert sp[-1] == x[-1] and sp[0] == 0


def test_relu_propagates_nan():
    x = np.array([np.nan, -1.0, 2.0])
    out = E.relu(x, np.empty_like(x))
    assert np.isnan(out[0]) and out[1] == 0 and out[2] == 2


# ---------------------------------------------------------------------------
# Softmax family
# ---------------------------------------------------------------------------

def ref_softmax(x):
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def ref_log_softmax(x):
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


ROW_SHAPES = [(0, 4), (1,), (1, 1), (3, 5), (2, 3, 7), (3000, 33)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", ROW_SHAPES)
@pytest.mark.parametrize("name,ref", [("softmax", ref_softmax), ("log_softmax", ref_log_softmax)])
def test_softmax_forward(name, ref, shape, dtype):
    x = rand(shape, dtype, seed=6, scale=4.0)
    out = getattr(E, name)(x, np.empty_like(x))
    np.testing.assert_allclose(out, ref(x.astype(np.float64)), **tol(dtype))
    xi = x.copy()
    getattr(E, name)(xi, xi)
    np.testing.assert_array_equal(xi, out)


def test_softmax_large_logits_stable():
    x = np.array([[1000.0, 1001.0, -1000.0]], dtype=np.float32)
    out = E.softmax(x, np.empty_like(x))
    np.testing.assert_allclose(out, ref_softmax(x.astype(np.float64)), rtol=1e-6, atol=1e-7)
    ls = E.log_softmax(x, np.empty_like(x))
    np.testing.assert_allclose(ls, ref_log_softmax(x.astype(np.float64)), rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", ROW_SHAPES)
def test_softmax_grads_reference(shape, dtype):
    x = rand(shape, dtype, seed=7)
    g = rand(shape, dtype, seed=8, scale=1.0)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    y = E.softmax(x, np.empty_like(x))
    s = ref_softmax(x64)
    expect = s * (g64 - (g64 * s).sum(-1, keepdims=True))
    loose = dict(rtol=1e-4, atol=1e-6) if dtype == np.float32 else tol(dtype)
    np.testing.assert_allclose(E.softmax_grad(y, g, np.empty_like(x)), expect, **loose)
    ly = E.log_softmax(x, np.empty_like(x))
    expect = g64 - s * g64.sum(-1, keepdims=True)
    np.testing.assert_allclose(E.log_softmax_grad(ly, g, np.empty_like(x)), expect, **loose)
    gi = g.copy()
    E.softmax_grad(y, gi, gi)
    np.testing.assert_array_equal(gi, E.softmax_grad(y, g, np.empty_like(x)))


def _fd_vjp(fwd, x, g, h=1e-6):
    """d/dx sum(g * fwd(x)) by central differences."""
    grad = np.empty_like(x)
    flat = x.reshape(-1)
    for k in range(flat.size):
        old = flat[k]
        flat[k] = old + h
        fp = (g * fwd(x, np.empty_like(x))).sum()
        flat[k] = old - h
        fm = (g * fwd(x, np.empty_like(x))).sum()
        flat[k] = old
        grad.reshape(-1)[k] = (fp - fm) / (2 * h)
    return grad


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_grads_finite_differences(name):
    x = rand((3, 4), np.float64, seed=9)
    g = rand((3, 4), np.float64, seed=10, scale=1.0)
    fwd = getattr(E, name)
    y = fwd(x, np.empty_like(x))
    got = getattr(E, name + "_grad")(y, g, np.empty_like(x))
    np.testing.assert_allclose(got, _fd_vjp(fwd, x.copy(), g), rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------------------
# Bias
# ---------------------------------------------------------------------------

BIAS_SHAPES = [(0, 3), (1,), (1, 1), (4, 5), (2, 3, 6), (5000, 17), (1, 40000), (3, 30000)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", BIAS_SHAPES)
def test_bias_add_and_grad(shape, dtype):
    x = rand(shape, dtype, seed=11)
    b = rand(shape[-1:], dtype, seed=12)
    out = E.bias_add(x, b, np.empty_like(x))
    np.testing.assert_allclose(out, x.astype(np.float64) + b.astype(np.float64), **tol(dtype))
    xi = x.copy()
    E.bias_add(xi, b, xi)
    np.testing.assert_array_equal(xi, out)

    ob = np.full(shape[-1:], np.nan, dtype=dtype)
    assert E.bias_grad(x, ob) is ob
    expect = x.astype(np.float64).reshape(-1, shape[-1]).sum(axis=0)
    np.testing.assert_allclose(ob, expect, rtol=1e-6 if dtype == np.float32 else 1e-12,
                               atol=1e-6 if dtype == np.float32 else 1e-12)


def test_bias_grad_float32_accumulates_in_double():
    g = np.full((1_000_000, 1), 0.1, dtype=np.float32)
    ob = np.empty(1, np.float32)
    E.bias_grad(g, ob)
    assert abs(float(ob[0]) - 1_000_000 * float(np.float32(0.1))) < 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 0, 4), (32, 200, 32), (5, 7, 256), (2, 3, 300), (9, 1, 3)])
def test_sum_middle_against_float64(shape, dtype):
    x = rand(shape, dtype, seed=21)
    out = np.full((shape[0], shape[2]), np.nan, dtype)
    assert E.sum_middle(x, out) is out
    np.testing.assert_allclose(out, x.astype(np.float64).sum(axis=1), rtol=1e-6 if dtype == np.float32 else 1e-13,
                               atol=1e-6 if dtype == np.float32 else 1e-13)
    if dtype == np.float32:       # accumulated in double: a long run of 0.1s keeps its digits
        long = np.full((2, 200_000, 3), 0.1, np.float32)
        total = E.sum_middle(long, np.empty((2, 3), np.float32))
        assert abs(float(total[0, 0]) - 200_000 * float(np.float32(0.1))) < 0.05


def test_sum_middle_checks():
    x = np.ones((2, 3, 4), np.float32)
    with pytest.raises(ValueError, match="3-D"):
        E.sum_middle(np.ones((2, 3), np.float32), np.empty((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"shape \(2, 4\)"):
        E.sum_middle(x, np.empty((2, 3), np.float32))
    with pytest.raises(ValueError, match="dtype|float64"):
        E.sum_middle(x, np.empty((2, 4), np.float64))
    with pytest.raises(ValueError, match="C-contiguous"):
        E.sum_middle(np.ones((2, 4, 3), np.float32).transpose(0, 2, 1), np.empty((2, 3), np.float32))
    ro = np.empty((2, 4), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only|writ"):
        E.sum_middle(x, ro)


def test_bias_grad_finite_differences():
    x = rand((4, 3), np.float64, seed=13)
    b = rand((3,), np.float64, seed=14)
    g = rand((4, 3), np.float64, seed=15)
    fd = np.empty(3)
    h = 1e-6
    for c in range(3):
        bp, bm = b.copy(), b.copy()
        bp[c] += h
        bm[c] -= h
        fd[c] = ((g * E.bias_add(x, bp, np.empty_like(x))).sum()
                 - (g * E.bias_add(x, bm, np.empty_like(x))).sum()) / (2 * h)
    np.testing.assert_allclose(E.bias_grad(g, np.empty(3)), fd, rtol=1e-6)


# ---------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------

EPS = 1e-7


def ref_mse(t, p):
    return ((p - t) ** 2).mean(-1)


def ref_mae(t, p):
    return np.abs(p - t).mean(-1)


def ref_bce(t, p, eps=EPS):
    c = np.clip(p, eps, 1 - eps)
    return -(t * np.log(c) + (1 - t) * np.log(1 - c)).mean(-1)


def ref_bce_logits(t, z):
    return (np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))).mean(-1)


def ref_cce(t, p, eps=EPS):
    q = np.clip(p / p.sum(-1, keepdims=True), eps, 1 - eps)
    return -(t * np.log(q)).sum(-1)


def ref_cce_logits(t, z):
    return -(t * ref_log_softmax(z)).sum(-1)


def _one_hot(labels, c):
    return np.eye(c)[labels.reshape(-1)].reshape(labels.shape + (c,))


def _targets(kind, shape, seed):
    r = rng(seed)
    if kind == "regression":
        return r.standard_normal(shape)
    if kind == "binary":
        return r.uniform(0, 1, shape)          # soft labels exercise both log terms
    # Categorical targets that need not sum to one.
    return r.uniform(0, 1, shape) * (r.uniform(size=shape) < 0.5)


def _preds(kind, shape, seed):
    r = rng(seed)
    if kind == "prob":
        return r.uniform(0.05, 0.95, shape)
    if kind == "positive":
        return r.uniform(0.1, 2.0, shape)      # unnormalised probabilities
    return r.standard_normal(shape) * 3


# name -> (reference, target kind, prediction kind)
DENSE_LOSSES = {
    "mse": (ref_mse, "regression", "real"),
    "mae": (ref_mae, "regression", "real"),
    "binary_crossentropy": (ref_bce, "binary", "prob"),
    "binary_crossentropy_logits": (ref_bce_logits, "binary", "real"),
    "categorical_crossentropy": (ref_cce, "cat", "positive"),
    "categorical_crossentropy_logits": (ref_cce_logits, "cat", "real"),
}
# (5000, 10) and (3, 700): categorical rows take their logs in batches across rows and
# within a row (loss.pyx's _cce_rows), flushed mid-row in the second.
LOSS_SHAPES = [(0, 3), (1, 1), (1,), (4, 5), (2, 3, 6), (5000, 10), (3, 700)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", LOSS_SHAPES)
@pytest.mark.parametrize("name", sorted(DENSE_LOSSES))
def test_dense_loss_values(name, shape, dtype):
    ref, tk, pk = DENSE_LOSSES[name]
    t = _targets(tk, shape, 20).astype(dtype)
    p = _preds(pk, shape, 21).astype(dtype)
    rows = int(np.prod(shape[:-1]))
    loss = np.full(rows, np.nan, dtype)
    grad = np.full(shape, np.nan, dtype)
    assert getattr(E, name)(t, p, loss, grad) is loss
    expect = ref(t.astype(np.float64), p.astype(np.float64)).reshape(-1)
    np.testing.assert_allclose(loss, expect, rtol=1e-5 if dtype == np.float32 else 1e-11,
                               atol=1e-6 if dtype == np.float32 else 1e-12)
    assert np.all(np.isfinite(grad))
    # Without a gradient buffer, and with loss_out shaped like the leading axes.
    loss2 = np.empty(shape[:-1], dtype)
    getattr(E, name)(t, p, loss2, None)
    np.testing.assert_array_equal(loss2.reshape(-1), loss)
    # grad_out may be y_pred itself.
    pi = p.copy()
    getattr(E, name)(t, pi, np.empty(rows, dtype), pi)
    np.testing.assert_array_equal(pi, grad)


def _fd_rows(fn, t, p, h=1e-6, **kw):
    """d loss_out[i] / d p[i, :] by central differences, rows flattened."""
    c = p.shape[-1]
    p2 = p.reshape(-1, c)
    grad = np.empty_like(p2)
    rows = p2.shape[0]
    for j in range(c):
        pp, pm = p2.copy(), p2.copy()
        pp[:, j] += h
        pm[:, j] -= h
        lp = fn(t, pp.reshape(p.shape), np.empty(rows), None, **kw)
        lm = fn(t, pm.reshape(p.shape), np.empty(rows), None, **kw)
        grad[:, j] = (lp - lm) / (2 * h)
    return grad.reshape(p.shape)


@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 3)])
@pytest.mark.parametrize("name", sorted(DENSE_LOSSES))
def test_dense_loss_grad_finite_differences(name, shape):
    _, tk, pk = DENSE_LOSSES[name]
    t = _targets(tk, shape, 22)
    p = _preds(pk, shape, 23)
    if name == "mae":
        p[np.abs(p - t) < 1e-3] += 0.01
    fn = getattr(E, name)
    grad = np.empty_like(p)
    fn(t, p, np.empty(int(np.prod(shape[:-1]))), grad)
    np.testing.assert_allclose(grad, _fd_rows(fn, t, p), rtol=1e-5, atol=1e-7)


def test_bce_gradient_zero_where_clipped():
    t = np.array([[1.0, 0.0, 0.5, 0.3]])
    p = np.array([[0.0, 1.0, 1e-9, 0.5]])
    loss, grad = np.empty(1), np.empty_like(p)
    E.binary_crossentropy(t, p, loss, grad)
    np.testing.assert_allclose(loss, ref_bce(t, p))
    assert grad[0, 0] == 0 and grad[0, 1] == 0 and grad[0, 2] == 0 and grad[0, 3] != 0


def test_cce_gradient_with_clipping_matches_finite_differences():
    # The first class underflows the clip (gradient 0 through it) and targets do not sum to 1.
    t = np.array([[0.3, 0.5, 0.4], [0.0, 1.0, 0.0]])
    p = np.array([[1e-9, 0.5, 0.7], [0.2, 0.3, 0.5]])
    grad = np.empty_like(p)
    E.categorical_crossentropy(t, p, np.empty(2), grad)
    np.testing.assert_allclose(grad, _fd_rows(E.categorical_crossentropy, t, p, h=1e-11),
                               rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cce_one_hot_rows_and_non_finite_predictions(dtype):
    """Classes with target 0 take a shortcut (no log, gradient -dot / s); it must give the
    reference's values, and a NaN or inf prediction in such a class must still make the row's
    loss NaN (TerminateOnNaN relies on it)."""
    r = rng(30)
    p = r.uniform(0.01, 1.0, (6, 500)).astype(dtype)
    t = np.eye(500, dtype=dtype)[r.integers(0, 500, 6)]
    t[1] = 0                                               # a row with no target at all
    loss, grad = np.empty(6, dtype), np.empty_like(p)
    E.categorical_crossentropy(t, p, loss, grad)
    np.testing.assert_allclose(loss, ref_cce(t.astype(np.float64), p.astype(np.float64)),
                               rtol=1e-5 if dtype == np.float32 else 1e-12)
    fd = _fd_rows(E.categorical_crossentropy, t[:2].astype(np.float64), p[:2].astype(np.float64), h=1e-7)
    np.testing.assert_allclose(grad[:2], fd, rtol=1e-3 if dtype == np.float32 else 1e-5, atol=1e-7)
    hot = int(np.argmax(t[0]))
    for bad in (np.nan, np.inf):
        q = p.copy()
        q[0, (hot + 1) % 500] = bad
        E.categorical_crossentropy(t, q, loss, grad)
        assert np.isnan(loss[0]) and np.all(np.isfinite(loss[2:]))


def test_logit_losses_stable_for_large_logits():
    z = np.array([[1000.0, -1000.0, 0.0]], dtype=np.float32)
    t = np.array([[1.0, 0.0, 0.0]], dtype=np.float32)
    loss, grad = np.empty(1, np.float32), np.empty_like(z)
    E.categorical_crossentropy_logits(t, z, loss, grad)
    assert loss[0] == 0 and np.all(np.isfinite(grad))
    E.binary_crossentropy_logits(t, z, loss, grad)
    np.testing.assert_allclose(loss, ref_bce_logits(t.astype(np.float64), z.astype(np.float64)),
                               rtol=1e-6)


def test_cce_logits_loss_exact_for_huge_logits():
    z = np.array([[1e8, 1e8 - 1, 0.0]])
    t = np.array([[0.0, 1.0, 0.0]])
    loss = np.empty(1)
    E.categorical_crossentropy_logits(t, z, loss)
    np.testing.assert_allclose(loss, [1 + np.log1p(np.exp(-1.0))], rtol=1e-14)


@pytest.mark.parametrize("label_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(0, 3), (1, 1), (4, 5), (2, 3, 6), (5000, 10)])
@pytest.mark.parametrize("logits", [False, True])
def test_sparse_losses_match_one_hot(logits, shape, dtype, label_dtype):
    c = shape[-1]
    labels = rng(30).integers(0, c, size=shape[:-1]).astype(label_dtype)
    p = _preds("real" if logits else "positive", shape, 31).astype(dtype)
    onehot = _one_hot(labels, c)
    ref = ref_cce_logits if logits else ref_cce
    name = "sparse_categorical_crossentropy" + ("_logits" if logits else "")
    dense = "categorical_crossentropy" + ("_logits" if logits else "")
    rows = int(np.prod(shape[:-1]))
    loss, grad = np.empty(rows, dtype), np.empty(shape, dtype)
    assert getattr(E, name)(labels.reshape(-1), p, loss, grad) is loss
    expect = ref(onehot, p.astype(np.float64)).reshape(-1)
    np.testing.assert_allclose(loss, expect, rtol=1e-5 if dtype == np.float32 else 1e-11,
                               atol=1e-6 if dtype == np.float32 else 1e-12)
    dgrad = np.empty(shape, dtype)
    getattr(E, dense)(onehot.astype(dtype), p, np.empty(rows, dtype), dgrad)
    np.testing.assert_allclose(grad, dgrad, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-6 if dtype == np.float32 else 1e-12)
    # Labels shaped like the leading axes are accepted too.
    loss2 = np.empty(rows, dtype)
    getattr(E, name)(labels, p, loss2)
    np.testing.assert_array_equal(loss2, loss)


@pytest.mark.parametrize("logits", [False, True])
def test_sparse_loss_grad_finite_differences(logits):
    labels = np.array([0, 2, 1, 2])
    p = _preds("real" if logits else "positive", (4, 3), 32)
    name = "sparse_categorical_crossentropy" + ("_logits" if logits else "")
    fn = getattr(E, name)
    grad = np.empty_like(p)
    fn(labels, p, np.empty(4), grad)
    np.testing.assert_allclose(grad, _fd_rows(fn, labels, p), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("bad", [-1, 3, 2**40])
@pytest.mark.parametrize("name", ["sparse_categorical_crossentropy",
                                  "sparse_categorical_crossentropy_logits"])
def test_sparse_labels_out_of_range(name, bad):
    label_dtype = np.int64 if abs(bad) > 2**31 else np.int32
    labels = np.array([0, bad, 1], dtype=label_dtype)
    p = np.full((3, 3), 1 / 3)
    with pytest.raises(ValueError, match=rf"label {bad} .*C = 3"):
        getattr(E, name)(labels, p, np.empty(3), np.empty_like(p))


# ---------------------------------------------------------------------------
# Optimizers: kernels vs a hand-written numpy step, repeated three times
# ---------------------------------------------------------------------------

OPT_SHAPES = [(0,), (1,), (5, 7), (BIG,)]


def _f(dtype, v):
    """A Python scalar as the variable dtype, as Keras casts hyper-parameters."""
    return dtype(v)


def _opt_tol(dtype):
    return dict(rtol=2e-6, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-15)


def _start(shape, dtype, n_slots, seed=40):
    w = rand(shape, dtype, seed=seed)
    grads = [rand(shape, dtype, seed=seed + 1 + k, scale=1.0) for k in range(3)]
    slots = [np.abs(rand(shape, dtype, seed=seed + 10 + k, scale=0.1)) for k in range(n_slots)]
    return w, grads, slots


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", OPT_SHAPES)
def test_sgd(shape, dtype):
    w, grads, _ = _start(shape, dtype, 0)
    ref = w.copy()
    lr = _f(dtype, 0.01)
    for g in grads:
        ref = ref - g * lr
        assert E.sgd_update(w, g, 0.01) is w
    np.testing.assert_allclose(w, ref, **_opt_tol(dtype))


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", OPT_SHAPES)
def test_sgd_momentum(shape, dtype, nesterov):
    w, grads, (m,) = _start(shape, dtype, 1)
    rw, rm = w.copy(), m.copy()
    lr, mu = _f(dtype, 0.05), _f(dtype, 0.9)
    for g in grads:
        rm = -g * lr + rm * mu
        rw = rw + (-g * lr + rm * mu if nesterov else rm)
        E.sgd_momentum_update(w, g, m, 0.05, 0.9, nesterov)
    np.testing.assert_allclose(m, rm, **_opt_tol(dtype))
    np.testing.assert_allclose(w, rw, **_opt_tol(dtype))


@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.8])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", OPT_SHAPES)
def test_rmsprop(shape, dtype, momentum, centered):
    w, grads, (vel, mom, avg) = _start(shape, dtype, 3)
    # avg^2 <= velocity keeps velocity - avg^2 >= 0 through every step.
    avg[...] = np.sqrt(vel) * np.where(rng(41).uniform(size=shape) < 0.5, -0.5, 0.5)
    rw, rv, rmom, ravg = w.copy(), vel.copy(), mom.copy(), avg.copy()
    lr, rho, eps = 0.01, 0.9, 1e-7
    f = lambda v: _f(dtype, v)
    for g in grads:
        rv = f(rho) * rv + f(1 - rho) * (g * g)
        if centered:
            ravg = f(rho) * ravg + f(1 - rho) * g
            denom = rv - ravg * ravg + f(eps)
        else:
            denom = rv + f(eps)
        inc = f(lr) * g / np.sqrt(denom)
        if momentum > 0:
            rmom = f(momentum) * rmom + inc
            rw = rw - rmom
        else:
            rw = rw - inc
        E.rmsprop_update(w, g, vel, lr, rho, eps, momentum, mom if momentum > 0 else None,
                         centered, avg if centered else None)
    t = _opt_tol(dtype)
    np.testing.assert_allclose(vel, rv, **t)
    np.testing.assert_allclose(w, rw, **t)
    if momentum > 0:
        np.testing.assert_allclose(mom, rmom, **t)
    if centered:
        np.testing.assert_allclose(avg, ravg, **t)


@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", OPT_SHAPES)
def test_adam(shape, dtype, amsgrad):
    w, grads, (m, v, vhat) = _start(shape, dtype, 3)
    rw, rm, rv, rvh = w.copy(), m.copy(), v.copy(), vhat.copy()
    lr, b1, b2, eps = 0.001, 0.9, 0.999, 1e-7
    f = lambda x: _f(dtype, x)
    for step, g in enumerate(grads, start=1):
        alpha = lr * math.sqrt(1 - b2 ** step) / (1 - b1 ** step)
        rm = rm + (g - rm) * f(1 - b1)
        rv = rv + (g * g - rv) * f(1 - b2)
        vv = rv
        if amsgrad:
            rvh = np.maximum(rvh, rv)
            vv = rvh
        rw = rw - (rm * f(alpha)) / (np.sqrt(vv) + f(eps))
        E.adam_update(w, g, m, v, alpha, b1, b2, eps, vhat if amsgrad else None)
    t = _opt_tol(dtype)
    np.testing.assert_allclose(m, rm, **t)
    np.testing.assert_allclose(v, rv, **t)
    np.testing.assert_allclose(w, rw, **t)
    if amsgrad:
        np.testing.assert_allclose(vhat, rvh, **t)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", OPT_SHAPES)
def test_adagrad(shape, dtype):
    w, grads, (acc,) = _start(shape, dtype, 1)
    rw, racc = w.copy(), acc.copy()
    f = lambda x: _f(dtype, x)
    for g in grads:
        racc = racc + g * g
        rw = rw - (f(0.1) * g) / np.sqrt(racc + f(1e-7))
        E.adagrad_update(w, g, acc, 0.1, 1e-7)
    np.testing.assert_allclose(acc, racc, **_opt_tol(dtype))
    np.testing.assert_allclose(w, rw, **_opt_tol(dtype))


def test_float32_adam_is_float32_arithmetic():
    # A float64 computation rounded at the end would differ from Keras' float32 steps.
    w, grads, (m, v) = _start((BIG,), np.float32, 2)
    rw, rm, rv = w.copy(), m.copy(), v.copy()
    f = np.float32
    for g in grads:
        rm = rm + (g - rm) * f(0.1)
        rv = rv + (g * g - rv) * f(1 - 0.999)
        rw = rw - (rm * f(0.01)) / (np.sqrt(rv) + f(1e-7))
        E.adam_update(w, g, m, v, 0.01, 0.9, 0.999, 1e-7)
    assert np.max(np.abs(w.view(np.int32) - rw.view(np.int32))) <= 2   # ulps


# ---------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mask_dtype", [np.uint8, np.bool_])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_dropout(shape, dtype, mask_dtype):
    x = rand(shape, dtype, seed=50)
    mask = np.asarray(rng(51).uniform(size=shape) < 0.7).astype(mask_dtype)
    out = E.dropout_apply(x, mask, 1 / 0.7, np.empty_like(x))
    expect = np.where(mask != 0, x.astype(np.float64) * (1 / 0.7), 0.0)
    np.testing.assert_allclose(out, expect, **tol(dtype))
    xi = x.copy()
    E.dropout_apply(xi, mask, 1 / 0.7, xi)
    np.testing.assert_array_equal(xi, out)


def test_dropout_zeroes_dropped_nan():
    x = np.array([np.nan, np.inf, 1.0])
    out = E.dropout_apply(x, np.array([0, 0, 3], np.uint8), 2.0, np.empty_like(x))
    np.testing.assert_array_equal(out, [0.0, 0.0, 2.0])


# ---------------------------------------------------------------------------
# Bad inputs
# ---------------------------------------------------------------------------

def _bad_calls():
    f4 = np.zeros((4, 3), np.float32)
    d4 = np.zeros((4, 3))
    d5 = np.zeros((5, 3))
    nc = np.zeros((3, 4))[:, :3].copy(order="F")     # Fortran order: not C-contiguous
    strided = np.zeros((4, 6))[:, ::2]
    ro = np.zeros((4, 3))
    ro.flags.writeable = False
    buf = np.zeros(13)
    shifted_a, shifted_b = buf[:12].reshape(4, 3), buf[1:].reshape(4, 3)
    i4 = np.zeros((4, 3), np.int64)
    lab = np.zeros(4, np.int64)
    return {
        "relu dtype mismatch": lambda: E.relu(f4, d4.copy()),
        "relu shape mismatch": lambda: E.relu(d4, d5.copy()),
        "relu non-contiguous x": lambda: E.relu(strided, np.zeros((4, 3))),
        "relu fortran out": lambda: E.relu(d4, np.asfortranarray(np.zeros((4, 3)))),
        "relu int input": lambda: E.relu(i4, d4.copy()),
        "relu list input": lambda: E.relu([1.0, 2.0], np.zeros(2)),
        "relu read-only out": lambda: E.relu(d4, ro),
        "relu partial overlap": lambda: E.relu(shifted_a, shifted_b),
        "elu_grad g shape": lambda: E.elu_grad(d4, d5, np.zeros((4, 3))),
        "gelu_grad g dtype": lambda: E.gelu_grad(d4, f4, np.zeros((4, 3))),
        "softmax scalar": lambda: E.softmax(np.zeros(()), np.zeros(())),
        "softmax_grad shape": lambda: E.softmax_grad(d4, d5, np.zeros((4, 3))),
        "bias_add wrong b": lambda: E.bias_add(d4, np.zeros(4), np.zeros((4, 3))),
        "bias_add b dtype": lambda: E.bias_add(d4, np.zeros(3, np.float32), np.zeros((4, 3))),
        "bias_add b 2-D": lambda: E.bias_add(d4, np.zeros((1, 3)), np.zeros((4, 3))),
        "bias_add b aliases out": lambda: (lambda o: E.bias_add(d4, o[0], o))(np.zeros((4, 3))),
        "bias_grad wrong out": lambda: E.bias_grad(d4, np.zeros(4)),
        "bias_grad read-only": lambda: E.bias_grad(d4, ro[0]),
        "mse shape mismatch": lambda: E.mse(d4, d5, np.zeros(4), None),
        "mse loss_out shape": lambda: E.mse(d4, d4, np.zeros(5), None),
        "mse loss_out dtype": lambda: E.mse(d4, d4, np.zeros(4, np.float32), None),
        "mse grad_out shape": lambda: E.mse(d4, d4, np.zeros(4), np.zeros((4, 4))),
        "mse scalar": lambda: E.mse(np.zeros(()), np.zeros(()), np.zeros(1), None),
        "bce dtype mismatch": lambda: E.binary_crossentropy(f4, d4, np.zeros(4), None),
        "cce non-contiguous": lambda: E.categorical_crossentropy(nc, nc, np.zeros(3), None),
        "cce loss_out in y_pred": lambda: (lambda p: E.categorical_crossentropy(
            d4, p, p.reshape(-1)[:4], None))(np.ones((4, 3))),
        "sparse float labels": lambda: E.sparse_categorical_crossentropy(
            np.zeros(4), d4, np.zeros(4), None),
        "sparse int16 labels": lambda: E.sparse_categorical_crossentropy(
            np.zeros(4, np.int16), d4, np.zeros(4), None),
        "sparse label count": lambda: E.sparse_categorical_crossentropy_logits(
            np.zeros(5, np.int64), d4, np.zeros(4), None),
        "sparse labels 2-D": lambda: E.sparse_categorical_crossentropy_logits(
            np.zeros((4, 1), np.int64), d4, np.zeros(4), None),
        "sparse empty classes": lambda: E.sparse_categorical_crossentropy_logits(
            lab, np.zeros((4, 0)), np.zeros(4), None),
        "sgd shape": lambda: E.sgd_update(np.zeros((4, 3)), d5, 0.1),
        "sgd read-only w": lambda: E.sgd_update(ro, d4, 0.1),
        "momentum slot dtype": lambda: E.sgd_momentum_update(
            np.zeros((4, 3)), d4, np.zeros((4, 3), np.float32), 0.1, 0.9, False),
        "momentum slot is w": lambda: (lambda w: E.sgd_momentum_update(
            w, d4, w, 0.1, 0.9, False))(np.zeros((4, 3))),
        "rmsprop missing mom": lambda: E.rmsprop_update(
            np.zeros((4, 3)), d4, np.zeros((4, 3)), 0.1, 0.9, 1e-7, 0.5, None, False, None),
        "rmsprop missing avg": lambda: E.rmsprop_update(
            np.zeros((4, 3)), d4, np.zeros((4, 3)), 0.1, 0.9, 1e-7, 0.0, None, True, None),
        "adam v shape": lambda: E.adam_update(
            np.zeros((4, 3)), d4, np.zeros((4, 3)), d5.copy(), 0.1, 0.9, 0.99, 1e-7, None),
        "adam m is v": lambda: (lambda m: E.adam_update(
            np.zeros((4, 3)), d4, m, m, 0.1, 0.9, 0.99, 1e-7, None))(np.zeros((4, 3))),
        "adagrad non-contiguous": lambda: E.adagrad_update(
            np.zeros((4, 3)), strided, np.zeros((4, 3)), 0.1, 1e-7),
        "dropout mask dtype": lambda: E.dropout_apply(d4, np.zeros((4, 3), np.int32), 2.0,
                                                       np.zeros((4, 3))),
        "dropout mask shape": lambda: E.dropout_apply(d4, np.zeros((4, 4), np.uint8), 2.0,
                                                       np.zeros((4, 3))),
    }


BAD = _bad_calls()


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_inputs_raise_value_error(case):
    with pytest.raises(ValueError):
        BAD[case]()


def test_error_messages_name_function_and_shapes():
    with pytest.raises(ValueError, match=r"relu: out has shape \(5, 3\) but x has shape \(4, 3\)"):
        E.relu(np.zeros((4, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"bias_add: b must have shape \(3,\)"):
        E.bias_add(np.zeros((4, 3)), np.zeros(4), np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"sparse_categorical_crossentropy: label 7 at index 1"):
        E.sparse_categorical_crossentropy(np.array([0, 7], np.int32), np.ones((2, 5)),
                                          np.empty(2), None)


# ---------------------------------------------------------------------------
# float32 exp and the baseline / AVX2 builds of the exp-based loops
# ---------------------------------------------------------------------------

@pytest.fixture
def simd_path(isa_level):
    return isa_level


def _ulps(got, ref64):
    ref32 = ref64.astype(np.float32)
    return np.abs(got.astype(np.float64) - ref64) / np.spacing(np.abs(ref32))


def test_exp_float32_accuracy(simd_path):
    x = np.linspace(-110.0, 90.0, 400_001).astype(np.float32)
    out = E.exp(x, np.empty_like(x))
    ref = np.exp(x.astype(np.float64))
    normal = (ref > np.finfo(np.float32).tiny) & (ref < np.finfo(np.float32).max)
    assert _ulps(out[normal], ref[normal]).max() <= 2.0
    assert np.all(np.isinf(out[ref > 3.5e38]))
    sub = ref < np.finfo(np.float32).tiny          # gradual underflow, then 0
    np.testing.assert_allclose(out[sub], ref[sub], rtol=0, atol=3e-45)
    special = np.array([np.nan, -np.inf, np.inf, 0.0, -0.0, 88.7, -87.5], np.float32)
    got = E.exp(special, np.empty_like(special))
    assert np.isnan(got[0]) and got[1] == 0 and np.isinf(got[2]) and got[3] == 1 and got[4] == 1
    np.testing.assert_allclose(got[5:], np.exp(special[5:].astype(np.float64)), rtol=3e-7)


def test_exp_float64_matches_numpy():
    x = rand((1000,), np.float64, seed=60, scale=50.0)
    np.testing.assert_allclose(E.exp(x, np.empty_like(x)), np.exp(x), rtol=1e-15)


@pytest.mark.parametrize("n", [1, 7, 33, 5000])
def test_float32_simd_loops_match_reference(simd_path, n):
    x = rand((n,), np.float32, seed=61, scale=6.0)
    g = rand((n,), np.float32, seed=62, scale=1.0)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    t = dict(rtol=3e-6, atol=1e-7)
    for name in ("sigmoid", "silu"):
        ref = ACTIVATIONS[name][0]
        np.testing.assert_allclose(getattr(E, name)(x, np.empty_like(x)), ref(x64), **t)
    np.testing.assert_allclose(E.softplus_grad(x, g, np.empty_like(x)), g64 * ref_sigmoid(x64),
                               **t)
    np.testing.assert_allclose(E.silu_grad(x, g, np.empty_like(x)),
                               g64 * ACTIVATIONS["silu"][2](x64), **t)
    rows = x.reshape(1, -1)
    np.testing.assert_allclose(E.softmax(rows, np.empty_like(rows)),
                               ref_softmax(rows.astype(np.float64)), **t)
    np.testing.assert_allclose(E.log_softmax(rows, np.empty_like(rows)),
                               ref_log_softmax(rows.astype(np.float64)), rtol=3e-6, atol=3e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7,), (3, 5), (64, 33, 17)])
def test_scale_shift_matches_float64(dtype, shape):
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape).astype(dtype)
    a = rng.standard_normal(shape[-1]).astype(dtype)
    b = rng.standard_normal(shape[-1]).astype(dtype)
    want = x.astype(np.float64) * a + b
    out = np.full_like(x, np.nan)
    E.scale_shift(x, a, b, out)
    np.testing.assert_allclose(out, want, rtol=1e-6 if dtype == np.float32 else 1e-14, atol=1e-6)
    E.scale_shift(x, a, b, x)                                  # in place
    np.testing.assert_array_equal(x, out)
    with pytest.raises(ValueError, match="scale must have shape"):
        E.scale_shift(x, a[:-1] if shape[-1] > 1 else np.zeros(2, dtype), b, out)


ROW_STEPS = {
    "sgd": lambda w, g, s: E.sgd_update(w, g, 0.1),
    "momentum": lambda w, g, s: E.sgd_momentum_update(w, g, s[0], 0.1, 0.9, False),
    "nesterov": lambda w, g, s: E.sgd_momentum_update(w, g, s[0], 0.1, 0.9, True),
    "rmsprop": lambda w, g, s: E.rmsprop_update(w, g, s[0], 0.01, 0.9, 1e-7, 0.0, None, False, None),
    "rmsprop_momentum_centered": lambda w, g, s: E.rmsprop_update(w, g, s[0], 0.01, 0.9, 1e-7, 0.5, s[1],
                                                                  True, s[2]),
    "adam": lambda w, g, s: E.adam_update(w, g, s[0], s[1], 0.001, 0.9, 0.999, 1e-7),
    "amsgrad": lambda w, g, s: E.adam_update(w, g, s[0], s[1], 0.001, 0.9, 0.999, 1e-7, s[2]),
    "adagrad": lambda w, g, s: E.adagrad_update(w, g, s[0], 0.01, 1e-7),
}


@pytest.mark.parametrize("step", sorted(ROW_STEPS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("width", [19, 700])     # runs of up to 107 rows, and of 2 (RUN_ELEMENTS)
def test_optimizer_steps_by_rows_are_the_dense_steps(step, dtype, threads, width):
    """A table's gradient given by rows (rows, order, start) gives the same bits as the dense
    gradient (the sum of each id's rows in position order), for every optimizer kernel: rows with
    gradient take the full step, the others whatever the dense step does with a zero gradient."""
    from engine import config
    from engine.ops.embedding import RowGradient
    rng = np.random.default_rng(11)
    vocab = 257
    ids = rng.integers(0, 120, size=(30, 7))                          # repeats, unused rows
    rows = rng.standard_normal(ids.shape + (width,)).astype(dtype)
    w0 = rng.standard_normal((vocab, width)).astype(dtype)
    slots0 = [rng.random((vocab, width)).astype(dtype) for _ in range(3)]
    g = RowGradient(ids, rows, (vocab, width), dtype)
    w_dense, slots_dense = w0.copy(), [a.copy() for a in slots0]
    ROW_STEPS[step](w_dense, g.dense(), slots_dense)
    old = config.get_num_threads()
    config.set_num_threads(threads)
    try:
        w, slots = w0.copy(), [a.copy() for a in slots0]
        ROW_STEPS[step](w, g.kernel_rows(), slots)
    finally:
        config.set_num_threads(old)
    np.testing.assert_array_equal(w, w_dense)
    for a, b in zip(slots, slots_dense):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(w, w0)


def test_gradient_by_rows_is_checked():
    from engine.ops.embedding import RowGradient
    w, v = np.zeros((10, 3), np.float32), np.zeros((10, 3), np.float32)
    rows, order, start = RowGradient(np.array([1, 1, 4]), np.ones((3, 3), np.float32), (10, 3),
                                     np.float32).kernel_rows()
    with pytest.raises(ValueError, match="offsets"):
        E.adagrad_update(w, (rows, order, start[:-1]), v, 0.1, 1e-7)
    with pytest.raises(ValueError, match="positions outside"):
        E.adagrad_update(w, (rows, order + 3, start), v, 0.1, 1e-7)
    with pytest.raises(ValueError, match="rows must have shape"):
        E.adagrad_update(w, (rows[:, :2].copy(), order, start), v, 0.1, 1e-7)
    with pytest.raises(ValueError, match="2-D table"):
        E.sgd_update(w.reshape(-1), (rows, order, start), 0.1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("width", [5, 700])
def test_rmsprop_by_rows_with_deferred_decays_gives_the_eager_bits(dtype, threads, width):
    """Plain RMSprop by rows with `pending`: untouched rows' velocity decays are counted, applied
    before a row's next step and by apply_deferred_decay; weights after every step, and the
    velocity once the counts are applied, are the eager steps' bits (rows untouched for one to
    many steps, rows never touched, every row touched)."""
    from engine import config
    from engine.ops.embedding import RowGradient
    rng = np.random.default_rng(5)
    vocab = 64
    w0 = rng.standard_normal((vocab, width)).astype(dtype)
    v0 = rng.random((vocab, width)).astype(dtype)
    eager_w, eager_v = w0.copy(), v0.copy()
    w, v, pending = w0.copy(), v0.copy(), np.zeros(vocab, np.int32)
    old = config.get_num_threads()
    config.set_num_threads(threads)
    try:
        for step in range(12):
            hi = vocab if step == 5 else 40                    # rows 40.. only ever in step 5
            ids = rng.integers(0, hi, size=(vocab if step == 5 else 9,))
            if step == 5:
                ids = np.arange(vocab)                           # every row touched once
            rows = rng.standard_normal(ids.shape + (width,)).astype(dtype)
            g = RowGradient(ids, rows, (vocab, width), dtype).kernel_rows()
            E.rmsprop_update(eager_w, g, eager_v, 0.01, 0.9, 1e-7, 0.0, None, False, None)
            E.rmsprop_update(w, g, v, 0.01, 0.9, 1e-7, 0.0, None, False, None, pending)
            np.testing.assert_array_equal(w, eager_w, err_msg=f"weights after step {step}")
            touched = np.unique(ids)
            np.testing.assert_array_equal(v[touched], eager_v[touched], err_msg=f"touched rows, step {step}")
            assert (pending[touched] == 0).all()
        assert pending.max() > 5                                 # rows 40.. waited since step 5
        assert E.apply_deferred_decay(v, pending, 0.9) is v
    finally:
        config.set_num_threads(old)
    np.testing.assert_array_equal(v, eager_v)
    assert not pending.any()


def test_deferred_decay_arguments_are_checked():
    w = np.zeros((4, 3), np.float32)
    v = np.ones((4, 3), np.float32)
    rows = (np.ones((1, 3), np.float32), np.zeros(1, np.int64), np.array([0, 1, 1, 1, 1]))
    with pytest.raises(ValueError, match="plain RMSprop"):
        E.rmsprop_update(w, np.ones_like(w), v, 0.1, 0.9, 1e-7, 0.0, None, False, None, np.zeros(4, np.int32))
    with pytest.raises(ValueError, match="plain RMSprop"):
        E.rmsprop_update(w, rows, v, 0.1, 0.9, 1e-7, 0.5, np.zeros_like(w), False, None, np.zeros(4, np.int32))
    for bad, match in ((np.zeros(4, np.int64), "int32"), (np.zeros(3, np.int32), "3 counts for a table of 4"),
                       (np.full(4, -1, np.int32), ">= 0")):
        with pytest.raises(ValueError, match=match):
            E.rmsprop_update(w, rows, v, 0.1, 0.9, 1e-7, 0.0, None, False, None, bad)
        with pytest.raises(ValueError, match=match):
            E.apply_deferred_decay(v, bad, 0.9)
    with pytest.raises(ValueError, match="2-D"):
        E.apply_deferred_decay(np.ones(4, np.float32), np.zeros(4, np.int32), 0.9)
    # counts sharing memory with the velocity (or w) would be written into it
    v_as_counts = v.reshape(-1).view(np.int32)[:4]
    with pytest.raises(ValueError, match="pending .* and velocity .* must not share memory"):
        E.apply_deferred_decay(v, v_as_counts, 0.9)
    with pytest.raises(ValueError, match="pending .* and velocity .* must not share memory"):
        E.rmsprop_update(w, rows, v, 0.1, 0.9, 1e-7, 0.0, None, False, None, v_as_counts)
    with pytest.raises(ValueError, match="pending .* and w .* must not share memory"):
        E.rmsprop_update(w, rows, v, 0.1, 0.9, 1e-7, 0.0, None, False, None, w.reshape(-1).view(np.int32)[:4])


def test_cce_float32_logs_on_every_simd_path(isa_level):
    # The float32 logarithms (fast_math.h's engine_logf, per ISA) against float64 numpy, over
    # probabilities from the clip floor to one, soft and one-hot targets, one row wider than a
    # log batch.
    r = rng(31)
    p = np.concatenate([r.uniform(0, 1, (50, 600)), np.full((1, 600), 1e-9), np.eye(600)[:3]]).astype(np.float32)
    t = np.concatenate([r.uniform(0, 1, (50, 600)), np.eye(600)[:4]]).astype(np.float32)
    loss = np.empty(len(p), np.float32)
    E.categorical_crossentropy(t, p, loss, None)
    np.testing.assert_allclose(loss, ref_cce(t.astype(np.float64), p.astype(np.float64)), rtol=2e-6, atol=1e-6)


def test_float32_log_on_every_simd_path(isa_level):
    # engine_logf over the whole float32 range (subnormals to the largest float, both sides of
    # the sqrt(2) split) within 2 ulp of float64 numpy, and its edges as numpy's.
    r = rng(32)
    x = np.concatenate([np.exp(r.uniform(-103, 88.7, 4000)), r.uniform(0.5, 2.0, 4000),
                        [1.0, 2.0, 0.5, np.sqrt(2), 1e-45, 1e-40, 1.17549435e-38, 3.4e38]]).astype(np.float32)
    y = E.log(x, np.empty_like(x))
    ref = np.log(x.astype(np.float64))
    ulp = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(y - ref) / ulp) <= 2.0
    edges = np.array([0.0, -0.0, -1.0, np.inf, -np.inf, np.nan], np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.testing.assert_array_equal(E.log(edges, np.empty_like(edges)), np.log(edges))
