"""Weight initializers with Keras 3's names, defaults and fan computations."""
import inspect
import math

import numpy as np

from engine import random as engine_random
from engine.saving.registry import register_builtins


def compute_fans(shape, input_axes=None, output_axes=None):
    """(fan_in, fan_out) as Keras computes them.

    Args:
        shape: the weight's shape.
        input_axes, output_axes: the axes whose sizes multiply into the fan-in and the fan-out
            (an EinsumDense kernel says which are which). Without both, a shape of rank > 2 is
            taken as a convolution kernel (..., in, out) whose fans include the receptive field.
    """
    shape = tuple(shape)
    if input_axes is not None and output_axes is not None:
        return int(np.prod([shape[a] for a in input_axes])), int(np.prod([shape[a] for a in output_axes]))
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    """Base class of weight initializers.

    An initializer is called with a `shape` and optional `dtype` and returns an array of initial
    values. Subclasses implement `__call__(shape, dtype=None)` and `get_config()`.
    """

    def __call__(self, shape, dtype=None):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class Constant(Initializer):
    """Initializer that fills the weights with a constant value.

    Args:
        value: the value to fill with (default 0.0).
    """

    def __init__(self, value=0.0):
        self.value = value

    def __call__(self, shape, dtype=None):
        return np.full(shape, self.value, dtype=dtype or "float32")

    def get_config(self):
        return {"value": self.value}


class Zeros(Constant):
    """Initializer that fills the weights with zeros."""

    def __init__(self):
        super().__init__(0.0)

    def get_config(self):
        return {}


class Ones(Constant):
    """Initializer that fills the weights with ones."""

    def __init__(self):
        super().__init__(1.0)

    def get_config(self):
        return {}


class _Seeded(Initializer):
    def __init__(self, seed=None):
        self.seed = seed

    def _rng(self):
        return engine_random.make_generator(self.seed)


class RandomUniform(_Seeded):
    """Initializer drawing from a uniform distribution on `[minval, maxval)`.

    Args:
        minval: the lower bound of the range (default -0.05).
        maxval: the upper bound of the range (default 0.05).
        seed: an integer seed for reproducible draws, or `None` (default) for an unseeded draw.
    """

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval, self.maxval = minval, maxval

    def __call__(self, shape, dtype=None):
        return self._rng().uniform(self.minval, self.maxval, size=shape).astype(dtype or "float32")

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class RandomNormal(_Seeded):
    """Initializer drawing from a normal distribution.

    Args:
        mean: the mean of the distribution (default 0.0).
        stddev: the standard deviation of the distribution (default 0.05).
        seed: an integer seed for reproducible draws, or `None` (default) for an unseeded draw.
    """

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape, dtype=None):
        return self._rng().normal(self.mean, self.stddev, size=shape).astype(dtype or "float32")

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


def _truncated_normal(rng, shape, stddev):
    """Normal samples redrawn until within two standard deviations (as TF's truncated_normal)."""
    out = rng.normal(0.0, 1.0, size=shape)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = rng.normal(0.0, 1.0, size=int(bad.sum()))
        bad = np.abs(out) > 2.0
    return out * stddev


class TruncatedNormal(_Seeded):
    """Initializer drawing from a truncated normal distribution.

    Values more than two standard deviations from the mean are discarded and redrawn.

    Args:
        mean: the mean of the distribution (default 0.0).
        stddev: the standard deviation of the normal before truncation (default 0.05).
        seed: an integer seed for reproducible draws, or `None` (default) for an unseeded draw.
    """

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape, dtype=None):
        return (self.mean + _truncated_normal(self._rng(), shape, self.stddev)).astype(dtype or "float32")

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class VarianceScaling(_Seeded):
    """Initializer whose scale adapts to the fan-in and/or fan-out of the weights.

    The draws have variance `scale / n`, where `n` is the fan-in, the fan-out or their average
    (depending on `mode`). For convolution kernels the fans include the receptive field size.

    Args:
        scale: the scaling factor, a positive float (default 1.0).
        mode: which fan to divide by: `"fan_in"` (default), `"fan_out"` or `"fan_avg"`.
        distribution: `"truncated_normal"` (default; a normal truncated at two standard deviations
            and rescaled to the target variance), `"untruncated_normal"` or `"uniform"`
            (on `[-limit, limit]` with `limit = sqrt(3 * scale / n)`).
        seed: an integer seed for reproducible draws, or `None` (default) for an unseeded draw.
        input_axes, output_axes: optional lists of the weight's axes that make its fan-in and
            fan-out (default None: the convolution-kernel rule of `compute_fans`).
    """

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None, input_axes=None,
                 output_axes=None):
        super().__init__(seed)
        self.input_axes = None if input_axes is None else [int(a) for a in input_axes]
        self.output_axes = None if output_axes is None else [int(a) for a in output_axes]
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"VarianceScaling: mode must be fan_in, fan_out or fan_avg, got {mode!r}")
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError(f"VarianceScaling: unknown distribution {distribution!r}")
        self.scale, self.mode, self.distribution = scale, mode, distribution

    def __call__(self, shape, dtype=None):
        fan_in, fan_out = compute_fans(shape, self.input_axes, self.output_axes)
        denom = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        scale = self.scale / max(1.0, denom)
        rng = self._rng()
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * scale)
            out = rng.uniform(-limit, limit, size=shape)
        elif self.distribution == "untruncated_normal":
            out = rng.normal(0.0, math.sqrt(scale), size=shape)
        else:
            # 0.8796... is the stddev of a unit normal truncated at two standard deviations.
            out = _truncated_normal(rng, shape, math.sqrt(scale) / 0.87962566103423978)
        return out.astype(dtype or "float32")

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution, "seed": self.seed,
                "input_axes": self.input_axes, "output_axes": self.output_axes}

    def with_fan_axes(self, input_axes, output_axes):
        """This initializer, or a copy of it reading its fans from the given axes when it was not
        told any (Keras's rule for EinsumDense and MultiHeadAttention kernels)."""
        if self.input_axes is not None and self.output_axes is not None:
            return self
        return type(self).from_config({**self.get_config(), "input_axes": list(input_axes),
                                       "output_axes": list(output_axes)})


class GlorotUniform(VarianceScaling):
    """Glorot (Xavier) uniform initializer.

    A `VarianceScaling` with `scale=1.0`, `mode="fan_avg"` and `distribution="uniform"`.

    Args:
        seed: an integer seed for reproducible draws, or `None` (default) for an unseeded draw.
        input_axes, output_axes: optional lists of the axes making the fan-in and fan-out.
    """

    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(1.0, "fan_avg", "uniform", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed, "input_axes": self.input_axes, "output_axes": self.output_axes}


class GlorotNormal(VarianceScaling):
    """Glorot (Xavier) normal initializer.

    A `VarianceScaling` with `scale=1.0`, `mode="fan_avg"` and `distribution="truncated_normal"`.

    Args:
        seed: an integer seed for reproducible draws, or `None` (default) for an unseeded draw.
        input_axes, output_axes: optional lists of the axes making the fan-in and fan-out.
    """

    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(1.0, "fan_avg", "truncated_normal", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed, "input_axes": self.input_axes, "output_axes": self.output_axes}


class HeUniform(VarianceScaling):
    """He uniform initializer, suited to ReLU layers.

    A `VarianceScaling` with `scale=2.0`, `mode="fan_in"` and `distribution="uniform"`.

    Args:
        seed: an integer seed for reproducible draws, or `None` (default) for an unseeded draw.
        input_axes, output_axes: optional lists of the axes making the fan-in and fan-out.
    """

    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(2.0, "fan_in", "uniform", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed, "input_axes": self.input_axes, "output_axes": self.output_axes}


class HeNormal(VarianceScaling):
    """He normal initializer, suited to ReLU layers.

    A `VarianceScaling` with `scale=2.0`, `mode="fan_in"` and `distribution="truncated_normal"`.

    Args:
        seed: an integer seed for reproducible draws, or `None` (default) for an unseeded draw.
        input_axes, output_axes: optional lists of the axes making the fan-in and fan-out.
    """

    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(2.0, "fan_in", "truncated_normal", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed, "input_axes": self.input_axes, "output_axes": self.output_axes}


class LecunUniform(VarianceScaling):
    """LeCun uniform initializer.

    A `VarianceScaling` with `scale=1.0`, `mode="fan_in"` and `distribution="uniform"`.

    Args:
        seed: an integer seed for reproducible draws, or `None` (default) for an unseeded draw.
        input_axes, output_axes: optional lists of the axes making the fan-in and fan-out.
    """

    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(1.0, "fan_in", "uniform", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed, "input_axes": self.input_axes, "output_axes": self.output_axes}


class LecunNormal(VarianceScaling):
    """LeCun normal initializer, suited to SELU layers.

    A `VarianceScaling` with `scale=1.0`, `mode="fan_in"` and `distribution="truncated_normal"`.

    Args:
        seed: an integer seed for reproducible draws, or `None` (default) for an unseeded draw.
        input_axes, output_axes: optional lists of the axes making the fan-in and fan-out.
    """

    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(1.0, "fan_in", "truncated_normal", seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed, "input_axes": self.input_axes, "output_axes": self.output_axes}


class Orthogonal(_Seeded):
    """Initializer that produces a random orthogonal matrix.

    The shape is flattened to `(prod(shape[:-1]), shape[-1])`; the result has orthonormal rows or
    columns (whichever are fewer), multiplied by `gain`. The shape must have rank at least 2.

    Args:
        gain: multiplicative factor applied to the orthogonal matrix (default 1.0).
        seed: an integer seed for reproducible draws, or `None` (default) for an unseeded draw.
    """

    def __init__(self, gain=1.0, seed=None):
        super().__init__(seed)
        self.gain = gain

    def __call__(self, shape, dtype=None):
        if len(shape) < 2:
            raise ValueError(f"Orthogonal: needs a shape of rank >= 2, got {tuple(shape)}")
        rows = int(np.prod(shape[:-1]))
        cols = shape[-1]
        a = self._rng().normal(0.0, 1.0, size=(max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))  # makes the decomposition unique, so the draw is uniform
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape).astype(dtype or "float32")

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


class Identity(Initializer):
    """Initializer that produces an identity matrix (for 2-D shapes only).

    Non-square shapes give ones on the main diagonal and zeros elsewhere.

    Args:
        gain: multiplicative factor applied to the identity matrix (default 1.0).
    """

    def __init__(self, gain=1.0):
        self.gain = gain

    def __call__(self, shape, dtype=None):
        if len(shape) != 2:
            raise ValueError(f"Identity: needs a 2-D shape, got {tuple(shape)}")
        return (self.gain * np.eye(*shape)).astype(dtype or "float32")

    def get_config(self):
        return {"gain": self.gain}


_ALIASES = {
    "zeros": Zeros, "ones": Ones, "constant": Constant,
    "random_uniform": RandomUniform, "uniform": RandomUniform,
    "random_normal": RandomNormal, "normal": RandomNormal,
    "truncated_normal": TruncatedNormal, "variance_scaling": VarianceScaling,
    "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal,
    "he_uniform": HeUniform, "he_normal": HeNormal,
    "lecun_uniform": LecunUniform, "lecun_normal": LecunNormal,
    "orthogonal": Orthogonal, "identity": Identity,
}


def get(identifier):
    """An initializer from a name, a config dict, an instance or a callable."""
    if identifier is None:
        return None
    if isinstance(identifier, Initializer) or callable(identifier) and not isinstance(identifier, type):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if isinstance(identifier, dict):
        name = identifier.get("class_name", "")
        cls = globals().get(name) if isinstance(globals().get(name), type) else _ALIASES.get(_snake(name))
        if cls is None or not issubclass(cls, Initializer):
            return deserialize(identifier)      # a registered or custom initializer
        # Keras writes a few keys (input_axes, output_axes) that engine's initializers do not take.
        accepted = inspect.signature(cls.__init__).parameters
        return cls.from_config({k: v for k, v in identifier.get("config", {}).items() if k in accepted})
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in _ALIASES:
            return _ALIASES[key]()
        cls = globals().get(identifier)
        if isinstance(cls, type) and issubclass(cls, Initializer):
            return cls()
    raise ValueError(f"Unknown initializer {identifier!r}. Known: {', '.join(sorted(_ALIASES))}")


def _snake(name):
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def serialize(initializer):
    """Returns the Keras-format config dict of an initializer.

    Args:
        initializer: an `Initializer` instance. The result has keys `module`, `class_name`,
            `config` (from its `get_config()`) and `registered_name`.
    """
    return {"module": "keras.initializers", "class_name": type(initializer).__name__,
            "config": initializer.get_config(), "registered_name": None}


def deserialize(config, custom_objects=None):
    """Returns the initializer a config dictionary describes.

    Args:
        config: a dictionary from `serialize` (or Keras's), with `class_name` and `config`.
        custom_objects: optional `{name: class}` for initializers neither built in nor registered
            with `register_keras_serializable`.

    Raises:
        ValueError: if the config names no known initializer.
    """
    from engine.saving.serialization import deserialize_in_family
    return deserialize_in_family(config, "initializers", Initializer, custom_objects)


# Keras 3 exports each initializer class under its snake-case name too (and two long names).
constant, zeros, ones = Constant, Zeros, Ones
random_uniform, random_normal, truncated_normal = RandomUniform, RandomNormal, TruncatedNormal
variance_scaling, glorot_uniform, glorot_normal = VarianceScaling, GlorotUniform, GlorotNormal
he_uniform, he_normal, lecun_uniform, lecun_normal = HeUniform, HeNormal, LecunUniform, LecunNormal
orthogonal = OrthogonalInitializer = Orthogonal
identity = IdentityInitializer = Identity

register_builtins("initializers", globals())  # loadable from .keras configs by class name
