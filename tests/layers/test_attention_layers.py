"""Attention layers and the fused attention op: outputs against float64 numpy references written
here (every mask kind), gradients against finite differences, configs, weight layouts."""
import numpy as np
import pytest

import engine
from engine import layers, ops
from engine.ops.attention import dot_product_attention
from engine.testing import check_gradients, check_layer_gradients

rng = np.random.default_rng(0)


# -- references ---------------------------------------------------------------------------------
def softmax_rows(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def sdpa_reference(q, k, v, visible=None, scale=None):
    """(B, T, N, D) layout; visible broadcastable to (B, N, T, S); masked scores replaced by a
    large negative number (a row with nothing visible is uniform)."""
    scale = 1 / np.sqrt(q.shape[-1]) if scale is None else scale
    s = np.einsum("btnd,bsnd->bnts", q, k) * scale
    if visible is not None:
        s = np.where(np.broadcast_to(visible, s.shape), s, -1e30)
    return np.einsum("bnts,bsnd->btnd", softmax_rows(s), v)


def mha_reference(xq, xv, weights, heads, visible=None, xk=None):
    wq, bq, wk, bk, wv, bv, wo, bo = weights
    xk = xv if xk is None else xk
    q = np.einsum("btd,dnh->btnh", xq, wq) + bq
    k = np.einsum("bsd,dnh->bsnh", xk, wk) + bk
    v = np.einsum("bsd,dnh->bsnh", xv, wv) + bv
    vis = None if visible is None else np.asarray(visible)[:, None]
    o = sdpa_reference(q, k, v, vis, 1 / np.sqrt(wq.shape[-1]))
    return np.einsum("btnh,nho->bto", o, wo) + bo


def causal(T, S):
    return np.tril(np.ones((T, S), bool))


# -- the fused op ----------------------------------------------------------------------------------
SHAPES = [(2, 5, 7, 3, 4, 2), (2, 130, 300, 2, 8, 5), (1, 64, 128, 1, 3, 3), (3, 1, 1, 2, 2, 2)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", ["none", "causal", "mask", "mask+causal", "per-head"])
def test_fused_attention_matches_reference(shape, kind):
    b, T, S, n, d, dv = shape
    q, k, v = (rng.standard_normal(s) for s in ((b, T, n, d), (b, S, n, d), (b, S, n, dv)))
    mask = rng.random((b, 1, T, S)) > 0.3
    mask[0, 0, 0, :] = False                       # a query that sees nothing
    if kind == "per-head":
        mask = rng.random((b, n, T, S)) > 0.5
    use_mask = mask if "mask" in kind or kind == "per-head" else None
    is_causal = "causal" in kind
    visible = np.ones((1, 1, T, S), bool)
    if use_mask is not None:
        visible = visible & use_mask
    if is_causal:
        visible = visible & causal(T, S)
    expected = sdpa_reference(q, k, v, visible)
    got = dot_product_attention(q, k, v, mask=use_mask, is_causal=is_causal)
    assert isinstance(got, engine.Tensor) if hasattr(engine, "Tensor") else True
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-10, atol=1e-12)
    f32 = dot_product_attention(*(a.astype(np.float32) for a in (q, k, v)), mask=use_mask, is_causal=is_causal)
    assert f32.dtype == np.float32
    np.testing.assert_allclose(np.asarray(f32), expected, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("kind", ["none", "causal", "mask", "mask+causal"])
def test_fused_attention_gradients(kind):
    b, T, S, n, d, dv = 2, 5, 7, 2, 3, 2
    q, k, v = (rng.standard_normal(s) for s in ((b, T, n, d), (b, S, n, d), (b, S, n, dv)))
    mask = rng.random((b, 1, T, S)) > 0.3
    mask[1, 0, 2, :] = False
    use_mask = mask if "mask" in kind else None
    check_gradients(lambda q, k, v: dot_product_attention(q, k, v, mask=use_mask, is_causal="causal" in kind),
                    [q, k, v])


def test_fused_attention_gradients_across_several_tiles():
    # 140 queries x 260 keys: three query tiles and three key tiles, the last ones partial.
    q, k, v = (rng.standard_normal(s) for s in ((1, 140, 1, 2), (1, 260, 1, 2), (1, 260, 1, 2)))
    check_gradients(lambda q, k, v: dot_product_attention(q, k, v, is_causal=True), [q, k, v], rtol=1e-5,
                    atol=1e-6)


def test_dot_product_attention_bias_soft_cap_and_keras_input_rules():
    q, k, v = (rng.standard_normal(s) for s in ((2, 4, 1, 3), (2, 6, 1, 3), (2, 6, 1, 5)))
    bias = rng.standard_normal((2, 1, 4, 6))
    s = np.einsum("btd,bsd->bts", q[:, :, 0], k[:, :, 0]) / np.sqrt(3) + bias[:, 0]
    s = 2.0 * np.tanh(s / 2.0)
    expected = softmax_rows(s) @ v[:, :, 0]
    got = dot_product_attention(q, k, v, bias=bias, attn_logits_soft_cap=2.0)
    np.testing.assert_allclose(np.asarray(got)[:, :, 0], expected, rtol=1e-10)
    check_gradients(lambda q, k, v: dot_product_attention(q, k, v, bias=bias, attn_logits_soft_cap=2.0), [q, k, v])
    # As Keras: only 4-D inputs, and no cuDNN flash attention on a CPU.
    with pytest.raises(ValueError, match="4-D"):
        dot_product_attention(q[:, :, 0], k[:, :, 0], v[:, :, 0])
    with pytest.raises(ValueError, match="flash"):
        dot_product_attention(q, k, v, flash_attention=True)


def test_dot_product_attention_errors_name_the_shapes():
    q = np.zeros((2, 4, 1, 3))
    with pytest.raises(ValueError, match="shapes do not fit"):
        dot_product_attention(q, np.zeros((2, 5, 1, 4)), np.zeros((2, 5, 1, 3)))
    with pytest.raises(ValueError, match="does not broadcast"):
        dot_product_attention(q, q, q, mask=np.ones((3, 4, 4), bool))


def test_attention_kernel_rejects_bad_buffers():
    from engine._kernels import attention as K
    q = np.zeros((1, 4, 1, 2), np.float32)
    out, stats = np.zeros((1, 4, 1, 2), np.float32), np.zeros((1, 1, 4), np.float32)
    with pytest.raises(ValueError, match="C-contiguous"):
        K.sdpa_forward(q, q, q, None, False, 1.0, out, stats, stats[:, :, :3])
    with pytest.raises(ValueError, match="mask"):
        K.sdpa_forward(q, q, q, np.ones((1, 1, 4, 3), np.uint8), False, 1.0, out, stats, stats.copy())
    with pytest.raises(ValueError, match="float32"):
        K.sdpa_forward(q, q.astype(np.float64), q, None, False, 1.0, out, stats, stats.copy())


# -- MultiHeadAttention ---------------------------------------------------------------------------
def built_mha(**kwargs):
    layer = layers.MultiHeadAttention(2, 3, dtype="float64", **kwargs)
    xq, xv = rng.standard_normal((2, 5, 8)), rng.standard_normal((2, 7, 6))
    layer(xq, xv)
    # Non-zero biases, so a misplaced bias shows.
    layer.set_weights([w + rng.standard_normal(w.shape) * 0.1 for w in layer.get_weights()])
    return layer, xq, xv


def test_mha_weights_have_keras_shapes_and_order():
    layer, _, _ = built_mha()
    assert [w.shape for w in layer.weights] == [(8, 2, 3), (2, 3), (6, 2, 3), (2, 3), (6, 2, 3), (2, 3),
                                                (2, 3, 8), (8,)]
    assert [w.path for w in layer.weights][:2] == [f"{layer.name}/query/kernel", f"{layer.name}/query/bias"]
    assert [w.path.split("/")[-2] for w in layer.weights] == ["query", "query", "key", "key", "value", "value",
                                                              "attention_output", "attention_output"]
    assert layer.count_params() == 194
    no_bias = layers.MultiHeadAttention(4, 5, value_dim=3, use_bias=False, output_shape=(2, 6))
    no_bias(np.zeros((1, 3, 7), np.float32), np.zeros((1, 4, 7), np.float32))
    assert [w.shape for w in no_bias.weights] == [(7, 4, 5), (7, 4, 5), (7, 4, 3), (4, 3, 2, 6)]


@pytest.mark.parametrize("kind", ["none", "attention_mask", "causal", "query+value masks", "all"])
def test_mha_matches_reference_for_every_mask_kind(kind):
    layer, xq, xv = built_mha()
    B, T, S = 2, 5, 7
    visible = np.ones((B, T, S), bool)
    kwargs = {}
    if kind in ("attention_mask", "all"):
        am = rng.random((B, T, S)) > 0.4
        am[0, 1] = False
        kwargs["attention_mask"] = am
        visible &= am
    if kind in ("causal", "all"):
        kwargs["use_causal_mask"] = True
        visible &= causal(T, S)[None]
    if kind in ("query+value masks", "all"):
        qm = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
        vm = np.array([[1, 1, 1, 1, 0, 0, 0], [1, 0, 1, 1, 1, 1, 1]], bool)
        kwargs.update(query_mask=qm, value_mask=vm)
        visible &= qm[:, :, None] & vm[:, None, :]
    got = layer(xq, xv, **kwargs)
    np.testing.assert_allclose(np.asarray(got), mha_reference(xq, xv, layer.get_weights(), 2, visible),
                               rtol=1e-10, atol=1e-12)


def test_mha_masks_travel_on_tensors():
    layer, xq, xv = built_mha()
    q_in = layers.Masking(0.0, dtype="float64")(np.concatenate([xq[:, :3], np.zeros((2, 2, 8))], axis=1))
    v_in = layers.Masking(0.0, dtype="float64")(np.concatenate([xv[:, :4], np.zeros((2, 3, 6))], axis=1))
    got = layer(q_in, v_in)
    visible = np.zeros((2, 5, 7), bool)
    visible[:, :3, :4] = True
    expected = mha_reference(np.asarray(q_in), np.asarray(v_in), layer.get_weights(), 2, visible)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(np.asarray(got._keras_mask), [[1, 1, 1, 0, 0]] * 2)


def test_mha_separate_key_and_return_attention_scores():
    layer = layers.MultiHeadAttention(2, 3, dtype="float64")
    xq, xv, xk = rng.standard_normal((2, 5, 8)), rng.standard_normal((2, 7, 6)), rng.standard_normal((2, 7, 4))
    out, scores = layer(xq, xv, key=xk, return_attention_scores=True)
    assert [w.shape for w in layer.weights][2] == (4, 2, 3)
    np.testing.assert_allclose(np.asarray(out), mha_reference(xq, xv, layer.get_weights(), 2, xk=xk), rtol=1e-10)
    wq, bq, wk, bk = layer.get_weights()[:4]
    q = np.einsum("btd,dnh->btnh", xq, wq) + bq
    k = np.einsum("bsd,dnh->bsnh", xk, wk) + bk
    expected = softmax_rows(np.einsum("btnh,bsnh->bnts", q, k) / np.sqrt(3))
    assert scores.shape == (2, 2, 5, 7)
    np.testing.assert_allclose(np.asarray(scores), expected, rtol=1e-10)


def test_mha_scores_path_zeroes_fully_masked_rows_as_keras_softmax_does():
    layer, xq, xv = built_mha()
    am = np.ones((2, 5, 7), bool)
    am[0, 2] = False
    out, scores = layer(xq, xv, attention_mask=am, return_attention_scores=True)
    assert not np.asarray(scores)[0, :, 2].any()
    np.testing.assert_allclose(np.asarray(scores).sum(-1)[1], 1.0)


def test_mha_attention_over_two_axes():
    layer = layers.MultiHeadAttention(2, 2, attention_axes=(1, 2), dtype="float64")
    xq, xv = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 2, 3, 5))
    got = layer(xq, xv)
    w = layer.get_weights()
    ref = mha_reference(xq.reshape(2, 12, 5), xv.reshape(2, 6, 5), w, 2).reshape(2, 3, 4, 5)
    np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-10)
    out, scores = layer(xq, xv, return_attention_scores=True)
    assert scores.shape == (2, 2, 3, 4, 2, 3)
    # Self-attention over both axes (the joint projection on a rank-4 input).
    ref = mha_reference(xq.reshape(2, 12, 5), xq.reshape(2, 12, 5), w, 2).reshape(2, 3, 4, 5)
    np.testing.assert_allclose(np.asarray(layer(xq, xq)), ref, rtol=1e-10)
    # Attention over axis 2 only: axis 1 folds into the batch.
    one = layers.MultiHeadAttention(2, 2, attention_axes=2, dtype="float64")
    xv2 = rng.standard_normal((2, 3, 6, 5))
    got = one(xq, xv2)
    w = one.get_weights()
    ref = mha_reference(xq.reshape(6, 4, 5), xv2.reshape(6, 6, 5), w, 2).reshape(2, 3, 4, 5)
    np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-10)


def test_mha_gate_and_sliding_window():
    layer = layers.MultiHeadAttention(2, 3, use_gate=True, sliding_window=2, dtype="float64")
    xq = rng.standard_normal((2, 6, 4))
    got = layer(xq, xq)
    wq, bq, wk, bk, wg, bg, wv, bv, wo, bo = layer.get_weights()
    assert wg.shape == (4, 2, 3)
    q = np.einsum("btd,dnh->btnh", xq, wq) + bq
    k = np.einsum("btd,dnh->btnh", xq, wk) + bk
    v = np.einsum("btd,dnh->btnh", xq, wv) + bv
    band = np.abs(np.arange(6)[:, None] - np.arange(6)[None]) < 2
    o = sdpa_reference(q, k, v, band[None, None]) / (1 + np.exp(-(np.einsum("btd,dnh->btnh", xq, wg) + bg)))
    np.testing.assert_allclose(np.asarray(got), np.einsum("btnh,nho->bto", o, wo) + bo, rtol=1e-10)


def test_mha_dropout_only_while_training():
    layer = layers.MultiHeadAttention(2, 3, dropout=0.5, seed=3, dtype="float64")
    xq = rng.standard_normal((2, 5, 4))
    inference = layer(xq, xq)
    np.testing.assert_allclose(np.asarray(inference), mha_reference(xq, xq, layer.get_weights(), 2), rtol=1e-10)
    assert not np.allclose(np.asarray(layer(xq, xq, training=True)), np.asarray(inference))


class _OnPair(layers.Layer):
    """Calls a two-argument layer on a [query, value] list, for check_layer_gradients."""

    def __init__(self, inner, **kwargs):
        super().__init__(**kwargs)
        self.inner = inner

    def call(self, inputs):
        return self.inner(inputs[0], inputs[1])


class _SelfAttend(layers.Layer):
    """Self-attention of one input (the joint query / key / value projection), for check_layer_gradients."""

    def __init__(self, inner, **kwargs):
        super().__init__(**kwargs)
        self.inner = inner

    def call(self, inputs):
        return self.inner(inputs, inputs, use_causal_mask=True)


@pytest.mark.parametrize("use_bias", [True, False])
def test_mha_self_attention_joint_projection(use_bias):
    layer = layers.MultiHeadAttention(2, 2, value_dim=3, use_bias=use_bias, dtype="float64")
    x = rng.standard_normal((2, 4, 3))
    layer(x, x)
    layer.set_weights([w + 0.1 * rng.standard_normal(w.shape) for w in layer.get_weights()])
    separate = layer(x, np.array(x))                # a copy: the separate projections run
    np.testing.assert_allclose(np.asarray(layer(x, x)), np.asarray(separate), rtol=1e-12)
    check_layer_gradients(_SelfAttend(layer, dtype="float64"), x)


@pytest.mark.parametrize("use_bias", [True, False])
def test_mha_gradients(use_bias):
    layer = layers.MultiHeadAttention(2, 2, use_bias=use_bias, dtype="float64")
    xq, xv = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 5, 2))
    layer(xq, xv)
    layer.set_weights([w + 0.1 * rng.standard_normal(w.shape) for w in layer.get_weights()])
    check_layer_gradients(_OnPair(layer, dtype="float64"), [xq, xv])


def test_mha_gradients_with_causal_mask_and_scores_path():
    layer = layers.MultiHeadAttention(2, 2, dtype="float64")
    xq = rng.standard_normal((2, 4, 3))
    layer(xq, xq)
    am = rng.random((2, 4, 4)) > 0.3
    for kwargs in ({"use_causal_mask": True}, {"attention_mask": am}):
        check_gradients(lambda x: layer(x, x, **kwargs), [xq])
    check_gradients(lambda x: layer(x, x, attention_mask=am, return_attention_scores=True)[0], [xq])


def test_mha_config_round_trip_and_errors():
    layer = layers.MultiHeadAttention(3, 4, value_dim=2, dropout=0.1, output_shape=5, attention_axes=[1],
                                      use_gate=True, sliding_window=3, seed=1, kernel_initializer="he_normal")
    config = layer.get_config()
    for key in ("num_heads", "key_dim", "value_dim", "dropout", "use_bias", "use_gate", "output_shape",
                "attention_axes", "sliding_window", "kernel_initializer", "bias_initializer", "seed"):
        assert key in config
    clone = layers.MultiHeadAttention.from_config(config)
    assert clone.get_config() == config
    with pytest.raises(ValueError, match="num_heads"):
        layers.MultiHeadAttention(0, 4)
    with pytest.raises(ValueError, match="sliding_window"):
        layers.MultiHeadAttention(1, 4, sliding_window=0)
    flash = layers.MultiHeadAttention(1, 2, flash_attention=True)
    assert flash(np.ones((1, 3, 2), np.float32), np.ones((1, 3, 2), np.float32)).shape == (1, 3, 2)
    with pytest.raises(ValueError, match="flash_attention"):
        flash(np.ones((1, 3, 2), np.float32), np.ones((1, 3, 2), np.float32), return_attention_scores=True)
    with pytest.raises(ValueError, match="value and key"):
        layers.MultiHeadAttention(1, 2)(np.zeros((1, 3, 2)), np.zeros((1, 4, 2)), key=np.zeros((1, 5, 2)))


def test_mha_in_a_functional_model_shows_its_parameters():
    q_in = engine.Input((5, 8))
    out = layers.MultiHeadAttention(2, 3)(q_in, q_in)
    model = engine.Model(q_in, out)
    assert model.count_params() == 4 * 2 * 3 * 8 + 3 * 6 + 8 == 218
    assert model.predict(np.zeros((2, 5, 8), np.float32), verbose=0).shape == (2, 5, 8)


# -- Attention and AdditiveAttention ---------------------------------------------------------------
def attention_reference(q, v, k, scores_fn, v_mask=None, q_mask=None, causal_mask=False):
    s = scores_fn(q, k)
    vis = np.ones(s.shape, bool)
    if v_mask is not None:
        vis &= v_mask[:, None, :]
    if causal_mask:
        vis &= causal(*s.shape[1:])[None]
    s = np.where(vis, s, s - 1e9)
    w = softmax_rows(s)
    out = w @ v
    if q_mask is not None:
        out = out * q_mask[..., None]
    return out, w


@pytest.mark.parametrize("score_mode,use_scale", [("dot", False), ("dot", True), ("concat", False),
                                                  ("concat", True)])
def test_attention_layer_against_reference(score_mode, use_scale):
    layer = layers.Attention(use_scale=use_scale, score_mode=score_mode, dtype="float64")
    q, v, k = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4)), rng.standard_normal((2, 5, 4))
    layer([q, v, k])
    if layer.weights:
        layer.set_weights([np.asarray(1.3)] * len(layer.weights))
    scale = 1.3 if use_scale else 1.0
    if score_mode == "dot":
        fn = lambda q, k: scale * q @ k.transpose(0, 2, 1)  # noqa: E731
    else:
        fn = lambda q, k: 1.3 * np.tanh(scale * (q[:, :, None] + k[:, None])).sum(-1)  # noqa: E731
    vm = np.array([[1, 1, 0, 0, 0], [1, 1, 1, 1, 0]], bool)
    qm = np.array([[1, 0, 1], [1, 1, 1]], bool)
    for kwargs, ref_kwargs in [({}, {}), ({"mask": [qm, vm]}, {"v_mask": vm, "q_mask": qm}),
                               ({"use_causal_mask": True}, {"causal_mask": True})]:
        out, w = layer([q, v, k], return_attention_scores=True, **kwargs)
        ref_out, ref_w = attention_reference(q, v, k, fn, **ref_kwargs)
        np.testing.assert_allclose(np.asarray(out), ref_out, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(np.asarray(w), ref_w, rtol=1e-10, atol=1e-12)
    check_layer_gradients(layer, [q, v, k])


def test_additive_attention_against_reference_and_gradients():
    layer = layers.AdditiveAttention(dtype="float64")
    q, v = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4))
    out = layer([q, v])
    (scale,) = layer.get_weights()
    assert scale.shape == (4,)
    ref, _ = attention_reference(q, v, v, lambda q, k: (scale * np.tanh(q[:, :, None] + k[:, None])).sum(-1))
    np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-10)
    check_layer_gradients(layer, [q, v])
    assert "score_mode" not in layer.get_config()
    clone = layers.AdditiveAttention.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_attention_layer_mask_output_and_errors():
    layer = layers.Attention()
    q, v = np.ones((1, 2, 3), np.float32), np.ones((1, 4, 3), np.float32)
    qm = np.array([[True, False]])
    out = layer([q, v], mask=[qm, None])
    np.testing.assert_array_equal(np.asarray(out._keras_mask), qm)
    with pytest.raises(ValueError, match="list"):
        layer(q)
    with pytest.raises(ValueError, match="score_mode"):
        layers.Attention(score_mode="add")
    assert layers.Attention.from_config(layer.get_config()).get_config() == layer.get_config()


def test_ops_are_at_keras_paths():
    from engine.ops.transposed_conv import conv_transpose
    from engine.ops.layernorm import layer_normalization, rms_normalization
    assert ops.dot_product_attention is dot_product_attention
    assert (ops.layer_normalization, ops.rms_normalization, ops.conv_transpose) == \
        (layer_normalization, rms_normalization, conv_transpose)


def test_mha_per_head_and_shared_attention_masks():
    layer, xq, xv = built_mha()
    per_head = rng.random((2, 2, 5, 7)) > 0.3          # (B, heads, T, S): no head axis inserted
    got = np.asarray(layer(xq, xv, attention_mask=per_head))
    wq, bq, wk, bk, wv, bv, wo, bo = layer.get_weights()
    q = np.einsum("btd,dnh->btnh", xq, wq) + bq
    k = np.einsum("bsd,dnh->bsnh", xv, wk) + bk
    v = np.einsum("bsd,dnh->bsnh", xv, wv) + bv
    o = sdpa_reference(q, k, v, per_head, 1 / np.sqrt(3))
    np.testing.assert_allclose(got, np.einsum("btnh,nho->bto", o, wo) + bo, rtol=1e-10, atol=1e-12)
    shared = rng.random((5, 7)) > 0.3                   # (T, S): one mask for every sample
    np.testing.assert_allclose(np.asarray(layer(xq, xv, attention_mask=shared)),
                               mha_reference(xq, xv, layer.get_weights(), 2, np.broadcast_to(shared, (2, 5, 7))),
                               rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="does not broadcast"):
        layer(xq, xv, attention_mask=np.ones((2, 3, 5, 7), bool))


def test_mha_queries_that_see_no_key_follow_keras_on_every_path():
    """Keras 3's MultiHeadAttention gives a query whose keys are all masked a uniform average of
    the values on its fused path (ops.dot_product_attention) and zero attention on its explicit
    softmax path, which it takes whenever the layer has dropout (training or not), returns the
    scores, or attends over more than one axis.  Engine's numbers follow the same rule."""
    am = np.ones((2, 5, 7), bool)
    am[0, 2] = False
    am[1, 4] = False
    # The fused path: the hidden query averages the value projections uniformly.
    layer, xq, xv = built_mha()
    wq, bq, wk, bk, wv, bv, wo, bo = layer.get_weights()
    v = np.einsum("bsd,dnh->bsnh", xv, wv) + bv
    uniform = np.einsum("bnh,nho->bo", v.mean(axis=1), wo) + bo
    got = np.asarray(layer(xq, xv, attention_mask=am))
    np.testing.assert_allclose(got[0, 2], uniform[0], rtol=1e-10)
    np.testing.assert_allclose(got[1, 4], uniform[1], rtol=1e-10)
    # With dropout (here at inference, so nothing is dropped) Keras's explicit path attends to
    # nothing: the output is the output projection's bias; every other row is unchanged.
    dropping, _, _ = built_mha(dropout=0.5)
    dropping.set_weights(layer.get_weights())
    out = np.asarray(dropping(xq, xv, attention_mask=am, training=False))
    np.testing.assert_allclose(out[0, 2], bo, rtol=1e-12)
    np.testing.assert_allclose(out[1, 4], bo, rtol=1e-12)
    seen = np.ones((2, 5), bool)
    seen[0, 2] = seen[1, 4] = False
    np.testing.assert_allclose(out[seen], got[seen], rtol=1e-10)
    # The scores path agrees with it, and the gradients of the zeroed rows are right.
    scored, _ = dropping(xq, xv, attention_mask=am, return_attention_scores=True)
    np.testing.assert_allclose(np.asarray(scored), out, rtol=1e-10, atol=1e-12)
    check_gradients(lambda a, b: dropping(a, b, attention_mask=am, training=False), [xq, xv])


def test_mha_over_two_axes_zeroes_queries_that_see_no_key():
    layer = layers.MultiHeadAttention(2, 2, attention_axes=(1, 2), dtype="float64")
    xq, xv = rng.standard_normal((2, 3, 2, 5)), rng.standard_normal((2, 2, 3, 5))
    mask = np.ones((2, 3, 2, 2, 3), bool)
    mask[0, 1, 1] = False
    out = np.asarray(layer(xq, xv, attention_mask=mask))
    np.testing.assert_allclose(out[0, 1, 1], layer.get_weights()[-1], rtol=1e-12)
    assert np.abs(out[0, 1, 0] - layer.get_weights()[-1]).max() > 1e-3


def test_mha_fully_masked_rows_match_live_keras():
    import os
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    q = rng.standard_normal((2, 4, 8)).astype("float32")
    v = rng.standard_normal((2, 5, 8)).astype("float32")
    mask = np.ones((2, 4, 5), bool)
    mask[0, 1] = False
    mask[1, 3] = False
    for kwargs, call in (({}, {}), ({"dropout": 0.3}, {"training": False}), ({}, {"return_attention_scores": True})):
        theirs, ours = keras.layers.MultiHeadAttention(2, 4, **kwargs), layers.MultiHeadAttention(2, 4, **kwargs)
        theirs(q, v)
        ours(q, v)
        ours.set_weights(theirs.get_weights())
        want, got = theirs(q, v, attention_mask=mask, **call), ours(q, v, attention_mask=mask, **call)
        for w, g in zip(want if isinstance(want, tuple) else [want], got if isinstance(got, tuple) else [got]):
            np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-4, atol=1e-5)


# -- GroupQueryAttention --------------------------------------------------------------------------
def gqa_reference(xq, xv, weights, kv_heads, visible=None):
    """Grouped-query attention written out: key / value heads repeated for their query heads."""
    wq, bq, wk, bk, wv, bv, wo, bo = weights
    repeats = wq.shape[1] // kv_heads
    q = np.einsum("btd,dnh->btnh", xq, wq) + bq
    k = np.repeat(np.einsum("bsd,dnh->bsnh", xv, wk) + bk, repeats, axis=2)
    v = np.repeat(np.einsum("bsd,dnh->bsnh", xv, wv) + bv, repeats, axis=2)
    vis = None if visible is None else np.asarray(visible)[:, None]
    return np.einsum("btnh,nho->bto", sdpa_reference(q, k, v, vis), wo) + bo


@pytest.mark.parametrize("call", [{}, {"use_causal_mask": True}, {"return_attention_scores": True}])
def test_group_query_attention_matches_the_reference(call):
    layer = layers.GroupQueryAttention(3, 4, 2, dtype="float64")
    xq, xv = rng.standard_normal((2, 5, 6)), rng.standard_normal((2, 7, 6))
    layer(xq, xv)
    assert [w.shape for w in layer.weights] == [(6, 4, 3), (4, 3), (6, 2, 3), (2, 3), (6, 2, 3), (2, 3),
                                                (4, 3, 6), (6,)]
    layer.set_weights([w + rng.standard_normal(w.shape) * 0.1 for w in layer.get_weights()])
    visible = attention_ops_causal(5, 7)[None] if call.get("use_causal_mask") else None
    got = layer(xq, xv, **call)
    want = gqa_reference(xq, xv, layer.get_weights(), 2, visible)
    if call.get("return_attention_scores"):
        got, scores = got
        assert scores.shape == (2, 4, 5, 7)
        np.testing.assert_allclose(np.asarray(scores).sum(-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-10)
    check_gradients(lambda a, b: layer(a, b, **call)[0] if call.get("return_attention_scores")
                    else layer(a, b, **call), [xq, xv])
    config = layer.get_config()
    assert {"head_dim", "num_query_heads", "num_key_value_heads"} <= set(config) and "num_heads" not in config
    again = layers.GroupQueryAttention.from_config(config)
    again(xq, xv)
    again.set_weights(layer.get_weights())
    np.testing.assert_allclose(np.asarray(again(xq, xv)), np.asarray(layer(xq, xv)), rtol=1e-12)
    with pytest.raises(ValueError, match="multiple of num_key_value_heads"):
        layers.GroupQueryAttention(3, 4, 3)


def attention_ops_causal(T, S):
    return np.tril(np.ones((T, S), bool))


def test_group_query_attention_matches_live_keras(tmp_path):
    import os
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    pytest.importorskip("h5py")
    q = rng.standard_normal((2, 5, 8)).astype("float32")
    v = rng.standard_normal((2, 6, 8)).astype("float32")
    mask = rng.random((2, 5, 6)) > 0.3
    mask[0, 2] = False
    for kwargs, call in (({}, {}), ({"use_gate": True}, {"use_causal_mask": True}),
                         ({"dropout": 0.2}, {"attention_mask": mask}),
                         ({}, {"return_attention_scores": True, "attention_mask": mask}),
                         ({"sliding_window": 2, "use_bias": False}, {})):
        theirs, ours = keras.layers.GroupQueryAttention(4, 4, 2, **kwargs), layers.GroupQueryAttention(4, 4, 2, **kwargs)
        theirs(q, v)
        ours(q, v)
        assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
        ours.set_weights(theirs.get_weights())
        want, got = theirs(q, v, **call), ours(q, v, **call)
        for w, g in zip(want if isinstance(want, tuple) else [want], got if isinstance(got, tuple) else [got]):
            np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-4, atol=1e-5)
        assert set(ours.get_config()) - {"activity_regularizer"} == set(theirs.get_config()) - {"activity_regularizer"}
    inp = keras.Input((5, 8))
    k_model = keras.Model(inp, keras.layers.GroupQueryAttention(4, 4, 2, use_gate=True)(inp, inp))
    k_model.save(str(tmp_path / "k.keras"))
    e_model = engine.saving.load_model(str(tmp_path / "k.keras"))
    np.testing.assert_allclose(np.asarray(e_model(q)), np.asarray(k_model(q)), rtol=1e-4, atol=1e-5)
    e_model.save(str(tmp_path / "e.keras"))
    back = keras.saving.load_model(str(tmp_path / "e.keras"))
    np.testing.assert_allclose(np.asarray(back(q)), np.asarray(k_model(q)), rtol=1e-4, atol=1e-5)
