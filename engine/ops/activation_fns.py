"""The activations of keras.ops.nn beyond the fused kernels of ops/nn.py (relu6, hard_sigmoid,
log_sigmoid, celu, glu, sparsemax, the shrink family, ...), each defined once by its forward
and derivative in numpy; integer inputs compute in floatx, as in Keras."""
import numpy as np

from engine.autodiff import differentiable
from engine.ops._checks import axis_arg
from engine.ops._util import to_array, wrap
from engine.ops.math import _unary, cast, convert_to_tensor
from engine.ops import math as m


def _sigmoid(x):
    # Stable on both sides: exp of a non-positive number only.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype)


def _float_tensor(x):
    x = convert_to_tensor(x)
    return cast(x, m.config.floatx()) if x.dtype.kind != "f" else x


relu6 = _unary("relu6", lambda x: np.clip(x, 0, 6), lambda x, y: (x > 0) & (x < 6), floating=True,
               doc="min(max(x, 0), 6), elementwise.")
hard_sigmoid = _unary("hard_sigmoid", lambda x: np.clip(x + 3.0, 0, 6) / 6.0,
                      lambda x, y: ((x > -3) & (x < 3)) / 6.0, floating=True,
                      doc="relu6(x + 3) / 6, elementwise: a piecewise-linear sigmoid.")
hard_silu = _unary("hard_silu", lambda x: x * np.clip(x + 3.0, 0, 6) / 6.0,
                   lambda x, y: np.where(x <= -3, 0.0, np.where(x >= 3, 1.0, (2.0 * x + 3.0) / 6.0)),
                   floating=True, doc="x * hard_sigmoid(x), elementwise (hard swish).")
hard_swish = hard_silu
log_sigmoid = _unary("log_sigmoid", lambda x: -np.logaddexp(0, -x), lambda x, y: _sigmoid(-x), floating=True,
                     doc="log(sigmoid(x)) = -softplus(-x), elementwise, computed stably.")
softsign = _unary("softsign", lambda x: x / (np.abs(x) + 1.0), lambda x, y: 1.0 / np.square(np.abs(x) + 1.0),
                  floating=True, doc="x / (|x| + 1), elementwise.")
sparse_plus = _unary("sparse_plus",
                     lambda x: np.where(x <= -1, 0.0, np.where(x >= 1, x, np.square(x + 1.0) / 4.0)),
                     lambda x, y: np.where(x <= -1, 0.0, np.where(x >= 1, 1.0, (x + 1.0) / 2.0)),
                     floating=True, doc="0 for x <= -1, x for x >= 1, (x + 1)**2 / 4 between: a smooth relu.")
sparse_sigmoid = _unary("sparse_sigmoid",
                        lambda x: np.where(x <= -1, 0.0, np.where(x >= 1, 1.0, (x + 1.0) / 2.0)),
                        lambda x, y: np.where((x > -1) & (x < 1), 0.5, 0.0),
                        floating=True, doc="0 for x <= -1, 1 for x >= 1, (x + 1) / 2 between.")
tanh_shrink = _unary("tanh_shrink", lambda x: x - np.tanh(x), lambda x, y: np.square(np.tanh(x)), floating=True,
                     doc="x - tanh(x), elementwise.")


def squareplus(x, b=4):
    """(x + sqrt(x**2 + b)) / 2, elementwise: a smooth relu.

    Args:
        x: input tensor.
        b: smoothness (non-negative; 0 gives relu).
    """
    if b < 0:
        raise ValueError(f"squareplus: b must be non-negative, got {b}")
    return _squareplus(_float_tensor(x), b=float(b))


@differentiable
def _squareplus(x, b=4.0):
    root = np.sqrt(x * x + b)
    out = ((x + root) / 2.0).astype(x.dtype)

    def vjp(g, needs):
        safe = np.where(root == 0, 1.0, root)
        return ((g * 0.5 * (1.0 + np.where(root == 0, np.sign(x), x / safe))).astype(x.dtype),)
    return out, vjp


@differentiable
def _celu(x, alpha=1.0):
    out = np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0) / alpha)).astype(x.dtype)

    def vjp(g, needs):
        return ((g * np.where(x > 0, 1.0, np.exp(np.minimum(x, 0) / alpha))).astype(x.dtype),)
    return out, vjp


def celu(x, alpha=1.0):
    """x for x > 0 and alpha * (exp(x / alpha) - 1) otherwise: a continuously differentiable elu.

    Args:
        x: input tensor.
        alpha: the scale of the negative part (must not be 0).
    """
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0")
    return _celu(_float_tensor(x), alpha=float(alpha))


@differentiable
def _hard_tanh(x):
    out = np.clip(x, -1, 1)

    def vjp(g, needs):
        return ((g * ((x > -1) & (x < 1))).astype(x.dtype),)
    return out, vjp


def hard_tanh(x):
    """x clipped to [-1, 1] (integer inputs keep their dtype, as in Keras)."""
    x = convert_to_tensor(x)
    if x.dtype == np.bool_:
        x = cast(x, "int32")
    return _hard_tanh(x) if x.dtype.kind == "f" else wrap(np.clip(to_array(x), -1, 1))


@differentiable
def _where_kept(x, keep=None, fill=0.0, shift=None):
    """x where `keep` holds (minus `shift` there, if given) and `fill` elsewhere."""
    kept = x if shift is None else x - shift
    out = np.where(keep, kept, fill).astype(x.dtype)

    def vjp(g, needs):
        return (np.where(keep, g, 0).astype(x.dtype),)
    return out, vjp


def hard_shrink(x, threshold=0.5):
    """x where |x| > threshold, 0 elsewhere."""
    x = _float_tensor(x)
    return _where_kept(x, keep=np.abs(to_array(x)) > threshold)


def soft_shrink(x, threshold=0.5):
    """x - threshold above threshold, x + threshold below -threshold, 0 between."""
    x = _float_tensor(x)
    a = to_array(x)
    keep = np.abs(a) > threshold
    return _where_kept(x, keep=keep, shift=np.where(a > 0, threshold, -threshold).astype(a.dtype))


def threshold(x, threshold, default_value):
    """x where x > threshold, `default_value` elsewhere."""
    x = convert_to_tensor(x)
    return _where_kept(x, keep=to_array(x) > threshold, fill=default_value)


@differentiable
def _glu(x, axis=-1):
    a, b = np.split(x, 2, axis=axis)
    s = _sigmoid(b)
    out = a * s

    def vjp(g, needs):
        return (np.concatenate([g * s, g * a * s * (1.0 - s)], axis=axis).astype(x.dtype),)
    return out, vjp


def glu(x, axis=-1):
    """The gated linear unit: x split in two halves a, b along `axis`, then a * sigmoid(b).

    Args:
        x: a float tensor whose `axis` has even length.
        axis: the axis to split.
    """
    x = convert_to_tensor(x)
    if x.dtype.kind != "f":
        raise ValueError(f"glu: x must be a float tensor, got dtype {x.dtype}")
    axis = axis_arg("glu", axis, x.ndim, allow_none=False, allow_tuple=False)
    if x.shape[axis] % 2:
        raise ValueError(f"glu: axis {axis} of shape {x.shape} must have even length, to split in halves")
    return _glu(x, axis=axis)


@differentiable
def _sparsemax_last(z):
    ordered = -np.sort(-z, axis=-1)
    ranks = np.arange(1, z.shape[-1] + 1, dtype=z.dtype)
    cums = np.cumsum(ordered, axis=-1)
    support = ordered - (cums - 1) / ranks > 0
    k = np.sum(support, axis=-1, keepdims=True)
    tau = (np.sum(np.where(support, cums, 0) * (ranks == k), axis=-1, keepdims=True) - 1) / k
    out = np.maximum(z - tau, 0).astype(z.dtype)

    def vjp(g, needs):
        # On the support S the Jacobian is I - 1 1^T / |S|; zero elsewhere.
        inside = out > 0
        count = np.maximum(np.sum(inside, axis=-1, keepdims=True), 1)
        mean_g = np.sum(np.where(inside, g, 0), axis=-1, keepdims=True) / count
        return (np.where(inside, g - mean_g, 0).astype(z.dtype),)
    return out, vjp


def sparsemax(x, axis=-1):
    """The Euclidean projection of x onto the probability simplex along `axis`: like softmax,
    sums to 1, but with exact zeros."""
    x = _float_tensor(x)
    axis = axis_arg("sparsemax", axis, x.ndim, allow_none=False, allow_tuple=False)
    if axis == x.ndim - 1:
        return _sparsemax_last(x)
    from engine.ops.arrays import moveaxis
    return moveaxis(_sparsemax_last(moveaxis(x, axis, -1)), -1, axis)


__all__ = ["relu6", "hard_sigmoid", "hard_silu", "hard_swish", "log_sigmoid", "softsign", "sparse_plus",
           "sparse_sigmoid", "tanh_shrink", "squareplus", "celu", "hard_tanh", "hard_shrink", "soft_shrink",
           "threshold", "glu", "sparsemax"]
