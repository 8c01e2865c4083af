"""Combinations users build every day: text models in Sequential, nested models with batch norm,
Lambda layers and symbolic arithmetic, masks through merges."""
import numpy as np

from engine import layers, Input, Model, Sequential, ops


def test_sequential_text_model_with_keras2_arguments():
    rng = np.random.default_rng(0)
    model = Sequential([layers.Embedding(100, 8, input_length=10), layers.LSTM(4),
                        layers.Dense(1, activation="sigmoid")])
    model.compile("rmsprop", "binary_crossentropy", metrics=["acc"])
    history = model.fit(rng.integers(0, 100, (64, 10)), rng.integers(0, 2, (64,)), epochs=2, verbose=0)
    assert set(history.history) == {"loss", "acc"}
    assert model.count_params() == 800 + 208 + 5


def test_nested_model_batch_norm_trains_inside_outer_model():
    rng = np.random.default_rng(0)
    inner_in = Input(shape=(8, 8, 3))
    z = layers.BatchNormalization()(layers.Conv2D(4, 3, padding="same")(inner_in))
    inner = Model(inner_in, layers.GlobalAveragePooling2D()(z))
    outer_in = Input(shape=(8, 8, 3))
    outer = Model(outer_in, layers.Dense(2, activation="softmax")(inner(outer_in)))
    outer.compile("adam", "categorical_crossentropy")
    bn = inner.layers[2]
    before = bn.moving_mean.numpy().copy()
    outer.fit(rng.random((16, 8, 8, 3)), np.eye(2)[rng.integers(0, 2, 16)], verbose=0)
    assert not np.allclose(before, bn.moving_mean.numpy())
    frozen = bn.moving_mean.numpy().copy()
    outer.predict(rng.random((4, 8, 8, 3)), verbose=0)
    np.testing.assert_array_equal(frozen, bn.moving_mean.numpy())


def test_lambda_and_symbolic_arithmetic():
    a, b = Input(shape=(3,)), Input(shape=(3,))
    c = layers.Lambda(lambda t: ops.multiply(t, 2.0))(a) + b
    model = Model([a, b], c)
    np.testing.assert_allclose(model.predict([np.ones((2, 3)), np.ones((2, 3))], verbose=0), 3.0)


def test_mask_flows_through_concatenate():
    t = Input(shape=(None,), dtype="int32")
    e1 = layers.Embedding(10, 3, mask_zero=True)(t)
    e2 = layers.Embedding(10, 2, mask_zero=True)(t)
    model = Model(t, layers.LSTM(2)(layers.concatenate([e1, e2])))
    ids = np.array([[1, 2, 0, 0], [3, 0, 0, 0]])
    np.testing.assert_allclose(model.predict(ids, verbose=0), model.predict(ids[:, :2], verbose=0), rtol=1e-6)
