"""Input: the entry point of a functional model."""
import numpy as np

from engine.dtypes import standardize_dtype
from engine.layers.base import Layer, unique_name
from engine.layers.keras_tensor import KerasTensor, Node


class InputLayer(Layer):
    def __init__(self, shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None,
                 input_tensor=None, name=None, **kwargs):
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


def Input(shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None, name=None, tensor=None):
    """A symbolic tensor to start a functional model from; `shape` excludes the batch dimension."""
    if dtype is not None:
        dtype = standardize_dtype(dtype)
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, batch_shape=batch_shape, name=name,
                       input_tensor=tensor)
    return layer.output_tensor
