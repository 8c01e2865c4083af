"""The SIMD and the portable code paths give the same results (a machine without AVX2 runs the
portable ones), switched through engine.config.set_simd_path."""
import numpy as np
import pytest

import engine
from engine import layers
from engine.testing import check_layer_gradients


@pytest.fixture
def portable():
    engine.config.set_simd_path("portable")
    yield
    engine.config.set_simd_path("auto")


def _lstm_and_conv_outputs():
    engine.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 9, 5)).astype(np.float32) * 3  # wide range: exp/tanh tails
    lstm = layers.LSTM(11, return_sequences=True)
    gru = layers.GRU(7, return_sequences=True)
    img = rng.standard_normal((2, 9, 9, 4)).astype(np.float32)
    conv = layers.Conv2D(10, 3, padding="same")
    with engine.GradientTape() as tape:
        tape.watch([x, img])
        outs = [lstm(x), gru(x), conv(img)]
        total = engine.ops.add(engine.ops.add(engine.ops.sum(outs[0]), engine.ops.sum(outs[1])),
                               engine.ops.sum(outs[2]))
    grads = tape.gradient(total, [x, img])
    return [np.array(o) for o in outs] + grads


def test_portable_and_simd_paths_agree():
    fast = _lstm_and_conv_outputs()
    engine.config.set_simd_path("portable")
    try:
        slow = _lstm_and_conv_outputs()
    finally:
        engine.config.set_simd_path("auto")
    for a, b in zip(fast, slow):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)


def test_gradients_on_the_portable_path(portable):
    x = np.random.default_rng(0).standard_normal((2, 3, 2))
    check_layer_gradients(layers.LSTM(2, dtype="float64"), x, atol=1e-6)
