"""engine.utils: helpers Keras users reach for (to_categorical, set_random_seed, Progbar)."""
import numpy as np

from engine.utils.progbar import Progbar
from engine.random import set_seed as set_random_seed
from engine.utils.plot_model import plot_model, model_to_dot
from engine.utils.data_utils import unpack_x_y_sample_weight, pack_x_y_sample_weight
from engine.utils.py_dataset import PyDataset, Sequence
# keras.utils re-exports the saving helpers.
from engine.saving.serialization import (CustomObjectScope, custom_object_scope, get_custom_objects,
                                         get_registered_name, get_registered_object, register_keras_serializable,
                                         serialize_keras_object, deserialize_keras_object)


def to_categorical(x, num_classes=None):
    """One-hot encode integer class labels (the last axis of size 1 is dropped, as in Keras)."""
    x = np.asarray(x)
    if x.dtype.kind == "f":
        if not np.all(np.isfinite(x)) or np.any(x != np.round(x)):
            raise ValueError("to_categorical: labels must be whole numbers")
    x = x.astype(np.int64)
    if x.ndim > 1 and x.shape[-1] == 1:
        x = x.reshape(x.shape[:-1])
    if x.size and x.min() < 0:
        raise ValueError(f"to_categorical: labels must be non-negative, got {int(x.min())}")
    if num_classes is None:
        num_classes = int(x.max()) + 1 if x.size else 0
    elif x.size and x.max() >= num_classes:
        raise ValueError(f"to_categorical: label {int(x.max())} is out of range for num_classes={num_classes}")
    out = np.zeros(x.shape + (num_classes,), dtype=np.float32)
    np.put_along_axis(out, x[..., None], 1.0, axis=-1)
    return out


def normalize(x, axis=-1, order=2):
    """x divided by its `order`-norm along `axis` (zero norms are left as they are).

    Args:
        x: an array.
        axis: the axis normalized along.
        order: the norm's order (2: Euclidean).
    """
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, ord=order, axis=axis, keepdims=True)
    return x / np.where(norm == 0, 1, norm)


# Data utilities (issue 18): sequences, timeseries windows, datasets from arrays and directories.
from engine.utils.sequence_utils import pad_sequences
from engine.utils.timeseries_dataset import timeseries_dataset_from_array
from engine.utils.dataset_utils import (ArrayBatches, split_dataset, text_dataset_from_directory,
                                        image_dataset_from_directory)
from engine.utils.image_utils import array_to_img, img_to_array, load_img, save_img
from engine.utils.file_utils import get_file
