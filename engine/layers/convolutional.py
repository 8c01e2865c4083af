"""Convolution layers: Conv1D, Conv2D, DepthwiseConv2D, SeparableConv2D."""

import numpy as np

from engine import activations, constraints, initializers, regularizers, ops
from engine.layers._layout import (from_channels_last, shape_from_channels_last, shape_to_channels_last,
                                   standardize_data_format, to_channels_last)
from engine.layers._weight_settings import set_kernel_and_bias_settings
from engine.layers.base import Layer
from engine.layers.lora import LoRAMixin, LoRAWeight
from engine.ops import convolution as conv_ops
from engine.saving.registry import register_builtins


def layer_int_tuple(v, n, name, layer, minimum=1):
    """v as n ints, each at least `minimum`; ValueError naming the layer and the argument.

    A kernel size of 0 made an all-zero output and a stride of 0 a ZeroDivisionError deep in the
    shape arithmetic: both are refused here, at construction, as Keras does.
    """
    try:
        values = conv_ops.int_tuple(v, n, name)
    except (ValueError, TypeError):
        raise ValueError(f"{type(layer).__name__}: {name} must be an int or {n} ints, got {v!r}") from None
    if min(values) < minimum:
        raise ValueError(f"{type(layer).__name__}: every value of {name} must be at least {minimum}, got {v!r}")
    return values


def _positive_int(v, name, layer):
    """v as an int >= 1; ValueError naming the layer and the argument."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{type(layer).__name__}: {name} must be a positive integer, got {v!r}")
    return int(v)


class BaseConv(LoRAMixin, Layer):
    """What the convolution layers share: arguments, weights, shape inference and the op call.

    channels_first inputs are transposed to channels_last around the kernels (and the output
    back), as Keras's backends do for a layout their kernels lack."""

    rank = 2
    depthwise = False
    # Keras's Conv1D/2D/3D take groups and LoRA; its depthwise, separable and transposed ones do not.
    _keras_groups_and_lora = False
    kernel = LoRAWeight()

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 groups=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, lora_rank=None,
                 lora_alpha=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if not self._keras_groups_and_lora:
            for name, value, default in (("groups", groups, 1), ("lora_rank", lora_rank, None),
                                         ("lora_alpha", lora_alpha, None)):
                if value != default:
                    raise TypeError(f"{type(self).__name__}: unexpected keyword argument {name!r} (Keras's "
                                    f"{type(self).__name__} has none)")
        self.data_format = standardize_data_format(data_format, type(self).__name__)
        self.groups = _positive_int(groups, "groups", self)
        if filters is not None and filters % self.groups:
            raise ValueError(f"{type(self).__name__}: filters ({filters}) must be a multiple of groups "
                             f"({self.groups})")
        self._init_lora(lora_rank, lora_alpha)
        self.filters = None if filters is None else _positive_int(filters, "filters", self)
        self.kernel_size = layer_int_tuple(kernel_size, self.rank, "kernel_size", self)
        self.strides = layer_int_tuple(strides, self.rank, "strides", self)
        self.dilation_rate = layer_int_tuple(dilation_rate, self.rank, "dilation_rate", self)
        self.padding = padding.lower()
        allowed = ("valid", "same", "causal") if self.rank == 1 else ("valid", "same")
        if self.padding not in allowed:
            raise ValueError(f"{type(self).__name__}: padding must be one of {allowed}, got {padding!r}")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"{type(self).__name__}: strides > 1 together with dilation_rate > 1 is not "
                             "supported (Keras forbids it too)")
        self.activation = activations.get(activation)
        self._fused_activation = activations.fusable_name(self.activation)
        self.use_bias = use_bias
        set_kernel_and_bias_settings(self, kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
                                     kernel_constraint, bias_constraint)

    # 1-D layers run the 2-D kernels on images of height 1.
    def _as_2d(self, values):
        return values if self.rank == 2 else (1,) + tuple(values)

    def _check_input(self, shape):
        # Called with the input's own shape (also by the base Layer, before building).
        if isinstance(shape, tuple) and len(shape) == self.rank + 2:
            shape = shape_to_channels_last(shape, self.data_format)
        self._check_last(shape)

    def _check_last(self, shape):
        """The checks of a channels_last input shape."""
        if not isinstance(shape, tuple) or len(shape) != self.rank + 2:
            raise ValueError(f"Layer \"{self.name}\" ({type(self).__name__}) expects inputs of rank {self.rank + 2} "
                             f"(batch, {'steps' if self.rank == 1 else 'rows, cols'}, channels), got {shape}")
        if shape[-1] is None:
            raise ValueError(f"Layer \"{self.name}\" ({type(self).__name__}): the channel axis of the input must be "
                             f"known, got {shape}")
        if self.built and shape[-1] != self._in_channels:
            raise ValueError(f"Layer \"{self.name}\" ({type(self).__name__}) was built for {self._in_channels} input "
                             f"channels but got an input of shape {shape}")
        if shape[-1] % self.groups:
            raise ValueError(f"Layer \"{self.name}\" ({type(self).__name__}): the input's {shape[-1]} channels "
                             f"(shape {shape}) are not a multiple of groups ({self.groups})")
        for size, k, d in zip(shape[1:-1], self.kernel_size, self.dilation_rate):
            if size is not None and self.padding == "valid" and size < (k - 1) * d + 1:
                raise ValueError(f"Layer \"{self.name}\" ({type(self).__name__}): the kernel {self.kernel_size} "
                                 f"(dilation {self.dilation_rate}) is larger than the input {shape} with "
                                 f"padding='valid'")

    def _kernel_shape(self, in_channels):
        return self.kernel_size + (in_channels // self.groups, self.filters)

    def build(self, input_shape):
        input_shape = shape_to_channels_last(input_shape, self.data_format)
        self._in_channels = int(input_shape[-1])
        self.kernel = self.add_weight(shape=self._kernel_shape(self._in_channels),
                                      initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint, name=self._kernel_name())
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(shape=(self._out_channels(),), initializer=self.bias_initializer,
                                        regularizer=self.bias_regularizer, constraint=self.bias_constraint,
                                        name="bias")
        self.built = True
        self._build_lora()

    def _kernel_name(self):
        return "kernel"

    def _out_channels(self):
        return self.filters

    def _run(self, x, kernel, bias, activation):
        if self.rank == 1:
            n, steps, channels = x.shape
            x4 = ops.reshape(x, (n, 1, steps, channels))
            k4 = ops.reshape(kernel, (1,) + tuple(kernel.shape))
            y = conv_ops.conv2d(x4, k4, bias, strides=self._as_2d(self.strides), padding=self.padding,
                                dilation_rate=self._as_2d(self.dilation_rate), activation=activation,
                                depthwise=self.depthwise)
            return ops.reshape(y, (n, y.shape[2], y.shape[3]))
        return conv_ops.conv2d(x, kernel, bias, strides=self.strides, padding=self.padding,
                               dilation_rate=self.dilation_rate, activation=activation, depthwise=self.depthwise)

    def call(self, inputs):
        self._check_input(tuple(inputs.shape))
        x = to_channels_last(inputs, self.data_format)
        y = self._run(x, self.kernel, self.bias, self._fused_activation)
        if self._fused_activation is None and self.activation is not activations.linear:
            y = self.activation(y)
        return from_channels_last(y, self.data_format)

    def compute_output_shape(self, input_shape):
        return shape_from_channels_last(self._output_shape_last(shape_to_channels_last(input_shape, self.data_format)),
                                        self.data_format)

    def _output_shape_last(self, input_shape):
        """The output shape of a channels_last input shape."""
        spatial = tuple(conv_ops.output_length(s, k, st, self.padding, d)
                        for s, k, st, d in zip(input_shape[1:-1], self.kernel_size, self.strides, self.dilation_rate))
        return (input_shape[0],) + spatial + (self._out_channels(),)

    def get_config(self):
        config = super().get_config()
        config.update({
            "filters": self.filters, "kernel_size": self.kernel_size, "strides": self.strides,
            "padding": self.padding, "data_format": self.data_format, "dilation_rate": self.dilation_rate,
            "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
        })
        if self._keras_groups_and_lora:
            config.update({"groups": self.groups, **self._lora_config()})
        return config


class Conv1D(BaseConv):
    """1-D convolution layer: convolves a kernel over the steps of a `(batch, steps, channels)`
    input.

    The kernel has shape `(kernel_size, in_channels, filters)`; the output has `filters`
    channels.

    Args:
        filters: positive integer, the number of output channels.
        kernel_size: an integer, the length of the convolution window.
        strides: an integer, the stride of the convolution (default 1).
            Strides above 1 cannot be combined with a dilation rate above 1.
        padding: `"valid"` (default; no padding), `"same"` (pads evenly so that the output size
            is `ceil(input_size / strides)`) or `"causal"` (pads on the left only, so that output
            step `t` depends only on input steps up to `t`).
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`) or `"channels_first"`
            (inputs `(batch, channels, ...)`, transposed around the kernels); `None` (default)
            means the configured image data format.
        dilation_rate: an integer, the dilation rate of the convolution (default 1).
        groups: positive integer dividing both the input channels and `filters` (default 1): the
            input channels are split into `groups` equal parts, each convolved with its own
            `filters / groups` filters (output channels in group order); the kernel then has
            `in_channels / groups` input channels.
        activation: the activation function to apply to the output (name or callable); `None`
            (default) means none (linear).
        use_bias: whether the layer adds a bias vector (default `True`).
        kernel_initializer: initializer of the kernel (default `"glorot_uniform"`).
        bias_initializer: initializer of the bias (default `"zeros"`).
        kernel_regularizer: optional regularizer applied to the kernel.
        bias_regularizer: optional regularizer applied to the bias.
        activity_regularizer: optional regularizer applied to the layer's output.
        kernel_constraint: optional constraint applied to the kernel after each update.
        bias_constraint: optional constraint applied to the bias after each update.
        lora_rank: optional positive integer: when set, the layer is built with LoRA enabled at
            this rank (see `enable_lora`): the kernel is frozen and the layer convolves with
            `kernel + (lora_alpha / lora_rank) * lora_kernel_a @ lora_kernel_b`.
        lora_alpha: optional scale numerator of the LoRA update (default `lora_rank`).
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """
    _plan_traceable = True   # audited for step plans (models/plan.py): differentiable ops only

    rank = 1
    _keras_groups_and_lora = True


class Conv2D(BaseConv):
    """2-D convolution layer: convolves a kernel over the spatial axes of its input.

    The input has shape `(batch, rows, cols, channels)` and the kernel
    `(rows, cols, in_channels, filters)`; the output has `filters` channels.

    Args:
        filters: positive integer, the number of output channels.
        kernel_size: an integer or a pair of integers, the height and width of the convolution
            window.
        strides: an integer or a pair of integers, the strides along rows and columns (default 1).
            Strides above 1 cannot be combined with a dilation rate above 1.
        padding: `"valid"` (default; no padding) or `"same"` (pads evenly so that the output size
            is `ceil(input_size / strides)`).
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`) or `"channels_first"`
            (inputs `(batch, channels, ...)`, transposed around the kernels); `None` (default)
            means the configured image data format.
        dilation_rate: an integer or a pair of integers, the dilation rate of the convolution
            (default 1).
        groups: positive integer dividing both the input channels and `filters` (default 1): the
            input channels are split into `groups` equal parts, each convolved with its own
            `filters / groups` filters (output channels in group order); the kernel then has
            `in_channels / groups` input channels.
        activation: the activation function to apply to the output (name or callable); `None`
            (default) means none (linear).
        use_bias: whether the layer adds a bias vector (default `True`).
        kernel_initializer: initializer of the kernel (default `"glorot_uniform"`).
        bias_initializer: initializer of the bias (default `"zeros"`).
        kernel_regularizer: optional regularizer applied to the kernel.
        bias_regularizer: optional regularizer applied to the bias.
        activity_regularizer: optional regularizer applied to the layer's output.
        kernel_constraint: optional constraint applied to the kernel after each update.
        bias_constraint: optional constraint applied to the bias after each update.
        lora_rank: optional positive integer: when set, the layer is built with LoRA enabled at
            this rank (see `enable_lora`): the kernel is frozen and the layer convolves with
            `kernel + (lora_alpha / lora_rank) * lora_kernel_a @ lora_kernel_b`.
        lora_alpha: optional scale numerator of the LoRA update (default `lora_rank`).
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """
    _plan_traceable = True   # audited for step plans (models/plan.py): differentiable ops only

    rank = 2
    _keras_groups_and_lora = True


class DepthwiseConv2D(BaseConv):
    """2-D depthwise convolution: convolves each input channel with its own set of filters.

    Each of the `in_channels` channels of a `(batch, rows, cols, channels)` input is convolved
    separately with `depth_multiplier` kernels, so the output has `in_channels * depth_multiplier`
    channels. The kernel has shape `(rows, cols, in_channels, depth_multiplier)`.

    Args:
        kernel_size: an integer or a pair of integers, the height and width of the window.
        strides: an integer or a pair of integers, the strides along rows and columns
            (default `(1, 1)`). Strides above 1 cannot be combined with a dilation rate above 1.
        padding: `"valid"` (default; no padding) or `"same"` (pads evenly so that the output
            size is `ceil(input_size / strides)`).
        depth_multiplier: positive integer, the number of output channels per input channel
            (default 1).
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`) or `"channels_first"`
            (inputs `(batch, channels, ...)`, transposed around the kernels); `None` (default)
            means the configured image data format.
        dilation_rate: an integer or a pair of integers, the dilation rate (default `(1, 1)`).
        activation: the activation function to apply to the output (name or callable); `None`
            (default) means none (linear).
        use_bias: whether the layer adds a bias vector (default `True`).
        depthwise_initializer: initializer of the depthwise kernel (default `"glorot_uniform"`).
        bias_initializer: initializer of the bias (default `"zeros"`).
        depthwise_regularizer: optional regularizer applied to the depthwise kernel.
        bias_regularizer: optional regularizer applied to the bias.
        activity_regularizer: optional regularizer applied to the layer's output.
        depthwise_constraint: optional constraint applied to the depthwise kernel after each update.
        bias_constraint: optional constraint applied to the bias after each update.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """

    depthwise = True

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1, data_format=None,
                 dilation_rate=(1, 1), activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(None, kernel_size, strides=strides, padding=padding, data_format=data_format,
                         dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
                         kernel_initializer=depthwise_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=depthwise_regularizer, bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer, kernel_constraint=depthwise_constraint,
                         bias_constraint=bias_constraint, **kwargs)
        self.depth_multiplier = _positive_int(depth_multiplier, "depth_multiplier", self)

    def _kernel_shape(self, in_channels):
        return self.kernel_size + (in_channels, self.depth_multiplier)

    def _kernel_name(self):
        return "kernel"

    def _out_channels(self):
        return self._in_channels * self.depth_multiplier

    def _output_shape_last(self, input_shape):
        spatial = tuple(conv_ops.output_length(s, k, st, self.padding, d)
                        for s, k, st, d in zip(input_shape[1:-1], self.kernel_size, self.strides, self.dilation_rate))
        return (input_shape[0],) + spatial + (input_shape[-1] * self.depth_multiplier,)

    def get_config(self):
        config = super().get_config()
        config.pop("filters")
        config["depthwise_initializer"] = config.pop("kernel_initializer")
        config["depth_multiplier"] = self.depth_multiplier
        config.update(_depthwise_settings(self))
        return config


class SeparableConv2D(BaseConv):
    """A depthwise convolution, then a 1x1 convolution mixing the channels (plus bias)."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), depth_multiplier=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, pointwise_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, depthwise_constraint=None,
                 pointwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding, data_format=data_format,
                         dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
                         kernel_initializer=depthwise_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=depthwise_regularizer, bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer, kernel_constraint=depthwise_constraint,
                         bias_constraint=bias_constraint, **kwargs)
        self.depth_multiplier = _positive_int(depth_multiplier, "depth_multiplier", self)
        self.pointwise_initializer = initializers.get(pointwise_initializer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)
        self.pointwise_constraint = constraints.get(pointwise_constraint)

    def build(self, input_shape):
        self._in_channels = int(shape_to_channels_last(input_shape, self.data_format)[-1])
        self.depthwise_kernel = self.add_weight(
            shape=self.kernel_size + (self._in_channels, self.depth_multiplier), initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer, constraint=self.kernel_constraint, name="depthwise_kernel")
        self.pointwise_kernel = self.add_weight(
            shape=(1, 1, self._in_channels * self.depth_multiplier, self.filters),
            initializer=self.pointwise_initializer, regularizer=self.pointwise_regularizer,
            constraint=self.pointwise_constraint, name="pointwise_kernel")
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(shape=(self.filters,), initializer=self.bias_initializer,
                                        regularizer=self.bias_regularizer, constraint=self.bias_constraint,
                                        name="bias")
        self.built = True

    def _run(self, x, kernel, bias, activation):
        depth = conv_ops.conv2d(x, self.depthwise_kernel, None, strides=self.strides, padding=self.padding,
                                dilation_rate=self.dilation_rate, depthwise=True)
        return conv_ops.conv2d(depth, self.pointwise_kernel, bias, activation=activation)

    def get_config(self):
        config = super().get_config()
        config["depthwise_initializer"] = config.pop("kernel_initializer")
        config.update({"depth_multiplier": self.depth_multiplier,
                       "pointwise_initializer": initializers.serialize(self.pointwise_initializer)})
        config.update(_depthwise_settings(self))
        return config


def _depthwise_settings(layer):
    """The depthwise kernel's regularizer and constraint, kept as kernel_* but named depthwise_* by Keras."""
    from engine.saving.serialization import serialize_keras_object
    return {"depthwise_regularizer": serialize_keras_object(layer.kernel_regularizer),
            "depthwise_constraint": serialize_keras_object(layer.kernel_constraint)}


Convolution1D, Convolution2D, SeparableConvolution2D = Conv1D, Conv2D, SeparableConv2D


register_builtins("layers", globals())  # loadable from .keras configs by class name
