"""Muon (orthogonalized momentum for matrices, AdamW for the rest) and ScheduleFreeAdamW, with
Keras 3's update rules in float32 numpy."""
import re

import numpy as np

from engine.optimizers.base import Optimizer, moving_average
from engine.saving.registry import register_builtins


class Muon(Optimizer):
    """Muon: 2-D weights step along their momentum orthogonalized by Newton-Schulz iterations;
    other variables (and embeddings, and layers matching exclude_layers) use AdamW.

    Args:
        learning_rate: the step size.
        adam_beta_1, adam_beta_2: AdamW's moment decays.
        adam_weight_decay: AdamW's weight decay.
        epsilon: AdamW's denominator epsilon.
        weight_decay: Muon's weight decay.
        name: the optimizer's name.
        exclude_layers: regular expressions of variable paths that use AdamW.
        exclude_embeddings: embedding tables (paths containing "embedding") use AdamW.
        muon_a, muon_b, muon_c: the Newton-Schulz polynomial's coefficients.
        adam_lr_ratio: AdamW's learning rate as a multiple of Muon's.
        momentum: Muon's momentum.
        ns_steps: Newton-Schulz iterations.
        nesterov: use Nesterov momentum.
        rms_rate: the update is scaled by sqrt(max(rows, cols)) * rms_rate (None: not scaled).
        clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency,
            loss_scale_factor, gradient_accumulation_steps: as for every optimizer.
    """

    def __init__(self, learning_rate=0.001, adam_beta_1=0.9, adam_beta_2=0.999, adam_weight_decay=0.004,
                 epsilon=1e-7, weight_decay=0.004, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, exclude_layers=None, exclude_embeddings=True,
                 muon_a=3.4445, muon_b=-4.775, muon_c=2.0315, adam_lr_ratio=1, momentum=0.95, ns_steps=5,
                 nesterov=True, rms_rate=0.2, **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, use_ema=use_ema,
                         ema_momentum=ema_momentum, ema_overwrite_frequency=ema_overwrite_frequency,
                         loss_scale_factor=loss_scale_factor, gradient_accumulation_steps=gradient_accumulation_steps,
                         name=name, **kwargs)
        self.adam_beta_1, self.adam_beta_2, self.epsilon = adam_beta_1, adam_beta_2, epsilon
        self.muon_a, self.muon_b, self.muon_c = muon_a, muon_b, muon_c
        self.adam_lr_ratio, self.momentum, self.ns_steps, self.nesterov = adam_lr_ratio, momentum, ns_steps, nesterov
        self.exclude_embeddings, self.exclude_layers = exclude_embeddings, exclude_layers or []
        self.adam_weight_decay, self.rms_rate = adam_weight_decay, rms_rate

    def _uses_adamw(self, var):
        if len(var.shape) != 2:
            return True
        path = getattr(var, "path", getattr(var, "name", ""))
        if self.exclude_embeddings and "embedding" in path.lower():
            return True
        return any(re.search(pattern, path) for pattern in self.exclude_layers)

    def _slot_groups(self):
        return [("momentum", "velocity")]

    def _slot_shape(self, var, name):
        if name == "velocity" and not self._uses_adamw(var):
            return None
        return tuple(var.shape)

    def _apply_weight_decay(self, pairs, lr):
        for _, var, w in pairs:
            if not self._use_weight_decay(var):
                continue
            decay = self.adam_weight_decay if self._uses_adamw(var) else self.weight_decay
            if decay is not None:
                t = w.dtype.type
                w -= w * t(decay) * t(lr)

    @staticmethod
    def _swap_last(x):
        return np.swapaxes(x, -1, -2)

    def _orthogonalize(self, x):
        """Newton-Schulz iterations toward the nearest semi-orthogonal matrix (in x's precision)."""
        t = x.dtype.type
        a, b, c = t(self.muon_a), t(self.muon_b), t(self.muon_c)
        tall = x.shape[-2] > x.shape[-1]
        if tall:
            x = self._swap_last(x)
        x = x / (np.sqrt(np.sum(np.square(x), axis=(-2, -1), keepdims=True)) + t(1e-7))
        for _ in range(self.ns_steps):
            gram = x @ self._swap_last(x)
            x = a * x + (b * gram + c * gram @ gram) @ x
        return self._swap_last(x) if tall else x

    def update_step(self, g, var, w, lr, step):
        t = w.dtype.type
        m = self._slot(var, "momentum")
        if self._uses_adamw(var):
            v = self._slot(var, "velocity")
            lr = t(lr * self.adam_lr_ratio)
            b1, b2 = t(self.adam_beta_1), t(self.adam_beta_2)
            alpha = lr * np.sqrt(t(1) - b2 ** t(step)) / (t(1) - b1 ** t(step))
            moving_average(m, g, 1 - self.adam_beta_1)     # (Keras: 1 - beta in Python)
            moving_average(v, np.square(g), 1 - self.adam_beta_2)
            w -= m * alpha / (np.sqrt(v) + t(self.epsilon))
            return
        m += g + m * t(self.momentum - 1)
        direction = g + t(self.momentum) * m if self.nesterov else m
        update = t(lr) * self._orthogonalize(direction)
        if self.rms_rate is not None:
            update = update * np.sqrt(t(max(update.shape[0], update.shape[1]))) * t(self.rms_rate)
        w -= update

    def get_config(self):
        return {**super().get_config(), "adam_beta_1": self.adam_beta_1, "adam_beta_2": self.adam_beta_2,
                "epsilon": self.epsilon, "exclude_layers": self.exclude_layers,
                "muon_a": self.muon_a, "muon_b": self.muon_b, "muon_c": self.muon_c,
                "adam_lr_ratio": self.adam_lr_ratio, "momentum": self.momentum, "ns_steps": self.ns_steps,
                "nesterov": self.nesterov, "exclude_embeddings": self.exclude_embeddings,
                "adam_weight_decay": self.adam_weight_decay, "rms_rate": self.rms_rate}


class ScheduleFreeAdamW(Optimizer):
    """Schedule-free AdamW (Defazio et al. 2024): the variables hold an interpolation of an
    averaged iterate and the base (momentum) iterate, so no learning rate schedule is needed.

    Args:
        learning_rate: the step size.
        beta_1: the interpolation factor.
        beta_2: decay of the second moment.
        epsilon: added to the denominator.
        warmup_steps: linear learning rate warmup over this many steps.
        name: the optimizer's name.
        **kwargs: the base Optimizer's arguments (weight_decay, clipnorm, ...).
    """

    def __init__(self, learning_rate=0.0025, beta_1=0.9, beta_2=0.999, epsilon=1e-8, warmup_steps=0, name=None,
                 **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon, self.warmup_steps = beta_1, beta_2, epsilon, warmup_steps

    def _slot_groups(self):
        return [("momentum", "velocity")]

    def _slot_initial_value(self, name):
        # The base iterate starts at the variable's value (Keras copies it in build).
        return (lambda var: np.asarray(var)) if name == "momentum" else 0.0

    def update_step(self, g, var, w, lr, step):
        t = w.dtype.type
        step_t, lr = t(step), t(lr)
        if self.warmup_steps > 0:
            lr = lr * min(step_t / t(self.warmup_steps), t(1))
        b1, b2 = t(self.beta_1), t(self.beta_2)
        z, v = self._slot(var, "momentum"), self._slot(var, "velocity")
        z_old = z.copy()
        moving_average(v, np.square(g), t(1) - b2)        # (Keras: in the variable's dtype)
        z -= lr * g / (np.sqrt(v / (t(1) - b2 ** step_t)) + t(self.epsilon))
        weight = t(1) / step_t
        x_old = (w - (t(1) - b1) * z_old) / b1
        x_new = (t(1) - weight) * x_old + weight * z
        w[...] = (t(1) - b1) * z + b1 * x_new

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "warmup_steps": self.warmup_steps}


register_builtins("optimizers", globals())  # loadable from .keras configs by class name
