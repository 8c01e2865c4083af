"""Random numbers (keras.random) and the generator behind initializers, dropout and shuffling.

Seeds follow Keras 3: `seed=None` draws from engine's global generator (reseeded by
`engine.utils.set_random_seed`, which makes a run repeatable); an integer seed gives the same
numbers on every call; a `SeedGenerator` gives a new, reproducible stream on each call.
Every sampling function returns an engine Tensor.
"""
import random as _pyrandom

import numpy as np

from engine.variables import Variable, note_state_write

_generator = np.random.default_rng()
# Draws made in Python, whose numbers a step plan would bake in (the sampling functions below,
# draw_for_batch, ops.nn.dropout without a generator; a draw inside a recorded op, as dropout's
# key, is made again by every replay and is not counted): a plan being traced
# (engine/models/plan.py) compares the count around a layer's call, and a layer that drew is one
# it calls as usual on every replay.
_draws = 0


def note_draw():
    """Count one draw of random numbers (see `_draws`)."""
    global _draws
    _draws += 1


def draws():
    """How many draws have been counted in this process."""
    return _draws


def generator():
    """The global numpy Generator (what unseeded layers and initializers draw from)."""
    return _generator


def set_seed(seed):
    """Seed engine's global generator and Python's and numpy's legacy ones (as
    keras.utils.set_random_seed does).

    Args:
        seed: an integer.
    """
    global _generator
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"set_random_seed: seed must be an integer, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    np.random.seed(int(seed) % 2 ** 32)
    _pyrandom.seed(int(seed))


# (offset, rows, total) while a data-parallel step runs (set by engine.distribution): this rank
# computes `rows` rows of a global batch of `total` samples, starting at row `offset`.
_batch_shard = None


def draw_for_batch(draw, shape):
    """`draw(shape)` for a random tensor whose first axis is the batch (a dropout mask).

    During a data-parallel step every rank draws the whole global batch's tensor from the same
    generator state and keeps its own rows: each rank gets its own stream of numbers, the ranks'
    generators stay in step, and the masks are exactly the ones one process would draw for the
    global batch (which is what makes data-parallel training give the single-process numbers).
    """
    note_draw()
    shard = _batch_shard
    if shard is None or not shape or shape[0] != shard[1]:
        return draw(shape)
    offset, rows, total = shard
    return draw((total,) + tuple(shape[1:]))[offset:offset + rows]


def batch_element_offset(shape):
    """Where a random tensor of `shape` whose first axis is the batch starts inside the global
    batch's tensor, as a flat element index: the counter of a counter-based draw (a dropout mask,
    csrc/philox.h).  0 outside a data-parallel step; during one, this rank's first row times the
    size of a row, so each rank computes its own rows of the mask one process would draw."""
    shard = _batch_shard
    if shard is None or not shape or shape[0] != shard[1]:
        return 0
    size = 1
    for d in shape[1:]:
        size *= int(d)
    return shard[0] * size


def make_generator(seed=None):
    """A generator for one consumer: its own stream when seeded, the global one otherwise."""
    return _generator if seed is None else np.random.default_rng(seed)


class SeedGenerator:
    """A stateful source of seeds: each sampling call given this generator draws a new seed from it,
    so calls differ from each other but a run is reproducible from the starting seed.

    Args:
        seed: the starting seed (None: one drawn from engine's global generator).
        name: the generator's name.
    """

    def __init__(self, seed=None, name=None, **kwargs):
        if kwargs.pop("backend", None) is not None or kwargs:
            raise ValueError(f"SeedGenerator: unexpected arguments {sorted(kwargs) or ['backend']}")
        if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool)):
            raise ValueError(f"SeedGenerator: seed must be an integer or None, got {seed!r}")
        self._initial_seed = seed
        self.name = name or "seed_generator"
        start = int(_generator.integers(0, 2 ** 31)) if seed is None else int(seed)
        self.state = Variable(np.array([start % 2 ** 32, 0], dtype=np.uint32), dtype="uint32", trainable=False,
                              name="seed_generator_state")
        self.state.path = f"{self.name}/seed_generator_state"

    def next(self, ordered=True):
        """The current seed pair (as an array), advancing the generator's counter."""
        current = self.state.numpy()
        self.state._value[1] += np.uint32(1)
        note_state_write()
        return current

    def get_config(self):
        """The starting seed and the name."""
        return {"seed": self._initial_seed, "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def numpy_generator(seed):
    """The numpy Generator a sampling call with `seed` draws from.

    Args:
        seed: None (engine's global generator), an integer (a fresh stream from that seed, the
            same numbers on every call) or a SeedGenerator (a new seed pair drawn from it).
    """
    note_draw()
    if seed is None:
        return _generator
    if isinstance(seed, SeedGenerator):
        return np.random.default_rng([int(s) for s in seed.next()])
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.random.default_rng(int(seed))
    raise ValueError(f"seed must be None, an integer or a SeedGenerator, got {seed!r}")


def _float_dtype(dtype):
    from engine import config
    dtype = np.dtype(dtype or config.floatx())
    if dtype.kind != "f":
        raise ValueError(f"expected a float dtype, got {dtype}")
    return dtype


def _shape(shape):
    return (int(shape),) if np.ndim(shape) == 0 else tuple(int(d) for d in shape)


def _tensor(values, dtype):
    from engine.ops import convert_to_tensor
    return convert_to_tensor(np.asarray(values).astype(dtype, copy=False))


def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Samples from a normal distribution.

    Args:
        shape: the output shape.
        mean: the distribution's mean.
        stddev: its standard deviation.
        dtype: a float dtype (default floatx).
        seed: None, an integer or a SeedGenerator (see the module docstring).
    """
    dtype = _float_dtype(dtype)
    return _tensor(numpy_generator(seed).normal(mean, stddev, _shape(shape)), dtype)


def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
    """Samples from a uniform distribution on [minval, maxval).

    Args:
        shape: the output shape.
        minval: the lower bound (included).
        maxval: the upper bound (excluded).
        dtype: a float dtype (default floatx).
        seed: None, an integer or a SeedGenerator.
    """
    dtype = _float_dtype(dtype)
    return _tensor(numpy_generator(seed).uniform(minval, maxval, _shape(shape)), dtype)


def randint(shape, minval, maxval, dtype="int32", seed=None):
    """Uniformly drawn integers in [minval, maxval).

    Args:
        shape: the output shape.
        minval: the lowest value (included).
        maxval: the upper bound (excluded).
        dtype: an integer dtype.
        seed: None, an integer or a SeedGenerator.
    """
    dtype = np.dtype(dtype)
    if dtype.kind not in "iu":
        raise ValueError(f"randint: dtype must be an integer dtype, got {dtype}")
    return _tensor(numpy_generator(seed).integers(minval, maxval, _shape(shape)), dtype)


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Samples from a normal distribution, redrawn where they fall more than two standard
    deviations from the mean.

    Args:
        shape: the output shape.
        mean: the distribution's mean.
        stddev: the standard deviation before truncation.
        dtype: a float dtype (default floatx).
        seed: None, an integer or a SeedGenerator.
    """
    dtype = _float_dtype(dtype)
    rng = numpy_generator(seed)
    shape = _shape(shape)
    values = rng.standard_normal(shape)
    outside = np.abs(values) > 2.0
    while outside.any():
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2.0
    return _tensor(values * stddev + mean, dtype)


def dropout(inputs, rate, noise_shape=None, seed=None):
    """Zero each element with probability `rate` and scale the rest by 1 / (1 - rate)
    (differentiable through the tape).

    Args:
        inputs: a tensor.
        rate: the drop probability, in [0, 1).
        noise_shape: the shape of the keep mask, broadcast over inputs (None entries: the input's size).
        seed: None, an integer or a SeedGenerator.
    """
    from engine.ops.nn import dropout as _dropout
    return _dropout(inputs, rate, noise_shape=noise_shape, rng=numpy_generator(seed))


def shuffle(x, axis=0, seed=None):
    """x with its entries along `axis` in a random order.

    Args:
        x: a tensor.
        axis: the axis shuffled.
        seed: None, an integer or a SeedGenerator.
    """
    from engine import ops
    n = np.shape(x)[axis]
    order = numpy_generator(seed).permutation(n)
    return ops.take(x, order, axis=axis)


def categorical(logits, num_samples, dtype="int32", seed=None):
    """Class indices drawn from categorical distributions given by unnormalized log-probabilities.

    Args:
        logits: shape (batch, classes).
        num_samples: samples drawn per row.
        dtype: the integer dtype of the result.
        seed: None, an integer or a SeedGenerator.

    Returns:
        A Tensor of shape (batch, num_samples).
    """
    from engine.ops._util import to_array
    logits = np.asarray(to_array(logits), dtype=np.float64)
    if logits.ndim != 2:
        raise ValueError(f"categorical: logits must have shape (batch_size, num_classes), got {logits.shape}")
    rng = numpy_generator(seed)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    cdf = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    draws = rng.random((logits.shape[0], int(num_samples)))
    samples = np.stack([np.searchsorted(cdf[i], draws[i], side="right") for i in range(len(cdf))])
    return _tensor(np.minimum(samples, logits.shape[1] - 1), np.dtype(dtype))


def gamma(shape, alpha, dtype=None, seed=None):
    """Samples from gamma distributions of shape `alpha` (scale 1).

    Args:
        shape: the output shape.
        alpha: the shape parameter(s), broadcast to `shape`.
        dtype: a float dtype (default floatx).
        seed: None, an integer or a SeedGenerator.
    """
    dtype = _float_dtype(dtype)
    return _tensor(numpy_generator(seed).gamma(np.broadcast_to(np.asarray(alpha, dtype=np.float64), _shape(shape))), dtype)


def beta(shape, alpha, beta, dtype=None, seed=None):
    """Samples from beta distributions.

    Args:
        shape: the output shape.
        alpha: the first concentration(s), broadcast to `shape`.
        beta: the second concentration(s), broadcast to `shape`.
        dtype: a float dtype (default floatx).
        seed: None, an integer or a SeedGenerator.
    """
    dtype = _float_dtype(dtype)
    shape = _shape(shape)
    a = np.broadcast_to(np.asarray(alpha, dtype=np.float64), shape)
    b = np.broadcast_to(np.asarray(beta, dtype=np.float64), shape)
    return _tensor(numpy_generator(seed).beta(a, b), dtype)


def binomial(shape, counts, probabilities, dtype=None, seed=None):
    """Samples from binomial distributions (the number of successes in `counts` trials).

    Args:
        shape: the output shape.
        counts: the numbers of trials, broadcast to `shape`.
        probabilities: the success probabilities, broadcast to `shape`.
        dtype: a float dtype (default floatx), as Keras returns counts.
        seed: None, an integer or a SeedGenerator.
    """
    dtype = _float_dtype(dtype)
    shape = _shape(shape)
    n = np.broadcast_to(np.asarray(counts), shape).astype(np.int64)
    p = np.broadcast_to(np.asarray(probabilities, dtype=np.float64), shape)
    return _tensor(numpy_generator(seed).binomial(n, p), dtype)
