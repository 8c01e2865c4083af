"""Sequential: a plain stack of layers, run as a functional graph once its input shape is known."""
import numpy as np

from engine.layers.base import Layer, unique_name
from engine.layers.input_layer import InputLayer
from engine.layers.keras_tensor import KerasTensor
from engine.models.functional import Functional


class Sequential(Functional):
    """A model made of a plain stack of layers, each with one input and one output.

    Layers are added in order, through the constructor or `add()` (and removed with `pop()`). Once
    the input shape is known (from a leading `Input`, an `input_shape` given to the first layer,
    `build()`, or the first data the model is called or fit on), the stack is run as a functional
    graph.

    Args:
        layers: optional list of layers (or a leading `Input`) to add to the model.
        name: optional name of the model (default: a unique `"sequential"` name).
        trainable: whether the model's weights are updated by training (default `True`).
    """
    _plan_traceable = True   # audited for step plans (models/plan.py): differentiable ops only

    def __init__(self, layers=None, name=None, trainable=True):
        Layer.__init__(self, name=name or unique_name("sequential"), trainable=trainable)
        self._init_trainer()
        self._stack = []
        self._input_layer = None
        self._graph_ready = False
        self.built = False
        for layer in layers or []:
            self.add(layer)

    def add(self, layer):
        if isinstance(layer, KerasTensor) and isinstance(layer._keras_history[0], InputLayer):
            layer = layer._keras_history[0]
        if not isinstance(layer, Layer):
            raise ValueError(f"Sequential.add: expected a Layer, got {layer!r}")
        if isinstance(layer, InputLayer):
            if self._stack or self._input_layer is not None:
                raise ValueError("Sequential.add: an Input can only be the first element of a Sequential model")
            self._input_layer = layer
        else:
            if self._input_layer is None and not self._stack and layer._batch_input_shape is not None:
                shape = layer._batch_input_shape
                self._input_layer = InputLayer(batch_shape=shape, dtype=getattr(layer, "_input_dtype", None))
            self._stack.append(layer)
        self._graph_ready = False
        object.__setattr__(self, "_layers", list(self._stack))
        if self._input_layer is not None:
            self._build_graph()

    def pop(self):
        if not self._stack:
            raise ValueError("Sequential.pop: the model has no layers")
        layer = self._stack.pop()
        object.__setattr__(self, "_layers", list(self._stack))
        self._graph_ready = False
        if self._input_layer is not None and self._stack:
            self._build_graph()
        return layer

    def _build_graph(self):
        with self._open_name_scope():   # the layers' weights are "sequential/dense/kernel", as Keras's
            self._connect_layers()

    def _connect_layers(self):
        x = self._input_layer.output_tensor
        inputs = x
        for layer in self._stack:
            x = layer(x)
            if isinstance(x, (list, tuple)) and len(x) != 1:
                raise ValueError(f"Sequential: layer \"{layer.name}\" returns {len(x)} tensors; every layer "
                                 "of a Sequential model must have exactly one output. Use the functional API.")
        self._init_graph(inputs, x)
        object.__setattr__(self, "_layers", list(self._stack))
        self._graph_ready = True
        self.built = True

    def build(self, input_shape=None):
        if input_shape is None:
            raise ValueError("Sequential.build: pass the input shape, e.g. model.build((None, 64))")
        self._input_layer = InputLayer(batch_shape=tuple(input_shape))
        self._build_graph()

    def _ensure_graph(self, data=None):
        if self._graph_ready:
            return
        if not self._stack:
            raise ValueError(f"Sequential model \"{self.name}\" has no layers; add some with model.add(...)")
        if self._input_layer is None:
            if data is None:
                raise ValueError(f"Sequential model \"{self.name}\" does not know its input shape yet: give the "
                                 "first layer input_shape=..., start with an Input, call build(), or fit it "
                                 "on data first")
            arr = data[0] if isinstance(data, (list, tuple)) else data
            arr = arr if hasattr(arr, "shape") and hasattr(arr, "dtype") else np.asarray(arr)
            self._input_layer = InputLayer(shape=arr.shape[1:],
                                           dtype=arr.dtype if arr.dtype.kind in "iu" else None)
        self._build_graph()

    @property
    def layers(self):
        return list(self._stack)

    def _prepare_x(self, x):
        self._ensure_graph(x)
        return super()._prepare_x(x)

    @property
    def output_names(self):
        if not self.__dict__.get("_graph_ready"):
            return [self._stack[-1].name] if self.__dict__.get("_stack") else ["output"]
        return self.__dict__.get("_output_names_cache") or ["output"]

    @output_names.setter
    def output_names(self, value):
        self.__dict__["_output_names_cache"] = list(value)

    def call(self, inputs, training=None, mask=None):
        self._ensure_graph(inputs)
        return super().call(inputs, training=training, mask=mask)

    def _call_eager(self, args, kwargs, mask=None):
        # A Sequential without an Input builds its graph from the first data it is called on
        # (shape without the batch axis, and the data's integer dtype for an Embedding first).
        if not self._graph_ready and args:
            self._ensure_graph(args[0])
        return super()._call_eager(args, kwargs, mask)

    def _call_symbolic(self, args, kwargs):
        if not self._graph_ready:
            inp = args[0]
            self._input_layer = InputLayer(batch_shape=inp.shape, dtype=inp.dtype)
            self._build_graph()
        return super()._call_symbolic(args, kwargs)

    def get_config(self):
        from engine.saving.model_config import sequential_config
        return sequential_config(self)

    @classmethod
    def from_config(cls, config, custom_objects=None, safe_mode=None):
        from engine.saving.model_config import sequential_from_config
        return sequential_from_config(cls, config, custom_objects, safe_mode)

    def summary(self, *args, **kwargs):
        if not self._graph_ready and self._input_layer is not None:
            self._build_graph()
        super().summary(*args, **kwargs)
