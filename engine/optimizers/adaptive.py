"""Optimizers written in float32 numpy, in place on the variable's array, with Keras 3's update
rules: Nadam, Adamax, Adadelta, Ftrl, Lion, Lamb and Adafactor."""
import numpy as np

from engine.optimizers.base import Optimizer, moving_average
from engine.variables import Variable
from engine.saving.registry import register_builtins


def _t(w, x):
    """x in w's precision (Keras casts every hyperparameter to the variable's dtype)."""
    return w.dtype.type(x)


class _Moments(Optimizer):
    """An optimizer with Adam's hyperparameters beta_1, beta_2 and epsilon."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class Nadam(_Moments):
    """Adam with Nesterov momentum (Dozat's schedule of momentum 0.96 ** step).

    Args:
        learning_rate: the step size.
        beta_1: decay of the first moment.
        beta_2: decay of the second moment.
        epsilon: added to the denominator.
        name: the optimizer's name.
        **kwargs: the base Optimizer's arguments (weight_decay, clipnorm, clipvalue,
            global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
            gradient_accumulation_steps).
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, name=None, **kwargs):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, name, **kwargs)
        self._u_product = Variable(1.0, shape=(), dtype="float32", trainable=False, name="variable")

    def _slot_groups(self):
        return [("momentum", "velocity")]

    def _extra_state(self):
        return [self._u_product]

    def _before_updates(self, step):
        u = self._u_product._value
        u[...] = u * np.float32(self.beta_1) * (np.float32(1) - np.float32(0.5) * np.float32(0.96) ** np.float32(step))

    def update_step(self, g, var, w, lr, step):
        t = w.dtype.type
        lr, b1, b2, decay = t(lr), t(self.beta_1), t(self.beta_2), t(0.96)
        u_t = b1 * (t(1) - t(0.5) * decay ** t(step))
        u_t_1 = b1 * (t(1) - t(0.5) * decay ** t(step + 1))
        u_product = t(self._u_product._value)
        u_product_next = u_product * u_t_1
        m, v = self._slot(var, "momentum"), self._slot(var, "velocity")
        moving_average(m, g, t(1) - b1)          # (Keras: 1 - beta cast to the variable's dtype)
        moving_average(v, np.square(g), t(1) - b2)
        m_hat = u_t_1 * m / (t(1) - u_product_next) + (t(1) - u_t) * g / (t(1) - u_product)
        v_hat = v / (t(1) - b2 ** t(step))
        w -= m_hat * lr / (np.sqrt(v_hat) + t(self.epsilon))


class Adamax(_Moments):
    """Adam with the infinity norm: u = max(beta_2 * u, |g|).

    Args:
        learning_rate: the step size.
        beta_1: decay of the first moment.
        beta_2: decay of the infinity norm.
        epsilon: added to the denominator.
        name: the optimizer's name.
        **kwargs: the base Optimizer's arguments (see `Nadam`).
    """

    def _slot_groups(self):
        return [("momentum", "norm")]

    def update_step(self, g, var, w, lr, step):
        t = w.dtype.type
        m, u = self._slot(var, "momentum"), self._slot(var, "norm")
        moving_average(m, g, 1 - self.beta_1)   # (Keras: 1 - beta in Python)
        np.maximum(t(self.beta_2) * u, np.abs(g), out=u)
        w -= t(lr) * m / ((t(1) - t(self.beta_1) ** t(step)) * (u + t(self.epsilon)))


class Adadelta(Optimizer):
    """Adadelta: steps scaled by the ratio of running RMS of updates and of gradients.

    Args:
        learning_rate: the step size (Keras 3 default 0.001).
        rho: the decay of the running averages.
        epsilon: added inside the square roots.
        name: the optimizer's name.
        **kwargs: the base Optimizer's arguments (see `Nadam`).
    """

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.rho, self.epsilon = rho, epsilon

    def _slot_groups(self):
        return [("accumulated_grad", "accumulated_delta_var")]

    def update_step(self, g, var, w, lr, step):
        t = w.dtype.type
        rho, eps = t(self.rho), t(self.epsilon)
        acc_g, acc_d = self._slot(var, "accumulated_grad"), self._slot(var, "accumulated_delta_var")
        acc_g[...] = rho * acc_g + (t(1) - rho) * np.square(g)
        delta = -(np.sqrt(acc_d + eps) * g) / np.sqrt(acc_g + eps)
        acc_d[...] = rho * acc_d + (t(1) - rho) * np.square(delta)
        w += t(lr) * delta

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


class Ftrl(Optimizer):
    """Follow The Regularized Leader (McMahan et al.), with L1, L2 and L2-shrinkage regularization.

    Args:
        learning_rate: the step size.
        learning_rate_power: how the step size shrinks with the accumulator (<= 0).
        initial_accumulator_value: the accumulators' starting value (>= 0).
        l1_regularization_strength: L1 strength (>= 0).
        l2_regularization_strength: L2 strength (>= 0).
        l2_shrinkage_regularization_strength: L2 shrinkage strength (>= 0).
        beta: added to the L2 term as beta / (2 * lr).
        name: the optimizer's name.
        **kwargs: the base Optimizer's arguments (see `Nadam`).
    """

    def __init__(self, learning_rate=0.001, learning_rate_power=-0.5, initial_accumulator_value=0.1,
                 l1_regularization_strength=0.0, l2_regularization_strength=0.0,
                 l2_shrinkage_regularization_strength=0.0, beta=0.0, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        for what, value, ok in (("initial_accumulator_value", initial_accumulator_value, initial_accumulator_value >= 0),
                                ("learning_rate_power", learning_rate_power, learning_rate_power <= 0),
                                ("l1_regularization_strength", l1_regularization_strength, l1_regularization_strength >= 0),
                                ("l2_regularization_strength", l2_regularization_strength, l2_regularization_strength >= 0),
                                ("l2_shrinkage_regularization_strength", l2_shrinkage_regularization_strength,
                                 l2_shrinkage_regularization_strength >= 0)):
            if not ok:
                raise ValueError(f"Ftrl: invalid {what}={value} ({'<= 0' if what == 'learning_rate_power' else '>= 0'} "
                                 "required)")
        self.learning_rate_power = learning_rate_power
        self.initial_accumulator_value = initial_accumulator_value
        self.l1_regularization_strength = l1_regularization_strength
        self.l2_regularization_strength = l2_regularization_strength
        self.l2_shrinkage_regularization_strength = l2_shrinkage_regularization_strength
        self.beta = beta

    def _slot_groups(self):
        return [("accumulator", "linear")]

    def _slot_initial_value(self, name):
        return self.initial_accumulator_value if name == "accumulator" else 0.0

    def update_step(self, g, var, w, lr, step):
        t = w.dtype.type
        lr = t(lr)
        accum, linear = self._slot(var, "accumulator"), self._slot(var, "linear")
        power = t(-self.learning_rate_power)
        l2 = t(self.l2_regularization_strength) + t(self.beta) / (t(2.0) * lr)
        grad = g + t(2 * self.l2_shrinkage_regularization_strength) * w
        new_accum = accum + np.square(g)
        linear += grad - (np.power(new_accum, power) - np.power(accum, power)) / lr * w
        quadratic = np.power(new_accum, power) / lr + t(2) * l2
        l1 = t(self.l1_regularization_strength)
        w[...] = (np.clip(linear, -l1, l1) - linear) / quadratic
        accum[...] = new_accum

    def get_config(self):
        return {**super().get_config(), "learning_rate_power": self.learning_rate_power,
                "initial_accumulator_value": self.initial_accumulator_value,
                "l1_regularization_strength": self.l1_regularization_strength,
                "l2_regularization_strength": self.l2_regularization_strength,
                "l2_shrinkage_regularization_strength": self.l2_shrinkage_regularization_strength,
                "beta": self.beta}


class Lion(Optimizer):
    """Lion: the sign of an interpolation of momentum and gradient (Chen et al. 2023).

    Args:
        learning_rate: the step size.
        beta_1: interpolation factor for the update direction.
        beta_2: decay of the momentum.
        name: the optimizer's name.
        **kwargs: the base Optimizer's arguments (see `Nadam`).
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.99, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if not 0 < beta_1 <= 1:
            raise ValueError(f"Lion: beta_1 must be in (0, 1], got {beta_1}")
        self.beta_1, self.beta_2 = beta_1, beta_2

    def _slot_groups(self):
        return [("momentum",)]

    def update_step(self, g, var, w, lr, step):
        t = w.dtype.type
        m = self._slot(var, "momentum")
        w -= t(lr) * np.sign(m * t(self.beta_1) + g * (t(1) - t(self.beta_1)))
        m[...] = m * t(self.beta_2) + g * (t(1) - t(self.beta_2))

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2}


class Lamb(_Moments):
    """LAMB: Adam's update scaled per variable by ||w|| / ||update|| (You et al. 2019).

    Args:
        learning_rate: the step size.
        beta_1: decay of the first moment.
        beta_2: decay of the second moment.
        epsilon: added to the denominator.
        name: the optimizer's name.
        **kwargs: the base Optimizer's arguments (see `Nadam`).
    """

    def _slot_groups(self):
        return [("momentum", "velocity")]

    def update_step(self, g, var, w, lr, step):
        t = w.dtype.type
        m, v = self._slot(var, "momentum"), self._slot(var, "velocity")
        moving_average(m, g, 1 - self.beta_1)   # (Keras: 1 - beta in Python)
        moving_average(v, np.square(g), 1 - self.beta_2)
        m_hat = m / (t(1) - t(self.beta_1) ** t(step))
        update = m_hat / (np.sqrt(v / (t(1) - t(self.beta_2) ** t(step))) + t(self.epsilon))
        w_norm, u_norm = np.sqrt(np.sum(np.square(w))), np.sqrt(np.sum(np.square(update)))
        ratio = w_norm / u_norm if w_norm > 0 and u_norm > 0 else t(1)
        w -= ratio * t(lr) * update


class Adafactor(Optimizer):
    """Adafactor: second moments kept as row and column factors for matrices (Shazeer & Stern 2018).

    Args:
        learning_rate: the step size (capped at 1 / sqrt(step) with relative_step).
        beta_2_decay: the second moment's decay is 1 - step ** beta_2_decay.
        epsilon_1: added to the squared gradients.
        epsilon_2: the smallest RMS of a variable used to scale its step.
        clip_threshold: the update's RMS is clipped to it.
        relative_step: cap the learning rate at 1 / sqrt(step).
        name: the optimizer's name.
        **kwargs: the base Optimizer's arguments (see `Nadam`).
    """

    def __init__(self, learning_rate=0.001, beta_2_decay=-0.8, epsilon_1=1e-30, epsilon_2=1e-3, clip_threshold=1.0,
                 relative_step=True, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_2_decay, self.epsilon_1, self.epsilon_2 = beta_2_decay, epsilon_1, epsilon_2
        self.clip_threshold, self.relative_step = clip_threshold, relative_step

    def _slot_groups(self):
        return [("r", "c", "velocity")]

    def _slot_shape(self, var, name):
        shape = tuple(var.shape)
        if name == "r":
            return shape[:-1] if len(shape) >= 2 else ()
        if name == "c":
            return shape[:-2] + shape[-1:] if len(shape) >= 2 else ()
        return shape

    def _slot_dtype(self, var, name):
        # A vector's unused row/column factors are int32 scalars in Keras.
        return np.dtype("int32") if name in ("r", "c") and len(var.shape) < 2 else var.dtype

    def update_step(self, g, var, w, lr, step):
        t = w.dtype.type
        one, step_t = t(1), t(step)
        lr = t(lr)
        if self.relative_step and self._lr_callable is None and self._schedule is None:
            lr = min(lr, one / np.sqrt(step_t))
        rho = min(lr, one / np.sqrt(step_t))
        alpha = max(t(self.epsilon_2), np.sqrt(np.mean(np.square(w)))) * rho
        squared = np.square(g) + t(self.epsilon_1)
        beta = one - np.power(step_t, t(self.beta_2_decay))
        v = self._slot(var, "velocity")
        if w.ndim >= 2:
            r, c = self._slot(var, "r"), self._slot(var, "c")
            r[...] = beta * r + (one - beta) * np.mean(squared, axis=-1)
            c[...] = beta * c + (one - beta) * np.mean(squared, axis=-2)
            v[...] = (r / np.mean(r, axis=-1, keepdims=True))[..., None] * c[..., None, :]
        else:
            v[...] = beta * v + (one - beta) * squared
        u = g / np.sqrt(v)
        u_hat = u / max(one, np.sqrt(np.mean(np.square(u))) / t(self.clip_threshold))
        w -= alpha * u_hat

    def get_config(self):
        return {**super().get_config(), "beta_2_decay": self.beta_2_decay, "epsilon_1": self.epsilon_1,
                "epsilon_2": self.epsilon_2, "clip_threshold": self.clip_threshold,
                "relative_step": self.relative_step}


register_builtins("optimizers", globals())  # loadable from .keras configs by class name
