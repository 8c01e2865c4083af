"""The Optimizer base class: Keras 3's apply() pipeline (loss-scale division, gradient
accumulation, clipping, weight decay, the update rule, the weights' moving average, constraints)
and the optimizer state in Keras's variable order.

The update rules themselves are the subclasses' `update_step(gradient, variable, w, lr, step)`,
which change `w` (the variable's array) in place: the built-in SGD/RMSprop/Adam/AdamW/Adagrad call
fused kernels (engine._kernels.optimizer_step), the others use float32 numpy as Keras computes.
"""
import inspect
import re

import numpy as np

from engine.autodiff import SparseGradient
from engine.backend import name_scope
from engine.optimizers.schedules import LearningRateSchedule
from engine.tensor import Tensor
from engine.utils.naming import to_snake_case
from engine.variables import Variable, note_state_write
from engine.saving.registry import register_builtins
from engine.utils.traceback_utils import warn_user

# The per-variable state the base class keeps before the subclass's own (Keras's order).
_EMA, _ACCUMULATOR = "average", "gradient_accumulator"


_KERAS_STYLE = {}    # optimizer class -> whether its update_step has Keras's signature



def _slot_name(variable, slot):
    """Keras's name for an optimizer variable of `variable`: its path with "_" for "/", then the
    slot ("sequential_dense_kernel_momentum")."""
    path = getattr(variable, "path", None) or str(getattr(variable, "name", "variable"))
    return f"{path.replace('/', '_').replace(':', '_')}_{slot}"

class Optimizer:
    """Base class of optimizers.

    Args:
        learning_rate: a float, a LearningRateSchedule, or a callable of no arguments returning the rate.
        weight_decay: if set, each step first shrinks each variable by w * weight_decay * lr.
        clipnorm: clip each gradient to this L2 norm (g * clipnorm / max(norm, clipnorm)).
        clipvalue: clip each gradient element to [-clipvalue, clipvalue].
        global_clipnorm: clip all gradients together to this global L2 norm.
        use_ema: keep an exponential moving average of the variables.
        ema_momentum: the moving average's momentum.
        ema_overwrite_frequency: every this many steps, copy the averages into the variables
            (None: only when `finalize_variable_values` is called).
        loss_scale_factor: gradients are divided by it (the loss is multiplied by it in
            `scale_loss`).
        gradient_accumulation_steps: update every this many calls, with the mean of the
            gradients since the last update (an int >= 2).
        name: the optimizer's name.
    """

    def __init__(self, learning_rate=0.001, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None, name=None, **kwargs):
        if kwargs.pop("lr", None) is not None:
            raise ValueError("Optimizer: `lr` was renamed `learning_rate` in Keras 3; pass learning_rate=...")
        if kwargs.pop("decay", None) is not None:
            warn_user("Optimizer: the `decay` argument is no longer supported (Keras 3) and is ignored; "
                      "use a learning rate schedule")
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s) {sorted(kwargs)}")
        if sum(c is not None for c in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError("Optimizer: pass at most one of clipnorm, clipvalue and global_clipnorm")
        if gradient_accumulation_steps and not gradient_accumulation_steps >= 2:
            raise ValueError(f"Optimizer: gradient_accumulation_steps must be an integer >= 2, got "
                             f"{gradient_accumulation_steps}")
        if use_ema:
            if not 0 <= ema_momentum <= 1:
                raise ValueError(f"Optimizer: ema_momentum must be in [0, 1], got {ema_momentum}")
            if ema_overwrite_frequency and (not isinstance(ema_overwrite_frequency, int) or
                                            ema_overwrite_frequency < 1):
                raise ValueError(f"Optimizer: ema_overwrite_frequency must be an integer >= 1 or None, got "
                                 f"{ema_overwrite_frequency}")
        self.name = name or to_snake_case(type(self).__name__)
        self.weight_decay = weight_decay
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.use_ema, self.ema_momentum, self.ema_overwrite_frequency = use_ema, ema_momentum, ema_overwrite_frequency
        self.loss_scale_factor = loss_scale_factor
        self.gradient_accumulation_steps = gradient_accumulation_steps
        with name_scope(self.name, caller=self):     # "adam/iteration", as Keras's paths
            self._iterations = Variable(0, shape=(), dtype="int64", trainable=False, name="iteration")
            self._learning_rate = Variable(0.0, shape=(), dtype="float32", trainable=False, name="learning_rate")
        self._schedule = None
        self._lr_callable = None
        self.learning_rate = learning_rate
        self._slots = {}
        self._built_variables = None
        self._exclude_ids, self._exclude_pattern = set(), None

    # -- the step counter and the learning rate ---------------------------------------------------
    @property
    def iterations(self):
        """The number of updates applied (with gradient accumulation: the accumulated updates; the
        calls are counted in `_iterations`, which schedules read)."""
        if self.gradient_accumulation_steps:
            return Variable(int(self._iterations._value) // self.gradient_accumulation_steps, shape=(),
                            dtype="int64", trainable=False, name="iteration")
        return self._iterations

    @iterations.setter
    def iterations(self, value):
        self._iterations.assign(value)

    @property
    def learning_rate(self):
        """The current learning rate (a Variable; with a schedule, today's value of the schedule)."""
        self._learning_rate.assign(self._current_lr())
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, LearningRateSchedule):
            self._schedule, self._lr_callable = value, None
        elif callable(value) and not isinstance(value, (Variable, Tensor)):
            self._schedule, self._lr_callable = None, value
        else:
            if self._schedule is not None and hasattr(self, "_slots"):
                raise TypeError(f"{type(self).__name__}: this optimizer was created with a LearningRateSchedule, "
                                "so its learning rate cannot be set; create it with a float learning_rate "
                                "to change the rate by hand")
            self._schedule, self._lr_callable = None, None
            self._learning_rate.assign(float(np.asarray(value)))

    lr = learning_rate

    def _current_lr(self):
        if self._schedule is not None:
            return float(np.asarray(self._schedule(int(self._iterations._value))))
        if self._lr_callable is not None:
            return float(np.asarray(self._lr_callable()))
        return float(self._learning_rate._value)

    # -- state ---------------------------------------------------------------------------------------
    def _slot(self, var, name, init=None):
        """The state array `name` of variable `var` (created on first use, as Keras creates it in build)."""
        return self._slot_variable(var, name, init)._value

    def _slot_variable(self, var, name, init=None):
        """The state Variable `name` of variable `var` (created on first use)."""
        key = (id(var), name)
        slot = self._slots.get(key)
        if slot is None:
            shape = self._slot_shape(var, name)
            value = self._slot_initial_value(name) if init is None else init
            if callable(value):
                value = value(var)
            with name_scope(self.name, caller=self):
                slot = self._slot_class(name)(
                    np.broadcast_to(np.asarray(value, dtype=self._slot_dtype(var, name)), shape),
                    dtype=self._slot_dtype(var, name), trainable=False, name=_slot_name(var, name))
            self._slots[key] = slot
        return slot

    def _slot_class(self, name):
        """The Variable class of slot `name` (RMSprop's velocity defers decays: deferred_decay.py)."""
        return Variable

    def _slot_shape(self, var, name):
        """A slot's shape (the variable's, unless a subclass says otherwise); None: no such slot."""
        return tuple(var.shape)

    def _slot_dtype(self, var, name):
        return var.dtype

    def _slot_initial_value(self, name):
        """A slot's initial value: a number, or a function of the variable."""
        return 0.0

    def _slot_groups(self):
        """The subclass's slot names: a list of tuples; each tuple's names are interleaved per
        variable, and the tuples follow each other (Keras's order)."""
        return []

    def _all_slot_groups(self):
        groups = []
        if self.use_ema:
            groups.append((_EMA,))
        if self.gradient_accumulation_steps:
            groups.append((_ACCUMULATOR,))
        return groups + self._slot_groups()

    def _extra_state(self):
        """Optimizer-wide state Variables that come after the per-variable slots (Keras's order):
        those a subclass made with add_variable / add_variable_from_reference, in creation order."""
        return list(self.__dict__.get("_own_variables", []))

    # -- Keras's API for optimizers written against keras.optimizers.Optimizer ---------------------
    @property
    def built(self):
        """Whether the optimizer's state has been created (by build or the first apply)."""
        return self.__dict__.get("_built_variables") is not None

    def add_variable(self, shape, initializer="zeros", dtype=None, aggregation="none", layout=None, name=None):
        """Create a state Variable (kept in `variables`, after the built-in state).

        Args:
            shape: its shape.
            initializer: an initializer or its name.
            dtype: its dtype (default floatx).
            aggregation, layout: accepted for Keras compatibility (one device, one replica).
            name: its name.
        """
        from engine import initializers
        with name_scope(self.name, caller=self):
            variable = Variable(initializers.get(initializer), shape=tuple(shape), dtype=dtype, trainable=False,
                                name=name or "variable")
        self.__dict__.setdefault("_own_variables", []).append(variable)
        return variable

    def add_variable_from_reference(self, reference_variable, name=None, initializer="zeros"):
        """A state Variable shaped like `reference_variable`, named "<its path>_<name>" (slashes as
        underscores: "dense_kernel_momentum")."""
        return self.add_variable(reference_variable.shape, initializer, dtype=reference_variable.dtype,
                                 name=_slot_name(reference_variable, name or "var"))

    def _get_variable_index(self, variable):
        """The position of `variable` in the list the optimizer was built with."""
        for i, v in enumerate(self._built_variables or []):
            if v is variable:
                return i
        raise ValueError(f"{type(self).__name__}: variable {getattr(variable, 'path', '?')} was not part of the "
                         "list the optimizer was built with")

    def assign(self, variable, value):
        """variable = value (for update rules written as Keras writes them)."""
        variable.assign(value)

    def assign_add(self, variable, value):
        """variable += value."""
        variable.assign_add(value)

    def assign_sub(self, variable, value):
        """variable -= value."""
        variable.assign_sub(value)

    def _keras_style_update(self):
        """Whether update_step is Keras's (gradient, variable, learning_rate), written with engine.ops
        on Variables, instead of engine's in-place (gradient, variable, w, lr, step). Read once per
        class: inspect.signature costs more than a small model's whole update."""
        kind = type(self)
        known = _KERAS_STYLE.get(kind)
        if known is None:
            try:
                known = len(inspect.signature(self.update_step).parameters) == 3
            except (TypeError, ValueError):
                known = False
            _KERAS_STYLE[kind] = known
        return known

    def _layout(self, variables):
        """(variable, slot name) for every slot, in Keras's order."""
        return [(var, name) for group in self._all_slot_groups() for var in variables for name in group
                if self._slot_shape(var, name) is not None]

    def build(self, var_list):
        """Create the state for these variables (Keras's order); it is otherwise made on first use."""
        var_list = list(var_list)
        if self._built_variables is None:
            self._built_variables = var_list
        for var, name in self._layout(var_list):
            self._slot(var, name)

    @property
    def variables(self):
        """The optimizer's state Variables, in Keras's order."""
        head = [self._iterations] + ([] if self._schedule is not None or self._lr_callable else [self._learning_rate])
        built = self._built_variables or []
        slots = [self._slots[(id(v), n)] for v, n in self._layout(built) if (id(v), n) in self._slots]
        return head + slots + self._extra_state()

    def _head_state(self):
        head = [np.array(self._iterations._value)]
        if self._schedule is None and self._lr_callable is None:
            head.append(np.array(self._learning_rate._value))
        return head

    def ordered_state(self, variables):
        """The state as arrays in Keras 3's saved order for these (trainable) variables: iterations,
        the learning rate (absent with a schedule, as in Keras), the slots, optimizer-wide extras."""
        state = self._head_state()
        for var, name in self._layout(variables):
            state.append(self._slot(var, name).copy())
        return state + [np.array(v._value) for v in self._extra_state()]

    def load_ordered_state(self, variables, values):
        """Set the state from arrays in `ordered_state`'s order."""
        values = list(values)
        layout = self._layout(variables)
        head = len(self._head_state())
        extras = self._extra_state()
        expected = head + len(layout) + len(extras)
        if len(values) != expected:
            raise ValueError(f"{type(self).__name__}: the saved optimizer state has {len(values)} arrays, "
                             f"this optimizer and model need {expected}")
        checked = []
        for (var, name), value in zip(layout, values[head:head + len(layout)]):
            shape = self._slot_shape(var, name)
            if np.shape(value) != tuple(shape):
                raise ValueError(f"{type(self).__name__}: saved slot {name!r} for {getattr(var, 'path', '?')} "
                                 f"has shape {np.shape(value)}, expected {tuple(shape)}")
            checked.append((var, name, value))
        self._iterations.assign(values[0])
        if head == 2:
            self._learning_rate.assign(values[1])
        for var, name, value in checked:
            self._slot(var, name)[...] = value
        note_state_write()
        for var, value in zip(extras, values[head + len(layout):]):
            var.assign(value)

    def set_weights(self, weights):
        """Set the state Variables (in `variables`' order) from arrays.

        Args:
            weights: one array per Variable in `variables`, of the same shapes.
        """
        if not self.built:
            raise ValueError(f"{type(self).__name__}.set_weights: build the optimizer first "
                             "(optimizer.build(trainable_variables))")
        variables = self.variables
        if len(weights) != len(variables):
            raise ValueError(f"{type(self).__name__}.set_weights: {len(weights)} arrays for {len(variables)} "
                             "optimizer variables")
        for var, value in zip(variables, weights):
            if np.shape(value) != var.shape:
                raise ValueError(f"{type(self).__name__}.set_weights: an array of shape {np.shape(value)} for "
                                 f"variable {var.name!r} of shape {var.shape}")
            var.assign(value)

    # -- weight decay --------------------------------------------------------------------------------
    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Leave these variables (or those whose names match any of var_names) out of weight decay.

        Args:
            var_list: Variables to exclude.
            var_names: substrings (regular expressions) of variable names to exclude.
        """
        if self._built_variables is not None:
            raise ValueError("exclude_from_weight_decay() can only be called before the optimizer is built")
        self._exclude_ids = {id(v) for v in var_list or []}
        self._exclude_pattern = re.compile("|".join(set(var_names))) if var_names else None

    def _use_weight_decay(self, var):
        if id(var) in self._exclude_ids:
            return False
        return not (self._exclude_pattern is not None and re.search(self._exclude_pattern, getattr(var, "name", "")))

    def _apply_weight_decay(self, pairs, lr):
        if self.weight_decay is None:
            return
        for _, var, w in pairs:
            if self._use_weight_decay(var):
                t = w.dtype.type
                w -= w * t(self.weight_decay) * t(lr)

    # -- clipping (Keras's formulas, in the gradients' precision) --------------------------------------
    def _clip(self, grads):
        if self.clipnorm and self.clipnorm > 0:
            out = []
            for g in grads:
                t = g.dtype.type
                l2sum = np.sum(np.square(g))
                l2norm = np.sqrt(l2sum) if l2sum > 0 else l2sum
                out.append((g * t(self.clipnorm)) / np.maximum(l2norm, t(self.clipnorm)))
            return out
        if self.global_clipnorm and self.global_clipnorm > 0:
            t = grads[0].dtype.type
            norm = np.sqrt(np.sum([np.sum(np.square(g)) for g in grads]).astype(grads[0].dtype))
            with np.errstate(divide="ignore"):
                scale = t(self.global_clipnorm) * np.minimum(t(1) / norm, t(1) / t(self.global_clipnorm))
            return [g * scale for g in grads]
        if self.clipvalue and self.clipvalue > 0:
            return [np.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        return grads

    def _clips(self):
        return bool(self.clipnorm and self.clipnorm > 0 or self.global_clipnorm and self.global_clipnorm > 0 or
                    self.clipvalue and self.clipvalue > 0)

    # -- applying gradients ---------------------------------------------------------------------------
    @property
    def scales_loss(self):
        """Whether `apply` divides the gradients by a loss scale, so a training step must take them
        of `scale_loss(loss)`."""
        return self.loss_scale_factor is not None

    def scale_loss(self, loss):
        """The loss multiplied by `loss_scale_factor` (as is when it is None); `apply` divides the
        gradients by the same factor."""
        self.__dict__["_loss_was_scaled"] = True
        return loss if self.loss_scale_factor is None else loss * self.loss_scale_factor

    def _check_loss_was_scaled(self):
        """Warn (once) when apply() unscales gradients whose loss never went through scale_loss():
        the update would then be too small by the scale factor."""
        if not self.__dict__.pop("_loss_was_scaled", False) and not self.__dict__.get("_warned_unscaled"):
            self.__dict__["_warned_unscaled"] = True
            warn_user(f"{type(self).__name__}: apply() divides the gradients by the loss scale, but "
                      "scale_loss() was not called on the loss they come from; compute the gradients of "
                      "optimizer.scale_loss(loss) (Keras's fit does this), or the steps are too small by "
                      "that factor")

    def _checked_pairs(self, grads, trainable_variables):
        if trainable_variables is None:
            if self._built_variables is None:
                raise ValueError(f"{type(self).__name__}.apply: pass the variables the gradients belong to, or "
                                 "build the optimizer first (optimizer.build(variables))")
            trainable_variables = self._built_variables
        grads = [g._value if isinstance(g, Tensor) else g for g in grads]
        variables = list(trainable_variables)
        if len(grads) != len(variables):
            raise ValueError(f"{type(self).__name__}.apply: {len(grads)} gradients for {len(variables)} variables")
        missing = [getattr(v, "path", "?") for g, v in zip(grads, variables) if g is None]
        if grads and len(missing) == len(grads):
            raise ValueError("No gradients provided for any variable: the loss does not depend on "
                             f"{missing}. Compute it from the model's outputs with engine.ops or "
                             "tensor operators inside the GradientTape block.")
        if missing and tuple(missing) != getattr(self, "_warned_missing", None):
            self._warned_missing = tuple(missing)
            warn_user(f"Gradients do not exist for variables {missing} when minimizing the loss. "
                      "If using `model.compile()`, did you forget to provide a `loss` argument?")
        pairs = []
        for g, var in zip(grads, variables):
            if g is None:
                continue
            w = var._value if isinstance(var, Variable) else var
            if not isinstance(g, SparseGradient):
                g = np.asarray(g)
            if g.shape != w.shape:
                raise ValueError(f"{type(self).__name__}: gradient of shape {g.shape} for variable "
                                 f"{getattr(var, 'path', '?')!r} of shape {w.shape}")
            pairs.append((g, var, w))
        return variables, pairs

    def apply(self, grads, trainable_variables=None):
        """Update each variable from its gradient (tensors, arrays, or None for no gradient).

        Args:
            grads: one gradient per variable; a variable whose gradient is None is left alone.
            trainable_variables: the Variables, in the order of `grads` (default: those the
                optimizer was built with).

        Returns:
            The iterations Variable.
        """
        variables, pairs = self._checked_pairs(grads, trainable_variables)
        if self._built_variables is None:
            self.build(variables)
        densify = self._clips() or self.loss_scale_factor is not None or self.gradient_accumulation_steps
        if densify:
            pairs = [(g.dense() if isinstance(g, SparseGradient) else g, v, w) for g, v, w in pairs]
        if self.loss_scale_factor is not None:
            self._check_loss_was_scaled()
            pairs = [(g / np.asarray(self.loss_scale_factor, dtype=g.dtype), v, w) for g, v, w in pairs]
        lr = self._current_lr()
        if self.gradient_accumulation_steps:
            steps = self.gradient_accumulation_steps
            accumulators = [self._slot(v, _ACCUMULATOR) for _, v, _ in pairs]
            if (int(self._iterations._value) + 1) % steps == 0:
                pairs = [((g + acc) / np.asarray(steps, dtype=g.dtype), v, w)
                         for (g, v, w), acc in zip(pairs, accumulators)]
                self._update(pairs, lr)
                for acc in accumulators:
                    acc[...] = 0
            else:
                for (g, _, _), acc in zip(pairs, accumulators):
                    acc += g.astype(acc.dtype, copy=False)
        else:
            self._update(pairs, lr)
        if self.use_ema:
            self._update_moving_averages()
        for _, var, w in pairs:
            constraint = getattr(var, "constraint", None)
            if constraint is not None:
                var.assign(constraint(w))
        self._iterations._value[...] += 1
        note_state_write()
        return self._iterations

    def _update(self, pairs, lr):
        """Clip, decay the weights and run the update rule on each variable."""
        if self._clips():
            clipped = self._clip([g for g, _, _ in pairs])
            pairs = [(c, v, w) for c, (_, v, w) in zip(clipped, pairs)]
        self._apply_weight_decay(pairs, lr)
        step = int(np.asarray(self.iterations._value)) + 1
        self._before_updates(step)
        if self._keras_style_update():
            for g, var, _ in pairs:
                g = g.dense() if isinstance(g, SparseGradient) else g
                self.update_step(Tensor(np.asarray(g, dtype=var.dtype)), var, self.learning_rate)
            return
        self._update_variables(pairs, lr, step)

    def _planned_update(self, variables):
        """For a planned training step (engine/models/plan.py): a function grads -> None doing what
        `apply(grads, variables)` does for gradients the plan has already checked (one per
        variable, of its shape), without apply's per-call checks -- or None when this optimizer's
        configuration needs apply's general path (clipping, loss scaling, accumulation, EMA,
        weight decay, constraints, a Keras-style update_step)."""
        kind = type(self)
        if kind.apply is not Optimizer.apply or kind._update is not Optimizer._update or \
                self._built_variables is None or self._clips() or self.loss_scale_factor is not None or \
                self.gradient_accumulation_steps or self.use_ema or self.weight_decay is not None or \
                self._keras_style_update() or \
                any(getattr(v, "constraint", None) is not None for v in variables):
            return None
        variables = list(variables)
        arrays = [v._value if isinstance(v, Variable) else v for v in variables]
        fused = self._fused_step(variables, arrays)

        def update(grads):
            lr = self._current_lr()
            step = int(self._iterations._value) + 1
            self._before_updates(step)
            if fused is None:
                self._update_variables([(g, v, w) for g, v, w in zip(grads, variables, arrays) if g is not None],
                                       lr, step)
            else:
                left = fused(grads, lr, step)      # gradients by rows go through update_step
                if left:
                    self._update_variables([(grads[i], variables[i], arrays[i]) for i in left
                                            if grads[i] is not None], lr, step)
            self._iterations._value[...] += 1
            note_state_write()
        return update

    def _fused_step(self, variables, arrays):
        """For a planned step: a function (grads, lr, step) -> indices of the gradients it left
        that runs this optimizer's update rule on all the variables in one kernel call (the
        built-in rules, see kernel_optimizers), or None to run update_step per variable."""
        return None

    def _update_variables(self, pairs, lr, step):
        """The update rule on each (gradient, variable, array) of this step."""
        for g, var, w in pairs:
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

    def _before_updates(self, step):
        """Hook for optimizer-wide state updated once per step, before the variables (Nadam)."""

    def _update_moving_averages(self):
        first = int(np.asarray(self.iterations._value)) == 0
        for var in self._built_variables:
            average = self._slot(var, _EMA)
            w = var._value if isinstance(var, Variable) else var
            t = w.dtype.type
            momentum = t(0) if first else t(self.ema_momentum)
            average[...] = momentum * average + (t(1) - momentum) * w
        if self.ema_overwrite_frequency and (int(np.asarray(self.iterations._value)) + 1) % \
                self.ema_overwrite_frequency == 0:
            self._overwrite_with_averages(self._built_variables)

    def _overwrite_with_averages(self, variables):
        for var in variables:
            w = var._value if isinstance(var, Variable) else var
            w[...] = self._slot(var, _EMA)
        note_state_write()

    def swap_moving_averages(self):
        """With use_ema, exchange every variable's value with its moving average (in place; twice
        restores both). `callbacks.SwapEMAWeights` evaluates with the averages this way.

        Raises:
            ValueError: if the optimizer was made without `use_ema=True`.
        """
        if not self.use_ema:
            raise ValueError(f"{type(self).__name__}: swapping in the moving averages needs use_ema=True")
        for var in self._built_variables or []:
            w = var._value if isinstance(var, Variable) else var
            average = self._slot(var, _EMA)
            held = w.copy()
            w[...] = average
            average[...] = held
        note_state_write()

    def copy_variables_to_moving_averages(self):
        """With use_ema, set every moving average to its variable's current value."""
        if not self.use_ema:
            raise ValueError(f"{type(self).__name__}: there are no moving averages without use_ema=True")
        for var in self._built_variables or []:
            self._slot(var, _EMA)[...] = var._value if isinstance(var, Variable) else var
        note_state_write()

    def finalize_variable_values(self, var_list):
        """With use_ema, copy the moving averages into the variables (the training loop calls it at
        the end of fit); otherwise nothing.

        Args:
            var_list: the variables the optimizer was built with.
        """
        if self.use_ema:
            self._overwrite_with_averages(list(var_list))

    def apply_gradients(self, grads_and_vars):
        """`apply` on (gradient, variable) pairs; returns the iterations Variable."""
        pairs = list(grads_and_vars)
        return self.apply([g for g, _ in pairs], [v for _, v in pairs])

    def update_step(self, gradient, variable, w, lr, step):
        """The update rule: change `w` (the variable's array) in place from `gradient` (an array of
        w's dtype), the learning rate `lr` and the 1-based step; subclasses define it."""
        raise NotImplementedError(f"{type(self).__name__} must define update_step")

    # -- configs ---------------------------------------------------------------------------------------
    def get_config(self):
        """The constructor arguments, with Keras 3's keys (a schedule as its nested config)."""
        if self._schedule is not None:
            lr = self._schedule
        elif self._lr_callable is not None:
            lr = self._lr_callable
        else:
            lr = float(self._learning_rate._value)
        return {"name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm, "clipvalue": self.clipvalue,
                "use_ema": self.use_ema, "ema_momentum": self.ema_momentum,
                "ema_overwrite_frequency": self.ema_overwrite_frequency, "loss_scale_factor": self.loss_scale_factor,
                "gradient_accumulation_steps": self.gradient_accumulation_steps}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """Rebuild an optimizer from `get_config()`'s dictionary."""
        if isinstance(config.get("learning_rate"), dict):
            from engine.saving.serialization import deserialize_keras_object
            config = {**config, "learning_rate": deserialize_keras_object(config["learning_rate"],
                                                                          custom_objects=custom_objects)}
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"


def moving_average(average, value, rate):
    """average += (value - average) * rate, in place: the moment update Keras writes for Adam and
    its relatives. `rate` is 1 - beta as Keras computes it (in Python, or in the variable's
    precision), which decides the last bit."""
    average += (value - average) * average.dtype.type(rate)


def takes_rows(update_step):
    """Mark an update_step that passes its gradient straight to an engine._kernels.optimizer_step
    optimizer kernel, which also accepts a table's gradient by rows (see Optimizer._update)."""
    update_step.takes_rows = True
    return update_step


register_builtins("optimizers", globals())  # loadable from .keras configs by class name
