"""SpectralNormalization: the kernel divided by its power-iteration estimate of the largest
singular value on training calls (written out in float64 here), Keras's weight order and file
layout, config round trips, and gradients through the wrapped layer."""
import numpy as np
import pytest

import engine
from engine import layers
from engine import random as engine_random
from engine.testing import check_gradients

rng = np.random.default_rng(0)


def _reference_step(w, u, iterations):
    m = w.reshape(-1, w.shape[-1])
    for _ in range(iterations):
        v = u @ m.T
        v = v / np.linalg.norm(v)
        u = v @ m
        u = u / np.linalg.norm(u)
    sigma = (v @ m @ u.T)[0, 0]
    return w / sigma, u


@pytest.mark.parametrize("make,shape", [(lambda: layers.Dense(3, dtype="float64"), (5, 4)),
                                        (lambda: layers.Conv2D(2, 2, dtype="float64"), (2, 4, 4, 3)),
                                        (lambda: layers.Embedding(6, 3, dtype="float64"), "ids")])
def test_training_calls_normalize_the_kernel(make, shape):
    # Seeded: how fast the power iteration converges depends on the drawn kernel's singular-value
    # gap, so an unseeded draw (whatever earlier tests left in the global stream) can need more
    # than the 30 steps below.
    engine_random.set_seed(7)
    x = np.array([[0, 5, 2]]) if shape == "ids" else rng.standard_normal(shape)
    layer = layers.SpectralNormalization(make(), power_iterations=3, dtype="float64")
    layer(x)
    names = [w.name for w in layer.weights]
    assert names[1] == "vector_u" and names[0] in ("kernel", "embeddings")
    assert [w.name for w in layer.non_trainable_weights] == ["vector_u"]
    assert "vector_u" not in [w.name for w in layer.trainable_weights]
    w0, u0 = layer.weights[0].numpy().copy(), layer.vector_u.numpy().copy()
    before = np.asarray(layer(x)).copy()
    np.testing.assert_array_equal(layer.weights[0].numpy(), w0)          # inference changes nothing
    layer(x, training=True)
    want_w, want_u = _reference_step(w0, u0, 3)
    np.testing.assert_allclose(layer.weights[0].numpy(), want_w, rtol=1e-10)
    np.testing.assert_allclose(layer.vector_u.numpy(), want_u, rtol=1e-10)
    assert not np.allclose(before, np.asarray(layer(x)))
    # Repeated training calls converge to a kernel of spectral norm 1.
    for _ in range(30):
        layer(x, training=True)
    top = np.linalg.svd(layer.weights[0].numpy().reshape(-1, w0.shape[-1]), compute_uv=False)[0]
    assert top == pytest.approx(1.0, rel=1e-6)
    again = layers.SpectralNormalization.from_config(layer.get_config())
    assert again.power_iterations == 3 and type(again.layer) is type(layer.layer)


def test_gradients_reach_the_wrapped_layer_and_zero_kernels_are_kept():
    layer = layers.SpectralNormalization(layers.Dense(2, dtype="float64"), dtype="float64")
    x = rng.standard_normal((3, 4))
    layer(x)
    check_gradients(lambda a: layer(a), [x])
    zero = layers.SpectralNormalization(layers.Dense(2, kernel_initializer="zeros"))
    zero(x, training=True)
    assert not zero.weights[0].numpy().any()
    with pytest.raises(ValueError, match="power_iterations"):
        layers.SpectralNormalization(layers.Dense(2), power_iterations=0)
    with pytest.raises(ValueError, match="kernel"):
        layers.SpectralNormalization(layers.Activation("relu"))(x)


def test_a_saved_model_keeps_keras_file_layout(tmp_path):
    pytest.importorskip("h5py")
    import h5py
    import io
    import zipfile
    inputs = engine.Input((4,))
    wrapped = layers.SpectralNormalization(layers.Dense(3))
    model = engine.Model(inputs, wrapped(inputs))
    path = str(tmp_path / "sn.keras")
    model.save(path)
    with zipfile.ZipFile(path) as z:
        f = h5py.File(io.BytesIO(z.read("model.weights.h5")))
        shapes = {}
        f.visititems(lambda n, o: shapes.__setitem__(n, o.shape) if hasattr(o, "shape") else None)
    prefix = "layers/spectral_normalization"
    assert shapes == {f"{prefix}/vars/0": (4, 3), f"{prefix}/vars/1": (1, 3), f"{prefix}/layer/vars/0": (4, 3),
                      f"{prefix}/layer/vars/1": (3,)}
    x = rng.standard_normal((2, 4)).astype("float32")
    np.testing.assert_allclose(np.asarray(engine.saving.load_model(path)(x)), np.asarray(model(x)), rtol=1e-6)


def test_matches_live_keras_and_files_move_both_ways(tmp_path):
    import os
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    pytest.importorskip("h5py")
    x = rng.standard_normal((5, 4)).astype("float32")
    theirs = keras.layers.SpectralNormalization(keras.layers.Dense(3), power_iterations=2)
    ours = layers.SpectralNormalization(layers.Dense(3), power_iterations=2)
    theirs(x)
    ours(x)
    assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    ours.set_weights([np.asarray(w) for w in theirs.weights])
    for _ in range(3):
        np.testing.assert_allclose(np.asarray(ours(x, training=True)), np.asarray(theirs(x, training=True)),
                                   rtol=1e-5, atol=1e-6)
    for a, b in zip(ours.weights, theirs.weights):
        np.testing.assert_allclose(a.numpy(), np.asarray(b), rtol=1e-5, atol=1e-7)
    assert set(ours.get_config()) == set(theirs.get_config())
    inp = keras.Input((4,))
    k_model = keras.Model(inp, keras.layers.SpectralNormalization(keras.layers.Dense(3))(inp))
    k_model.save(str(tmp_path / "k.keras"))
    e_model = engine.saving.load_model(str(tmp_path / "k.keras"))
    np.testing.assert_allclose(np.asarray(e_model(x)), np.asarray(k_model(x)), rtol=1e-5, atol=1e-6)
    e_model.save(str(tmp_path / "e.keras"))
    np.testing.assert_allclose(np.asarray(keras.saving.load_model(str(tmp_path / "e.keras"))(x)),
                               np.asarray(k_model(x)), rtol=1e-5, atol=1e-6)
