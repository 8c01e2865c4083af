"""Keras's call conventions on every layer family: `training=` and `mask=` are accepted by every
layer call, passed on only where `call` takes them; `training` reaches nested layers and models;
masks travel on tensors through eager calls; every layer call returns an engine tensor."""
import numpy as np
import pytest

from engine import Input, Model, Sequential, layers, ops
from engine.tensor import Tensor

rng = np.random.default_rng(0)

# (layer factory, input) for one layer of each family
CASES = {
    "Dense": (lambda: layers.Dense(3), rng.standard_normal((2, 4))),
    "Activation": (lambda: layers.Activation("tanh"), rng.standard_normal((2, 4))),
    "Dropout": (lambda: layers.Dropout(0.5), rng.standard_normal((2, 4))),
    "Flatten": (lambda: layers.Flatten(), rng.standard_normal((2, 3, 4))),
    "Reshape": (lambda: layers.Reshape((12,)), rng.standard_normal((2, 3, 4))),
    "Permute": (lambda: layers.Permute((2, 1)), rng.standard_normal((2, 3, 4))),
    "RepeatVector": (lambda: layers.RepeatVector(2), rng.standard_normal((2, 4))),
    "Identity": (lambda: layers.Identity(), rng.standard_normal((2, 4))),
    "Lambda": (lambda: layers.Lambda(lambda t: t * 2.0), rng.standard_normal((2, 4))),
    "Embedding": (lambda: layers.Embedding(10, 3), np.array([[1, 2, 3]])),
    "LSTM": (lambda: layers.LSTM(3), rng.standard_normal((2, 5, 4))),
    "GRU": (lambda: layers.GRU(3), rng.standard_normal((2, 5, 4))),
    "SimpleRNN": (lambda: layers.SimpleRNN(3), rng.standard_normal((2, 5, 4))),
    "Bidirectional": (lambda: layers.Bidirectional(layers.LSTM(2)), rng.standard_normal((2, 5, 4))),
    "Conv1D": (lambda: layers.Conv1D(2, 3), rng.standard_normal((2, 6, 4))),
    "Conv2D": (lambda: layers.Conv2D(2, 3), rng.standard_normal((2, 5, 5, 3))),
    "DepthwiseConv2D": (lambda: layers.DepthwiseConv2D(3), rng.standard_normal((2, 5, 5, 3))),
    "SeparableConv2D": (lambda: layers.SeparableConv2D(2, 3), rng.standard_normal((2, 5, 5, 3))),
    "MaxPooling1D": (lambda: layers.MaxPooling1D(2), rng.standard_normal((2, 6, 4))),
    "AveragePooling2D": (lambda: layers.AveragePooling2D(2), rng.standard_normal((2, 4, 4, 3))),
    "GlobalMaxPooling1D": (lambda: layers.GlobalMaxPooling1D(), rng.standard_normal((2, 6, 4))),
    "GlobalAveragePooling2D": (lambda: layers.GlobalAveragePooling2D(), rng.standard_normal((2, 4, 4, 3))),
    "BatchNormalization": (lambda: layers.BatchNormalization(), rng.standard_normal((4, 2, 3))),   # a mask is (batch, steps), as Keras requires
    "ZeroPadding2D": (lambda: layers.ZeroPadding2D(1), rng.standard_normal((2, 3, 3, 2))),
    "UpSampling1D": (lambda: layers.UpSampling1D(2), rng.standard_normal((2, 3, 2))),
    "Cropping1D": (lambda: layers.Cropping1D(1), rng.standard_normal((2, 4, 2))),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_layer_takes_training_and_mask_and_returns_a_tensor(name):
    make, x = CASES[name]
    layer = make()
    x = x if x.dtype.kind in "iu" else x.astype(np.float32)
    plain = layer(x)
    assert isinstance(plain, Tensor)
    for training in (True, False, None):
        out = layer(x, training=training)
        assert isinstance(out, Tensor) and out.shape == plain.shape
    mask = np.ones(x.shape[:2], bool)
    out = layer(x, training=False, mask=mask)
    assert isinstance(out, Tensor) and out.shape == plain.shape
    if name not in ("Dropout", "BatchNormalization"):   # training=True changed their state or output
        np.testing.assert_allclose(np.asarray(layer(x, training=False)), np.asarray(plain), rtol=1e-6)


@pytest.mark.parametrize("merge", ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"])
def test_merge_layers_take_training_and_mask(merge):
    a, b = rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal((2, 3)).astype(np.float32)
    layer = getattr(layers, merge)()
    out = layer([a, b], training=True, mask=[None, None])
    assert isinstance(out, Tensor)
    np.testing.assert_allclose(np.asarray(out), np.asarray(layer([a, b])))


class Noisy(layers.Layer):
    """A custom layer composing a Dropout: its training flag must reach the Dropout."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.drop = layers.Dropout(0.5)
        self.seen = []

    def call(self, x, training=None):
        self.seen.append(training)
        return self.drop(x)


def test_training_flag_propagates_to_nested_layers_and_models():
    x = np.ones((64, 32), np.float32)
    layer = Noisy()
    assert np.array_equal(np.asarray(layer(x)), x)                     # outside any call: inference
    dropped = np.asarray(layer(x, training=True))
    assert (dropped == 0).any() and np.allclose(dropped[dropped != 0], 2.0)   # the inner Dropout ran
    assert layer.seen == [None, True]

    inp = Input((32,))
    inner = Model(inp, Noisy()(inp))
    outer_in = Input((32,))
    outer = Model(outer_in, inner(outer_in))
    assert np.array_equal(np.asarray(outer(x)), x)
    nested = np.asarray(outer(x, training=True))
    assert (nested == 0).any()
    # An explicit training=False on the nested model wins over the outer call's True (the
    # frozen-base pattern of transfer learning).
    frozen_in = Input((32,))
    frozen = Model(frozen_in, inner(frozen_in, training=False))
    assert np.array_equal(np.asarray(frozen(x, training=True)), x)


def test_training_flag_reaches_layers_inside_fit():
    layer = Noisy()
    inp = Input((4,))
    model = Model(inp, layers.Dense(1)(layer(inp)))
    model.compile("sgd", "mse")
    model.fit(np.ones((4, 4), np.float32), np.ones((4, 1), np.float32), verbose=0)
    assert layer.seen[-1] is True
    model.predict(np.ones((2, 4), np.float32), verbose=0)
    assert layer.seen[-1] is False


def test_masks_travel_on_tensors_through_eager_calls():
    ids = np.array([[3, 5, 0, 0], [2, 0, 0, 0]])
    emb = layers.Embedding(10, 4, mask_zero=True)
    lstm = layers.LSTM(3)
    e = emb(ids)
    np.testing.assert_array_equal(np.asarray(e._keras_mask), ids != 0)
    implicit = np.asarray(lstm(e))
    explicit = np.asarray(lstm(e, mask=ids != 0))
    unmasked = np.asarray(lstm(ops.convert_to_tensor(np.asarray(e))))   # a fresh tensor: no mask
    np.testing.assert_allclose(implicit, explicit)
    assert not np.allclose(implicit, unmasked)

    class Tagger(Model):
        def __init__(self):
            super().__init__()
            self.emb = layers.Embedding(10, 4, mask_zero=True)
            self.rnn = layers.LSTM(3)

        def call(self, x):
            return self.rnn(self.emb(x))

    tagger = Tagger()
    out = np.asarray(tagger(ids))
    tagger.rnn.set_weights(lstm.get_weights())
    tagger.emb.set_weights(emb.get_weights())
    np.testing.assert_allclose(np.asarray(tagger(ids)), implicit)
    assert out.shape == (2, 3)


def test_functional_and_sequential_models_propagate_masks_as_before():
    ids = np.array([[3, 5, 0], [2, 0, 0]])
    inp = Input((3,), dtype="int32")
    emb = layers.Embedding(10, 4, mask_zero=True)
    lstm = layers.LSTM(2)
    model = Model(inp, lstm(emb(inp)))
    direct = np.asarray(lstm(emb(ids)))
    np.testing.assert_allclose(model.predict(ids, verbose=0), direct, rtol=1e-6)
    seq = Sequential([emb, lstm])
    np.testing.assert_allclose(np.asarray(seq(ids)), direct, rtol=1e-6)


def test_explicit_mask_is_the_previous_mask_for_layers_that_do_not_take_one():
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    mask = np.array([[True, True, False], [True, False, False]])
    out = layers.Dense(2)(x, mask=mask)              # Dense supports masking: the mask passes through
    np.testing.assert_array_equal(np.asarray(out._keras_mask), mask)
