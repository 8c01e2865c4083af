"""EinsumDense: a dense layer whose product is any einsum of the input with a kernel, as
keras.layers.EinsumDense (the kernel's and bias's shapes follow from the equation)."""
import re

import numpy as np

from engine import activations, initializers, ops
from engine.layers._weight_settings import set_kernel_and_bias_settings
from engine.layers.base import Layer
from engine.layers.lora import LoRAMixin, LoRAWeight, refuse_quantization

# The three forms Keras accepts: "ab,bc->ac", "...ab,bc->...ac" (free leading axes) and
# "ab...,bc->ac..." (free trailing axes); "0" stands for the ellipsis while matching.
_FORMS = ((re.compile(r"([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)$"), None),
          (re.compile(r"0([a-zA-Z]+),([a-zA-Z]+)->0([a-zA-Z]+)$"), "left"),
          (re.compile(r"([a-zA-Z]{2,})0,([a-zA-Z]+)->([a-zA-Z]+)0$"), "right"))


def _split(equation):
    """(input spec, kernel spec, output spec, which side the ellipsis frees) of an equation."""
    compact = equation.replace(" ", "").replace("...", "0")
    for pattern, elided in _FORMS:
        match = pattern.match(compact)
        if match:
            return match.group(1), match.group(2), match.group(3), elided
    raise ValueError(f"EinsumDense: equation {equation!r} is not of the form 'X,Y->Z', '...X,Y->...Z' or "
                     f"'X...,Y->Z...' (letters only)")


def kernel_fan_axes(equation):
    """(input axes, output axes) of the kernel: an axis the output names is an output unit, the
    others are input units. A VarianceScaling kernel initializer takes its fans from these."""
    _, kernel_spec, out_spec, _ = _split(equation)
    outputs = [i for i, c in enumerate(kernel_spec) if c in out_spec]
    return [i for i in range(len(kernel_spec)) if i not in outputs], outputs


def fan_aware(initializer, input_axes, output_axes):
    """The initializer to draw a kernel with, given which of its axes are input and output units:
    a variance-scaling one (Glorot, He, LeCun, ...) is told them, as Keras does; others as is."""
    if isinstance(initializer, initializers.VarianceScaling):
        return initializer.with_fan_axes(input_axes, output_axes)
    return initializer


def weight_shapes(equation, bias_axes, input_shape, output_shape):
    """(kernel shape, bias shape or None, full output shape) of an EinsumDense layer.

    Each kernel letter takes its size from the output (output_shape, the batch axis excluded) if
    the output has it, else from the input; the bias spans the output axes from the first one
    named in bias_axes to the last, with size 1 on the axes it does not name.
    """
    in_spec, kernel_spec, out_spec, elided = _split(equation)
    input_shape = tuple(input_shape)
    free = len(input_shape) - len(in_spec)
    if free < 0 or (free > 0 and elided is None):
        raise ValueError(f"EinsumDense: the equation {equation!r} describes inputs of rank {len(in_spec)}, "
                         f"got an input of shape {input_shape}")
    partial = [output_shape] if isinstance(output_shape, (int, np.integer)) else list(output_shape)
    # The full output shape: the batch axis, then the free axes where the ellipsis puts them.
    full = [input_shape[0]] + partial
    if elided == "left":
        full[1:1] = list(input_shape[1:free])
        in_pos = {c: i + free for i, c in enumerate(in_spec)}
        out_pos = {c: i + free for i, c in enumerate(out_spec)}   # after the batch and free axes
    else:
        if elided == "right":
            full += list(input_shape[len(in_spec):])
        in_pos = {c: i for i, c in enumerate(in_spec)}
        out_pos = {c: i for i, c in enumerate(out_spec)}
    if len(full) != max(out_pos.values(), default=-1) + 1 + (free if elided == "right" else 0):
        raise ValueError(f"EinsumDense: output_shape {tuple(partial)} does not fit the output '{out_spec}' of "
                         f"{equation!r} (it lists the output's axes without the batch axis)")
    for c in in_spec:
        if c in out_pos and full[out_pos[c]] is not None and full[out_pos[c]] != input_shape[in_pos[c]]:
            raise ValueError(f"EinsumDense: axis '{c}' has size {input_shape[in_pos[c]]} in the input "
                             f"{input_shape} but {full[out_pos[c]]} in output_shape {tuple(partial)}")
    for c in out_spec:
        if c not in in_spec and c not in kernel_spec:
            raise ValueError(f"EinsumDense: output axis '{c}' of {equation!r} is in neither the input nor the kernel")
    kernel = []
    for c in kernel_spec:
        if c in out_pos:
            kernel.append(full[out_pos[c]])
        elif c in in_pos:
            kernel.append(input_shape[in_pos[c]])
        else:
            raise ValueError(f"EinsumDense: kernel axis '{c}' of {equation!r} is in neither the input nor the output")
    if any(d is None for d in kernel):
        raise ValueError(f"EinsumDense: the kernel's shape {tuple(kernel)} of {equation!r} needs every axis it "
                         f"takes from the input {input_shape} to be known")
    bias = None
    if bias_axes:
        for c in bias_axes:
            if c not in out_spec:
                raise ValueError(f"EinsumDense: bias axis '{c}' is not in the output '{out_spec}' of {equation!r}")
        first = min(out_spec.index(c) for c in bias_axes)
        bias = [full[out_pos[c]] if c in bias_axes else 1 for c in out_spec[first:]]
        if elided == "right":
            bias += [1] * free
    return tuple(int(d) for d in kernel), None if bias is None else tuple(int(d) for d in bias), tuple(full)


class EinsumDense(LoRAMixin, Layer):
    """A dense layer computing `activation(einsum(equation, inputs, kernel) + bias)`.

    Example: `EinsumDense("abc,cd->abd", output_shape=(None, 64), bias_axes="d")` applies a
    (c, 64) kernel to the last axis of (batch, steps, c) inputs.

    Args:
        equation: the einsum equation `"X,Y->Z"` of the input (X), the kernel (Y) and the output
            (Z); `"...X,Y->...Z"` or `"X...,Y->Z..."` leave the axes under the ellipsis free.
        output_shape: the output's shape without the batch axis (an int for one axis); `None`
            for an axis whose size comes from the input.
        activation: the activation function (name or callable); `None` (default) means linear.
        bias_axes: the output letters the bias spans (e.g. `"d"`); `None` (default) means no bias.
        kernel_initializer: initializer of the kernel (default `"glorot_uniform"`).
        bias_initializer: initializer of the bias (default `"zeros"`).
        kernel_regularizer, bias_regularizer: optional regularizers of the kernel and the bias.
        kernel_constraint, bias_constraint: optional constraints of the kernel and the bias.
        lora_rank: optional positive integer: when set, the layer is built with LoRA enabled at
            this rank (see `enable_lora`): the kernel (..., n) is frozen and the layer computes with
            `kernel + (lora_alpha / lora_rank) * lora_kernel_a @ lora_kernel_b`.
        lora_alpha: optional scale numerator of the LoRA update (default `lora_rank`).
        gptq_unpacked_column_size: must be `None` (a GPTQ-quantized kernel's layout; engine has
            no quantized kernels, so a size raises a ValueError).
        quantization_config: must be `None` (engine has no quantized kernels; anything else
            raises a ValueError).
        **kwargs: base layer keyword arguments, such as `name`, `dtype` and `activity_regularizer`.
    """

    kernel = LoRAWeight()

    def __init__(self, equation, output_shape, activation=None, bias_axes=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, lora_rank=None, lora_alpha=None, gptq_unpacked_column_size=None,
                 quantization_config=None, **kwargs):
        super().__init__(**kwargs)
        _split(equation)            # an equation of no accepted form fails here, at construction
        self.equation = equation
        self.partial_output_shape = (output_shape,) if isinstance(output_shape, (int, np.integer)) \
            else tuple(output_shape)
        self.bias_axes = bias_axes
        self.activation = activations.get(activation)
        set_kernel_and_bias_settings(self, kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
                                     kernel_constraint, bias_constraint)
        refuse_quantization("EinsumDense", quantization_config)
        if gptq_unpacked_column_size is not None:
            raise ValueError(f"EinsumDense: gptq_unpacked_column_size={gptq_unpacked_column_size!r} describes a "
                             "GPTQ-quantized kernel, which engine does not have; leave it None")
        self._init_lora(lora_rank, lora_alpha)

    def build(self, input_shape):
        kernel_shape, bias_shape, self.full_output_shape = weight_shapes(
            self.equation, self.bias_axes, input_shape, self.partial_output_shape)
        self._input_rank = len(input_shape)
        self.kernel = self.add_weight(shape=kernel_shape,
                                      initializer=fan_aware(self.kernel_initializer, *kernel_fan_axes(self.equation)),
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint,
                                      name="kernel")
        self.bias = None if bias_shape is None else self.add_weight(
            shape=bias_shape, initializer=self.bias_initializer, regularizer=self.bias_regularizer,
            constraint=self.bias_constraint, name="bias")
        self.built = True
        self._build_lora()

    _plan_traceable = True   # audited for step plans (models/plan.py): differentiable ops only

    def call(self, inputs):
        if inputs.ndim != self._input_rank:
            raise ValueError(f"Layer \"{self.name}\" (EinsumDense) was built for inputs of rank {self._input_rank}, "
                             f"got shape {tuple(inputs.shape)}")
        y = ops.einsum(self.equation, inputs, self.kernel)
        if self.bias is not None:
            y = ops.add(y, self.bias)
        if self.activation is not activations.linear:
            y = self.activation(y)
        return y

    def compute_output_shape(self, input_shape):
        return weight_shapes(self.equation, self.bias_axes, input_shape, self.partial_output_shape)[2]

    def get_config(self):
        config = super().get_config()
        config.update({"output_shape": self.partial_output_shape, "equation": self.equation,
                       "activation": activations.serialize(self.activation), "bias_axes": self.bias_axes,
                       "quantization_config": None, **self._lora_config()})
        return config
