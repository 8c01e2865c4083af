"""Where Keras 3 is installed (a bench extra), the same model, weights and data train to the same
numbers. The always-run checks against Keras live in tests/saving (a file Keras wrote)."""
import os

import numpy as np
import pytest

import engine


def test_seed_model_trains_like_keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(0)
    x = rng.random((256, 64)).astype(np.float32)
    y = rng.random((256, 10)).astype(np.float32)

    def build(lib):
        inp = lib.Input(shape=(64,))
        h = lib.layers.Dense(32, activation="relu")(inp)
        h = lib.layers.Dense(32, activation="relu")(h)
        model = lib.Model(inp, lib.layers.Dense(10, activation="softmax")(h))
        model.compile("rmsprop", "categorical_crossentropy")
        return model

    theirs, ours = build(keras), build(engine)
    ours.set_weights(theirs.get_weights())
    their_loss = theirs.fit(x, y, epochs=3, batch_size=128, shuffle=False, verbose=0).history["loss"]
    our_loss = ours.fit(x, y, epochs=3, batch_size=128, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(our_loss, their_loss, rtol=1e-6)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_sequence_and_conv_layers_train_like_keras():
    """Embedding (with mask_zero), Conv1D, LSTM, GRU, Conv2D, SeparableConv2D, pooling, batch norm, Adam."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 50, (64, 12))
    ids[:, 9:] = 0
    img = rng.random((64, 10, 10, 3)).astype(np.float32)
    y = np.eye(3)[rng.integers(0, 3, 64)].astype(np.float32)

    def build(lib):
        L = lib.layers
        a, b = lib.Input(shape=(12,), dtype="int32"), lib.Input(shape=(10, 10, 3))
        s = L.LSTM(5)(L.Conv1D(4, 3, padding="same", activation="relu")(L.Embedding(50, 6)(a)))
        g = L.GRU(3)(L.Embedding(50, 4, mask_zero=True)(a))
        c = L.Conv2D(4, 3, strides=2, padding="same", activation="relu")(b)
        c = L.GlobalAveragePooling2D()(L.BatchNormalization()(L.MaxPooling2D(2)(L.SeparableConv2D(4, 3, padding="same")(c))))
        model = lib.Model([a, b], L.Dense(3, activation="softmax")(L.concatenate([s, g, c])))
        model.compile("adam", "categorical_crossentropy")
        return model

    theirs, ours = build(keras), build(engine)
    assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(ours.predict([ids, img], verbose=0),
                               np.asarray(theirs.predict([ids, img], verbose=0)), atol=1e-6)
    their_loss = theirs.fit([ids, img], y, epochs=3, batch_size=32, shuffle=False, verbose=0).history["loss"]
    our_loss = ours.fit([ids, img], y, epochs=3, batch_size=32, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(our_loss, their_loss, rtol=1e-5)
    # Adam divides by sqrt(v): where a gradient is ~0, float rounding moves a weight by up to ~lr/3.
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-3)
