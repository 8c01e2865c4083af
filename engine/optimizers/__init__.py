"""Optimizers (keras.optimizers) with Keras 3's defaults, update rules and state order.

SGD, RMSprop, Adam, AdamW and Adagrad run on fused in-place kernels (engine._kernels.optimizer_step);
the others are float32 numpy, in place on the variables' arrays.
"""
import inspect

from engine._lazy import lazy_attributes, lazy_table
from engine.optimizers import schedules
from engine.optimizers.base import Optimizer
from engine.optimizers.kernel_optimizers import SGD, RMSprop, Adam, AdamW, Adagrad
from engine.optimizers.schedules import LearningRateSchedule, ExponentialDecay  # (engine's older paths)
from engine.saving.registry import register_lazy

# The numpy optimizers and the wrappers load on first use; they register for configs meanwhile.
_LAZY = lazy_table(__name__, {
    "engine.optimizers.adaptive": "Nadam Adamax Adadelta Ftrl Lion Lamb Adafactor",
    "engine.optimizers.muon": "Muon ScheduleFreeAdamW",
    "engine.optimizers.wrappers": "LossScaleOptimizer MultiOptimizer OptimizerMap",
    "": "adaptive muon wrappers",
})
__getattr__, __dir__ = lazy_attributes(globals(), _LAZY)
register_lazy("optimizers", {name: target for name, target in _LAZY.items() if name[:1].isupper()})

_CLASS_NAMES = ["Optimizer", "SGD", "RMSprop", "Adam", "AdamW", "Adagrad", "Nadam", "Adamax", "Adadelta", "Ftrl",
                "Lion", "Lamb", "Adafactor", "Muon", "ScheduleFreeAdamW", "LossScaleOptimizer", "MultiOptimizer"]
# Names `get` accepts, lower-cased, to the class's name (looked up in this module when asked for).
_BY_LOWER_NAME = {name.lower(): name for name in _CLASS_NAMES}


def serialize(optimizer):
    """An optimizer as Keras 3's config dictionary.

    Args:
        optimizer: an Optimizer.
    """
    from engine.saving.serialization import serialize_keras_object
    return serialize_keras_object(optimizer)


def deserialize(config, custom_objects=None, use_legacy_format=False):
    """An optimizer from its config dictionary.

    Args:
        config: the dictionary `serialize` gives.
        custom_objects: optional {name: class} for custom optimizers.
        use_legacy_format: must be False (the legacy format is not supported).
    """
    if use_legacy_format:
        raise ValueError("optimizers.deserialize: use_legacy_format=True (the TF 2 legacy format) is not supported")
    from engine.saving.serialization import deserialize_keras_object
    return deserialize_keras_object(config, custom_objects=custom_objects)


def get(identifier):
    """An Optimizer from a name ("adam", "SGD", ...), a config dictionary, an Optimizer or its class.

    Args:
        identifier: the name, config, instance or class.
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if inspect.isclass(identifier) and issubclass(identifier, Optimizer):
        return identifier()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str) and identifier.lower() in _BY_LOWER_NAME and \
            identifier.lower() not in ("optimizer", "lossscaleoptimizer", "multioptimizer"):
        name = _BY_LOWER_NAME[identifier.lower()]
        return (globals().get(name) or __getattr__(name))()
    raise ValueError(f"Unknown optimizer {identifier!r}. Known: "
                     f"{', '.join(sorted(k for k in _BY_LOWER_NAME if k != 'optimizer'))}")
