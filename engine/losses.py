"""Losses (keras.losses): one value per sample, then the mean over the batch.

Each Loss is built on a fused per-sample kernel (engine.ops.nn.per_sample_loss),
which computes the value and its gradient in one pass.
"""
import numpy as np

from engine import ops
from engine.ops.nn import mean_loss, per_sample_loss


class Loss:
    """Base class: subclasses implement call(y_true, y_pred) -> per-sample losses."""

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        self.name = name or _snake(type(self).__name__)
        self.reduction = reduction

    def call(self, y_true, y_pred):
        raise NotImplementedError

    def __call__(self, y_true, y_pred, sample_weight=None):
        per_sample = self.call(y_true, y_pred)
        return reduce_loss(per_sample, sample_weight, self.reduction)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def reduce_loss(per_sample, sample_weight=None, reduction="sum_over_batch_size"):
    if sample_weight is not None:
        sw = np.asarray(sample_weight, dtype=np.asarray(per_sample).dtype)
        while sw.ndim < np.ndim(per_sample):
            sw = sw[..., None]
        per_sample = ops.multiply(per_sample, sw)
    if reduction in (None, "none"):
        return per_sample
    if reduction == "sum":
        return ops.sum(per_sample)
    return ops.mean(per_sample)


def _snake(name):
    import re
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class _KernelLoss(Loss):
    """A loss computed by one fused kernel; the plain batch mean is fused into the same op."""

    def kind_for(self):
        return self.kind

    def call(self, y_true, y_pred):
        return per_sample_loss(self.kind_for(), y_true, y_pred)

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is None and self.reduction == "sum_over_batch_size":
            return mean_loss(self.kind_for(), y_true, y_pred)
        return super().__call__(y_true, y_pred, sample_weight)


class MeanSquaredError(_KernelLoss):
    kind = "mse"

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error", dtype=None):
        super().__init__(name, reduction)


class MeanAbsoluteError(_KernelLoss):
    kind = "mae"

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error", dtype=None):
        super().__init__(name, reduction)


class BinaryCrossentropy(_KernelLoss):
    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="binary_crossentropy", dtype=None):
        super().__init__(name, reduction)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing

    def kind_for(self):
        return "binary_crossentropy_logits" if self.from_logits else "binary_crossentropy"

    def __call__(self, y_true, y_pred, sample_weight=None):
        if self.label_smoothing:
            y_true = np.asarray(y_true) * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        return super().__call__(y_true, y_pred, sample_weight)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits, "label_smoothing": self.label_smoothing}


class CategoricalCrossentropy(_KernelLoss):
    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="categorical_crossentropy", dtype=None):
        super().__init__(name, reduction)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing

    def kind_for(self):
        return "categorical_crossentropy_logits" if self.from_logits else "categorical_crossentropy"

    def __call__(self, y_true, y_pred, sample_weight=None):
        if self.label_smoothing:
            y_true = np.asarray(y_true)
            y_true = y_true * (1.0 - self.label_smoothing) + self.label_smoothing / y_true.shape[-1]
        return super().__call__(y_true, y_pred, sample_weight)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits, "label_smoothing": self.label_smoothing}


class SparseCategoricalCrossentropy(_KernelLoss):
    def __init__(self, from_logits=False, ignore_class=None, reduction="sum_over_batch_size",
                 name="sparse_categorical_crossentropy", dtype=None):
        super().__init__(name, reduction)
        self.from_logits = from_logits

    def kind_for(self):
        return "sparse_categorical_crossentropy" + ("_logits" if self.from_logits else "")

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}


class LossFunctionWrapper(Loss):
    """A loss from a plain function fn(y_true, y_pred) -> per-sample values."""

    def __init__(self, fn, reduction="sum_over_batch_size", name=None, **kwargs):
        super().__init__(name or getattr(fn, "__name__", "loss"), reduction)
        self.fn = fn
        self.kwargs = kwargs

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred, **self.kwargs)

    def get_config(self):
        from engine.saving.serialization import serialize_keras_object
        return {**super().get_config(), "fn": serialize_keras_object(self.fn), **self.kwargs}

    @classmethod
    def from_config(cls, config):
        from engine.saving.serialization import deserialize_keras_object
        config = dict(config)
        config["fn"] = deserialize_keras_object(config["fn"])
        return cls(**config)


def mean_squared_error(y_true, y_pred):
    return per_sample_loss("mse", y_true, y_pred)


def mean_absolute_error(y_true, y_pred):
    return per_sample_loss("mae", y_true, y_pred)


def binary_crossentropy(y_true, y_pred, from_logits=False):
    return per_sample_loss("binary_crossentropy" + ("_logits" if from_logits else ""), y_true, y_pred)


def categorical_crossentropy(y_true, y_pred, from_logits=False):
    return per_sample_loss("categorical_crossentropy" + ("_logits" if from_logits else ""), y_true, y_pred)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False):
    return per_sample_loss("sparse_categorical_crossentropy" + ("_logits" if from_logits else ""),
                           y_true, y_pred)


mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error

_BY_NAME = {
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "binary_crossentropy": BinaryCrossentropy, "bce": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy, "cce": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}
_FUNCTIONS = {mean_squared_error: MeanSquaredError, mean_absolute_error: MeanAbsoluteError,
              binary_crossentropy: BinaryCrossentropy, categorical_crossentropy: CategoricalCrossentropy,
              sparse_categorical_crossentropy: SparseCategoricalCrossentropy}


def get(identifier):
    """A Loss object from a name, a Loss, a Loss class, or a function of (y_true, y_pred)."""
    if identifier is None:
        return None
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower())
        if cls is None:
            raise ValueError(f"Unknown loss {identifier!r}. Known: {', '.join(sorted(_BY_NAME))}")
        return cls()
    if callable(identifier):
        if identifier in _FUNCTIONS:
            return _FUNCTIONS[identifier]()
        return LossFunctionWrapper(identifier)
    raise ValueError(f"Could not interpret loss {identifier!r}")
