"""The Hashing layer: values to bins by TensorFlow's string hashes (FarmHash, or SipHash with a salt)."""
import numpy as np

from engine import config
from engine.layers.base import Layer
from engine.layers.preprocessing import _encoding, _hashes
from engine.layers.preprocessing._base import to_numpy
from engine.saving.registry import register_builtins


def as_hash_strings(values):
    """The strings TensorFlow hashes: strings as UTF-8 bytes, integers (and floats, truncated to
    int64 first) in decimal."""
    values = np.asarray(values)
    if values.dtype.kind == "f":
        values = values.astype(np.int64)
    if values.dtype.kind == "S":
        return values
    if values.dtype.kind in "iub":
        return values.astype(np.int64).astype("S")
    return np.vectorize(lambda v: v if isinstance(v, bytes) else str(v).encode("utf-8"), otypes=[object])(values)


def hash_to_bins(values, num_bins, salt=None):
    """The bin (0 .. num_bins - 1) of each value: Fingerprint64 (or keyed SipHash-2-4) modulo num_bins.
    Each distinct value is hashed once."""
    strings = as_hash_strings(values)
    flat = strings.reshape(-1)
    uniques, inverse = np.unique(flat, return_inverse=True)
    if salt is None:
        hashed = [_hashes.fingerprint64(bytes(u)) % num_bins for u in uniques]
    else:
        hashed = [_hashes.siphash24(salt[0], salt[1], bytes(u)) % num_bins for u in uniques]
    return np.asarray(hashed, dtype=np.int64)[inverse].reshape(strings.shape)


def standardize_salt(salt, layer_name):
    """Keras's salt argument: None, or a pair of ints (one int k stands for [k, k])."""
    if salt is None:
        return None
    if isinstance(salt, (tuple, list)) and len(salt) == 2:
        return [int(salt[0]), int(salt[1])]
    if isinstance(salt, (int, np.integer)):
        return [int(salt), int(salt)]
    raise ValueError(f"{layer_name}: salt must be an integer or a pair of integers, got {salt!r}")


class Hashing(Layer):
    """Map strings or integers to `num_bins` bins by hashing them (Keras's bin values).

    Args:
        num_bins: the number of bins, the mask bin included.
        mask_value: a value that goes to bin 0 (the others then use bins 1 .. num_bins - 1).
        salt: an int or a pair of ints: use SipHash-2-4 keyed by it (a "strong" hash) instead of
            FarmHash Fingerprint64.
        output_mode: "int" (bin indices), "one_hot", "multi_hot" or "count".
        sparse: must be False (engine has no sparse tensors).

    Integers (and floats, truncated to integers) are hashed as their decimal strings, as Keras does.
    """

    def __init__(self, num_bins, mask_value=None, salt=None, output_mode="int", sparse=False, **kwargs):
        if kwargs.get("dtype") is None:
            kwargs["dtype"] = "int64" if output_mode == "int" else config.floatx()
        super().__init__(**kwargs)
        if num_bins is None or num_bins <= 0:
            raise ValueError(f"Hashing: num_bins must be a positive integer, got {num_bins!r}")
        if output_mode not in ("int", "one_hot", "multi_hot", "count"):
            raise ValueError(f"Hashing: output_mode must be 'int', 'one_hot', 'multi_hot' or 'count', got "
                             f"{output_mode!r}")
        if output_mode == "int" and self.dtype not in ("int32", "int64"):
            raise ValueError(f"Hashing: with output_mode='int' the dtype must be 'int32' or 'int64', got {self.dtype!r}")
        if sparse:
            raise ValueError("Hashing: sparse=True is not supported (engine has no sparse tensors); "
                             "leave sparse=False")
        salt = standardize_salt(salt, "Hashing")
        self.num_bins = int(num_bins)
        self.mask_value = mask_value
        self.salt = salt
        self.strong_hash = salt is not None
        self.output_mode = output_mode
        self.sparse = False

    def call(self, inputs):
        values = to_numpy(inputs)
        if self.output_mode == "one_hot" and values.ndim and values.shape[-1] == 1:
            values = values.reshape(values.shape[:-1])
        bins = self.num_bins
        mask = None
        if self.mask_value is not None and bins > 1:
            bins -= 1
            mask = values == np.asarray(self.mask_value, dtype=values.dtype if values.dtype.kind in "SU" else None)
        out = hash_to_bins(values, bins, self.salt)
        if mask is not None:
            out = np.where(mask, 0, out + 1)
        return _encoding.encode(out, self.output_mode, self.num_bins, self.dtype)

    def _output_dtype(self, inputs):
        return self.dtype

    def compute_output_shape(self, input_shape):
        if self.output_mode == "int":
            return tuple(input_shape)
        return tuple(input_shape[:-1]) + (self.num_bins,) if len(input_shape) else (self.num_bins,)

    def get_config(self):
        return {**super().get_config(), "num_bins": self.num_bins, "salt": self.salt, "mask_value": self.mask_value,
                "output_mode": self.output_mode, "sparse": self.sparse}


register_builtins("layers", globals())  # loadable from .keras configs by class name
