"""compile / fit / evaluate / predict: the training loop shared by every model kind."""

import numpy as np

from engine import callbacks as callbacks_module
from engine import losses as losses_module
from engine import metrics as metrics_module
from engine import optimizers
from engine import random as engine_random
from engine.autodiff import GradientTape
from engine.layers.base import Layer, call_context, training_scope
from engine.models import data as data_utils
from engine import ops


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


class _CompiledOutput:
    """Loss, loss weight and metrics of one model output."""

    def __init__(self, name, loss, weight, metric_specs, prefix):
        self.name = name
        self.loss = losses_module.get(loss) if loss is not None else None
        self.weight = 1.0 if weight is None else float(weight)
        self.metric_specs = metric_specs or []
        self.prefix = prefix
        self.metrics = None  # resolved on the first batch, when target shapes are known

    def resolve_metrics(self, y_true, y_pred):
        self.metrics = []
        loss_name = getattr(self.loss, "name", "") if self.loss is not None else ""
        for spec in self.metric_specs:
            if isinstance(spec, str) and spec in ("acc", "accuracy"):
                fn = metrics_module.resolve_accuracy(loss_name, np.shape(y_true), np.shape(y_pred))
                m = metrics_module.MeanMetricWrapper(fn, name=self.prefix + spec)
            else:
                m = metrics_module.get(spec)
                m.name = self.prefix + m.name
            self.metrics.append(m)


class Trainer:
    def _init_trainer(self):
        self.optimizer = None
        self.compiled = False
        self.stop_training = False
        self.history = None
        self._compiled_outputs = []

    # -- compile ---------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None,
                run_eagerly=False, steps_per_execution=1, jit_compile="auto", auto_scale_loss=True):
        self.optimizer = optimizers.get(optimizer)
        names = self.output_names
        losses = _per_output(loss, names, "loss")
        weights = _per_output(loss_weights, names, "loss_weights", default=1.0)
        if isinstance(metrics, dict):
            metric_lists = [metrics.get(n) for n in names]
        elif isinstance(metrics, (list, tuple)) and len(names) > 1 and metrics and \
                all(isinstance(m, (list, tuple)) or m is None for m in metrics):
            metric_lists = list(metrics)
        else:
            metric_lists = [metrics] * len(names)
        metric_lists = [[m] if m is not None and not isinstance(m, (list, tuple)) else (m or [])
                        for m in metric_lists]
        multi = len(names) > 1
        self._compiled_outputs = [
            _CompiledOutput(n, l, w, m, f"{n}_" if multi else "")
            for n, l, w, m in zip(names, losses, weights, metric_lists)]
        if all(o.loss is None for o in self._compiled_outputs) and loss is not None:
            raise ValueError("compile: no loss could be resolved")
        self.compiled = True
        self.loss = loss
        self._loss_weights_spec, self._metrics_spec = loss_weights, metrics
        self._train_vars = None

    def _require_compiled(self, what):
        if not self.compiled:
            raise RuntimeError(f"You must compile the model before calling {what}(): "
                               f"model.compile(optimizer=..., loss=...)")
        if all(o.loss is None for o in self._compiled_outputs):
            raise ValueError(f"{what}(): the model was compiled without a loss; pass loss=... to compile()")

    # -- one step ------------------------------------------------------------------------------
    def _compute_losses(self, ys, outs, sample_weight=None):
        total = None
        per_output = []
        for out_spec, y, p in zip(self._compiled_outputs, ys, outs):
            if out_spec.loss is None:
                per_output.append(None)
                continue
            value = out_spec.loss(y, p, sample_weight=sample_weight)
            per_output.append(value)
            term = value if out_spec.weight == 1.0 else ops.multiply(value, out_spec.weight)
            total = term if total is None else ops.add(total, term)
        for extra in self._additional_losses():
            # As in Keras, each add_loss / regularization loss enters the total as its sum.
            total = ops.add(total, extra if np.ndim(extra) == 0 else ops.sum(extra))
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

    def _run_forward(self, xs):
        """One forward pass of the model as the outermost call: losses the layers added in earlier
        passes are cleared first, as Keras clears them at the start of each model call."""
        with call_context(self):
            return self._forward(xs)

    def _trainable_variables(self):
        return self.trainable_weights

    def _build_on(self, xs):
        """A subclassed model creates its weights on its first call: make that call before training."""
        if not self.__dict__.get("_built_by_data") and not hasattr(self, "_nodes"):
            with training_scope(False):
                self._run_forward(self._take(xs, slice(0, 1)))
            self._built_by_data = True

    def _train_step(self, xs, ys, sample_weight=None, tvars=None):
        tvars = tvars if tvars is not None else self._trainable_variables()
        with GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(tvars)
            with training_scope(True):
                outs = self._run_forward(xs)
            total, per_output = self._compute_losses(ys, outs, sample_weight)
        grads = tape._gradients_for_optimizer(total, tvars)   # embedding gradients stay as rows
        self.optimizer.apply(grads, tvars)
        return total, per_output, outs

    def _test_step(self, xs, ys, sample_weight=None):
        with training_scope(False):
            outs = self._run_forward(xs)
        total, per_output = self._compute_losses(ys, outs, sample_weight)
        return total, per_output, outs

    # -- metric bookkeeping ------------------------------------------------------------------
    def _new_trackers(self):
        trackers = {"loss": metrics_module.Mean("loss")}
        if len(self._compiled_outputs) > 1:
            for o in self._compiled_outputs:
                if o.loss is not None:
                    trackers[f"{o.name}_loss"] = metrics_module.Mean(f"{o.name}_loss")
        return trackers

    def _update_metrics(self, trackers, total, per_output, ys, outs, batch_n):
        trackers["loss"].update_state(float(total), sample_weight=batch_n)
        if len(self._compiled_outputs) > 1:
            for o, value in zip(self._compiled_outputs, per_output):
                if value is not None:
                    trackers[f"{o.name}_loss"].update_state(float(value), sample_weight=batch_n)
        for o, y, p in zip(self._compiled_outputs, ys, outs):
            if o.metrics is None:
                o.resolve_metrics(y, p)
            for m in o.metrics:
                m.update_state(y, p)

    def _reset_metrics(self):
        for o in self._compiled_outputs:
            for m in o.metrics or []:
                m.reset_state()

    def _logs(self, trackers):
        logs = {k: float(t.result()) for k, t in trackers.items()}
        for o in self._compiled_outputs:
            for m in o.metrics or []:
                logs[m.name] = float(m.result())
        return logs

    # -- data ------------------------------------------------------------------------------------
    def _prepare(self, x, y=None):
        xs = self._prepare_x(x)
        ys = data_utils.standardize_targets(self, y) if y is not None else None
        n = data_utils.check_sample_counts(xs, ys, self._input_names_for_errors(), self.output_names)
        return xs, ys, n

    @staticmethod
    def _take(arrays, idx):
        return [a[idx] for a in arrays]

    # -- fit ----------------------------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None, sample_weight=None,
            initial_epoch=0, steps_per_epoch=None, validation_steps=None, validation_batch_size=None,
            validation_freq=1):
        self._require_compiled("fit")
        if x is None:
            raise ValueError("fit: pass training data x (and targets y)")
        if y is None:
            raise ValueError("fit: pass targets y (engine does not take datasets that yield (x, y) yet)")
        batch_size = 32 if batch_size is None else int(batch_size)
        if batch_size <= 0:
            raise ValueError(f"fit: batch_size must be positive, got {batch_size}")
        verbose = 1 if verbose == "auto" else int(verbose)
        xs, ys, n = self._prepare(x, y)
        sw = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float32)
        if class_weight is not None:
            y0 = ys[0]
            one_hot = y0.ndim > 1 and y0.shape[-1] > 1
            labels = y0.argmax(axis=-1) if one_hot else np.rint(y0.reshape(len(y0), -1)[:, 0]).astype(int)
            cw = np.array([class_weight.get(int(c), 1.0) for c in labels], dtype=np.float32)
            sw = cw if sw is None else sw * cw
        if validation_data is None and validation_split:
            if not 0 < validation_split < 1:
                raise ValueError(f"fit: validation_split must be in (0, 1), got {validation_split}")
            split = int(n * (1.0 - validation_split))
            val = (self._take(xs, slice(split, None)), self._take(ys, slice(split, None)), None)
            xs, ys = self._take(xs, slice(0, split)), self._take(ys, slice(0, split))
            sw = None if sw is None else sw[:split]
            n = split
        elif validation_data is not None:
            if not isinstance(validation_data, (list, tuple)) or len(validation_data) not in (2, 3):
                raise ValueError("fit: validation_data must be a tuple (x_val, y_val) or (x_val, y_val, "
                                 "sample_weight)")
            vx, vy, _ = self._prepare(validation_data[0], validation_data[1])
            val = (vx, vy, validation_data[2] if len(validation_data) == 3 else None)
        else:
            val = None
        if n == 0:
            raise ValueError("fit: the training data is empty")

        steps = steps_per_epoch or -(-n // batch_size)
        history = callbacks_module.History()
        cb_list = list(callbacks or [])
        if verbose and not any(isinstance(c, callbacks_module.ProgbarLogger) for c in cb_list):
            cb_list.insert(0, callbacks_module.ProgbarLogger())
        cb_list.append(history)
        cbs = callbacks_module.CallbackList(cb_list, model=self, verbose=verbose, epochs=epochs, steps=steps,
                                            mode="fit")
        self.stop_training = False
        rng = engine_random.generator()
        self._build_on(xs)
        # The weights and losses of a model do not change during fit: look them up once.
        tvars = self._trainable_variables()
        self._loss_sources_cache = self._loss_sources()
        cbs.on_train_begin()
        logs = {}
        try:
            for epoch in range(initial_epoch, epochs):
                cbs.on_epoch_begin(epoch)
                trackers = self._new_trackers()
                self._reset_metrics()
                # shuffle=True shuffles samples; shuffle="batch" (as in Keras) shuffles the order of
                # contiguous batches, which keeps reads sequential.
                order = rng.permutation(n) if shuffle is True else None
                batch_order = rng.permutation(steps) if shuffle == "batch" else None
                for step in range(steps):
                    start = ((batch_order[step] if batch_order is not None else step) * batch_size) % n
                    idx = slice(start, min(start + batch_size, n)) if order is None else \
                        order[start:start + batch_size]
                    bx, by = self._take(xs, idx), self._take(ys, idx)
                    bsw = None if sw is None else sw[idx]
                    cbs.on_train_batch_begin(step)
                    total, per_output, outs = self._train_step(bx, by, bsw, tvars)
                    self._update_metrics(trackers, total, per_output, by, outs, len(by[0]))
                    logs = self._logs(trackers)
                    cbs.on_train_batch_end(step, logs)
                    if self.stop_training:
                        break
                epoch_logs = dict(logs)
                if val is not None and (epoch + 1) % validation_freq == 0:
                    val_logs = self._evaluate_arrays(*val, validation_batch_size or batch_size)
                    epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
                cbs.on_epoch_end(epoch, epoch_logs)
                if self.stop_training:
                    break
        except KeyboardInterrupt:
            print("\nTraining interrupted: the model keeps the weights of the last completed step.")
        finally:
            self._loss_sources_cache = None
        cbs.on_train_end(logs)
        history.model = self
        self.history = history
        return history

    # -- evaluate --------------------------------------------------------------------------------
    def _evaluate_arrays(self, xs, ys, sw, batch_size, cbs=None):
        n = len(xs[0])
        trackers = self._new_trackers()
        self._reset_metrics()
        logs = {}
        for step, start in enumerate(range(0, n, batch_size)):
            idx = slice(start, start + batch_size)
            bx, by = self._take(xs, idx), self._take(ys, idx)
            if cbs:
                cbs.on_test_batch_begin(step)
            total, per_output, outs = self._test_step(bx, by, None if sw is None else np.asarray(sw)[idx])
            self._update_metrics(trackers, total, per_output, by, outs, len(by[0]))
            logs = self._logs(trackers)
            if cbs:
                cbs.on_test_batch_end(step, logs)
        return logs or self._logs(trackers)

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        self._require_compiled("evaluate")
        if y is None:
            raise ValueError("evaluate: pass targets y")
        batch_size = 32 if batch_size is None else int(batch_size)
        verbose = 1 if verbose == "auto" else int(verbose)
        xs, ys, n = self._prepare(x, y)
        steps_n = -(-n // batch_size)
        cb_list = list(callbacks or [])
        if verbose:
            cb_list.insert(0, callbacks_module.ProgbarLogger())
        cbs = callbacks_module.CallbackList(cb_list, model=self, verbose=verbose, steps=steps_n, mode="evaluate")
        cbs.on_test_begin()
        logs = self._evaluate_arrays(xs, ys, sample_weight, batch_size, cbs)
        cbs.on_test_end(logs)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    # -- predict ---------------------------------------------------------------------------------
    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        batch_size = 32 if batch_size is None else int(batch_size)
        verbose = 1 if verbose == "auto" else int(verbose)
        xs = self._prepare_x(x)
        n = data_utils.check_sample_counts(xs, None, self._input_names_for_errors(), [])
        steps_n = -(-n // batch_size)
        cb_list = list(callbacks or [])
        if verbose:
            cb_list.insert(0, callbacks_module.ProgbarLogger())
        cbs = callbacks_module.CallbackList(cb_list, model=self, verbose=verbose, steps=steps_n, mode="predict")
        cbs.on_predict_begin()
        chunks = []
        with training_scope(False):
            for step, start in enumerate(range(0, n, batch_size)):
                cbs.on_predict_batch_begin(step)
                chunks.append(self._run_forward(self._take(xs, slice(start, start + batch_size))))
                cbs.on_predict_batch_end(step)
        cbs.on_predict_end()
        if not chunks:
            outs = [np.zeros((0,) + tuple(d or 0 for d in t.shape[1:]), dtype=t.dtype) for t in self.outputs]
        else:
            outs = [np.concatenate([c[i] for c in chunks], axis=0) for i in range(len(chunks[0]))]
        return self._pack_outputs(outs)

    # -- single batches ------------------------------------------------------------------------------
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        self._require_compiled("train_on_batch")
        xs, ys, _ = self._prepare(x, y)
        self._build_on(xs)
        trackers = self._new_trackers()
        self._reset_metrics()
        total, per_output, outs = self._train_step(xs, ys, sample_weight)
        self._update_metrics(trackers, total, per_output, ys, outs, len(ys[0]))
        return self._batch_result(self._logs(trackers), return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        self._require_compiled("test_on_batch")
        xs, ys, _ = self._prepare(x, y)
        trackers = self._new_trackers()
        self._reset_metrics()
        total, per_output, outs = self._test_step(xs, ys, sample_weight)
        self._update_metrics(trackers, total, per_output, ys, outs, len(ys[0]))
        return self._batch_result(self._logs(trackers), return_dict)

    def predict_on_batch(self, x):
        with training_scope(False):
            return self._pack_outputs(self._run_forward(self._prepare_x(x)))

    @staticmethod
    def _batch_result(logs, return_dict):
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values
