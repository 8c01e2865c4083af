"""What the preprocessing layers share: reading data for `adapt`, data formats."""
import numpy as np

from engine.layers._layout import standardize_data_format  # noqa: F401  (re-exported: image_utils reads it here)
from engine.tensor import Tensor
from engine.variables import Variable


def to_numpy(x):
    """A numpy array of x (a Tensor, Variable, list of strings, ...), without copying arrays."""
    if isinstance(x, (Tensor, Variable)):
        return x._value
    if isinstance(x, np.ndarray):
        return x
    return np.asarray(x)


def _first_of_pair(batch):
    """The features of a batch that may come as (x, y) or (x, y, sample_weight), as Keras reads them
    (a tuple of plain values, strings or numbers, is a batch itself)."""
    if isinstance(batch, tuple) and 1 <= len(batch) <= 3 and isinstance(batch[0], (np.ndarray, Tensor, Variable, list)):
        return batch[0]
    return batch


def _is_single_batch(data):
    if isinstance(data, (np.ndarray, Tensor, Variable, str, bytes)):
        return True
    if isinstance(data, (list, tuple)):
        # A flat list of scalars or strings (["a b", "c"], [1, 2, 3]) is one batch of data, a list of
        # arrays is a list of batches.
        return not data or not any(isinstance(v, (np.ndarray, Tensor, list, tuple)) for v in data)
    return False


def adapt_batches(data, layer_name):
    """The batches `adapt(data)` learns from, as numpy arrays.

    `data` may be an array or tensor (one batch), a list of strings or numbers (one batch), an
    object following PyDataset's protocol (`__len__` and `__getitem__(i)`), or any iterable of
    batches (a generator, a list of arrays); batches given as (x, y) pairs give their x."""
    if data is None:
        raise ValueError(f"{layer_name}.adapt: data is None; pass an array, a list or an iterable of batches")
    if _is_single_batch(data):
        yield to_numpy(data)
        return
    if hasattr(data, "__getitem__") and hasattr(data, "__len__") and not isinstance(data, (list, tuple, dict)):
        batches = (data[i] for i in range(len(data)))
    elif hasattr(data, "__iter__"):
        batches = iter(data)
    else:
        raise ValueError(f"{layer_name}.adapt: cannot read data of type {type(data).__name__}; pass a numpy "
                         "array, a list, a PyDataset-like object or an iterable of batches")
    count = 0
    for batch in batches:
        count += 1
        yield to_numpy(_first_of_pair(batch))
    if count == 0:
        raise ValueError(f"{layer_name}.adapt: the data holds no batches; pass at least one")
