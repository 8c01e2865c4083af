"""engine.utils: helpers Keras users reach for (to_categorical, set_random_seed, Progbar, the data
utilities); each module loads on first use, so `import engine` does not pay for them."""
import numpy as np

from engine._lazy import lazy_attributes, lazy_table
# Imported with the package: the function's name is its module's, and a module imported later
# would otherwise replace the function on the package.
from engine.utils.plot_model import plot_model, model_to_dot  # noqa: F401

# keras.utils also re-exports the saving helpers.
_LAZY = lazy_table(__name__, {
    '': "data_utils dataset_utils file_utils image_utils naming progbar py_dataset sequence_utils "
        "timeseries_dataset",
    'engine.backend': "clear_session is_keras_tensor standardize_dtype",
    'engine.layers.keras_tensor': "get_source_inputs",
    'engine.random': "set_random_seed=set_seed",
    'engine.saving.serialization': (
        "CustomObjectScope custom_object_scope deserialize_keras_object get_custom_objects "
        "get_registered_name get_registered_object register_keras_serializable serialize_keras_object"),
    'engine.utils.data_utils': "pack_x_y_sample_weight unpack_x_y_sample_weight",
    'engine.utils.dataset_utils': "ArrayBatches image_dataset_from_directory split_dataset text_dataset_from_directory",
    'engine.utils.file_utils': "get_file",
    'engine.utils.image_utils': "array_to_img img_to_array load_img save_img",
    'engine.utils.progbar': "Progbar",
    'engine.config': "disable_interactive_logging enable_interactive_logging is_interactive_logging_enabled",
    'engine.utils.py_dataset': "PyDataset Sequence",
    'engine.utils.sequence_utils': "pad_sequences",
    'engine.utils.timeseries_dataset': "timeseries_dataset_from_array",
})
__getattr__, __dir__ = lazy_attributes(globals(), _LAZY)


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
