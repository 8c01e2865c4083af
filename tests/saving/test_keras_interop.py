"""Live checks against Keras 3 (skipped where Keras is not installed): files Keras writes for many
layer kinds, nested and shared layers load in engine with the same predictions and the same next
training step, and Keras reads what engine writes for the same models."""
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")
pytest.importorskip("h5py")

import engine  # noqa: E402

rng = np.random.default_rng(5)


def keras_model():
    L = keras.layers
    ids = keras.Input(shape=(7,), dtype="int32", name="ids")
    img = keras.Input(shape=(8, 8, 2), name="img")
    e = L.Embedding(15, 4, mask_zero=False)(ids)
    s = L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="concat")(e)
    s = L.SimpleRNN(2)(L.Conv1D(3, 2, padding="causal")(s))
    i = L.SeparableConv2D(3, 3, padding="same", depth_multiplier=2)(img)
    i = L.DepthwiseConv2D(3, activation="relu")(L.ZeroPadding2D(1)(i))
    i = L.UpSampling2D(2)(L.AveragePooling2D(2)(i))
    i = L.GlobalAveragePooling2D()(L.Conv2D(4, 3, strides=2)(i))
    inner_in = keras.Input(shape=(4,))
    inner = keras.Model(inner_in, L.Dense(2, activation="elu")(L.Dense(4)(inner_in)), name="inner")
    block = keras.Sequential([L.Dense(3, activation="relu"), L.Dropout(0.0), L.Dense(2)], name="block")
    shared = L.Dense(4, name="shared")
    a, b = shared(L.Dense(4)(s)), shared(i)
    h = L.concatenate([inner(a), block(b), L.multiply([a, b])])
    h = L.BatchNormalization()(L.RepeatVector(1)(h))
    h = L.Flatten()(L.Permute((2, 1))(h))
    return keras.Model([ids, img], [L.Dense(3, activation="softmax", name="p")(h), L.Dense(1, name="r")(h)])


def data(n=6):
    x = [rng.integers(0, 15, (n, 7)).astype("int32"), rng.standard_normal((n, 8, 8, 2)).astype("float32")]
    y = [np.eye(3, dtype="float32")[rng.integers(0, 3, n)], rng.standard_normal((n, 1)).astype("float32")]
    return x, y


def test_a_keras_file_with_many_layer_kinds_loads_and_trains_on_identically(tmp_path):
    keras.utils.set_random_seed(1)
    theirs = keras_model()
    theirs.compile(keras.optimizers.Adam(0.01), ["categorical_crossentropy", "mse"], loss_weights=[1.0, 0.5])
    x, y = data()
    theirs.fit(x, y, epochs=2, batch_size=6, verbose=0, shuffle=False)
    path = str(tmp_path / "theirs.keras")
    theirs.save(path)
    ours = engine.models.load_model(path)
    for p, q in zip(ours.predict(x, verbose=0), theirs.predict(x, verbose=0)):
        np.testing.assert_allclose(p, np.asarray(q), rtol=1e-4, atol=1e-5)
    assert int(ours.optimizer.iterations.numpy()) == 2
    # One more step on each side (the dropout rate is 0, so nothing random is in play).
    theirs.train_on_batch(x, y)
    ours.train_on_batch(x, y)
    for p, q in zip(ours.predict(x, verbose=0), theirs.predict(x, verbose=0)):
        np.testing.assert_allclose(p, np.asarray(q), rtol=1e-3, atol=1e-4)


def test_keras_reads_engine_files_of_the_same_architecture(tmp_path):
    keras.utils.set_random_seed(2)
    path = str(tmp_path / "k.keras")
    keras_model().save(path)
    ours = engine.models.load_model(path)
    x, y = data()
    ours.compile("adam", ["categorical_crossentropy", "mse"])
    ours.fit(x, y, epochs=1, verbose=0)
    back = str(tmp_path / "ours.keras")
    ours.save(back)
    theirs = keras.saving.load_model(back)
    for p, q in zip(ours.predict(x, verbose=0), theirs.predict(x, verbose=0)):
        np.testing.assert_allclose(p, np.asarray(q), rtol=1e-4, atol=1e-5)
    assert int(theirs.optimizer.iterations.numpy()) == 1
