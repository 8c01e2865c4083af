"""BatchNormalization's batch renormalization and masked statistics, against float64 formulas
written here, finite differences, and Keras when it is installed."""
import numpy as np
import pytest

from engine import Input, Model, layers
from engine.testing import check_layer_gradients

RNG = np.random.default_rng(0)
X = (RNG.normal(size=(6, 5, 3)) * 2 + 1)
MASK = RNG.random((6, 5)) > 0.3


def _masked_moments(x, mask, eps=1e-7):
    w = mask[..., None].astype(np.float64) * np.ones_like(x)
    total = w.sum(axis=(0, 1)) + eps
    mean = (w * x).sum(axis=(0, 1)) / total
    var = (w * (w * x - mean) ** 2).sum(axis=(0, 1)) / total
    return mean, var


def test_masked_training_uses_only_unmasked_positions():
    bn = layers.BatchNormalization(momentum=0.8, dtype="float64")
    y = np.asarray(bn(X, training=True, mask=MASK))
    mean, var = _masked_moments(X, MASK)
    np.testing.assert_allclose(y, (X - mean) / np.sqrt(var + 1e-3), rtol=1e-10)
    np.testing.assert_allclose(bn.moving_mean.numpy(), 0.2 * mean, rtol=1e-10)
    np.testing.assert_allclose(bn.moving_variance.numpy(), 0.8 + 0.2 * var, rtol=1e-10)
    # At inference the mask does not matter.
    np.testing.assert_array_equal(np.asarray(bn(X, training=False, mask=MASK)), np.asarray(bn(X, training=False)))
    with pytest.raises(ValueError, match="without the channel axis"):
        bn(X, training=True, mask=MASK[:, :4])


def test_renorm_corrects_with_clipped_r_and_d_and_tracks_its_statistics():
    clip = {"rmax": 1.5, "rmin": 0.7, "dmax": 0.4}
    bn = layers.BatchNormalization(renorm=True, renorm_clipping=clip, renorm_momentum=0.9, momentum=0.8,
                                   dtype="float64")
    bn.build(X.shape)
    assert [w.name for w in bn.weights] == ["gamma", "beta", "moving_mean", "moving_variance", "moving_stddev",
                                            "renorm_mean", "renorm_stddev"]
    eps = 1e-3
    renorm_mean, renorm_std = np.zeros(3), np.ones(3)
    moving_mean, moving_std = np.zeros(3), np.ones(3)
    for step in range(3):
        x = X * (1 + step)
        y = np.asarray(bn(x, training=True))
        mean, var = x.mean(axis=(0, 1)), x.var(axis=(0, 1))
        std = np.sqrt(var + eps)
        r = np.clip(std / np.maximum(renorm_std, np.sqrt(eps)), 0.7, 1.5)
        d = np.clip((mean - renorm_mean) / np.maximum(renorm_std, np.sqrt(eps)), -0.4, 0.4)
        np.testing.assert_allclose(y, (x - mean) / std * r + d, rtol=1e-9, atol=1e-12)
        renorm_mean, renorm_std = 0.9 * renorm_mean + 0.1 * mean, 0.9 * renorm_std + 0.1 * std
        moving_mean, moving_std = 0.8 * moving_mean + 0.2 * mean, 0.8 * moving_std + 0.2 * std
    np.testing.assert_allclose(bn.renorm_mean.numpy(), renorm_mean, rtol=1e-10)
    np.testing.assert_allclose(bn.renorm_stddev.numpy(), renorm_std, rtol=1e-10)
    np.testing.assert_allclose(bn.moving_stddev.numpy(), moving_std, rtol=1e-10)
    np.testing.assert_allclose(bn.moving_variance.numpy(), np.maximum(moving_std ** 2 - eps, 0), rtol=1e-10)
    np.testing.assert_allclose(np.asarray(bn(X, training=False)),
                               (X - moving_mean) / np.sqrt(bn.moving_variance.numpy() + eps), rtol=1e-10)


def _saturated_renorm(**kwargs):
    """A renorm layer whose r and d sit at their clipping bounds (1.3 and 0.4) for any input near
    X, with frozen statistics (momenta 1): its function of the input then has r and d constant,
    as the gradients treat them, so finite differences can check the composition."""
    bn = layers.BatchNormalization(renorm=True, renorm_clipping={"rmax": 1.3, "rmin": 0.5, "dmax": 0.4},
                                   momentum=1.0, renorm_momentum=1.0, dtype="float64", **kwargs)
    bn.build(X[:3, :4].shape)
    bn.renorm_mean.assign(np.full(3, -100.0))
    bn.renorm_stddev.assign(np.full(3, 0.01))
    if bn.gamma is not None:
        bn.gamma.assign(np.array([0.5, 2.0, -1.0]))
    return bn


def test_gradients_of_masked_and_renorm_training():
    x = X[:3, :4]
    check_layer_gradients(layers.BatchNormalization(dtype="float64"), x, training=True, mask=MASK[:3, :4])
    check_layer_gradients(_saturated_renorm(), x, training=True)
    check_layer_gradients(_saturated_renorm(scale=False), x, training=True, mask=MASK[:3, :4])
    # The composition really is (normalized * r + d) * gamma + beta with r = 1.3 and d = 0.4.
    bn = _saturated_renorm()
    mean, var = x.mean(axis=(0, 1)), x.var(axis=(0, 1))
    np.testing.assert_allclose(np.asarray(bn(x, training=True)),
                               ((x - mean) / np.sqrt(var + 1e-3) * 1.3 + 0.4) * np.array([0.5, 2.0, -1.0]),
                               rtol=1e-10)


def test_renorm_arguments_are_checked_and_saved():
    with pytest.raises(ValueError, match="rmax, rmin and dmax"):
        layers.BatchNormalization(renorm=True, renorm_clipping={"rmid": 1})
    with pytest.raises(ValueError, match="at least"):
        layers.BatchNormalization(renorm=True, renorm_clipping={"rmax": 0.5, "rmin": 1.0})
    bn = layers.BatchNormalization(renorm=True, renorm_clipping={"dmax": 2.0}, renorm_momentum=0.5,
                                   gamma_regularizer="l2")
    config = bn.get_config()
    assert (config["renorm"], config["renorm_clipping"], config["renorm_momentum"]) == (True, {"dmax": 2.0}, 0.5)
    again = layers.BatchNormalization.from_config(config)
    assert again.renorm and again.renorm_clipping == {"dmax": 2.0} and again.gamma_regularizer is not None


def test_keras_gives_the_same_numbers():
    keras = pytest.importorskip("keras")
    x = X.astype("float32")
    for kw, mask in (({"renorm": True, "renorm_clipping": {"rmax": 1.5, "rmin": 0.7, "dmax": 0.4},
                       "renorm_momentum": 0.9, "momentum": 0.8}, None),
                     ({"momentum": 0.8}, MASK), ({"renorm": True, "scale": False, "momentum": 0.5}, MASK)):
        ours, theirs = layers.BatchNormalization(**kw), keras.layers.BatchNormalization(**kw)
        for step in range(3):
            got = np.asarray(ours(x * (1 + step), training=True, mask=mask))
            want = np.asarray(theirs(x * (1 + step), training=True, mask=mask))
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        for a, b in zip(ours.weights, theirs.weights):
            assert a.name == b.name
            np.testing.assert_allclose(a.numpy(), np.asarray(b), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.asarray(ours(x, training=False)), np.asarray(theirs(x, training=False)),
                                   rtol=1e-5, atol=1e-5)
