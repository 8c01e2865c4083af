"""Convolution, pooling, batch-norm and reshaping layers: outputs against float64 numpy references
written here (explicit loops over padded inputs), gradients against finite differences."""
import numpy as np
import pytest

from engine import layers, Input, Model
from engine.ops.convolution import same_padding
from engine.testing import check_layer_gradients

rng = np.random.default_rng(5)


def ref_conv2d(x, w, strides, dilation, padding, depthwise=False):
    n, h, wd, c = x.shape
    kh, kw = w.shape[:2]
    sh, sw = strides
    dh, dw = dilation
    if padding == "same":
        (pt, pb), (pl, pr) = same_padding(h, kh, sh, dh), same_padding(wd, kw, sw, dw)
    else:
        pt = pb = pl = pr = 0
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    ho = (h + pt + pb - (kh - 1) * dh - 1) // sh + 1
    wo = (wd + pl + pr - (kw - 1) * dw - 1) // sw + 1
    out_c = c * w.shape[3] if depthwise else w.shape[3]
    out = np.zeros((n, ho, wo, out_c))
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, i * sh:i * sh + (kh - 1) * dh + 1:dh, j * sw:j * sw + (kw - 1) * dw + 1:dw, :]
            if depthwise:
                out[:, i, j, :] = np.einsum("nabc,abcm->ncm", patch, w).reshape(n, -1)
            else:
                out[:, i, j, :] = np.einsum("nabc,abcf->nf", patch, w)
    return out


CASES = [
    dict(kernel=(3, 3), strides=(1, 1), dilation=(1, 1), padding="valid"),
    dict(kernel=(3, 3), strides=(2, 2), dilation=(1, 1), padding="same"),
    dict(kernel=(2, 3), strides=(3, 1), dilation=(1, 1), padding="same"),
    dict(kernel=(3, 2), strides=(1, 1), dilation=(2, 2), padding="same"),
    dict(kernel=(1, 1), strides=(1, 1), dilation=(1, 1), padding="valid"),
    dict(kernel=(1, 1), strides=(2, 2), dilation=(1, 1), padding="same"),
    dict(kernel=(4, 4), strides=(2, 2), dilation=(1, 1), padding="same"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['kernel']}s{c['strides']}d{c['dilation']}{c['padding']}")
def test_conv2d_matches_reference_and_gradients(case):
    x = rng.standard_normal((2, 7, 6, 3))
    layer = layers.Conv2D(4, case["kernel"], strides=case["strides"], dilation_rate=case["dilation"],
                          padding=case["padding"], dtype="float64")
    y = layer(x)
    w, b = layer.get_weights()
    np.testing.assert_allclose(y, ref_conv2d(x, w, case["strides"], case["dilation"], case["padding"]) + b,
                               atol=1e-10)
    assert layer.compute_output_shape((None, 7, 6, 3)) == (None,) + y.shape[1:]
    check_layer_gradients(layer, x[:1, :5, :5], atol=1e-6)


@pytest.mark.parametrize("case", CASES[:4], ids=lambda c: f"{c['kernel']}s{c['strides']}{c['padding']}")
@pytest.mark.parametrize("multiplier", [1, 2])
def test_depthwise_conv2d(case, multiplier):
    x = rng.standard_normal((2, 7, 6, 3))
    layer = layers.DepthwiseConv2D(case["kernel"], strides=case["strides"], dilation_rate=case["dilation"],
                                   padding=case["padding"], depth_multiplier=multiplier, dtype="float64")
    y = layer(x)
    w, b = layer.get_weights()
    assert w.shape == case["kernel"] + (3, multiplier)
    np.testing.assert_allclose(y, ref_conv2d(x, w, case["strides"], case["dilation"], case["padding"], True) + b,
                               atol=1e-10)
    check_layer_gradients(layer, x[:1, :5, :5], atol=1e-6)


def test_separable_conv2d_is_depthwise_then_pointwise():
    x = rng.standard_normal((2, 6, 6, 3))
    layer = layers.SeparableConv2D(5, 3, padding="same", depth_multiplier=2, dtype="float64")
    y = layer(x)
    dw, pw, b = layer.get_weights()
    assert dw.shape == (3, 3, 3, 2) and pw.shape == (1, 1, 6, 5) and b.shape == (5,)
    depth = ref_conv2d(x, dw, (1, 1), (1, 1), "same", True)
    np.testing.assert_allclose(y, depth @ pw[0, 0] + b, atol=1e-10)
    check_layer_gradients(layer, x[:1, :4, :4], atol=1e-6)


@pytest.mark.parametrize("padding", ["valid", "same", "causal"])
@pytest.mark.parametrize("strides,dilation", [(1, 1), (2, 1), (1, 2)])
def test_conv1d(padding, strides, dilation):
    x = rng.standard_normal((2, 9, 3))
    layer = layers.Conv1D(4, 3, strides=strides, dilation_rate=dilation, padding=padding, dtype="float64")
    y = layer(x)
    w, b = layer.get_weights()
    assert w.shape == (3, 3, 4)
    if padding == "causal":
        xp = np.pad(x, ((0, 0), (2 * dilation, 0), (0, 0)))
        expected = ref_conv2d(xp[:, None], w[None], (1, strides), (1, dilation), "valid")[:, 0]
    else:
        expected = ref_conv2d(x[:, None], w[None], (1, strides), (1, dilation), padding)[:, 0]
    np.testing.assert_allclose(y, expected + b, atol=1e-10)
    assert layer.compute_output_shape((None, 9, 3)) == (None,) + y.shape[1:]
    check_layer_gradients(layer, x[:1], atol=1e-6)


def ref_pool(x, pool, strides, padding, kind):
    n, h, w, c = x.shape
    if padding == "same":
        (pt, pb), (pl, pr) = same_padding(h, pool[0], strides[0]), same_padding(w, pool[1], strides[1])
    else:
        pt = pb = pl = pr = 0
    ho = (h + pt + pb - pool[0]) // strides[0] + 1
    wo = (w + pl + pr - pool[1]) // strides[1] + 1
    out = np.zeros((n, ho, wo, c))
    for i in range(ho):
        for j in range(wo):
            r0, c0 = i * strides[0] - pt, j * strides[1] - pl
            win = x[:, max(r0, 0):r0 + pool[0], max(c0, 0):c0 + pool[1], :]
            out[:, i, j] = win.max(axis=(1, 2)) if kind == "max" else win.mean(axis=(1, 2))
    return out


@pytest.mark.parametrize("kind,cls", [("max", layers.MaxPooling2D), ("avg", layers.AveragePooling2D)])
@pytest.mark.parametrize("pool,strides,padding", [((2, 2), None, "valid"), ((3, 3), (2, 2), "same"),
                                                   ((3, 2), (1, 2), "same"), ((2, 3), (2, 1), "valid")])
def test_pooling_2d(kind, cls, pool, strides, padding):
    x = rng.permutation(2 * 7 * 6 * 3).reshape(2, 7, 6, 3).astype(np.float64) / 10  # distinct values
    layer = cls(pool, strides=strides, padding=padding, dtype="float64")
    y = layer(x)
    np.testing.assert_allclose(y, ref_pool(x, pool, strides or pool, padding, kind), atol=1e-12)
    assert layer.compute_output_shape((None, 7, 6, 3)) == (None,) + y.shape[1:]
    check_layer_gradients(layer, x, atol=1e-6)


def test_pooling_1d_and_global():
    x = rng.standard_normal((2, 11, 3))
    y = layers.MaxPooling1D(5)(x.astype(np.float32))
    np.testing.assert_allclose(y, x[:, :10].reshape(2, 2, 5, 3).max(2), rtol=1e-6)
    check_layer_gradients(layers.AveragePooling1D(3, strides=2, padding="same", dtype="float64"), x)
    np.testing.assert_allclose(layers.GlobalMaxPooling1D(dtype="float64")(x), x.max(1))
    np.testing.assert_allclose(layers.GlobalAveragePooling2D(dtype="float64")(x[:, :, None]), x.mean(1))
    check_layer_gradients(layers.GlobalMaxPooling1D(dtype="float64"), x)
    check_layer_gradients(layers.GlobalAveragePooling2D(dtype="float64"), x.reshape(2, 11, 1, 3))


def test_batch_normalization_training_and_inference():
    x = rng.standard_normal((16, 4, 3)) * 3 + 1
    bn = layers.BatchNormalization(dtype="float64")
    bn.build((None, 4, 3))
    assert [w.name for w in bn.weights] == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert [w.name for w in bn.non_trainable_weights] == ["moving_mean", "moving_variance"]
    bn.set_weights([np.array([1.0, 2.0, 0.5]), np.array([0.0, 1.0, -1.0]), np.zeros(3), np.ones(3)])
    y = bn(x, training=True)
    flat = x.reshape(-1, 3)
    xhat = (flat - flat.mean(0)) / np.sqrt(flat.var(0) + 1e-3)
    np.testing.assert_allclose(y.reshape(-1, 3), xhat * [1.0, 2.0, 0.5] + [0.0, 1.0, -1.0], atol=1e-10)
    np.testing.assert_allclose(bn.moving_mean.numpy(), 0.01 * flat.mean(0), atol=1e-12)
    np.testing.assert_allclose(bn.moving_variance.numpy(), 0.99 + 0.01 * flat.var(0), atol=1e-12)
    y_inf = bn(x)
    mm, mv = bn.moving_mean.numpy(), bn.moving_variance.numpy()
    np.testing.assert_allclose(y_inf.reshape(-1, 3), (flat - mm) / np.sqrt(mv + 1e-3) * [1, 2, 0.5] + [0, 1, -1],
                               atol=1e-10)
    check_layer_gradients(layers.BatchNormalization(dtype="float64"), x[:5], training=True, atol=1e-6)
    check_layer_gradients(layers.BatchNormalization(dtype="float64"), x[:5], training=False)


def test_padding_upsampling_cropping():
    x = rng.standard_normal((2, 3, 4, 2))
    y = layers.ZeroPadding2D(((1, 2), (0, 1)), dtype="float64")(x)
    np.testing.assert_array_equal(y, np.pad(x, ((0, 0), (1, 2), (0, 1), (0, 0))))
    y = layers.UpSampling2D(2, dtype="float64")(x)
    np.testing.assert_array_equal(y, x.repeat(2, 1).repeat(2, 2))
    y = layers.Cropping2D(((1, 0), (1, 1)), dtype="float64")(x)
    np.testing.assert_array_equal(y, x[:, 1:, 1:3])
    for layer in (layers.ZeroPadding2D(1, dtype="float64"), layers.UpSampling2D((2, 1), dtype="float64"),
                  layers.Cropping2D(1, dtype="float64"), layers.ZeroPadding1D(2, dtype="float64")):
        inp = x if layer.rank == 2 else x[:, :, :, 0]
        check_layer_gradients(layer, inp)


def test_conv_errors_name_the_layer_and_shapes():
    with pytest.raises(ValueError, match=r'"c1".*\(None, 4, 4, 3\)'):
        layers.Conv2D(2, 5, name="c1")(Input(shape=(4, 4, 3)))
    conv = layers.Conv2D(2, 3, name="c2")
    conv(Input(shape=(8, 8, 3)))
    with pytest.raises(ValueError, match=r'"c2".*3 input channels.*\(None, 8, 8, 4\)'):
        conv(Input(shape=(8, 8, 4)))
    with pytest.raises(ValueError, match="rank 4"):
        layers.Conv2D(2, 3)(Input(shape=(8, 3)))
