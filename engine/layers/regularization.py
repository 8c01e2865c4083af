"""Regularization layers: Masking, SpatialDropout1D/2D/3D, GaussianNoise, GaussianDropout,
AlphaDropout, ActivityRegularization.  The noise layers act only while training."""
import numpy as np

from engine import ops, regularizers
from engine import random as engine_random
from engine.layers._layout import standardize_data_format
from engine.layers.base import Layer
from engine.layers.core import Dropout
from engine.saving.registry import register_builtins


class Masking(Layer):
    """Mask the timesteps whose features all equal mask_value (and zero them), so layers that
    take masks (RNNs, attention) skip them, as keras.layers.Masking.

    Args:
        mask_value: the padding value.
    """

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = mask_value
        self.supports_masking = True
        self.built = True

    def _keep(self, inputs):
        return np.any(np.asarray(inputs) != self.mask_value, axis=-1)

    def call(self, inputs):
        keep = self._keep(inputs)
        out = ops.multiply(inputs, keep[..., None].astype(inputs.dtype))
        out._keras_mask = ops.convert_to_tensor(keep)
        return out

    def compute_mask(self, inputs, previous_mask=None):
        return ops.convert_to_tensor(self._keep(inputs))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["mask_value"] = self.mask_value
        return config


class _SpatialDropout(Dropout):
    """Dropout of whole feature maps: one keep / drop draw per (sample, channel)."""

    _rank = None

    def __init__(self, rate, data_format=None, seed=None, name=None, dtype=None):
        super().__init__(rate, seed=seed, name=name, dtype=dtype)
        self.data_format = standardize_data_format(data_format, type(self).__name__)

    def _check_input(self, shape):
        if not isinstance(shape, tuple) or len(shape) != self._rank:
            raise ValueError(f"Input 0 of layer \"{self.name}\" ({type(self).__name__}) is incompatible with the "
                             f"layer: expected ndim={self._rank}, found ndim="
                             f"{len(shape) if isinstance(shape, tuple) else '?'}. Full shape received: {shape}")

    def call(self, inputs, training=None):
        self._check_input(tuple(inputs.shape))
        if not training or self.rate == 0:
            return inputs
        shape = list(inputs.shape)
        keep_axes = (0, len(shape) - 1) if self.data_format == "channels_last" else (0, 1)
        noise = tuple(d if i in keep_axes else 1 for i, d in enumerate(shape))
        return ops.dropout(inputs, self.rate, noise_shape=noise, rng=self._rng)

    def get_config(self):
        # Keras's spatial dropouts take only these (not trainable / noise_shape).
        config = {"name": self.name, "dtype": self.dtype, "rate": self.rate, "seed": self.seed}
        if self._rank > 3:
            config["data_format"] = self.data_format
        return config


class SpatialDropout1D(_SpatialDropout):
    """Dropout of whole channels of (batch, steps, channels) inputs, as keras.layers.SpatialDropout1D.

    Args:
        rate: fraction of the channels to drop.
        seed: seed of the draws.
    """

    _rank = 3

    def __init__(self, rate, seed=None, name=None, dtype=None):
        super().__init__(rate, data_format="channels_last", seed=seed, name=name, dtype=dtype)


class SpatialDropout2D(_SpatialDropout):
    """Dropout of whole feature maps of 4-D inputs, as keras.layers.SpatialDropout2D.

    Args:
        rate: fraction of the channels to drop.
        data_format: "channels_last" (default) or "channels_first".
        seed: seed of the draws.
    """

    _rank = 4


class SpatialDropout3D(_SpatialDropout):
    """Dropout of whole feature volumes of 5-D inputs, as keras.layers.SpatialDropout3D.

    Args:
        rate: fraction of the channels to drop.
        data_format: "channels_last" (default) or "channels_first".
        seed: seed of the draws.
    """

    _rank = 5


class _Noise(Layer):
    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self._rng = engine_random.make_generator(seed) if seed is not None else None
        self.supports_masking = True
        self.built = True

    def _generator(self):
        return self._rng or engine_random.generator()

    def compute_output_shape(self, input_shape):
        return input_shape


class GaussianNoise(_Noise):
    """Add zero-mean Gaussian noise of standard deviation `stddev` while training, as
    keras.layers.GaussianNoise.

    Args:
        stddev: the noise's standard deviation.
        seed: seed of the noise.
    """

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if stddev < 0:
            raise ValueError(f"GaussianNoise: stddev must be >= 0, got {stddev!r}")
        self.stddev = float(stddev)

    def call(self, inputs, training=False):
        if not training or self.stddev == 0:
            return inputs
        generator = self._generator()
        noise = engine_random.draw_for_batch(lambda s: generator.normal(0.0, self.stddev, s), tuple(inputs.shape))
        noise = noise.astype(inputs.dtype)
        return ops.add(inputs, noise)

    def get_config(self):
        config = super().get_config()
        config.update({"stddev": self.stddev, "seed": self.seed})
        return config


class GaussianDropout(_Noise):
    """Multiply by Gaussian noise of mean 1 and standard deviation sqrt(rate / (1 - rate)) while
    training, as keras.layers.GaussianDropout.

    Args:
        rate: the equivalent dropout rate, in [0, 1).
        seed: seed of the noise.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"GaussianDropout: rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        stddev = np.sqrt(self.rate / (1.0 - self.rate))
        generator = self._generator()
        noise = engine_random.draw_for_batch(lambda s: generator.normal(1.0, stddev, s), tuple(inputs.shape))
        noise = noise.astype(inputs.dtype)
        return ops.multiply(inputs, noise)

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config


# SELU's constants: AlphaDropout sets dropped units to SELU's negative saturation value.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


class AlphaDropout(_Noise):
    """Dropout that keeps SELU activations' mean and variance: dropped units take SELU's
    saturation value, then an affine map restores the moments, as keras.layers.AlphaDropout.

    Args:
        rate: fraction of the units to drop, in [0, 1).
        noise_shape: optional shape of the keep / drop draws (None entries take the input's).
        seed: seed of the draws.
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"AlphaDropout: rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        shape = tuple(inputs.shape) if self.noise_shape is None else tuple(
            d if n is None else n for d, n in zip(inputs.shape, self.noise_shape))
        keep = np.broadcast_to(engine_random.draw_for_batch(self._generator().random, shape) >= self.rate, inputs.shape)
        alpha_p = -_SELU_ALPHA * _SELU_SCALE
        a = ((1 - self.rate) * (1 + self.rate * alpha_p ** 2)) ** -0.5
        b = -a * alpha_p * self.rate
        x = ops.where(keep, inputs, np.asarray(alpha_p, dtype=inputs.dtype))
        return ops.add(ops.multiply(x, np.asarray(a, dtype=inputs.dtype)), np.asarray(b, dtype=inputs.dtype))

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed, "noise_shape": self.noise_shape})
        return config


class ActivityRegularization(Layer):
    """Identity that adds l1 * sum|x| + l2 * sum x^2 of its input to the losses (divided by the
    batch size, as every activity regularizer), as keras.layers.ActivityRegularization.

    Args:
        l1: the L1 factor.
        l2: the L2 factor.
    """

    def __init__(self, l1=0.0, l2=0.0, **kwargs):
        kwargs.pop("activity_regularizer", None)
        super().__init__(activity_regularizer=regularizers.L1L2(l1=l1, l2=l2), **kwargs)
        self.l1, self.l2 = float(l1), float(l2)
        self.supports_masking = True
        self.built = True

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.pop("activity_regularizer", None)
        config.update({"l1": self.l1, "l2": self.l2})
        return config


register_builtins("layers", globals())  # loadable from .keras configs by class name
