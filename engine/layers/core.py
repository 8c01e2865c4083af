"""Core layers: Dense, Activation, Dropout, Flatten, Reshape, Lambda and friends."""
import numpy as np

from engine import activations, initializers, ops
from engine.layers._layout import standardize_data_format, to_channels_last
from engine.layers._weight_settings import set_kernel_and_bias_settings
from engine.layers.base import Layer
from engine.layers.lora import LoRAMixin, LoRAWeight, refuse_quantization
from engine import random as engine_random
from engine.saving.registry import register_builtins


def _incompatible(layer, expected, shape):
    return ValueError(f"Input 0 of layer \"{layer.name}\" ({type(layer).__name__}) is incompatible with the "
                      f"layer: expected the last axis of the input to have size {expected}, but received "
                      f"an input of shape {tuple(shape)}")


class Dense(LoRAMixin, Layer):
    """Densely connected layer: `activation(dot(inputs, kernel) + bias)`.

    The kernel has shape `(input_dim, units)` and is applied to the last axis of the input, so an
    input of shape `(batch, ..., input_dim)` gives an output of shape `(batch, ..., units)`.

    Args:
        units: positive integer, the size of the output's last axis.
        activation: the activation function to apply (name or callable); `None` (default) means
            none (linear).
        use_bias: whether the layer adds a bias vector (default `True`).
        kernel_initializer: initializer of the kernel (default `"glorot_uniform"`).
        bias_initializer: initializer of the bias (default `"zeros"`).
        kernel_regularizer: optional regularizer applied to the kernel.
        bias_regularizer: optional regularizer applied to the bias.
        activity_regularizer: optional regularizer applied to the layer's output.
        kernel_constraint: optional constraint applied to the kernel after each update.
        bias_constraint: optional constraint applied to the bias after each update.
        lora_rank: optional positive integer: when set, the layer is built with LoRA enabled at
            this rank (see `enable_lora`): the kernel is frozen and the layer computes with
            `kernel + (lora_alpha / lora_rank) * lora_kernel_a @ lora_kernel_b`.
        lora_alpha: optional scale numerator of the LoRA update (default `lora_rank`).
        quantization_config: must be `None` (engine has no quantized kernels; anything else
            raises a ValueError).
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """
    _plan_traceable = True   # audited for step plans (models/plan.py): differentiable ops only

    kernel = LoRAWeight()

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, lora_rank=None,
                 lora_alpha=None, quantization_config=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        refuse_quantization("Dense", quantization_config)
        self._init_lora(lora_rank, lora_alpha)
        if not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"Dense: units must be a positive integer, got {units!r}")
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        set_kernel_and_bias_settings(self, kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
                                     kernel_constraint, bias_constraint)
        self.supports_masking = True
        # Activations whose gradient needs only the output run in place inside the dense op.
        self._fused_activation = activations.fusable_name(self.activation)

    def _check_input(self, shape):
        if not isinstance(shape, tuple) or len(shape) < 1:
            raise ValueError(f"Layer \"{self.name}\" (Dense) expects one input of rank >= 1, got {shape}")
        if self.built and shape[-1] != self.kernel.shape[0]:
            raise _incompatible(self, self.kernel.shape[0], shape)

    def build(self, input_shape):
        in_dim = input_shape[-1]
        if in_dim is None:
            raise ValueError(f"Layer \"{self.name}\" (Dense): the last axis of its input must be known, "
                             f"got input shape {tuple(input_shape)}")
        self.kernel = self.add_weight(shape=(in_dim, self.units), initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint,
                                      name="kernel")
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(shape=(self.units,), initializer=self.bias_initializer,
                                        regularizer=self.bias_regularizer, constraint=self.bias_constraint,
                                        name="bias")
        self.built = True
        self._build_lora()

    def call(self, inputs):
        kernel = self.kernel
        if inputs.shape[-1] != kernel.shape[0]:
            raise _incompatible(self, kernel.shape[0], inputs.shape)
        y = ops.nn.dense(inputs, kernel, self.bias, activation=self._fused_activation)
        if self._fused_activation is None and self.activation is not activations.linear:
            y = self.activation(y)
        return y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update({
            "units": self.units, "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "quantization_config": None, **self._lora_config(),
        })
        return config


class Activation(Layer):
    """Applies an activation function to its input.

    Args:
        activation: the activation function, as a name (e.g. `"relu"`) or a callable.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """
    _plan_traceable = True   # audited for step plans (models/plan.py): differentiable ops only

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)
        self.supports_masking = True

    def call(self, inputs):
        return self.activation(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["activation"] = activations.serialize(self.activation)
        return config


class Dropout(Layer):
    """Randomly sets input units to 0 during training, to reduce overfitting.

    While training, each element is zeroed with probability `rate` and the others are scaled by
    `1 / (1 - rate)`, so the expected sum is unchanged. At inference the input passes through.

    Args:
        rate: float in `[0, 1)`, the fraction of the input units to drop.
        noise_shape: optional shape of the binary dropout mask, broadcast against the input;
            `None` entries take the input's size. E.g. `(batch, 1, features)` drops the same
            features at every timestep.
        seed: optional integer seed for the random mask.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """

    _plan_traceable = True   # audited for step plans: its one op draws its mask itself

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.noise_shape = noise_shape
        self.seed = seed
        self._rng = engine_random.make_generator(seed) if seed is not None else None
        self.supports_masking = True

    def call(self, inputs, training=None):
        if not training or self.rate == 0:
            return inputs
        return ops.dropout(inputs, self.rate, noise_shape=self.noise_shape,
                           rng=self._rng)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "noise_shape": self.noise_shape, "seed": self.seed})
        return config


class Flatten(Layer):
    """Flattens every axis but the batch axis.

    An input of shape `(batch, d1, d2, ...)` gives an output of shape `(batch, d1 * d2 * ...)`.

    Args:
        data_format: `"channels_last"` (the input is flattened in its stored order) or
            `"channels_first"` (the channel axis, axis 1, is moved last before flattening, so the
            output's order matches a channels_last model's); `None` (default) means the
            configured image data format.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """
    _plan_traceable = True   # audited for step plans (models/plan.py): differentiable ops only

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format, "Flatten")

    def call(self, inputs):
        inputs = to_channels_last(inputs, self.data_format)
        return ops.reshape(inputs, (inputs.shape[0], -1))

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        size = None if any(d is None for d in rest) else int(np.prod(rest))
        return (input_shape[0], size)


class Reshape(Layer):
    """Reshapes its input (excluding the batch axis) to a target shape.

    Args:
        target_shape: tuple of integers, the output shape without the batch axis. One entry may be
            -1, in which case it is inferred from the input's size.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """
    _plan_traceable = True   # audited for step plans (models/plan.py): differentiable ops only

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(target_shape)

    def _resolve(self, input_shape):
        known = [d for d in input_shape[1:]]
        if any(d is None for d in known):
            return tuple(None if d == -1 else d for d in self.target_shape)
        total = int(np.prod(known))
        target = list(self.target_shape)
        if -1 in target:
            rest = int(np.prod([d for d in target if d != -1]))
            if rest == 0 or total % rest:
                raise self._error(input_shape)
            target[target.index(-1)] = total // rest
        if int(np.prod(target)) != total:
            raise self._error(input_shape)
        return tuple(target)

    def _error(self, input_shape):
        return ValueError(f"Layer \"{self.name}\" (Reshape): cannot reshape an input of shape "
                          f"{tuple(input_shape)} to target shape {self.target_shape}: the sizes differ")

    def call(self, inputs):
        return ops.reshape(inputs, (inputs.shape[0],) + self._resolve(inputs.shape))

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + self._resolve(input_shape)

    def get_config(self):
        config = super().get_config()
        config["target_shape"] = self.target_shape
        return config


class Permute(Layer):
    """Permutes the non-batch axes of its input.

    Args:
        dims: tuple of integers, the permutation of the non-batch axes, numbered from 1. E.g.
            `(2, 1)` swaps the first two non-batch axes.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """
    _plan_traceable = True   # audited for step plans (models/plan.py): differentiable ops only

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        self.dims = tuple(dims)

    def call(self, inputs):
        return ops.transpose(inputs, (0,) + self.dims)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + tuple(input_shape[d] for d in self.dims)

    def get_config(self):
        return {**super().get_config(), "dims": self.dims}


class RepeatVector(Layer):
    """Repeats its 2-D input `n` times along a new axis.

    An input of shape `(batch, features)` gives an output of shape `(batch, n, features)`.

    Args:
        n: integer, the number of repetitions.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """
    _plan_traceable = True   # audited for step plans (models/plan.py): differentiable ops only

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        self.n = int(n)

    def call(self, inputs):
        return ops.concatenate([ops.expand_dims(inputs, 1)] * self.n, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n, input_shape[1])

    def get_config(self):
        return {**super().get_config(), "n": self.n}


class Identity(Layer):
    """Layer that returns its input unchanged (and passes its mask through).

    Args:
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape


class Lambda(Layer):
    """Wraps an arbitrary function of engine ops as a layer."""

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        self.function = function
        self._output_shape = output_shape
        self.arguments = arguments or {}

    def call(self, inputs):
        return self.function(inputs, **self.arguments)

    def get_config(self):
        raise ValueError(f"Layer \"{self.name}\" (Lambda) cannot be saved: its function is Python code, and "
                         "engine never stores or loads code. Write the computation as a Layer subclass with "
                         "get_config() and register it with engine.saving.register_keras_serializable.")

    def compute_output_shape(self, input_shape):
        if self._output_shape is None:
            raise NotImplementedError
        if callable(self._output_shape):
            return self._output_shape(input_shape)
        return (input_shape[0] if isinstance(input_shape, tuple) else None,) + tuple(self._output_shape)


register_builtins("layers", globals())  # loadable from .keras configs by class name
