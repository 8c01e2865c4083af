"""Weight constraints (keras.constraints), applied after each optimizer step."""
import numpy as np
from engine.saving.registry import register_builtins


class Constraint:
    """Base class of weight constraints.

    A constraint is called on a weight value after each optimizer update and returns the projected
    value. Subclasses implement `__call__(w)` and `get_config()`; the base class leaves weights
    unchanged.
    """

    def __call__(self, w):
        return w

    def get_config(self):
        return {}


class MaxNorm(Constraint):
    """Constrains the norm of the weights incident to each unit to be at most `max_value`.

    Args:
        max_value: the maximum norm (default 2.0).
        axis: the axis (or axes) along which norms are computed (default 0). For a `Dense` kernel
            of shape `(input_dim, units)`, `axis=0` constrains each unit's weight vector.
    """

    def __init__(self, max_value=2.0, axis=0):
        self.max_value, self.axis = max_value, axis

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}

    def __call__(self, w):
        norms = np.sqrt(np.sum(np.square(w), axis=self.axis, keepdims=True))
        return w * (np.clip(norms, 0, self.max_value) / (1e-7 + norms))


class NonNeg(Constraint):
    """Constrains the weights to be non-negative by zeroing negative entries."""

    def __call__(self, w):
        return w * (w >= 0)


class UnitNorm(Constraint):
    """Constrains the weights incident to each unit to have unit norm.

    Args:
        axis: the axis (or axes) along which norms are computed (default 0).
    """

    def __init__(self, axis=0):
        self.axis = axis

    def get_config(self):
        return {"axis": self.axis}

    def __call__(self, w):
        return w / (1e-7 + np.sqrt(np.sum(np.square(w), axis=self.axis, keepdims=True)))


class MinMaxNorm(Constraint):
    """Constrains the norm of the weights incident to each unit to lie between bounds.

    Args:
        min_value: the minimum norm (default 0.0).
        max_value: the maximum norm (default 1.0).
        rate: how far to move towards the clipped norm on each application: 1.0 (default)
            rescales exactly into the range, smaller values move only part of the way
            (`norm = rate * clip(norm) + (1 - rate) * norm`).
        axis: the axis (or axes) along which norms are computed (default 0).
    """

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value, self.max_value, self.rate, self.axis = min_value, max_value, rate, axis

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, "axis": self.axis}

    def __call__(self, w):
        norms = np.sqrt(np.sum(np.square(w), axis=self.axis, keepdims=True))
        desired = self.rate * np.clip(norms, self.min_value, self.max_value) + (1 - self.rate) * norms
        return w * (desired / (1e-7 + norms))


max_norm, non_neg, unit_norm, min_max_norm = MaxNorm, NonNeg, UnitNorm, MinMaxNorm


def get(identifier):
    """Returns a constraint for an identifier.

    Args:
        identifier: a config dict (`{"class_name": ..., "config": ...}`), one of the names
            `"max_norm"`, `"non_neg"`, `"unit_norm"` or `"min_max_norm"` (giving the constraint with
            its defaults), a `Constraint` or other callable (returned as is), or `None`.

    Raises:
        ValueError: if `identifier` cannot be interpreted.
    """
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if identifier is None or isinstance(identifier, Constraint) or callable(identifier):
        return identifier
    names = {"max_norm": MaxNorm, "non_neg": NonNeg, "unit_norm": UnitNorm, "min_max_norm": MinMaxNorm}
    if isinstance(identifier, str) and identifier.lower() in names:
        return names[identifier.lower()]()
    raise ValueError(f"Unknown constraint {identifier!r}. Known: {', '.join(names)}")


def serialize(constraint):
    """Returns the Keras-format config dictionary of a constraint.

    Args:
        constraint: a `Constraint` instance (built in or registered with
            `register_keras_serializable`).
    """
    from engine.saving.serialization import serialize_keras_object
    return serialize_keras_object(constraint)


def deserialize(config, custom_objects=None):
    """Returns the constraint a config dictionary describes.

    Args:
        config: a dictionary from `serialize` (or Keras's), with `class_name` and `config`.
        custom_objects: optional `{name: class}` for constraints neither built in nor registered.

    Raises:
        ValueError: if the config names no known constraint.
    """
    from engine.saving.serialization import deserialize_in_family
    return deserialize_in_family(config, "constraints", Constraint, custom_objects)


register_builtins("constraints", globals())  # loadable from .keras configs by class name
