"""Batch normalization over the last axis, as one op with its gradient.

numpy's reductions are already vectorised and multi-pass here is memory-bound,
so this op stays in numpy; statistics are accumulated in float64 for float32
inputs so large batches do not lose precision.
"""
import numpy as np

from engine.autodiff import differentiable
from engine.variables import note_state_write
from engine.ops._util import contiguous
from engine._kernels import bias as K


def update_moving_statistics(moving_mean, moving_variance, mean, variance, momentum):
    """Keras's moving statistics, in place: moving = moving * momentum + batch * (1 - momentum)
    (the arrays of a BatchNormalization's variables; the write is counted as a variable's)."""
    np.copyto(moving_mean, moving_mean * momentum + mean * (1.0 - momentum), casting="unsafe")
    np.copyto(moving_variance, moving_variance * momentum + variance * (1.0 - momentum), casting="unsafe")
    note_state_write()


@differentiable
def _batch_norm_train(x, gamma, beta, moving_mean=None, moving_variance=None, epsilon=1e-3, momentum=None):
    channels = x.shape[-1]
    x2 = x.reshape(-1, channels)
    mean = x2.mean(axis=0, dtype=np.float64)
    var = x2.var(axis=0, dtype=np.float64)
    inv = (1.0 / np.sqrt(var + epsilon)).astype(x.dtype)
    xhat = (x2 - mean.astype(x.dtype)) * inv
    y = xhat * gamma if gamma is not None else xhat.copy()
    if beta is not None:
        y += beta
    y = y.reshape(x.shape)
    batch_mean, batch_var = mean.astype(x.dtype), var.astype(x.dtype)
    if momentum is not None:
        # The moving statistics are updated here, inside the op, so that a step plan replaying it
        # updates them on every step (as Keras's layer assigns them after its batch statistics).
        update_moving_statistics(moving_mean, moving_variance, batch_mean, batch_var, momentum)

    def vjp(grads, needs):
        # The batch statistics feed only the moving averages, which are not differentiated.
        g = grads[0] if grads[0] is not None else np.zeros_like(y)
        g2 = g.reshape(-1, channels)
        n = g2.shape[0]
        dgamma = (g2 * xhat).sum(axis=0, dtype=np.float64).astype(x.dtype) if needs[1] else None
        dbeta = g2.sum(axis=0, dtype=np.float64).astype(x.dtype) if needs[2] else None
        dx = None
        if needs[0]:
            dxhat = g2 * gamma if gamma is not None else g2
            s1 = dxhat.sum(axis=0, dtype=np.float64).astype(x.dtype)
            s2 = (dxhat * xhat).sum(axis=0, dtype=np.float64).astype(x.dtype)
            dx = ((inv / n) * (n * dxhat - s1 - xhat * s2)).reshape(x.shape)
        return dx, dgamma, dbeta, None, None
    return (y, batch_mean, batch_var), vjp


def batch_norm_train(x, gamma, beta, epsilon=1e-3, moving_mean=None, moving_variance=None, momentum=None):
    """Normalise with the batch's own statistics: returns (y, batch mean, biased batch variance).

    With `momentum`, the arrays moving_mean and moving_variance (a layer's variables, written in
    place) become moving * momentum + batch * (1 - momentum), inside the op."""
    if momentum is not None and (not isinstance(moving_mean, np.ndarray) or not isinstance(moving_variance, np.ndarray)):
        raise ValueError("batch_norm_train: momentum needs the moving_mean and moving_variance arrays")
    return _batch_norm_train(x, gamma, beta, moving_mean, moving_variance, epsilon=epsilon,
                             momentum=None if momentum is None else float(momentum))


@differentiable
def _batch_norm_infer(x, gamma, beta, mean, variance, epsilon=1e-3):
    scale = (1.0 / np.sqrt(variance + epsilon)).astype(x.dtype)
    if gamma is not None:
        scale = scale * gamma
    shift = -mean * scale
    if beta is not None:
        shift = shift + beta
    # One threaded pass: y = x * scale + shift per channel.
    xc = contiguous(x)
    y = np.empty_like(xc)
    K.scale_shift(xc, np.ascontiguousarray(scale, xc.dtype), np.ascontiguousarray(shift, xc.dtype), y)

    def vjp(g, needs):
        g2 = g.reshape(-1, x.shape[-1])
        dx = g * scale if needs[0] else None
        xhat = ((x.reshape(-1, x.shape[-1]) - mean) / np.sqrt(variance + epsilon)).astype(x.dtype)
        dgamma = (g2 * xhat).sum(axis=0) if needs[1] else None
        dbeta = g2.sum(axis=0) if needs[2] else None
        return dx, dgamma, dbeta, None, None
    return y, vjp


def batch_norm_infer(x, gamma, beta, mean, variance, epsilon=1e-3):
    """Normalise with fixed (moving) statistics (the statistics are inputs of the op, not
    differentiated: a step plan reads the moving variables' arrays as they are at each step)."""
    return _batch_norm_infer(x, gamma, beta, mean, variance, epsilon=epsilon)
