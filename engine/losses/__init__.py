"""Losses (keras.losses): per-sample loss functions and the Loss classes that weight and reduce them."""
import inspect

from engine.saving.registry import register_functions

from engine.losses.loss import Loss, reduce_weighted_values, squeeze_or_expand_to_same_rank
from engine.losses.losses import (
    LossFunctionWrapper, MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError, CosineSimilarity, Huber, LogCosh, KLDivergence, Poisson, BinaryCrossentropy,
    CategoricalCrossentropy, SparseCategoricalCrossentropy, BinaryFocalCrossentropy, CategoricalFocalCrossentropy,
    CategoricalGeneralizedCrossEntropy, Hinge, SquaredHinge, CategoricalHinge, Dice, Tversky, Circle, CTC,
    mean_squared_error, mean_absolute_error, mean_absolute_percentage_error, mean_squared_logarithmic_error,
    cosine_similarity, huber, log_cosh, kl_divergence, poisson, binary_crossentropy, categorical_crossentropy,
    sparse_categorical_crossentropy, binary_focal_crossentropy, categorical_focal_crossentropy,
    categorical_generalized_cross_entropy, hinge, squared_hinge, categorical_hinge, dice, tversky, circle, ctc,
    mse, MSE, mae, MAE, mape, MAPE, msle, MSLE, kld, KLD, bce, BCE)

_CLASSES = [Loss, LossFunctionWrapper, MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError,
            MeanSquaredLogarithmicError, CosineSimilarity, Huber, LogCosh, KLDivergence, Poisson,
            BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy, BinaryFocalCrossentropy,
            CategoricalFocalCrossentropy, CategoricalGeneralizedCrossEntropy, Hinge, SquaredHinge,
            CategoricalHinge, Dice, Tversky, Circle, CTC]
_FUNCTION_LIST = [mean_squared_error, mean_absolute_error, mean_absolute_percentage_error,
                  mean_squared_logarithmic_error, cosine_similarity, huber, log_cosh, kl_divergence, poisson,
                  binary_crossentropy, categorical_crossentropy, sparse_categorical_crossentropy,
                  binary_focal_crossentropy, categorical_focal_crossentropy, categorical_generalized_cross_entropy,
                  hinge, squared_hinge, categorical_hinge, dice, tversky, circle, ctc]

# Each function's class: `get` hands out Loss objects, which the training loop calls with weights.
_CLASS_OF = {mean_squared_error: MeanSquaredError, mean_absolute_error: MeanAbsoluteError,
             mean_absolute_percentage_error: MeanAbsolutePercentageError,
             mean_squared_logarithmic_error: MeanSquaredLogarithmicError, cosine_similarity: CosineSimilarity,
             huber: Huber, log_cosh: LogCosh, kl_divergence: KLDivergence, poisson: Poisson,
             binary_crossentropy: BinaryCrossentropy, categorical_crossentropy: CategoricalCrossentropy,
             sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
             binary_focal_crossentropy: BinaryFocalCrossentropy,
             categorical_focal_crossentropy: CategoricalFocalCrossentropy, hinge: Hinge, squared_hinge: SquaredHinge,
             categorical_hinge: CategoricalHinge, dice: Dice, tversky: Tversky, circle: Circle, ctc: CTC}

# Names `get` and `deserialize` accept: class names, function names and Keras's short aliases.
ALL_OBJECTS_DICT = {obj.__name__: obj for obj in _CLASSES + _FUNCTION_LIST}
ALL_OBJECTS_DICT.update({"bce": bce, "BCE": bce, "kld": kld, "KLD": kld, "mae": mae, "MAE": mae, "mse": mse,
                         "MSE": mse, "mape": mape, "MAPE": mape, "msle": msle, "MSLE": msle,
                         "cce": categorical_crossentropy, "logcosh": log_cosh, "huber_loss": huber})

# Loss functions by every name configs may use for them (mse, MSE, mean_squared_error, ...).
register_functions("losses", {name: fn for name, fn in globals().items()
                              if inspect.isfunction(fn) and fn.__module__.startswith("engine.losses")
                              and list(inspect.signature(fn).parameters)[:2] == ["y_true", "y_pred"]})


def serialize(loss):
    """A loss (Loss object or loss function) as Keras 3's config dictionary.

    Args:
        loss: a Loss instance or a loss function.

    Returns:
        The config dictionary.
    """
    from engine.saving.serialization import serialize_keras_object
    return serialize_keras_object(loss)


def deserialize(name, custom_objects=None):
    """A loss from its config dictionary or name.

    Args:
        name: a config dictionary (from `serialize`) or the name of a loss class or function.
        custom_objects: optional {name: class or function} for custom losses.

    Returns:
        A Loss instance or a loss function.
    """
    from engine.saving.serialization import deserialize_keras_object
    if isinstance(name, str):
        if custom_objects and name in custom_objects:
            return custom_objects[name]
        if name not in ALL_OBJECTS_DICT:
            raise ValueError(f"Unknown loss {name!r}. Known: {', '.join(sorted(ALL_OBJECTS_DICT))}")
        return ALL_OBJECTS_DICT[name]
    return deserialize_keras_object(name, custom_objects=custom_objects)


def get(identifier):
    """A Loss object from a name, a config dictionary, a Loss, a Loss class or a function.

    Unlike Keras's `get`, a name or one of engine's loss functions gives the Loss object (called
    as `loss(y_true, y_pred, sample_weight=None)`, with a `.name`), which is what the training loop
    needs; a custom function is wrapped in a `LossFunctionWrapper`.

    Args:
        identifier: None, a name ("mse", "categorical_crossentropy", "Huber", ...), a config
            dictionary, a Loss instance or class, or a function fn(y_true, y_pred).

    Returns:
        A Loss instance (None for None).
    """
    if identifier is None:
        return None
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, dict):
        identifier = deserialize(identifier)
    elif isinstance(identifier, str):
        obj = ALL_OBJECTS_DICT.get(identifier, ALL_OBJECTS_DICT.get(identifier.lower()))
        if obj is None:
            raise ValueError(f"Unknown loss {identifier!r}. Known: {', '.join(sorted(ALL_OBJECTS_DICT))}")
        identifier = obj
    if isinstance(identifier, Loss):
        return identifier
    if inspect.isclass(identifier) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier):
        cls = _CLASS_OF.get(identifier)
        return cls() if cls is not None else LossFunctionWrapper(identifier)
    raise ValueError(f"Could not interpret loss identifier {identifier!r}")
