"""Grouped convolutions (Keras's kernel (k..., in / groups, filters), output channels in group
order) and convolution layers on channels_first inputs, against float64 loops written here."""
import numpy as np
import pytest

from engine import layers, ops
from engine.testing import check_gradients, check_layer_gradients

rng = np.random.default_rng(0)


def _conv2d_reference(x, w, groups, stride=1):
    """Valid 2-D convolution of (N, H, W, C) by (kh, kw, C / groups, F), one output cell at a time."""
    n, h, wd, c = x.shape
    kh, kw, cg, f = w.shape
    fg = f // groups
    ho, wo = (h - kh) // stride + 1, (wd - kw) // stride + 1
    out = np.zeros((n, ho, wo, f))
    for o in range(f):
        g = o // fg
        for i in range(ho):
            for j in range(wo):
                patch = x[:, i * stride:i * stride + kh, j * stride:j * stride + kw, g * cg:(g + 1) * cg]
                out[:, i, j, o] = np.einsum("nabc,abc->n", patch, w[:, :, :, o])
    return out


@pytest.mark.parametrize("groups,filters", [(2, 4), (3, 6), (6, 6), (6, 12)])
def test_grouped_conv2d_layer_matches_the_loop(groups, filters):
    x = rng.standard_normal((2, 5, 6, 6))
    layer = layers.Conv2D(filters, (2, 3), groups=groups, strides=1, dtype="float64")
    y = layer(x)
    kernel, bias = layer.get_weights()
    assert kernel.shape == (2, 3, 6 // groups, filters)
    np.testing.assert_allclose(np.asarray(y), _conv2d_reference(x, kernel, groups) + bias, rtol=1e-10, atol=1e-12)
    check_layer_gradients(layer, x)
    assert layer.get_config()["groups"] == groups


def test_grouped_conv1d_and_conv3d():
    x = rng.standard_normal((2, 7, 4))
    layer = layers.Conv1D(6, 3, groups=2, dtype="float64", activation="relu")
    kernel, bias = (layer(x), layer.get_weights())[1]
    want = np.maximum(_conv2d_reference(x[:, None], kernel[None], 2)[:, 0] + bias, 0)
    np.testing.assert_allclose(np.asarray(layer(x)), want, rtol=1e-10, atol=1e-12)
    check_layer_gradients(layers.Conv1D(4, 2, groups=2, dtype="float64"), x)
    vol = rng.standard_normal((1, 3, 4, 4, 4))
    conv3 = layers.Conv3D(2, 2, groups=2, dtype="float64")
    out = np.asarray(conv3(vol))
    kernel, bias = conv3.get_weights()
    assert kernel.shape == (2, 2, 2, 2, 2)
    want = np.zeros(out.shape)
    for d in range(out.shape[1]):
        for a in range(2):
            want[:, d] += _conv2d_reference(vol[:, d + a], kernel[a], 2)
    np.testing.assert_allclose(out, want + bias, rtol=1e-10, atol=1e-12)


def test_ops_conv_infers_groups_from_the_kernel():
    x = rng.standard_normal((2, 4, 4, 4))
    w = rng.standard_normal((2, 2, 2, 6))
    np.testing.assert_allclose(np.asarray(ops.conv(x, w)), _conv2d_reference(x, w, 2), rtol=1e-10)
    check_gradients(lambda a, b: ops.conv(a, b), [x, w])
    with pytest.raises(ValueError, match="groups"):
        ops.conv(x, rng.standard_normal((2, 2, 3, 6)))


def test_groups_are_checked():
    with pytest.raises(ValueError, match="multiple of groups"):
        layers.Conv2D(5, 2, groups=2)
    with pytest.raises(ValueError, match="multiple of groups"):
        layers.Conv2D(4, 2, groups=4)(np.zeros((1, 4, 4, 6), "float32"))
    with pytest.raises(TypeError, match="groups"):
        layers.DepthwiseConv2D(2, groups=2)


@pytest.mark.parametrize("make", [lambda: layers.Conv2D(3, 2, strides=2, padding="same"),
                                  lambda: layers.DepthwiseConv2D(2, depth_multiplier=2),
                                  lambda: layers.SeparableConv2D(3, 2),
                                  lambda: layers.Conv2DTranspose(2, 3, strides=2)])
def test_channels_first_convolutions_transpose_around_the_kernels(make):
    x = rng.standard_normal((2, 3, 5, 4))         # (batch, channels, rows, cols)
    first = make().__class__.from_config({**make().get_config(), "data_format": "channels_first", "dtype": "float64"})
    last = make().__class__.from_config({**make().get_config(), "dtype": "float64"})
    y_first = first(x)
    last(x.transpose(0, 2, 3, 1))
    last.set_weights(first.get_weights())
    want = np.asarray(last(x.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(np.asarray(y_first), want, rtol=1e-12)
    assert first.compute_output_shape((None,) + x.shape[1:]) == (None,) + want.shape[1:]
    check_layer_gradients(first, x)


def test_channels_first_conv2d_against_the_loop():
    x = rng.standard_normal((2, 4, 5, 5))
    layer = layers.Conv2D(6, 2, groups=2, data_format="channels_first", dtype="float64")
    y = np.asarray(layer(x))
    kernel, bias = layer.get_weights()
    want = (_conv2d_reference(x.transpose(0, 2, 3, 1), kernel, 2) + bias).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(y, want, rtol=1e-10, atol=1e-12)
