"""Activation and regularization layers: outputs against numpy formulas written here, gradients
against finite differences, training-only noise, configs."""
import numpy as np
import pytest

from engine import layers
from engine.testing import check_layer_gradients

rng = np.random.default_rng(3)
# Away from the kinks, where finite differences are exact.
X = rng.uniform(0.1, 2.0, (3, 4, 5)) * rng.choice([-1.0, 1.0], (3, 4, 5))


@pytest.mark.parametrize("kwargs", [{}, {"max_value": 1.0}, {"negative_slope": 0.2}, {"threshold": 0.5},
                                    {"max_value": 1.5, "negative_slope": 0.1, "threshold": 0.3}])
def test_relu_layer(kwargs):
    layer = layers.ReLU(dtype="float64", **kwargs)
    mx, slope, th = kwargs.get("max_value"), kwargs.get("negative_slope", 0.0), kwargs.get("threshold", 0.0)
    x = X + 0.05          # keep clear of threshold 0.3 / 0.5 and max 1 / 1.5 within the eps of the check
    expected = np.where(x >= th, x, slope * (x - th))
    if mx is not None:
        expected = np.minimum(expected, mx)
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-12)
    check_layer_gradients(layer, x)
    assert layers.ReLU.from_config(layer.get_config()).get_config() == layer.get_config()


def test_activation_layers_errors():
    with pytest.raises(ValueError, match="max_value"):
        layers.ReLU(max_value=-1)
    with pytest.raises(ValueError, match="negative_slope"):
        layers.LeakyReLU(negative_slope=-0.1)


def test_leaky_relu_elu_softmax():
    leaky = layers.LeakyReLU(dtype="float64")
    assert leaky.get_config()["negative_slope"] == 0.3
    np.testing.assert_allclose(np.asarray(leaky(X)), np.where(X >= 0, X, 0.3 * X), rtol=1e-12)
    check_layer_gradients(leaky, X)
    assert layers.LeakyReLU(alpha=0.1).negative_slope == 0.1
    elu = layers.ELU(alpha=0.7, dtype="float64")
    np.testing.assert_allclose(np.asarray(elu(X)), np.where(X > 0, X, 0.7 * np.expm1(X)), rtol=1e-12)
    check_layer_gradients(elu, X)
    for axis in (-1, 1, [1, 2]):
        sm = layers.Softmax(axis=axis, dtype="float64")
        axes = tuple(a % 3 for a in (axis if isinstance(axis, list) else [axis]))
        e = np.exp(X - X.max(axes, keepdims=True))
        np.testing.assert_allclose(np.asarray(sm(X)), e / e.sum(axes, keepdims=True), rtol=1e-12)
        check_layer_gradients(sm, X)
        assert layers.Softmax.from_config(sm.get_config()).get_config() == sm.get_config()


def test_softmax_with_mask():
    sm = layers.Softmax(dtype="float64")
    mask = rng.random((3, 4, 5)) > 0.4
    mask[0, 0] = False
    got = np.asarray(sm(X, mask=mask))
    e = np.where(mask, np.exp(X), 0.0)
    with np.errstate(invalid="ignore"):
        expected = np.nan_to_num(e / e.sum(-1, keepdims=True))
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-300)
    assert not got[0, 0].any()         # a fully masked row is zero, as in Keras
    check_layer_gradients(sm, X, mask=mask)
    with pytest.raises(ValueError, match="broadcast"):
        sm(X, mask=np.ones((3, 4), bool))


def test_prelu():
    layer = layers.PReLU(alpha_initializer="ones", shared_axes=[1], dtype="float64")
    layer(X)
    assert [w.shape for w in layer.weights] == [(1, 5)]
    alpha = rng.standard_normal((1, 5))
    layer.set_weights([alpha])
    np.testing.assert_allclose(np.asarray(layer(X)), np.where(X > 0, X, alpha * X), rtol=1e-12)
    check_layer_gradients(layer, X)
    full = layers.PReLU()
    full(X.astype(np.float32))
    assert full.weights[0].shape == (4, 5) and full.count_params() == 20
    config = full.get_config()
    assert config["shared_axes"] is None and config["alpha_initializer"]["class_name"] == "Zeros"
    assert layers.PReLU.from_config(config).get_config() == config


def test_masking_zeroes_and_masks_padded_steps():
    x = rng.standard_normal((2, 4, 3))
    x[0, 2:] = 0.0
    x[1, 1] = 0.0
    layer = layers.Masking(dtype="float64")
    y = layer(x)
    keep = np.array([[1, 1, 0, 0], [1, 0, 1, 1]], bool)
    np.testing.assert_array_equal(np.asarray(y._keras_mask), keep)
    np.testing.assert_allclose(np.asarray(y), x * keep[..., None])
    # (Finite differences would unpad the padded steps: the gradient is the keep mask.)
    from engine.autodiff import GradientTape
    with GradientTape() as tape:
        tape.watch(x)
        out = layer(x)
    np.testing.assert_array_equal(np.asarray(tape.gradient(out, x)), np.broadcast_to(keep[..., None], x.shape))
    check_layer_gradients(layer, rng.standard_normal((2, 4, 3)))
    assert layers.Masking.from_config(layer.get_config()).mask_value == 0.0
    np.testing.assert_array_equal(np.asarray(layers.Masking(mask_value=-1.0)(np.full((1, 2, 2), -1.0))._keras_mask),
                                  [[False, False]])


@pytest.mark.parametrize("cls,shape", [(layers.SpatialDropout1D, (4, 6, 8)), (layers.SpatialDropout2D, (4, 3, 3, 8)),
                                       (layers.SpatialDropout3D, (4, 2, 2, 2, 8))])
def test_spatial_dropout_drops_whole_channels(cls, shape):
    layer = cls(0.5, seed=1)
    x = np.ones(shape, np.float32)
    assert np.asarray(layer(x)) is not None and np.array_equal(np.asarray(layer(x)), x)
    y = np.asarray(layer(x, training=True))
    flat = y.reshape(shape[0], -1, shape[-1])
    # Each (sample, channel) is either all 2 (kept, scaled) or all 0.
    assert np.all((flat == 0).all(1) | (flat == 2).all(1))
    assert (flat == 0).any() and (flat == 2).any()
    with pytest.raises(ValueError, match="ndim"):
        cls(0.5)(np.ones((2,) * (len(shape) + 1), np.float32))
    config = layer.get_config()
    assert "trainable" not in config and config["rate"] == 0.5 and config["seed"] == 1
    assert cls.from_config(config).get_config() == config


def test_spatial_dropout_channels_first():
    layer = layers.SpatialDropout2D(0.5, data_format="channels_first", seed=2)
    y = np.asarray(layer(np.ones((3, 6, 4, 4), np.float32), training=True))
    assert np.all((y == 0).all((2, 3)) | (y == 2).all((2, 3)))


def test_gaussian_noise_and_dropout_statistics():
    x = np.ones((200, 500))
    noise = layers.GaussianNoise(0.5, seed=0, dtype="float64")
    assert np.array_equal(np.asarray(noise(x)), x)
    y = np.asarray(noise(x, training=True))
    assert abs(y.mean() - 1) < 0.01 and abs(y.std() - 0.5) < 0.01
    drop = layers.GaussianDropout(0.2, seed=0, dtype="float64")
    y = np.asarray(drop(x, training=True))
    assert abs(y.mean() - 1) < 0.01 and abs(y.std() - np.sqrt(0.2 / 0.8)) < 0.01
    # Fresh noise each call rules out finite differences: d(x + n)/dx = 1, d(x * n)/dx = n.
    from engine.autodiff import GradientTape
    with GradientTape(persistent=True) as tape:
        tape.watch(X)
        a, b = noise(X, training=True), drop(X, training=True)
    np.testing.assert_array_equal(np.asarray(tape.gradient(a, X)), np.ones_like(X))
    np.testing.assert_allclose(np.asarray(tape.gradient(b, X)), np.asarray(b) / X, rtol=1e-12)
    for layer in (noise, drop):
        assert type(layer).from_config(layer.get_config()).get_config() == layer.get_config()


def test_alpha_dropout_keeps_selu_moments():
    x = rng.standard_normal((400, 500))
    layer = layers.AlphaDropout(0.3, seed=0, dtype="float64")
    assert np.array_equal(np.asarray(layer(x)), x)
    y = np.asarray(layer(x, training=True))
    assert abs(y.mean()) < 0.02 and abs(y.std() - 1) < 0.02
    alpha_p = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946
    a = ((1 - 0.3) * (1 + 0.3 * alpha_p ** 2)) ** -0.5
    dropped = np.isclose(y, a * alpha_p - a * alpha_p * 0.3)
    assert abs(dropped.mean() - 0.3) < 0.01
    np.testing.assert_allclose(y[~dropped], a * x[~dropped] - a * alpha_p * 0.3, rtol=1e-12)
    assert layers.AlphaDropout.from_config(layer.get_config()).get_config() == layer.get_config()


def test_activity_regularization_adds_its_loss():
    layer = layers.ActivityRegularization(l1=0.1, l2=0.01, dtype="float64")
    x = rng.standard_normal((4, 3))
    y = layer(x)
    np.testing.assert_array_equal(np.asarray(y), x)
    (loss,) = layer.losses
    np.testing.assert_allclose(float(loss), (0.1 * np.abs(x).sum() + 0.01 * (x ** 2).sum()) / 4, rtol=1e-12)
    config = layer.get_config()
    assert config["l1"] == 0.1 and "activity_regularizer" not in config
    assert layers.ActivityRegularization.from_config(config).get_config() == config
