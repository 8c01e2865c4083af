"""Volumetric layers and the 1-D depthwise / separable convolutions: outputs against direct
numpy loops written here (TensorFlow's "same" placement), gradients, configs."""
import numpy as np
import pytest

from engine import layers
from engine.testing import check_layer_gradients

rng = np.random.default_rng(5)


def same_pads(n, k, s, d=1):
    k = (k - 1) * d + 1
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def padded(x, kernel, strides, dilations, padding, fill=0.0):
    pads = [(0, 0)]
    for n, k, s, d in zip(x.shape[1:-1], kernel, strides, dilations):
        pads.append(same_pads(n, k, s, d) if padding == "same" else (0, 0))
    return np.pad(x, pads + [(0, 0)], constant_values=fill), pads[1:]


def conv3d_reference(x, w, strides, dilations, padding):
    xp, _ = padded(x, w.shape[:3], strides, dilations, padding)
    k = [(a - 1) * d + 1 for a, d in zip(w.shape[:3], dilations)]
    out = [(n - kk) // s + 1 for n, kk, s in zip(xp.shape[1:4], k, strides)]
    y = np.zeros((x.shape[0], *out, w.shape[-1]))
    for i in range(out[0]):
        for j in range(out[1]):
            for l in range(out[2]):
                for a in range(w.shape[0]):
                    for b in range(w.shape[1]):
                        for c in range(w.shape[2]):
                            v = xp[:, i * strides[0] + a * dilations[0], j * strides[1] + b * dilations[1],
                                   l * strides[2] + c * dilations[2]]
                            y[:, i, j, l] += v @ w[a, b, c]
    return y


@pytest.mark.parametrize("kwargs", [{}, {"strides": 2, "padding": "same"}, {"dilation_rate": (2, 1, 1)},
                                    {"strides": (2, 1, 2), "kernel_size": (2, 3, 1)},
                                    {"padding": "same", "kernel_size": 2}])
def test_conv3d_against_direct_loop(kwargs):
    kwargs = dict(kwargs)
    kernel_size = kwargs.pop("kernel_size", 3)
    layer = layers.Conv3D(2, kernel_size, activation="tanh", dtype="float64", **kwargs)
    x = rng.standard_normal((2, 5, 6, 4, 3))
    y = layer(x)
    w, b = layer.get_weights()
    ks = (kernel_size,) * 3 if isinstance(kernel_size, int) else kernel_size
    assert w.shape == ks + (3, 2)
    s = kwargs.get("strides", 1)
    d = kwargs.get("dilation_rate", 1)
    s = (s,) * 3 if isinstance(s, int) else s
    d = (d,) * 3 if isinstance(d, int) else d
    expected = np.tanh(conv3d_reference(x, w, s, d, kwargs.get("padding", "valid")) + b)
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-10, atol=1e-12)
    assert layer.compute_output_shape((None,) + x.shape[1:]) == (None,) + expected.shape[1:]
    check_layer_gradients(layers.Conv3D(2, 2, strides=(1, 2, 1), dtype="float64"), rng.standard_normal((1, 3, 4, 3, 2)))


def pool3d_reference(x, kind, size, strides, padding):
    fill = -np.inf if kind == "max" else np.nan
    xp, _ = padded(x, size, strides, (1, 1, 1), padding, fill)
    out = [(n - k) // s + 1 for n, k, s in zip(xp.shape[1:4], size, strides)]
    y = np.zeros((x.shape[0], *out, x.shape[-1]))
    for i in range(out[0]):
        for j in range(out[1]):
            for l in range(out[2]):
                win = xp[:, i * strides[0]:i * strides[0] + size[0], j * strides[1]:j * strides[1] + size[1],
                         l * strides[2]:l * strides[2] + size[2]]
                y[:, i, j, l] = win.max((1, 2, 3)) if kind == "max" else np.nanmean(win, (1, 2, 3))
    return y


@pytest.mark.parametrize("cls,kind", [(layers.MaxPooling3D, "max"), (layers.AveragePooling3D, "avg")])
@pytest.mark.parametrize("size,strides,padding", [((2, 2, 2), None, "valid"), ((3, 2, 2), (2, 2, 1), "same"),
                                                  ((2, 3, 1), (1, 1, 1), "same")])
def test_pooling3d_against_direct_loop(cls, kind, size, strides, padding):
    x = rng.standard_normal((2, 5, 4, 3, 2))
    layer = cls(size, strides, padding, dtype="float64")
    y = layer(x)
    expected = pool3d_reference(x, kind, size, strides or size, padding)
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-10, atol=1e-12)
    assert layer.compute_output_shape((None,) + x.shape[1:]) == (None,) + expected.shape[1:]
    check_layer_gradients(layer, x)


def test_global_pooling_padding_upsampling_cropping_3d():
    x = rng.standard_normal((2, 3, 4, 5, 2))
    np.testing.assert_allclose(np.asarray(layers.GlobalMaxPooling3D(dtype="float64")(x)), x.max((1, 2, 3)))
    np.testing.assert_allclose(np.asarray(layers.GlobalAveragePooling3D(keepdims=True, dtype="float64")(x)),
                               x.mean((1, 2, 3), keepdims=True))
    pad = layers.ZeroPadding3D(((1, 0), (0, 2), (1, 1)), dtype="float64")
    np.testing.assert_array_equal(np.asarray(pad(x)), np.pad(x, ((0, 0), (1, 0), (0, 2), (1, 1), (0, 0))))
    up = layers.UpSampling3D((2, 1, 3), dtype="float64")
    np.testing.assert_array_equal(np.asarray(up(x)), x.repeat(2, 1).repeat(3, 3))
    crop = layers.Cropping3D(((1, 1), (0, 1), (2, 0)), dtype="float64")
    np.testing.assert_array_equal(np.asarray(crop(x)), x[:, 1:2, 0:3, 2:])
    for layer in (pad, up, crop):
        check_layer_gradients(layer, x)
        assert type(layer).from_config(layer.get_config()).get_config() == layer.get_config()
    assert "interpolation" not in up.get_config()


def test_depthwise_conv1d_and_separable_conv1d():
    x = rng.standard_normal((2, 7, 3))
    dw = layers.DepthwiseConv1D(3, depth_multiplier=2, padding="same", dtype="float64")
    y = dw(x)
    k, b = dw.get_weights()
    assert k.shape == (3, 3, 2)
    xp = np.pad(x, ((0, 0), (1, 1), (0, 0)))
    expected = np.stack([sum(xp[:, t + a, :, None] * k[a] for a in range(3)) for t in range(7)], 1).reshape(2, 7, 6)
    np.testing.assert_allclose(np.asarray(y), expected + b, rtol=1e-10)
    check_layer_gradients(dw, x)
    sep = layers.SeparableConv1D(4, 2, strides=2, dtype="float64")
    y = sep(x)
    d, p, b = sep.get_weights()
    assert (d.shape, p.shape, b.shape) == ((2, 3, 1), (1, 3, 4), (4,))
    depth = np.stack([x[:, 2 * t] * d[0, :, 0] + x[:, 2 * t + 1] * d[1, :, 0] for t in range(3)], 1)
    np.testing.assert_allclose(np.asarray(y), depth @ p[0] + b, rtol=1e-10)
    check_layer_gradients(sep, x)
    assert layers.SeparableConv1D.from_config(sep.get_config()).get_config() == sep.get_config()
