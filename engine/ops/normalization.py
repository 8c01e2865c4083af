"""Batch normalization over the last axis, as one op with its gradient.

numpy's reductions are already vectorised and multi-pass here is memory-bound,
so this op stays in numpy; statistics are accumulated in float64 for float32
inputs so large batches do not lose precision.
"""
import numpy as np

from engine.autodiff import differentiable
from engine.ops._util import contiguous
from engine._kernels import bias as K


@differentiable
def _batch_norm_train(x, gamma, beta, epsilon=1e-3):
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
        return dx, dgamma, dbeta
    return (y, mean.astype(x.dtype), var.astype(x.dtype)), vjp


def batch_norm_train(x, gamma, beta, epsilon=1e-3):
    """Normalise with the batch's own statistics: returns (y, batch mean, biased batch variance)."""
    return _batch_norm_train(x, gamma, beta, epsilon=epsilon)


@differentiable
def _batch_norm_infer(x, gamma, beta, mean=None, variance=None, epsilon=1e-3):
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
        return dx, dgamma, dbeta
    return y, vjp


def batch_norm_infer(x, gamma, beta, mean, variance, epsilon=1e-3):
    """Normalise with fixed (moving) statistics."""
    return _batch_norm_infer(x, gamma, beta, mean=np.asarray(mean), variance=np.asarray(variance), epsilon=epsilon)
