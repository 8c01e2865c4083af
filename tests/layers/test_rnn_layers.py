"""RNN over cells, the cells themselves, StackedRNNCells, TimeDistributed and Bidirectional over
RNN: steps against numpy formulas written here, the time loop against the fused kernels,
gradients against finite differences, states, configs and saving."""
import numpy as np
import pytest

import engine
from engine import layers
from engine.testing import check_layer_gradients

rng = np.random.default_rng(6)
X = rng.standard_normal((3, 5, 4))
MASK = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 1, 1, 0]], bool)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def step_reference(cell, x, states):
    w, u = cell.kernel.numpy(), cell.recurrent_kernel.numpy()
    b = cell.bias.numpy()
    n = cell.units
    if isinstance(cell, layers.SimpleRNNCell):
        h = np.tanh(x @ w + states[0] @ u + b)
        return h, [h]
    if isinstance(cell, layers.LSTMCell):
        z = x @ w + states[0] @ u + b
        i, f, g, o = sigmoid(z[:, :n]), sigmoid(z[:, n:2 * n]), np.tanh(z[:, 2 * n:3 * n]), sigmoid(z[:, 3 * n:])
        c = f * states[1] + i * g
        h = o * np.tanh(c)
        return h, [h, c]
    h0 = states[0]
    if cell.reset_after:
        xw, hu = x @ w + b[0], h0 @ u + b[1]
        z, r = sigmoid(xw[:, :n] + hu[:, :n]), sigmoid(xw[:, n:2 * n] + hu[:, n:2 * n])
        hh = np.tanh(xw[:, 2 * n:] + r * hu[:, 2 * n:])
    else:
        xw = x @ w + b
        z = sigmoid(xw[:, :n] + h0 @ u[:, :n])
        r = sigmoid(xw[:, n:2 * n] + h0 @ u[:, n:2 * n])
        hh = np.tanh(xw[:, 2 * n:] + (r * h0) @ u[:, 2 * n:])
    h = z * h0 + (1 - z) * hh
    return h, [h]


def rnn_reference(cell, x, mask=None, go_backwards=False):
    """Keras's RNN loop: a masked step keeps the states and repeats the previous output."""
    states = [np.zeros((x.shape[0], s)) for s in np.atleast_1d(cell.state_size)]
    outs, prev = [], np.zeros((x.shape[0], cell.units))
    for t in (range(x.shape[1] - 1, -1, -1) if go_backwards else range(x.shape[1])):
        out, new = step_reference(cell, x[:, t], states)
        if mask is not None:
            k = mask[:, t][:, None]
            new = [np.where(k, a, s) for a, s in zip(new, states)]
            out = np.where(k, out, prev)
        states, prev = new, out
        outs.append(out)
    return np.stack(outs, 1), states


CELLS = [lambda: layers.SimpleRNNCell(3, dtype="float64"), lambda: layers.LSTMCell(3, dtype="float64"),
         lambda: layers.GRUCell(3, dtype="float64"), lambda: layers.GRUCell(3, reset_after=False, dtype="float64")]


@pytest.mark.parametrize("make_cell", CELLS)
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_rnn_over_builtin_cells_against_reference(make_cell, go_backwards, masked):
    cell = make_cell()
    layer = layers.RNN(cell, return_sequences=True, return_state=True, go_backwards=go_backwards, dtype="float64")
    layer(X)
    layer.set_weights([w + 0.1 * rng.standard_normal(w.shape) for w in layer.get_weights()])
    mask = MASK if masked else None
    seq, *states = layer(X, mask=mask)
    ref_seq, ref_states = rnn_reference(cell, X, mask, go_backwards)
    np.testing.assert_allclose(np.asarray(seq), ref_seq, rtol=1e-10, atol=1e-12)
    for got, want in zip(states, ref_states):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-10, atol=1e-12)
    # The time loop (taken with dropout, activations the kernels lack, or user cells) agrees.
    loop_seq, _, loop_states = layer._loop(engine.ops.convert_to_tensor(X),
                                           layer._initial_states(3, None, np.float64), mask, False)
    np.testing.assert_allclose(np.asarray(loop_seq), ref_seq, rtol=1e-10, atol=1e-12)
    check_layer_gradients(layers.RNN(make_cell(), go_backwards=go_backwards, dtype="float64"), X, mask=mask)


def test_cells_weights_and_configs_follow_keras():
    lstm = layers.LSTMCell(4)
    lstm.build((None, 3))
    assert [w.shape for w in lstm.weights] == [(3, 16), (4, 16), (16,)]
    np.testing.assert_array_equal(lstm.bias.numpy()[4:8], 1.0)        # unit_forget_bias
    gru = layers.GRUCell(2)
    gru.build((None, 3))
    assert [w.shape for w in gru.weights] == [(3, 6), (2, 6), (2, 6)]
    for cell in (lstm, gru, layers.SimpleRNNCell(2, dropout=0.2)):
        config = cell.get_config()
        assert type(cell).from_config(config).get_config() == config
    assert "recurrent_activation" not in layers.SimpleRNNCell(2).get_config()
    assert lstm.state_size == [4, 4] and gru.state_size == 2


class MinimalRNNCell(layers.Layer):
    """A user cell as in Keras's RNN guide: h' = x W + h U."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.units), name="recurrent_kernel")

    def call(self, inputs, states):
        ops = engine.ops
        out = ops.add(ops.matmul(inputs, self.kernel), ops.matmul(states[0], self.recurrent_kernel))
        return out, [out]


def test_rnn_over_a_user_cell_and_a_stack():
    layer = layers.RNN(MinimalRNNCell(3, dtype="float64"), dtype="float64")
    y = layer(X)
    w, u = layer.get_weights()
    h = np.zeros((3, 3))
    for t in range(5):
        h = X[:, t] @ w + h @ u
    np.testing.assert_allclose(np.asarray(y), h, rtol=1e-10)
    check_layer_gradients(layer, X)
    stacked = layers.RNN([layers.LSTMCell(3, dtype="float64"), MinimalRNNCell(2, dtype="float64")],
                         return_state=True, dtype="float64")
    out, h1, c1, h2 = stacked(X)
    assert out.shape == (3, 2) and h1.shape == c1.shape == (3, 3) and h2.shape == (3, 2)
    assert [w.shape for w in stacked.weights] == [(4, 12), (3, 12), (12,), (3, 2), (2, 2)]
    check_layer_gradients(layers.RNN(layers.StackedRNNCells([layers.GRUCell(2, dtype="float64"),
                                                             layers.SimpleRNNCell(2, dtype="float64")]),
                                     return_sequences=True, dtype="float64"), X, mask=MASK)


def test_rnn_states_initial_stateful_zero_output_and_dropout():
    layer = layers.RNN(layers.GRUCell(3, dtype="float64"), stateful=True, return_sequences=True, dtype="float64")
    first = np.asarray(layer(X[:, :2]))
    second = np.asarray(layer(X[:, 2:]))
    whole = np.asarray(layers.RNN(layer.cell, return_sequences=True, dtype="float64")(X))
    np.testing.assert_allclose(np.concatenate([first, second], 1), whole, rtol=1e-10)
    layer.reset_states()
    np.testing.assert_allclose(np.asarray(layer(X[:, :2])), first, rtol=1e-10)
    init = rng.standard_normal((3, 3))
    plain = layers.RNN(layer.cell, dtype="float64")
    _, ref_states = rnn_reference(layer.cell, X[:, :1])
    assert not np.allclose(np.asarray(plain(X, initial_state=[init])), np.asarray(plain(X)))
    with pytest.raises(ValueError, match="initial state"):
        plain(X, initial_state=[np.zeros((3, 4))])
    zero = layers.RNN(layers.SimpleRNNCell(2, dtype="float64"), return_sequences=True, zero_output_for_mask=True,
                      dtype="float64")
    out = np.asarray(zero(X, mask=MASK))
    assert not out[0, 3:].any() and out[0, 2].any()
    drop = layers.RNN(layers.LSTMCell(3, dropout=0.5, recurrent_dropout=0.5, seed=1, dtype="float64"),
                      dtype="float64")
    assert not np.allclose(np.asarray(drop(X, training=True)), np.asarray(drop(X)))


def test_rnn_config_round_trip_and_shapes():
    layer = layers.RNN(layers.StackedRNNCells([layers.LSTMCell(3), layers.GRUCell(2)]), return_sequences=True,
                       go_backwards=True)
    config = layer.get_config()
    assert config["cell"]["class_name"] == "StackedRNNCells"
    clone = layers.RNN.from_config(config)
    assert clone.get_config() == config
    assert layer.compute_output_shape((None, 5, 4)) == (None, 5, 2)
    with pytest.raises(ValueError, match="state_size"):
        layers.RNN(layers.Dense(3))


def test_time_distributed():
    dense = layers.Dense(2, dtype="float64")
    td = layers.TimeDistributed(dense, dtype="float64")
    y = td(X)
    w, b = td.get_weights()
    np.testing.assert_allclose(np.asarray(y), X @ w + b, rtol=1e-12)
    check_layer_gradients(td, X)
    assert td.compute_output_shape((None, 5, 4)) == (None, 5, 2)
    conv = layers.TimeDistributed(layers.Conv2D(3, 2))
    assert conv(np.zeros((2, 4, 5, 5, 1), np.float32)).shape == (2, 4, 4, 4, 3)
    config = td.get_config()
    assert layers.TimeDistributed.from_config(config).get_config() == config


def test_bidirectional_over_rnn_matches_bidirectional_over_gru():
    ours = layers.Bidirectional(layers.RNN(layers.GRUCell(3, dtype="float64"), return_sequences=True,
                                           dtype="float64"), dtype="float64")
    theirs = layers.Bidirectional(layers.GRU(3, return_sequences=True, dtype="float64"), dtype="float64")
    ours(X)
    theirs(X)
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(np.asarray(ours(X, mask=MASK)), np.asarray(theirs(X, mask=MASK)), rtol=1e-10)


def test_models_with_rnn_cells_save_and_load(tmp_path):
    pytest.importorskip("h5py")
    inp = engine.Input((5, 4))
    a = layers.RNN(layers.StackedRNNCells([layers.LSTMCell(3), layers.GRUCell(2)]), return_sequences=True)(inp)
    b = layers.TimeDistributed(layers.Dense(2))(a)
    c = layers.Bidirectional(layers.RNN(layers.SimpleRNNCell(2)))(b)
    model = engine.Model(inp, c)
    x = X.astype(np.float32)
    path = str(tmp_path / "rnn.keras")
    model.save(path)
    again = engine.models.load_model(path)
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
