"""The rest of the training API: batches, validation, callbacks, History, utilities, threads."""
import numpy as np
import pytest

import engine
from engine import Input, layers, Model, callbacks


def small_model(loss="mse", metrics=None, optimizer="adam"):
    inp = Input(shape=(4,))
    out = layers.Dense(3, activation="softmax" if "crossentropy" in loss else None)(inp)
    model = Model(inp, out)
    model.compile(optimizer, loss, metrics=metrics)
    return model


def test_on_batch_methods():
    rng = np.random.default_rng(0)
    model = small_model("categorical_crossentropy", ["acc"])
    x = rng.random((8, 4))
    y = engine.utils.to_categorical(np.arange(8) % 3, 3)
    loss, acc = model.train_on_batch(x, y)
    assert np.isfinite(loss) and 0 <= acc <= 1
    logs = model.test_on_batch(x, y, return_dict=True)
    assert set(logs) == {"loss", "acc"}
    np.testing.assert_allclose(model.predict_on_batch(x), model.predict(x, verbose=0), rtol=1e-6)
    assert model.optimizer.iterations.numpy() == 1


def test_validation_split_takes_the_last_samples_and_logs_val_metrics():
    rng = np.random.default_rng(0)
    model = small_model(metrics=["mae"])
    x, y = rng.random((100, 4)), rng.random((100, 3))
    seen = []

    class Recorder(callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(batch)

    history = model.fit(x, y, validation_split=0.2, batch_size=16, epochs=2, verbose=0, callbacks=[Recorder()])
    assert set(history.history) == {"loss", "mae", "val_loss", "val_mae"}
    assert len(seen) == 2 * 5  # 80 training samples in batches of 16
    val = model.evaluate(x[80:], y[80:], verbose=0, return_dict=True)
    np.testing.assert_allclose(history.history["val_loss"][-1], val["loss"], rtol=1e-5)
    history = model.fit(x, y, validation_data=(x[:10], y[:10]), epochs=1, verbose=0)
    assert "val_loss" in history.history


def test_callback_hooks_order_and_early_stopping():
    model = small_model()
    events = []

    class Recorder(callbacks.Callback):
        def on_train_begin(self, logs=None):
            events.append("train_begin")

        def on_epoch_begin(self, epoch, logs=None):
            events.append(f"epoch_begin {epoch}")

        def on_epoch_end(self, epoch, logs=None):
            events.append(f"epoch_end {epoch} {sorted(logs)}")

        def on_train_end(self, logs=None):
            events.append("train_end")

    rng = np.random.default_rng(0)
    x, y = rng.random((20, 4)), rng.random((20, 3))
    model.fit(x, y, epochs=2, batch_size=10, verbose=0, callbacks=[Recorder()])
    assert events == ["train_begin", "epoch_begin 0", "epoch_end 0 ['loss']", "epoch_begin 1",
                      "epoch_end 1 ['loss']", "train_end"]
    stopper = callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=1e9)
    history = model.fit(x, y, epochs=10, verbose=0, callbacks=[stopper])
    assert len(history.history["loss"]) == 2


def test_progress_output_verbose_modes(capsys):
    rng = np.random.default_rng(0)
    model = small_model()
    x, y = rng.random((20, 4)), rng.random((20, 3))
    model.fit(x, y, epochs=2, batch_size=10, verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "2/2" in out and "loss:" in out and "step" in out
    model.fit(x, y, epochs=1, batch_size=10, verbose=2)
    out = capsys.readouterr().out
    assert "2/2 - " in out and "loss:" in out
    model.fit(x, y, epochs=1, verbose=0)
    assert capsys.readouterr().out == ""


def test_initial_epoch_and_shuffle_false():
    model = small_model()
    x = np.arange(80, dtype=np.float64).reshape(20, 4)     # column 0 names the sample: 0, 4, ..., 76
    y = np.random.default_rng(0).random((20, 3))
    seen = []
    original = model._train_step

    def record(xs, ys, sw=None, tvars=None):
        seen.append(xs[0][:, 0].copy())
        return original(xs, ys, sw, tvars)

    model._train_step = record
    history = model.fit(x, y, epochs=3, initial_epoch=1, shuffle=False, batch_size=8, verbose=0)
    assert history.epoch == [1, 2]
    # Two epochs of batches 0-7, 8-15, 16-19, each in the order of the data.
    in_order = [x[0:8, 0], x[8:16, 0], x[16:20, 0]]
    assert len(seen) == 6
    for got, want in zip(seen, in_order * 2):
        np.testing.assert_array_equal(got, want)


def test_compile_errors_are_clear():
    inp = Input(shape=(4,))
    model = Model(inp, layers.Dense(2)(inp))
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(np.zeros((2, 4)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="Unknown loss"):
        model.compile("adam", "hinge_of_doom")
    with pytest.raises(ValueError, match="Unknown optimizer"):
        model.compile("adamax_pro", "mse")


def test_to_categorical_and_threads():
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(engine.utils.to_categorical([0, 2, 1]), np.eye(3)[[0, 2, 1]])
    assert engine.utils.to_categorical([[1], [0]], 4).shape == (2, 4)
    with pytest.raises(ValueError):
        engine.utils.to_categorical([0, 5], 3)
    before = engine.config.get_num_threads()
    try:
        engine.config.set_num_threads(1)
        assert engine.config.get_num_threads() == 1
        model = small_model()
        model.fit(rng.random((8, 4)), rng.random((8, 3)), verbose=0)
    finally:
        engine.config.set_num_threads(before)
    with pytest.raises(ValueError):
        engine.config.set_num_threads(0)


def test_subclassed_model_trains():
    class TwoLayer(Model):
        def __init__(self):
            super().__init__()
            self.hidden = layers.Dense(8, activation="relu")
            self.out = layers.Dense(1)

        def call(self, inputs):
            return self.out(self.hidden(inputs))

    engine.utils.set_random_seed(0)     # the initial weights too: the loss must fall
    model = TwoLayer()
    model.compile("adam", "mse")
    rng = np.random.default_rng(0)
    x = rng.random((32, 3))
    y = x.sum(axis=1, keepdims=True)
    history = model.fit(x, y, epochs=5, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert len(model.trainable_weights) == 4
    assert model.predict(x, verbose=0).shape == (32, 1)


def test_sparse_and_binary_accuracy_are_picked_from_loss_and_shapes():
    rng = np.random.default_rng(0)
    inp = Input(shape=(4,))
    model = Model(inp, layers.Dense(3, activation="softmax")(inp))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    logs = model.evaluate(rng.random((10, 4)), np.arange(10) % 3, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "accuracy"}
    binary = Model(inp, layers.Dense(1, activation="sigmoid")(inp))
    binary.compile("adam", "binary_crossentropy", metrics=["acc"])
    x = rng.random((10, 4))
    p = binary.predict(x, verbose=0)
    y = (rng.random((10, 1)) > 0.5).astype("float32")
    logs = binary.evaluate(x, y, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["acc"], ((p > 0.5) == (y > 0.5)).mean(), rtol=1e-6)


def test_shuffle_batch_keeps_batches_contiguous():
    model = small_model()
    x = np.arange(40, dtype=np.float64).reshape(10, 4)
    seen = []
    original = model._train_step

    def record(xs, ys, sw=None, tvars=None):
        seen.append(xs[0][:, 0].copy())
        return original(xs, ys, sw, tvars)

    model._train_step = record
    model.fit(x, np.zeros((10, 3)), batch_size=4, epochs=1, shuffle="batch", verbose=0)
    for batch in seen:
        assert np.all(np.diff(batch) == 4)  # consecutive samples within each batch
    assert sorted(np.concatenate(seen).tolist()) == list(range(0, 40, 4))
