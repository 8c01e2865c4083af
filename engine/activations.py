"""Activation functions by name, as keras.activations."""
from engine import ops


def linear(x):
    return x


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        return ops.relu(x)
    y = ops.where(ops.convert_to_tensor(x) >= threshold, x, ops.multiply(negative_slope, ops.subtract(x, threshold)))
    return y if max_value is None else ops.minimum(y, max_value)


def sigmoid(x):
    return ops.sigmoid(x)


def tanh(x):
    return ops.tanh(x)


def softmax(x, axis=-1):
    return ops.softmax(x, axis=axis)


def log_softmax(x, axis=-1):
    return ops.log_softmax(x, axis=axis)


def elu(x, alpha=1.0):
    return ops.elu(x, alpha=alpha)


def selu(x):
    return ops.selu(x)


def softplus(x):
    return ops.softplus(x)


def softsign(x):
    return ops.divide(x, ops.add(ops.abs(x), 1.0))


def gelu(x, approximate=False):
    return ops.gelu(x, approximate=approximate)


def silu(x):
    return ops.silu(x)


swish = silu


def leaky_relu(x, negative_slope=0.2):
    return ops.leaky_relu(x, negative_slope=negative_slope)


def relu6(x):
    return ops.minimum(ops.relu(x), 6.0)


def hard_sigmoid(x):
    return ops.clip(ops.add(ops.multiply(x, 1.0 / 6.0), 0.5), 0.0, 1.0)


def hard_silu(x):
    return ops.multiply(x, hard_sigmoid(x))


hard_swish = hard_silu


def exponential(x):
    return ops.exp(x)


def mish(x):
    return ops.multiply(x, ops.tanh(ops.softplus(x)))


_BY_NAME = {f.__name__: f for f in (linear, relu, sigmoid, tanh, softmax, log_softmax, elu, selu, softplus,
                                    softsign, gelu, silu, leaky_relu, relu6, hard_sigmoid, hard_silu,
                                    exponential, mish)}
_BY_NAME.update({"swish": silu, "hard_swish": hard_silu})


def get(identifier):
    if identifier is None:
        return linear
    if callable(identifier):
        return identifier
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]
    raise ValueError(f"Unknown activation {identifier!r}. Known: {', '.join(sorted(_BY_NAME))}")


def serialize(activation):
    for name, fn in _BY_NAME.items():
        if fn is activation:
            return name
    return getattr(activation, "__name__", str(activation))


def fusable_name(activation):
    """The kernel name of an activation that can run in place on a layer's output, else None."""
    from engine.ops.nn import OUTPUT_DERIVED
    name = serialize(activation)
    if name == "linear":
        return None
    return name if name in OUTPUT_DERIVED and activation is _BY_NAME.get(name) else None
