"""The Discretization layer: numbers to bucket indices, with boundaries given or learnt as quantiles.

`adapt` keeps Keras's approximate quantile summary: a 2-row array of sample values and the
weight (number of samples) each stands for. A batch is summarised by every step-th sorted value
(step = max(n * epsilon, 1), each weighing `step`); summaries are merged by sorting their columns
together and compressed by reading the values at cumulative-weight fractions epsilon, 2 epsilon,
..., 1 (linear interpolation). The boundaries are the compressed summary at fractions 1/num_bins,
..., without the last.
"""
import numpy as np

from engine.layers.base import Layer
from engine.layers.preprocessing import _encoding
from engine.layers.preprocessing._base import adapt_batches, to_numpy
from engine.saving.registry import register_builtins


def summarize(values, epsilon):
    """The weighted sample summary of one batch of values."""
    ordered = np.sort(np.reshape(values, -1))
    step = max(ordered.size * epsilon, 1)
    picked = ordered[int(step - 1)::int(step)]
    return np.stack([picked, np.full(picked.shape, step, dtype=picked.dtype)])


def compress(summary, epsilon):
    """The summary re-read at cumulative-weight fractions epsilon, 2 epsilon, ..., 1."""
    if summary.shape[1] * epsilon < 1:
        return summary
    fractions = epsilon + np.arange(0.0, 1.0, epsilon)
    cumulative = np.cumsum(summary[1])
    at = cumulative / cumulative[-1]
    values = np.interp(fractions, at, summary[0])
    weights = np.diff(np.interp(fractions, at, cumulative), prepend=0.0)
    return np.stack([values, weights]).astype("float32")


def merge(summary, other, epsilon):
    """The summary of two samples together, compressed."""
    both = np.concatenate([summary, other], axis=1)
    return compress(both[:, np.argsort(both[0])], epsilon)


def quantile_boundaries(summary, num_bins):
    """The num_bins - 1 inner quantiles a summary gives."""
    return compress(summary, 1.0 / num_bins)[0, :-1]


class Discretization(Layer):
    """Bucket numbers: bucket i holds bin_boundaries[i - 1] <= x < bin_boundaries[i].

    Args:
        bin_boundaries: the sorted boundaries (n boundaries make n + 1 buckets).
        num_bins: instead of boundaries: the number of buckets `adapt` makes, at quantiles of the data.
        epsilon: the error tolerance of the quantiles `adapt` estimates (Keras's summary).
        output_mode: "int" (bucket indices, int32), "one_hot", "multi_hot" or "count".
        sparse: must be False (engine has no sparse tensors).
    """

    def __init__(self, bin_boundaries=None, num_bins=None, epsilon=0.01, output_mode="int", sparse=False, dtype=None,
                 name=None, **kwargs):
        super().__init__(name=name, dtype=dtype, **kwargs)
        if sparse:
            raise ValueError("Discretization: sparse=True is not supported (engine has no sparse tensors)")
        if output_mode not in ("int", "one_hot", "multi_hot", "count"):
            raise ValueError(f"Discretization: output_mode must be 'int', 'one_hot', 'multi_hot' or 'count'; got "
                             f"{output_mode!r}")
        if num_bins is not None and num_bins < 0:
            raise ValueError(f"Discretization: num_bins must be 0 or more, got {num_bins}")
        if num_bins is not None and bin_boundaries is not None:
            raise ValueError("Discretization: give bin_boundaries or num_bins, not both")
        if num_bins is None and bin_boundaries is None:
            raise ValueError("Discretization: give bin_boundaries, or num_bins and then call adapt")
        self.bin_boundaries = None if bin_boundaries is None else [float(b) for b in bin_boundaries]
        self.num_bins = num_bins
        self.epsilon = epsilon
        self.output_mode = output_mode
        self.sparse = False
        self.summary = None if self.bin_boundaries else np.zeros((2, 0), dtype="float32")

    def adapt(self, data, steps=None):
        """Learn num_bins - 1 boundaries at the data's quantiles (arrays, lists or iterables of batches;
        `steps` caps the batches read)."""
        if self.num_bins is None:
            raise ValueError("Discretization.adapt: this layer was built with bin_boundaries; build it with "
                             "num_bins to adapt")
        self.reset_state()
        # As in Keras, each element of a list is a batch (even a single number).
        batches = iter(data) if isinstance(data, (list, tuple)) else adapt_batches(data, "Discretization")
        for i, batch in enumerate(batches):
            if steps is not None and i >= steps:
                break
            self.update_state(batch)
        self.finalize_state()

    def update_state(self, data):
        """Merge one batch into the quantile summary."""
        self.summary = merge(summarize(np.asarray(to_numpy(data), dtype="float32"), self.epsilon), self.summary,
                             self.epsilon)

    def finalize_state(self):
        """Turn the summary into bin_boundaries."""
        if self.num_bins is not None:
            self.bin_boundaries = quantile_boundaries(self.summary, self.num_bins).tolist()

    def reset_state(self):
        """Forget the summary of an adapt in progress."""
        if self.num_bins is not None:
            self.summary = np.zeros((2, 0), dtype="float32")

    def _out_dtype(self):
        return "int32" if self.output_mode == "int" else self.dtype

    def call(self, inputs):
        if self.bin_boundaries is None:
            raise ValueError("Discretization: pass bin_boundaries, or call adapt before using the layer")
        indices = np.digitize(np.asarray(to_numpy(inputs), dtype=np.float64), self.bin_boundaries)
        return _encoding.encode(indices, self.output_mode, len(self.bin_boundaries) + 1, self._out_dtype())

    def _output_dtype(self, inputs):
        return self._out_dtype()

    def compute_output_shape(self, input_shape):
        if self.output_mode == "int":
            return tuple(input_shape)
        depth = len(self.bin_boundaries) + 1 if self.bin_boundaries is not None else self.num_bins
        input_shape = tuple(input_shape)
        if self.output_mode == "one_hot":
            if input_shape and input_shape[-1] == 1 and len(input_shape) > 1:
                return input_shape[:-1] + (depth,)
            return input_shape + (depth,)
        if len(input_shape) >= 2:
            return (input_shape[0],) + input_shape[2:] + (depth,)
        return (depth,)

    def get_config(self):
        return {"bin_boundaries": self.bin_boundaries, "num_bins": self.num_bins, "epsilon": self.epsilon,
                "output_mode": self.output_mode, "sparse": self.sparse, "name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("bin_boundaries") is not None and config.get("num_bins") is not None:
            boundaries = config.pop("bin_boundaries")
            layer = cls(**config)
            layer.bin_boundaries = [float(b) for b in boundaries]
            return layer
        return cls(**config)


register_builtins("layers", globals())  # loadable from .keras configs by class name
