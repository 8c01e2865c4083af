"""engine.config.set_simd_path reaches every kernel family: the elementwise and pooling kernels
follow it like the GEMM, convolution and recurrent ones, and on both paths they match float64
references written here."""
import numpy as np
import pytest

import engine
from engine._kernels import conv, elementwise as E, gemm, pool as P, recurrent, runtime

MODULES = (gemm, conv, recurrent, E, P)


@pytest.fixture(params=["auto", "portable"])
def path(request):
    engine.config.set_simd_path(request.param)
    yield request.param
    engine.config.set_simd_path("auto")


def test_switch_reaches_every_module(path):
    for mod in MODULES:
        if path == "portable":
            assert mod.simd_path() == "portable", mod.__name__
        elif runtime.cpu_has_avx2_fma():
            assert mod.simd_path() != "portable", mod.__name__


def _x(shape, scale=4.0):
    # Wide enough for the exp/sigmoid tails; 40000 elements: a thread team and several spans.
    return (np.random.default_rng(0).standard_normal(shape) * scale).astype(np.float32)


def _sigmoid64(x):
    x = x.astype(np.float64)
    return 1.0 / (1.0 + np.exp(-x))


@pytest.mark.parametrize("n", [7, 40000])
def test_elementwise_float32_span_loops_match_float64(path, n):
    x = _x((n,))
    g = _x((n,), 1.0)
    s = _sigmoid64(x)
    np.testing.assert_allclose(E.sigmoid(x, np.empty_like(x)), s, rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(E.silu(x, np.empty_like(x)), x * s, rtol=2e-6, atol=1e-6)
    silu_grad = g.astype(np.float64) * (s + x * s * (1 - s))
    np.testing.assert_allclose(E.silu_grad(x, g, np.empty_like(x)), silu_grad, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(E.exp(x, np.empty_like(x)), np.exp(x.astype(np.float64)), rtol=2e-6)


def test_elementwise_softmax_matches_float64(path):
    x = _x((200, 37))
    z = x.astype(np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(E.softmax(x, np.empty_like(x)), e / e.sum(axis=1, keepdims=True),
                               rtol=3e-6, atol=1e-8)


def _max_pool64(x, ph, pw, sh, sw):
    """Window maxima and the first cell (a * pw + b) holding each, by plain loops."""
    N, H, W, C = x.shape
    Ho, Wo = (H - ph) // sh + 1, (W - pw) // sw + 1
    out = np.empty((N, Ho, Wo, C))
    cell = np.empty((N, Ho, Wo, C), np.int32)
    for n in range(N):
        for i in range(Ho):
            for j in range(Wo):
                for c in range(C):
                    win = x[n, i * sh:i * sh + ph, j * sw:j * sw + pw, c].astype(np.float64).ravel()
                    out[n, i, j, c] = win.max()
                    cell[n, i, j, c] = int(np.argmax(win))
    return out, cell


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("C", [3, 37])   # a channel run shorter than one vector, and several
def test_max_pool_rows_match_float64(path, dtype, C):
    x = np.random.default_rng(1).standard_normal((2, 9, 8, C)).astype(dtype)
    ref, cell = _max_pool64(x, 3, 2, 2, 2)
    out = np.empty(ref.shape, dtype)
    argmax = np.empty(ref.shape, np.int32)
    P.max_pool2d_forward(x, out, argmax, (3, 2), (2, 2))
    np.testing.assert_array_equal(out, ref.astype(dtype))
    np.testing.assert_array_equal(argmax, cell)


def test_max_pool_nan_is_sticky_on_both_paths(path):
    x = np.random.default_rng(2).standard_normal((1, 4, 4, 16)).astype(np.float32)
    x[0, 1, 1, 5] = np.nan
    out = np.empty((1, 2, 2, 16), np.float32)
    P.max_pool2d_forward(x, out, None, (2, 2), (2, 2))
    assert np.isnan(out[0, 0, 0, 5]) and np.isfinite(np.delete(out.ravel(), 5)).all()


def test_portable_env_variable_reaches_every_module():
    import subprocess
    import sys
    import os
    code = ("import engine\nfrom engine._kernels import gemm, conv, recurrent, elementwise, pool\n"
            "print([m.simd_path() for m in (gemm, conv, recurrent, elementwise, pool)])")
    env = dict(os.environ, ENGINE_SIMD="portable")
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))) \
        + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == str(["portable"] * 5), out.stdout + out.stderr
