"""compile / fit / evaluate / predict: the training loop shared by every model kind.

The steps are Keras 3's: `fit` calls `train_step(data)`, `evaluate` `test_step(data)` and
`predict` `predict_step(data)`, where `data` is `(x, y)` or `(x, y, sample_weight)` (or `x`)
for one batch in the structure the user passed. Subclasses override them with
`GradientTape`, `compute_loss`, `optimizer.apply` and their own metrics; the dict a step
returns is what the progress bar, the callbacks and History see. When a model does not
override `train_step` / `test_step`, the loop runs the same step on its prepared arrays
directly (`_train_step` / `_test_step`), which saves rebuilding each batch's structure.
"""

import numpy as np

from engine import _malloc
from engine import callbacks as callbacks_module
from engine import losses as losses_module
from engine import metrics as metrics_module
from engine import optimizers
from engine import random as engine_random
from engine import autodiff
from engine import config
from engine.autodiff import GradientTape
from engine.distribution import training as distributed
from engine.layers.base import Layer, call_context, training_scope
from engine.layers.keras_tensor import flatten, pack_like
from engine.models import data as data_utils
from engine.models import data_adapters
from engine.models import plan as plan_module
from engine.utils.data_utils import unpack_x_y_sample_weight, pack_x_y_sample_weight
from engine.utils.io_utils import print_msg
from engine import ops
from engine.utils.traceback_utils import warn_user


def _per_output(spec, names, what, default=None):
    """Spread a compile argument (single, list or dict) over the outputs, in output order."""
    if spec is None:
        return [default] * len(names)
    if isinstance(spec, dict):
        unknown = [k for k in spec if k not in names]
        if unknown:
            raise ValueError(f"compile: {what} has key(s) {unknown} that are not output names; "
                             f"the outputs are {names}")
        return [spec.get(n, default) for n in names]
    if isinstance(spec, (list, tuple)) and what != "metrics":
        if len(spec) != len(names):
            raise ValueError(f"compile: {what} has {len(spec)} entries but the model has {len(names)} "
                             f"outputs ({names})")
        return list(spec)
    return [spec] * len(names)


def _batch_starts(n, batch_size, steps=None):
    """Where each batch of an evaluate / predict pass over n samples starts: every batch, or the
    first `steps` of them (fewer, with Keras's warning, when the data runs out first)."""
    starts = range(0, n, batch_size)
    if steps is None:
        return starts
    if steps > len(starts):
        warn_user(f"Your input ran out of data: {steps} steps asked for, {len(starts)} batches of "
                  f"{batch_size} in {n} samples.")
    return starts[:steps]


_UNREAD_LOGS = {}   # what the batch hooks get when no callback reads them (see _fit_arrays_epoch)


def _python_logs(logs):
    """A step's returned dict as plain Python numbers (tensors and numpy scalars converted)."""
    if logs is None:
        return {}
    if not isinstance(logs, dict):
        raise ValueError(f"A train/test step must return a dict of metric values (name -> value); got "
                         f"{type(logs).__name__}")
    out = {}
    for k, v in logs.items():
        if isinstance(v, dict):
            out.update(_python_logs(v))
            continue
        arr = np.asarray(v)
        out[k] = float(arr) if arr.size == 1 else arr
    return out


class _CompiledOutput:
    """Loss, loss weight and metrics of one model output.

    `metrics` (resolved on the first batch, when target shapes are known) holds the unweighted
    metrics, then the weighted ones; `weighted[i]` says which metric takes the sample weights.
    """

    def __init__(self, name, loss, weight, metric_specs, prefix, weighted_specs=None):
        self.name = name
        self.loss = losses_module.get(loss) if loss is not None else None
        self.weight = 1.0 if weight is None else float(weight)
        self.metric_specs = metric_specs or []
        self.weighted_specs = weighted_specs or []
        self.prefix = prefix
        self.metrics = None
        self.names = None
        self.weighted = None

    def has_metrics(self):
        return bool(self.metric_specs or self.weighted_specs)

    def resolve_metrics(self, y_true, y_pred):
        loss_name = getattr(self.loss, "name", "") if self.loss is not None else ""
        metrics = [self._make(spec, loss_name, y_true, y_pred) for spec in self.metric_specs]
        weighted = [self._make(spec, loss_name, y_true, y_pred) for spec in self.weighted_specs]
        unweighted_names = {m.name for m in metrics}
        # The reported names carry the output's prefix (and "weighted_" for a weighted metric
        # named as a plain one, as Keras); the metric objects keep their own names, so a metric
        # instance given to compile is never renamed (compiling again would prefix it twice).
        self.names = [self.prefix + m.name for m in metrics] + [
            self.prefix + ("weighted_" if m.name in unweighted_names else "") + m.name for m in weighted]
        self.metrics = metrics + weighted
        self.weighted = [False] * len(metrics) + [True] * len(weighted)

    @staticmethod
    def _make(spec, loss_name, y_true, y_pred):
        if isinstance(spec, str) and spec in ("acc", "accuracy"):
            fn = metrics_module.resolve_accuracy(loss_name, np.shape(y_true), np.shape(y_pred))
            return metrics_module.MeanMetricWrapper(fn, name=spec)
        return metrics_module.get(spec)


class _CompiledLoss:
    """`model.compiled_loss(y, y_pred, sample_weight=None, regularization_losses=None)`: the
    compiled losses (plus the given regularization losses, or else the model's own `losses`),
    tracked in the loss metrics as the `compiled_loss` of Keras 2 was. Kept for the many
    published train_step overrides written that way; new code calls `compute_loss`."""

    def __init__(self, model):
        self.model = model

    def __call__(self, y, y_pred, sample_weight=None, regularization_losses=None):
        model = self.model
        ys, outs = model._flat_targets(y), model._flat_predictions(y_pred)
        extra = None if regularization_losses is None else list(regularization_losses)
        total, per_output = model._compute_losses(ys, outs, sample_weight, extra_losses=extra)
        if total is None:
            raise ValueError("compiled_loss: the model was compiled without a loss")
        model._track_losses(total, per_output, _batch_size(outs))
        return total


class _CompiledMetrics:
    """The metrics given to compile, as one entry of `model.metrics` (Keras 3's CompileMetrics):
    `update_state(y, y_pred, sample_weight=None)` updates every output's metrics (resolving
    "accuracy" from the first batch's shapes), `result()` is a dict of their values. Also
    `model.compiled_metrics`, Keras 2's name for it, which published train_step code uses."""

    name = "compile_metrics"

    def __init__(self, model):
        self.model = model

    def update_state(self, y, y_pred, sample_weight=None):
        """Update every compiled metric with this batch's targets and predictions."""
        self.model._update_compiled_metrics(self.model._flat_targets(y),
                                            self.model._flat_predictions(y_pred), sample_weight)

    @property
    def metrics(self):
        return [m for o in self.model._compiled_outputs for m in (o.metrics or [])]

    def result(self):
        return {name: m.result() for o in self.model._compiled_outputs
                for name, m in zip(o.names or (), o.metrics or ())}

    def reset_state(self):
        for m in self.metrics:
            m.reset_state()


def _metrics_per_output(metrics, names, argument="metrics"):
    """compile's `metrics` (or `weighted_metrics`) as one list per output: a list applies to
    every output, a list of lists or a dict (keyed by output name) gives each its own."""
    if metrics is not None and not isinstance(metrics, (list, tuple, dict)) and argument == "weighted_metrics":
        raise ValueError(f"compile: `weighted_metrics` must be a list, tuple or dict; got {metrics!r}")
    if isinstance(metrics, dict):
        unknown = sorted(set(metrics) - set(names))
        if unknown:
            raise ValueError(f"compile: `{argument}` names outputs {unknown}, but the model's outputs are {names}")
        per_output = [metrics.get(n) for n in names]
    elif isinstance(metrics, (list, tuple)) and len(names) > 1 and metrics and \
            all(isinstance(m, (list, tuple)) or m is None for m in metrics):
        per_output = list(metrics)
    else:
        per_output = [metrics] * len(names)
    return [[m] if m is not None and not isinstance(m, (list, tuple)) else list(m or []) for m in per_output]


def _batch_size(arrays):
    for a in flatten(arrays):
        if a is not None and np.ndim(a):
            return int(np.shape(a)[0])
    return 1


class Trainer:
    def _init_trainer(self):
        self.optimizer = None
        self.compiled = False
        self.stop_training = False
        self.history = None
        self._compiled_outputs = []
        self._loss_tracker = None
        self._output_loss_trackers = {}
        self.compiled_loss = None
        self.compiled_metrics = None

    # -- compile ---------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None,
                run_eagerly=False, steps_per_execution=1, jit_compile="auto", auto_scale_loss=True):
        """Configure the model for training.

        Args:
            optimizer: an optimizer name or instance.
            loss: a loss (name, function or Loss), a list or dict of them for several outputs,
                or None for a model that computes its own loss (`add_loss`, or an overridden
                `train_step` / `compute_loss`).
            loss_weights: scalars weighting each output's loss in the total (list or dict).
            metrics: metrics to report for each output (list, or dict keyed by output name),
                computed without sample weights.
            weighted_metrics: metrics computed with the batches' sample weights (and class
                weights), in the same forms as `metrics`; one that shares an unweighted metric's
                name is reported as "weighted_<name>".
            run_eagerly: True runs every step op by op, without the model's execution plan
                (engine/models/plan.py), as Keras runs it without compiling.
            steps_per_execution: the number of batches Keras runs per call of its compiled
                step, and so how often the batch hooks of callbacks run: on_*_batch_begin before
                the first batch of each group of that many, on_*_batch_end after its last, with
                the group's first index + steps_per_execution - 1 and the last batch's logs (as
                Keras; engine still steps batch by batch, and the metrics are the same).
            jit_compile: True, False or "auto" (the default): whether steps run through the
                model's execution plan, engine's counterpart of Keras's XLA compilation. "auto"
                is True unless `run_eagerly`; False runs every step op by op, as Keras's JAX
                backend runs an un-jitted step. True with `run_eagerly` warns and is False, as
                in Keras. The resolved value is `model.jit_compile`.
            auto_scale_loss: Keras wraps the optimizer in a LossScaleOptimizer when the model's
                policy is "mixed_float16"; engine's layers refuse 16-bit compute policies (their
                kernels compute in float32 and float64), so there is never a loss to scale
                automatically. A LossScaleOptimizer passed as the optimizer works as in Keras.
        """
        self.optimizer = optimizers.get(optimizer)
        names = self.output_names
        losses = _per_output(loss, names, "loss")
        weights = _per_output(loss_weights, names, "loss_weights", default=1.0)
        metric_lists = _metrics_per_output(metrics, names)
        weighted_lists = _metrics_per_output(weighted_metrics, names, "weighted_metrics")
        multi = len(names) > 1
        self._compiled_outputs = [
            _CompiledOutput(n, l, w, m, f"{n}_" if multi else "", wm)
            for n, l, w, m, wm in zip(names, losses, weights, metric_lists, weighted_lists)]
        if all(o.loss is None for o in self._compiled_outputs) and loss is not None:
            raise ValueError("compile: no loss could be resolved")
        self._has_compiled_metrics = any(o.has_metrics() for o in self._compiled_outputs)
        self._loss_tracker = metrics_module.Mean(name="loss")
        self._output_loss_trackers = {o.name: metrics_module.Mean(name=f"{o.name}_loss")
                                      for o in self._compiled_outputs if multi and o.loss is not None}
        # Set past Layer.__setattr__, which would track the container as a user metric.
        object.__setattr__(self, "compiled_loss", _CompiledLoss(self))
        object.__setattr__(self, "compiled_metrics", _CompiledMetrics(self))
        self.compiled = True
        self.loss = loss
        self._loss_weights_spec, self._metrics_spec = loss_weights, metrics
        self._weighted_metrics_spec = weighted_metrics
        self._train_vars = None
        self.run_eagerly = bool(run_eagerly)
        if isinstance(steps_per_execution, bool) or not isinstance(steps_per_execution, (int, np.integer)) or \
                steps_per_execution < 1:
            raise ValueError(f"compile: steps_per_execution must be a positive integer, got {steps_per_execution!r}")
        self.steps_per_execution = int(steps_per_execution)
        if jit_compile not in ("auto", True, False):
            raise ValueError(f"compile: jit_compile must be True, False or \"auto\", got {jit_compile!r}")
        if jit_compile and jit_compile != "auto" and self.run_eagerly:
            warn_user("If `run_eagerly` is True, then `jit_compile` cannot also be True. Disabling `jit_compile`.")
        self.jit_compile = not self.run_eagerly if jit_compile == "auto" else bool(jit_compile) and not self.run_eagerly
        plan_module.clear(self)   # plans hold the loss and optimizer of the previous compile

    def _steps_per_execution(self):
        return self.__dict__.get("steps_per_execution", 1)

    def _require_compiled(self, what):
        if not self.compiled:
            raise RuntimeError(f"You must compile the model before calling {what}(): "
                               f"model.compile(optimizer=..., loss=...)")

    # -- losses ----------------------------------------------------------------------------------
    def _compute_losses(self, ys, outs, sample_weight=None, extra_losses=None):
        """(total, per-output losses) for flat targets and predictions; total is None when there
        is no loss at all. `extra_losses` replaces the model's own `losses` when given."""
        total = None
        per_output = []
        if ys is None:
            ys = [None] * len(self._compiled_outputs)
        for out_spec, y, p in zip(self._compiled_outputs, ys, outs):
            if out_spec.loss is None:
                per_output.append(None)
                continue
            if y is None:
                raise ValueError(f"The model was compiled with a loss for output \"{out_spec.name}\" but "
                                 "got no targets for it: pass y (or compile without that loss)")
            value = out_spec.loss(y, p, sample_weight=sample_weight)
            per_output.append(value)
            term = value if out_spec.weight == 1.0 else ops.multiply(value, out_spec.weight)
            total = term if total is None else ops.add(total, term)
        for extra in (self._additional_losses() if extra_losses is None else extra_losses):
            # As in Keras, each add_loss / regularization loss enters the total as its sum.
            extra = extra if np.ndim(extra) == 0 else ops.sum(extra)
            total = extra if total is None else ops.add(total, extra)
        return total, per_output

    def _additional_losses(self):
        """self.losses: what the layers added during this step's forward pass (add_loss, activity
        regularizers), then their trainable weights' regularization. During fit the layers and the
        regularized weights are looked up once (see _loss_sources)."""
        sources = getattr(self, "_loss_sources_cache", None)
        if sources is None:
            return self.losses
        layers, regularized = sources
        return Layer._losses_of(layers, regularized)

    def _loss_sources(self):
        regularized = [w for w in self.trainable_weights if getattr(w, "regularizer", None) is not None]
        return self._flatten_layers(), regularized

    def _flat_targets(self, y):
        if y is None:
            return [None] * len(self.output_names)
        return data_utils.standardize_targets(self, y)

    def _flat_predictions(self, y_pred):
        if isinstance(y_pred, dict):
            return [y_pred[n] for n in self.output_names]
        return flatten(y_pred)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The total loss of a batch: the compiled losses of the outputs (weighted) plus the
        model's own `losses` (add_loss, regularizers). Overridable.

        Args:
            x: the batch's inputs (unused by the default implementation).
            y: the targets (structure of the model's outputs).
            y_pred: the model's outputs for `x`.
            sample_weight: optional per-sample weights.
            training: whether this is a training step.

        Returns:
            A scalar tensor.
        """
        ys, outs = self._flat_targets(y), self._flat_predictions(y_pred)
        total, per_output = self._compute_losses(ys, outs, sample_weight)
        if total is None:
            raise ValueError("No loss to compute. Provide a `loss` argument in `compile()`, or add "
                             "losses with `add_loss`.")
        self._track_output_losses(per_output, _batch_size(outs))
        return total

    # -- metrics ---------------------------------------------------------------------------------
    @property
    def metrics(self):
        """The metrics the model reports, in Keras's order: the loss tracker, the compiled metrics
        (one entry whose result is a dict), the per-output loss trackers, then the metrics
        assigned as attributes of the model."""
        out = []
        if self.compiled:
            out.append(self._loss_tracker)
            if self._has_compiled_metrics:
                out.append(self.compiled_metrics)
            out.extend(self._output_loss_trackers.values())
        for m in self.__dict__.get("_tracked_metrics", ()):
            if not any(m is seen for seen in out):
                out.append(m)
        return out

    @property
    def metrics_names(self):
        return [m.name for m in self.metrics]

    def reset_metrics(self):
        """Reset the state of every metric in `metrics` (fit does at the start of each epoch)."""
        for m in self.metrics:
            m.reset_state()

    def get_metrics_result(self):
        """{name: result} for every metric in `metrics`."""
        out = {}
        for m in self.metrics:
            result = m.result()
            if isinstance(result, dict):
                out.update(result)
            else:
                out[m.name] = result
        return out

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """Update the compiled metrics with a batch and return `get_metrics_result()`. Overridable."""
        self._update_compiled_metrics(self._flat_targets(y), self._flat_predictions(y_pred), sample_weight)
        return self.get_metrics_result()

    def _track_output_losses(self, per_output, batch_n):
        for o, value in zip(self._compiled_outputs, per_output):
            tracker = self._output_loss_trackers.get(o.name)
            if tracker is not None and value is not None:
                tracker.update_state(float(value), sample_weight=batch_n)

    def _track_losses(self, total, per_output, batch_n):
        self._loss_tracker.update_state(float(total), sample_weight=batch_n)
        self._track_output_losses(per_output, batch_n)

    def _update_compiled_metrics(self, ys, outs, sample_weight=None):
        """Metrics from `metrics` see no sample weights; those from `weighted_metrics` do (as Keras 3)."""
        weights = sample_weight if isinstance(sample_weight, (list, tuple)) else [sample_weight] * len(ys)
        for o, y, p, sw in zip(self._compiled_outputs, ys, outs, weights):
            if not o.has_metrics() or y is None:
                continue
            if o.metrics is None:
                o.resolve_metrics(y, p)
            for m, weighted in zip(o.metrics, o.weighted):
                m.update_state(y, p, sw) if weighted and sw is not None else m.update_state(y, p)

    def _update_metrics(self, total, per_output, ys, outs, batch_n, sample_weight=None):
        if total is not None:
            self._track_losses(total, per_output, batch_n)
        if ys is not None:
            self._update_compiled_metrics(ys, outs, sample_weight)

    def _logs(self):
        with distributed.global_metrics(self):     # data-parallel: the metrics of every rank's data
            return _python_logs(self.get_metrics_result())

    # -- one step ------------------------------------------------------------------------------
    def _run_forward(self, xs):
        """One forward pass of the model as the outermost call: losses the layers added in earlier
        passes are cleared first, as Keras clears them at the start of each model call."""
        with call_context(self):
            return self._forward(xs)

    def _trainable_variables(self):
        return self.trainable_weights

    def _fully_built(self):
        """Whether every layer has its weights: a subclassed model, or a layer of a functional one
        whose call() could not be run on placeholders, makes them on its first real call."""
        if not self.__dict__.get("_built_by_data") and hasattr(self, "_nodes") and \
                all(layer.built for layer in self._flatten_layers()):
            self._built_by_data = True       # looked at once, not at every step
        return bool(self.__dict__.get("_built_by_data"))

    def _build_on(self, xs):
        """A model whose weights are not all made yet makes them on its first call: make that call
        (on one sample) before training, so the step trains every weight from the first batch."""
        if not self._fully_built():
            with training_scope(False):
                self._run_forward(self._take(xs, slice(0, 1)))
            self._built_by_data = True

    def _train_step(self, xs, ys, sample_weight=None, tvars=None):
        """The built-in training step on prepared arrays: (total loss, per-output losses, outputs).
        A functional model replays the step's plan (engine/models/plan.py) when it has one."""
        tvars = tvars if tvars is not None else self._trainable_variables()
        if hasattr(self, "_nodes") and plan_module.enabled(self) and not autodiff._active_tapes:
            return plan_module.run_train(self, xs, ys, sample_weight, tvars,
                                         lambda tracer: self._eager_train_step(xs, ys, sample_weight,
                                                                               tvars, tracer))
        return self._eager_train_step(xs, ys, sample_weight, tvars)

    def _eager_train_step(self, xs, ys, sample_weight, tvars, tracer=None):
        """The training step through the tape; `tracer` (a plan being traced) sees the loss."""
        with GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(tvars)
            with training_scope(True):
                outs = self._run_forward(xs)
            if tracer is not None:
                plan_module.begin_loss(tracer, self, outs, ys, sample_weight)
            total, per_output = self._compute_losses(ys, outs, sample_weight)
            if tracer is not None:
                plan_module.end_loss(tracer, self, total, per_output, ys, sample_weight, tvars)
            # With a loss scale (loss_scale_factor, LossScaleOptimizer) the gradient is taken of the
            # scaled loss, recorded here; the optimizer divides it out again.
            scaled = total if total is None or not self.optimizer.scales_loss else self.optimizer.scale_loss(total)
        if total is None:
            raise ValueError("No loss to compute. Provide a `loss` argument in `compile()`, add losses "
                             "with `add_loss`, or override `train_step`.")
        if tvars:
            # Embedding gradients stay as rows; data-parallel: averaged over the ranks.
            grads = distributed.compute_gradients(tape, scaled, tvars)
            self.optimizer.apply(grads, tvars)
        elif not self.__dict__.get("_warned_no_weights"):
            self._warned_no_weights = True
            warn_user("The model does not have any trainable weights.")
        return total, per_output, outs

    def _test_step(self, xs, ys, sample_weight=None):
        with training_scope(False):
            outs = self._run_forward(xs)
        total, per_output = self._compute_losses(ys, outs, sample_weight)
        return total, per_output, outs

    def train_step(self, data):
        """One training step on a batch `data` ((x, y) or (x, y, sample_weight)); returns the
        metric results as a dict. Override it for custom training (GradientTape, compute_loss,
        optimizer.apply, metrics)."""
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        xs, ys, n = self._prepare(x, y)
        sw = _weights_array(sample_weight)
        total, per_output, outs = self._train_step(xs, ys, sw, None)
        self._update_metrics(total, per_output, ys, outs, n, sw)
        return self.get_metrics_result()

    def test_step(self, data):
        """One evaluation step on a batch `data`; returns the metric results as a dict."""
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        xs, ys, n = self._prepare(x, y)
        sw = _weights_array(sample_weight)
        total, per_output, outs = self._test_step(xs, ys, sw)
        self._update_metrics(total, per_output, ys, outs, n, sw)
        return self.get_metrics_result()

    def predict_step(self, data):
        """The model's outputs for one batch `data` (x, or a tuple whose first element is x)."""
        x, _, _ = unpack_x_y_sample_weight(data)
        with training_scope(False):
            return self._pack_outputs(self._run_forward(self._prepare_x(x)))

    def _overrides(self, name):
        return getattr(type(self), name) is not getattr(Trainer, name)

    # -- data ------------------------------------------------------------------------------------
    def _prepare(self, x, y=None):
        xs = self._prepare_x(x)
        ys = data_utils.standardize_targets(self, y) if y is not None else None
        n = data_utils.check_sample_counts(xs, ys, self._input_names_for_errors(), self.output_names)
        return xs, ys, n

    @staticmethod
    def _take(arrays, idx):
        return [a[idx] for a in arrays]

    def _user_batch(self, x, y, sw, xs, ys, idx):
        """A batch in the structure the user passed, for an overridden step."""
        bx = _restructure(x, self._take(xs, idx), self._input_names_for_errors())
        by = None if ys is None else _restructure(y, self._take(ys, idx), self.output_names)
        return pack_x_y_sample_weight(bx, by, None if sw is None else sw[idx])

    # -- steps on raw batches (generators, PyDataset, tf.data, DataLoader) ---------------------------
    def _step_on_batch(self, batch, index, training, tvars=None, shard=None):
        """One step on a batch a data source yielded: the overridden step gets it as it is; the
        built-in one gets it standardized (a batch that does not fit the model is a ValueError
        naming the batch)."""
        if self._overrides("train_step" if training else "test_step"):
            step = self.train_step if training else self.test_step
            return _python_logs(step(batch))
        bx, by, bsw = data_adapters.split_batch(batch)
        try:
            xs, ys, n = self._prepare(bx, by)
        except ValueError as e:
            raise ValueError(f"Batch {index} of the data: {e}") from None
        sw = _weights_array(bsw)
        if training and not self.__dict__.get("_built_by_data"):
            self._build_on(xs)
            if self.__dict__.get("_built_by_data"):     # just built: data-parallel, rank 0's weights
                distributed.share_training_state(self)
        with distributed.step(shard):
            if training:
                total, per_output, outs = self._train_step(xs, ys, sw, tvars)
            else:
                total, per_output, outs = self._test_step(xs, ys, sw)
        distributed.update_metrics(self, shard, lambda: self._update_metrics(total, per_output, ys, outs, n, sw))
        return self._logs()

    def _source(self, x, y, sample_weight, shuffle, what):
        data_adapters.check_batch_source_arguments(x, y, sample_weight, shuffle, what)
        return data_adapters.BatchSource(x, shuffle=shuffle is True, rng=engine_random.generator())

    # -- fit ----------------------------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None, sample_weight=None,
            initial_epoch=0, steps_per_epoch=None, validation_steps=None, validation_batch_size=None,
            validation_freq=1):
        """Train the model for a number of epochs, with Keras's arguments; returns a History.

        `x` is an array (a list or dict of them for several inputs, or a pandas DataFrame), with
        targets `y`; or a source of batches `(x, y)` / `(x, y, sample_weight)`: a Python
        generator, an engine.utils.PyDataset (loaded ahead by its workers), a tf.data.Dataset or
        a torch DataLoader, which then carries the targets itself.
        """
        self._require_compiled("fit")
        _malloc.tune_for_training()
        epochs, steps_per_epoch = config.capped_epochs(epochs), config.capped_steps(steps_per_epoch)
        if x is None:
            raise ValueError("fit: pass training data x (and targets y)")
        x, y = data_adapters.pandas_to_numpy(x), data_adapters.pandas_to_numpy(y)
        batch_size = 32 if batch_size is None else int(batch_size)
        if batch_size <= 0:
            raise ValueError(f"fit: batch_size must be positive, got {batch_size}")
        verbose = 1 if verbose == "auto" else int(verbose)
        custom_step = self._overrides("train_step")
        source = None
        if data_adapters.is_batch_source(x):
            if validation_split:
                raise ValueError("fit: validation_split is only supported for arrays; pass "
                                 "validation_data for a generator or dataset")
            if class_weight is not None:
                raise ValueError("fit: class_weight is only supported for arrays; yield "
                                 "(x, y, sample_weight) from the data instead")
            source = self._source(x, y, sample_weight, shuffle, "fit")
            steps = steps_per_epoch or distributed.num_steps(source.num_batches)
            xs = ys = sw = None
        else:
            if y is None and not custom_step and any(o.loss is not None for o in self._compiled_outputs):
                raise ValueError("fit: pass targets y, or x as a generator or dataset that yields (x, y)")
            xs, ys, n = self._prepare(x, y)
            sw = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float32)
            if class_weight is not None:
                sw = self._class_weights(ys, class_weight, sw)
            if validation_data is None and validation_split:
                if not 0 < validation_split < 1:
                    raise ValueError(f"fit: validation_split must be in (0, 1), got {validation_split}")
                split = int(n * (1.0 - validation_split))
                validation_data = (self._take(xs, slice(split, None)),
                                   None if ys is None else self._take(ys, slice(split, None)))
                xs = self._take(xs, slice(0, split))
                ys = None if ys is None else self._take(ys, slice(0, split))
                sw = None if sw is None else sw[:split]
                n = split
            if n == 0:
                raise ValueError("fit: the training data is empty")
            steps = steps_per_epoch or -(-n // batch_size)
        val = self._validation(validation_data)

        history = callbacks_module.History()
        cb_list = list(callbacks or [])
        if verbose and not any(isinstance(c, callbacks_module.ProgbarLogger) for c in cb_list):
            cb_list.insert(0, callbacks_module.ProgbarLogger())
        cb_list.append(history)
        cbs = callbacks_module.CallbackList(cb_list, model=self, steps_per_execution=self._steps_per_execution(), verbose=verbose, epochs=epochs, steps=steps,
                                            mode="fit")
        self.stop_training = False
        rng = engine_random.generator()
        if source is None:
            self._build_on(xs)
        distributed.begin(self, training=True)     # data-parallel: rank 0's weights and random state
        # The weights and losses of a model do not change during fit: look them up once (for a
        # batch source, after the first batch has built a subclassed model).
        tvars = self._trainable_variables() if source is None or (self.built and self._fully_built()) else None
        self._loss_sources_cache = self._loss_sources() if tvars is not None else None
        cbs.on_train_begin()
        # BackupAndRestore sets the epoch to resume at (as Keras's model._initial_epoch).
        initial_epoch = self.__dict__.pop("_initial_epoch", None) or initial_epoch
        logs = {}
        interrupted = False
        try:
            for epoch in range(initial_epoch, epochs):
                cbs.on_epoch_begin(epoch)
                self.reset_metrics()
                ran = 0
                if source is not None:
                    for step, (batch, shard) in enumerate(distributed.epoch(source, steps_per_epoch)):
                        cbs.on_train_batch_begin(step)
                        logs = self._step_on_batch(batch, step, True, tvars, shard)
                        if tvars is None:
                            tvars = self._trainable_variables()
                            self._loss_sources_cache = self._loss_sources()
                        ran += 1
                        cbs.on_train_batch_end(step, logs)
                        if self.stop_training:
                            break
                    if ran == 0:
                        warn_user("Your input ran out of data; interrupting training. Make sure that "
                                  "your dataset or generator can generate at least "
                                  "`steps_per_epoch * epochs` batches.")
                        self.stop_training = True
                        break
                else:
                    logs = self._fit_arrays_epoch(cbs, xs, ys, sw, x, y, n, steps, batch_size, shuffle, rng,
                                                  custom_step, tvars)
                epoch_logs = dict(logs)
                if val is not None and (epoch + 1) % validation_freq == 0:
                    # As Keras's fit, validation runs the callbacks' test hooks (TensorBoard
                    # writes its evaluation_*_vs_iterations there).
                    cbs.on_test_begin()
                    val_logs = self._evaluate_data(val, validation_batch_size or batch_size, validation_steps, cbs)
                    cbs.on_test_end(val_logs)
                    epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
                cbs.on_epoch_end(epoch, epoch_logs)
                if self.stop_training:
                    break
        except KeyboardInterrupt:
            interrupted = True
            print_msg("\nTraining interrupted: the model keeps the weights of the last completed step.")
        finally:
            self._loss_sources_cache = None
            if source is not None:
                source.close()
        # As Keras: an optimizer keeping moving averages (use_ema) writes them into the weights.
        finalize = getattr(self.optimizer, "finalize_variable_values", None)
        if finalize is not None:
            finalize(self.trainable_weights)
        cbs.on_train_end(logs)
        if not interrupted:
            distributed.end(self)      # data-parallel: the ranks hold the same state (see begin)
        history.model = self
        self.history = history
        return history

    def _fit_arrays_epoch(self, cbs, xs, ys, sw, x, y, n, steps, batch_size, shuffle, rng, custom_step, tvars):
        """One epoch over prepared arrays: batches sliced from them, shuffled as Keras does."""
        logs = {}
        # shuffle=True shuffles samples; shuffle="batch" (as in Keras) shuffles the order of
        # contiguous batches, which keeps reads sequential.
        order = rng.permutation(n) if shuffle is True else None
        batch_order = rng.permutation(steps) if shuffle == "batch" else None
        # The built-in step: when no callback reads a batch's logs, they are made once, after the
        # epoch's last step, not after every step (the same values: the metrics do not change in
        # between). Data-parallel, logs are a collective, so the ranks decide that together.
        local = not custom_step and distributed.active() is None
        lazy_logs = not custom_step and not distributed.any_rank(callbacks_module.reads_train_batch_logs(cbs))
        for step in range(steps):
            start = ((batch_order[step] if batch_order is not None else step) * batch_size) % n
            idx = slice(start, min(start + batch_size, n)) if order is None else order[start:start + batch_size]
            if local:
                cbs.on_train_batch_begin(step)
                bx, by = self._take(xs, idx), None if ys is None else self._take(ys, idx)
                bsw = None if sw is None else sw[idx]
                total, per_output, outs = self._train_step(bx, by, bsw, tvars)
                self._update_metrics(total, per_output, by, outs, len(bx[0]), bsw)
                logs = _UNREAD_LOGS if lazy_logs else self._logs()
                cbs.on_train_batch_end(step, logs)
                if self.stop_training:
                    break
                continue
            shard = distributed.shard(idx, n)      # data-parallel: this rank's rows of the batch
            idx = idx if shard is None else shard.index
            cbs.on_train_batch_begin(step)
            if custom_step:
                logs = _python_logs(self.train_step(self._user_batch(x, y, sw, xs, ys, idx)))
            else:
                bx, by = self._take(xs, idx), None if ys is None else self._take(ys, idx)
                bsw = None if sw is None else sw[idx]
                with distributed.step(shard):
                    total, per_output, outs = self._train_step(bx, by, bsw, tvars)
                distributed.update_metrics(
                    self, shard, lambda: self._update_metrics(total, per_output, by, outs, len(bx[0]), bsw))
                logs = _UNREAD_LOGS if lazy_logs else self._logs()
            cbs.on_train_batch_end(step, logs)
            if self.stop_training:
                break
        return self._logs() if logs is _UNREAD_LOGS else logs

    @staticmethod
    def _class_weights(ys, class_weight, sw):
        if ys is None:
            raise ValueError("fit: class_weight needs targets y")
        y0 = ys[0]
        one_hot = y0.ndim > 1 and y0.shape[-1] > 1
        labels = y0.argmax(axis=-1) if one_hot else np.rint(y0.reshape(len(y0), -1)[:, 0]).astype(int)
        cw = np.array([class_weight.get(int(c), 1.0) for c in labels], dtype=np.float32)
        return cw if sw is None else sw * cw

    def _validation(self, validation_data):
        """validation_data as prepared arrays (x, y, sample_weight, original x, original y) or a
        batch source, or None."""
        if validation_data is None:
            return None
        validation_data = data_adapters.pandas_to_numpy(validation_data)
        if data_adapters.is_batch_source(validation_data):
            return self._source(validation_data, None, None, False, "validation_data")
        if not isinstance(validation_data, (list, tuple)) or len(validation_data) not in (2, 3):
            raise ValueError("fit: validation_data must be a tuple (x_val, y_val) or (x_val, y_val, "
                             "sample_weight), or a generator or dataset")
        vx, vy, _ = self._prepare(validation_data[0], validation_data[1])
        return (vx, vy, validation_data[2] if len(validation_data) == 3 else None,
                validation_data[0], validation_data[1])

    def _evaluate_data(self, val, batch_size, steps=None, cbs=None):
        if isinstance(val, data_adapters.BatchSource):
            return self._evaluate_source(val, steps, cbs)
        xs, ys, sw, x, y = val
        return self._evaluate_arrays(xs, ys, sw, batch_size, _batch_starts(len(xs[0]), batch_size, steps), cbs,
                                     x=x, y=y)

    def _evaluate_source(self, source, steps=None, cbs=None):
        self.reset_metrics()
        logs = {}
        for step, (batch, shard) in enumerate(distributed.epoch(source, steps)):
            if cbs:
                cbs.on_test_batch_begin(step)
            logs = self._step_on_batch(batch, step, False, shard=shard)
            if cbs:
                cbs.on_test_batch_end(step, logs)
        return logs or self._logs()

    # -- evaluate --------------------------------------------------------------------------------
    def _evaluate_arrays(self, xs, ys, sw, batch_size, starts, cbs=None, x=None, y=None):
        """The metrics over the batches of xs / ys starting at `starts` (see _batch_starts)."""
        n = len(xs[0])
        custom_step = self._overrides("test_step")
        self.reset_metrics()
        sw = None if sw is None else np.asarray(sw, dtype=np.float32)
        logs = {}
        for step, start in enumerate(starts):
            idx = slice(start, start + batch_size)
            shard = distributed.shard(idx, n)
            idx = idx if shard is None else shard.index
            if cbs:
                cbs.on_test_batch_begin(step)
            if custom_step:
                logs = _python_logs(self.test_step(self._user_batch(x, y, sw, xs, ys, idx)))
            else:
                bx, by = self._take(xs, idx), None if ys is None else self._take(ys, idx)
                bsw = None if sw is None else sw[idx]
                with distributed.step(shard):
                    total, per_output, outs = self._test_step(bx, by, bsw)
                distributed.update_metrics(
                    self, shard, lambda: self._update_metrics(total, per_output, by, outs, len(bx[0]), bsw))
                logs = self._logs()
            if cbs:
                cbs.on_test_batch_end(step, logs)
        return logs or self._logs()

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        """The loss and metrics of the model on data, batch by batch (a scalar, a list in the order
        of `metrics_names`, or a dict with return_dict=True). `x` takes what fit takes."""
        self._require_compiled("evaluate")
        steps = config.capped_steps(steps)
        x, y = data_adapters.pandas_to_numpy(x), data_adapters.pandas_to_numpy(y)
        batch_size = 32 if batch_size is None else int(batch_size)
        verbose = 1 if verbose == "auto" else int(verbose)
        cb_list = list(callbacks or [])
        if verbose:
            cb_list.insert(0, callbacks_module.ProgbarLogger())
        distributed.begin(self)
        if data_adapters.is_batch_source(x):
            source = self._source(x, y, sample_weight, False, "evaluate")
            cbs = callbacks_module.CallbackList(cb_list, model=self, steps_per_execution=self._steps_per_execution(), verbose=verbose,
                                                steps=steps or distributed.num_steps(source.num_batches),
                                                mode="evaluate")
            cbs.on_test_begin()
            try:
                logs = self._evaluate_source(source, steps, cbs)
            finally:
                source.close()
        else:
            if y is None and not self._overrides("test_step") and \
                    any(o.loss is not None for o in self._compiled_outputs):
                raise ValueError("evaluate: pass targets y, or x as a generator or dataset that yields (x, y)")
            xs, ys, n = self._prepare(x, y)
            starts = _batch_starts(n, batch_size, steps)    # once: it warns when the data runs out
            cbs = callbacks_module.CallbackList(cb_list, model=self, steps_per_execution=self._steps_per_execution(), verbose=verbose, steps=len(starts),
                                                mode="evaluate")
            cbs.on_test_begin()
            logs = self._evaluate_arrays(xs, ys, sample_weight, batch_size, starts, cbs, x=x, y=y)
        cbs.on_test_end(logs)
        distributed.end(self)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    # -- predict ---------------------------------------------------------------------------------
    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """The model's outputs for `x` as numpy arrays, computed batch by batch. `x` is what fit
        takes (a source's batches may carry targets: they are ignored)."""
        steps = config.capped_steps(steps)
        if type(x) is np.ndarray and not verbose and not callbacks and steps is None and \
                len(x) <= (32 if batch_size is None else batch_size) and len(x) and \
                not self._overrides("predict_step"):
            # One batch of one array, nothing to report: the step alone (its plan, for a
            # functional model), without the batching and callback machinery below.
            outs = plan_module.predict_batch(self, x) if hasattr(self, "_nodes") else None
            if outs is None:
                with training_scope(False):
                    outs = [np.array(o) for o in self._run_forward(self._prepare_x(x))]
            return self._pack_outputs(outs)
        x = data_adapters.pandas_to_numpy(x)
        batch_size = 32 if batch_size is None else int(batch_size)
        verbose = 1 if verbose == "auto" else int(verbose)
        custom_step = self._overrides("predict_step")
        cb_list = list(callbacks or [])
        if verbose:
            cb_list.insert(0, callbacks_module.ProgbarLogger())
        distributed.begin(self)
        source = self._source(x, None, None, False, "predict") if data_adapters.is_batch_source(x) else None
        shards = []     # data-parallel: this rank's part of each global batch, to gather the outputs
        if source is not None:
            steps_n = steps or distributed.num_steps(source.num_batches)

            def batches():
                for batch, shard in distributed.epoch(source, steps):
                    shards.append(shard)
                    yield data_adapters.split_batch(batch)[0]
        else:
            xs = self._prepare_x(x)
            n = data_utils.check_sample_counts(xs, None, self._input_names_for_errors(), [])
            starts = _batch_starts(n, batch_size, steps)
            steps_n = len(starts)

            def batches():
                for start in starts:
                    shard = distributed.shard(slice(start, start + batch_size), n)
                    shards.append(shard)
                    yield self._take(xs, slice(start, start + batch_size) if shard is None else shard.index)
        cbs = callbacks_module.CallbackList(cb_list, model=self, steps_per_execution=self._steps_per_execution(), verbose=verbose, steps=steps_n, mode="predict")
        cbs.on_predict_begin()
        chunks = []
        structure = None
        try:
            with training_scope(False):
                for step, batch in enumerate(batches()):
                    cbs.on_predict_batch_begin(step)
                    if custom_step:
                        if source is None:
                            batch = _restructure(x, batch, self._input_names_for_errors())
                        result = self.predict_step(batch)
                        structure = result
                        chunks.append(flatten(result))
                    else:
                        if source is not None:
                            try:
                                batch = self._prepare_x(batch)
                            except ValueError as e:
                                raise ValueError(f"Batch {step} of the data: {e}") from None
                        chunks.append(self._run_forward(batch))
                    cbs.on_predict_batch_end(step, {})
        finally:
            if source is not None:
                source.close()
        cbs.on_predict_end()
        chunks = distributed.gather_outputs(chunks, shards)
        distributed.end(self)
        if not chunks:
            outs = [np.zeros((0,) + tuple(d or 0 for d in t.shape[1:]), dtype=t.dtype) for t in self.outputs]
        else:
            outs = [np.concatenate([np.asarray(c[i]) for c in chunks], axis=0) for i in range(len(chunks[0]))]
        if structure is not None:
            return pack_like(structure, iter(outs))
        return self._pack_outputs(outs)

    # -- single batches ------------------------------------------------------------------------------
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One training step on one batch; returns the metrics of that batch."""
        self._require_compiled("train_on_batch")
        _malloc.tune_for_training()
        self.reset_metrics()
        if self._overrides("train_step"):
            return self._batch_result(_python_logs(self.train_step(pack_x_y_sample_weight(x, y, sample_weight))),
                                      return_dict)
        xs, ys, _ = self._prepare(x, y)
        self._build_on(xs)
        sw = _weights_array(sample_weight)
        total, per_output, outs = self._train_step(xs, ys, sw)
        self._update_metrics(total, per_output, ys, outs, len(xs[0]), sw)
        return self._batch_result(self._logs(), return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """The loss and metrics of the model on one batch."""
        self._require_compiled("test_on_batch")
        self.reset_metrics()
        if self._overrides("test_step"):
            return self._batch_result(_python_logs(self.test_step(pack_x_y_sample_weight(x, y, sample_weight))),
                                      return_dict)
        xs, ys, _ = self._prepare(x, y)
        sw = _weights_array(sample_weight)
        total, per_output, outs = self._test_step(xs, ys, sw)
        self._update_metrics(total, per_output, ys, outs, len(xs[0]), sw)
        return self._batch_result(self._logs(), return_dict)

    def predict_on_batch(self, x):
        """The model's outputs for one batch, as numpy arrays."""
        out = self.predict_step(x)
        return _to_numpy(out)

    @staticmethod
    def _batch_result(logs, return_dict):
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values


def _weights_array(sample_weight):
    return None if sample_weight is None else np.asarray(sample_weight, dtype=np.float32)


def _to_numpy(structure):
    if isinstance(structure, (list, tuple)):
        return type(structure)(_to_numpy(s) for s in structure)
    if isinstance(structure, dict):
        return {k: _to_numpy(v) for k, v in structure.items()}
    return np.asarray(structure)


def _restructure(original, arrays, names):
    """`arrays` (in model order) in the structure of the user's `original` data: a dict keyed by
    name, a list, or one array."""
    if isinstance(original, dict):
        return dict(zip(names, arrays))
    if isinstance(original, (list, tuple)) and len(arrays) > 1:
        return type(original)(arrays)
    if isinstance(original, (list, tuple)) and len(original) == 1:
        return type(original)(arrays)
    return arrays[0]
