"""Optimizers (keras.optimizers) with Keras 3's defaults and update rules.

The update arithmetic runs in fused in-place kernels (engine._kernels.elementwise);
this module keeps the per-variable state and the step counter.
"""
import math
import warnings

import numpy as np

from engine.autodiff import SparseGradient
from engine.tensor import Tensor
from engine.variables import Variable
from engine._kernels import elementwise as K


class LearningRateSchedule:
    def __call__(self, step):
        raise NotImplementedError

    def get_config(self):
        return {}


class ExponentialDecay(LearningRateSchedule):
    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name=None):
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps, self.decay_rate, self.staircase = decay_steps, decay_rate, staircase
        self.name = name or "ExponentialDecay"

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}

    def __call__(self, step):
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate * self.decay_rate ** p


class schedules:  # noqa: N801 - mirrors keras.optimizers.schedules
    LearningRateSchedule = LearningRateSchedule
    ExponentialDecay = ExponentialDecay


class Optimizer:
    def __init__(self, learning_rate=0.001, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None, name=None, **kwargs):
        if kwargs.pop("lr", None) is not None:
            raise ValueError("Optimizer: `lr` was renamed `learning_rate` in Keras 3; pass learning_rate=...")
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s) {sorted(kwargs)}")
        if sum(c is not None for c in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError("Optimizer: pass at most one of clipnorm, clipvalue and global_clipnorm")
        self.name = name or type(self).__name__.lower()
        self._schedule = learning_rate if isinstance(learning_rate, LearningRateSchedule) else None
        self._learning_rate = Variable(0.0 if self._schedule else float(learning_rate), shape=(),
                                       dtype="float32", trainable=False, name="learning_rate")
        self.weight_decay = weight_decay
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.iterations = Variable(0, shape=(), dtype="int64", trainable=False, name="iteration")
        self._slots = {}

    @property
    def learning_rate(self):
        if self._schedule is not None:
            self._learning_rate.assign(self._schedule(int(self.iterations._value)))
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, LearningRateSchedule):
            self._schedule = value
        else:
            self._schedule = None
            self._learning_rate.assign(float(value))

    lr = learning_rate

    def _current_lr(self):
        if self._schedule is not None:
            return float(self._schedule(int(self.iterations._value)))
        return float(self._learning_rate._value)

    # -- state ---------------------------------------------------------------------------
    def _slot(self, var, name, init=0.0):
        key = (id(var), name)
        slot = self._slots.get(key)
        if slot is None:
            slot = np.full(var.shape, init, dtype=var.dtype)
            self._slots[key] = slot
        return slot

    @property
    def variables(self):
        return [self.iterations, self._learning_rate] + list(self._slots.values())

    def build(self, var_list):
        """Create the per-variable state up front (it is otherwise made on first use)."""

    # Keras 3 stores an optimizer's state as iterations, learning rate, then its slot variables:
    # each tuple of slot names is interleaved per variable, and the tuples follow each other.
    def _slot_groups(self):
        return []

    def _slot_initial_value(self, name):
        return 0.0

    def ordered_state(self, variables):
        state = [np.array(self.iterations._value), np.array(self._learning_rate._value)]
        for group in self._slot_groups():
            for var in variables:
                for name in group:
                    state.append(self._slot(var, name, self._slot_initial_value(name)).copy())
        return state

    def load_ordered_state(self, variables, values):
        expected = 2 + sum(len(g) for g in self._slot_groups()) * len(variables)
        if len(values) != expected:
            raise ValueError(f"{type(self).__name__}: the saved optimizer state has {len(values)} arrays, "
                             f"this optimizer and model need {expected}")
        slots = []
        it = iter(values[2:])
        for group in self._slot_groups():
            for var in variables:
                for name in group:
                    value = next(it)
                    if value.shape != var.shape:
                        raise ValueError(f"{type(self).__name__}: saved slot {name!r} for {var.path} has shape "
                                         f"{value.shape}, the variable has {var.shape}")
                    slots.append((var, name, value))
        self.iterations.assign(values[0])
        self._learning_rate.assign(values[1])
        for var, name, value in slots:
            self._slot(var, name, self._slot_initial_value(name))[...] = value

    # -- applying gradients ------------------------------------------------------------------
    def _clip(self, grads):
        if self.clipvalue is not None:
            grads = [None if g is None else np.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        if self.clipnorm is not None:
            out = []
            for g in grads:
                if g is not None:
                    norm = float(np.sqrt(np.sum(np.square(g, dtype=np.float64))))
                    if norm > self.clipnorm:
                        g = g * (self.clipnorm / norm)
                out.append(g)
            grads = out
        if self.global_clipnorm is not None:
            total = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads if g is not None))
            if total > self.global_clipnorm:
                grads = [None if g is None else g * (self.global_clipnorm / total) for g in grads]
        return grads

    def apply(self, grads, trainable_variables=None):
        """Update each variable from its gradient (tensors, arrays, or None for no gradient).

        Args:
            grads: one gradient per variable; a variable whose gradient is None is left alone.
            trainable_variables: the Variables, in the order of `grads`.
        """
        if trainable_variables is None:
            raise ValueError(f"{type(self).__name__}.apply: pass the variables the gradients belong to")
        grads = list(grads)
        trainable_variables = list(trainable_variables)
        if len(grads) != len(trainable_variables):
            raise ValueError(f"{type(self).__name__}.apply: {len(grads)} gradients for "
                             f"{len(trainable_variables)} variables")
        missing = []
        for i, g in enumerate(grads):
            if g is None:
                missing.append(getattr(trainable_variables[i], "path", "?"))
            elif isinstance(g, Tensor):
                grads[i] = g._value
        if grads and len(missing) == len(grads):
            raise ValueError("No gradients provided for any variable: the loss does not depend on "
                             f"{missing}. Compute it from the model's outputs with engine.ops or "
                             "tensor operators inside the GradientTape block.")
        if missing and tuple(missing) != getattr(self, "_warned_missing", None):
            self._warned_missing = tuple(missing)
            warnings.warn(f"Gradients do not exist for variables {missing} when minimizing the loss. "
                          "If using `model.compile()`, did you forget to provide a `loss` argument?")
        if self.clipnorm is not None or self.clipvalue is not None or self.global_clipnorm is not None:
            grads = [g.dense() if isinstance(g, SparseGradient) else g for g in grads]
        grads = self._clip(grads)
        lr = self._current_lr()
        self.iterations._value[...] += 1
        step = int(self.iterations._value)
        for g, var in zip(grads, trainable_variables):
            if g is None:
                continue
            w = var._value if isinstance(var, Variable) else var
            if g.shape != w.shape:
                raise ValueError(f"{type(self).__name__}: gradient of shape {g.shape} for variable "
                                 f"{getattr(var, 'path', '?')!r} of shape {w.shape}")
            if self.weight_decay:
                w -= w * (self.weight_decay * lr)
            if isinstance(g, SparseGradient):
                # The built-in steps hand g straight to a kernel that also takes a table's
                # gradient by rows (same bits as the dense step); anything else gets it dense.
                if g.dtype == w.dtype and w.ndim == 2 and getattr(self.update_step, "takes_rows", False):
                    self.update_step(g.kernel_rows(), var, w, lr, step)
                    continue
                g = g.dense()
            if not (g.dtype == w.dtype and g.flags.c_contiguous):
                g = np.ascontiguousarray(g, dtype=w.dtype)
            self.update_step(g, var, w, lr, step)
            constraint = getattr(var, "constraint", None)
            if constraint is not None:
                var.assign(constraint(w))

    def apply_gradients(self, grads_and_vars):
        pairs = list(grads_and_vars)
        return self.apply([g for g, _ in pairs], [v for _, v in pairs])

    def update_step(self, gradient, variable, w, lr, step):
        raise NotImplementedError


    def get_config(self):
        # A schedule is stored as itself (a nested config, as Keras writes it), not as today's rate.
        lr = self._schedule if self._schedule is not None else self._current_lr()
        return {"name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "clipvalue": self.clipvalue, "global_clipnorm": self.global_clipnorm}

    @classmethod
    def from_config(cls, config):
        if isinstance(config.get("learning_rate"), dict):
            from engine.saving.serialization import deserialize_keras_object
            config = {**config, "learning_rate": deserialize_keras_object(config["learning_rate"])}
        return cls(**config)


def _takes_rows(update_step):
    """Mark an update_step that passes its gradient straight to an engine._kernels.elementwise
    optimizer kernel, which also accepts a table's gradient by rows (see Optimizer.apply)."""
    update_step.takes_rows = True
    return update_step


class SGD(Optimizer):
    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, name="SGD", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if not 0 <= momentum <= 1:
            raise ValueError(f"SGD: momentum must be in [0, 1], got {momentum}")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def _slot_groups(self):
        return [("momentum",)] if self.momentum else []

    @_takes_rows
    def update_step(self, g, var, w, lr, step):
        if self.momentum:
            K.sgd_momentum_update(w, g, self._slot(var, "momentum"), lr, self.momentum, self.nesterov)
        else:
            K.sgd_update(w, g, lr)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class RMSprop(Optimizer):
    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 name="rmsprop", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, centered

    def _slot_groups(self):
        return [("velocity",)] + ([("momentum",)] if self.momentum > 0 else []) + \
            ([("average_gradient",)] if self.centered else [])

    @_takes_rows
    def update_step(self, g, var, w, lr, step):
        mom = self._slot(var, "momentum") if self.momentum > 0 else None
        avg = self._slot(var, "average_gradient") if self.centered else None
        K.rmsprop_update(w, g, self._slot(var, "velocity"), lr, self.rho, self.epsilon,
                         self.momentum, mom, self.centered, avg)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


class Adam(Optimizer):
    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
                 name="adam", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = beta_1, beta_2, epsilon, amsgrad

    def _slot_groups(self):
        return [("momentum", "velocity")] + ([("velocity_hat",)] if self.amsgrad else [])

    @_takes_rows
    def update_step(self, g, var, w, lr, step):
        # In the variable's precision, as Keras computes it (float32 alpha for float32 weights).
        t = w.dtype.type
        alpha = float(t(lr) * np.sqrt(t(1) - t(self.beta_2) ** t(step)) / (t(1) - t(self.beta_1) ** t(step)))
        vhat = self._slot(var, "velocity_hat") if self.amsgrad else None
        K.adam_update(w, g, self._slot(var, "momentum"), self._slot(var, "velocity"), alpha,
                      self.beta_1, self.beta_2, self.epsilon, vhat)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class AdamW(Adam):
    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, name="adamw", **kwargs):
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         amsgrad=amsgrad, name=name, weight_decay=weight_decay, **kwargs)


class Adagrad(Optimizer):
    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, name="adagrad",
                 **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.initial_accumulator_value, self.epsilon = initial_accumulator_value, epsilon

    def _slot_groups(self):
        return [("accumulator",)]

    def _slot_initial_value(self, name):
        return self.initial_accumulator_value

    @_takes_rows
    def update_step(self, g, var, w, lr, step):
        acc = self._slot(var, "accumulator", self.initial_accumulator_value)
        K.adagrad_update(w, g, acc, lr, self.epsilon)

    def get_config(self):
        return {**super().get_config(), "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


_BY_NAME = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW, "adagrad": Adagrad}


def get(identifier):
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(f"Unknown optimizer {identifier!r}. Known: {', '.join(sorted(_BY_NAME))}")
