"""Merge layers: combine several tensors into one (Add, Concatenate, Dot, ...)."""
import functools

import numpy as np

from engine import ops
from engine.layers.base import Layer
from engine.ops._util import check_axis
from engine.saving.registry import register_builtins


class _Merge(Layer):
    """Base of the elementwise merges: inputs must share a shape (up to broadcasting of 1s)."""

    _reduce = None

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def _shape_error(self, shapes, why):
        return ValueError(f"Layer \"{self.name}\" ({type(self).__name__}) {why}; got input shapes "
                          f"{', '.join(str(tuple(s)) for s in shapes)}")

    def _check_input(self, shapes):
        if not isinstance(shapes, (list, tuple)) or not shapes or not isinstance(shapes[0], tuple):
            raise ValueError(f"Layer \"{self.name}\" ({type(self).__name__}) must be called on a list of "
                             f"tensors, got {shapes}")
        if len(shapes) < 2:
            raise self._shape_error(shapes, "needs at least 2 inputs")
        self.compute_output_shape(list(shapes))

    def compute_output_shape(self, input_shape):
        out = list(input_shape[0])
        for s in input_shape[1:]:
            if len(s) != len(out):
                raise self._shape_error(input_shape, "needs inputs of the same rank")
            for i, (a, b) in enumerate(zip(out, s)):
                if a is None or b is None:
                    out[i] = a if b is None else b if a is None else a
                    if i > 0 and a is not None and b is not None and a != b:
                        raise self._shape_error(input_shape, "needs inputs of the same shape")
                elif a != b and 1 not in (a, b):
                    raise self._shape_error(input_shape, "needs inputs of the same shape")
                else:
                    out[i] = max(a, b)
        return tuple(out)

    def call(self, inputs):
        return functools.reduce(type(self)._reduce, inputs)

    def compute_mask(self, inputs, previous_mask=None):
        if previous_mask is None or all(m is None for m in previous_mask):
            return None
        masks = [m for m in previous_mask if m is not None]
        return functools.reduce(np.logical_and, masks)


class Add(_Merge):
    """Adds a list of inputs elementwise.

    Called on a list of at least two tensors of the same shape (axes of size 1 broadcast); the
    output has that shape. Masks, if any, are combined with a logical AND.

    Args:
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """
    _plan_traceable = True   # audited for step plans (models/plan.py): differentiable ops only

    _reduce = staticmethod(ops.add)


class Subtract(_Merge):
    """Subtracts two inputs elementwise: `inputs[0] - inputs[1]`.

    Called on a list of exactly two tensors of the same shape (axes of size 1 broadcast).

    Args:
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """
    _plan_traceable = True   # audited for step plans (models/plan.py): differentiable ops only

    def _check_input(self, shapes):
        super()._check_input(shapes)
        if len(shapes) != 2:
            raise self._shape_error(shapes, "needs exactly 2 inputs")

    def call(self, inputs):
        return ops.subtract(inputs[0], inputs[1])


class Multiply(_Merge):
    """Multiplies a list of inputs elementwise.

    Called on a list of at least two tensors of the same shape (axes of size 1 broadcast); the
    output has that shape. Masks, if any, are combined with a logical AND.

    Args:
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """
    _plan_traceable = True   # audited for step plans (models/plan.py): differentiable ops only

    _reduce = staticmethod(ops.multiply)


class Maximum(_Merge):
    """Takes the elementwise maximum of a list of inputs.

    Called on a list of at least two tensors of the same shape (axes of size 1 broadcast); the
    output has that shape. Masks, if any, are combined with a logical AND.

    Args:
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """
    _plan_traceable = True   # audited for step plans (models/plan.py): differentiable ops only

    _reduce = staticmethod(ops.maximum)


class Minimum(_Merge):
    """Takes the elementwise minimum of a list of inputs.

    Called on a list of at least two tensors of the same shape (axes of size 1 broadcast); the
    output has that shape. Masks, if any, are combined with a logical AND.

    Args:
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """
    _plan_traceable = True   # audited for step plans (models/plan.py): differentiable ops only

    _reduce = staticmethod(ops.minimum)


class Average(_Merge):
    """Averages a list of inputs elementwise.

    Called on a list of at least two tensors of the same shape (axes of size 1 broadcast); the
    output has that shape. Masks, if any, are combined with a logical AND.

    Args:
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """
    _plan_traceable = True   # audited for step plans (models/plan.py): differentiable ops only

    def call(self, inputs):
        return ops.multiply(functools.reduce(ops.add, inputs), 1.0 / len(inputs))


class Concatenate(Layer):
    """Concatenates a list of inputs along an axis.

    The inputs must have the same shape except along the concatenation axis.

    Args:
        axis: the axis along which to concatenate (default -1).
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """
    _plan_traceable = True   # audited for step plans (models/plan.py): differentiable ops only

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis
        self.supports_masking = True

    def _check_input(self, shapes):
        if not isinstance(shapes, (list, tuple)) or not shapes or not isinstance(shapes[0], tuple):
            raise ValueError(f"Layer \"{self.name}\" (Concatenate) must be called on a list of tensors")
        self.compute_output_shape(list(shapes))

    def _axis(self, rank, shapes):
        """self.axis as an index into inputs of this rank; ValueError when out of range."""
        try:
            return check_axis(self.axis, rank)
        except ValueError as e:
            raise ValueError(f"Layer \"{self.name}\" (Concatenate): {e}; got input shapes "
                             f"{', '.join(str(tuple(s)) for s in shapes)}") from None

    def compute_output_shape(self, input_shape):
        rank = len(input_shape[0])
        axis = self._axis(rank, input_shape)
        error = ValueError(f"Layer \"{self.name}\" (Concatenate) needs inputs whose shapes match except on "
                           f"the concatenation axis ({self.axis}); got input shapes "
                           f"{', '.join(str(tuple(s)) for s in input_shape)}")
        out = list(input_shape[0])
        for s in input_shape[1:]:
            if len(s) != rank:
                raise error
            for i in range(rank):
                if i == axis:
                    out[i] = None if out[i] is None or s[i] is None else out[i] + s[i]
                elif out[i] is None:
                    out[i] = s[i]
                elif s[i] is not None and s[i] != out[i] and i != 0:
                    raise error
        return tuple(out)

    def call(self, inputs):
        if len(inputs) == 1:
            return inputs[0]
        shapes = [tuple(x.shape) for x in inputs]
        rank = len(shapes[0])
        axis = self._axis(rank, shapes)
        if any(len(s) != rank or any(s[i] != shapes[0][i] for i in range(rank) if i != axis) for s in shapes):
            self.compute_output_shape([(None,) + s[1:] for s in shapes])
            raise ValueError(f"Layer \"{self.name}\" (Concatenate): inputs of shapes {shapes} cannot be "
                             f"concatenated on axis {self.axis}")
        return ops.concatenate(inputs, axis=self.axis)

    def compute_mask(self, inputs, previous_mask=None):
        if previous_mask is None or all(m is None for m in previous_mask):
            return None
        if self.axis % inputs[0].ndim == inputs[0].ndim - 1:
            masks = [m for m in previous_mask if m is not None]
            return functools.reduce(np.logical_and, masks)
        return None

    def get_config(self):
        config = super().get_config()
        config["axis"] = self.axis
        return config


class Dot(Layer):
    """Dot product along `axes` between two tensors of shape (batch, ...)."""

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        self.axes = axes
        self.normalize = normalize

    def _axes(self, shapes):
        axes = self.axes if isinstance(self.axes, (list, tuple)) else [self.axes, self.axes]
        try:
            return [check_axis(a, len(s), "axes entry") for a, s in zip(axes, shapes)]
        except ValueError as e:
            raise ValueError(f"Layer \"{self.name}\" (Dot): {e}; got input shapes "
                             f"{', '.join(str(tuple(s)) for s in shapes)}") from None

    def compute_output_shape(self, input_shape):
        a, b = input_shape
        ax_a, ax_b = self._axes(input_shape)
        if a[ax_a] is not None and b[ax_b] is not None and a[ax_a] != b[ax_b]:
            raise ValueError(f"Layer \"{self.name}\" (Dot): dimension {a[ax_a]} of axis {ax_a} of the first "
                             f"input does not match dimension {b[ax_b]} of axis {ax_b} of the second; input "
                             f"shapes {tuple(a)}, {tuple(b)}")
        out = [d for i, d in enumerate(a) if i != ax_a] + [d for i, d in enumerate(b) if i not in (0, ax_b)]
        return tuple(out) if len(out) > 1 else (out[0], 1)

    def get_config(self):
        return {**super().get_config(), "axes": self.axes, "normalize": self.normalize}

    def call(self, inputs):
        a, b = inputs
        if self.normalize:
            ax_a, ax_b = self._axes([a.shape, b.shape])
            a = ops.divide(a, ops.sqrt(ops.add(ops.sum(ops.square(a), axis=ax_a, keepdims=True), 1e-12)))
            b = ops.divide(b, ops.sqrt(ops.add(ops.sum(ops.square(b), axis=ax_b, keepdims=True), 1e-12)))
        ax_a, ax_b = self._axes([np.shape(a), np.shape(b)])
        # Move the contracted axes so the product is a batched matmul: (B, m, k) @ (B, k, n).
        a_moved = ops.transpose(a, [0] + [i for i in range(1, np.ndim(a)) if i != ax_a] + [ax_a])
        b_moved = ops.transpose(b, [0, ax_b] + [i for i in range(1, np.ndim(b)) if i != ax_b])
        sa, sb = np.shape(a_moved), np.shape(b_moved)
        a3 = ops.reshape(a_moved, (sa[0], -1, sa[-1]))
        b3 = ops.reshape(b_moved, (sb[0], sb[1], -1))
        out = ops.matmul(a3, b3)
        out_shape = (sa[0],) + sa[1:-1] + sb[2:]
        if len(out_shape) == 1:
            out_shape = (sa[0], 1)
        return ops.reshape(out, out_shape)


def _functional(layer_cls):
    def merge(inputs, **kwargs):
        return layer_cls(**kwargs)(inputs)
    merge.__name__ = layer_cls.__name__.lower()
    merge.__doc__ = f"Functional form of {layer_cls.__name__}: {layer_cls.__name__}(**kwargs)(inputs)."
    return merge


add = _functional(Add)
subtract = _functional(Subtract)
multiply = _functional(Multiply)
average = _functional(Average)
maximum = _functional(Maximum)
minimum = _functional(Minimum)


def concatenate(inputs, axis=-1, **kwargs):
    """Functional form of `Concatenate`: concatenates a list of tensors along an axis.

    Args:
        inputs: a list of tensors with the same shape except along `axis`.
        axis: the axis along which to concatenate (default -1).
        **kwargs: keyword arguments passed to the `Concatenate` layer.

    Returns:
        The concatenated tensor.
    """
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs, axes=-1, normalize=False, **kwargs):
    """Functional form of `Dot`: the dot product of two tensors along the given axes.

    Args:
        inputs: a list of two tensors of shape `(batch, ...)`.
        axes: an integer, or a pair of integers (one per input), naming the axes to contract
            (default -1).
        normalize: whether to L2-normalize both inputs along the contracted axes first, so the
            result is the cosine similarity (default `False`).
        **kwargs: keyword arguments passed to the `Dot` layer.

    Returns:
        The dot product tensor.
    """
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)


def symbolic_binary(kind, a, b):
    """`a + b` etc. on symbolic tensors: a merge layer, or a Lambda when one side is a constant."""
    from engine.layers.keras_tensor import KerasTensor
    from engine.layers.core import Lambda
    if isinstance(a, KerasTensor) and isinstance(b, KerasTensor):
        return {"add": Add, "subtract": Subtract, "multiply": Multiply}[kind]()([a, b])
    fn = getattr(ops, kind)
    if isinstance(a, KerasTensor):
        return Lambda(lambda x: fn(x, b), output_shape=lambda s: s)(a)
    return Lambda(lambda x: fn(a, x), output_shape=lambda s: s)(b)


register_builtins("layers", globals())  # loadable from .keras configs by class name
