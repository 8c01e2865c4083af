"""LayerNormalization, GroupNormalization, UnitNormalization and the layer-norm kernel: outputs
against float64 numpy formulas written here, gradients against finite differences, configs."""
import numpy as np
import pytest

from engine import layers
from engine.ops.layernorm import layer_normalization
from engine.testing import check_gradients, check_layer_gradients

rng = np.random.default_rng(1)


def layer_norm_reference(x, gamma, beta, axes, eps):
    axes = tuple(axes)
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    shape = [x.shape[a] if a in axes else 1 for a in range(x.ndim)]
    y = (x - mean) / np.sqrt(var + eps)
    if gamma is not None:
        y = y * gamma.reshape(shape)
    if beta is not None:
        y = y + beta.reshape(shape)
    return y


@pytest.mark.parametrize("axis", [-1, 1, [1, 2], [0, 2], [-2, -1]])
@pytest.mark.parametrize("center,scale", [(True, True), (False, True), (True, False), (False, False)])
def test_layer_normalization_against_formula(axis, center, scale):
    x = rng.standard_normal((3, 4, 5)) * 3 + 1
    layer = layers.LayerNormalization(axis=axis, center=center, scale=scale, epsilon=1e-2, dtype="float64")
    layer(x)
    layer.set_weights([rng.standard_normal(w.shape) for w in layer.get_weights()])
    axes = sorted(a % 3 for a in (axis if isinstance(axis, list) else [axis]))
    weights = iter(layer.get_weights())
    gamma = next(weights) if scale else None
    beta = next(weights) if center else None
    np.testing.assert_allclose(np.asarray(layer(x)), layer_norm_reference(x, gamma, beta, axes, 1e-2), rtol=1e-10,
                               atol=1e-12)
    check_layer_gradients(layer, x)


def test_layer_normalization_weights_config_and_float32():
    layer = layers.LayerNormalization(axis=[1, 2])
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    y = layer(x)
    assert y.dtype == np.float32
    assert [w.shape for w in layer.weights] == [(3, 4), (3, 4)]
    assert [w.path.split("/")[-1] for w in layer.weights] == ["gamma", "beta"]
    np.testing.assert_allclose(np.asarray(y), layer_norm_reference(x.astype(np.float64), None, None, [1, 2], 1e-3),
                               rtol=1e-4, atol=1e-5)
    config = layer.get_config()
    assert config["axis"] == [1, 2] and config["epsilon"] == 1e-3 and config["rms_scaling"] is False
    assert layers.LayerNormalization.from_config(config).get_config() == config
    assert layers.LayerNormalization(axis=-1).get_config()["axis"] == -1


def test_layer_normalization_rms_scaling_and_wide_rows():
    x = rng.standard_normal((2, 3, 6))
    layer = layers.LayerNormalization(rms_scaling=True, dtype="float64")
    y = layer(x)
    assert [w.path.split("/")[-1] for w in layer.weights] == ["gamma"]
    np.testing.assert_allclose(np.asarray(y), x / np.sqrt(x.var(-1, keepdims=True) + 1e-3), rtol=1e-10)
    check_layer_gradients(layer, x)
    # Rows long enough for the threaded path and the per-thread gamma / beta partials.
    wide = rng.standard_normal((300, 256)).astype(np.float32)
    g, b = rng.standard_normal(256).astype(np.float32), rng.standard_normal(256).astype(np.float32)
    out = layer_normalization(wide, g, b, epsilon=1e-5)
    np.testing.assert_allclose(np.asarray(out), layer_norm_reference(wide.astype(np.float64), g, b, [1], 1e-5),
                               rtol=1e-4, atol=1e-4)


def test_layer_norm_op_gradients_and_errors():
    x = rng.standard_normal((4, 6))
    check_gradients(lambda x, g, b: layer_normalization(x, g, b), [x, rng.standard_normal(6), rng.standard_normal(6)])
    check_gradients(lambda x: layer_normalization(x, axis=0), [x])
    # Only gamma / beta wanted (frozen inputs): the kernel skips dx.
    g, b = rng.standard_normal(6), rng.standard_normal(6)
    check_gradients(lambda x, g, b: layer_normalization(x, g, b), [rng.standard_normal((40, 6)), g, b], wrt=[1, 2])
    with pytest.raises(ValueError, match="axis 3 is out of range"):
        layer_normalization(x, axis=3)
    with pytest.raises(ValueError, match="gamma of shape"):
        layer_normalization(x, np.ones(5))
    # A constant row normalises to zero without NaN.
    assert np.all(np.asarray(layer_normalization(np.ones((2, 8)))) == 0)


def test_layer_norm_kernel_checks_its_buffers():
    from engine._kernels import layernorm as K
    x = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="mean"):
        K.layer_norm_forward(x, None, None, 1e-3, np.empty_like(x), np.empty(2, np.float32), np.empty(3, np.float32))
    with pytest.raises(ValueError, match="gamma"):
        K.layer_norm_forward(x, np.ones(3, np.float32), None, 1e-3, np.empty_like(x), np.empty(3, np.float32),
                             np.empty(3, np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        K.layer_norm_backward(x, None, np.zeros(3, np.float32), np.zeros(3, np.float32), np.zeros((4, 3), np.float32).T,
                              None)


@pytest.mark.parametrize("groups,shape", [(2, (2, 5, 4)), (-1, (2, 3, 3, 6)), (1, (3, 6)), (3, (2, 2, 2, 2, 6))])
def test_group_normalization_against_formula(groups, shape):
    x = rng.standard_normal(shape)
    layer = layers.GroupNormalization(groups=groups, dtype="float64")
    layer(x)
    layer.set_weights([rng.standard_normal(w.shape) for w in layer.get_weights()])
    gamma, beta = layer.get_weights()
    c = shape[-1]
    g = c if groups == -1 else groups
    xr = x.reshape(shape[:-1] + (g, c // g))
    axes = tuple(a for a in range(1, xr.ndim) if a != xr.ndim - 2)
    y = ((xr - xr.mean(axes, keepdims=True)) / np.sqrt(xr.var(axes, keepdims=True) + 1e-3)).reshape(shape)
    np.testing.assert_allclose(np.asarray(layer(x)), y * gamma + beta, rtol=1e-10, atol=1e-12)
    check_layer_gradients(layer, x)


def test_group_normalization_errors_and_config():
    with pytest.raises(ValueError, match="groups"):
        layers.GroupNormalization(groups=0)
    with pytest.raises(ValueError, match="must divide"):
        layers.GroupNormalization(groups=4)(np.zeros((1, 6), np.float32))
    layer = layers.GroupNormalization(groups=3, epsilon=1e-4, center=False)
    config = layer.get_config()
    assert config["groups"] == 3 and config["center"] is False and "gamma_initializer" in config
    assert layers.GroupNormalization.from_config(config).get_config() == config


@pytest.mark.parametrize("axis", [-1, [1, 2]])
def test_unit_normalization(axis):
    x = rng.standard_normal((2, 3, 4))
    layer = layers.UnitNormalization(axis=axis, dtype="float64")
    axes = (2,) if axis == -1 else (1, 2)
    np.testing.assert_allclose(np.asarray(layer(x)), x / np.sqrt((x ** 2).sum(axes, keepdims=True)), rtol=1e-12)
    check_layer_gradients(layer, x)
    assert layers.UnitNormalization.from_config(layer.get_config()).get_config() == layer.get_config()


def test_batch_normalization_accepts_synchronized():
    layer = layers.BatchNormalization(synchronized=True)
    assert np.asarray(layer(np.ones((2, 3), np.float32))).shape == (2, 3)


@pytest.mark.parametrize("axis", [-1, [1, 2]])
def test_rms_normalization(axis):
    x = rng.standard_normal((2, 3, 4))
    layer = layers.RMSNormalization(axis=axis, dtype="float64")
    layer(x)
    scale = rng.standard_normal(layer.weights[0].shape)
    layer.set_weights([scale])
    axes = (2,) if axis == -1 else (1, 2)
    shape = (1, 1, 4) if axis == -1 else (1, 3, 4)
    expected = x / np.sqrt((x ** 2).mean(axes, keepdims=True) + 1e-6) * scale.reshape(shape)
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-12)
    check_layer_gradients(layer, x)
    config = layer.get_config()
    assert config["epsilon"] == 1e-6
    assert layers.RMSNormalization.from_config(config).get_config() == config


def test_layer_norm_seeded_with_ones_matches_formula_and_gradients_are_owned():
    # The tape's default seed for a non-scalar target is a stride-0 broadcast of 1: the layer
    # norm's backward reads it as one shared row.  Its results equal an explicit ones seed, and a
    # target that is also a source gets writable ones of its own.
    from engine.autodiff import GradientTape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 6, 10)).astype(np.float32)
    layer = layers.LayerNormalization(gamma_initializer="random_normal", beta_initializer="random_normal")
    layer(x)
    grads = []
    for seed in (None, np.ones((4, 6, 10), np.float32)):
        with GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
        grads.append(tape.gradient(y, [x] + layer.trainable_weights, output_gradients=seed))
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    x64 = x.astype(np.float64)
    xhat = (x64 - x64.mean(-1, keepdims=True)) / np.sqrt(x64.var(-1, keepdims=True) + 1e-3)
    np.testing.assert_allclose(grads[0][1], xhat.sum(axis=(0, 1)), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(grads[0][2], np.full(10, 24.0), rtol=1e-6)
    with GradientTape() as tape:
        tape.watch(x)
        same = tape.gradient(x, [x])[0]
    assert same._value.flags.writeable and np.array_equal(np.asarray(same), np.ones_like(x))
