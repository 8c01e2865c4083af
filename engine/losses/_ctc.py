"""The CTC loss's forward algorithm, written with engine.ops so the tape differentiates it.

(An `ops.ctc_loss` op with a fused gradient would be faster; this composes existing ops: one
log-space recursion step per time step.)
"""
import numpy as np

from engine import ops

# Stands in for log(0): finite, so shifted exponentials never compute inf - inf.
_LOG_ZERO = -1e30


def _logsumexp(terms):
    """log(sum(exp(t))) of same-shaped tensors, shifted by their (constant) elementwise maximum."""
    shift = np.maximum.reduce([np.asarray(t) for t in terms])
    total = None
    for t in terms:
        e = ops.exp(t - shift)
        total = e if total is None else total + e
    return ops.log(total) + shift


def _shift_right(x, by, fill):
    """x shifted `by` places along its last axis, the first places filled with `fill`."""
    pad = ops.convert_to_tensor(np.full(x.shape[:-1] + (by,), fill, dtype=x.dtype))
    return ops.concatenate([pad, x[..., :-by]], axis=-1)


def ctc_negative_log_likelihood(labels, logits, blank=0):
    """-log p(labels | logits) for each sample.

    Args:
        labels: int array (batch, max_label_length); entries equal to `blank` are padding.
        logits: Tensor (batch, steps, classes), unnormalized.
        blank: the blank class index (also the padding value).

    Returns:
        Tensor (batch,).
    """
    batch, steps, classes = logits.shape
    lengths = (labels != blank).sum(axis=1)
    width = 2 * labels.shape[1] + 1
    # Extended label sequences: blank, l1, blank, l2, ..., blank.
    extended = np.full((batch, width), blank, dtype=np.int64)
    extended[:, 1::2] = labels
    skip_ok = np.zeros((batch, width), dtype=bool)     # may jump from s-2 to s
    skip_ok[:, 2:] = (extended[:, 2:] != blank) & (extended[:, 2:] != extended[:, :-2])
    dtype = logits.dtype
    log_probs = ops.log_softmax(logits, axis=-1)
    onehot = np.zeros((batch, classes, width), dtype=dtype)
    onehot[np.arange(batch)[:, None], extended, np.arange(width)[None, :]] = 1.0
    emissions = ops.matmul(log_probs, onehot)          # (batch, steps, width)

    start = np.full((batch, width), _LOG_ZERO, dtype=dtype)
    start[:, 0] = 0.0
    start[:, 1] = np.where(lengths > 0, 0.0, _LOG_ZERO)
    alpha = emissions[:, 0, :] + start
    skip_fill = np.where(skip_ok, 0.0, _LOG_ZERO).astype(dtype)
    for t in range(1, steps):
        stay = alpha
        step = _shift_right(alpha, 1, _LOG_ZERO)
        jump = _shift_right(alpha, 2, _LOG_ZERO) + skip_fill
        alpha = _logsumexp([stay, step, jump]) + emissions[:, t, :]
    # The path ends on the last label or the blank after it.
    ends = np.full((batch, width), _LOG_ZERO, dtype=dtype)
    rows = np.arange(batch)
    ends[rows, 2 * lengths] = 0.0
    ends[rows[lengths > 0], 2 * lengths[lengths > 0] - 1] = 0.0
    final = alpha + ends
    shift = np.asarray(final).max(axis=1, keepdims=True)
    return -(ops.log(ops.sum(ops.exp(final - shift), axis=1)) + shift[:, 0])
