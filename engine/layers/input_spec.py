"""InputSpec: the rank, dtype and shape a layer accepts, checked on every call (Keras's
keras.layers.InputSpec and its compatibility rules)."""
import numpy as np
from engine.saving.registry import register_builtins


class InputSpec:
    """What one input of a layer must look like.  Set `layer.input_spec` to one (or a list, one
    per input) and every call checks the inputs against it.

    Args:
        dtype: the dtype the input must have.
        shape: the full shape, batch included (None entries match anything); sets ndim.
        ndim: the exact rank.
        max_ndim: the largest rank.
        min_ndim: the smallest rank.
        axes: {axis: size} for axes whose size is fixed.
        allow_last_axis_squeeze: a trailing axis of size 1 may be present or absent.
        name: the key of this input when inputs come as a dict.
        optional: whether None is accepted for it.
    """

    def __init__(self, dtype=None, shape=None, ndim=None, max_ndim=None, min_ndim=None, axes=None,
                 allow_last_axis_squeeze=False, name=None, optional=False):
        self.dtype = None if dtype is None else np.dtype(dtype).name
        if shape is not None:
            self.shape = tuple(None if d is None else int(d) for d in shape)
            self.ndim = len(self.shape)
        else:
            self.shape, self.ndim = None, ndim
        self.max_ndim, self.min_ndim = max_ndim, min_ndim
        self.name, self.optional = name, optional
        self.allow_last_axis_squeeze = allow_last_axis_squeeze
        try:
            self.axes = {int(k): v for k, v in (axes or {}).items()}
        except (TypeError, ValueError):
            raise TypeError(f"InputSpec: axes must be a dict with integer keys, got {axes!r}") from None
        top = self.ndim if self.ndim is not None else self.max_ndim
        if self.axes and top is not None and max(self.axes) > top - 1:
            raise ValueError(f"InputSpec: axis {max(self.axes)} is greater than the largest allowed axis {top - 1}")

    def __repr__(self):
        parts = [f"{k}={v}" for k, v in (("dtype", self.dtype), ("shape", self.shape), ("ndim", self.ndim),
                                        ("max_ndim", self.max_ndim), ("min_ndim", self.min_ndim),
                                        ("axes", self.axes or None)) if v is not None]
        return f"InputSpec({', '.join(parts)})"

    def get_config(self):
        return {"dtype": self.dtype, "shape": self.shape, "ndim": self.ndim, "max_ndim": self.max_ndim,
                "min_ndim": self.min_ndim, "axes": self.axes}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _flat(x):
    if isinstance(x, (list, tuple)):
        return [leaf for item in x for leaf in _flat(item)]
    return [x]


def assert_input_compatibility(input_spec, inputs, layer_name):
    """Raise ValueError naming the layer, the input, the axis and both shapes when `inputs` (or
    their shapes) do not fit `input_spec`."""
    if input_spec is None:
        return
    specs = _flat(input_spec)
    if not specs or all(s is None for s in specs):
        return
    if isinstance(inputs, dict):
        names = [s.name for s in specs]
        if all(names):
            missing = [n for n in names if n not in inputs]
            if missing:
                raise ValueError(f"Layer \"{layer_name}\": missing data for input(s) {missing}; the dict has keys "
                                 f"{list(inputs)}")
            inputs = [inputs[n] for n in names]
        else:
            inputs = list(inputs.values())
    flat = _flat(inputs) if isinstance(inputs, (list, tuple)) and not _is_shape(inputs) else [inputs]
    if len(flat) != len(specs):
        raise ValueError(f"Layer \"{layer_name}\" expects {len(specs)} input(s), but it received {len(flat)}")
    for index, (x, spec) in enumerate(zip(flat, specs)):
        if spec is None or (x is None and spec.optional):
            continue
        shape = _shape_of(x, layer_name)
        where = f"Input {index}{f' ({spec.name!r})' if spec.name else ''} of layer \"{layer_name}\" is " \
                f"incompatible with the layer"
        ndim = len(shape)
        if spec.ndim is not None and not spec.allow_last_axis_squeeze and ndim != spec.ndim:
            raise ValueError(f"{where}: expected ndim={spec.ndim}, found ndim={ndim}. Full shape received: {shape}")
        if spec.max_ndim is not None and ndim > spec.max_ndim:
            raise ValueError(f"{where}: expected max_ndim={spec.max_ndim}, found ndim={ndim}. Full shape received: "
                             f"{shape}")
        if spec.min_ndim is not None and ndim < spec.min_ndim:
            raise ValueError(f"{where}: expected min_ndim={spec.min_ndim}, found ndim={ndim}. Full shape received: "
                             f"{shape}")
        if spec.dtype is not None:
            dtype = getattr(x, "dtype", None)
            if dtype is not None and np.dtype(dtype).name != spec.dtype:
                raise ValueError(f"{where}: expected dtype={spec.dtype}, found dtype={np.dtype(dtype).name}")
        for axis, value in spec.axes.items():
            if value is None:
                continue
            if not -ndim <= axis < ndim:
                raise ValueError(f"{where}: expected axis {axis} to have size {value}, but the input shape {shape} "
                                 f"has no axis {axis}")
            if shape[axis] not in (value, None):
                raise ValueError(f"{where}: expected axis {axis} of input shape to have value {value}, but received "
                                 f"input with shape {shape}")
        if spec.shape is not None:
            expected, got = spec.shape, shape
            if spec.allow_last_axis_squeeze:
                got = got[:-1] if got and got[-1] == 1 else got
                expected = expected[:-1] if expected and expected[-1] == 1 else expected
            for axis, (want, have) in enumerate(zip(expected, got)):
                if want is not None and have is not None and want != have:
                    raise ValueError(f"{where}: expected shape={spec.shape}, found shape={shape} (axis {axis}: "
                                     f"{want} != {have})")


def _is_shape(x):
    return isinstance(x, tuple) and all(d is None or isinstance(d, (int, np.integer)) for d in x)


def _shape_of(x, layer_name):
    if _is_shape(x):
        return tuple(x)
    if not hasattr(x, "shape"):
        raise ValueError(f"Inputs to a layer should be tensors; got {x!r} (of type {type(x).__name__}) as an input "
                         f"of layer \"{layer_name}\"")
    return tuple(x.shape)


register_builtins("layers", globals())  # loadable from .keras configs by class name
