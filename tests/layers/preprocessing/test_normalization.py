"""Normalization: adapt on arrays and over batches (against float64 statistics of all the data),
given mean/variance, invert, axes, weights in Keras's layout, gradients, saving, and a model."""
import os

import numpy as np
import pytest

import engine
from engine import layers
from engine.testing import check_layer_gradients

rng = np.random.default_rng(0)


def test_adapt_on_an_array_matches_keras():
    layer = layers.Normalization()
    layer.adapt(np.array([[1.0, 2.0], [3.0, 5.0], [0.0, 1.0]]))
    # Keras 3.15's weights after the same adapt: mean, variance, count (int32, left at 0 by adapt).
    assert [w.path for w in layer.weights] == ["normalization/mean", "normalization/variance", "normalization/count"] \
        or [w.name for w in layer.weights] == ["mean", "variance", "count"]
    mean, var, count = layer.get_weights()
    np.testing.assert_allclose(mean, [1.3333334, 2.6666667], rtol=1e-6)
    np.testing.assert_allclose(var, [1.5555556, 2.8888888], rtol=1e-6)
    assert count.dtype == np.int32 and count == 0
    out = layer(np.array([[1.0, 2.0]]))
    np.testing.assert_allclose(out, [[(1 - 4 / 3) / np.sqrt(14 / 9), (2 - 8 / 3) / np.sqrt(26 / 9)]], rtol=1e-6)


@pytest.mark.parametrize("axis,shape", [(-1, (4,)), ((1, 2), (3, 4)), (None, ()), (1, (3,))])
def test_adapt_over_batches_equals_statistics_of_all_the_data(axis, shape):
    data = rng.normal(3.0, 2.0, size=(50, 3, 4))
    batches = [data[i:i + 7] for i in range(0, 50, 7)]       # uneven last batch
    layer = layers.Normalization(axis=axis, dtype="float64")
    layer.adapt(iter(batches))                                # a generator of batches
    keep = () if axis is None else tuple(a % 3 for a in np.atleast_1d(axis))
    reduce = tuple(d for d in range(3) if d not in keep)
    np.testing.assert_allclose(layer.adapt_mean.numpy(), data.mean(axis=reduce), rtol=1e-10)
    np.testing.assert_allclose(layer.adapt_variance.numpy(), data.var(axis=reduce), rtol=1e-10)
    assert layer.adapt_mean.shape == shape
    out = np.asarray(layer(data))
    np.testing.assert_allclose(out.mean(axis=reduce), 0.0, atol=1e-10)
    np.testing.assert_allclose(out.std(axis=reduce), 1.0, rtol=1e-10)


def test_adapt_takes_pairs_and_pydataset_like_objects():
    x = rng.normal(size=(20, 2))

    class Loader:
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return x[5 * i:5 * i + 5], np.zeros(5)

    layer = layers.Normalization(dtype="float64")
    layer.adapt(Loader())
    np.testing.assert_allclose(layer.adapt_mean.numpy(), x.mean(axis=0), rtol=1e-10)
    plain = layers.Normalization(axis=None, dtype="float64")
    plain.adapt(iter([(1.0, 2.0, 3.0), (4.0, 5.0, 6.0)]))        # tuples of numbers are batches, not (x, y)
    np.testing.assert_allclose([plain.adapt_mean.numpy(), plain.adapt_variance.numpy()], [3.5, np.var(np.arange(1, 7))])
    with pytest.raises(ValueError, match="no batches"):
        layers.Normalization().adapt(iter([]))
    built = layers.Normalization()
    built.adapt(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="shape"):
        built.adapt(np.zeros((4, 2)))


def test_given_mean_and_variance_and_invert():
    layer = layers.Normalization(mean=[1.0, 2.0], variance=[4.0, 9.0])
    np.testing.assert_allclose(layer(np.array([[3.0, 5.0]])), [[1.0, 1.0]])
    assert layer.weights == []
    inverse = layers.Normalization(mean=2.0, variance=4.0, invert=True)
    np.testing.assert_allclose(inverse(np.array([[3.0, 5.0]])), [[8.0, 12.0]])
    forward = layers.Normalization(dtype="float64")
    data = rng.normal(5.0, 3.0, size=(30, 4))
    forward.adapt(data)
    back = layers.Normalization(mean=forward.adapt_mean.numpy(), variance=forward.adapt_variance.numpy(),
                                invert=True, dtype="float64")
    np.testing.assert_allclose(back(forward(data)), data, rtol=1e-12)
    zero_var = layers.Normalization(mean=1.0, variance=0.0)
    np.testing.assert_allclose(zero_var(np.array([[1.5]])), [[5e6]], rtol=1e-5)   # divides by epsilon
    with pytest.raises(ValueError, match="both mean and variance"):
        layers.Normalization(mean=1.0)
    with pytest.raises(ValueError, match="same shape"):
        layers.Normalization(mean=[1.0, 2.0], variance=[1.0])


def test_config_round_trip_matches_keras_keys():
    config = layers.Normalization(axis=(1, 2), invert=True).get_config()
    assert {"axis", "invert", "mean", "variance"} <= set(config)
    assert config["axis"] == (1, 2) and config["mean"] is None
    again = layers.Normalization.from_config(config)
    assert again.get_config() == config
    given = layers.Normalization(mean=[1.0, 2.0], variance=[3.0, 4.0]).get_config()
    assert given["mean"] == [1.0, 2.0] and given["variance"] == [3.0, 4.0]


def test_gradients():
    layer = layers.Normalization(dtype="float64")
    layer.adapt(rng.normal(size=(10, 3)))
    check_layer_gradients(layer, rng.normal(size=(4, 3)))
    check_layer_gradients(layers.Normalization(mean=1.0, variance=2.0, invert=True, dtype="float64"),
                          rng.normal(size=(2, 3)))


def test_in_a_model_fit_predict_and_saving(tmp_path):
    pytest.importorskip("h5py")
    x = rng.normal(10.0, 4.0, size=(32, 3)).astype("float32")
    y = (x[:, :1] > 10).astype("float32")
    norm = layers.Normalization()
    norm.adapt(x)
    inputs = layers.Input((3,))
    model = engine.Model(inputs, layers.Dense(1, activation="sigmoid")(norm(inputs)))
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    np.testing.assert_allclose(norm.adapt_mean.numpy(), x.mean(axis=0), rtol=1e-5)   # fit leaves it alone
    path = os.path.join(tmp_path, "norm.keras")
    model.save(path)
    loaded = engine.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    np.testing.assert_allclose(loaded.layers[1].adapt_variance.numpy(), x.var(axis=0), rtol=1e-4)


def test_against_live_keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")   # as the other live-Keras tests
    keras = pytest.importorskip("keras")
    data = rng.normal(size=(40, 3, 2)).astype("float32")
    for axis in (-1, (1, 2), None):
        ours, theirs = layers.Normalization(axis=axis), keras.layers.Normalization(axis=axis)
        ours.adapt(data)
        theirs.adapt(data)
        np.testing.assert_allclose(ours(data), np.asarray(theirs(data)), rtol=1e-4, atol=1e-5)
