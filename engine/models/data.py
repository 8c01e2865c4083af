"""Turning what users pass to fit / evaluate / predict into arrays in the model's order.

x and y may be one array, a list in the order of model.inputs / model.outputs,
or a dict keyed by input / output names.  Every check names the input or
output and the shapes involved, because that is what the user has to fix.
"""
import numpy as np

from engine import ops
from engine.tensor import ArrayHolder, Tensor
from engine.variables import Variable


def _names(tensors_or_names):
    return ", ".join(repr(n) for n in tensors_or_names)


def _to_numeric_array(value, what, strings=False):
    """`value` as a numpy array of numbers (or of strings, for a string input), else a ValueError."""
    if hasattr(value, "value") and not isinstance(value, np.ndarray):
        value = value.value
    if isinstance(value, ArrayHolder):
        value = value._value     # the tensor's own array: its values are not read here
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{what}: could not convert the data to an array ({e})") from None
    if strings:
        if arr.dtype.kind not in "USO":
            raise ValueError(f"{what} takes strings, got an array of dtype {arr.dtype} (shape {arr.shape})")
        return arr
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{what}: expected numeric data, got an array of dtype {arr.dtype} "
                         f"(shape {arr.shape}); convert it to numbers first")
    return arr


def align(data, names, what, model_name):
    """Order `data` (array, list or dict) by `names`; returns a list of arrays."""
    if isinstance(data, dict):
        unknown = [k for k in data if k not in names]
        if unknown:
            raise ValueError(f"{what}: unknown key(s) {_names(unknown)} for model \"{model_name}\"; "
                             f"expected keys: {_names(names)}")
        missing = [n for n in names if n not in data]
        if missing:
            raise ValueError(f"{what}: missing key(s) {_names(missing)} for model \"{model_name}\"; "
                             f"expected keys: {_names(names)}")
        return [data[n] for n in names]
    if isinstance(data, (list, tuple)):
        if len(data) != len(names):
            raise ValueError(f"{what}: model \"{model_name}\" has {len(names)} {what.split()[0]} "
                             f"({_names(names)}) but got a list of {len(data)} arrays")
        return list(data)
    if len(names) != 1:
        raise ValueError(f"{what}: model \"{model_name}\" has {len(names)} {what.split()[0]} ({_names(names)}); "
                         f"pass a list in that order or a dict keyed by those names")
    return [data]


def standardize_inputs(model, x):
    """Arrays for each model input, converted to the input's dtype and checked against its shape."""
    names = [t.name for t in model.inputs]
    arrays = align(x, names, "inputs x", model.name)
    out = []
    for tensor, value in zip(model.inputs, arrays):
        what = f"Input \"{tensor.name}\" of model \"{model.name}\""
        strings = tensor.dtype == "string"
        arr = _to_numeric_array(value, what, strings=strings)
        expected = tensor.shape
        expand = arr.ndim == len(expected) - 1 and len(expected) >= 2 and expected[-1] == 1
        if expand:
            arr = arr[..., None]  # Keras accepts (n,) data for an input of shape (None, 1)
        if arr.ndim != len(expected) or any(e is not None and e != a for e, a in zip(expected[1:], arr.shape[1:])):
            raise ValueError(f"{what} expects data of shape {expected}, but got an array of shape {arr.shape}")
        if strings:
            out.append(arr)
            continue
        dtype = np.dtype(tensor.dtype)
        if isinstance(value, (Tensor, Variable)) and arr.dtype.kind == "f" and dtype.kind == "f":
            # A tensor's reshape and cast are recorded ops, so gradients reach it (saliency maps,
            # adversarial inputs: tape.gradient(model(x), x)).
            value = ops.expand_dims(value, -1) if expand else ops.convert_to_tensor(value)
            out.append(value if value.dtype == dtype else ops.cast(value, dtype))
            continue
        if arr.dtype != dtype:
            if dtype.kind in "iu" and arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                raise ValueError(f"{what} takes integers but the data has NaN or infinite values")
            arr = arr.astype(dtype)
        out.append(np.ascontiguousarray(arr))
    return out


def standardize_targets(model, y):
    names = model.output_names
    arrays = align(y, names, "outputs y", model.name)
    # A subclassed model has no symbolic outputs: its targets are taken as given (floats as float32).
    tensors = getattr(model, "outputs", None) or [None] * len(names)
    out = []
    for name, tensor, value in zip(names, tensors, arrays):
        arr = _to_numeric_array(value, f"Target for output \"{name}\" of model \"{model.name}\"")
        out_dtype = np.dtype(tensor.dtype) if tensor is not None else np.dtype(np.float32)
        if arr.dtype.kind == "f" and arr.dtype != np.float32 and arr.dtype != out_dtype:
            arr = arr.astype(out_dtype if out_dtype.kind == "f" else np.float32)
        elif arr.dtype.kind == "b":
            arr = arr.astype(np.float32)
        if tensor is not None and arr.ndim == 1 and len(tensor.shape) == 2 and tensor.shape[-1] == 1:
            arr = arr[:, None]
        out.append(np.ascontiguousarray(arr))
    return out


def check_sample_counts(xs, ys, input_names, output_names):
    counts = [(f"input \"{n}\"", a.shape[0] if a.ndim else 1) for n, a in zip(input_names, xs)]
    counts += [(f"target \"{n}\"", a.shape[0] if a.ndim else 1) for n, a in zip(output_names, ys or [])]
    first_name, first = counts[0]
    for name, n in counts[1:]:
        if n != first:
            raise ValueError(f"Data cardinality is ambiguous: {first_name} has {first} samples but {name} has "
                             f"{n}. Make sure all arrays contain the same number of samples.")
    return first
