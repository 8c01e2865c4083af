"""Connectionist temporal classification: the CTC loss (with its gradient, by the
forward-backward algorithm) and greedy / beam-search decoding."""
import numpy as np

from engine.autodiff import differentiable
from engine.ops._checks import positive_int
from engine.ops._util import to_array, wrap
from engine.ops import math as m
from engine.ops.arrays import operand_tensor

# Impossible states carry this log-probability instead of -inf, so an infeasible target gives
# a large finite loss with finite gradients (the convention of Keras's JAX backend).
_LOG_EPSILON = -1e5


def _log_softmax(z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _logsumexp_pair(a, b):
    top = np.maximum(a, b)
    return top + np.log(np.exp(a - top) + np.exp(b - top))


@differentiable
def _ctc_loss(logits, labels=None, label_lengths=None, logit_lengths=None, blank=0):
    logp = _log_softmax(logits.astype(np.float64))
    batch, steps, _ = logp.shape
    width = 2 * labels.shape[1] + 1
    # The extended label sequence: blank, l1, blank, l2, ..., blank.
    ext = np.full((batch, width), blank, dtype=np.int64)
    ext[:, 1::2] = labels
    s_idx = np.arange(width)
    valid = s_idx[None, :] < 2 * label_lengths[:, None] + 1
    skip = np.zeros((batch, width), dtype=bool)       # may come from s - 2 (a different label)
    skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    emit = np.take_along_axis(logp, np.broadcast_to(ext[:, None, :], (batch, steps, width)), axis=2)

    alpha = np.full((batch, steps, width), _LOG_EPSILON)
    alpha[:, 0, 0] = emit[:, 0, 0]
    alpha[:, 0, 1] = np.where(label_lengths > 0, emit[:, 0, 1], _LOG_EPSILON)
    for t in range(1, steps):
        prev = alpha[:, t - 1]
        stay = prev
        step = np.concatenate([np.full((batch, 1), _LOG_EPSILON), prev[:, :-1]], axis=1)
        jump = np.concatenate([np.full((batch, 2), _LOG_EPSILON), prev[:, :-2]], axis=1)
        total = _logsumexp_pair(stay, step)
        total = np.where(skip, _logsumexp_pair(total, jump), total)
        new = np.where(valid, total + emit[:, t], _LOG_EPSILON)
        active = (t < logit_lengths)[:, None]
        alpha[:, t] = np.where(active, new, prev)   # past a sequence's end, alpha stays put
    last = np.maximum(logit_lengths - 1, 0)
    final = alpha[np.arange(batch), last]
    end = 2 * label_lengths
    log_p = _logsumexp_pair(final[np.arange(batch), end],
                            np.where(label_lengths > 0, final[np.arange(batch), np.maximum(end - 1, 0)],
                                     _LOG_EPSILON))
    loss = (-log_p).astype(logits.dtype)

    def vjp(g, needs):
        beta = np.full((batch, steps, width), _LOG_EPSILON)
        b_idx = np.arange(batch)
        beta[b_idx, last, end] = emit[b_idx, last, end]
        beta[b_idx, last, np.maximum(end - 1, 0)] = np.where(
            label_lengths > 0, emit[b_idx, last, np.maximum(end - 1, 0)], beta[b_idx, last, np.maximum(end - 1, 0)])
        skip_next = np.concatenate([skip[:, 2:], np.zeros((batch, 2), bool)], axis=1)   # s -> s + 2 allowed
        for t in range(steps - 2, -1, -1):
            nxt = beta[:, t + 1]
            stay = nxt
            step = np.concatenate([nxt[:, 1:], np.full((batch, 1), _LOG_EPSILON)], axis=1)
            jump = np.concatenate([nxt[:, 2:], np.full((batch, 2), _LOG_EPSILON)], axis=1)
            total = _logsumexp_pair(stay, step)
            total = np.where(skip_next, _logsumexp_pair(total, jump), total)
            new = np.where(valid, total + emit[:, t], _LOG_EPSILON)
            inside = (t < last)[:, None]
            beta[:, t] = np.where(inside, new, beta[:, t])
        # Occupancy of each extended state, then summed per class: gamma_t(k).
        occupancy = np.exp(alpha + beta - emit - log_p[:, None, None])
        inside_t = (np.arange(steps)[None, :] < logit_lengths[:, None])[:, :, None]
        occupancy = np.where(inside_t, occupancy, 0.0)
        gamma = np.zeros_like(logp)
        for b in range(batch):
            np.add.at(gamma[b].T, ext[b], occupancy[b].T)
        grad = np.where(inside_t, np.exp(logp) - gamma, 0.0)
        return (grad * np.asarray(g, dtype=np.float64)[:, None, None]).astype(logits.dtype), None, None, None
    return loss, vjp


def ctc_loss(target, output, target_length, output_length, mask_index=0):
    """The CTC loss per sample: -log of the probability of the target under all alignments.

    Args:
        target: (batch, max_label_length) integer labels, padded past target_length.
        output: (batch, steps, classes) logits (softmax is applied here).
        target_length: (batch,) label counts.
        output_length: (batch,) valid steps of each output sequence.
        mask_index: the class index of the blank.

    Returns:
        (batch,) losses of output's dtype.
    """
    logits = operand_tensor(output)
    if logits.ndim != 3:
        raise ValueError(f"ctc_loss: output must be (batch, steps, classes), got shape {logits.shape}")
    if logits.dtype.kind != "f":
        logits = m.cast(logits, m.config.floatx())
    labels = np.asarray(to_array(operand_tensor(target)), dtype=np.int64)
    if labels.ndim != 2 or labels.shape[0] != logits.shape[0]:
        raise ValueError(f"ctc_loss: target must be (batch, max_label_length) with the batch of output "
                         f"{logits.shape}, got shape {labels.shape}")
    t_len = np.asarray(to_array(operand_tensor(target_length)), dtype=np.int64).reshape(-1)
    o_len = np.asarray(to_array(operand_tensor(output_length)), dtype=np.int64).reshape(-1)
    if t_len.shape != (labels.shape[0],) or o_len.shape != (labels.shape[0],):
        raise ValueError("ctc_loss: target_length and output_length need one entry per sample")
    if (t_len > labels.shape[1]).any() or (o_len > logits.shape[1]).any() or (t_len < 0).any() or (o_len < 1).any():
        raise ValueError("ctc_loss: target_length must lie in [0, max_label_length] and output_length in "
                         "[1, steps]")
    if not 0 <= int(mask_index) < logits.shape[2]:
        raise ValueError(f"ctc_loss: mask_index {mask_index} is not a class of output (shape {logits.shape})")
    return _ctc_loss(logits, labels=labels, label_lengths=t_len, logit_lengths=o_len, blank=int(mask_index))


def _greedy_decode(logits, lengths, merge_repeated, blank):
    batch, steps, _ = logits.shape
    best = logits.argmax(axis=-1)
    # Keras scores the greedy path by minus the sum of the raw per-step maxima.
    scores = -np.where(np.arange(steps)[None, :] < lengths[:, None], logits.max(axis=-1), 0.0).sum(axis=1)
    decoded = np.full((batch, steps), -1, dtype=np.int32)
    for b in range(batch):
        seq = best[b, :lengths[b]]
        keep = seq != blank
        if merge_repeated:
            keep &= np.concatenate([[True], seq[1:] != seq[:-1]])
        out = seq[keep]
        decoded[b, :out.size] = out
    return decoded[None], scores[:, None]


def _beam_decode(logp, lengths, beam_width, top_paths, blank):
    """Prefix beam search: each prefix keeps the log-probabilities of ending in a blank and in
    its last label; the beam_width most probable prefixes survive each step."""
    batch, steps, classes = logp.shape
    decoded = np.full((top_paths, batch, steps), -1, dtype=np.int32)
    scores = np.full((batch, top_paths), -np.inf)
    for b in range(batch):
        beams = {(): (0.0, -np.inf)}
        for t in range(lengths[b]):
            y = logp[b, t]
            nxt = {}

            def add(prefix, pb, pnb):
                ob, onb = nxt.get(prefix, (-np.inf, -np.inf))
                nxt[prefix] = (np.logaddexp(ob, pb), np.logaddexp(onb, pnb))
            for prefix, (pb, pnb) in beams.items():
                total = np.logaddexp(pb, pnb)
                add(prefix, total + y[blank], -np.inf)
                for c in range(classes):
                    if c == blank:
                        continue
                    if prefix and prefix[-1] == c:
                        add(prefix, -np.inf, pnb + y[c])             # a repeat without a blank merges
                        add(prefix + (c,), -np.inf, pb + y[c])       # after a blank it is a new label
                    else:
                        add(prefix + (c,), -np.inf, total + y[c])
            ranked = sorted(nxt.items(), key=lambda kv: -np.logaddexp(*kv[1]))
            beams = dict(ranked[:beam_width])
        ranked = sorted(beams.items(), key=lambda kv: -np.logaddexp(*kv[1]))[:top_paths]
        for k, (prefix, (pb, pnb)) in enumerate(ranked):
            decoded[k, b, :len(prefix)] = prefix
            scores[b, k] = np.logaddexp(pb, pnb)
    return decoded, scores


def ctc_decode(inputs, sequence_lengths, strategy="greedy", beam_width=100, top_paths=1, merge_repeated=True,
               mask_index=0):
    """Decode CTC outputs into label sequences.

    Args:
        inputs: (batch, steps, classes) logits.
        sequence_lengths: (batch,) valid steps.
        strategy: "greedy" (best class per step) or "beam_search" (prefix beam search).
        beam_width: prefixes kept per step (beam search).
        top_paths: how many sequences to return per sample (beam search; greedy gives one).
        merge_repeated: greedy: merge repeated labels not separated by a blank.
        mask_index: the class index of the blank.

    Returns:
        (decoded, log_probs): decoded (top_paths, batch, steps) int32 labels padded with -1;
        log_probs (batch, top_paths): for greedy, the sum of the best log-probabilities per step
        (as Keras); for beam search, each sequence's log-probability.
    """
    logits = np.asarray(to_array(operand_tensor(inputs)), dtype=np.float64)
    if logits.ndim != 3:
        raise ValueError(f"ctc_decode: inputs must be (batch, steps, classes), got shape {logits.shape}")
    lengths = np.asarray(to_array(operand_tensor(sequence_lengths)), dtype=np.int64).reshape(-1)
    if lengths.shape != (logits.shape[0],) or (lengths > logits.shape[1]).any() or (lengths < 0).any():
        raise ValueError(f"ctc_decode: sequence_lengths must give one length in [0, {logits.shape[1]}] per sample")
    blank = int(mask_index)
    if not 0 <= blank < logits.shape[2]:
        raise ValueError(f"ctc_decode: mask_index {mask_index} is not a class of inputs (shape {logits.shape})")
    logp = _log_softmax(logits)
    given = to_array(operand_tensor(inputs)).dtype
    dtype = given if given.kind == "f" else np.dtype(m.config.floatx())
    if strategy == "greedy":
        decoded, scores = _greedy_decode(logits, lengths, merge_repeated, blank)
    elif strategy == "beam_search":
        decoded, scores = _beam_decode(logp, lengths, positive_int("ctc_decode", "beam_width", beam_width),
                                       positive_int("ctc_decode", "top_paths", top_paths), blank)
    else:
        raise ValueError(f"ctc_decode: strategy must be 'greedy' or 'beam_search', got {strategy!r}")
    return wrap(decoded), wrap(scores.astype(dtype))


__all__ = ["ctc_loss", "ctc_decode"]
