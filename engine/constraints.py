"""Weight constraints (keras.constraints), applied after each optimizer step."""
import numpy as np


class Constraint:
    def __call__(self, w):
        return w

    def get_config(self):
        return {}


class MaxNorm(Constraint):
    def __init__(self, max_value=2.0, axis=0):
        self.max_value, self.axis = max_value, axis

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}

    def __call__(self, w):
        norms = np.sqrt(np.sum(np.square(w), axis=self.axis, keepdims=True))
        return w * (np.clip(norms, 0, self.max_value) / (1e-7 + norms))


class NonNeg(Constraint):
    def __call__(self, w):
        return w * (w >= 0)


class UnitNorm(Constraint):
    def __init__(self, axis=0):
        self.axis = axis

    def get_config(self):
        return {"axis": self.axis}

    def __call__(self, w):
        return w / (1e-7 + np.sqrt(np.sum(np.square(w), axis=self.axis, keepdims=True)))


class MinMaxNorm(Constraint):
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
    if isinstance(identifier, dict):
        cls = globals().get(identifier.get("class_name"))
        if not (isinstance(cls, type) and issubclass(cls, Constraint)):
            raise ValueError(f"Unknown constraint {identifier.get('class_name')!r}")
        return cls(**identifier.get("config", {}))
    if identifier is None or isinstance(identifier, Constraint) or callable(identifier):
        return identifier
    names = {"max_norm": MaxNorm, "non_neg": NonNeg, "unit_norm": UnitNorm, "min_max_norm": MinMaxNorm}
    if isinstance(identifier, str) and identifier.lower() in names:
        return names[identifier.lower()]()
    raise ValueError(f"Unknown constraint {identifier!r}. Known: {', '.join(names)}")
