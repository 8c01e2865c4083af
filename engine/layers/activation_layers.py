"""Activation layers: ReLU, LeakyReLU, PReLU, ELU, Softmax (with a mask)."""
import numpy as np

from engine import activations, constraints, initializers, ops, regularizers
from engine.layers.base import Layer
from engine.saving.registry import register_builtins


class _Elementwise(Layer):
    """An activation layer: same shape out, masks pass through."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        self.built = True

    def compute_output_shape(self, input_shape):
        return input_shape


class ReLU(_Elementwise):
    """Rectified linear unit: x for threshold <= x < max_value, max_value above it and
    negative_slope * (x - threshold) below the threshold, as keras.layers.ReLU.

    Args:
        max_value: optional float >= 0: the output's ceiling.
        negative_slope: float >= 0: the slope below the threshold.
        threshold: float >= 0: where the unit switches on.
    """

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        if max_value is not None and max_value < 0:
            raise ValueError(f"ReLU: max_value must be None or >= 0, got {max_value!r}")
        for name, value in (("negative_slope", negative_slope), ("threshold", threshold)):
            if value is None or value < 0:
                raise ValueError(f"ReLU: {name} must be a float >= 0, got {value!r}")
        self.max_value = None if max_value is None else float(max_value)
        self.negative_slope, self.threshold = float(negative_slope), float(threshold)

    def call(self, inputs):
        return activations.relu(inputs, negative_slope=self.negative_slope, max_value=self.max_value,
                                threshold=self.threshold)

    def get_config(self):
        config = super().get_config()
        config.update({"max_value": self.max_value, "negative_slope": self.negative_slope,
                       "threshold": self.threshold})
        return config


class LeakyReLU(_Elementwise):
    """x for x >= 0 and negative_slope * x below, as keras.layers.LeakyReLU.

    Args:
        negative_slope: float >= 0 (default 0.3); Keras 2's name `alpha` is accepted too.
    """

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
        super().__init__(**kwargs)
        if negative_slope is None or negative_slope < 0:
            raise ValueError(f"LeakyReLU: negative_slope must be a float >= 0, got {negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def call(self, inputs):
        return ops.leaky_relu(inputs, negative_slope=self.negative_slope)

    def get_config(self):
        config = super().get_config()
        config["negative_slope"] = self.negative_slope
        return config


class PReLU(Layer):
    """Leaky ReLU with a learned slope per element, relu(x) - alpha * relu(-x), as
    keras.layers.PReLU.

    Args:
        alpha_initializer, alpha_regularizer, alpha_constraint: for the slope weight `alpha`.
        shared_axes: axes (1-based, of the input without its batch axis counted as 0) along
            which one slope is shared, e.g. [1, 2] for one slope per channel of images.
    """

    def __init__(self, alpha_initializer="Zeros", alpha_regularizer=None, alpha_constraint=None, shared_axes=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        if shared_axes is None:
            self.shared_axes = None
        elif isinstance(shared_axes, (list, tuple)):
            self.shared_axes = list(shared_axes)
        else:
            self.shared_axes = [shared_axes]
        self.supports_masking = True

    def build(self, input_shape):
        shape = list(input_shape[1:])
        for a in self.shared_axes or []:
            if not 1 <= a < len(input_shape):
                raise ValueError(f"Layer \"{self.name}\" (PReLU): shared axis {a} is out of range for input shape "
                                 f"{tuple(input_shape)} (axes count from 1, after the batch axis)")
            shape[a - 1] = 1
        if any(d is None for d in shape):
            raise ValueError(f"Layer \"{self.name}\" (PReLU): every non-shared axis must have a known size, got "
                             f"input shape {tuple(input_shape)}")
        self.alpha = self.add_weight(shape=tuple(shape), initializer=self.alpha_initializer, name="alpha",
                                     regularizer=self.alpha_regularizer, constraint=self.alpha_constraint)
        self.built = True

    def call(self, inputs):
        return ops.subtract(ops.relu(inputs), ops.multiply(self.alpha, ops.relu(ops.negative(inputs))))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["shared_axes"] = self.shared_axes
        return config


class ELU(_Elementwise):
    """Exponential linear unit, x for x > 0 and alpha * (exp(x) - 1) below, as keras.layers.ELU.

    Args:
        alpha: the scale of the negative part.
    """

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha)

    def call(self, inputs):
        return ops.elu(inputs, alpha=self.alpha)

    def get_config(self):
        config = super().get_config()
        config["alpha"] = self.alpha
        return config


def masked_softmax(x, mask, axis):
    """Keras's masked softmax: masked entries get -1e9 before the softmax and 0 after it (so an
    axis with every entry masked gives zeros)."""
    if mask is not None:
        m = np.asarray(mask)
        if m.ndim > x.ndim or any(a not in (1, b) for a, b in zip(m.shape[::-1], x.shape[::-1])):
            raise ValueError(f"Softmax: the mask of shape {m.shape} must broadcast to the inputs' shape {x.shape}")
        visible = m if m.dtype == np.bool_ else m > 0.5
        x = ops.where(visible, x, np.asarray(-1e9, dtype=x.dtype))
    if isinstance(axis, (list, tuple)) and len(axis) > 1:
        axes = tuple(a % x.ndim for a in axis)
        shifted = ops.subtract(x, ops.stop_gradient(ops.max(x, axis=axes, keepdims=True)))
        e = ops.exp(shifted)
        y = ops.divide(e, ops.sum(e, axis=axes, keepdims=True))
    else:
        y = ops.softmax(x, axis=axis[0] if isinstance(axis, (list, tuple)) else axis)
    if mask is not None:
        y = ops.where(visible, y, np.zeros((), dtype=y.dtype))
    return y


class Softmax(_Elementwise):
    """Softmax over `axis`; with a mask, masked entries get no probability, as
    keras.layers.Softmax.

    Args:
        axis: an int or a list of ints (a joint softmax over several axes).

    Call arguments:
        inputs, mask (optional, broadcastable to the inputs: True or > 0.5 where kept).
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = list(axis) if isinstance(axis, (list, tuple)) else int(axis)

    def call(self, inputs, mask=None):
        return masked_softmax(inputs, mask, self.axis)

    def get_config(self):
        config = super().get_config()
        config["axis"] = self.axis
        return config


register_builtins("layers", globals())  # loadable from .keras configs by class name
