"""Callbacks on a tiny model: checkpoints, learning-rate changes, CSV logs, early stopping, NaN, Ctrl-C."""
import csv
import os

import numpy as np
import pytest

import engine
from engine import Input, layers, Model, callbacks

pytest.importorskip("h5py")


def tiny(lr=0.01):
    inp = Input(shape=(3,))
    model = Model(inp, layers.Dense(1)(inp))
    model.compile(engine.optimizers.SGD(lr), "mse")
    return model


X = np.random.default_rng(0).random((32, 3))
Y = X @ np.array([[1.0], [-2.0], [0.5]])


def test_model_checkpoint_templates_best_only_and_weights_only(tmp_path):
    model = tiny()
    pattern = str(tmp_path / "ckpt-{epoch:02d}-{loss:.3f}.keras")
    model.fit(X, Y, epochs=3, verbose=0, callbacks=[callbacks.ModelCheckpoint(pattern, monitor="loss")])
    saved = sorted(os.listdir(tmp_path))
    assert len(saved) == 3 and saved[0].startswith("ckpt-01-")
    best = str(tmp_path / "best.weights.h5")
    cb = callbacks.ModelCheckpoint(best, monitor="loss", save_best_only=True, save_weights_only=True)
    model.fit(X, Y, epochs=3, verbose=0, callbacks=[cb])
    twin = tiny()
    twin.load_weights(best)
    assert cb.best == pytest.approx(min(model.history.history["loss"]))
    with pytest.raises(ValueError, match=".weights.h5"):
        callbacks.ModelCheckpoint(str(tmp_path / "x.keras"), save_weights_only=True)


def test_reduce_lr_on_plateau_and_scheduler():
    model = tiny(lr=0.1)
    # A huge min_delta means no epoch counts as an improvement after the first.
    cb = callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=1e9)
    model.fit(X, Y, epochs=4, verbose=0, callbacks=[cb])
    assert float(model.optimizer.learning_rate) == pytest.approx(0.1 * 0.5 ** 3)
    sched = callbacks.LearningRateScheduler(lambda epoch, lr: 0.01 * (epoch + 1))
    model.fit(X, Y, epochs=2, verbose=0, callbacks=[sched])
    assert float(model.optimizer.learning_rate) == pytest.approx(0.02)


def test_csv_logger(tmp_path):
    path = tmp_path / "log.csv"
    tiny().fit(X, Y, epochs=3, validation_split=0.25, verbose=0, callbacks=[callbacks.CSVLogger(path)])
    rows = list(csv.reader(open(path)))
    assert rows[0] == ["epoch", "loss", "val_loss"] and len(rows) == 4


def test_early_stopping_restores_best_weights():
    model = tiny(lr=0.05)
    losses = []

    class Spoil(callbacks.Callback):
        """From epoch 3 on, make the monitored value worse so training should stop."""

        def on_epoch_end(self, epoch, logs=None):
            losses.append(model.get_weights())
            if epoch >= 2:
                logs["loss"] = 1e6

    stop = callbacks.EarlyStopping(monitor="loss", patience=2, restore_best_weights=True)
    history = model.fit(X, Y, epochs=20, verbose=0, callbacks=[Spoil(), stop])
    assert len(history.history["loss"]) == 4  # epochs 2 and 3 worse: patience 2 stops after epoch 3
    for a, b in zip(model.get_weights(), losses[1]):  # the best epoch
        np.testing.assert_allclose(a, b)


def test_terminate_on_nan_and_lambda_callback():
    model = tiny()
    seen = []
    x_bad = X.copy()
    x_bad[:] = np.nan
    history = model.fit(x_bad, Y, epochs=5, verbose=0, callbacks=[
        callbacks.TerminateOnNaN(), callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(e))])
    assert len(history.history["loss"]) == 1 and seen == [0]


def test_ctrl_c_leaves_a_usable_model_and_history():
    model = tiny()

    class Interrupt(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    history = model.fit(X, Y, epochs=10, verbose=0, callbacks=[Interrupt()])
    assert len(history.history["loss"]) == 1  # the interrupted epoch's end was not recorded
    assert model.predict(X, verbose=0).shape == (32, 1)


def test_plot_model_writes_dot(tmp_path):
    a, b = Input(shape=(3,), name="left"), Input(shape=(3,), name="right")
    model = Model([a, b], layers.Dense(1, name="head")(layers.concatenate([a, b], name="join")))
    text = engine.utils.plot_model(model, str(tmp_path / "m.dot"), show_shapes=True)
    assert open(tmp_path / "m.dot").read() == text
    assert text.count("->") == 3 and "head|Dense" in text and "join|Concatenate" in text
