"""Integer indices to Keras's categorical encodings (one_hot, multi_hot, count, tf_idf)."""
import numpy as np

OUTPUT_MODES = ("int", "one_hot", "multi_hot", "count", "tf_idf")


def _one_hot(indices, depth, dtype):
    """One-hot rows; indices outside [0, depth) give all-zero rows (as Keras's one_hot)."""
    out = np.zeros(indices.shape + (depth,), dtype=dtype)
    valid = (indices >= 0) & (indices < depth)
    where = np.nonzero(valid)
    out[where + (indices[where],)] = 1
    return out


def encode(indices, output_mode, depth, dtype, count_weights=None, idf_weights=None):
    """Encode integer `indices` as Keras's encode_categorical_inputs does.

    one_hot adds a depth axis (a trailing axis of size 1 is replaced); multi_hot, count and tf_idf
    reduce axis 1 of a batch (axis 0 of a single 1-D sample) to one row of `depth` values: presence,
    the number of occurrences (weighted by count_weights), or that count times idf_weights."""
    indices = np.asarray(indices)
    if output_mode == "int":
        return indices.astype(dtype)
    if indices.ndim == 0:
        indices = indices[None]
    if output_mode == "one_hot":
        if indices.ndim > 1 and indices.shape[-1] == 1:
            indices = indices.reshape(indices.shape[:-1])
        return _one_hot(indices, depth, dtype)
    axis = 1 if indices.ndim > 1 else 0
    hot = _one_hot(indices, depth, np.float64)
    if output_mode == "multi_hot":
        return hot.max(axis=axis).astype(dtype) if hot.shape[axis] else hot.sum(axis=axis).astype(dtype)
    if count_weights is not None:
        hot = hot * np.asarray(count_weights, dtype=np.float64)[..., None]
    counts = hot.sum(axis=axis)
    if output_mode == "tf_idf":
        counts = counts * np.asarray(idf_weights, dtype=np.float64)
    return counts.astype(dtype)


def encoded_shape(input_shape, output_mode, depth):
    """The output shape of `encode` for an input of `input_shape` (Keras's compute_output_shape)."""
    input_shape = tuple(input_shape)
    if output_mode == "int":
        return input_shape
    if not input_shape:
        return (depth,)
    if output_mode == "one_hot":
        if input_shape[-1] == 1 and len(input_shape) > 1:
            return input_shape[:-1] + (depth,)
        return input_shape + (depth,)
    return input_shape[:-1] + (depth,)
