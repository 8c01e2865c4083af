"""Callbacks (keras.callbacks): hooks into fit / evaluate / predict, with Keras 3's behaviour."""
import csv
import json
import os
import shutil
import time

import numpy as np

from engine.distribution.training import is_chief
from engine.utils.io_utils import print_msg
from engine.utils.progbar import Progbar
from engine.utils.traceback_utils import warn_user


class Callback:
    """Base class of callbacks: hooks called during `fit`, `evaluate` and `predict`.

    Subclasses override the `on_*` methods they need (`on_epoch_end(epoch, logs)`,
    `on_train_batch_end(batch, logs)`, ...); every hook does nothing by default, and
    `on_batch_begin` / `on_batch_end` are the older names of the training-batch hooks. `logs` is a
    dict of the current metric values. During a run, `self.model` is the model being trained and
    `self.params` holds the run's settings (such as `epochs`, `steps` and `verbose`).

    The constructor takes no arguments.
    """

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_batch_begin(self, batch, logs=None): pass
    def on_batch_end(self, batch, logs=None): pass

    # As in Keras, on_batch_begin/end are the older names of the training-batch hooks.
    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs=logs)
    def on_test_begin(self, logs=None): pass
    def on_test_end(self, logs=None): pass
    def on_test_batch_begin(self, batch, logs=None): pass
    def on_test_batch_end(self, batch, logs=None): pass
    def on_predict_begin(self, logs=None): pass
    def on_predict_end(self, logs=None): pass
    def on_predict_batch_begin(self, batch, logs=None): pass
    def on_predict_batch_end(self, batch, logs=None): pass


def reads_train_batch_logs(callback):
    """Whether `callback` (a CallbackList: any of its callbacks) may read the logs handed to
    on_train_batch_end: it, or its older name on_batch_end, is overridden (by the class or set on
    the instance, as LambdaCallback does). fit makes a batch's logs only when some callback does."""
    if isinstance(callback, CallbackList):
        return any(reads_train_batch_logs(c) for c in callback.callbacks)
    for name in ("on_train_batch_end", "on_batch_end"):
        method = getattr(callback, name, None)
        if getattr(method, "__func__", None) is not Callback.__dict__[name]:
            return True
    return False


class CallbackList(Callback):
    """Fans each hook out to a list of callbacks (what `fit` uses, and custom training loops).

    Args:
        callbacks: the `Callback`s.
        add_history: append a `History` if the list has none (it becomes `model.history`).
        add_progbar: append a `ProgbarLogger` if the list has none.
        model: the model the callbacks are used with.
        **params: passed to every callback's `set_params` (`epochs`, `steps`, `verbose`).
    """

    def __init__(self, callbacks=None, add_history=False, add_progbar=False, model=None, steps_per_execution=1,
                 **params):
        super().__init__()
        self.callbacks = list(callbacks or [])
        # compile(steps_per_execution=n): Keras runs n steps per call of its compiled step, and calls
        # the batch hooks around each call: begin(first step), end(first step + n - 1, the last
        # step's logs). The loops still call every step's hooks; groups of n are formed here.
        if isinstance(steps_per_execution, bool) or not isinstance(steps_per_execution, (int, np.integer)) or \
                steps_per_execution < 1:
            raise ValueError(f"steps_per_execution must be a positive integer, got {steps_per_execution!r}")
        self.steps_per_execution = int(steps_per_execution)
        self._open_groups = {}       # mode -> (first step of the open group, the last step's logs)
        self._history = next((c for c in self.callbacks if isinstance(c, History)), None)
        if self._history is None and add_history:
            self._history = History()
            self.callbacks.append(self._history)
        if add_progbar and not any(isinstance(c, ProgbarLogger) for c in self.callbacks):
            self.callbacks.append(ProgbarLogger())
        if model is not None:
            self.set_model(model)
        self.set_params(params)

    def set_model(self, model):
        self.model = model
        if self._history is not None and model is not None:
            model.history = self._history
        for c in self.callbacks:
            c.set_model(model)

    def set_params(self, params):
        self.params = params
        for c in self.callbacks:
            c.set_params(params)

    def _fan_out(name):
        # Every callback receives Keras's positional form: hook(logs) or hook(index, logs).
        arity = 2 if ("epoch" in name or "batch" in name) else 1

        def hook(self, *args, **kwargs):
            args = list(args) + ([kwargs.pop("logs")] if "logs" in kwargs else [])
            args += [None] * (arity - len(args))
            if args[-1] is None:
                args[-1] = {}            # Keras always hands callbacks a logs dict, never None
            for c in self.callbacks:
                getattr(c, name)(*args)
        hook.__name__ = name
        return hook

    for _name in [n for n in dir(Callback) if n.startswith("on_") and not n.startswith("on_batch_")]:
        locals()[_name] = _fan_out(_name)
    # the fan-outs the hooks below wrap (a comprehension cannot see this class body's names)
    _fan = {}
    for _name in ("on_train_batch_begin", "on_train_batch_end", "on_test_batch_begin", "on_test_batch_end",
                  "on_predict_batch_begin", "on_predict_batch_end", "on_epoch_end", "on_test_end", "on_predict_end"):
        _fan[_name] = _fan_out(_name)
    del _name, _fan_out

    def _batch_begin(self, mode, batch, logs):
        n = self.steps_per_execution
        if n > 1:
            if batch % n:
                return
            self._open_groups[mode] = (batch, None)
        self._fan[f"on_{mode}_batch_begin"](self, batch, logs)

    def _batch_end(self, mode, batch, logs):
        n = self.steps_per_execution
        if n > 1:
            group = self._open_groups.get(mode)
            if group is None:
                return
            if (batch + 1 - group[0]) % n:
                self._open_groups[mode] = (group[0], logs)
                return
            del self._open_groups[mode]
        self._fan[f"on_{mode}_batch_end"](self, batch, logs)

    def _close_group(self, mode):
        """The end hook of a last group that ran fewer than steps_per_execution steps, with the
        index Keras gives it (its first step + n - 1) and its last step's logs."""
        group = self._open_groups.pop(mode, None)
        if group is not None:
            self._fan[f"on_{mode}_batch_end"](self, group[0] + self.steps_per_execution - 1, group[1])

    def _grouped(mode, end):
        def hook(self, batch, logs=None):
            (self._batch_end if end else self._batch_begin)(mode, batch, logs)
        hook.__name__ = f"on_{mode}_batch_{'end' if end else 'begin'}"
        return hook

    for _mode in ("train", "test", "predict"):
        locals()[f"on_{_mode}_batch_begin"] = _grouped(_mode, False)
        locals()[f"on_{_mode}_batch_end"] = _grouped(_mode, True)
    del _mode, _grouped

    def on_epoch_end(self, epoch, logs=None):
        self._close_group("train")
        self._fan["on_epoch_end"](self, epoch, logs)

    def on_test_end(self, logs=None):
        self._close_group("test")
        self._fan["on_test_end"](self, logs)

    def on_predict_end(self, logs=None):
        self._close_group("predict")
        self._fan["on_predict_end"](self, logs)


class History(Callback):
    """Callback that records the metric values of every epoch in `history`.

    `fit` adds one automatically and returns it: `history.history` maps each metric name to its
    list of per-epoch values, and `history.epoch` lists the epoch indices. It is also stored as
    `model.history`.

    The constructor takes no arguments.
    """

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)
        if self.model is not None:
            self.model.history = self


class ProgbarLogger(Callback):
    """Prints Keras's `Epoch i/n` headers and per-epoch progress lines."""

    def __init__(self, count_mode="steps"):
        super().__init__()
        self.verbose = 1
        self._bar = None
        self.epochs = 1
        self._seen = 0

    def set_params(self, params):
        super().set_params(params)
        # In data-parallel training only rank 0 prints (every rank sees the same global logs).
        self.verbose = params.get("verbose", 1) if is_chief() else 0
        self.epochs = params.get("epochs", 1)
        self.steps = params.get("steps")

    def on_epoch_begin(self, epoch, logs=None):
        self._seen = 0
        if self.verbose:
            print_msg(f"Epoch {epoch + 1}/{self.epochs}")
            self._bar = Progbar(self.steps, verbose=self.verbose, stateless_metrics=())

    def on_train_batch_end(self, batch, logs=None):
        self._seen = batch + 1
        if self._bar is not None:
            self._bar.update(batch + 1, list((logs or {}).items()), finalize=False)

    def on_test_batch_end(self, batch, logs=None):
        self._seen_test = batch + 1

    def on_epoch_end(self, epoch, logs=None):
        if self._bar is not None:
            # A source of unknown length (a generator) ends the epoch where it ended.
            self._bar.update(self.steps or self._seen, list((logs or {}).items()), finalize=True)
            self._bar = None

    def on_test_begin(self, logs=None):
        if self.verbose and self.params.get("mode") == "evaluate":
            self._bar = Progbar(self.params.get("steps"), verbose=self.verbose, stateless_metrics=())

    def on_test_end(self, logs=None):
        if self._bar is not None and self.params.get("mode") == "evaluate":
            self._bar.update(self.params.get("steps") or getattr(self, "_seen_test", 0),
                             list((logs or {}).items()), finalize=True)
            self._bar = None

    def on_predict_begin(self, logs=None):
        if self.verbose:
            self._bar = Progbar(self.params.get("steps"), verbose=self.verbose, stateless_metrics=())

    def on_predict_end(self, logs=None):
        if self._bar is not None:
            self._bar.update(self.params.get("steps") or 0, [], finalize=True)
            self._bar = None


_MAXIMISED = ("acc", "auc", "precision", "recall", "f1", "iou")


def _monitor_mode(monitor, mode):
    """'min' or 'max'.  In "auto", losses and errors go down; accuracy-like metrics go up."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    name = monitor.removeprefix("val_")
    return "max" if any(key in name for key in _MAXIMISED) else "min"


class _MonitorCallback(Callback):
    """A callback that watches one logged value and keeps the best one seen (Keras's MonitorCallback)."""

    def __init__(self, monitor, mode="auto", min_delta=0.0):
        super().__init__()
        self.monitor = monitor
        self.mode = _monitor_mode(monitor, mode)
        self.min_delta = abs(min_delta)
        self.best = None

    def _is_improvement(self, value, reference):
        if reference is None:
            return True
        if self.mode == "max":
            return value - self.min_delta > reference
        return value + self.min_delta < reference

    def _monitored(self, logs, what):
        value = (logs or {}).get(self.monitor)
        if value is None:
            warn_user(f"{what} is conditioned on metric `{self.monitor}`, which is not available. "
                      f"Available metrics are: {','.join(logs or {})}")
        return value


class EarlyStopping(_MonitorCallback):
    """Stop when `monitor` has not improved for `patience` epochs.  With restore_best_weights=True the
    model ends training with the weights of its best epoch (also when training ran to the end)."""

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, mode, min_delta)
        self.patience, self.verbose, self.baseline = patience, verbose, baseline
        self.restore_best_weights, self.start_from_epoch = restore_best_weights, start_from_epoch
        self.wait = self.stopped_epoch = self.best_epoch = 0
        self.best_weights = None

    def on_train_begin(self, logs=None):
        self.wait = self.stopped_epoch = self.best_epoch = 0
        self.best = None
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        current = self._monitored(logs, "Early stopping")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = self.model.get_weights(), epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            # Waiting restarts only once the value also beats the baseline.
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print_msg(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print_msg(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class TerminateOnNaN(Callback):
    """Stop training when the loss becomes NaN or infinite (raise_error=True raises instead)."""

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = raise_error

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and (np.isnan(loss) or np.isinf(loss)):
            if self.raise_error:
                raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. Loss value: {loss}. "
                                   "Terminating training immediately.")
            print_msg(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class LambdaCallback(Callback):
    """A callback from plain functions: on_epoch_end=lambda epoch, logs: ..., on_train_begin=lambda logs: ..."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        super().__init__()
        hooks = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end, on_train_begin=on_train_begin,
                     on_train_end=on_train_end, on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end, **kwargs)
        unknown = sorted(name for name in hooks if not hasattr(Callback, name))
        if unknown:
            raise ValueError(f"LambdaCallback: unknown hook(s) {unknown}")
        for name, fn in hooks.items():
            if fn is not None:
                setattr(self, name, fn)


def _log_learning_rate(model, logs):
    if logs is not None and getattr(model, "optimizer", None) is not None:
        logs["learning_rate"] = float(np.asarray(model.optimizer.learning_rate))


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch to schedule(epoch, lr) (or schedule(epoch))."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        lr = float(np.asarray(self.model.optimizer.learning_rate))
        try:
            new = self.schedule(epoch, lr)
        except TypeError:  # the one-argument form Keras also accepts
            new = self.schedule(epoch)
        if not isinstance(new, (float, np.float32, np.float64)):
            raise ValueError(f"The output of the `schedule` function should be a float. Got: {new}")
        self.model.optimizer.learning_rate = float(new)
        if self.verbose > 0:
            print_msg(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {new}.")

    def on_epoch_end(self, epoch, logs=None):
        _log_learning_rate(self.model, logs)


class ModelCheckpoint(_MonitorCallback):
    """Save the model (or its weights) after each epoch; `filepath` may hold {epoch} and log values,
    e.g. "ckpt-{epoch:02d}-{val_loss:.2f}.keras".  Each save is atomic."""

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__(monitor, mode)
        filepath = os.fspath(filepath)
        if save_weights_only and not filepath.endswith(".weights.h5"):
            raise ValueError(f"ModelCheckpoint: with save_weights_only=True the file name must end in "
                             f".weights.h5, got {filepath!r}")
        if not save_weights_only and not filepath.endswith(".keras"):
            raise ValueError(f"ModelCheckpoint: the file name must end in .keras, got {filepath!r}")
        if save_freq != "epoch":
            raise ValueError("ModelCheckpoint: engine saves once per epoch (save_freq='epoch')")
        self.filepath, self.verbose = filepath, verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        self.best = initial_value_threshold

    def _file_path(self, epoch, logs):
        try:
            return self.filepath.format(epoch=epoch + 1, **logs)
        except KeyError as e:
            raise KeyError(f'Failed to format this callback filepath: "{self.filepath}". Reason: {e} is not '
                           f"in the logs ({', '.join(logs)})") from None

    def _should_save(self, epoch, logs, path):
        if not self.save_best_only:
            if self.verbose > 0:
                print_msg(f"\nEpoch {epoch + 1}: saving model to {path}")
            return True
        current = logs.get(self.monitor)
        if current is None:
            warn_user(f"Can save best model only with {self.monitor} available.")
            return True
        best = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                print_msg(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} to {current:.5f}, "
                      f"saving model to {path}")
            self.best = current
            return True
        if self.verbose > 0:
            print_msg(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best}")
        return False

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        path = self._file_path(epoch, logs)
        if not self._should_save(epoch, logs, path):
            return
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(path, overwrite=True)
        else:
            self.model.save(path, overwrite=True)


class ReduceLROnPlateau(_MonitorCallback):
    """Multiply the learning rate by `factor` when `monitor` has not improved for `patience` epochs."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0, **kwargs):
        super().__init__(monitor, mode, min_delta)
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be < 1, got {factor}")
        if kwargs:
            raise TypeError(f"ReduceLROnPlateau: unexpected keyword argument(s) {sorted(kwargs)}")
        self.factor, self.patience, self.verbose = factor, patience, verbose
        self.cooldown, self.min_lr = cooldown, min_lr
        self.wait = self.cooldown_counter = 0

    def on_train_begin(self, logs=None):
        self.best = None
        self.wait = self.cooldown_counter = 0

    def on_epoch_end(self, epoch, logs=None):
        _log_learning_rate(self.model, logs)
        current = self._monitored(logs, "Learning rate reduction")
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience and self._reduce(epoch):
                self.cooldown_counter, self.wait = self.cooldown, 0

    def _reduce(self, epoch):
        old = float(np.asarray(self.model.optimizer.learning_rate))
        if old <= np.float32(self.min_lr):
            return False
        new = max(old * self.factor, self.min_lr)
        self.model.optimizer.learning_rate = new
        if self.verbose > 0:
            print_msg(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
        return True


class CSVLogger(Callback):
    """One row per epoch: the epoch, then the logged values in sorted order (val_ columns hold NA in
    epochs without validation, as in Keras).  append=True continues an existing file."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.sep, self.append = os.fspath(filename), separator, append
        self.keys = self._file = self._writer = None

    def on_train_begin(self, logs=None):
        self._writes = is_chief()        # in data-parallel training only rank 0 writes the file
        if not self._writes:
            return
        write_header = True
        if self.append and os.path.exists(self.filename):
            with open(self.filename) as f:
                write_header = not f.readline()
        if self._file is not None and not self._file.closed:
            self._file.close()
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._write_header = write_header
        self.keys = self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        if not getattr(self, "_writes", True):
            return
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            if self.keys and not any(k.startswith("val_") for k in self.keys):
                self.keys += [f"val_{k}" for k in self.keys]
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch"] + self.keys, delimiter=self.sep)
            if self._write_header:
                self._writer.writeheader()
        row = {"epoch": epoch}
        row.update((k, _csv_value(logs.get(k, "NA"))) for k in self.keys)
        self._writer.writerow(row)
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None and not self._file.closed:
            self._file.close()
        self._writer = None


class BackupAndRestore(Callback):
    """Back up the training state (weights, optimizer state, epoch) and restore it when an
    interrupted `fit` is run again, which then continues from the last backup.

    The backup is written atomically at the end of each epoch (or every `save_freq` batches):
    `latest.weights.h5` (weights and optimizer state) and `training_metadata.json` (the epoch to
    resume at). In data-parallel training rank 0 writes and reads it and gives the state to the
    other ranks, so resuming works with any number of ranks and needs no shared folder.

    Args:
        backup_dir: the folder of the backup (used by this callback only).
        save_freq: "epoch", or back up every this many batches.
        double_checkpoint: keep the previous backup too (".bkp" files), used when the latest one
            cannot be read.
        delete_checkpoint: remove the backup when `fit` completes (default True).
    """

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint=False, delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError("BackupAndRestore: backup_dir is empty; pass the folder to keep the backup in")
        if save_freq != "epoch" and (not isinstance(save_freq, int) or isinstance(save_freq, bool)
                                     or save_freq <= 0):
            raise ValueError(f"BackupAndRestore: save_freq must be 'epoch' or a positive integer, got {save_freq!r}")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq, self.double_checkpoint = save_freq, double_checkpoint
        self.delete_checkpoint = delete_checkpoint
        self._weights_path = os.path.join(self.backup_dir, "latest.weights.h5")
        self._metadata_path = os.path.join(self.backup_dir, "training_metadata.json")
        self._epoch = self._last_batch = self._since_save = 0

    def on_train_begin(self, logs=None):
        from engine.distribution.training import share_training_state
        epoch = None
        if is_chief():
            epoch = self._restore("")
            if epoch is None and self.double_checkpoint:
                epoch = self._restore(".bkp")
        epoch = share_training_state(self.model, epoch)
        if epoch is not None:
            self.model._initial_epoch = epoch
            self._epoch = epoch

    def _restore(self, suffix):
        """Load the backup (files ending in `suffix`); the epoch to resume at, or None."""
        from engine.saving.weights import load_weights_from_h5
        weights, metadata = self._weights_path + suffix, self._metadata_path + suffix
        if not os.path.exists(weights):
            return None
        try:
            with open(metadata) as f:
                epoch = int(json.load(f)["epoch"])
            load_weights_from_h5(self.model, weights, include_optimizer=True)
        except (OSError, ValueError, KeyError) as e:
            if suffix or not self.double_checkpoint:
                raise ValueError(f"BackupAndRestore: the backup in {self.backup_dir} cannot be restored ({e}); "
                                 "remove the folder to start afresh") from None
            return None
        return epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._since_save += batch + 1 if batch <= self._last_batch else batch - self._last_batch
        self._last_batch = batch
        if self._since_save >= self.save_freq:
            self._since_save = 0
            self._save(batch)

    def on_epoch_end(self, epoch, logs=None):
        self._epoch, self._last_batch = epoch + 1, 0
        if self.save_freq == "epoch":
            self._save(0)

    def _save(self, batch):
        from engine.distribution.training import wait_for_chief
        if is_chief():
            self._write(batch)
        wait_for_chief()    # no rank goes on (and fails) while the backup is half written

    def _write(self, batch):
        from engine.saving.archive import atomic_write
        from engine.saving.weights import save_weights_to_h5
        os.makedirs(self.backup_dir, exist_ok=True)
        if self.double_checkpoint:
            for path in (self._weights_path, self._metadata_path):
                if os.path.exists(path):
                    shutil.copyfile(path, path + ".bkp")
        atomic_write(self._weights_path, lambda tmp: save_weights_to_h5(self.model, tmp, include_optimizer=True))
        metadata = json.dumps({"epoch": self._epoch, "batch": batch})

        def write_metadata(tmp):
            with open(tmp, "w") as f:
                f.write(metadata)
        atomic_write(self._metadata_path, write_metadata)

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and is_chief() and os.path.isdir(self.backup_dir):
            shutil.rmtree(self.backup_dir)


class TensorBoard(Callback):
    """Logs training to TensorBoard event files, as Keras's callback, without TensorFlow.

    Written under `log_dir`: `train/` gets `epoch_<metric>` scalars each epoch (with
    `epoch_learning_rate`, and `epoch_steps_per_second` if asked), `batch_<metric>` scalars every
    `update_freq` batches, weight histograms (and images) every `histogram_freq` epochs and the
    model's JSON config (`write_graph`); `validation/` gets the `val_` metrics as `epoch_<metric>`
    and `evaluation_<metric>_vs_iterations` after each validation or `evaluate`. View them with
    `tensorboard --logdir <log_dir>` (TensorBoard installs on its own: `pip install tensorboard`).
    In data-parallel training only rank 0 writes.

    Args:
        log_dir: the directory the event files go under (default "logs").
        histogram_freq: every how many epochs weight histograms are written (0: never).
        write_graph: write the model's config for TensorBoard's graph view (functional and
            Sequential models; engine has no traced graph to add).
        write_images: with `histogram_freq`, also write each 1-D to 3-D weight as an image.
        write_steps_per_second: also log training steps per second (per epoch, and per batch
            when `update_freq` is not "epoch").
        update_freq: "epoch" (default), "batch" (every batch) or an integer number of batches:
            how often `batch_<metric>` scalars are written.
        profile_batch: must be 0: engine has no TensorBoard profiler (as Keras on its torch and
            numpy backends, a batch to profile is an error).
        embeddings_freq: every how many epochs the weights are saved for the embedding
            projector (`train/keras_embedding.ckpt-<epoch>.weights.h5`, needs h5py), with a
            `projector_config.pbtxt` naming each `Embedding` layer (0: never).
        embeddings_metadata: a metadata file for every Embedding layer, or a dict from
            Embedding layer names to metadata files.
    """

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=True, write_images=False,
                 write_steps_per_second=False, update_freq="epoch", profile_batch=0, embeddings_freq=0,
                 embeddings_metadata=None):
        super().__init__()
        if profile_batch:
            raise ValueError("TensorBoard: profiling is not available with engine (it has no TensorBoard "
                             f"profiler). Received: profile_batch={profile_batch!r} (must be 0)")
        if update_freq != "epoch" and update_freq != "batch" and \
                not (isinstance(update_freq, int) and not isinstance(update_freq, bool) and update_freq > 0):
            raise ValueError(f"TensorBoard: update_freq must be 'epoch', 'batch' or a positive integer, "
                             f"got {update_freq!r}")
        self.log_dir = str(log_dir)
        self.histogram_freq = histogram_freq
        self.write_graph = write_graph
        self.write_images = write_images
        self.write_steps_per_second = write_steps_per_second
        self.update_freq = 1 if update_freq == "batch" else update_freq
        self.embeddings_freq = embeddings_freq
        self.embeddings_metadata = embeddings_metadata
        self._writers = {}
        self._global_train_batch = 0
        self._batch_start_time = 0.0

    # -- writers (files are made on first use, as Keras's lazily created writers) --------------------
    def _writer(self, kind):
        if kind not in self._writers:
            from engine.utils.event_file import EventFileWriter
            self._writers[kind] = EventFileWriter(os.path.join(self.log_dir, kind))
        return self._writers[kind]

    def _scalars(self, kind, named_values, step):
        if not is_chief() or not named_values:
            return
        from engine.utils.event_file import scalar_value
        self._writer(kind).write([scalar_value(name, float(np.asarray(v))) for name, v in named_values], step)

    def _close_writers(self):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    # -- set-up ---------------------------------------------------------------------------------------
    def set_model(self, model):
        super().set_model(model)
        self._close_writers()
        if not is_chief():
            return
        if self.write_graph and type(model).__name__ in ("Functional", "Sequential"):
            self._write_model_config()
        if self.embeddings_freq:
            self._write_projector_config()

    def _write_model_config(self):
        from engine.utils.event_file import text_blob_value
        try:
            config = self.model.to_json()
        except Exception as e:      # a model whose layers cannot be serialized: no graph, as Keras
            warn_user(f"TensorBoard: the model's config could not be written ({e})")
            return
        self._writer("train").write([text_blob_value("keras", config, "graph_keras_model", b"1")], step=0)

    def _write_projector_config(self):
        from engine.layers import Embedding
        metadata = self.embeddings_metadata
        unclaimed = dict(metadata) if isinstance(metadata, dict) else {}
        entries = []
        for layer in self.model.layers:
            if isinstance(layer, Embedding):
                # The tensor name Keras writes (TensorFlow's checkpoint naming of the first weight).
                entry = '  tensor_name: "layer_with_weights-0/embeddings/.ATTRIBUTES/VARIABLE_VALUE"\n'
                path = metadata if isinstance(metadata, str) else unclaimed.pop(layer.name, None)
                if path is not None:
                    entry += f"  metadata_path: {json.dumps(str(path))}\n"
                entries.append("embeddings {\n" + entry + "}\n")
        if unclaimed:
            raise ValueError("Unrecognized `Embedding` layer names passed to `TensorBoard`'s "
                             f"`embeddings_metadata` argument: {sorted(unclaimed)}")
        os.makedirs(self.log_dir, exist_ok=True)
        with open(os.path.join(self.log_dir, "projector_config.pbtxt"), "w") as f:
            f.write("".join(entries))

    # -- training -------------------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._global_train_batch = 0
        self._previous_epoch_iterations = 0

    def on_train_end(self, logs=None):
        self._close_writers()

    def on_train_batch_begin(self, batch, logs=None):
        self._global_train_batch += 1
        if self.write_steps_per_second:
            self._batch_start_time = time.time()

    def on_train_batch_end(self, batch, logs=None):
        if self.update_freq == "epoch" or self._global_train_batch % self.update_freq:
            return
        values = []
        if self.write_steps_per_second:
            values.append(("batch_steps_per_second", 1.0 / max(time.time() - self._batch_start_time, 1e-9)))
        if isinstance(logs, dict):
            values += [(f"batch_{name}", value) for name, value in logs.items()]
        self._scalars("train", values, self._global_train_batch)

    def on_epoch_begin(self, epoch, logs=None):
        if self.write_steps_per_second:
            self._previous_epoch_iterations = self._iterations()
            self._epoch_start_time = time.time()

    def on_epoch_end(self, epoch, logs=None):
        self._log_epoch_metrics(epoch, logs)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._log_weights(epoch)
        if self.embeddings_freq and epoch % self.embeddings_freq == 0 and is_chief():
            self.model.save_weights(os.path.join(self.log_dir, "train", f"keras_embedding.ckpt-{epoch}.weights.h5"))

    def _iterations(self):
        optimizer = getattr(self.model, "optimizer", None)
        return int(np.asarray(optimizer.iterations)) if optimizer is not None else 0

    def _learning_rates(self):
        optimizer = getattr(self.model, "optimizer", None)
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)    # through LossScaleOptimizer
        if optimizer is None:
            return []
        if hasattr(optimizer, "optimizers"):
            return [(f"learning_rate_{opt.name}", float(np.asarray(opt.learning_rate))) for opt in optimizer.optimizers]
        return [("learning_rate", float(np.asarray(optimizer.learning_rate)))]

    def _log_epoch_metrics(self, epoch, logs):
        if not logs:
            return
        train = [(k, v) for k, v in logs.items() if not k.startswith("val_")] + self._learning_rates()
        if self.write_steps_per_second:
            train.append(("steps_per_second", (self._iterations() - self._previous_epoch_iterations)
                          / max(time.time() - self._epoch_start_time, 1e-9)))
        self._scalars("train", [(f"epoch_{k}", v) for k, v in train], epoch)
        self._scalars("validation", [(f"epoch_{k[4:]}", v) for k, v in logs.items() if k.startswith("val_")], epoch)

    def _log_weights(self, epoch):
        if not is_chief():
            return
        from engine.utils.event_file import histogram_value, image_value
        values = []
        for layer in self.model.layers:
            for weight in layer.weights:
                name = weight.path.replace(":", "_")
                array = np.asarray(weight)
                values.append(histogram_value(f"{name}/histogram", array))
                if self.write_images:
                    image = _weight_as_image(array)
                    if image is not None:
                        values.append(image_value(f"{name}/image", image))
        writer = self._writer("train")
        writer.write(values, epoch)
        writer.flush()

    # -- evaluation -----------------------------------------------------------------------------------
    def on_test_end(self, logs=None):
        if getattr(self.model, "optimizer", None) is not None and logs:
            self._scalars("validation", [(f"evaluation_{k}_vs_iterations", v) for k, v in logs.items()],
                          self._iterations())
        if self.params.get("mode") == "evaluate":
            self._close_writers()       # a lone evaluate() leaves its file complete


class RemoteMonitor(Callback):
    """Posts each epoch's logs to a server (HTTP POST, with the standard library's urllib).

    The body is form-encoded, `field=<the logs and "epoch" as JSON>`, or with `send_as_json`
    the JSON itself. A server that cannot be reached gives a warning, not an error. In
    data-parallel training only rank 0 posts.

    Args:
        root: the server's root URL (default "http://localhost:9000").
        path: the path posted to (default "/publish/epoch/end/").
        field: the form field holding the JSON (default "data").
        headers: optional dict of extra HTTP headers.
        send_as_json: post the JSON as the body (`Content-Type: application/json`).
    """

    def __init__(self, root="http://localhost:9000", path="/publish/epoch/end/", field="data", headers=None,
                 send_as_json=False):
        super().__init__()
        self.root, self.path, self.field = root, path, field
        self.headers, self.send_as_json = headers, send_as_json

    def on_epoch_end(self, epoch, logs=None):
        if not is_chief():
            return
        import urllib.error
        import urllib.parse
        import urllib.request
        send = {"epoch": epoch}
        for k, v in (logs or {}).items():
            send[k] = v.item() if isinstance(v, (np.ndarray, np.generic)) else v
        headers = dict(self.headers or {})
        if self.send_as_json:
            body = json.dumps(send).encode("utf-8")
            headers.setdefault("Content-Type", "application/json")
        else:
            body = urllib.parse.urlencode({self.field: json.dumps(send)}).encode("ascii")
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        request = urllib.request.Request(self.root + self.path, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10):
                pass
        except (urllib.error.URLError, OSError, ValueError):
            warn_user(f"Could not reach RemoteMonitor root server at {self.root}")


class SwapEMAWeights(Callback):
    """Evaluates (and predicts) with the optimizer's moving averages of the weights.

    Needs an optimizer made with `use_ema=True`. Before validation, `evaluate` or `predict`, each
    weight is exchanged with its average, and exchanged back afterwards. With `swap_on_epoch`,
    the averages are also in the model between epochs, so callbacks such as `ModelCheckpoint`
    save them.

    Args:
        swap_on_epoch: also keep the averages in the model from each epoch's end to the next
            epoch's start (default False).
    """

    def __init__(self, swap_on_epoch=False):
        super().__init__()
        self.swap_on_epoch = swap_on_epoch
        self._averages_in_model = False

    def _optimizers(self):
        optimizer = getattr(self.model.optimizer, "inner_optimizer", self.model.optimizer)
        inner = getattr(optimizer, "optimizers", None)
        chosen = [o for o in inner if getattr(o, "use_ema", False)] if inner is not None else [optimizer]
        if not chosen or not all(getattr(o, "use_ema", False) for o in chosen):
            raise ValueError("SwapEMAWeights must be used with an optimizer made with use_ema=True (for a "
                             "MultiOptimizer, at least one inner optimizer)")
        return chosen

    def _swap(self, into_model):
        if self._averages_in_model != into_model:
            for optimizer in self._optimizers():
                optimizer.swap_moving_averages()
            self._averages_in_model = into_model

    def on_epoch_begin(self, epoch, logs=None):
        if self.swap_on_epoch:
            self._swap(False)

    def on_epoch_end(self, epoch, logs=None):
        if self.swap_on_epoch:
            self._swap(True)
            if epoch == self.params.get("epochs", 0) - 1:
                # fit ends by copying the averages into the weights: the averages are in the model
                # now, so the slots take them back first (as Keras's callback does).
                for optimizer in self._optimizers():
                    optimizer.copy_variables_to_moving_averages()

    def on_test_begin(self, logs=None):
        self._swap(True)

    def on_test_end(self, logs=None):
        self._swap(False)

    def on_predict_begin(self, logs=None):
        self._swap(True)

    def on_predict_end(self, logs=None):
        # (Keras 3.15's on_predict_end tests the flag the wrong way round and leaves the averages
        # in the model after predict; engine swaps back, as on_test_end does.)
        self._swap(False)


def _weight_as_image(weight):
    """A weight as Keras shows it: a bias as one row, a kernel as (smaller side, larger side), a
    channels-last 3-D kernel as one image per output channel; None for other shapes."""
    w = np.squeeze(weight)
    if w.ndim == 1:
        w = w.reshape(1, w.shape[0], 1, 1)
    elif w.ndim == 2:
        if w.shape[0] > w.shape[1]:
            w = w.T
        w = w.reshape(1, w.shape[0], w.shape[1], 1)
    elif w.ndim == 3:
        w = np.transpose(w, (2, 0, 1))
        w = w.reshape(w.shape[0], w.shape[1], w.shape[2], 1)
    return w if w.ndim == 4 and w.shape[-1] in (1, 3, 4) else None


def _csv_value(value):
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray) and value.ndim == 0 or isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple, np.ndarray)):
        return f'"[{", ".join(map(str, value))}]"'
    return value
