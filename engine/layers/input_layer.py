"""Input: the entry point of a functional model."""
import numpy as np

from engine.dtypes import standardize_dtype
from engine.layers.base import Layer, unique_name
from engine.layers.keras_tensor import KerasTensor, Node
from engine.saving.registry import register_builtins


class InputLayer(Layer):
    """The layer behind `Input`: the entry point of a functional model, holding its symbolic input.

    Usually created through `engine.Input(...)` rather than directly.

    Args:
        shape: the shape of one sample, without the batch axis, as a tuple (or an integer for a
            1-D sample); `None` entries are unknown sizes.
        batch_size: optional fixed batch size.
        dtype: the dtype of the input (default: the float type, `engine.config.floatx()`).
        sparse: `None` or `False`; engine has no sparse tensors, so `True` raises a ValueError.
        ragged: `None` or `False`; engine has no ragged tensors, so `True` raises a ValueError.
        batch_shape: the full shape including the batch axis; an alternative to `shape` and
            `batch_size`.
        input_tensor: optional existing symbolic tensor to use as this layer's output.
        optional: must be `False` (engine's models need every input; `True`, Keras's "this input
            may be None", raises a ValueError).
        name: optional name of the layer (default: a unique `"input_layer"` name).
        **kwargs: other base layer keyword arguments; the Keras 2 names `input_shape` and
            `batch_input_shape` are accepted for `shape` and `batch_shape`.
    """
    _plan_traceable = True   # audited for step plans (models/plan.py): never runs ops

    def __init__(self, shape=None, batch_size=None, dtype=None, sparse=None, ragged=None, batch_shape=None,
                 input_tensor=None, optional=False, name=None, **kwargs):
        _refuse_input_kinds(sparse, ragged, optional)
        if "input_shape" in kwargs:
            shape = kwargs.pop("input_shape")
        if "batch_input_shape" in kwargs:
            batch_shape = kwargs.pop("batch_input_shape")
        super().__init__(name=name or unique_name("input_layer"), dtype=dtype, **kwargs)
        if batch_shape is None:
            if shape is None:
                raise ValueError("Input: give `shape` (without the batch dimension), e.g. Input(shape=(32,))")
            if isinstance(shape, int):
                shape = (shape,)
            batch_shape = (batch_size,) + tuple(shape)
        self.batch_shape = tuple(None if d is None else int(d) for d in batch_shape)
        self.built = True
        if input_tensor is not None:
            self.output_tensor = input_tensor
        else:
            self.output_tensor = KerasTensor(self.batch_shape, self.dtype, name=self.name)
            Node(self, (), {}, self.output_tensor)

    def call(self, inputs):
        return inputs

    def get_config(self):
        return {"batch_shape": self.batch_shape, "dtype": self.dtype, "name": self.name}


def _refuse_input_kinds(sparse, ragged, optional):
    for name, value, what in (("sparse", sparse, "sparse tensors"), ("ragged", ragged, "ragged tensors"),
                              ("optional", optional, "optional (None) model inputs")):
        if value:
            raise ValueError(f"Input: {name}=True is not supported (engine has no {what}); pass dense arrays "
                             f"and leave {name} unset")


def Input(shape=None, batch_size=None, dtype=None, sparse=None, ragged=None, batch_shape=None, name=None, tensor=None,
          optional=False):
    """A symbolic tensor to start a functional model from; `shape` excludes the batch dimension.

    Args:
        shape: the shape of one sample, without the batch axis (`None` entries are unknown sizes).
        batch_size: optional fixed batch size.
        dtype: the dtype of the input (default `engine.config.floatx()`).
        sparse, ragged, optional: must be unset / False (engine has neither sparse nor ragged
            tensors nor optional inputs; True raises a ValueError).
        batch_shape: the full shape including the batch axis, instead of `shape` and `batch_size`.
        name: optional name of the input layer.
        tensor: optional existing symbolic tensor to wrap.

    Returns:
        The symbolic tensor (a KerasTensor).
    """
    _refuse_input_kinds(sparse, ragged, optional)
    if dtype is not None:
        dtype = standardize_dtype(dtype)
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, batch_shape=batch_shape, name=name,
                       input_tensor=tensor)
    return layer.output_tensor


register_builtins("layers", globals())  # loadable from .keras configs by class name
