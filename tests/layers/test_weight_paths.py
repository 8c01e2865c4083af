"""Weight and optimizer-variable paths follow Keras 3's name scopes: a sublayer's weights carry
the names of the layers it was built in ("block/dense/kernel"), Sequential and subclassed models
prefix theirs, recurrent layers name their cell, optimizers their slots by the weight's path."""
import numpy as np
import pytest

import engine
from engine import Input, Model, Sequential, backend, layers, optimizers


class Block(layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.first = layers.Dense(3, name="first")
        self.second = layers.Dense(2, name="second")

    def call(self, x):
        return self.second(self.first(x))


class BuildsItsOwn(layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.inner = layers.Dense(3, name="inner")

    def build(self, input_shape):
        self.inner.build(input_shape)
        self.scale = self.add_weight(shape=(3,), name="scale")

    def call(self, x):
        return self.inner(x) * self.scale


def _paths(obj):
    return [w.path for w in obj.weights]


def test_sublayers_are_named_under_the_layer_that_builds_them():
    inp = Input((4,))
    model = Model(inp, layers.Dense(1, name="head")(Block(name="blk")(inp)))
    assert _paths(model) == ["blk/first/kernel", "blk/first/bias", "blk/second/kernel", "blk/second/bias",
                             "head/kernel", "head/bias"]
    own = BuildsItsOwn(name="own")
    own(np.ones((1, 4), "float32"))
    assert _paths(own) == ["own/scale", "own/inner/kernel", "own/inner/bias"]
    own2 = BuildsItsOwn(name="own2")
    own2.build((None, 4))                  # a direct build() call is scoped too
    assert _paths(own2) == ["own2/scale", "own2/inner/kernel", "own2/inner/bias"]


def test_models_and_wrappers_prefix_their_layers():
    seq = Sequential([Input((3,)), layers.Dense(2, name="d")], name="seq")
    assert _paths(seq) == ["seq/d/kernel", "seq/d/bias"]

    class Sub(Model):
        def __init__(self):
            super().__init__(name="sub")
            self.d = layers.Dense(2, name="d")

        def call(self, x):
            return self.d(x)

    sub = Sub()
    sub(np.ones((1, 3), "float32"))
    assert _paths(sub) == ["sub/d/kernel", "sub/d/bias"]
    td = layers.TimeDistributed(layers.Dense(2, name="d"), name="td")
    td(np.ones((1, 2, 3), "float32"))
    assert _paths(td) == ["td/d/kernel", "td/d/bias"]
    # Nested twice: no duplicated prefixes.
    inp = Input((2, 3))
    outer = Sequential([Input((2, 3)), layers.TimeDistributed(layers.Dense(2, name="dd"), name="tdd")], name="outer")
    Model(inp, outer(inp))
    assert _paths(outer) == ["outer/tdd/dd/kernel", "outer/tdd/dd/bias"]


def test_recurrent_layers_name_their_cell():
    x = np.ones((1, 2, 3), "float32")
    for layer, cell in ((layers.LSTM(2, name="l"), "lstm_cell"), (layers.GRU(2, name="g"), "gru_cell"),
                        (layers.SimpleRNN(2, name="s"), "simple_rnn_cell")):
        layer(x)
        assert _paths(layer) == [f"{layer.name}/{cell}/kernel", f"{layer.name}/{cell}/recurrent_kernel",
                                 f"{layer.name}/{cell}/bias"]
    bi = layers.Bidirectional(layers.LSTM(2, name="l2"), name="bi")
    bi(x)
    assert _paths(bi)[0] == "bi/forward_l2/lstm_cell/kernel" and _paths(bi)[3] == "bi/backward_l2/lstm_cell/kernel"
    rnn = layers.RNN(layers.GRUCell(2, name="cell"), name="r")
    rnn(x)
    assert _paths(rnn)[0] == "r/cell/kernel"
    conv = layers.ConvLSTM1D(2, 3, name="c")
    conv(np.ones((1, 2, 5, 3), "float32"))
    assert _paths(conv)[0] == "c/conv_lstm_cell/kernel"


def test_name_scope_and_variables():
    with engine.name_scope("outer"):
        v = engine.Variable(1.0, name="v")
        with backend.name_scope("inner"):
            w = engine.Variable(2.0, name="w")
            assert backend.current_path() == "outer/inner"
        d = layers.Dense(2, name="dense_in_scope")
        d.build((None, 3))
    assert (v.path, w.path, backend.current_path()) == ("outer/v", "outer/inner/w", "")
    assert _paths(d) == ["outer/dense_in_scope/kernel", "outer/dense_in_scope/bias"]
    with pytest.raises(ValueError, match="without '/'"):
        backend.name_scope("a/b")


def test_optimizer_variables_are_named_by_the_weights_paths():
    seq = Sequential([Input((3,)), layers.Dense(2, name="d")], name="net")
    opt = optimizers.Adam(name="opt")
    opt.build(seq.trainable_variables)
    assert [v.path for v in opt.variables] == ["opt/iteration", "opt/learning_rate", "opt/net_d_kernel_momentum",
                                               "opt/net_d_kernel_velocity", "opt/net_d_bias_momentum",
                                               "opt/net_d_bias_velocity"]


def test_paths_match_keras():
    keras = pytest.importorskip("keras")

    def build(lib):
        inp = lib.Input((2, 3))
        x = lib.layers.Bidirectional(lib.layers.LSTM(2, return_sequences=True))(inp)
        x = lib.layers.TimeDistributed(lib.layers.Dense(2))(x)
        x = lib.layers.MultiHeadAttention(2, 2)(x, x)
        x = lib.Sequential([lib.layers.GRU(2), lib.layers.Dense(1)])(x)
        model = lib.Model(inp, x)
        opt = lib.optimizers.RMSprop()
        opt.build(model.trainable_variables)
        return [w.path for w in model.weights], [v.path for v in opt.variables]

    keras.backend.clear_session()
    backend.clear_session()
    assert build(engine) == build(keras)
