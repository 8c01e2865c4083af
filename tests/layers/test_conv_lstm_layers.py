"""ConvLSTM1D / ConvLSTM2D: a 1x1 kernel makes them an LSTM per position (checked against engine's
LSTM, itself checked against numpy elsewhere); a wider kernel against a numpy step written here;
gradients, shapes, states and configs."""
import numpy as np
import pytest

from engine import layers
from engine.testing import check_layer_gradients

rng = np.random.default_rng(8)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def conv1d_same_or_valid(x, w, padding):
    """x (B, L, C), w (k, C, F), stride 1: cross-correlation with TensorFlow's "same" placement."""
    k = w.shape[0]
    if padding == "same":
        total = k - 1
        x = np.pad(x, ((0, 0), (total // 2, total - total // 2), (0, 0)))
    out = x.shape[1] - k + 1
    return np.stack([sum(x[:, t + a] @ w[a] for a in range(k)) for t in range(out)], 1)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_conv_lstm_with_a_1x1_kernel_is_an_lstm_per_position(rank):
    shape = {1: (2, 4, 5, 3), 2: (2, 4, 3, 2, 3), 3: (2, 4, 2, 2, 2, 3)}[rank]
    x = rng.standard_normal(shape)
    cls = {1: layers.ConvLSTM1D, 2: layers.ConvLSTM2D, 3: layers.ConvLSTM3D}[rank]
    layer = cls(2, 1, return_sequences=True, dtype="float64")
    y = np.asarray(layer(x))
    k, u, b = layer.get_weights()
    positions = int(np.prod(shape[2:-1]))
    seqs = np.moveaxis(x, 1, -2).reshape(2 * positions, 4, 3)
    lstm = layers.LSTM(2, return_sequences=True, dtype="float64")
    lstm(seqs)
    lstm.set_weights([k.reshape(3, 8), u.reshape(2, 8), b])
    ref = np.moveaxis(np.asarray(lstm(seqs)).reshape((2,) + shape[2:-1] + (4, 2)), -2, 1)
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_conv_lstm1d_against_a_numpy_step(padding):
    x = rng.standard_normal((2, 3, 6, 2))
    layer = layers.ConvLSTM1D(2, 3, padding=padding, return_state=True, dtype="float64")
    out, h, c = layer(x)
    k, u, b = layer.get_weights()
    length = 6 if padding == "same" else 4
    h_ref, c_ref = np.zeros((2, length, 2)), np.zeros((2, length, 2))
    for t in range(3):
        z = conv1d_same_or_valid(x[:, t], k, padding) + b + conv1d_same_or_valid(h_ref, u, "same")
        i, f, g, o = sigmoid(z[..., :2]), sigmoid(z[..., 2:4]), np.tanh(z[..., 4:6]), sigmoid(z[..., 6:])
        c_ref = f * c_ref + i * g
        h_ref = o * np.tanh(c_ref)
    np.testing.assert_allclose(np.asarray(out), h_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(c), c_ref, rtol=1e-10, atol=1e-12)


def test_conv_lstm_gradients_masks_and_config():
    layer = layers.ConvLSTM2D(2, 2, strides=(1, 2), padding="same", return_sequences=True, go_backwards=True,
                              dtype="float64")
    x = rng.standard_normal((2, 3, 3, 4, 2))
    mask = np.array([[1, 1, 0], [1, 1, 1]], bool)
    y = layer(x, mask=mask)
    assert y.shape == (2, 3, 3, 2, 2) == (2,) + layer.compute_output_shape((None, 3, 3, 4, 2))[1:]
    assert [w.shape for w in layer.weights] == [(2, 2, 2, 8), (2, 2, 2, 8), (8,)]
    check_layer_gradients(layer, x, mask=mask)
    config = layer.get_config()
    assert "cell" not in config and config["filters"] == 2 and config["strides"] == (1, 2)
    assert layers.ConvLSTM2D.from_config(config).get_config() == config
    with pytest.raises(ValueError, match="rank 5"):
        layers.ConvLSTM2D(2, 2)(np.zeros((2, 3, 4, 2), np.float32))


def test_conv_lstm3d_shapes_and_gradients():
    layer = layers.ConvLSTM3D(2, 2, padding="same", dtype="float64")
    x = rng.standard_normal((1, 2, 2, 3, 2, 2))
    assert layer(x).shape == (1, 2, 3, 2, 2)
    assert [w.shape for w in layer.weights] == [(2, 2, 2, 2, 8), (2, 2, 2, 2, 8), (8,)]
    check_layer_gradients(layer, x)
