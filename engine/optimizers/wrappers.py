"""Optimizers that drive other optimizers: LossScaleOptimizer (dynamic loss scaling) and
MultiOptimizer (a different optimizer per group of variables, chosen by variable path)."""
import re
from collections.abc import MutableMapping

import numpy as np

from engine.optimizers.base import Optimizer
from engine.tensor import Tensor
from engine.variables import Variable
from engine.saving.registry import register_builtins

_BASE_DEFAULTS = {"weight_decay": None, "clipnorm": None, "global_clipnorm": None, "clipvalue": None,
                  "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None,
                  "loss_scale_factor": None, "gradient_accumulation_steps": None}


def _array(g):
    return g._value if isinstance(g, Tensor) else g


class LossScaleOptimizer(Optimizer):
    """Dynamic loss scaling around another optimizer: `scale_loss` multiplies the loss by a scale;
    `apply` divides the gradients by it and applies them with the inner optimizer when they are
    all finite (and then, every dynamic_growth_steps such steps, doubles the scale), or skips the
    step and halves the scale when they are not.

    Args:
        inner_optimizer: the optimizer that applies the unscaled gradients.
        initial_scale: the starting scale.
        dynamic_growth_steps: finite steps between doublings of the scale.
        name: the optimizer's name.
    """

    def __init__(self, inner_optimizer, initial_scale=2.0 ** 15, dynamic_growth_steps=2000, name=None, **kwargs):
        if not kwargs.pop("dynamic", True):
            raise ValueError("LossScaleOptimizer: dynamic=False is not supported; set loss_scale_factor on the "
                             "inner optimizer instead")
        for key, default in _BASE_DEFAULTS.items():
            if key in kwargs and kwargs.pop(key) != default:
                raise ValueError(f"LossScaleOptimizer does not support `{key}`; set it on the inner_optimizer")
        if kwargs:
            raise ValueError(f"LossScaleOptimizer does not support arguments {sorted(kwargs)}")
        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = inner_optimizer
        self.initial_scale, self.dynamic_growth_steps = initial_scale, dynamic_growth_steps
        inner_optimizer.loss_scale_factor = None   # scaling twice would be wrong
        self.step_counter = Variable(0, shape=(), dtype="int32", trainable=False, name="step_counter")
        self.dynamic_scale = Variable(initial_scale, shape=(), dtype="float32", trainable=False, name="dynamic_scale")

    @property
    def learning_rate(self):
        """The inner optimizer's learning rate."""
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        if hasattr(self, "inner_optimizer"):
            self.inner_optimizer.learning_rate = value
        else:
            Optimizer.learning_rate.fset(self, value)

    @property
    def iterations(self):
        """The inner optimizer's iterations."""
        return self.inner_optimizer.iterations

    @iterations.setter
    def iterations(self, value):
        self.inner_optimizer.iterations = value

    @property
    def scales_loss(self):
        """Always: `apply` divides the gradients by the dynamic scale."""
        return True

    def scale_loss(self, loss):
        """The loss multiplied by the current scale."""
        self.__dict__["_loss_was_scaled"] = True
        return loss * float(self.dynamic_scale._value)

    def build(self, var_list):
        var_list = list(var_list)
        if self._built_variables is None:
            self._built_variables = var_list
        self.inner_optimizer.build(var_list)

    @property
    def variables(self):
        return [self._iterations, self._learning_rate, self.step_counter, self.dynamic_scale] + \
            self.inner_optimizer.variables

    def ordered_state(self, variables):
        own = [np.array(v._value) for v in (self._iterations, self._learning_rate, self.step_counter,
                                            self.dynamic_scale)]
        return own + self.inner_optimizer.ordered_state(variables)

    def load_ordered_state(self, variables, values):
        values = list(values)
        self.inner_optimizer.load_ordered_state(variables, values[4:])
        for var, value in zip((self._iterations, self._learning_rate, self.step_counter, self.dynamic_scale),
                              values[:4]):
            var.assign(value)

    def apply(self, grads, trainable_variables=None):
        """Unscale and apply the gradients if all are finite; adjust the scale either way."""
        grads = [None if g is None else np.asarray(_array(g) if not hasattr(g, "dense") else g.dense())
                 for g in grads]
        if self._built_variables is None and trainable_variables is not None:
            self.build(trainable_variables)
        self._check_loss_was_scaled()
        finite = all(np.all(np.isfinite(g)) for g in grads if g is not None)
        if not finite:
            self.step_counter.assign(0)
            self.dynamic_scale.assign(self.dynamic_scale._value * np.float32(0.5))
            return self.iterations
        scale = self.dynamic_scale._value
        self.inner_optimizer.apply([None if g is None else g / scale.astype(g.dtype) for g in grads],
                                   trainable_variables)
        if int(self.step_counter._value) == self.dynamic_growth_steps - 1:
            self.step_counter.assign(0)
            self.dynamic_scale.assign(self.dynamic_scale._value * np.float32(2.0))
        else:
            self.step_counter.assign_add(1)
        return self.iterations

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    def get_config(self):
        from engine.saving.serialization import serialize_keras_object
        return {"name": self.name, "inner_optimizer": serialize_keras_object(self.inner_optimizer),
                "initial_scale": self.initial_scale, "dynamic_growth_steps": self.dynamic_growth_steps}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from engine.saving.serialization import deserialize_keras_object
        config = dict(config)
        inner = deserialize_keras_object(config.pop("inner_optimizer"), custom_objects=custom_objects)
        return cls(inner, **config)


class OptimizerMap(MutableMapping):
    """Which optimizer each variable gets: {path or regular expression: optimizer}, with a default.

    Args:
        default_optimizer: the optimizer of variables no key matches.
        optimizer_map: {variable path or full-match pattern: optimizer}.
    """

    def __init__(self, default_optimizer, optimizer_map=None):
        if not isinstance(default_optimizer, Optimizer):
            raise TypeError(f"OptimizerMap: default_optimizer must be an Optimizer, got {default_optimizer!r}")
        if optimizer_map is not None and not isinstance(optimizer_map, dict):
            raise TypeError(f"OptimizerMap: optimizer_map must be a dict, got {optimizer_map!r}")
        self._default_optimizer = default_optimizer
        self._optimizer_map = {}
        for key, opt in (optimizer_map or {}).items():
            self[key] = opt

    @property
    def default_optimizer(self):
        """The optimizer of variables no key matches."""
        return self._default_optimizer

    def __getitem__(self, key):
        if key in self._optimizer_map:
            return self._optimizer_map[key]
        matches = [p for p in self._optimizer_map if re.fullmatch(p, key)]
        if len(matches) > 1:
            raise ValueError(f"OptimizerMap: several optimizers match variable {key!r}: {matches}")
        return self._optimizer_map[matches[0]] if matches else self._default_optimizer

    def __setitem__(self, key, optimizer):
        if key in self._optimizer_map:
            raise ValueError(f"OptimizerMap: {key!r} is already mapped to {self._optimizer_map[key]!r}")
        if not isinstance(key, str):
            raise ValueError(f"OptimizerMap: keys must be strings, got {key!r}")
        if not isinstance(optimizer, Optimizer) or isinstance(optimizer, (LossScaleOptimizer, MultiOptimizer)):
            raise ValueError(f"OptimizerMap: values must be plain optimizers (not LossScaleOptimizer or "
                             f"MultiOptimizer), got {optimizer!r}")
        self._optimizer_map[key] = optimizer

    def __delitem__(self, key):
        del self._optimizer_map[key]

    def __len__(self):
        return len(self._optimizer_map)

    def __iter__(self):
        return iter(self._optimizer_map)

    def __call__(self, variable):
        return self[getattr(variable, "path", getattr(variable, "name", ""))]

    def get_config(self):
        """The default optimizer and the map, as configs."""
        from engine.saving.serialization import serialize_keras_object
        return {"default_optimizer": serialize_keras_object(self._default_optimizer),
                "optimizer_map": {k: serialize_keras_object(v) for k, v in self._optimizer_map.items()}}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from engine.saving.serialization import deserialize_keras_object
        default = deserialize_keras_object(config["default_optimizer"], custom_objects=custom_objects)
        mapping = {k: deserialize_keras_object(v, custom_objects=custom_objects)
                   for k, v in (config.get("optimizer_map") or {}).items()}
        return cls(default, mapping)


class MultiOptimizer(Optimizer):
    """Apply a different optimizer to each group of variables.

    Args:
        optimizer_map: an OptimizerMap (or a callable variable -> optimizer with `values()` and
            `default_optimizer`).
        loss_scale_factor: set on every inner optimizer.
        name: the optimizer's name.
    """

    def __init__(self, optimizer_map, loss_scale_factor=None, name=None):
        super().__init__(learning_rate=0.0, name=name)
        self._optimizer_map = optimizer_map
        self._inner = []
        for opt in list(getattr(optimizer_map, "values", lambda: [])()) + \
                [getattr(optimizer_map, "default_optimizer", None)]:
            if opt is not None and opt not in self._inner:
                self._inner.append(opt)
        self.loss_scale_factor = loss_scale_factor

    @property
    def loss_scale_factor(self):
        """Set on every inner optimizer (they divide their gradients by it)."""
        return self.__dict__.get("_loss_scale_factor")

    @loss_scale_factor.setter
    def loss_scale_factor(self, value):
        self.__dict__["_loss_scale_factor"] = value
        for opt in self.__dict__.get("_inner", []):
            opt.loss_scale_factor = value

    @property
    def optimizers(self):
        """The inner optimizers."""
        return list(self._inner)

    @property
    def learning_rate(self):
        raise AttributeError("MultiOptimizer has no learning rate of its own: use its inner optimizers'")

    @learning_rate.setter
    def learning_rate(self, value):
        if hasattr(self, "_optimizer_map"):
            raise AttributeError("MultiOptimizer has no learning rate of its own: set its inner optimizers'")
        Optimizer.learning_rate.fset(self, value)

    def _groups(self, variables):
        groups = [[] for _ in self._inner]
        for var in variables:
            opt = self._optimizer_map(var)
            if isinstance(opt, (LossScaleOptimizer, MultiOptimizer)) or not isinstance(opt, Optimizer):
                raise ValueError(f"MultiOptimizer: variable {getattr(var, 'path', '?')} maps to {opt!r}; each "
                                 "variable needs a plain optimizer")
            if opt not in self._inner:
                opt.loss_scale_factor = self.loss_scale_factor
                self._inner.append(opt)
                groups.append([])
            groups[self._inner.index(opt)].append(var)
        return groups

    def build(self, var_list):
        var_list = list(var_list)
        if self._built_variables is None:
            self._built_variables = var_list
        for opt, group in zip(self._inner, self._groups(var_list)):
            if group:
                opt.build(group)

    @property
    def variables(self):
        out = [self._iterations, self._learning_rate]   # (Keras keeps an unused rate of its own)
        for opt in self._inner:
            out.extend(opt.variables)
        return out

    def ordered_state(self, variables):
        state = [np.array(self._iterations._value), np.array(self._learning_rate._value)]
        for opt, group in zip(self._inner, self._groups(variables)):
            state.extend(opt.ordered_state(group))
        return state

    def load_ordered_state(self, variables, values):
        values = list(values)
        self._iterations.assign(values[0])
        self._learning_rate.assign(values[1])
        at = 2
        for opt, group in zip(self._inner, self._groups(variables)):
            n = len(opt.ordered_state(group))
            opt.load_ordered_state(group, values[at:at + n])
            at += n

    def apply(self, grads, trainable_variables=None):
        """Give each inner optimizer the gradients of its variables."""
        if trainable_variables is None:
            if self._built_variables is None:
                raise ValueError("MultiOptimizer.apply: pass the variables, or build the optimizer first")
            trainable_variables = self._built_variables
        trainable_variables = list(trainable_variables)
        if self._built_variables is None:
            self.build(trainable_variables)
        by_var = {id(v): g for g, v in zip(grads, trainable_variables)}
        for opt, group in zip(self._inner, self._groups(trainable_variables)):
            if group:
                opt.apply([by_var[id(v)] for v in group], group)
        self._iterations.assign_add(1)
        return self._iterations

    def finalize_variable_values(self, var_list):
        for opt, group in zip(self._inner, self._groups(list(var_list))):
            if group:
                opt.finalize_variable_values(group)

    def get_config(self):
        from engine.saving.serialization import serialize_keras_object
        return {"optimizer_map": serialize_keras_object(self._optimizer_map),
                "loss_scale_factor": self.loss_scale_factor, "name": self.name}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from engine.saving.serialization import deserialize_keras_object
        config = dict(config)
        config["optimizer_map"] = deserialize_keras_object(config["optimizer_map"], custom_objects=custom_objects)
        return cls(**config)


register_builtins("optimizers", globals())  # loadable from .keras configs by class name
