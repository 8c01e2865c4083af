"""BatchNormalization (over the channel axis, channels_last)."""

import numpy as np

from engine import constraints, initializers, regularizers
from engine.distribution.training import current_shard
from engine.layers.base import Layer
from engine.ops import normalization as norm_ops
from engine.ops._util import check_axis
from engine.saving.registry import register_builtins


class BatchNormalization(Layer):
    """Normalizes its input over the batch, per channel, then scales and shifts it.

    While training (`training=True` and the layer trainable), each channel is normalized with the
    mean and variance of the current batch, and the moving statistics are updated as
    `moving = moving * momentum + batch_stat * (1 - momentum)`. At inference the moving mean and
    variance are used instead. The output is `gamma * (x - mean) / sqrt(var + epsilon) + beta`.

    Args:
        axis: the channel axis to normalize per (default -1); engine supports the last axis only.
        momentum: momentum of the moving mean and variance (default 0.99).
        epsilon: small float added to the variance to avoid dividing by zero (default 1e-3).
        center: whether to add the learned offset `beta` (default `True`).
        scale: whether to multiply by the learned scale `gamma` (default `True`).
        beta_initializer: initializer of `beta` (default `"zeros"`).
        gamma_initializer: initializer of `gamma` (default `"ones"`).
        moving_mean_initializer: initializer of the moving mean (default `"zeros"`).
        moving_variance_initializer: initializer of the moving variance (default `"ones"`).
        beta_regularizer: optional regularizer applied to `beta`.
        gamma_regularizer: optional regularizer applied to `gamma`.
        beta_constraint: optional constraint applied to `beta`.
        gamma_constraint: optional constraint applied to `gamma`.
        synchronized: in data-parallel training (engine.distribution), whether to normalise with
            the statistics of the global batch (every rank's samples) instead of each rank's slice
            (default `False`); without a distribution there is one batch and it changes nothing.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", moving_mean_initializer="zeros",
                 moving_variance_initializer="ones", beta_regularizer=None, gamma_regularizer=None,
                 beta_constraint=None, gamma_constraint=None, synchronized=False, **kwargs):
        for key in ("renorm", "renorm_clipping", "renorm_momentum"):
            kwargs.pop(key, None)  # Keras 3 arguments for batch renormalization, which engine does not do
        kwargs.pop("fused", None)
        super().__init__(**kwargs)
        if axis not in (-1,) and not isinstance(axis, int):
            raise ValueError(f"BatchNormalization: axis must be an int, got {axis!r}")
        self.axis = axis
        self.synchronized = bool(synchronized)
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.center, self.scale = center, scale
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.supports_masking = True

    def build(self, input_shape):
        try:
            axis = check_axis(self.axis, len(input_shape))
        except ValueError as e:
            raise ValueError(f"Layer \"{self.name}\" (BatchNormalization): {e}; got input shape "
                             f"{tuple(input_shape)}") from None
        if axis != len(input_shape) - 1:
            raise ValueError(f"Layer \"{self.name}\" (BatchNormalization): engine normalises the last axis only "
                             f"(channels_last); got axis={self.axis} for input shape {tuple(input_shape)}")
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"Layer \"{self.name}\" (BatchNormalization): the channel axis must be known, got "
                             f"{tuple(input_shape)}")
        shape = (channels,)
        self.gamma = self.add_weight(shape=shape, initializer=self.gamma_initializer, name="gamma",
                                     regularizer=self.gamma_regularizer,
                                     constraint=self.gamma_constraint) if self.scale else None
        self.beta = self.add_weight(shape=shape, initializer=self.beta_initializer, name="beta",
                                    regularizer=self.beta_regularizer,
                                    constraint=self.beta_constraint) if self.center else None
        self.moving_mean = self.add_weight(shape=shape, initializer=self.moving_mean_initializer,
                                           name="moving_mean", trainable=False)
        self.moving_variance = self.add_weight(shape=shape, initializer=self.moving_variance_initializer,
                                               name="moving_variance", trainable=False)
        self.built = True

    def call(self, inputs, training=None):
        if inputs.shape[-1] != self.moving_mean.shape[0]:
            raise ValueError(f"Layer \"{self.name}\" (BatchNormalization) was built for {self.moving_mean.shape[0]} "
                             f"channels but got an input of shape {inputs.shape}")
        if training and self.trainable:
            if current_shard() is not None:    # a data-parallel step: statistics across ranks
                from engine.distribution.batch_norm import batch_norm_train
                y, mean, var = batch_norm_train(inputs, self.gamma, self.beta, self.epsilon, self.synchronized)
            else:
                y, mean, var = norm_ops.batch_norm_train(inputs, self.gamma, self.beta, epsilon=self.epsilon)
            m = self.momentum
            # The moving statistics are state, not part of the differentiated computation.
            self.moving_mean.assign(self.moving_mean._value * m + np.asarray(mean) * (1.0 - m))
            self.moving_variance.assign(self.moving_variance._value * m + np.asarray(var) * (1.0 - m))
            return y
        return norm_ops.batch_norm_infer(inputs, self.gamma, self.beta, self.moving_mean._value,
                                         self.moving_variance._value, epsilon=self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon,
                       "center": self.center, "scale": self.scale, "synchronized": self.synchronized})
        return config


register_builtins("layers", globals())  # loadable from .keras configs by class name
