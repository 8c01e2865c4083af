"""pad_sequences: variable-length sequences to one padded array (keras.utils.pad_sequences)."""
import numpy as np


def _sample_shape(sequences):
    """The shape of one timestep, read from the first non-empty sequence (Keras's rule)."""
    for s in sequences:
        if len(s):
            return np.asarray(s).shape[1:]
    return ()


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre", value=0.0):
    """Pad (and truncate) a list of sequences to one array of shape (len(sequences), maxlen, ...).

    Args:
        sequences: a list of sequences (lists or arrays; each timestep a number, a string or an array).
        maxlen: the length of every output row; None is the longest sequence's length.
        dtype: the output dtype; use `object` (or a string dtype) for string sequences.
        padding: "pre" or "post": pad before or after each sequence.
        truncating: "pre" or "post": drop values from the start or the end of a sequence longer
            than maxlen.
        value: the padding value (a number, or a string for string dtypes).

    Returns:
        A numpy array of shape (len(sequences), maxlen) + the shape of one timestep.
    """
    if not hasattr(sequences, "__len__"):
        raise ValueError(f"pad_sequences: sequences must be a list of sequences, got {type(sequences).__name__}")
    lengths = []
    for s in sequences:
        try:
            lengths.append(len(s))
        except TypeError:
            raise ValueError("pad_sequences: sequences must be a list of iterables (lists or arrays); found "
                             f"{s!r}") from None
    if padding not in ("pre", "post"):
        raise ValueError(f'pad_sequences: padding must be "pre" or "post", got {padding!r}')
    if truncating not in ("pre", "post"):
        raise ValueError(f'pad_sequences: truncating must be "pre" or "post", got {truncating!r}')
    if maxlen is None:
        maxlen = max(lengths) if lengths else 0
    maxlen = int(maxlen)
    is_text = np.issubdtype(np.dtype(dtype), np.str_) or np.issubdtype(np.dtype(dtype), np.bytes_)
    if isinstance(value, str) and dtype is not object and not is_text:
        raise ValueError(f"pad_sequences: a string padding value {value!r} does not fit dtype {dtype}; pass "
                         "dtype=object for variable-length strings")
    sample_shape = _sample_shape(sequences)
    out = np.full((len(lengths), maxlen) + sample_shape, value, dtype=dtype)
    for row, s in enumerate(sequences):
        if not len(s) or maxlen == 0:
            continue
        kept = np.asarray(s[-maxlen:] if truncating == "pre" else s[:maxlen], dtype=dtype)
        if kept.shape[1:] != sample_shape:
            raise ValueError(f"pad_sequences: sequence {row} has timesteps of shape {kept.shape[1:]}, but the "
                             f"first non-empty sequence's are {sample_shape}; all timesteps must have one shape")
        if padding == "post":
            out[row, :len(kept)] = kept
        else:
            out[row, maxlen - len(kept):] = kept
    return out
