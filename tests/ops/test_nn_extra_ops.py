"""The rest of ops.nn: normalization, attention, patches, CTC, transposed and separable
convolutions, multi_hot and data_format; references written out here, gradients checked."""
import itertools
import math

import numpy as np
import pytest

from engine import ops
from engine.ops import nn
from engine.testing import check_gradients

rng = np.random.default_rng(0)
X = rng.standard_normal((3, 4, 5))


def test_moments_and_normalizations():
    mean, var = (np.asarray(t) for t in ops.moments(X, axes=[0, 2]))
    for j in range(4):
        vals = X[:, j, :].reshape(-1)
        mu = sum(vals) / len(vals)
        assert abs(mean[j] - mu) < 1e-12 and abs(var[j] - sum((v - mu) ** 2 for v in vals) / len(vals)) < 1e-12
    assert ops.moments(X, axes=1, keepdims=True)[0].shape == (3, 1, 5)
    assert ops.moments(np.array([1, 2, 3], "int32"), axes=0)[1].dtype == np.float32
    check_gradients(lambda a: ops.moments(a, axes=[0, 2])[1], [X])
    m_, v_, o_, s_ = X[0, 0, :4], rng.uniform(0.5, 2, 4), rng.standard_normal(4), rng.standard_normal(4)
    out = np.asarray(ops.batch_normalization(X, m_, v_, axis=1, offset=o_, scale=s_, epsilon=0.01))
    ref = np.array([[[(X[i, j, k] - m_[j]) / math.sqrt(v_[j] + 0.01) * s_[j] + o_[j] for k in range(5)]
                     for j in range(4)] for i in range(3)])
    np.testing.assert_allclose(out, ref)
    check_gradients(lambda a, mm, vv, oo, ss: ops.batch_normalization(a, mm, vv, 1, oo, ss), [X, m_, v_, o_, s_])
    g, b = rng.standard_normal(5), rng.standard_normal(5)
    out = np.asarray(ops.layer_normalization(X, g, b, epsilon=1e-3))
    for i, j in itertools.product(range(3), range(4)):
        row = X[i, j]
        mu, var_ = row.mean(), ((row - row.mean()) ** 2).mean()
        np.testing.assert_allclose(out[i, j], (row - mu) / math.sqrt(var_ + 1e-3) * g + b)
    check_gradients(lambda a, gg, bb: ops.layer_normalization(a, gg, bb), [X, g, b])
    check_gradients(lambda a: ops.layer_normalization(a, axis=(1, 2)), [X])
    out = np.asarray(ops.rms_normalization(X, g, epsilon=1e-3))
    np.testing.assert_allclose(out[1, 2], X[1, 2] / math.sqrt((X[1, 2] ** 2).mean() + 1e-3) * g)
    check_gradients(lambda a, gg: ops.rms_normalization(a, gg), [X, g])
    for order in (1, 2, 3):
        out = np.asarray(ops.normalize(X, axis=1, order=order))
        norms = np.array([[sum(abs(X[i, j, k]) ** order for j in range(4)) ** (1 / order) for k in range(5)] for i in range(3)])
        np.testing.assert_allclose(out, X / norms[:, None, :])
        check_gradients(lambda a: ops.normalize(a, axis=1, order=order), [X])
    with pytest.raises(ValueError, match="order"):
        ops.normalize(X, order=0)
    y = X + 0.1
    np.testing.assert_allclose(float(ops.psnr(X, y, 2.0)), 20 * math.log10(2.0) - 10 * math.log10(0.01))
    check_gradients(lambda a, c: ops.psnr(a, c, 2.0), [X, rng.standard_normal(X.shape)])


def attention_ref(q, k, v, mask=None, causal=False, scale=None, bias=None):
    b_, t_, n_, h_ = q.shape
    s_ = k.shape[1]
    scale = 1 / math.sqrt(h_) if scale is None else scale
    out = np.zeros_like(q)
    for b in range(b_):
        for n in range(n_):
            kv = n // (n_ // k.shape[2])
            for t in range(t_):
                logits = []
                for s in range(s_):
                    val = sum(q[b, t, n, d] * k[b, s, kv, d] for d in range(h_)) * scale
                    if bias is not None:
                        val += bias[t, s]
                    keep = (mask is None or mask[b, n, t, s]) and (not causal or s <= t)
                    logits.append(val if keep else -0.7 * 3.4028235e38)
                top = max(logits)
                w = [math.exp(val - top) for val in logits]
                w = [a / sum(w) for a in w]
                out[b, t, n] = sum(w[s] * v[b, s, kv] for s in range(s_))
    return out


def test_dot_product_attention():
    q, k, v = rng.standard_normal((2, 3, 4, 2)), rng.standard_normal((2, 5, 2, 2)), rng.standard_normal((2, 5, 2, 2))
    mask = rng.random((2, 4, 3, 5)) > 0.3
    bias = rng.standard_normal((3, 5))
    np.testing.assert_allclose(np.asarray(ops.dot_product_attention(q, k, v)), attention_ref(q, k, v), atol=1e-12)
    np.testing.assert_allclose(np.asarray(ops.dot_product_attention(q, k, v, mask=mask, is_causal=True, scale=0.3)),
                               attention_ref(q, k, v, mask=mask, causal=True, scale=0.3), atol=1e-12)
    np.testing.assert_allclose(np.asarray(ops.dot_product_attention(q, k, v, bias=bias)),
                               attention_ref(q, k, v, bias=bias), atol=1e-12)
    check_gradients(lambda a, b, c: ops.dot_product_attention(a, b, c, mask=mask, is_causal=True), [q, k, v])
    capped = np.asarray(ops.dot_product_attention(q, k, v, attn_logits_soft_cap=0.5))
    assert capped.shape == q.shape and not np.allclose(capped, attention_ref(q, k, v))
    with pytest.raises(ValueError, match="flash"):
        ops.dot_product_attention(q, k, v, flash_attention=True)
    with pytest.raises(ValueError, match="4-D"):
        ops.dot_product_attention(q[0], k[0], v[0])


def test_unfold_fold_and_blocks():
    x = rng.standard_normal((2, 3, 5, 6))
    cols = np.asarray(ops.unfold(x, (2, 3), dilation=(1, 2), padding=1, stride=(2, 1)))
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    nh, nw = (7 - 2) // 2 + 1, (8 - 5) // 1 + 1
    assert cols.shape == (2, 3 * 2 * 3, nh * nw)
    for n, c, i, j, oh, ow in itertools.product(range(2), range(3), range(2), range(3), range(nh), range(nw)):
        assert cols[n, (c * 2 + i) * 3 + j, oh * nw + ow] == padded[n, c, oh * 2 + i, ow + 2 * j]
    check_gradients(lambda a: ops.unfold(a, 2, stride=2), [x])
    folded = np.asarray(ops.fold(cols, (5, 6), (2, 3), dilation=(1, 2), padding=1, stride=(2, 1)))
    ref = np.zeros_like(padded)
    for n, c, i, j, oh, ow in itertools.product(range(2), range(3), range(2), range(3), range(nh), range(nw)):
        ref[n, c, oh * 2 + i, ow + 2 * j] += cols[n, (c * 2 + i) * 3 + j, oh * nw + ow]
    np.testing.assert_allclose(folded, ref[:, :, 1:-1, 1:-1])
    check_gradients(lambda a: ops.fold(a, (4, 4), 2, stride=2), [rng.standard_normal((1, 12, 4))])
    y = rng.standard_normal((2, 2, 3, 8))
    d2s = np.asarray(ops.depth_to_space(y, 2))
    assert d2s.shape == (2, 4, 6, 2)
    assert all(d2s[n, h * 2 + a, w * 2 + b, c] == y[n, h, w, (a * 2 + b) * 2 + c]
               for n, h, w, a, b, c in itertools.product(range(2), range(2), range(3), range(2), range(2), range(2)))
    np.testing.assert_array_equal(np.asarray(ops.space_to_depth(d2s, 2)), y)
    yc = np.transpose(y, (0, 3, 1, 2))
    np.testing.assert_array_equal(np.asarray(ops.space_to_depth(ops.depth_to_space(yc, 2, "channels_first"), 2,
                                                                "channels_first")), yc)
    check_gradients(lambda a: ops.depth_to_space(a, 2), [y])
    s = rng.standard_normal((2, 9))
    frames = np.asarray(ops.extract_sequences(s, 4, 2))
    assert frames.shape == (2, 3, 4) and all(frames[b, f, i] == s[b, 2 * f + i] for b in range(2) for f in range(3) for i in range(4))
    check_gradients(lambda a: ops.extract_sequences(a, 4, 2), [s])
    with pytest.raises(ValueError, match="block_size"):
        ops.depth_to_space(y, 3)


def test_adaptive_pools():
    x = rng.standard_normal((2, 5, 7, 3))
    out = np.asarray(ops.adaptive_average_pool(x, (2, 3)))
    for i, j in itertools.product(range(2), range(3)):
        r0, r1 = (i * 5) // 2, -(-(i + 1) * 5 // 2)
        c0, c1 = (j * 7) // 3, -(-(j + 1) * 7 // 3)
        np.testing.assert_allclose(out[:, i, j], x[:, r0:r1, c0:c1].mean(axis=(1, 2)))
    out = np.asarray(ops.adaptive_max_pool(x, 2))
    np.testing.assert_allclose(out[:, 1, 1], x[:, 2:5, 3:7].max(axis=(1, 2)))
    check_gradients(lambda a: ops.adaptive_average_pool(a, (2, 3)), [x])
    check_gradients(lambda a: ops.adaptive_max_pool(a, 3), [rng.standard_normal((1, 7, 2))])
    first = np.transpose(x, (0, 3, 1, 2))
    np.testing.assert_allclose(np.asarray(ops.adaptive_average_pool(first, (2, 3), data_format="channels_first")),
                               np.transpose(np.asarray(ops.adaptive_average_pool(x, (2, 3))), (0, 3, 1, 2)))


def ctc_brute_force(logits, label, steps, blank):
    """-log of the summed probability of every alignment that collapses to `label`."""
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    p = p / p.sum(axis=-1, keepdims=True)
    total = 0.0
    for path in itertools.product(range(logits.shape[-1]), repeat=steps):
        collapsed = [c for i, c in enumerate(path) if c != blank and (i == 0 or path[i - 1] != c)]
        if collapsed == list(label):
            total += math.prod(p[t, c] for t, c in enumerate(path))
    return -math.log(total)


@pytest.mark.parametrize("blank", [0, 2])
def test_ctc_loss_against_all_alignments(blank):
    logits = rng.standard_normal((3, 5, 3))
    labels = np.array([[1, 1, 0], [2, 0, 0], [1, 2, 1]]) if blank == 0 else np.array([[1, 1, 0], [0, 0, 0], [1, 0, 1]])
    label_len = np.array([2, 1, 3])
    steps = np.array([5, 4, 5])
    loss = np.asarray(ops.ctc_loss(labels, logits, label_len, steps, mask_index=blank))
    for b in range(3):
        ref = ctc_brute_force(logits[b, :steps[b]], labels[b, :label_len[b]], steps[b], blank)
        assert abs(loss[b] - ref) < 1e-10
    check_gradients(lambda z: ops.ctc_loss(labels, z, label_len, steps, mask_index=blank), [logits])


def test_ctc_decode():
    probs = np.full((1, 6, 3), 0.05)
    for t, c in enumerate([1, 1, 0, 1, 2, 2]):
        probs[0, t, c] = 0.9
    logits = np.log(probs)
    decoded, scores = ops.ctc_decode(logits, np.array([6]))
    assert decoded.shape == (1, 1, 6)
    np.testing.assert_array_equal(np.asarray(decoded)[0, 0], [1, 1, 2, -1, -1, -1])
    np.testing.assert_allclose(np.asarray(scores), [[-np.log(probs[0].max(axis=-1)).sum()]])
    decoded, _ = ops.ctc_decode(logits, np.array([6]), merge_repeated=False)
    np.testing.assert_array_equal(np.asarray(decoded)[0, 0], [1, 1, 1, 2, 2, -1])
    decoded, scores = ops.ctc_decode(logits, np.array([6]), strategy="beam_search", beam_width=100, top_paths=2)
    assert decoded.shape == (2, 1, 6)
    np.testing.assert_array_equal(np.asarray(decoded)[0, 0, :3], [1, 1, 2])
    best = -ctc_brute_force(logits[0], [1, 1, 2], 6, 0)
    np.testing.assert_allclose(np.asarray(scores)[0, 0], best, rtol=1e-10)
    assert np.asarray(scores)[0, 0] >= np.asarray(scores)[0, 1]
    with pytest.raises(ValueError, match="strategy"):
        ops.ctc_decode(logits, np.array([6]), strategy="exhaustive")


def conv_transpose_ref(x, w, stride):
    """Every input pixel scatters its kernel-weighted copy into the output (the definition of a
    transposed convolution), then Keras's cropping / extension to the output size."""
    n, h, wd, c = x.shape
    kh, kw, f, _ = w.shape
    full = np.zeros((n, (h - 1) * stride + kh, (wd - 1) * stride + kw, f))
    for b, i, j in itertools.product(range(n), range(h), range(wd)):
        full[b, i * stride:i * stride + kh, j * stride:j * stride + kw] += np.einsum("pqfc,c->pqf", w, x[b, i, j])
    return full


def test_conv_transpose_and_separable_conv():
    x = rng.standard_normal((2, 3, 4, 2))
    w = rng.standard_normal((3, 3, 5, 2))
    full = conv_transpose_ref(x, w, 2)
    valid = np.asarray(ops.conv_transpose(x, w, strides=2, padding="valid"))
    assert valid.shape == (2, 7, 9, 5)          # (n - 1) * s + max(k, s)
    np.testing.assert_allclose(valid, full, atol=1e-12)
    same = np.asarray(ops.conv_transpose(x, w, strides=2, padding="same"))
    # n * s; Keras pads the dilated input by min(ceil((s + k - 2) / 2), k - 1) before, so with k = 3,
    # s = 2 the output starts where the full scatter does.
    assert same.shape == (2, 6, 8, 5)
    np.testing.assert_allclose(same, full[:, 0:6, 0:8], atol=1e-12)
    same1 = np.asarray(ops.conv_transpose(x, w, strides=1, padding="same"))     # k - 1 - 1 = 1 cell cropped
    np.testing.assert_allclose(same1, conv_transpose_ref(x, w, 1)[:, 1:4, 1:5], atol=1e-12)
    check_gradients(lambda a, b: ops.conv_transpose(a, b, strides=2, padding="same"), [x[:1], w])
    x1 = rng.standard_normal((1, 4, 2))
    w1 = rng.standard_normal((3, 3, 2))
    np.testing.assert_allclose(np.asarray(ops.conv_transpose(x1, w1, strides=1))[0],
                               conv_transpose_ref(x1[:, None], w1[None], 1)[0, 0], atol=1e-12)
    dw, pw = rng.standard_normal((3, 3, 2, 2)), rng.standard_normal((1, 1, 4, 3))
    img = rng.standard_normal((1, 5, 5, 2))
    sep = np.asarray(ops.separable_conv(img, dw, pw, padding="same"))
    depth = np.asarray(ops.depthwise_conv(img, dw, padding="same"))
    np.testing.assert_allclose(sep, np.einsum("nhwc,cf->nhwf", depth, pw[0, 0]), atol=1e-12)
    check_gradients(lambda a, b, c: ops.separable_conv(a, b, c, padding="same"), [img, dw, pw])
    chw = np.transpose(img, (0, 3, 1, 2))
    np.testing.assert_allclose(np.asarray(ops.conv(chw, dw[..., :1].repeat(3, -1), data_format="channels_first")),
                               np.transpose(np.asarray(ops.conv(img, dw[..., :1].repeat(3, -1))), (0, 3, 1, 2)),
                               atol=1e-12)
    np.testing.assert_allclose(np.asarray(ops.max_pool(chw, 2, data_format="channels_first")),
                               np.transpose(np.asarray(ops.max_pool(img, 2)), (0, 3, 1, 2)))
    with pytest.raises(ValueError, match="data_format"):
        ops.conv(img, dw, data_format="nhwc")
    with pytest.raises(ValueError, match="spatial"):
        ops.conv(rng.standard_normal((1, 2, 2, 2, 1)), rng.standard_normal((1, 1, 1, 1, 1)))


def test_multi_hot_and_one_hot():
    np.testing.assert_array_equal(np.asarray(ops.multi_hot(np.array([[0, 2], [1, 1]]), 4)), [[1, 0, 1, 0], [0, 1, 0, 0]])
    np.testing.assert_array_equal(np.asarray(ops.multi_hot(np.array([0, 3]), num_classes=4)), [1, 0, 0, 1])
    np.testing.assert_array_equal(np.asarray(nn.multi_hot(np.array([1]), num_tokens=2)), [0, 1])
    assert ops.one_hot(np.array([1]), 3).dtype == np.float32
    with pytest.raises(ValueError, match="sparse"):
        ops.one_hot(np.array([1]), 3, sparse=True)
    with pytest.raises(ValueError, match="num_classes"):
        ops.multi_hot(np.array([1]))
