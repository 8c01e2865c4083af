"""Neural-network ops: activations, the fused dense op, dropout and per-sample losses.

The arithmetic runs in the fused kernels (engine._kernels.activation, .bias, .loss, .softmax);
this module defines each op once with its gradient.
"""
import numpy as np

from engine import random as engine_random
from engine.autodiff import differentiable, is_recording
from engine.ops._util import check_axis, contiguous, float_dtype_of, to_array, wrap
from engine.ops.math import gemm_2d, matmul_grads
from engine._kernels import activation as K, bias as B, loss as L, softmax as S


# name -> (forward kernel, gradient kernel, whether the gradient is computed from the output)
_ACTIVATIONS = {
    "relu": (K.relu, K.relu_grad, True),
    "sigmoid": (K.sigmoid, K.sigmoid_grad, True),
    "tanh": (K.tanh, K.tanh_grad, True),
    "elu": (K.elu, K.elu_grad, True),
    "selu": (K.selu, K.selu_grad, True),
    "softmax": (S.softmax, S.softmax_grad, True),
    "log_softmax": (S.log_softmax, S.log_softmax_grad, True),
    "softplus": (K.softplus, K.softplus_grad, False),
    "gelu": (K.gelu, K.gelu_grad, False),
    "gelu_tanh": (K.gelu_tanh, K.gelu_tanh_grad, False),
    "silu": (K.silu, K.silu_grad, False),
    "leaky_relu": (K.leaky_relu, K.leaky_relu_grad, False),
}

#: Activations whose gradient needs only their output, so they can run in place
#: on a freshly computed buffer (Dense fuses them into its own output).
OUTPUT_DERIVED = frozenset(n for n, (_, _, from_y) in _ACTIVATIONS.items() if from_y)


def apply_activation(name, x, out, params):
    """Run a named activation's forward kernel (the layers' fused activations use it too).

    Args:
        name: an activation in the kernel table (relu, sigmoid, tanh, ...).
        x: the input array; out: the output array (may be x, for in place).
        params: the activation's keyword arguments ({} for none).

    Returns:
        What the kernel returns (out).
    """
    forward = _ACTIVATIONS[name][0]
    return forward(x, out, **params) if params else forward(x, out)


def activation_gradient(name, x, y, g, params):
    """The gradient through a named activation from its input x or its output y (OUTPUT_DERIVED
    activations need only y, so x may be None for them).

    Args:
        name: the activation's name.
        x, y: its input and output arrays.
        g: the upstream gradient.
        params: the activation's keyword arguments.

    Returns:
        A new array, the gradient with respect to x.
    """
    _, grad_kernel, from_y = _ACTIVATIONS[name]
    g = contiguous(g, y.dtype)
    out = np.empty_like(y)
    a = y if from_y else x
    return grad_kernel(a, g, out, **params) if params else grad_kernel(a, g, out)


def _along_axis(name, x, axis):
    """Run a last-axis kernel (softmax) along any axis by moving that axis last."""
    ndim = np.ndim(to_array(x))
    axis = check_axis(axis, max(ndim, 1))  # out of range is an error, not another axis
    if ndim <= 1 or axis == ndim - 1:
        return _activation(x, name=name)
    from engine.ops.math import transpose
    perm = list(range(ndim))
    perm[axis], perm[-1] = perm[-1], perm[axis]
    return transpose(_activation(transpose(x, perm), name=name), perm)


@differentiable
def _activation(x, name=None, params=None):
    params = params or {}
    xc = contiguous(x, float_dtype_of(x))
    y = apply_activation(name, xc, np.empty_like(xc), params)

    def vjp(g, needs):
        return (activation_gradient(name, xc, y, g, params).astype(x.dtype, copy=False),)
    return y, vjp


def relu(x):
    """max(x, 0), elementwise (integer tensors keep their dtype, bools give int32, as Keras)."""
    kind = getattr(getattr(x, "dtype", None), "kind", "f")
    if kind in "iub":
        arr = to_array(x)
        return wrap(np.maximum(arr, 0).astype(np.int32 if kind == "b" else arr.dtype))
    return _activation(x, name="relu")


def sigmoid(x):
    """1 / (1 + exp(-x)), elementwise."""
    return _activation(x, name="sigmoid")


def tanh(x):
    """The hyperbolic tangent, elementwise."""
    return _activation(x, name="tanh")


def elu(x, alpha=1.0):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    return _activation(x, name="elu", params={"alpha": float(alpha)})


def selu(x):
    """The scaled exponential linear unit (Klambauer et al.'s constants)."""
    return _activation(x, name="selu")


def softplus(x):
    """log(1 + exp(x)), elementwise, computed stably."""
    return _activation(x, name="softplus")


def gelu(x, approximate=True):
    """x * Phi(x), Phi the standard normal CDF (its tanh approximation when approximate=True)."""
    return _activation(x, name="gelu_tanh" if approximate else "gelu")


def silu(x):
    """x * sigmoid(x), elementwise (swish)."""
    return _activation(x, name="silu")


swish = silu


def leaky_relu(x, negative_slope=0.2):
    """x for x >= 0, negative_slope * x otherwise."""
    return _activation(x, name="leaky_relu", params={"negative_slope": float(negative_slope)})


def softmax(x, axis=-1):
    return _along_axis("softmax", x, axis)


def log_softmax(x, axis=-1):
    return _along_axis("log_softmax", x, axis)


# -- dense: matmul + bias + (output-derived) activation in one op ------------------------
@differentiable
def _dense(x, kernel, bias, activation=None):
    units = kernel.shape[1]
    x2 = x.reshape(-1, x.shape[-1])
    y = gemm_2d(x2, kernel)
    if bias is not None:
        B.bias_add(y, bias, y)
    if activation is not None:
        apply_activation(activation, y, y, {})
    y = y.reshape(x.shape[:-1] + (units,))

    def vjp(g, needs):
        g2 = contiguous(g.reshape(-1, units), y.dtype)
        if activation is not None:
            g2 = activation_gradient(activation, None, y.reshape(-1, units), g2, {})
        dx, dw = matmul_grads(x2, kernel, g2, needs, gemm_2d)
        dx = None if dx is None else dx.reshape(x.shape)
        db = B.bias_grad(g2, np.empty_like(bias)) if needs[2] else None
        return dx, dw, db
    return y, vjp


def dense(x, kernel, bias=None, activation=None):
    """x @ kernel + bias, then an activation from OUTPUT_DERIVED (or None), as one op."""
    if activation is not None and activation not in OUTPUT_DERIVED:
        raise ValueError(f"dense: activation {activation!r} cannot be fused; apply it separately")
    return _dense(x, kernel, bias, activation=activation)


@differentiable
def _bias_add(x, bias):
    xc = contiguous(x, bias.dtype)
    y = B.bias_add(xc, bias, np.empty_like(xc))

    def vjp(g, needs):
        g = contiguous(g, bias.dtype)
        db = B.bias_grad(g, np.empty_like(bias)) if needs[1] else None
        return (g if needs[0] else None), db
    return y, vjp


def bias_add(x, bias):
    """x + bias, the bias broadcast along the last axis."""
    return _bias_add(x, bias)


# -- dropout -----------------------------------------------------------------------------
# The mask is drawn by the element from a counter-based generator (Philox4x32-10, csrc/philox.h):
# one 64-bit key per call, drawn inside the op from the caller's numpy generator, so a replayed
# step plan draws a new mask on every step, in the order the eager step draws them; element i is
# kept when its word is at least `threshold` (rate * 2^32).  Nothing is stored for the backward,
# which recomputes the mask from the key, and a data-parallel rank computes only its rows of the
# global batch's mask (engine.random.batch_element_offset).
@differentiable
def _dropout_random(x, rng=None, threshold=0, scale=1.0, noise_shape=None):
    """x * scale where the mask keeps it, else 0; the mask is drawn here from `rng` (None:
    engine's global generator), at noise_shape (None entries: x's size) broadcast to x's shape."""
    xc = contiguous(x, float_dtype_of(x))
    shape = xc.shape if noise_shape is None else tuple(
        d if n is None else int(n) for d, n in zip(xc.shape, noise_shape))
    # rng None: engine's global generator as it is now (set_random_seed replaces it)
    key = int((rng if rng is not None else engine_random.generator()).integers(0, 2 ** 64, dtype=np.uint64))
    offset = engine_random.batch_element_offset(shape)
    if shape == xc.shape:
        y = K.dropout_hashed(xc, key, offset, threshold, scale, np.empty_like(xc))

        def vjp(g, needs):
            g = contiguous(g, xc.dtype)
            return (K.dropout_hashed(g, key, offset, threshold, scale, np.empty_like(g)),)
        return y, vjp
    keep = K.keep_mask_hashed(key, offset, threshold, np.empty(shape, np.uint8))
    keep = np.ascontiguousarray(np.broadcast_to(keep, xc.shape))
    y = K.dropout_apply(xc, keep, scale, np.empty_like(xc))

    def vjp_broadcast(g, needs):
        g = contiguous(g, xc.dtype)
        return (K.dropout_apply(g, keep, scale, np.empty_like(g)),)
    return y, vjp_broadcast


def _drop_threshold(rate):
    """The word below which an element is dropped: P(drop) = threshold / 2^32 = rate, rounded."""
    return min(int(round(rate * 2.0 ** 32)), 2 ** 32 - 1)


def dropout(x, rate, noise_shape=None, seed=None, rng=None):
    """Zero each element with probability `rate` and scale the rest by 1 / (1 - rate).

    Args:
        x: the tensor.
        rate: the probability of dropping an element, in [0, 1).
        noise_shape: the mask's shape, broadcast to x's (None entries: x's size there).
        seed: an integer: a fresh generator from that seed on every call (the same mask);
            None: engine's global generator.
        rng: a numpy Generator to draw from (a seeded layer's own); it takes precedence over seed.
    """
    x_arr = to_array(x)
    if not 0 <= rate < 1:
        raise ValueError(f"dropout: rate must be in [0, 1), got {rate}")
    if noise_shape is not None:
        noise_shape = tuple(None if n is None else int(n) for n in noise_shape)
        if len(noise_shape) != x_arr.ndim or any(n is not None and n not in (1, d) for n, d in zip(noise_shape, x_arr.shape)):
            raise ValueError(f"dropout: noise_shape {noise_shape} does not broadcast to the input's shape {x_arr.shape}")
    if rng is None and seed is not None:
        # A generator made for this call: a step plan could not replay it (engine.random.draws).
        engine_random.note_draw()
        rng = np.random.default_rng(seed)
    return _dropout_random(x, rng=rng, threshold=_drop_threshold(rate), scale=1.0 / (1.0 - rate),
                           noise_shape=noise_shape)


# -- losses: one value per sample, computed with their gradient by fused kernels ----------
_LOSS_KERNELS = {
    "mse": L.mse,
    "mae": L.mae,
    "binary_crossentropy": L.binary_crossentropy,
    "binary_crossentropy_logits": L.binary_crossentropy_logits,
    "categorical_crossentropy": L.categorical_crossentropy,
    "categorical_crossentropy_logits": L.categorical_crossentropy_logits,
    "sparse_categorical_crossentropy": L.sparse_categorical_crossentropy,
    "sparse_categorical_crossentropy_logits": L.sparse_categorical_crossentropy_logits,
}


@differentiable
def _per_sample_loss(y_true, y_pred, kind=None):
    dtype = float_dtype_of(y_pred)
    classes = y_pred.shape[-1]
    p2 = contiguous(y_pred.reshape(-1, classes), dtype)
    if kind.startswith("sparse"):
        t2 = np.ascontiguousarray(y_true.reshape(-1), dtype=np.int64)
    else:
        t2 = contiguous(y_true.reshape(-1, classes), dtype)
    loss = np.empty(p2.shape[0], dtype=dtype)
    # The gradient comes out of the same pass; compute it only when training.
    grad = np.empty_like(p2) if is_recording() else None
    _LOSS_KERNELS[kind](t2, p2, loss, grad)

    def vjp(g, needs):
        gp = grad
        if gp is None:
            gp = np.empty_like(p2)
            _LOSS_KERNELS[kind](t2, p2, np.empty_like(loss), gp)
        gy = (gp * contiguous(g, dtype).reshape(-1, 1)).reshape(y_pred.shape)
        return None, gy.astype(y_pred.dtype, copy=False)
    return loss.reshape(y_pred.shape[:-1]), vjp


@differentiable
def _mean_loss(y_true, y_pred, kind=None):
    """The batch mean of a per-sample loss as one op (what fit computes every step)."""
    per_sample, vjp_per_sample = _per_sample_loss.raw(y_true, y_pred, kind=kind)
    count = per_sample.size
    out = np.asarray(per_sample.mean(dtype=np.float64), dtype=per_sample.dtype)

    def vjp(g, needs):
        return vjp_per_sample(np.full(per_sample.shape, g / count, dtype=per_sample.dtype), needs)
    return out, vjp


def _checked_targets(kind, y_true, y_pred_arr):
    y_true = to_array(y_true)
    if kind.startswith("sparse"):
        if y_true.ndim == y_pred_arr.ndim and y_true.shape[-1] == 1:
            y_true = y_true.reshape(y_true.shape[:-1])
        if y_true.shape != y_pred_arr.shape[:-1]:
            raise ValueError(f"{kind}: labels of shape {y_true.shape} do not match predictions of "
                             f"shape {y_pred_arr.shape} (expected labels of shape {y_pred_arr.shape[:-1]})")
        if not np.issubdtype(y_true.dtype, np.integer):
            y_true = y_true.astype(np.int64)
    elif y_true.shape != y_pred_arr.shape:
        try:
            y_true = np.broadcast_to(y_true, y_pred_arr.shape)
        except ValueError:
            raise ValueError(f"{kind}: targets of shape {y_true.shape} do not match predictions of "
                             f"shape {y_pred_arr.shape}") from None
    return y_true


def mean_loss(kind, y_true, y_pred):
    """Keras's loss reduced to the mean over the batch ("sum_over_batch_size"), as one op."""
    return _mean_loss(_checked_targets(kind, y_true, to_array(y_pred)), y_pred, kind=kind)


def per_sample_loss(kind, y_true, y_pred):
    """Keras's per-sample loss (reduced over the last axis) by kernel name, e.g. 'mse'."""
    return _per_sample_loss(_checked_targets(kind, y_true, to_array(y_pred)), y_pred, kind=kind)


def _class_axis_last(op, x, axis):
    """x with its class axis `axis` moved last (the kernels reduce over the last axis)."""
    from engine.ops.math import convert_to_tensor, transpose
    x = convert_to_tensor(x) if not hasattr(x, "ndim") else x
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for a tensor of shape {tuple(x.shape)}")
    axis %= x.ndim
    if axis == x.ndim - 1:
        return x
    return transpose(x, [a for a in range(x.ndim) if a != axis] + [axis])


def categorical_crossentropy(target, output, from_logits=False, axis=-1):
    """-sum(target * log(softmax)) over the class axis, per sample.

    Args:
        target: one-hot (or soft) targets of output's shape.
        output: probabilities, or logits with from_logits=True.
        from_logits: whether output holds logits.
        axis: the class axis.
    """
    kind = "categorical_crossentropy" + ("_logits" if from_logits else "")
    return per_sample_loss(kind, _class_axis_last(kind, target, axis), _class_axis_last(kind, output, axis))


def sparse_categorical_crossentropy(target, output, from_logits=False, axis=-1):
    """-log of the predicted probability of each integer target class, per sample.

    Args:
        target: integer class labels (output's shape without the class axis).
        output: probabilities, or logits with from_logits=True.
        from_logits: whether output holds logits.
        axis: the class axis of output.
    """
    kind = "sparse_categorical_crossentropy" + ("_logits" if from_logits else "")
    return per_sample_loss(kind, target, _class_axis_last(kind, output, axis))


def binary_crossentropy(target, output, from_logits=False):
    """Elementwise binary crossentropy (Keras's ops-level function does not reduce)."""
    from engine.ops.math import reshape
    out_arr = to_array(output)
    kind = "binary_crossentropy" + ("_logits" if from_logits else "")
    target = np.broadcast_to(to_array(target), out_arr.shape)
    per = per_sample_loss(kind, target.reshape(out_arr.shape + (1,)), reshape(output, out_arr.shape + (1,)))
    return per


softmax.__doc__ = """exp(x) / sum(exp(x)) along `axis` (default the last), computed stably."""
log_softmax.__doc__ = """x - logsumexp(x) along `axis` (default the last): the log of softmax, computed stably."""


# -- the rest of keras.ops.nn, defined in their own modules: loaded on first use, so importing the
# activations above does not compile convolutions, CTC and attention --------------------------------
from engine._lazy import lazy_attributes, lazy_table  # noqa: E402

_LAZY = lazy_table(__name__, {
    'engine.ops.activation_fns': (
        "celu glu hard_shrink hard_sigmoid hard_silu hard_swish hard_tanh log_sigmoid relu6 soft_shrink "
        "softsign sparse_plus sparse_sigmoid sparsemax squareplus tanh_shrink threshold"),
    'engine.ops.attention': "dot_product_attention",
    'engine.ops.convolution': "average_pool conv depthwise_conv max_pool separable_conv",
    'engine.ops.ctc': "ctc_decode ctc_loss",
    'engine.ops.layernorm': "layer_normalization rms_normalization",
    'engine.ops.math': "multi_hot one_hot",
    'engine.ops.normalizing': "batch_normalization moments normalize psnr",
    'engine.ops.patches': "adaptive_average_pool adaptive_max_pool depth_to_space extract_sequences fold space_to_depth unfold",
    'engine.ops.spectral': "polar",
    'engine.ops.transposed_conv': "conv_transpose",
})
__getattr__, __dir__ = lazy_attributes(globals(), _LAZY)
