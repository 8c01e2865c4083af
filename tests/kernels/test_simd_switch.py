"""One switch for every kernel family: engine.config.set_simd_path (and ENGINE_SIMD) caps the
process-wide instruction-set level, and every family (gemm, conv and winograd, depthwise,
recurrent, the elementwise modules, pooling, layernorm, attention, embedding) runs each level
this CPU has (the `isa_level` fixture of conftest.py) against float64 references written here."""
import os
import subprocess
import sys

import numpy as np
import pytest

import engine
from engine import config, layers, ops
from engine._kernels import (activation, bias, conv, embedding, gemm, loss, optimizer_step,
                             pool as P, runtime, softmax)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _x(shape, scale=4.0, seed=0):
    # Wide enough for the exp/sigmoid tails; 40000 elements: a thread team and several spans.
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def _sigmoid64(x):
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


# ---- the switch itself -------------------------------------------------------------------

def test_levels_cap_at_what_the_cpu_has():
    previous = config.get_simd_path()
    best = runtime.simd_max()
    try:
        assert config.set_simd_path("portable") == "portable" == config.get_simd_path()
        # avx512 cannot run on a CPU without it: the cap gives the best level there is
        assert config.set_simd_path("avx512") == best
        assert config.set_simd_path("avx2") == ("portable" if best == "portable" else "avx2")
        assert config.set_simd_path("auto") == best
    finally:
        config.set_simd_path(previous)


def test_unknown_level_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match="set_simd_path.*'portable'.*'sse9'"):
        config.set_simd_path("sse9")


def _levels_in_child(env_value):
    code = ("import engine\nfrom engine._kernels import gemm\n"
            "print(engine.config.get_simd_path(), gemm.simd_path())")
    env = dict(os.environ, ENGINE_SIMD=env_value,
               PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60)


def test_portable_env_variable_reaches_every_family():
    out = _levels_in_child("portable")
    assert out.stdout.split() == ["portable", "portable"], out.stdout + out.stderr


def test_bad_env_variable_fails_naming_it():
    out = _levels_in_child("fastest")
    assert out.returncode != 0 and "ENGINE_SIMD" in out.stderr and "'fastest'" in out.stderr


# ---- every family at every level ---------------------------------------------------------

@pytest.mark.parametrize("shape", [(7, 13, 17), (250, 530, 300)])   # small path, packed path
def test_gemm(isa_level, shape):
    m, k, n = shape
    a, b = _x((m, k), 1.0, 1), _x((k, n), 1.0, 2)
    c = np.empty((m, n), np.float32)
    gemm.gemm(a, b, c)
    np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)
    assert gemm.simd_path() == isa_level


def _conv64(x, w, pad):
    """'same' stride-1 convolution by plain loops over the kernel taps, in float64."""
    x = np.pad(x.astype(np.float64), ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    kh, kw = w.shape[:2]
    N, H, W = x.shape[0], x.shape[1] - kh + 1, x.shape[2] - kw + 1
    out = np.zeros((N, H, W, w.shape[3]))
    for a in range(kh):
        for b in range(kw):
            out += x[:, a:a + H, b:b + W, :] @ w[a, b].astype(np.float64)
    return out


@pytest.mark.parametrize("winograd", [True, False])
def test_conv(isa_level, winograd):
    x, w = _x((2, 10, 9, 32), 1.0, 3), _x((3, 3, 32, 24), 0.2, 4)
    conv.set_winograd(winograd)
    try:
        out = np.empty((2, 10, 9, 24), np.float32)
        conv.conv2d_forward(x, w, out, pads=(1, 1, 1, 1))
    finally:
        conv.set_winograd(True)
    np.testing.assert_allclose(out, _conv64(x, w, 1), rtol=1e-4, atol=1e-4)


def test_depthwise(isa_level):
    x, w = _x((2, 9, 11, 40), 1.0, 5), _x((3, 3, 40, 1), 1.0, 6)
    out = np.empty((2, 9, 11, 40), np.float32)
    conv.depthwise_conv2d_forward(x, w, out, pads=(1, 1, 1, 1))
    xp = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    ref = sum(xp[:, a:a + 9, b:b + 11, :] * w[a, b, :, 0] for a in range(3) for b in range(3))
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def _lstm64(x, kernel, rec, b):
    """Keras's LSTM (gates i, f, c, o; tanh and sigmoid) step by step in float64."""
    x, kernel, rec, b = (v.astype(np.float64) for v in (x, kernel, rec, b))
    u = rec.shape[0]
    h = np.zeros((x.shape[0], u))
    c = np.zeros_like(h)
    out = []
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ rec + b
        i, f, g, o = (z[:, j * u:(j + 1) * u] for j in range(4))
        c = _sigmoid64(f) * c + _sigmoid64(i) * np.tanh(g)
        h = _sigmoid64(o) * np.tanh(c)
        out.append(h)
    return np.stack(out, axis=1)


@pytest.mark.parametrize("units", [5, 37])       # shorter than a vector; vectors and a tail
def test_recurrent(isa_level, units):
    engine.utils.set_random_seed(1)
    lstm = layers.LSTM(units, return_sequences=True)
    x = _x((3, 6, 4), 2.0, 7)
    y = np.asarray(lstm(x))
    np.testing.assert_allclose(y, _lstm64(x, *lstm.get_weights()), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("n", [7, 40000])
def test_activations(isa_level, n):
    x, g = _x((n,)), _x((n,), 1.0, 1)
    s = _sigmoid64(x)
    A = activation
    np.testing.assert_allclose(A.sigmoid(x, np.empty_like(x)), s, rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(A.silu(x, np.empty_like(x)), x * s, rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(A.silu_grad(x, g, np.empty_like(x)),
                               g.astype(np.float64) * (s + x * s * (1 - s)), rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(A.softplus_grad(x, g, np.empty_like(x)), g * s, rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(A.exp(x, np.empty_like(x)), np.exp(x.astype(np.float64)), rtol=2e-6)
    np.testing.assert_allclose(A.tanh(x, np.empty_like(x)), np.tanh(x.astype(np.float64)),
                               rtol=2e-6, atol=1e-7)


def test_softmax_and_cross_entropy(isa_level):
    z = _x((200, 37))
    z64 = z.astype(np.float64)
    e = np.exp(z64 - z64.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(softmax.softmax(z, np.empty_like(z)), p, rtol=3e-6, atol=1e-8)
    t = np.random.default_rng(8).random((200, 37)).astype(np.float32)
    value, grad = np.empty(200, np.float32), np.empty_like(z)
    loss.categorical_crossentropy_logits(t, z, value, grad)
    np.testing.assert_allclose(value, -(t * np.log(p)).sum(axis=1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grad, p * t.sum(axis=1, keepdims=True) - t, rtol=1e-5, atol=1e-6)


def test_bias_and_optimizer_step(isa_level):
    x, b = _x((300, 130), 1.0, 9), _x((130,), 1.0, 10)
    np.testing.assert_allclose(bias.bias_add(x, b, np.empty_like(x)), x.astype(np.float64) + b,
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(bias.bias_grad(x, np.empty_like(b)), x.astype(np.float64).sum(0),
                               rtol=1e-5, atol=1e-4)
    w, g = x.copy(), _x((300, 130), 1.0, 11)
    m, v = np.zeros_like(w), np.zeros_like(w)
    optimizer_step.adam_update(w, g, m, v, 1e-3, 0.9, 0.999, 1e-7)
    g64 = g.astype(np.float64)
    m64, v64 = 0.1 * g64, 0.001 * g64 * g64
    np.testing.assert_allclose(w, x - 1e-3 * m64 / (np.sqrt(v64) + 1e-7), rtol=1e-5, atol=1e-6)


def _numpy_rule(rule, w, g, state, t):
    """One step of `rule` in numpy, operation by operation in the variable's dtype (each ufunc
    rounds once, as Keras's separate ops do): the bits every SIMD level must give."""
    f = lambda v: t(v)
    if rule == "sgd":
        return w - g * f(0.01), state
    if rule == "momentum":
        m = -g * f(0.01) + state[0] * f(0.9)
        return w + (-g * f(0.01) + m * f(0.9)), [m]
    if rule.startswith("rmsprop"):
        vel, mom, avg = state
        vel = f(0.9) * vel + f(1 - 0.9) * (g * g)
        if "centered" in rule:
            avg = f(0.9) * avg + f(1 - 0.9) * g
            inc = f(0.01) * g / np.sqrt(vel - avg * avg + f(1e-7))
        else:
            inc = f(0.01) * g / np.sqrt(vel + f(1e-7))
        if "momentum" in rule:
            mom = f(0.5) * mom + inc
            inc = mom
        return w - inc, [vel, mom, avg]
    if rule in ("adam", "amsgrad"):
        m, v, vhat = state
        m = m + (g - m) * f(1 - 0.9)
        v = v + (g * g - v) * f(1 - 0.999)
        if rule == "amsgrad":
            vhat = np.where(vhat >= v, vhat, v)
        return w - (m * f(1e-3)) / (np.sqrt(vhat if rule == "amsgrad" else v) + f(1e-7)), [m, v, vhat]
    acc = state[0] + g * g
    return w - (f(0.01) * g) / np.sqrt(acc + f(1e-7)), [acc]


_KERNEL_RULES = {
    "sgd": lambda w, g, s: optimizer_step.sgd_update(w, g, 0.01),
    "momentum": lambda w, g, s: optimizer_step.sgd_momentum_update(w, g, s[0], 0.01, 0.9, True),
    "rmsprop": lambda w, g, s: optimizer_step.rmsprop_update(w, g, s[0], 0.01, 0.9, 1e-7, 0.0, None, False, None),
    "rmsprop_momentum": lambda w, g, s: optimizer_step.rmsprop_update(w, g, s[0], 0.01, 0.9, 1e-7, 0.5, s[1],
                                                                      False, None),
    "rmsprop_momentum_centered": lambda w, g, s: optimizer_step.rmsprop_update(w, g, s[0], 0.01, 0.9, 1e-7, 0.5,
                                                                               s[1], True, s[2]),
    "adam": lambda w, g, s: optimizer_step.adam_update(w, g, s[0], s[1], 1e-3, 0.9, 0.999, 1e-7),
    "amsgrad": lambda w, g, s: optimizer_step.adam_update(w, g, s[0], s[1], 1e-3, 0.9, 0.999, 1e-7, s[2]),
    "adagrad": lambda w, g, s: optimizer_step.adagrad_update(w, g, s[0], 0.01, 1e-7),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rule", sorted(_KERNEL_RULES))
def test_optimizer_rules_give_numpys_bits_at_every_level(isa_level, rule, dtype):
    # The update rules are compiled without FMA at every level (csrc/optimizer_spans.h): each
    # level must give the bits of the rule's ops rounded one by one (a contracted a * b + c
    # rounds once and differs in the last bit), over lengths that leave vector tails.
    rng = np.random.default_rng(12)
    t = np.dtype(dtype).type
    for n in (1, 7, 33, 1000):
        w = rng.standard_normal(n).astype(dtype)
        state = [np.abs(rng.standard_normal(n)).astype(dtype) for _ in range(3)]
        state[2] = (np.sqrt(state[0]) * 0.5).astype(dtype)     # avg^2 < velocity: a real square root
        ref_w, ref_state = w.copy(), [a.copy() for a in state]
        for step in range(3):
            g = rng.standard_normal(n).astype(dtype)
            _KERNEL_RULES[rule](w, g, state)
            ref_w, ref_state = _numpy_rule(rule, ref_w, g, ref_state, t)
            np.testing.assert_array_equal(w, ref_w, err_msg=f"{rule} n={n} step {step}")
            for got, want in zip(state, ref_state):
                np.testing.assert_array_equal(got, want, err_msg=f"{rule} state n={n} step {step}")


@pytest.mark.parametrize("C", [3, 37])   # a channel run shorter than one vector, and several
def test_max_pool(isa_level, C):
    x = np.random.default_rng(1).standard_normal((2, 9, 8, C))
    win = np.stack([x[:, a:a + 7:2, b:b + 7:2, :] for a in range(3) for b in range(2)])
    ref, cell = win.max(axis=0), win.argmax(axis=0)
    for dtype in (np.float32, np.float64):
        out = np.empty(ref.shape, dtype)
        argmax = np.empty(ref.shape, np.int32)
        P.max_pool2d_forward(x.astype(dtype), out, argmax, (3, 2), (2, 2))
        np.testing.assert_array_equal(out, ref.astype(dtype))
        np.testing.assert_array_equal(argmax, cell)


def test_max_pool_nan_is_sticky(isa_level):
    x = np.random.default_rng(2).standard_normal((1, 4, 4, 16)).astype(np.float32)
    x[0, 1, 1, 5] = np.nan
    out = np.empty((1, 2, 2, 16), np.float32)
    P.max_pool2d_forward(x, out, None, (2, 2), (2, 2))
    assert np.isnan(out[0, 0, 0, 5]) and np.isfinite(np.delete(out.ravel(), 5)).all()


def test_layernorm(isa_level):
    x, gamma, beta = _x((64, 48), 2.0, 12), _x((48,), 1.0, 13), _x((48,), 1.0, 14)
    y = np.asarray(ops.layer_normalization(x, gamma, beta, epsilon=1e-3))
    x64 = x.astype(np.float64)
    mu, var = x64.mean(-1, keepdims=True), x64.var(-1, keepdims=True)
    np.testing.assert_allclose(y, (x64 - mu) / np.sqrt(var + 1e-3) * gamma + beta,
                               rtol=1e-5, atol=1e-5)


def test_attention(isa_level):
    q, k, v = _x((2, 70, 3, 16), 1.0, 15), _x((2, 90, 3, 16), 1.0, 16), _x((2, 90, 3, 8), 1.0, 17)
    out = np.asarray(ops.dot_product_attention(q, k, v))
    s = np.einsum("bthd,bshd->bhts", q.astype(np.float64), k.astype(np.float64)) / 4.0
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    np.testing.assert_allclose(out, np.einsum("bhts,bshd->bthd", p, v), rtol=1e-5, atol=1e-5)


def test_embedding(isa_level):
    table = _x((50, 24), 1.0, 18)
    ids = np.random.default_rng(19).integers(0, 50, (30, 7)).astype(np.int64)
    out = np.empty((30, 7, 24), np.float32)
    embedding.gather(table, ids, out)
    np.testing.assert_array_equal(out, table[ids])
    g = _x((30, 7, 24), 1.0, 20)
    dtable = np.zeros_like(table)
    embedding.segment_sum(dtable, ids, g)
    ref = np.zeros(table.shape)
    np.add.at(ref, ids.ravel(), g.reshape(-1, 24).astype(np.float64))
    np.testing.assert_allclose(dtable, ref, rtol=1e-5, atol=1e-5)
