"""Conv1DTranspose / Conv2DTranspose: outputs against a direct scatter loop with TensorFlow's
placement rule written here, Keras's output sizes, gradients, configs and errors."""
import numpy as np
import pytest

from engine import layers
from engine.ops.transposed_conv import conv_transpose
from engine.testing import check_gradients, check_layer_gradients

rng = np.random.default_rng(4)


def keras_length(n, k, s, d, padding, op):
    """Keras's deconv_output_length."""
    k = k + (k - 1) * (d - 1)
    if op is None:
        return n * s + max(k - s, 0) if padding == "valid" else n * s
    pad = k // 2 if padding == "same" else 0
    return (n - 1) * s + k - 2 * pad + op


def direct_transpose(x, w, strides, dilations, padding, output_padding):
    """Each input cell adds x * kernel at output i * s + a * d - before, where `before` is the
    leading padding of the convolution (TensorFlow's rule: 0 for valid; for same, half (rounded
    down) of what a convolution from the output back to the input pads)."""
    n, h, wd, _ = x.shape
    kh, kw, f, _ = w.shape
    sizes, befores = [], []
    for size, k, s, d, op in zip((h, wd), (kh, kw), strides, dilations, output_padding):
        out = keras_length(size, k, s, d, padding, op)
        keff = (k - 1) * d + 1
        total = max((size - 1) * s + keff - out, 0)
        sizes.append(out)
        befores.append(total // 2 if padding == "same" else 0)
    y = np.zeros((n, sizes[0], sizes[1], f))
    for i in range(h):
        for j in range(wd):
            for a in range(kh):
                for b in range(kw):
                    oi = i * strides[0] + a * dilations[0] - befores[0]
                    oj = j * strides[1] + b * dilations[1] - befores[1]
                    if 0 <= oi < sizes[0] and 0 <= oj < sizes[1]:
                        y[:, oi, oj] += x[:, i, j] @ w[a, b].T
    return y


CASES = [((3, 3), (1, 1), (1, 1), "valid", None), ((3, 3), (2, 2), (1, 1), "same", None),
         ((3, 2), (2, 1), (1, 1), "valid", (1, 0)), ((2, 2), (1, 1), (2, 2), "valid", None),
         ((4, 3), (3, 2), (1, 1), "same", (2, 1)), ((2, 2), (2, 2), (1, 1), "same", None),
         ((3, 3), (2, 2), (1, 1), "same", (1, 1)), ((1, 1), (2, 3), (1, 1), "valid", None),
         ((5, 4), (2, 2), (1, 1), "same", (0, 1))]


@pytest.mark.parametrize("kernel,strides,dilations,padding,output_padding", CASES)
def test_conv2d_transpose_against_direct_loop(kernel, strides, dilations, padding, output_padding):
    x = rng.standard_normal((2, 4, 5, 3))
    w = rng.standard_normal(kernel + (2, 3))
    y = conv_transpose(x, w, strides=strides, padding=padding, output_padding=output_padding,
                       dilation_rate=dilations)
    expected = direct_transpose(x, w, strides, dilations, padding, output_padding or (None, None))
    assert y.shape == expected.shape
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-10, atol=1e-12)
    check_gradients(lambda x, w: conv_transpose(x, w, strides=strides, padding=padding,
                                                output_padding=output_padding, dilation_rate=dilations), [x, w])


def test_conv2d_transpose_layer_weights_bias_activation_and_gradients():
    layer = layers.Conv2DTranspose(4, 3, strides=2, padding="same", activation="relu", dtype="float64")
    x = rng.standard_normal((2, 3, 3, 2))
    y = layer(x)
    kernel, bias = layer.get_weights()
    assert kernel.shape == (3, 3, 4, 2) and bias.shape == (4,)
    assert layer.count_params() == 3 * 3 * 4 * 2 + 4
    bias = rng.standard_normal(4)
    layer.set_weights([kernel, bias])
    expected = np.maximum(direct_transpose(x, kernel, (2, 2), (1, 1), "same", (None, None)) + bias, 0)
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-10, atol=1e-12)
    assert y.shape == layer.compute_output_shape((None, 3, 3, 2))[:0] + (2, 6, 6, 4)
    check_layer_gradients(layers.Conv2DTranspose(2, (2, 3), strides=(2, 1), output_padding=(1, 0),
                                                 activation="tanh", dtype="float64"), x)


@pytest.mark.parametrize("kwargs", [{}, {"strides": 3, "padding": "same"}, {"strides": 2, "output_padding": 1},
                                    {"dilation_rate": 2}])
def test_conv1d_transpose(kwargs):
    layer = layers.Conv1DTranspose(3, 3, dtype="float64", **kwargs)
    x = rng.standard_normal((2, 5, 2))
    y = layer(x)
    kernel, bias = layer.get_weights()
    assert kernel.shape == (3, 3, 2)
    s, d = kwargs.get("strides", 1), kwargs.get("dilation_rate", 1)
    op = kwargs.get("output_padding")
    expected = direct_transpose(x[:, None], kernel[None], (1, s), (1, d), kwargs.get("padding", "valid"),
                                (None, op))[:, 0] + bias
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-10, atol=1e-12)
    assert layer.compute_output_shape((None, 5, 2)) == (None,) + expected.shape[1:]
    check_layer_gradients(layer, x)


def test_conv_transpose_configs_and_errors():
    layer = layers.Conv2DTranspose(3, 2, strides=2, output_padding=1, padding="same")
    config = layer.get_config()
    assert config["output_padding"] == (1, 1) and config["kernel_size"] == (2, 2)
    assert layers.Conv2DTranspose.from_config(config).get_config() == config
    assert layers.Conv1DTranspose.from_config(layers.Conv1DTranspose(2, 3).get_config()).kernel_size == (3,)
    with pytest.raises(ValueError, match="output_padding"):
        layers.Conv2DTranspose(3, 2, strides=2, output_padding=2)
    with pytest.raises(ValueError, match="padding"):
        layers.Conv1DTranspose(3, 2, padding="causal")
    with pytest.raises(ValueError, match="rank 4"):
        layers.Conv2DTranspose(3, 2)(np.zeros((2, 3, 3), np.float32))
    assert layers.Convolution2DTranspose is layers.Conv2DTranspose


@pytest.mark.parametrize("kwargs", [{}, {"strides": 2, "padding": "same"},
                                    {"strides": (2, 1, 3), "output_padding": (1, 0, 2)},
                                    {"dilation_rate": (2, 1, 1), "padding": "same"}])
def test_conv3d_transpose_against_direct_loop(kwargs):
    layer = layers.Conv3DTranspose(2, (3, 2, 2), activation="tanh", dtype="float64", **kwargs)
    x = rng.standard_normal((2, 3, 2, 3, 2))
    y = np.asarray(layer(x))
    w, b = layer.get_weights()
    assert w.shape == (3, 2, 2, 2, 2)
    s = kwargs.get("strides", 1)
    s = (s,) * 3 if isinstance(s, int) else s
    d = kwargs.get("dilation_rate", (1, 1, 1))
    padding = kwargs.get("padding", "valid")
    ops_ = kwargs.get("output_padding", (None,) * 3)
    sizes, befores = [], []
    for n, k, st, dd, op in zip(x.shape[1:4], w.shape[:3], s, d, ops_):
        out = keras_length(n, k, st, dd, padding, op)
        total = max((n - 1) * st + (k - 1) * dd + 1 - out, 0)
        sizes.append(out)
        befores.append(total // 2 if padding == "same" else 0)
    ref = np.zeros((2, *sizes, 2))
    for i in range(3):
        for j in range(2):
            for m in range(3):
                for a in range(3):
                    for bb in range(2):
                        for c in range(2):
                            o = (i * s[0] + a * d[0] - befores[0], j * s[1] + bb * d[1] - befores[1],
                                 m * s[2] + c * d[2] - befores[2])
                            if all(0 <= oo < size for oo, size in zip(o, sizes)):
                                ref[:, o[0], o[1], o[2]] += x[:, i, j, m] @ w[a, bb, c].T
    np.testing.assert_allclose(y, np.tanh(ref + b), rtol=1e-10, atol=1e-12)
    assert layer.compute_output_shape((None,) + x.shape[1:]) == (None,) + y.shape[1:]
    check_layer_gradients(layer, x)
