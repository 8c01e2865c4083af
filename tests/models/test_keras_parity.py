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
