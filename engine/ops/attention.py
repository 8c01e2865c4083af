"""Scaled dot-product attention (keras.ops.dot_product_attention), composed of einsum, softmax
and where, so its gradient follows from theirs."""
import numpy as np

from engine.dtypes import result_type
from engine.ops._util import to_array
from engine.ops import math as m
from engine.ops.arrays import _tensor
from engine.ops.contraction import einsum


def dot_product_attention(query, key, value, bias=None, mask=None, scale=None, is_causal=False,
                          flash_attention=None, attn_logits_soft_cap=None):
    """softmax(query key^T * scale + bias, masked) value, over 4-D (batch, length, heads, dim) tensors.

    Args:
        query: (B, T, N, H).
        key: (B, S, K, H), K heads dividing N (grouped-query attention repeats them).
        value: (B, S, K, H).
        bias: optional, broadcastable to the logits (B, N, T, S).
        mask: optional bool, broadcastable to (B, N, T, S): False positions are excluded.
        scale: the logit scale (default 1 / sqrt(H)).
        is_causal: also exclude positions s > t.
        flash_attention: engine has no fused attention kernel: None or False (True is an error).
        attn_logits_soft_cap: if given, logits become logits / (1 + |logits| / cap) before masking.

    Returns:
        (B, T, N, H).
    """
    if flash_attention:
        raise ValueError("dot_product_attention: flash_attention=True needs a GPU kernel engine does not "
                         "have; pass None or False")
    q, k, v = _tensor(query), _tensor(key), _tensor(value)
    for name, t in (("query", q), ("key", k), ("value", v)):
        if t.ndim != 4:
            raise ValueError(f"dot_product_attention: {name} must be 4-D (batch, length, heads, dim), got "
                             f"shape {t.shape}")
    if k.shape != v.shape or q.shape[0] != k.shape[0] or q.shape[3] != k.shape[3]:
        raise ValueError(f"dot_product_attention: shapes query {q.shape}, key {k.shape}, value {v.shape} do "
                         f"not fit (key and value alike; batch and head size shared with query)")
    if q.shape[2] % k.shape[2]:
        raise ValueError(f"dot_product_attention: query's {q.shape[2]} heads are not a multiple of key's "
                         f"{k.shape[2]}")
    dtype = result_type(q, k, v)
    q, k, v = m.cast(q, dtype), m.cast(k, dtype), m.cast(v, dtype)
    groups = q.shape[2] // k.shape[2]
    if groups > 1:
        from engine.ops.arrays import repeat
        k, v = repeat(k, groups, axis=2), repeat(v, groups, axis=2)
    scale = 1.0 / np.sqrt(q.shape[-1]) if scale is None else scale
    logits = m.multiply(einsum("btnh,bsnh->bnts", q, k), np.asarray(scale, dtype=q.dtype))
    if bias is not None:
        logits = m.add(logits, m.cast(_tensor(bias), dtype))
    if attn_logits_soft_cap is not None:
        logits = m.divide(logits, m.add(m.divide(m.abs(logits), float(attn_logits_soft_cap)), 1.0))
    keep = None
    if mask is not None:
        keep = np.asarray(to_array(mask), dtype=bool)
    if is_causal:
        t, s = logits.shape[2], logits.shape[3]
        causal = np.tril(np.ones((t, s), dtype=bool))[None, None]
        keep = causal if keep is None else np.logical_and(keep, causal)
    if keep is not None:
        # A large finite negative (not -inf) so fully masked rows stay finite, as Keras does.
        large_negative = np.asarray(-0.7 * np.finfo(np.float32).max, dtype=logits.dtype)
        logits = m.where(np.broadcast_to(keep, logits.shape), logits, large_negative)
    from engine.ops.nn import softmax
    probs = softmax(logits, axis=-1)
    return einsum("bnts,bsnh->btnh", probs, v)


__all__ = ["dot_product_attention"]
