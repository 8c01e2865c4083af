"""The Layer base class: weights, building from input shapes, symbolic and eager calls."""
import functools
import inspect
import re
import threading

import numpy as np

from engine import autodiff, config, initializers
from engine.backend import current_path, name_scope, unique_name  # noqa: F401 (unique_name: layers, models and Input name themselves with it)
from engine import dtype_policies
from engine.dtypes import standardize_dtype
from engine.tensor import Tensor
from engine.variables import Variable
from engine.layers.keras_tensor import KerasTensor, Node, flatten, is_symbolic, map_structure
from engine.layers.input_spec import assert_input_compatibility
from engine.utils.traceback_utils import warn_user

_context = threading.local()


def snake_case(name):
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def in_training_call():
    """The `training` flag of the innermost layer or model call that set one (False outside any)."""
    return bool(getattr(_context, "training", None))


class _CallContext:
    """The outermost layer call (or model step) clears the losses its layers added in earlier calls,
    as Keras does, so `losses` holds those of the latest call only."""

    def __init__(self, layer):
        self.layer = layer

    def __enter__(self):
        self.depth = getattr(_context, "call_depth", 0)
        if self.depth == 0:
            self.layer._clear_losses()
        _context.call_depth = self.depth + 1

    def __exit__(self, *exc):
        _context.call_depth = self.depth
        return False


def call_context(layer):
    """Context manager for running `layer` (a model step): see _CallContext."""
    return _CallContext(layer)


class _TrainingScope:
    def __init__(self, training):
        self.training = training

    def __enter__(self):
        self.previous = getattr(_context, "training", None)
        _context.training = self.training

    def __exit__(self, *exc):
        _context.training = self.previous
        return False


_NUMPY_DTYPES = {}


def _scoped_build(build):
    """A subclass's build() run in the layer's name scope however it is called (the weights of
    sublayers it builds get its name in their paths)."""
    if getattr(build, "_scoped", False):
        return build

    @functools.wraps(build)
    def scoped(self, *args, **kwargs):
        with self._open_name_scope():
            return build(self, *args, **kwargs)
    scoped._scoped = True
    return scoped


def _layer_dtype(dtype, layer_name):
    """The dtype a layer computes in, from its `dtype` argument: a dtype name, a dtype policy (an
    instance, a name such as "mixed_float16", or a config dictionary), or None (the global
    policy's)."""
    if dtype is None:
        return dtype_policies.default_layer_dtype()
    if isinstance(dtype, (dtype_policies.DTypePolicy, dict)) or dtype in ("mixed_float16", "mixed_bfloat16"):
        policy = dtype_policies.get(dtype)
        return dtype_policies.check_runnable(policy, f"Layer {layer_name!r}").compute_dtype
    return standardize_dtype(dtype)


def _numpy_dtype(name):
    """np.dtype(name), cached (numpy's builtin dtypes are singletons, so `is` compares them)."""
    dtype = _NUMPY_DTYPES.get(name)
    if dtype is None:
        dtype = _NUMPY_DTYPES[name] = np.dtype(name)
    return dtype


def _is_metric(value):
    """Duck-typed (metrics sit above layers): a Metric has update_state, result and reset_state."""
    kind = type(value)
    return hasattr(kind, "update_state") and hasattr(kind, "reset_state") and hasattr(kind, "result")


def _masks_of(inputs):
    """The masks the input tensors carry: one mask, a list of them (None where absent), or None."""
    if isinstance(inputs, Tensor):
        return inputs._keras_mask
    if isinstance(inputs, (list, tuple)):
        masks = [t._keras_mask if isinstance(t, Tensor) else None for t in inputs]
        return masks if any(m is not None for m in masks) else None
    return None


def _as_tensors(outputs):
    """A call's outputs with any numpy array wrapped: every layer call returns Tensors."""
    if isinstance(outputs, Tensor):
        return outputs
    if isinstance(outputs, np.ndarray):
        return Tensor(outputs)
    if isinstance(outputs, (list, tuple)):
        return type(outputs)(_as_tensors(o) for o in outputs)
    if isinstance(outputs, dict):
        return {k: _as_tensors(v) for k, v in outputs.items()}
    return outputs


def _shape_of(x):
    if isinstance(x, KerasTensor):
        return x.shape
    if isinstance(x, Variable):
        return x.shape
    return np.shape(x)


def _shapes(structure):
    if isinstance(structure, (list, tuple)):
        return [_shapes(s) for s in structure]
    if isinstance(structure, dict):
        return {k: _shapes(v) for k, v in structure.items()}
    return tuple(_shape_of(structure))


class Layer:
    """Base class of every layer (and of Model).

    Subclasses implement `build(input_shape)` to create weights with `add_weight`,
    `call(inputs, ...)` with engine.ops, and `compute_output_shape(input_shape)`.
    """

    _own_compute_mask = False     # set per subclass by __init_subclass__
    # An InputSpec (or a list of them) that every call's inputs are checked against.
    input_spec = None

    def __init__(self, trainable=True, name=None, dtype=None, input_shape=None, batch_input_shape=None,
                 input_dim=None, batch_size=None, **kwargs):
        from engine import regularizers
        for key in ("input_length", "autocast"):
            kwargs.pop(key, None)
        activity_regularizer = kwargs.pop("activity_regularizer", None)
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s) {sorted(kwargs)}")
        object.__setattr__(self, "_layers", [])
        self._trainable_weights_list = []
        self._non_trainable_weights_list = []
        self._inbound_nodes = []
        self._losses = []
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.name = name or unique_name(snake_case(type(self).__name__))
        self._parent_path = None    # the name-scope path the layer was first built or called under
        self._trainable = trainable
        self.dtype = _layer_dtype(dtype, self.name)
        self.built = False
        self.supports_masking = False
        # Sequential reads these to create its Input (Keras 2 style `input_shape=`).
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        if batch_input_shape is not None:
            self._batch_input_shape = tuple(batch_input_shape)
        elif input_shape is not None:
            self._batch_input_shape = (batch_size,) + tuple(input_shape)
        else:
            self._batch_input_shape = None
        sig = inspect.signature(self.call).parameters
        self._call_has_training = "training" in sig
        self._call_has_mask = "mask" in sig

    # -- tracking of sublayers ---------------------------------------------------------
    def __setattr__(self, name, value):
        if not name.startswith("_") and _is_metric(value):
            # Metrics assigned as public attributes are reported by a model (Keras tracks them
            # too); the trainer keeps its own trackers under private names.
            tracked = self.__dict__.setdefault("_tracked_metrics", [])
            if not any(m is value for m in tracked):
                tracked.append(value)
        elif isinstance(value, Layer):
            if value not in self.__dict__.get("_layers", []) and value is not self:
                self.__dict__.setdefault("_layers", []).append(value)
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, Layer) for v in value):
            for v in value:
                if v not in self.__dict__.setdefault("_layers", []):
                    self._layers.append(v)
        object.__setattr__(self, name, value)

    # -- weights ---------------------------------------------------------------------------
    def add_weight(self, shape=None, initializer=None, dtype=None, trainable=True, regularizer=None,
                   constraint=None, name=None, **kwargs):
        shape = tuple(int(d) for d in (shape or ()))
        if initializer is None:
            initializer = "glorot_uniform" if np.issubdtype(np.dtype(dtype or self.dtype), np.floating) else "zeros"
        init = initializers.get(initializer)
        with self._open_name_scope():      # the path: "<enclosing layers>/<this layer>/<name>"
            var = Variable(init, shape=shape, dtype=dtype or self.dtype, trainable=trainable,
                           name=name or f"variable_{len(self._trainable_weights_list) + len(self._non_trainable_weights_list)}")
        var.regularizer = regularizer
        var.constraint = constraint
        (self._trainable_weights_list if trainable else self._non_trainable_weights_list).append(var)
        return var

    def _unique(self, variables):
        seen, out = set(), []
        for v in variables:
            if id(v) not in seen:
                seen.add(id(v))
                out.append(v)
        return out

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)
        for layer in self._layers:
            layer.trainable = value

    @property
    def weights(self):
        """Own trainable, own non-trainable, then each sublayer's weights (Keras 3's order)."""
        ws = list(self._trainable_weights_list) + list(self._non_trainable_weights_list)
        for layer in self._layers:
            ws.extend(layer.weights)
        return self._unique(ws)

    variables = weights

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        ws = list(self._trainable_weights_list)
        for layer in self._layers:
            ws.extend(layer.trainable_weights)
        return self._unique(ws)

    trainable_variables = trainable_weights

    @property
    def non_trainable_weights(self):
        if not self.trainable:
            return self.weights
        ws = list(self._non_trainable_weights_list)
        for layer in self._layers:
            ws.extend(layer.non_trainable_weights)
        return self._unique(ws)

    non_trainable_variables = non_trainable_weights

    def get_weights(self):
        return [w.numpy() for w in self.weights]

    def set_weights(self, weights):
        own = self.weights
        if len(weights) != len(own):
            raise ValueError(f"Layer {self.name!r}: set_weights got {len(weights)} arrays but the layer has "
                             f"{len(own)} weights ({', '.join(str(w.shape) for w in own)})")
        for var, value in zip(own, weights):
            value = np.asarray(value)
            if value.shape != var.shape:
                raise ValueError(f"Layer {self.name!r}: weight {var.path!r} has shape {var.shape}, "
                                 f"got an array of shape {value.shape}")
        for var, value in zip(own, weights):
            var.assign(value)

    def save_own_variables(self, store):
        """Save this layer's own state (not its sublayers') into `store`, as Keras 3 does: each of
        its own variables, trainable then non-trainable, under "0", "1", ... Override it (with
        `load_own_variables`) to save other state; `model.save` and `save_weights` call it for
        every layer and keep what it stores at the layer's path in the weights file.

        Args:
            store: a dict-like object the state is written into.
        """
        for i, v in enumerate(self._trainable_weights_list + self._non_trainable_weights_list):
            store[str(i)] = v

    def load_own_variables(self, store):
        """Restore what `save_own_variables` stored (the layer's own variables, in its order).

        Args:
            store: a dict-like object holding the saved state (numpy arrays by key).
        """
        own = self._trainable_weights_list + self._non_trainable_weights_list
        keys = list(store.keys())
        if len(keys) != len(own):
            hint = (" It has not been built: call it on an input (or build it) before loading"
                    if not own and not self.built else "")
            raise ValueError(f"Layer {self.name!r} has {len(own)} variables but the saved state holds "
                             f"{len(keys)} ({', '.join(map(str, keys[:5]))}).{hint}")
        for i, v in enumerate(own):
            value = np.asarray(store[str(i)])
            if value.shape != tuple(v.shape):
                raise ValueError(f"Layer {self.name!r}: variable {v.path!r} has shape {tuple(v.shape)}, "
                                 f"the saved value has shape {value.shape}")
            v.assign(value)

    def count_params(self):
        if not self.built:
            raise ValueError(f"Layer {self.name!r} is not built yet, so it has no weights to count. "
                             "Call it on an input (or build it) first.")
        return int(sum(int(np.prod(w.shape)) for w in self.weights))

    def _flatten_layers(self):
        """This layer and every layer inside it, each once, parents before children."""
        out, seen, stack = [], set(), [self]
        while stack:
            layer = stack.pop()
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            out.append(layer)
            stack.extend(reversed(layer._layers))
        return out

    @staticmethod
    def _losses_of(layers, weights):
        """The losses the layers added in their latest call (add_loss, activity regularizers), then
        the penalties of the given weights' regularizers, computed from their current values."""
        from engine import regularizers
        out = [loss for layer in layers for loss in layer._losses]
        for w in weights:
            if getattr(w, "regularizer", None) is not None:
                out.append(regularizers.get(w.regularizer)(w))
        return out

    @property
    def losses(self):
        """Losses of this layer and its sublayers: those added by their latest call, then the
        regularization of their trainable weights (as in Keras, a frozen layer's regularizers do not
        count)."""
        return Layer._losses_of(self._flatten_layers(), self.trainable_weights)

    def add_loss(self, loss):
        self._losses.append(loss)

    def _clear_losses(self):
        for layer in self._flatten_layers():
            layer._losses.clear()

    def _add_activity_losses(self, outputs):
        """Keras adds regularizer(output) for each output of a call, divided by the batch size."""
        from engine import ops
        for output in flatten(outputs):
            if not isinstance(output, Tensor):
                continue
            loss = self.activity_regularizer(output)
            if output.ndim > 0:
                n = output.shape[0]
                # Keras divides with divide_no_nan: an empty batch adds 0.
                loss = ops.divide(loss, float(n)) if n else np.zeros((), dtype=np.result_type(loss))
            self.add_loss(loss)

    # -- building and shapes ---------------------------------------------------------------
    def build(self, input_shape):
        self.built = True

    def _maybe_build(self, input_shape):
        if not self.built:
            self._build_input_shape = input_shape  # saved as Keras's build_config (subclassed models)
            self.build(input_shape)
            self.built = True

    def compute_output_shape(self, input_shape):
        raise NotImplementedError

    def compute_output_spec(self, *args, **kwargs):
        inputs = args[0] if args else None
        input_shape = _shapes(inputs)
        try:
            out_shape = self.compute_output_shape(input_shape)
        except NotImplementedError:
            return self._output_spec_by_running(*args, **kwargs)
        return self._tensors_for_shapes(out_shape, self._output_dtype(inputs))

    def _output_dtype(self, inputs):
        return self.dtype

    def _tensors_for_shapes(self, shapes, dtype):
        if isinstance(shapes, list) or (isinstance(shapes, tuple) and shapes and isinstance(shapes[0], (tuple, list))):
            return [KerasTensor(s, dtype) for s in shapes]
        if isinstance(shapes, dict):
            return {k: KerasTensor(s, dtype) for k, s in shapes.items()}
        return KerasTensor(shapes, dtype)

    def _output_spec_by_running(self, *args, **kwargs):
        """Infer output shapes of a layer without compute_output_shape by running it on zeros."""
        def dummy(t):
            if isinstance(t, KerasTensor):
                shape = tuple(1 if d is None else d for d in t.shape)
                if t.dtype == "string":       # numpy has no "string" dtype: text as Python strings
                    return np.full(shape, "", dtype=object)
                return np.zeros(shape, dtype=t.dtype)
            return t
        outs = self.call(*map_structure(dummy, list(args)), **map_structure(dummy, kwargs))

        def spec(o):
            o = np.asarray(o)
            return KerasTensor((None,) + o.shape[1:], o.dtype)
        return map_structure(spec, outs)

    def compute_mask(self, inputs, previous_mask=None):
        return previous_mask if self.supports_masking else None

    # -- calling ---------------------------------------------------------------------------
    def call(self, inputs, *args, **kwargs):
        return inputs

    def __call__(self, *args, **kwargs):
        if not self.built:
            # Building (and the first call, where sublayers build) happens in the layer's name
            # scope, so sublayers' weights are named under it; a built layer skips the scope.
            with self._open_name_scope():
                return self._dispatch_call(args, kwargs)
        return self._dispatch_call(args, kwargs)

    def _dispatch_call(self, args, kwargs):
        if is_symbolic((args, kwargs)):
            return self._call_symbolic(args, kwargs)
        return self._call_eager(args, kwargs)

    def _open_name_scope(self):
        """The layer's name scope, under the path it was first scoped under (as Keras)."""
        if self._parent_path is None:
            self._parent_path = current_path()
        return name_scope(self.name, caller=self)

    def _check_input(self, inputs):
        """Hook for layers to validate input shapes, raising ValueError that names the layer."""

    def _call_symbolic(self, args, kwargs):
        if getattr(_context, "call_depth", 0) == 0:
            self._clear_losses()
        inputs = args[0] if args else next(iter(kwargs.values()))
        if self.input_spec is not None:
            assert_input_compatibility(self.input_spec, inputs, self.name)
        self._check_input(map_structure(_shape_of, inputs))
        self._maybe_build(_shapes(inputs))
        if self._may_have_unbuilt_state():
            self._build_by_running(args, kwargs)
        outputs = self.compute_output_spec(*args, **kwargs)
        Node(self, args, kwargs, outputs)
        return outputs

    def _may_have_unbuilt_state(self):
        """Keras's rule: a layer without a build() of its own whose sublayers are not all built
        creates their weights by running call() once when it is called on symbolic inputs, so a
        functional model holds all its weights (summary, get_weights, fit) as soon as it exists.
        A layer without compute_output_shape runs call() to get its output shape anyway."""
        cls = type(self)
        return cls.build is Layer.build and cls.compute_output_shape is not Layer.compute_output_shape \
            and any(not layer.built for layer in self._layers)

    def _build_by_running(self, args, kwargs):
        try:
            self._output_spec_by_running(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - any failure of a user's call is reported, as Keras does
            warn_user(f"Layer {self.name!r} looks like it has unbuilt state (sublayers not built yet), but "
                      f"running its call() on placeholder inputs to build them failed: {e!r}. Implement "
                      "build(input_shape) on the layer to create its sublayers' weights (e.g. by calling "
                      "their build()), or call the model once on real data before training.")

    def _convert(self, x):
        """What a layer's call receives: Tensors, with floats in the layer's dtype (a recorded
        cast, so gradients flow through it) and integers as they are; arrays and Python data are
        wrapped (and keep the mask a tensor carries)."""
        if type(x) is Tensor:
            dtype = x._value.dtype
            if dtype.kind == "f" and dtype is not _numpy_dtype(self.dtype):
                from engine import ops
                cast = ops.cast(x, self.dtype)
                cast._keras_mask = x._keras_mask
                return cast
            return x
        if isinstance(x, Variable):
            return self._convert(x.value)
        if isinstance(x, np.ndarray):
            return self._convert(Tensor(x))
        if isinstance(x, (list, tuple)):
            return type(x)(self._convert(v) for v in x)
        if isinstance(x, dict):
            return {k: self._convert(v) for k, v in x.items()}
        if x is None or isinstance(x, (bool, str)):
            return x
        arr = np.asarray(x)
        if arr.dtype.kind == "f":
            arr = arr.astype(self.dtype)
        return Tensor(arr)

    def _call_eager(self, args, kwargs, mask=None):
        """Run the layer on values. Keras's call conventions: every layer takes `training=` and
        `mask=`; each is passed to `call` only if `call` accepts it. An explicit `training`
        holds for the layers called inside this one; otherwise the enclosing call's value is
        used (or `call`'s own default outside any). Without an explicit mask, the mask the
        input tensors carry is used; the output carries `compute_mask`'s. While a step plan is
        being traced (engine/models/plan.py), the call is one of the trace's frames."""
        if autodiff._tracers:
            tracer = autodiff._tracers[-1]
            if tracer.traces_calls():
                return tracer.call_layer(self, args, kwargs, mask)
        return self._run_eager(args, kwargs, mask)

    def _run_eager(self, args, kwargs, mask=None):
        """_call_eager's work (the trace's frames run it themselves)."""
        training = None
        if kwargs and ("training" in kwargs or "mask" in kwargs):
            kwargs = dict(kwargs)        # never change the caller's (or a graph node's) dict
            training = kwargs.pop("training", None)
            explicit_mask = kwargs.pop("mask", None)
            if explicit_mask is not None:
                mask = explicit_mask
        context = _context
        depth = getattr(context, "call_depth", 0)
        if depth == 0:
            self._clear_losses()
        context.call_depth = depth + 1
        previous_training = getattr(context, "training", None)
        if training is not None:
            _context.training = bool(training)
        else:
            training = previous_training
        try:
            outputs = self._run_call(args, kwargs, mask, training)
        finally:
            context.call_depth = depth
            context.training = previous_training
        if self.activity_regularizer is not None:
            self._add_activity_losses(outputs)
        return outputs

    def _run_call(self, args, kwargs, mask, training):
        args = list(args)
        inputs = None
        if args:
            args[0] = inputs = self._convert(args[0])
            if self.input_spec is not None:
                assert_input_compatibility(self.input_spec, inputs, self.name)
        if not self.built:
            self._check_input(map_structure(_shape_of, inputs))
            self._maybe_build(_shapes(inputs))
        if mask is None and inputs is not None:
            mask = inputs._keras_mask if type(inputs) is Tensor else _masks_of(inputs)
        if self._call_has_training and training is not None and kwargs.get("training") is None:
            kwargs["training"] = training
        if self._call_has_mask and mask is not None and kwargs.get("mask") is None:
            kwargs["mask"] = mask
        outputs = self.call(*args, **kwargs)
        if type(outputs) is not Tensor:
            outputs = _as_tensors(outputs)
        # Without a mask coming in, only a layer with its own compute_mask can make one.
        if mask is not None or self._own_compute_mask:
            self._set_output_masks(inputs, outputs, mask)
        return outputs

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "build" in cls.__dict__:
            cls.build = _scoped_build(cls.__dict__["build"])
        # Whether the class computes masks of its own (looked up on every call otherwise).
        cls._own_compute_mask = cls.compute_mask is not Layer.compute_mask

    def _set_output_masks(self, inputs, outputs, mask):
        """Attach compute_mask's result to the output tensors that carry none yet (Keras 3)."""
        flat_outputs = [t for t in flatten(outputs) if isinstance(t, Tensor)]
        if not flat_outputs or all(t._keras_mask is not None for t in flat_outputs):
            return
        if not (self.supports_masking or self._own_compute_mask):
            return                       # a layer that does not support masking drops the mask
        out_masks = self.compute_mask(inputs, mask)
        if out_masks is None:
            return
        flat_masks = flatten(out_masks) if isinstance(out_masks, (list, tuple)) else [out_masks] * len(flat_outputs)
        for t, m in zip(flat_outputs, flat_masks):
            if t._keras_mask is None and m is not None:
                t._keras_mask = m

    # -- introspection -----------------------------------------------------------------------
    def _single_node_attr(self, attr):
        if not self._inbound_nodes:
            raise AttributeError(f"Layer {self.name!r} has never been called, so it has no {attr}.")
        node = self._inbound_nodes[0]
        tensors = node.input_tensors if attr == "input" else node.output_tensors
        return tensors[0] if len(tensors) == 1 else tensors

    @property
    def input(self):
        return self._single_node_attr("input")

    @property
    def output(self):
        return self._single_node_attr("output")

    @property
    def input_shape(self):
        inp = self.input
        return inp.shape if isinstance(inp, KerasTensor) else [t.shape for t in inp]

    @property
    def output_shape(self):
        out = self.output
        return out.shape if isinstance(out, KerasTensor) else [t.shape for t in out]

    @property
    def dtype_policy(self):
        """The layer's `DTypePolicy` (engine's layers compute and keep variables in one dtype)."""
        return dtype_policies.DTypePolicy(self.dtype)

    @property
    def compute_dtype(self):
        """The dtype the layer computes in (its inputs' floats are cast to it)."""
        return self.dtype

    @property
    def variable_dtype(self):
        """The dtype of the layer's variables."""
        return self.dtype

    def get_config(self):
        from engine.saving.serialization import serialize_keras_object
        config = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype}
        if self._batch_input_shape is not None:
            config["batch_input_shape"] = self._batch_input_shape
        config.update(self._weight_settings_config())
        if self.activity_regularizer is not None:  # Keras's base Layer writes it only when set
            config["activity_regularizer"] = serialize_keras_object(self.activity_regularizer)
        return config

    def _weight_settings_config(self, cls=None):
        """The initializers, regularizers and constraints the constructor took, read back from the
        attributes of the same names, so no layer's get_config has to list them one by one."""
        from engine.saving.serialization import serialize_keras_object
        # Only one constructor (the class's own unless told): a parent's parameters may be stored under
        # other names (DepthwiseConv2D passes depthwise_regularizer on as kernel_regularizer).
        params = inspect.signature((cls or type(self)).__init__).parameters
        return {p: serialize_keras_object(getattr(self, p)) for p in sorted(params)
                if p.endswith(("_initializer", "_regularizer", "_constraint")) and hasattr(self, p)
                and p != "activity_regularizer"}  # get_config's own

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


def training_scope(training):
    """Context manager that sets the `training` flag seen by layers called inside it."""
    return _TrainingScope(training)
