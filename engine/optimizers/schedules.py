"""Learning rate schedules (keras.optimizers.schedules): the learning rate as a function of the
optimizer's step, computed in float32 as Keras computes it."""
import math

import numpy as np

from engine.ops import convert_to_tensor
from engine.saving.registry import register_builtins

_F = np.float32


def _out(value):
    return convert_to_tensor(np.asarray(value, dtype=np.float32))


class LearningRateSchedule:
    """Base class: a schedule is called with the step (the optimizer's iteration count) and
    returns the learning rate; subclasses define `__call__` and `get_config`."""

    def __call__(self, step):
        raise NotImplementedError(f"Learning rate schedule {type(self).__name__} must define __call__(step)")

    def get_config(self):
        """The constructor arguments (subclasses define it)."""
        raise NotImplementedError(f"Learning rate schedule {type(self).__name__} must define get_config() "
                                  "to be serializable")

    @classmethod
    def from_config(cls, config):
        """Rebuild a schedule from `get_config()`'s dictionary."""
        return cls(**config)


def _positive(value, what, owner):
    if value <= 0:
        raise ValueError(f"{owner}: {what} must be > 0, got {what}={value}")


class _StepDecay(LearningRateSchedule):
    """A decay driven by p = step / decay_steps (floored with staircase=True)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name=None):
        _positive(decay_steps, "decay_steps", type(self).__name__)
        self.initial_learning_rate, self.decay_steps = initial_learning_rate, decay_steps
        self.decay_rate, self.staircase, self.name = decay_rate, staircase, name

    def _progress(self, step):
        p = _F(step) / _F(self.decay_steps)
        return np.floor(p) if self.staircase else p

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class ExponentialDecay(_StepDecay):
    """initial_learning_rate * decay_rate ** (step / decay_steps).

    Args:
        initial_learning_rate: the rate at step 0.
        decay_steps: the steps over which the rate is multiplied by decay_rate once.
        decay_rate: the decay factor.
        staircase: decay in whole intervals (floor of step / decay_steps).
        name: the schedule's name.
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name="ExponentialDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step):
        return _out(_F(self.initial_learning_rate) * np.power(_F(self.decay_rate), self._progress(step)))


class PiecewiseConstantDecay(LearningRateSchedule):
    """values[0] up to boundaries[0], values[i] for boundaries[i-1] < step <= boundaries[i], and
    values[-1] after the last boundary.

    Args:
        boundaries: increasing step boundaries.
        values: one more value than boundaries.
        name: the schedule's name.
    """

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        if len(boundaries) != len(values) - 1:
            raise ValueError(f"PiecewiseConstantDecay: boundaries must have one element less than values; got "
                             f"{len(boundaries)} boundaries and {len(values)} values")
        self.boundaries, self.values, self.name = boundaries, values, name

    def __call__(self, step):
        step = float(step)
        index = sum(step > b for b in self.boundaries)
        return _out(self.values[index])

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    """(initial - end) * (1 - step / decay_steps) ** power + end, held at end after decay_steps (or,
    with cycle=True, restarted with decay_steps stretched to the next multiple).

    Args:
        initial_learning_rate: the rate at step 0.
        decay_steps: the steps to reach end_learning_rate.
        end_learning_rate: the final rate.
        power: the polynomial's power.
        cycle: whether to cycle beyond decay_steps.
        name: the schedule's name.
    """

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0, cycle=False,
                 name="PolynomialDecay"):
        _positive(decay_steps, "decay_steps", "PolynomialDecay")
        self.initial_learning_rate, self.decay_steps = initial_learning_rate, decay_steps
        self.end_learning_rate, self.power, self.cycle, self.name = end_learning_rate, power, cycle, name

    def __call__(self, step):
        step, decay_steps = _F(step), _F(self.decay_steps)
        if self.cycle:
            decay_steps = decay_steps * (_F(1) if step == 0 else np.ceil(step / _F(self.decay_steps)))
        else:
            step = min(step, decay_steps)
        p = step / decay_steps
        initial, end = _F(self.initial_learning_rate), _F(self.end_learning_rate)
        return _out((initial - end) * np.power(_F(1) - p, _F(self.power)) + end)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "end_learning_rate": self.end_learning_rate, "power": self.power, "cycle": self.cycle,
                "name": self.name}


class InverseTimeDecay(_StepDecay):
    """initial_learning_rate / (1 + decay_rate * step / decay_steps).

    Args:
        initial_learning_rate: the rate at step 0.
        decay_steps: the step scale.
        decay_rate: the decay rate.
        staircase: decay in whole intervals.
        name: the schedule's name.
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name="InverseTimeDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step):
        return _out(_F(self.initial_learning_rate) / (_F(1) + _F(self.decay_rate) * self._progress(step)))


def _cosine(fraction):
    return _F(0.5) * (_F(1) + np.cos(_F(math.pi) * fraction))


class CosineDecay(LearningRateSchedule):
    """Cosine decay from the initial rate (or, with warmup, from warmup_target after a linear
    warmup of warmup_steps) to alpha times it over decay_steps.

    Args:
        initial_learning_rate: the rate at step 0.
        decay_steps: the steps of the cosine decay.
        alpha: the final rate as a fraction of the rate the decay starts from.
        name: the schedule's name.
        warmup_target: the rate the linear warmup reaches (None: no warmup).
        warmup_steps: the steps of the warmup.
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay", warmup_target=None,
                 warmup_steps=0):
        _positive(decay_steps, "decay_steps", "CosineDecay")
        self.initial_learning_rate, self.decay_steps, self.alpha = initial_learning_rate, decay_steps, alpha
        self.name, self.warmup_target, self.warmup_steps = name, warmup_target, warmup_steps

    def _decayed(self, step, start):
        decayed = (_F(1) - _F(self.alpha)) * _cosine(step / _F(self.decay_steps)) + _F(self.alpha)
        return start * decayed

    def __call__(self, step):
        initial, step, decay_steps = _F(self.initial_learning_rate), _F(step), _F(self.decay_steps)
        if self.warmup_target is None:
            return _out(self._decayed(min(step, decay_steps), initial))
        target, warmup = _F(self.warmup_target), _F(self.warmup_steps)
        step = min(step, decay_steps + warmup)
        if step < warmup:
            return _out((target - initial) * (step / warmup) + initial)
        return _out(self._decayed(step - warmup, target))

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha, "name": self.name, "warmup_target": self.warmup_target,
                "warmup_steps": self.warmup_steps}


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR): each period is t_mul times longer than the last and
    starts m_mul times lower.

    Args:
        initial_learning_rate: the rate at step 0.
        first_decay_steps: the length of the first period.
        t_mul: the factor each period's length grows by.
        m_mul: the factor each period's starting rate shrinks by.
        alpha: the minimum rate as a fraction of the initial one.
        name: the schedule's name.
    """

    def __init__(self, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0, name="SGDRDecay"):
        _positive(first_decay_steps, "first_decay_steps", "CosineDecayRestarts")
        self.initial_learning_rate, self.first_decay_steps = initial_learning_rate, first_decay_steps
        self._t_mul, self._m_mul, self.alpha, self.name = t_mul, m_mul, alpha, name

    def __call__(self, step):
        fraction = _F(step) / _F(self.first_decay_steps)
        t_mul, one = _F(self._t_mul), _F(1)
        if t_mul == one:
            restart = np.floor(fraction)
            fraction = fraction - restart
        else:
            restart = np.floor(np.log(one - fraction * (one - t_mul)) / np.log(t_mul))
            done = (one - np.power(t_mul, restart)) / (one - t_mul)
            fraction = (fraction - done) / np.power(t_mul, restart)
        cosine = _cosine(fraction) * np.power(_F(self._m_mul), restart)
        decayed = (one - _F(self.alpha)) * cosine + _F(self.alpha)
        return _out(_F(self.initial_learning_rate) * decayed)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "first_decay_steps": self.first_decay_steps,
                "t_mul": self._t_mul, "m_mul": self._m_mul, "alpha": self.alpha, "name": self.name}


def serialize(learning_rate_schedule):
    """A schedule as Keras 3's config dictionary.

    Args:
        learning_rate_schedule: a LearningRateSchedule.
    """
    from engine.saving.serialization import serialize_keras_object
    return serialize_keras_object(learning_rate_schedule)


def deserialize(config, custom_objects=None):
    """A schedule from its config dictionary.

    Args:
        config: the dictionary `serialize` gives.
        custom_objects: optional {name: class} for custom schedules.
    """
    from engine.saving.serialization import deserialize_keras_object
    return deserialize_keras_object(config, custom_objects=custom_objects)


register_builtins("schedules", globals(), package="keras.optimizers.schedules")  # loadable from .keras configs by class name
