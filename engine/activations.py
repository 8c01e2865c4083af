"""Activation functions by name, as keras.activations."""
from engine import ops
from engine.saving.registry import register_functions


def linear(x):
    """Linear (identity) activation: returns the input unchanged.

    Args:
        x: input tensor.
    """
    return x


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """Rectified linear unit, optionally leaky, capped and with a threshold.

    With the defaults this is `max(x, 0)`. In general it returns `x` where `x >= threshold`,
    `negative_slope * (x - threshold)` elsewhere, and clips the result at `max_value`.

    Args:
        x: input tensor.
        negative_slope: slope used below the threshold (default 0.0).
        max_value: upper bound of the output, or `None` (default) for no bound.
        threshold: the value below which the output is damped (default 0.0).
    """
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        return ops.relu(x)
    y = ops.where(ops.convert_to_tensor(x) >= threshold, x, ops.multiply(negative_slope, ops.subtract(x, threshold)))
    return y if max_value is None else ops.minimum(y, max_value)


def sigmoid(x):
    """Sigmoid activation, `1 / (1 + exp(-x))`.

    Args:
        x: input tensor.
    """
    return ops.sigmoid(x)


def tanh(x):
    """Hyperbolic tangent activation.

    Args:
        x: input tensor.
    """
    return ops.tanh(x)


def softmax(x, axis=-1):
    """Softmax activation: exponentials normalized to sum to 1 along an axis.

    Args:
        x: input tensor.
        axis: the axis along which the softmax is normalized (default -1).
    """
    return ops.softmax(x, axis=axis)


def log_softmax(x, axis=-1):
    """Log-softmax activation: the logarithm of the softmax along an axis.

    Args:
        x: input tensor.
        axis: the axis along which the softmax is normalized (default -1).
    """
    return ops.log_softmax(x, axis=axis)


def elu(x, alpha=1.0):
    """Exponential linear unit: `x` if `x > 0`, else `alpha * (exp(x) - 1)`.

    Args:
        x: input tensor.
        alpha: scale of the negative part (default 1.0).
    """
    return ops.elu(x, alpha=alpha)


def selu(x):
    """Scaled exponential linear unit (SELU), the self-normalizing variant of ELU.

    Computes `scale * elu(x, alpha)` with the fixed constants `alpha ~= 1.6733` and
    `scale ~= 1.0507`. Meant to be used with the `lecun_normal` initializer.

    Args:
        x: input tensor.
    """
    return ops.selu(x)


def softplus(x):
    """Softplus activation, `log(exp(x) + 1)`.

    Args:
        x: input tensor.
    """
    return ops.softplus(x)


def softsign(x):
    """Softsign activation, `x / (abs(x) + 1)`.

    Args:
        x: input tensor.
    """
    return ops.divide(x, ops.add(ops.abs(x), 1.0))


def gelu(x, approximate=False):
    """Gaussian error linear unit, `x * P(X <= x)` with `X ~ N(0, 1)`.

    Args:
        x: input tensor.
        approximate: whether to use the tanh approximation instead of the exact erf form
            (default `False`).
    """
    return ops.gelu(x, approximate=approximate)


def silu(x):
    """Sigmoid linear unit (also called swish), `x * sigmoid(x)`.

    Args:
        x: input tensor.
    """
    return ops.silu(x)


swish = silu


def leaky_relu(x, negative_slope=0.2):
    """Leaky rectified linear unit: `x` if `x >= 0`, else `negative_slope * x`.

    Args:
        x: input tensor.
        negative_slope: slope of the negative part (default 0.2).
    """
    return ops.leaky_relu(x, negative_slope=negative_slope)


def relu6(x):
    """ReLU capped at 6, `min(max(x, 0), 6)`.

    Args:
        x: input tensor.
    """
    return ops.minimum(ops.relu(x), 6.0)


def hard_sigmoid(x):
    """Hard sigmoid, a piecewise-linear approximation of the sigmoid.

    Computes `relu6(x + 3) / 6`: 0 for `x <= -3`, 1 for `x >= 3`, linear in between.

    Args:
        x: input tensor.
    """
    return ops.hard_sigmoid(x)


def hard_silu(x):
    """Hard SiLU (also called hard swish), `x * hard_sigmoid(x)`.

    Args:
        x: input tensor.
    """
    return ops.hard_silu(x)


hard_swish = hard_silu


def exponential(x):
    """Exponential activation, `exp(x)`.

    Args:
        x: input tensor.
    """
    return ops.exp(x)


def mish(x):
    """Mish activation, `x * tanh(softplus(x))`.

    Args:
        x: input tensor.
    """
    return ops.multiply(x, ops.tanh(ops.softplus(x)))


def celu(x, alpha=1.0):
    """Continuously differentiable ELU, `max(x, 0) + min(alpha * (exp(x / alpha) - 1), 0)`.

    Args:
        x: input tensor.
        alpha: the scale of the negative part (default 1.0).
    """
    return ops.celu(x, alpha=alpha)


def glu(x, axis=-1):
    """Gated linear unit: `a * sigmoid(b)` where `a, b` are the two halves of `x` along `axis`.

    Args:
        x: input tensor; its size along `axis` must be even.
        axis: the axis split in two (default -1).
    """
    return ops.glu(x, axis=axis)


def hard_shrink(x, threshold=0.5):
    """Hard shrinkage: `x` where `|x| > threshold`, 0 elsewhere.

    Args:
        x: input tensor.
        threshold: the magnitude at or below which values become 0 (default 0.5).
    """
    return ops.hard_shrink(x, threshold=threshold)


def hard_tanh(x):
    """Hard tanh, `x` clipped to [-1, 1].

    Args:
        x: input tensor.
    """
    return ops.hard_tanh(x)


def log_sigmoid(x):
    """Logarithm of the sigmoid, `-softplus(-x)`, computed without overflow.

    Args:
        x: input tensor.
    """
    return ops.log_sigmoid(x)


def soft_shrink(x, threshold=0.5):
    """Soft shrinkage: `x - threshold` above `threshold`, `x + threshold` below `-threshold`,
    0 in between.

    Args:
        x: input tensor.
        threshold: the width of the zeroed band on each side of 0 (default 0.5).
    """
    return ops.soft_shrink(x, threshold=threshold)


def sparse_plus(x):
    """SparsePlus: 0 for `x <= -1`, `(x + 1)**2 / 4` for `-1 < x < 1`, `x` for `x >= 1`.

    Args:
        x: input tensor.
    """
    return ops.sparse_plus(x)


def sparse_sigmoid(x):
    """Sparse sigmoid: 0 for `x <= -1`, `(x + 1) / 2` for `-1 < x < 1`, 1 for `x >= 1`.

    Args:
        x: input tensor.
    """
    return ops.sparse_sigmoid(x)


def sparsemax(x, axis=-1):
    """Sparsemax: the Euclidean projection of `x` onto the probability simplex along `axis`
    (like softmax, but many outputs are exactly 0).

    Args:
        x: input tensor.
        axis: the axis the outputs sum to 1 along (default -1).
    """
    return ops.sparsemax(x, axis=axis)


def squareplus(x, b=4):
    """Squareplus, `(x + sqrt(x**2 + b)) / 2`, a smooth approximation of ReLU.

    Args:
        x: input tensor.
        b: smoothness (default 4); must be non-negative.
    """
    return ops.squareplus(x, b=b)


def tanh_shrink(x):
    """Tanh shrink, `x - tanh(x)`.

    Args:
        x: input tensor.
    """
    return ops.tanh_shrink(x)


def threshold(x, threshold, default_value):
    """`x` where `x > threshold`, `default_value` elsewhere.

    Args:
        x: input tensor.
        threshold: the value `x` must exceed to be kept.
        default_value: the value put where `x <= threshold`.
    """
    return ops.threshold(x, threshold, default_value)


_BY_NAME = {f.__name__: f for f in (linear, relu, sigmoid, tanh, softmax, log_softmax, elu, selu, softplus,
                                    softsign, gelu, silu, leaky_relu, relu6, hard_sigmoid, hard_silu,
                                    exponential, mish, celu, glu, hard_shrink, hard_tanh, log_sigmoid,
                                    soft_shrink, sparse_plus, sparse_sigmoid, sparsemax, squareplus,
                                    tanh_shrink, threshold)}
_BY_NAME.update({"swish": silu, "hard_swish": hard_silu})
register_functions("activations", _BY_NAME)  # configs name activations; saving finds them here


def get(identifier):
    """Returns the activation function for an identifier.

    Args:
        identifier: the name of an activation (e.g. `"relu"`), a serialized activation (the
            dictionary `keras.saving.serialize_keras_object` writes for a function), a callable
            (returned as is), or `None` (gives `linear`).

    Raises:
        ValueError: if `identifier` is a string that names no known activation.
    """
    if identifier is None:
        return linear
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if callable(identifier):
        return identifier
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]
    raise ValueError(f"Unknown activation {identifier!r}. Known: {', '.join(sorted(_BY_NAME))}")


def serialize(activation):
    """Returns the name under which an activation function is saved.

    Args:
        activation: an activation function. Built-in ones give their registered name; other
            callables give their `__name__`.
    """
    for name, fn in _BY_NAME.items():
        if fn is activation:
            return name
    return getattr(activation, "__name__", str(activation))


def deserialize(config, custom_objects=None):
    """Returns the activation function a serialized activation names.

    Args:
        config: an activation's name or the dictionary `serialize_keras_object` gives for it
            (built-in or registered with `register_keras_serializable`).
        custom_objects: optional `{name: function}` for activations neither built in nor
            registered.

    Raises:
        ValueError: if the config names no known activation.
    """
    from engine.saving.serialization import deserialize_keras_object
    if isinstance(config, str):
        config = {"module": "keras.activations", "class_name": "function", "config": config,
                  "registered_name": "function"}
    fn = deserialize_keras_object(config, custom_objects=custom_objects)
    if not callable(fn):
        raise ValueError(f"Could not interpret activation function identifier: {config!r:.200}")
    return fn


def fusable_name(activation):
    """The kernel name of an activation that can run in place on a layer's output, else None."""
    from engine.ops.nn import OUTPUT_DERIVED
    name = serialize(activation)
    if name == "linear":
        return None
    return name if name in OUTPUT_DERIVED and activation is _BY_NAME.get(name) else None
