"""Per-sample normalization layers: LayerNormalization, GroupNormalization, RMSNormalization,
UnitNormalization.

LayerNormalization and GroupNormalization run on the fused layer-normalization kernel
(engine.ops.layernorm); RMSNormalization and UnitNormalization are composed from the
tensor ops.
"""
import numpy as np

from engine import constraints, initializers, ops, regularizers
from engine.layers.base import Layer
from engine.ops.layernorm import layer_normalization, rms_normalization
from engine.saving.registry import register_builtins


def _axis_list(layer, axis, ndim):
    axes = axis if isinstance(axis, (list, tuple)) else [axis]
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"Layer \"{layer.name}\" ({type(layer).__name__}): axis {a} is out of range for "
                             f"an input of rank {ndim}")
    return sorted(a % ndim for a in axes)


class _ScaleShift(Layer):
    """Shared constructor arguments and weights of the normalization layers with gamma / beta."""

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(axis, (int, np.integer, list, tuple)):
            raise TypeError(f"{type(self).__name__}: axis must be an int or a list of ints, got {axis!r}")
        self.axis = list(axis) if isinstance(axis, (list, tuple)) else int(axis)
        self.epsilon = float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.supports_masking = True

    def _add_scale_shift(self, shape, gamma=True, beta=True):
        self.gamma = self.add_weight(shape=shape, initializer=self.gamma_initializer, name="gamma",
                                     regularizer=self.gamma_regularizer,
                                     constraint=self.gamma_constraint) if gamma else None
        self.beta = self.add_weight(shape=shape, initializer=self.beta_initializer, name="beta",
                                    regularizer=self.beta_regularizer,
                                    constraint=self.beta_constraint) if beta else None

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"axis": self.axis, "epsilon": self.epsilon, "center": self.center, "scale": self.scale})
        return config


class LayerNormalization(_ScaleShift):
    """Normalize each sample over `axis` to zero mean and unit variance, then scale by gamma and
    shift by beta (shaped like the normalized axes), as keras.layers.LayerNormalization.

    Args:
        axis: an int or a list of ints: the axes to normalize over (default the last).
        epsilon: added to the variance.
        center: whether beta is added.
        scale: whether gamma multiplies.
        beta_initializer, gamma_initializer, beta_regularizer, gamma_regularizer,
        beta_constraint, gamma_constraint: for the weights.
        rms_scaling: Keras's deprecated variant (scale by 1 / sqrt(var + epsilon) without centring;
            no beta).
    """
    _plan_traceable = True   # audited for step plans (models/plan.py): differentiable ops only

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, rms_scaling=False, **kwargs):
        super().__init__(axis=axis, epsilon=epsilon, center=center, scale=scale, beta_initializer=beta_initializer,
                         gamma_initializer=gamma_initializer, beta_regularizer=beta_regularizer,
                         gamma_regularizer=gamma_regularizer, beta_constraint=beta_constraint,
                         gamma_constraint=gamma_constraint, **kwargs)
        self.rms_scaling = bool(rms_scaling)

    def build(self, input_shape):
        axes = _axis_list(self, self.axis, len(input_shape))
        shape = tuple(input_shape[a] for a in axes)
        if any(d is None for d in shape):
            raise ValueError(f"Layer \"{self.name}\" (LayerNormalization): the normalized axes {axes} must have "
                             f"known sizes, got input shape {tuple(input_shape)}")
        # Keras keeps the axis it was given in the config, but stores it as a sorted list once built.
        self.axis = sorted(self.axis) if isinstance(self.axis, list) else [self.axis]
        self._axes = axes
        self._add_scale_shift(shape, gamma=self.scale or self.rms_scaling,
                              beta=self.center and not self.rms_scaling)
        self.built = True

    def call(self, inputs):
        expected = tuple(self.gamma.shape if self.gamma is not None else
                         self.beta.shape if self.beta is not None else ())
        got = tuple(inputs.shape[a] for a in self._axes) if inputs.ndim > max(self._axes) else None
        if expected and got != expected:
            raise ValueError(f"Layer \"{self.name}\" (LayerNormalization) was built for normalized axes of sizes "
                             f"{expected} but got an input of shape {inputs.shape}")
        return layer_normalization(inputs, self.gamma, self.beta, axis=self._axes, epsilon=self.epsilon,
                                   rms_scaling=self.rms_scaling)

    def get_config(self):
        config = super().get_config()
        config["rms_scaling"] = self.rms_scaling
        return config


class GroupNormalization(_ScaleShift):
    """Normalize each sample over groups of channels (and every other non-batch axis), then
    scale and shift per channel, as keras.layers.GroupNormalization.

    Args:
        groups: number of channel groups (must divide the channels); -1 means one group per
            channel (instance normalization).
        axis: the channel axis (default the last).
        epsilon, center, scale, beta_initializer, gamma_initializer, beta_regularizer,
        gamma_regularizer, beta_constraint, gamma_constraint: as in LayerNormalization.
    """

    def __init__(self, groups=32, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, **kwargs):
        if not isinstance(groups, (int, np.integer)) or (groups <= 0 and groups != -1):
            raise ValueError(f"GroupNormalization: groups must be a positive integer (or -1 for instance "
                             f"normalization), got {groups!r}")
        if not isinstance(axis, (int, np.integer)):
            raise ValueError(f"GroupNormalization: axis must be an int (the channel axis), got {axis!r}")
        super().__init__(axis=axis, epsilon=epsilon, center=center, scale=scale, beta_initializer=beta_initializer,
                         gamma_initializer=gamma_initializer, beta_regularizer=beta_regularizer,
                         gamma_regularizer=gamma_regularizer, beta_constraint=beta_constraint,
                         gamma_constraint=gamma_constraint, **kwargs)
        self.groups = int(groups)

    def build(self, input_shape):
        axis = _axis_list(self, self.axis, len(input_shape))[0]
        if axis == 0:
            raise ValueError(f"Layer \"{self.name}\" (GroupNormalization): axis must not be the batch axis")
        dim = input_shape[axis]
        if dim is None:
            raise ValueError(f"Layer \"{self.name}\" (GroupNormalization): axis {self.axis} must have a known "
                             f"size, got input shape {tuple(input_shape)}")
        if self.groups == -1:
            self.groups = dim
        if dim < self.groups or dim % self.groups:
            raise ValueError(f"Layer \"{self.name}\" (GroupNormalization): groups={self.groups} must divide the "
                             f"{dim} channels of axis {self.axis} (input shape {tuple(input_shape)})")
        self._channel_axis = axis
        self._add_scale_shift((dim,), gamma=self.scale, beta=self.center)
        self.built = True

    def call(self, inputs):
        axis, g = self._channel_axis, self.groups
        shape = tuple(inputs.shape)
        if shape[axis] != g * (shape[axis] // g) or (self.gamma is not None and shape[axis] != self.gamma.shape[0]):
            raise ValueError(f"Layer \"{self.name}\" (GroupNormalization) was built for a different channel count; "
                             f"got an input of shape {shape}")
        grouped = shape[:axis] + (g, shape[axis] // g) + shape[axis + 1:]
        x = ops.reshape(inputs, grouped)
        reduce_axes = [a for a in range(1, len(grouped)) if a != axis]
        y = ops.reshape(layer_normalization(x, axis=reduce_axes, epsilon=self.epsilon), shape)
        bshape = [1] * len(shape)
        bshape[axis] = shape[axis]
        if self.gamma is not None:
            y = ops.multiply(y, ops.reshape(self.gamma, bshape))
        if self.beta is not None:
            y = ops.add(y, ops.reshape(self.beta, bshape))
        return y

    def get_config(self):
        config = super().get_config()
        config["groups"] = self.groups
        return config


class RMSNormalization(Layer):
    """Root-mean-square normalization, x / sqrt(mean(x ** 2) + epsilon) * scale over `axis`,
    with a learned `scale` (init ones) shaped like the normalized axes, as
    keras.layers.RMSNormalization.

    Args:
        axis: an int or a list of ints (default the last).
        epsilon: added to the mean square.
    """

    def __init__(self, axis=-1, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(axis, (int, np.integer, list, tuple)):
            raise TypeError(f"RMSNormalization: axis must be an int or a list of ints, got {axis!r}")
        self.axis = list(axis) if isinstance(axis, (list, tuple)) else int(axis)
        self.epsilon = float(epsilon)
        self.supports_masking = True

    def build(self, input_shape):
        self._axes = _axis_list(self, self.axis, len(input_shape))
        self.axis = sorted(self.axis) if isinstance(self.axis, list) else [self.axis]
        self.scale = self.add_weight(shape=tuple(input_shape[a] for a in self._axes), initializer="ones",
                                     name="scale")
        self.built = True

    def call(self, inputs):
        return rms_normalization(inputs, self.scale, axis=self._axes, epsilon=self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"axis": self.axis, "epsilon": self.epsilon})
        return config


class UnitNormalization(Layer):
    """Scale each sample to unit L2 norm over `axis`: x * min(1 / ||x||, 1e12), as
    keras.layers.UnitNormalization.

    Args:
        axis: an int or a list of ints (default the last).
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(axis, (int, np.integer, list, tuple)):
            raise TypeError(f"UnitNormalization: axis must be an int or a list of ints, got {axis!r}")
        self.axis = list(axis) if isinstance(axis, (list, tuple)) else int(axis)
        self.supports_masking = True
        self.built = True

    def call(self, inputs):
        axes = tuple(_axis_list(self, self.axis, inputs.ndim))
        square_sum = ops.sum(ops.square(inputs), axis=axes, keepdims=True)
        inv = ops.minimum(ops.reciprocal(ops.sqrt(square_sum)), np.asarray(1e12, dtype=inputs.dtype))
        return ops.multiply(inputs, inv)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["axis"] = self.axis
        return config


register_builtins("layers", globals())  # loadable from .keras configs by class name
