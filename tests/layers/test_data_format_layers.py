"""data_format="channels_first" on Flatten and the pooling, padding, upsampling and cropping
layers: outputs against float64 numpy references written on (batch, channels, spatial...)
arrays, output shapes, gradients and config round trips."""
import numpy as np
import pytest

from engine import layers
from engine.testing import check_layer_gradients

rng = np.random.default_rng(0)
SEQ = rng.standard_normal((2, 3, 7))            # (batch, channels, steps)
IMG = rng.standard_normal((2, 3, 5, 6))         # (batch, channels, rows, cols)
VOL = rng.standard_normal((2, 2, 4, 3, 5))      # (batch, channels, depth, rows, cols)


def _max_pool_2d_first(x, size, stride):
    """Valid max pooling of a (N, C, H, W) array, one window at a time."""
    n, c, h, w = x.shape
    out = np.empty((n, c, (h - size) // stride + 1, (w - size) // stride + 1))
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            out[:, :, i, j] = x[:, :, i * stride:i * stride + size, j * stride:j * stride + size].max(axis=(2, 3))
    return out


def _avg_pool_1d_first_same(x, size, stride):
    """'same' average pooling of (N, C, L), dividing by the real cells of each window."""
    steps = x.shape[2]
    out_len = -(-steps // stride)
    before = max((out_len - 1) * stride + size - steps, 0) // 2
    out = np.empty(x.shape[:2] + (out_len,))
    for t in range(out_len):
        lo, hi = max(t * stride - before, 0), min(t * stride - before + size, steps)
        out[:, :, t] = x[:, :, lo:hi].mean(axis=2)
    return out


CASES = [
    (layers.Flatten, {}, IMG, lambda x: x.transpose(0, 2, 3, 1).reshape(2, -1)),
    (layers.GlobalAveragePooling2D, {}, IMG, lambda x: x.mean(axis=(2, 3))),
    (layers.GlobalMaxPooling1D, {"keepdims": True}, SEQ, lambda x: x.max(axis=2, keepdims=True)),
    (layers.GlobalMaxPooling3D, {}, VOL, lambda x: x.max(axis=(2, 3, 4))),
    (layers.MaxPooling2D, {"pool_size": 2}, IMG, lambda x: _max_pool_2d_first(x, 2, 2)),
    (layers.AveragePooling1D, {"pool_size": 3, "strides": 2, "padding": "same"}, SEQ,
     lambda x: _avg_pool_1d_first_same(x, 3, 2)),
    (layers.ZeroPadding1D, {"padding": (2, 1)}, SEQ, lambda x: np.pad(x, ((0, 0), (0, 0), (2, 1)))),
    (layers.ZeroPadding2D, {"padding": ((1, 2), (0, 1))}, IMG, lambda x: np.pad(x, ((0, 0), (0, 0), (1, 2), (0, 1)))),
    (layers.ZeroPadding3D, {"padding": 1}, VOL, lambda x: np.pad(x, ((0, 0), (0, 0)) + ((1, 1),) * 3)),
    (layers.UpSampling2D, {"size": (2, 3)}, IMG, lambda x: x.repeat(2, axis=2).repeat(3, axis=3)),
    (layers.UpSampling3D, {"size": (1, 2, 2)}, VOL, lambda x: x.repeat(2, axis=3).repeat(2, axis=4)),
    (layers.Cropping2D, {"cropping": ((1, 0), (2, 1))}, IMG, lambda x: x[:, :, 1:, 2:-1]),
    (layers.Cropping3D, {"cropping": (1, 0, (1, 2))}, VOL, lambda x: x[:, :, 1:-1, :, 1:-2]),
]


@pytest.mark.parametrize("cls,kwargs,x,reference", CASES, ids=[c[0].__name__ + str(i) for i, c in enumerate(CASES)])
def test_channels_first_matches_reference(cls, kwargs, x, reference):
    layer = cls(data_format="channels_first", dtype="float64", **kwargs)
    got = np.asarray(layer(x))
    want = reference(x)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert layer.compute_output_shape((None,) + x.shape[1:]) == (None,) + want.shape[1:]
    config = layer.get_config()
    assert config["data_format"] == "channels_first"
    again = cls.from_config(config)
    np.testing.assert_allclose(np.asarray(again(x)), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls,kwargs,x", [(layers.MaxPooling2D, {"pool_size": 2}, IMG),
                                          (layers.AveragePooling1D, {"pool_size": 3, "strides": 2,
                                                                     "padding": "same"}, SEQ),
                                          (layers.ZeroPadding2D, {"padding": 1}, IMG),
                                          (layers.Cropping2D, {"cropping": 1}, IMG),
                                          (layers.UpSampling2D, {"size": 2}, IMG),
                                          (layers.Flatten, {}, IMG),
                                          (layers.GlobalAveragePooling2D, {"keepdims": True}, IMG)])
def test_channels_first_gradients(cls, kwargs, x):
    check_layer_gradients(cls(data_format="channels_first", dtype="float64", **kwargs), x)


def test_data_format_values_are_checked():
    for cls in (layers.Flatten, layers.GlobalMaxPooling2D, layers.ZeroPadding2D, layers.MaxPooling1D):
        with pytest.raises(ValueError, match="data_format"):
            cls(data_format="channels_middle")


def test_keras_signatures_of_the_one_dimensional_reshaping_layers():
    # Keras's UpSampling1D and Cropping1D have no data_format; Cropping2D crops nothing by default.
    with pytest.raises(TypeError):
        layers.UpSampling1D(data_format="channels_last")
    with pytest.raises(TypeError):
        layers.Cropping1D(data_format="channels_last")
    assert layers.Cropping2D()(IMG).shape == IMG.shape
    assert layers.UpSampling1D().get_config()["size"] == 2
    assert layers.ZeroPadding1D((2, 1)).get_config()["padding"] == (2, 1)
    with pytest.raises(ValueError, match="removes every cell"):
        layers.Cropping1D((4, 3))(SEQ)
