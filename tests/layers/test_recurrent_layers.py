"""LSTM, GRU, SimpleRNN and Bidirectional: outputs against float64 numpy references written here,
gradients against finite differences, Keras weight layouts and argument handling."""
import numpy as np
import pytest

from engine import layers, Input, Model, GradientTape
from engine.testing import check_layer_gradients

rng = np.random.default_rng(3)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def ref_lstm(x, W, U, b, h=None, c=None, go_backwards=False, mask=None):
    B, T, _ = x.shape
    u = U.shape[0]
    h = np.zeros((B, u)) if h is None else h
    c = np.zeros((B, u)) if c is None else c
    outs = []
    for t in (range(T - 1, -1, -1) if go_backwards else range(T)):
        z = x[:, t] @ W + h @ U + b
        i, f, g, o = sigmoid(z[:, :u]), sigmoid(z[:, u:2 * u]), np.tanh(z[:, 2 * u:3 * u]), sigmoid(z[:, 3 * u:])
        c_new = f * c + i * g
        h_new = o * np.tanh(c_new)
        if mask is not None:
            keep = mask[:, t][:, None]
            c_new, h_new = np.where(keep, c_new, c), np.where(keep, h_new, h)
        h, c = h_new, c_new
        outs.append(h)
    return np.stack(outs, 1), h, c


def ref_gru(x, W, U, b, go_backwards=False):
    B, T, _ = x.shape
    u = U.shape[0]
    h = np.zeros((B, u))
    outs = []
    for t in (range(T - 1, -1, -1) if go_backwards else range(T)):
        xz = x[:, t] @ W + b[0]
        hz = h @ U + b[1]
        z = sigmoid(xz[:, :u] + hz[:, :u])
        r = sigmoid(xz[:, u:2 * u] + hz[:, u:2 * u])
        hh = np.tanh(xz[:, 2 * u:] + r * hz[:, 2 * u:])
        h = z * h + (1 - z) * hh
        outs.append(h)
    return np.stack(outs, 1), h


def ref_simple(x, W, U, b):
    h = np.zeros((x.shape[0], U.shape[0]))
    outs = []
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ W + h @ U + b)
        outs.append(h)
    return np.stack(outs, 1), h


@pytest.mark.parametrize("go_backwards", [False, True])
def test_lstm_matches_reference(go_backwards):
    x = rng.standard_normal((3, 6, 4))
    layer = layers.LSTM(5, return_sequences=True, return_state=True, go_backwards=go_backwards, dtype="float64")
    seq, h, c = layer(x)
    W, U, b = layer.get_weights()
    assert (W.shape, U.shape, b.shape) == ((4, 20), (5, 20), (20,))
    np.testing.assert_array_equal(b, np.r_[np.zeros(5), np.ones(5), np.zeros(10)])  # unit_forget_bias
    ref_seq, ref_h, ref_c = ref_lstm(x, W, U, b, go_backwards=go_backwards)
    np.testing.assert_allclose(seq, ref_seq, atol=1e-12)
    np.testing.assert_allclose(h, ref_h, atol=1e-12)
    np.testing.assert_allclose(c, ref_c, atol=1e-12)


def test_lstm_float32_and_initial_state_and_mask():
    x = rng.standard_normal((4, 7, 3))
    mask = rng.random((4, 7)) > 0.3
    mask[0, :3] = False
    mask[1, 4:] = False
    layer = layers.LSTM(2, return_sequences=True)
    h0, c0 = rng.standard_normal((4, 2)).astype(np.float32), rng.standard_normal((4, 2)).astype(np.float32)
    seq = layer(x.astype(np.float32), mask=mask, initial_state=[h0, c0])
    W, U, b = (w.astype(np.float64) for w in layer.get_weights())
    ref_seq, _, _ = ref_lstm(x, W, U, b, h0.astype(np.float64), c0.astype(np.float64), mask=mask)
    np.testing.assert_allclose(seq, ref_seq, atol=2e-5)


def test_gru_and_simple_rnn_match_references():
    x = rng.standard_normal((2, 5, 3))
    gru = layers.GRU(4, return_sequences=True, dtype="float64")
    seq = gru(x)
    W, U, b = gru.get_weights()
    assert b.shape == (2, 12)
    gru.set_weights([W, U, rng.standard_normal((2, 12))])
    np.testing.assert_allclose(gru(x), ref_gru(x, *gru.get_weights())[0], atol=1e-12)
    rnn = layers.SimpleRNN(4, dtype="float64")
    np.testing.assert_allclose(rnn(x), ref_simple(x, *rnn.get_weights())[1], atol=1e-12)


@pytest.mark.parametrize("make", [
    lambda: layers.LSTM(3, dtype="float64"),
    lambda: layers.LSTM(3, return_sequences=True, go_backwards=True, dtype="float64"),
    lambda: layers.LSTM(2, return_state=True, dtype="float64", activation="relu",
                        recurrent_activation="hard_sigmoid"),
    lambda: layers.LSTM(3, use_bias=False, dtype="float64"),
    lambda: layers.GRU(3, return_sequences=True, dtype="float64"),
    lambda: layers.GRU(3, go_backwards=True, dtype="float64"),
    lambda: layers.SimpleRNN(3, return_sequences=True, dtype="float64"),
    lambda: layers.Bidirectional(layers.LSTM(2, return_sequences=True), dtype="float64"),
    lambda: layers.Bidirectional(layers.GRU(2), merge_mode="sum", dtype="float64"),
], ids=["lstm", "lstm_seq_backwards", "lstm_state_relu", "lstm_nobias", "gru_seq", "gru_backwards", "simple",
        "bidi_lstm", "bidi_gru_sum"])
def test_recurrent_gradients(make):
    layer = make()
    if isinstance(layer, layers.Bidirectional):
        layer.forward_layer.dtype = layer.backward_layer.dtype = "float64"
    x = rng.standard_normal((2, 4, 3))
    if getattr(layer, "return_state", False) and not isinstance(layer, layers.Bidirectional):
        from engine import ops
        out = layer(x)
        probe = layers.Lambda(lambda xs: ops.concatenate(xs, axis=-1), dtype="float64")
        # Check every returned tensor (output, h, c) at once by concatenating them.
        class Both(layers.Layer):
            def __init__(self):
                super().__init__(dtype="float64")
                self.inner = layer

            def call(self, inputs):
                return probe(self.inner(inputs))
        check_layer_gradients(Both(), x, atol=1e-6)
    else:
        check_layer_gradients(layer, x, atol=1e-6)


def test_masked_lstm_gradients():
    x = rng.standard_normal((3, 5, 2))
    mask = np.array([[1, 1, 0, 1, 0], [0, 0, 1, 1, 1], [1, 1, 1, 1, 1]], dtype=bool)
    layer = layers.LSTM(2, return_sequences=True, dtype="float64")
    check_layer_gradients(layer, x, atol=1e-6, mask=mask)


def test_recurrent_dropout_masks_apply_only_in_training():
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    layer = layers.LSTM(3, dropout=0.5, recurrent_dropout=0.5, seed=1)
    np.testing.assert_array_equal(layer(x), layer(x))
    assert not np.allclose(layer(x, training=True), layer(x))


def test_stateful_carries_states_between_calls():
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    layer = layers.LSTM(3, stateful=True)
    first = layer(x)
    second = layer(x)
    assert not np.allclose(first, second)
    layer.reset_states()
    np.testing.assert_allclose(layer(x), first, rtol=1e-6)


def test_variable_length_inputs_and_shapes():
    inp = Input(shape=(None, 8))
    out = layers.LSTM(4, return_sequences=True)(inp)
    assert out.shape == (None, None, 4)
    seq, h, c = layers.LSTM(4, return_state=True)(inp)
    assert seq.shape == h.shape == c.shape == (None, 4)
    model = Model(inp, out)
    assert model.predict(np.zeros((2, 7, 8)), verbose=0).shape == (2, 7, 4)
    assert model.predict(np.zeros((2, 3, 8)), verbose=0).shape == (2, 3, 4)
    with pytest.raises(ValueError, match="lstm"):
        layers.LSTM(3, name="lstm_bad")(Input(shape=(8,)))


def test_unsupported_activation_is_a_clear_error():
    with pytest.raises(ValueError, match="softplus"):
        layers.LSTM(3, activation="softplus")


def test_bidirectional_layout_and_outputs():
    x = rng.standard_normal((2, 5, 3))
    bi = layers.Bidirectional(layers.LSTM(4, return_sequences=True), dtype="float64")
    out = bi(x)
    assert out.shape == (2, 5, 8)
    fw = bi.forward_layer.get_weights()
    bw = bi.backward_layer.get_weights()
    assert len(bi.get_weights()) == 6
    np.testing.assert_allclose(out[..., :4], ref_lstm(x, *fw)[0], atol=1e-6)
    np.testing.assert_allclose(out[..., 4:], ref_lstm(x, *bw, go_backwards=True)[0][:, ::-1], atol=1e-6)


def test_bidirectional_config_carries_both_copies_and_round_trips():
    """Keras writes layer=forward copy and backward_layer; reloading keeps names unstacked and
    the given backward layer (its weights included) rather than deriving a new one."""
    from engine.saving.serialization import deserialize_keras_object, serialize_keras_object
    x = rng.standard_normal((2, 5, 3)).astype("float32")
    bi = layers.Bidirectional(layers.GRU(3, name="g"), backward_layer=layers.GRU(3, go_backwards=True,
                                                                            reset_after=False, name="b"))
    want = bi(x)
    config = bi.get_config()
    assert config["layer"]["config"]["name"] == "forward_g"
    assert config["backward_layer"]["config"]["name"] == "b"
    assert config["backward_layer"]["config"]["reset_after"] is False
    again = deserialize_keras_object(serialize_keras_object(bi))
    assert again.forward_layer.name == "forward_g" and again.backward_layer.name == "b"
    assert again.backward_layer.reset_after is False
    again(x)
    again.set_weights(bi.get_weights())
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(want), rtol=1e-6)


def test_bidirectional_rejects_a_backward_layer_that_does_not_mirror_the_forward_one():
    with pytest.raises(ValueError, match="go_backwards"):
        layers.Bidirectional(layers.LSTM(2), backward_layer=layers.LSTM(2))
    with pytest.raises(ValueError, match="return_sequences"):
        layers.Bidirectional(layers.LSTM(2), backward_layer=layers.LSTM(2, go_backwards=True, return_sequences=True))
    with pytest.raises(ValueError, match="recurrent layer"):
        layers.Bidirectional(layers.LSTM(2), backward_layer=layers.Dense(2))


@pytest.mark.parametrize("kind", ["lstm", "gru", "simple_rnn"])
def test_backward_skips_gradients_nobody_asked_for(kind):
    """input_grad / weight_grads only drop results: what is computed is unchanged, and the tape
    asks for no dx when the RNN reads a model input (an unwatched array)."""
    from engine._kernels import recurrent as R
    rng = np.random.default_rng(3)
    B, T, D, u = 5, 7, 4, 3
    gates = {"lstm": 4, "gru": 3, "simple_rnn": 1}[kind]
    x = rng.standard_normal((B, T, D))
    W, U = rng.standard_normal((D, gates * u)), rng.standard_normal((u, gates * u))
    h0 = rng.standard_normal((B, u))
    if kind == "lstm":
        cache = R.lstm_forward(x, W, U, rng.standard_normal(4 * u), h0, h0 * 0.5)[3]
        run = lambda **kw: R.lstm_backward(cache, None, np.ones((B, u)), None, **kw)  # noqa: E731
    elif kind == "gru":
        cache = R.gru_forward(x, W, U, rng.standard_normal((2, 3 * u)), h0)[2]
        run = lambda **kw: R.gru_backward(cache, None, np.ones((B, u)), **kw)  # noqa: E731
    else:
        cache = R.simple_rnn_forward(x, W, U, rng.standard_normal(u), h0)[2]
        run = lambda **kw: R.simple_rnn_backward(cache, None, np.ones((B, u)), **kw)  # noqa: E731
    full = run()
    no_dx = run(input_grad=False)
    assert no_dx[0] is None
    for a, b in zip(full[1:], no_dx[1:]):
        np.testing.assert_array_equal(a, b)
    only_dx = run(weight_grads=False)
    np.testing.assert_array_equal(only_dx[0], full[0])
    assert only_dx[1] is None and only_dx[2] is None and only_dx[3] is None
    np.testing.assert_array_equal(only_dx[4], full[4])

    # through the tape: gradients of the weights only, from an input nobody watches
    layer = {"lstm": layers.LSTM, "gru": layers.GRU, "simple_rnn": layers.SimpleRNN}[kind](u)
    xs = x.astype(np.float32)
    with GradientTape() as tape:
        y = layer(xs)
    grads = tape.gradient(y, layer.trainable_weights, output_gradients=np.ones((B, u), np.float32))
    assert all(g is not None and np.isfinite(g).all() for g in grads)


def test_denormal_flushing_stays_inside_the_kernels():
    """The recurrent kernels flush denormals to zero while they run (a long backward pass would
    otherwise crawl through microcode assists) and give the caller's floating-point mode back."""
    from engine._kernels import recurrent as R
    tiny = np.finfo(np.float32).tiny
    assert np.float32(1e-38) * np.float32(1e-3) != 0        # denormals work out here
    rng = np.random.default_rng(0)
    B, T, D, u = 4, 3, 3, 2
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    W = rng.standard_normal((D, 4 * u)).astype(np.float32)
    U = rng.standard_normal((u, 4 * u)).astype(np.float32)
    h0 = np.zeros((B, u), np.float32)
    cache = R.lstm_forward(x, W, U, np.zeros(4 * u, np.float32), h0, h0)[3]
    # a gradient just above the smallest normal float: the gate gradients fall below it
    _, _, _, db, dh0, dc0 = R.lstm_backward(cache, None, np.full((B, u), 3 * tiny, np.float32), None)
    inside = np.abs(np.concatenate([db.ravel(), dh0.ravel(), dc0.ravel()]))
    assert (inside > 0).any()
    assert ((inside == 0) | (inside >= tiny)).all()          # flushed, not denormal
    assert np.float32(1e-38) * np.float32(1e-3) != 0        # and the mode is restored afterwards



def test_simple_rnn_refuses_recurrent_activation():
    # a SimpleRNN has no gates: the argument would be accepted and ignored (Keras refuses it too)
    from engine import layers
    with pytest.raises(TypeError, match=r"SimpleRNN: unexpected keyword argument\(s\) \['recurrent_activation'\]"):
        layers.SimpleRNN(4, recurrent_activation="sigmoid")
    assert "recurrent_activation" not in layers.SimpleRNN(4).get_config()
