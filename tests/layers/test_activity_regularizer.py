"""activity_regularizer: regularizer(output) / batch size joins layer.losses on each call (the latest
call's only) and the training loss, as in Keras 3; it survives get_config / from_config."""
import json
import os

import numpy as np
import pytest

import engine
from engine import Input, Model, layers, regularizers
from engine.saving import deserialize_keras_object, serialize_keras_object

X = (np.arange(12, dtype=np.float32).reshape(4, 3) / 10)


def test_eager_call_adds_the_penalty_divided_by_the_batch_size():
    dense = layers.Dense(2, kernel_initializer="ones", activity_regularizer=regularizers.L2(0.1))
    y = np.asarray(dense(X))
    assert len(dense.losses) == 1
    np.testing.assert_allclose(float(dense.losses[0]), 0.1 * np.sum(y ** 2) / 4, rtol=1e-6)


def test_losses_hold_the_latest_call_only():
    dense = layers.Dense(2, kernel_initializer="ones", activity_regularizer=regularizers.L1(1.0))
    dense(X)
    dense(X[:2])
    assert len(dense.losses) == 1
    np.testing.assert_allclose(float(dense.losses[0]), np.abs(X[:2].sum(1)).sum() * 2 / 2, rtol=1e-6)


def test_symbolic_calls_add_nothing_and_models_collect_their_layers_losses():
    inp = Input((3,))
    dense = layers.Dense(2, kernel_initializer="ones", activity_regularizer="l2")
    model = Model(inp, dense(inp))
    assert dense.losses == [] and model.losses == []
    model(X)
    expected = 0.01 * np.sum((X @ np.ones((3, 2))) ** 2) / 4
    assert len(model.losses) == 1
    np.testing.assert_allclose(float(model.losses[0]), expected, rtol=1e-6)
    model(X)
    assert len(model.losses) == 1


def test_shared_layer_adds_a_loss_per_call_and_kernel_regularization_follows():
    inp = Input((2,))
    shared = layers.Dense(2, kernel_initializer="identity", use_bias=False, activity_regularizer=regularizers.L1(1.0),
                          kernel_regularizer=regularizers.L1(0.5))
    model = Model(inp, shared(shared(inp)))
    model(np.ones((2, 2), np.float32))
    # Keras's order: losses added by calls, then weight regularization.
    np.testing.assert_allclose([float(v) for v in model.losses], [2.0, 2.0, 1.0], rtol=1e-6)


def test_empty_batch_adds_zero_and_layers_taking_it_through_kwargs_work_too():
    dense = layers.Dense(2, activity_regularizer=regularizers.L2(0.1))
    dense(np.zeros((0, 3), np.float32))
    assert [float(v) for v in dense.losses] == [0.0]
    flat = layers.Flatten(activity_regularizer=regularizers.L1(1.0))
    flat(np.ones((5, 2, 2), np.float32))
    np.testing.assert_allclose([float(v) for v in flat.losses], [4.0])


def test_every_constructor_form_is_seen():
    positional = layers.Dense(2, None, True, "ones", "zeros", None, None, "l1")
    assert isinstance(positional.activity_regularizer, regularizers.L1)

    class Wider(layers.Dense):
        def __init__(self, **kwargs):
            super().__init__(3, **kwargs)

    assert isinstance(Wider(activity_regularizer="l2").activity_regularizer, regularizers.L2)
    for layer in (layers.Conv2D(2, 3, activity_regularizer="l2"), layers.DepthwiseConv2D(3, activity_regularizer="l2"),
                  layers.SeparableConv2D(2, 3, activity_regularizer="l2"), layers.LSTM(2, activity_regularizer="l2"),
                  layers.Embedding(3, 2, activity_regularizer="l2")):
        assert isinstance(layer.activity_regularizer, regularizers.L2), type(layer).__name__
    assert layers.Dense(2).activity_regularizer is None
    with pytest.raises(ValueError, match="regularizer"):
        layers.Dense(2, activity_regularizer="nope")


@pytest.mark.parametrize("make", [
    lambda **k: layers.Dense(2, **k), lambda **k: layers.Conv2D(2, 3, **k), lambda **k: layers.LSTM(2, **k),
    lambda **k: layers.DepthwiseConv2D(3, **k), lambda **k: layers.SeparableConv2D(2, 3, **k),
    lambda **k: layers.Embedding(3, 2, **k), lambda **k: layers.Flatten(**k)])
def test_config_round_trip(make):
    layer = make(activity_regularizer=regularizers.L1L2(0.1, 0.2))
    config = layer.get_config()
    assert config["activity_regularizer"]["class_name"] == "L1L2"
    assert config["activity_regularizer"]["config"] == {"l1": 0.1, "l2": 0.2}
    for clone in (type(layer).from_config(config),
                  deserialize_keras_object(json.loads(json.dumps(serialize_keras_object(layer))))):
        assert isinstance(clone.activity_regularizer, regularizers.L1L2)
        assert (clone.activity_regularizer.l1, clone.activity_regularizer.l2) == (0.1, 0.2)
        assert clone.get_config() == config
    # Keras's base Layer writes the key only when a regularizer is set.
    assert "activity_regularizer" not in make().get_config()


def test_training_loss_includes_it_and_its_gradient():
    c, lr = 0.5, 0.1

    def build():
        inp = Input((3,))
        model = Model(inp, layers.Dense(1, use_bias=False, kernel_initializer="ones",
                                        activity_regularizer=regularizers.L2(c))(inp))
        model.compile(engine.optimizers.SGD(lr), "mse")
        return model

    y = np.zeros((4, 1), np.float32)
    pred = X @ np.ones((3, 1))
    expected_loss = np.mean(pred ** 2) * (1 + c)
    # d/dw [mean((Xw)^2) + c * sum((Xw)^2) / n] = 2 (1 + c) X^T X w / n
    expected_w = np.ones((3, 1)) - lr * 2 * (1 + c) * X.T @ pred / len(X)

    model = build()
    np.testing.assert_allclose(model.evaluate(X, y, verbose=0), expected_loss, rtol=1e-6)
    np.testing.assert_allclose(model.test_on_batch(X, y), expected_loss, rtol=1e-6)
    np.testing.assert_allclose(model.train_on_batch(X, y), expected_loss, rtol=1e-6)
    np.testing.assert_allclose(model.get_weights()[0], expected_w, rtol=1e-5)

    model = build()
    history = model.fit(X, y, batch_size=4, epochs=1, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(history, [expected_loss], rtol=1e-6)
    np.testing.assert_allclose(model.get_weights()[0], expected_w, rtol=1e-5)


def test_add_loss_in_call_is_trained_on_in_a_functional_model():
    class Penalty(layers.Layer):
        def call(self, x):
            self.add_loss(engine.ops.sum(engine.ops.abs(x)))
            return x

    inp = Input((3,))
    model = Model(inp, Penalty()(layers.Dense(1, kernel_initializer="ones", use_bias=False)(inp)))
    model.compile("sgd", "mse")
    y = np.zeros((4, 1), np.float32)
    pred = X @ np.ones((3, 1))
    expected = np.mean(pred ** 2) + np.abs(pred).sum()
    for _ in range(2):  # the second time, last call's penalty is gone, not counted twice
        np.testing.assert_allclose(model.evaluate(X, y, verbose=0), expected, rtol=1e-6)
    assert len(model.losses) == 1


def test_matches_keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(0)
    x = rng.random((32, 6)).astype(np.float32)
    y = rng.random((32, 2)).astype(np.float32)

    keras.utils.set_random_seed(0)

    # The output layer's bias starts at one so no output sits exactly on the L1 penalty's kink:
    # where a sample's hidden units are all dead its output would be exactly 0, and backends
    # differ on |x|'s slope there (JAX 1, TensorFlow and engine 0), which made the test flaky.
    def build(lib):
        inp = lib.Input((6,))
        h = lib.layers.Dense(5, activation="relu", activity_regularizer=lib.regularizers.L2(0.05))(inp)
        out = lib.layers.Dense(2, activity_regularizer=lib.regularizers.L1(0.02),
                               kernel_regularizer=lib.regularizers.L2(0.01), bias_initializer="ones")(h)
        model = lib.Model(inp, out)
        model.compile(lib.optimizers.SGD(0.05), "mse")
        return model

    theirs, ours = build(keras), build(engine)
    ours.set_weights(theirs.get_weights())
    theirs(x[:8])
    ours(x[:8])
    np.testing.assert_allclose([float(v) for v in ours.losses], [float(v) for v in theirs.losses], rtol=1e-5)
    np.testing.assert_allclose(ours.evaluate(x, y, verbose=0), theirs.evaluate(x, y, verbose=0), rtol=1e-5)
    their_loss = theirs.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history["loss"]
    our_loss = ours.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(our_loss, their_loss, rtol=1e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # Each reads the other's config.
    theirs = keras.layers.Dense(2, activity_regularizer=keras.regularizers.L2(0.25))
    mine = deserialize_keras_object(json.loads(json.dumps(keras.saving.serialize_keras_object(theirs))))
    assert mine.activity_regularizer.l2 == pytest.approx(0.25)
    back = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialize_keras_object(mine))))
    assert back.activity_regularizer.l2 == pytest.approx(0.25)


def test_frozen_weights_regularizers_do_not_count():
    """Keras 3 sums the regularizers of trainable weights only: freezing a layer (or a model holding
    it) drops its penalties from losses and from the training loss."""
    dense = layers.Dense(3, kernel_regularizer=regularizers.L2(0.5))
    inputs = Input(shape=(4,))
    model = Model(inputs, dense(inputs))
    assert len(model.losses) == 1
    dense.trainable = False
    assert model.losses == [] and dense.losses == []
    dense.trainable = True
    model.trainable = False                  # freezes its layers too, as in Keras 3
    assert model.losses == [] and dense.losses == []
