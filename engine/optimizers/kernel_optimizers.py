"""The optimizers with fused update kernels (engine._kernels.optimizer_step): SGD, RMSprop, Adam,
AdamW and Adagrad, with Keras 3's defaults and update rules."""
import numpy as np

from engine._kernels import optimizer_step as K
from engine.optimizers.base import Optimizer, takes_rows
from engine.optimizers.deferred_decay import DecayDeferringVariable
from engine.saving.registry import register_builtins


class _FusedRule:
    """The planned step's update of all variables in one call (optimizer_step.FusedUpdate) for
    the built-in rules. Each class says which kernel rule its update_step is: `_fused_rule()`
    gives (rule name, its three state slot names or None each, its flag) and
    `_fused_scalars(lr, step, dtype)` the kernel's (lr, a, b, eps) for a step. A subclass that
    overrides update_step runs its own, per variable."""

    _rule_class = None      # the class whose update_step the fused rule stands for (set below)

    def _fused_step(self, variables, arrays):
        if type(self).update_step is not self._rule_class.update_step or not arrays or \
                arrays[0].dtype not in (np.float32, np.float64) or \
                any(a.dtype != arrays[0].dtype for a in arrays):
            return None     # mixed dtypes (or others) keep the per-variable calls
        spec = self._fused_rule()
        rule, names, flag = spec
        slots = [None if n is None else [self._slot(v, n) for v in variables] for n in names]
        fused = K.FusedUpdate(rule, list(arrays), *slots, flag=flag)
        dtype = arrays[0].dtype
        every = list(range(len(arrays)))
        # slots that may hold deferred decays (deferred_decay.py), which a dense step must see applied
        deferring = [(i, slot) for n in names if n is not None for i, slot in
                     enumerate(self._slot_variable(v, n) for v in variables)
                     if isinstance(slot, DecayDeferringVariable)]

        def step_all(grads, lr, step):
            if self._fused_rule() != spec:     # momentum, centered, amsgrad... changed since
                return every
            for i, slot in deferring:
                if isinstance(grads[i], np.ndarray):
                    slot.apply_deferred()
            return fused(grads, *self._fused_scalars(lr, step, dtype))
        return step_all


class SGD(_FusedRule, Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    Args:
        learning_rate: the step size.
        momentum: in [0, 1]; velocity = momentum * velocity - lr * g.
        nesterov: use Nesterov momentum.
        name: the optimizer's name.
        **kwargs: the base Optimizer's arguments (weight_decay, clipnorm, clipvalue,
            global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
            gradient_accumulation_steps).
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if not 0 <= momentum <= 1:
            raise ValueError(f"SGD: momentum must be in [0, 1], got {momentum}")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def _slot_groups(self):
        return [("momentum",)] if self.momentum else []

    @takes_rows
    def update_step(self, g, var, w, lr, step):
        if self.momentum:
            K.sgd_momentum_update(w, g, self._slot(var, "momentum"), lr, self.momentum, self.nesterov)
        else:
            K.sgd_update(w, g, lr)

    def _fused_rule(self):
        return ("momentum", ("momentum", None, None), self.nesterov) if self.momentum else \
            ("sgd", (None, None, None), False)

    def _fused_scalars(self, lr, step, dtype):
        return lr, self.momentum, 0.0, 0.0

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class RMSprop(_FusedRule, Optimizer):
    """RMSprop: divide the gradient by a running root mean square of recent gradients.

    Args:
        learning_rate: the step size.
        rho: the decay of the mean square.
        momentum: momentum of the update (0: none).
        epsilon: added to the denominator.
        centered: divide by the centred second moment (the variance estimate).
        name: the optimizer's name.
        **kwargs: the base Optimizer's arguments (see `SGD`).
    """

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, centered

    def _slot_groups(self):
        return [("velocity",)] + ([("momentum",)] if self.momentum > 0 else []) + \
            ([("average_gradient",)] if self.centered else [])

    @takes_rows
    def update_step(self, g, var, w, lr, step):
        if isinstance(g, tuple) and not self.momentum > 0 and not self.centered:
            # a table's gradient by rows: the untouched rows' velocity decays are deferred
            velocity, pending = self._slot_variable(var, "velocity").deferring(self.rho)
            K.rmsprop_update(w, g, velocity, lr, self.rho, self.epsilon, 0.0, None, False, None, pending)
            return
        mom = self._slot(var, "momentum") if self.momentum > 0 else None
        avg = self._slot(var, "average_gradient") if self.centered else None
        K.rmsprop_update(w, g, self._slot(var, "velocity"), lr, self.rho, self.epsilon,
                         self.momentum, mom, self.centered, avg)

    def _slot_class(self, name):
        return DecayDeferringVariable if name == "velocity" else super()._slot_class(name)

    def _fused_rule(self):
        return "rmsprop", ("velocity", "momentum" if self.momentum > 0 else None,
                           "average_gradient" if self.centered else None), False

    def _fused_scalars(self, lr, step, dtype):
        return lr, self.rho, self.momentum, self.epsilon

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


class Adam(_FusedRule, Optimizer):
    """Adam: adaptive moment estimation.

    Args:
        learning_rate: the step size.
        beta_1: decay of the first moment.
        beta_2: decay of the second moment.
        epsilon: added to the denominator.
        amsgrad: use the maximum of past second moments (AMSGrad).
        name: the optimizer's name.
        **kwargs: the base Optimizer's arguments (see `SGD`).
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
                 name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = beta_1, beta_2, epsilon, amsgrad

    def _slot_groups(self):
        return [("momentum", "velocity")] + ([("velocity_hat",)] if self.amsgrad else [])

    @takes_rows
    def update_step(self, g, var, w, lr, step):
        alpha = self._alpha(lr, step, w.dtype)
        vhat = self._slot(var, "velocity_hat") if self.amsgrad else None
        K.adam_update(w, g, self._slot(var, "momentum"), self._slot(var, "velocity"), alpha,
                      self.beta_1, self.beta_2, self.epsilon, vhat)

    def _alpha(self, lr, step, dtype):
        """The bias-corrected step size, in the variable's precision as Keras computes it (a
        float32 alpha for float32 weights)."""
        t = dtype.type
        return float(t(lr) * np.sqrt(t(1) - t(self.beta_2) ** t(step)) / (t(1) - t(self.beta_1) ** t(step)))

    def _fused_rule(self):
        return "adam", ("momentum", "velocity", "velocity_hat" if self.amsgrad else None), False

    def _fused_scalars(self, lr, step, dtype):
        return self._alpha(lr, step, dtype), self.beta_1, self.beta_2, self.epsilon

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay (arguments as `Adam`, weight_decay defaulting to 0.004)."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         amsgrad=amsgrad, name=name, weight_decay=weight_decay, **kwargs)


class Adagrad(_FusedRule, Optimizer):
    """Adagrad: per-element step sizes from the sum of past squared gradients.

    Args:
        learning_rate: the step size.
        initial_accumulator_value: the accumulators' starting value.
        epsilon: added to the denominator.
        name: the optimizer's name.
        **kwargs: the base Optimizer's arguments (see `SGD`).
    """

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, name=None,
                 **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.initial_accumulator_value, self.epsilon = initial_accumulator_value, epsilon

    def _slot_groups(self):
        return [("accumulator",)]

    def _slot_initial_value(self, name):
        return self.initial_accumulator_value

    @takes_rows
    def update_step(self, g, var, w, lr, step):
        acc = self._slot(var, "accumulator", self.initial_accumulator_value)
        K.adagrad_update(w, g, acc, lr, self.epsilon)

    def _fused_rule(self):
        return "adagrad", ("accumulator", None, None), False

    def _fused_scalars(self, lr, step, dtype):
        return lr, 0.0, 0.0, self.epsilon

    def get_config(self):
        return {**super().get_config(), "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


for _cls in (SGD, RMSprop, Adam, Adagrad):
    _cls._rule_class = _cls

register_builtins("optimizers", globals())  # loadable from .keras configs by class name
