"""BatchNormalization (over the channel axis, channels_last)."""

import numpy as np

from engine import constraints, initializers, regularizers
from engine.config import epsilon as fuzz_factor
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
        renorm: whether to use batch renormalization: while training, the batch-normalized values
            are corrected by `r = std_batch / std_renorm` and `d = (mean_batch - mean_renorm) /
            std_renorm` (treated as constants by the gradients) against moving statistics of
            their own, and the inference statistics are a moving mean and standard deviation
            (default `False`).
        renorm_clipping: with `renorm`, a dict with optional keys `"rmax"`, `"rmin"`, `"dmax"`
            clipping `r` to `[rmin, rmax]` and `d` to `[-dmax, dmax]`.
        renorm_momentum: with `renorm`, the momentum of the statistics `r` and `d` are computed
            against (default 0.99).
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: the tensor to normalize.
        training: whether to normalize with the batch's statistics (and update the moving ones).
        mask: optional boolean tensor of the input's shape without its channel axis: while
            training, only the unmasked positions count in the batch statistics (as Keras).
    """

    # Audited for step plans (models/plan.py): training normalises and updates the moving
    # statistics in one op (replayed on every step); inference reads the moving variables as
    # inputs. Masks, renorm and data-parallel statistics assign in Python: those calls are opaque.
    _plan_traceable = True

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", moving_mean_initializer="zeros",
                 moving_variance_initializer="ones", beta_regularizer=None, gamma_regularizer=None,
                 beta_constraint=None, gamma_constraint=None, synchronized=False, renorm=False,
                 renorm_clipping=None, renorm_momentum=0.99, **kwargs):
        kwargs.pop("fused", None)       # a Keras 2 switch of TensorFlow's kernel choice
        super().__init__(**kwargs)
        self.renorm = bool(renorm)
        self.renorm_clipping = _checked_clipping(renorm_clipping, self.name) if self.renorm else renorm_clipping
        self.renorm_momentum = float(renorm_momentum)
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
        if self.renorm:
            # Keras's order and initial values: the standard deviations start at the square root
            # of the variance initializer's values.
            stddev_init = _SquareRootOf(self.moving_variance_initializer)
            self.moving_stddev = self.add_weight(shape=shape, initializer=stddev_init, name="moving_stddev",
                                                 trainable=False)
            self.renorm_mean = self.add_weight(shape=shape, initializer=self.moving_mean_initializer,
                                               name="renorm_mean", trainable=False)
            self.renorm_stddev = self.add_weight(shape=shape, initializer=stddev_init, name="renorm_stddev",
                                                 trainable=False)
        self.built = True

    def call(self, inputs, training=None, mask=None):
        if inputs.shape[-1] != self.moving_mean.shape[0]:
            raise ValueError(f"Layer \"{self.name}\" (BatchNormalization) was built for {self.moving_mean.shape[0]} "
                             f"channels but got an input of shape {inputs.shape}")
        if mask is not None and tuple(mask.shape) != tuple(inputs.shape[:-1]):
            raise ValueError(f"Layer \"{self.name}\" (BatchNormalization): the mask must have the input's shape "
                             f"without the channel axis, {tuple(inputs.shape[:-1])}; got {tuple(mask.shape)}")
        if training and self.trainable and (mask is not None or self.renorm):
            if current_shard() is not None:
                raise ValueError(f"Layer \"{self.name}\" (BatchNormalization): masks and renorm are not supported "
                                 "in data-parallel training; train without them or on one process")
            return self._train_composed(inputs, mask)
        if training and self.trainable:
            if current_shard() is not None:    # a data-parallel step: statistics across ranks
                from engine.distribution.batch_norm import batch_norm_train
                y, mean, var = batch_norm_train(inputs, self.gamma, self.beta, self.epsilon, self.synchronized)
                self._update_moving_statistics(np.asarray(mean), np.asarray(var))
                return y
            # One op normalises and updates the moving statistics (so a step plan replays both).
            y, _, _ = norm_ops.batch_norm_train(inputs, self.gamma, self.beta, epsilon=self.epsilon,
                                                moving_mean=self.moving_mean._value,
                                                moving_variance=self.moving_variance._value, momentum=self.momentum)
            return y
        return norm_ops.batch_norm_infer(inputs, self.gamma, self.beta, self.moving_mean._value,
                                         self.moving_variance._value, epsilon=self.epsilon)

    def _train_composed(self, inputs, mask):
        """A training step with a mask (masked moments) or renorm, composed of recorded ops as
        Keras composes it: the moments are differentiated through, r and d are not."""
        from engine import ops
        axes = tuple(range(len(inputs.shape) - 1))
        if mask is None:
            mean, variance = ops.moments(inputs, axes=axes)
        else:
            weights = ops.broadcast_to(ops.expand_dims(ops.cast(mask, inputs.dtype), -1), inputs.shape)
            weighted = ops.multiply(weights, inputs)
            total = ops.add(ops.sum(weights, axis=axes), fuzz_factor())   # Keras's backend epsilon
            mean = ops.divide(ops.sum(weighted, axis=axes), total)
            variance = ops.divide(ops.sum(ops.multiply(weights, ops.square(ops.subtract(weighted, mean))), axis=axes),
                                  total)
        gamma, beta = self.gamma, self.beta
        batch_mean, batch_variance = np.asarray(mean), np.asarray(variance)
        if self.renorm:
            r, d = self._renorm_corrections(batch_mean, batch_variance)
            gamma = r if gamma is None else ops.multiply(r, gamma)
            beta = ops.multiply(d, self.gamma) if self.gamma is not None else d
            beta = beta if self.beta is None else ops.add(beta, self.beta)
            self._update_renorm_statistics(batch_mean, batch_variance)
        else:
            self._update_moving_statistics(batch_mean, batch_variance)
        return ops.batch_normalization(inputs, mean, variance, axis=-1, offset=beta, scale=gamma,
                                       epsilon=self.epsilon)

    def _update_moving_statistics(self, mean, variance):
        # The moving statistics are state, not part of the differentiated computation.
        norm_ops.update_moving_statistics(self.moving_mean._value, self.moving_variance._value, mean, variance,
                                          self.momentum)

    def _renorm_corrections(self, mean, variance):
        """r and d (constants for the gradients), clipped as renorm_clipping says."""
        dtype = mean.dtype.type
        stddev = np.sqrt(variance + dtype(self.epsilon))
        renorm_stddev = np.maximum(self.renorm_stddev._value, np.sqrt(dtype(self.epsilon)))
        r = stddev / renorm_stddev
        d = (mean - self.renorm_mean._value) / renorm_stddev
        clip = self.renorm_clipping
        if clip.get("rmin") is not None:
            r = np.maximum(r, dtype(clip["rmin"]))
        if clip.get("rmax") is not None:
            r = np.minimum(r, dtype(clip["rmax"]))
        if clip.get("dmax") is not None:
            d = np.clip(d, -dtype(clip["dmax"]), dtype(clip["dmax"]))
        return r.astype(mean.dtype), d.astype(mean.dtype)

    def _update_renorm_statistics(self, mean, variance):
        dtype = mean.dtype.type
        stddev = np.sqrt(variance + dtype(self.epsilon))
        rm, m = dtype(self.renorm_momentum), dtype(self.momentum)
        self.renorm_mean.assign(self.renorm_mean._value * rm + mean * (1 - rm))
        self.renorm_stddev.assign(self.renorm_stddev._value * rm + stddev * (1 - rm))
        self.moving_mean.assign(self.moving_mean._value * m + mean * (1 - m))
        moving_stddev = self.moving_stddev._value * m + stddev * (1 - m)
        self.moving_stddev.assign(moving_stddev)
        # The inference variance follows the standard deviation (never negative from rounding).
        self.moving_variance.assign(np.maximum(moving_stddev * moving_stddev - dtype(self.epsilon), 0))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon,
                       "center": self.center, "scale": self.scale, "synchronized": self.synchronized,
                       "renorm": self.renorm, "renorm_clipping": self.renorm_clipping,
                       "renorm_momentum": self.renorm_momentum})
        return config


class _SquareRootOf(initializers.Initializer):
    """The square roots of another initializer's values (renorm's standard deviations)."""

    def __init__(self, base):
        self.base = base

    def __call__(self, shape, dtype=None):
        return np.sqrt(np.asarray(self.base(shape, dtype=dtype)))


def _checked_clipping(clipping, name):
    clipping = dict(clipping or {})
    unknown = set(clipping) - {"rmax", "rmin", "dmax"}
    if unknown:
        raise ValueError(f"Layer {name!r} (BatchNormalization): renorm_clipping takes the keys rmax, rmin and dmax; "
                         f"got {sorted(unknown)}")
    rmax, rmin, dmax = clipping.get("rmax"), clipping.get("rmin"), clipping.get("dmax")
    if rmax is not None and rmin is not None and rmax < rmin:
        raise ValueError(f"Layer {name!r} (BatchNormalization): renorm_clipping rmax ({rmax}) must be at least "
                         f"rmin ({rmin})")
    if dmax is not None and dmax < 0:
        raise ValueError(f"Layer {name!r} (BatchNormalization): renorm_clipping dmax must be non-negative, got {dmax}")
    return clipping


register_builtins("layers", globals())  # loadable from .keras configs by class name
