"""Scaled dot-product attention (keras.ops.dot_product_attention), fused.

Layout as Keras's: query (batch, T, heads, depth), key (batch, S, heads, depth), value
(batch, S, heads, value_depth); the result is (batch, T, heads, value_depth).  Without a bias
or a logit soft cap the whole op is one kernel (engine._kernels.attention: online softmax over
key blocks, forward and backward, never materialising the (T, S) matrix); with either, it is
composed from the tensor ops.

Masked scores are replaced by a large negative number, so a query that may see no key
averages every value uniformly (as Keras's JAX backend does).
"""
import numpy as np

from engine.autodiff import differentiable
from engine.ops._util import contiguous, float_dtype_of, to_array
from engine._kernels import attention as K, bias as B


def _mask_planes(mask, batch, heads, T, S):
    """A boolean mask broadcastable to (batch, heads, T, S) as the kernel's contiguous uint8
    (Bm, Hm, T, S), Bm in {1, batch} and Hm in {1, heads}; None stays None."""
    if mask is None:
        return None
    m = np.asarray(to_array(mask))
    if m.ndim > 4:
        raise ValueError(f"dot_product_attention: mask of shape {m.shape} has more than 4 axes; it must "
                         f"broadcast to (batch, heads, T, S) = {(batch, heads, T, S)}")
    m = m.reshape((1,) * (4 - m.ndim) + m.shape)
    target = (batch, heads, T, S)
    for got, want in zip(m.shape, target):
        if got not in (1, want):
            raise ValueError(f"dot_product_attention: mask of shape {np.shape(to_array(mask))} does not "
                             f"broadcast to (batch, heads, T, S) = {target}")
    lead = (m.shape[0], m.shape[1])
    planes = np.broadcast_to(m != 0 if m.dtype != np.bool_ else m, lead + (T, S))
    return np.ascontiguousarray(planes, dtype=np.uint8)


@differentiable
def _fused_attention(q, k, v, mask=None, causal=False, scale=1.0):
    dtype = float_dtype_of(q, k, v)
    qc, kc, vc = contiguous(q, dtype), contiguous(k, dtype), contiguous(v, dtype)
    batch, T, heads = qc.shape[:3]
    out = np.empty((batch, T, heads, vc.shape[3]), dtype)
    row_max = np.empty((batch, heads, T), dtype)
    row_inv = np.empty((batch, heads, T), dtype)
    K.sdpa_forward(qc, kc, vc, mask, causal, scale, out, row_max, row_inv)

    def vjp(g, needs):
        dq, dk, dv = np.empty_like(qc), np.empty_like(kc), np.empty_like(vc)
        K.sdpa_backward(qc, kc, vc, mask, causal, scale, out, row_max, row_inv, contiguous(g, dtype),
                        dq, dk, dv)
        return (dq.astype(q.dtype, copy=False) if needs[0] else None,
                dk.astype(k.dtype, copy=False) if needs[1] else None,
                dv.astype(v.dtype, copy=False) if needs[2] else None)
    return out, vjp


def causal_mask(T, S):
    """The (T, S) boolean mask letting query i see keys 0..i (Keras's causal convention)."""
    return np.arange(S)[None, :] <= np.arange(T)[:, None]


def attention_probabilities(query, key, scale, mask=None, is_causal=False, bias=None, soft_cap=None,
                            masked_value="replace"):
    """softmax over keys of scale * q.k (+ bias, soft-capped), as a (batch, heads, T, S) tensor.

    masked_value: "replace" gives masked scores a large negative number before the softmax
    (a row with no visible key is uniform); "zero" also sets the masked probabilities to 0 after
    it, as Keras's Softmax layer does (a row with no visible key is all zeros).
    """
    from engine.ops import math as m
    from engine.ops.nn import softmax, tanh
    logits = m.matmul(m.transpose(query, (0, 2, 1, 3)), m.transpose(key, (0, 2, 3, 1)))
    logits = m.multiply(logits, np.asarray(scale, dtype=logits.dtype))
    if bias is not None:
        logits = m.add(logits, bias)
    if soft_cap is not None:
        cap = np.asarray(soft_cap, dtype=logits.dtype)
        logits = m.multiply(tanh(m.divide(logits, cap)), cap)
    batch, heads, T, S = logits.shape
    visible = None
    if mask is not None:
        visible = _mask_planes(mask, batch, heads, T, S).astype(bool)
    if is_causal:
        c = causal_mask(T, S)[None, None]
        visible = c if visible is None else visible & c
    if visible is None:
        return softmax(logits, axis=-1)
    probs = softmax(m.where(visible, logits, np.asarray(-1e9, dtype=logits.dtype)), axis=-1)
    if masked_value == "zero":
        probs = m.where(visible, probs, np.zeros((), dtype=logits.dtype))
    return probs


def dot_product_attention(query, key, value, bias=None, mask=None, scale=None, is_causal=False,
                          flash_attention=None, attn_logits_soft_cap=None):
    """softmax(scale * query . key + bias, masked) . value over the key axis.

    Args:
        query: (batch, T, heads, depth) tensor.
        key: (batch, S, heads, depth) tensor; fewer heads than the query
            (a divisor of its count) is grouped-query attention.
        value: (batch, S, heads, value_depth) tensor.
        bias: optional tensor added to the scores, broadcastable to (batch, heads, T, S).
        mask: optional boolean tensor broadcastable to (batch, heads, T, S): True where a query
            may attend to a key.
        scale: multiplier of the scores; defaults to 1 / sqrt(depth).
        is_causal: whether query i sees only keys 0..i.
        flash_attention: None or False (True, a cuDNN kernel, is refused as on Keras's CPU
            backends); engine's kernel is blocked either way.
        attn_logits_soft_cap: optional float: scores become cap * tanh(scores / cap).

    Returns:
        A tensor of shape (batch, T, heads, value_depth).
    """
    from engine.ops import math as m
    if flash_attention:
        # As Keras on a CPU: flash attention is a cuDNN kernel. engine's own kernel is blocked
        # (it never materialises the scores) and is what runs with the default None.
        raise ValueError("dot_product_attention: flash_attention=True needs a GPU with cuDNN; pass "
                         "flash_attention=None (engine's CPU kernel is blocked already)")
    q, k, v = (m.convert_to_tensor(t) for t in (query, key, value))
    if not (q.ndim == k.ndim == v.ndim == 4):
        raise ValueError(f"dot_product_attention: only 4-D inputs (batch, length, heads, depth) are "
                         f"supported, as in Keras; got shapes {q.shape}, {k.shape}, {v.shape}")
    (b, T, n, d), (bk, S, nk, dk), (bv, Sv, nv, _) = q.shape, k.shape, v.shape
    if nk == nv and nk < n and n % nk == 0:
        # Grouped-query attention (as Keras): each key / value head serves n // nk query heads.
        from engine.ops.arrays import repeat
        k, v = repeat(k, n // nk, axis=2), repeat(v, n // nk, axis=2)
        nk = nv = n
    if (bk, nk, dk) != (b, n, d) or (bv, Sv, nv) != (b, S, n):
        raise ValueError(f"dot_product_attention: shapes do not fit together: query {q.shape}, key "
                         f"{k.shape}, value {v.shape} (key must be (batch, S, heads, depth of query), "
                         f"value (batch, S, heads, any depth))")
    if S == 0:
        raise ValueError("dot_product_attention: key and value have no positions (S == 0)")
    scale = float(1.0 / np.sqrt(d)) if scale is None else float(scale)
    if bias is None and attn_logits_soft_cap is None:
        out = _fused_attention(q, k, v, mask=_mask_planes(mask, b, n, T, S), causal=bool(is_causal),
                               scale=scale)
    else:
        probs = attention_probabilities(q, k, scale, mask, is_causal, bias, attn_logits_soft_cap)
        out = m.transpose(m.matmul(probs, m.transpose(v, (0, 2, 1, 3))), (0, 2, 1, 3))
    return out


@differentiable
def _joint_projection(x, *params, widths=()):
    """x (..., d) times several (d, n_i) kernels (+ (n_i,) biases, or None): one GEMM per
    kernel, each writing its own contiguous output, sharing the input (its gradient is one
    buffer the products add into).  A single GEMM on the kernels side by side would read x once
    but costs a copy of every output to split it and of every gradient to join them, which is
    more than the products themselves when the widths are small."""
    from engine._kernels import gemm as G
    from engine.ops.math import gemm_2d
    dtype = float_dtype_of(x, *params[::2])
    x2 = contiguous(x, dtype).reshape(-1, x.shape[-1])
    kernels, biases = params[::2], params[1::2]
    ws = [contiguous(k, dtype) for k in kernels]
    lead = x.shape[:-1]
    outs = []
    for w, b in zip(ws, biases):
        y = gemm_2d(x2, w)
        if b is not None:
            B.bias_add(y, contiguous(b, dtype), y)
        outs.append(y.reshape(lead + (w.shape[1],)))

    def vjp(grads, needs):
        gs = [None if gi is None else contiguous(gi, dtype).reshape(-1, n) for gi, n in zip(grads, widths)]
        result = [None] * (1 + len(params))
        if needs[0]:
            dx = np.empty_like(x2) if any(g is not None for g in gs) else np.zeros_like(x2)
            first = True
            for g, w in zip(gs, ws):
                if g is not None:
                    G.gemm(g, w, dx, False, True, 1.0, 0.0 if first else 1.0)
                    first = False
            result[0] = dx.reshape(x.shape).astype(x.dtype, copy=False)
        for i, g in enumerate(gs):
            if g is None:
                g = np.zeros((x2.shape[0], widths[i]), dtype)
            if needs[1 + 2 * i]:
                result[1 + 2 * i] = gemm_2d(x2, g, trans_a=True).astype(kernels[i].dtype, copy=False)
            if needs[2 + 2 * i] and biases[i] is not None:
                # the kernel sums the rows in double, one pass over g (numpy's sum over axis 0 of
                # a (rows, n) array took 0.1 ms for MultiHeadAttention's 6400 x 64 here)
                result[2 + 2 * i] = B.bias_grad(g, np.empty(widths[i], dtype)).astype(biases[i].dtype, copy=False)
        return tuple(result)
    return tuple(outs), vjp


def joint_projection(x, kernels, biases):
    """[x @ kernel_i + bias_i for each i] from one GEMM (the projections of self-attention share
    their input).  kernels are (d, n_i) tensors, biases (n_i,) tensors or None."""
    params = [p for pair in zip(kernels, biases) for p in pair]
    return list(_joint_projection(x, *params, widths=tuple(int(np.shape(k)[1]) for k in kernels)))
