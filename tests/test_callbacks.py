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
    text = engine.utils.plot_model(model, str(tmp_path / "m.dot"), show_shapes=True, show_layer_names=True)
    assert open(tmp_path / "m.dot").read() == text
    assert text.count("->") == 3 and "head|Dense" in text and "join|Concatenate" in text
    assert "dpi=200;" in text and "splines=ortho;" in text and "Output shape: (?, 1)" in text
    plain = engine.utils.plot_model(model, str(tmp_path / "p.dot"))     # Keras's default: no names
    assert "head|" not in plain and '"Dense"' in plain


def test_plot_model_labels_escape_record_syntax():
    # a layer name with DOT record syntax in it stays one field; only shapes show None as ?
    from engine.utils import model_to_dot
    inp = engine.Input(shape=(3,))
    model = engine.Model(inp, engine.layers.Dense(2, name="None|{x}<y>")(inp))
    dot = model_to_dot(model, show_shapes=True, show_layer_names=True)
    assert 'label="None/(x)(y)|Dense|Output shape: (?, 2)"' in dot


def test_plot_model_details_and_nested_clusters(tmp_path):
    inner = engine.Sequential([Input(shape=(3,)), layers.Dense(2, activation="relu", name="in_dense"),
                               layers.Dense(2, name="in_out")], name="block")
    inner.layers[1].trainable = False
    inp = Input(shape=(3,), name="src")
    model = Model(inp, layers.Dense(1, activation="sigmoid", name="head")(inner(inp)))
    dot = engine.utils.model_to_dot(model, show_dtype=True, show_layer_activations=True, show_trainable=True,
                                    dpi=96, splines="polyline", rankdir="LR")
    assert "Activation: sigmoid" in dot and "Output dtype: float32" in dot and "Trainable: Y" in dot
    assert "dpi=96;" in dot and "splines=polyline;" in dot and "rankdir=LR;" in dot
    assert "cluster_block" not in dot and dot.count("->") == 2
    nested = engine.utils.model_to_dot(model, expand_nested=True, show_trainable=True)
    assert 'subgraph "cluster_block"' in nested and "in_dense|Dense|Trainable: Y" in nested
    assert "in_out|Dense|Trainable: N" in nested
    # src -> the block's first layer, in_dense -> in_out inside, the block's last layer -> head.
    assert nested.count("->") == 3
    sub = engine.utils.model_to_dot(inner, subgraph=True)
    assert sub.startswith('subgraph "cluster_block" {')
    with pytest.raises(ValueError, match="layer_range"):
        engine.utils.model_to_dot(model, layer_range=["a", "b"])
    with pytest.raises(ValueError, match="unrecognized"):
        engine.utils.plot_model(model, str(tmp_path / "m.dot"), colour=True)


def test_verbose_2_prints_one_line_per_epoch_and_verbose_0_nothing(capsys):
    tiny().fit(X, Y, epochs=3, batch_size=8, validation_split=0.25, verbose=2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert [l for l in lines if l.startswith("Epoch")] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    results = [l for l in lines if not l.startswith("Epoch")]
    assert len(results) == 3 and all(l.startswith("3/3 - ") and "val_loss: " in l for l in results)
    tiny().fit(X, Y, epochs=2, verbose=0)
    assert capsys.readouterr().out == ""


def test_progbar_logger_given_explicitly_is_used_once(capsys):
    tiny().fit(X, Y, epochs=2, batch_size=16, verbose=1, callbacks=[callbacks.ProgbarLogger()])
    out = capsys.readouterr().out
    assert out.count("Epoch 1/2") == 1 and out.count("2/2") >= 2 and "loss: " in out


def test_early_stopping_restores_the_best_weights_even_without_stopping():
    model = tiny(lr=0.05)
    snapshots = []

    class Spoil(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append(model.get_weights())
            if epoch == 1:
                logs["loss"] = -1.0  # epoch 2 looks best

    stop = callbacks.EarlyStopping(monitor="loss", patience=10, restore_best_weights=True)
    history = model.fit(X, Y, epochs=4, verbose=0, callbacks=[Spoil(), stop])
    assert len(history.history["loss"]) == 4 and stop.stopped_epoch == 0 and stop.best_epoch == 1
    for a, b in zip(model.get_weights(), snapshots[1]):
        np.testing.assert_array_equal(a, b)


def test_early_stopping_baseline_and_auto_mode_for_accuracy():
    model = tiny()

    class Losses(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["loss"] = [5.0, 4.0, 6.0, 6.0, 6.0, 6.0][epoch]

    def epochs_run(baseline):
        stop = callbacks.EarlyStopping(monitor="loss", baseline=baseline, patience=2)
        return len(model.fit(X, Y, epochs=6, verbose=0, callbacks=[Losses(), stop]).history["loss"])

    # As in Keras: an improvement that does not beat the baseline does not restart the waiting.
    assert epochs_run(baseline=1.0) == 3
    assert epochs_run(baseline=None) == 4
    assert callbacks.EarlyStopping(monitor="val_accuracy").mode == "max"
    assert callbacks.EarlyStopping(monitor="val_mae").mode == "min"
    with pytest.warns(UserWarning, match="not available"):
        model.fit(X, Y, epochs=1, verbose=0, callbacks=[callbacks.EarlyStopping(monitor="val_loss")])


def test_model_checkpoint_val_loss_template_mode_and_folders(tmp_path):
    model = tiny()
    pattern = str(tmp_path / "runs" / "m-{epoch:02d}-{val_loss:.2f}.weights.h5")
    cb = callbacks.ModelCheckpoint(pattern, save_weights_only=True, verbose=1)
    model.fit(X, Y, epochs=2, validation_split=0.25, verbose=0, callbacks=[cb])
    names = sorted(os.listdir(tmp_path / "runs"))
    val = model.history.history["val_loss"]
    assert names == [f"m-01-{val[0]:.2f}.weights.h5", f"m-02-{val[1]:.2f}.weights.h5"]
    # mode="max" on a loss keeps only the first (worst-is-best) epoch.
    best = str(tmp_path / "best.keras")
    cb = callbacks.ModelCheckpoint(best, monitor="loss", mode="max", save_best_only=True)
    model.fit(X, Y, epochs=3, verbose=0, callbacks=[cb])
    assert cb.best == pytest.approx(max(model.history.history["loss"]))
    reloaded = engine.models.load_model(best)
    assert reloaded.count_params() == model.count_params()
    with pytest.warns(UserWarning, match="only with val_loss available"):
        model.fit(X, Y, epochs=1, verbose=0, callbacks=[
            callbacks.ModelCheckpoint(str(tmp_path / "x.keras"), save_best_only=True)])
    assert os.path.exists(tmp_path / "x.keras")  # Keras saves when it cannot compare
    with pytest.raises(KeyError, match="val_acc"):
        model.fit(X, Y, epochs=1, verbose=0, callbacks=[
            callbacks.ModelCheckpoint(str(tmp_path / "{val_acc}.keras"))])


def test_reduce_lr_cooldown_min_lr_and_logged_rate():
    model = tiny(lr=0.1)
    cb = callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=1e9, cooldown=2,
                                     min_lr=0.02)
    history = model.fit(X, Y, epochs=6, verbose=0, callbacks=[cb])
    # The rate is logged before the epoch's decision (as Keras does).  Epoch 1 sets the best; 2 reduces;
    # 3 is cooled down; 4 reduces; 5 is cooled down; 6 would reduce to 0.0125 but stops at min_lr.
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])
    assert float(model.optimizer.learning_rate) == pytest.approx(0.02)


def test_scheduler_one_argument_form_and_type_check():
    model = tiny()
    history = model.fit(X, Y, epochs=3, verbose=0,
                        callbacks=[callbacks.LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1))])
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.1 / 3])
    with pytest.raises(ValueError, match="should be a float"):
        model.fit(X, Y, epochs=1, verbose=0, callbacks=[callbacks.LearningRateScheduler(lambda e, lr: "fast")])


def test_terminate_on_nan_can_raise():
    x_bad = np.full_like(X, np.nan)
    with pytest.raises(RuntimeError, match="NaN or Inf loss"):
        tiny().fit(x_bad, Y, epochs=2, verbose=0, callbacks=[callbacks.TerminateOnNaN(raise_error=True)])


def test_csv_logger_appends_and_marks_missing_validation(tmp_path):
    path = tmp_path / "log.csv"
    model = tiny()
    model.fit(X, Y, epochs=2, verbose=0, callbacks=[callbacks.CSVLogger(path, separator=";")])
    model.fit(X, Y, epochs=1, verbose=0, callbacks=[callbacks.CSVLogger(path, separator=";", append=True)])
    rows = list(csv.reader(open(path), delimiter=";"))
    assert rows[0] == ["epoch", "loss", "val_loss"] and len(rows) == 4  # one header
    assert [r[0] for r in rows[1:]] == ["0", "1", "0"] and rows[1][2] == "NA"
    assert float(rows[3][1]) == pytest.approx(model.history.history["loss"][0])


def test_lambda_callback_hooks_and_batch_aliases():
    events = []

    class OldStyle(callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            events.append(("batch", batch))

    cb = callbacks.LambdaCallback(on_train_begin=lambda logs: events.append("begin"),
                                  on_train_end=lambda logs: events.append("end"),
                                  on_epoch_begin=lambda epoch, logs: events.append(("epoch", epoch)))
    tiny().fit(X, Y, epochs=2, batch_size=16, verbose=0, callbacks=[cb, OldStyle()])
    assert events == ["begin", ("epoch", 0), ("batch", 0), ("batch", 1), ("epoch", 1), ("batch", 0),
                      ("batch", 1), "end"]
    with pytest.raises(ValueError, match="unknown hook"):
        callbacks.LambdaCallback(on_epoch_finish=print)


def test_ctrl_c_mid_epoch_keeps_completed_epochs_and_the_model_trains_and_saves_on(tmp_path):
    model = tiny()

    class Interrupt(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.params.get("epochs") == 5 and len(model.history.history.get("loss", [])) == 2 and batch == 1:
                raise KeyboardInterrupt

    model.history = callbacks.History()
    history = model.fit(X, Y, epochs=5, batch_size=8, verbose=0, callbacks=[Interrupt()])
    assert history.epoch == [0, 1] and len(history.history["loss"]) == 2
    assert np.all(np.isfinite(model.predict(X, verbose=0)))
    model.fit(X, Y, epochs=1, verbose=0)
    model.save(str(tmp_path / "after.keras"))
    engine.models.load_model(str(tmp_path / "after.keras"))


def test_plot_model_images_need_graphviz(tmp_path, monkeypatch):
    inp = Input(shape=(3,))
    inner = Model(inp, layers.Dense(2)(inp), name="inner")
    outer_in = Input(shape=(3,))
    model = Model(outer_in, layers.Dense(1)(inner(outer_in)))
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(RuntimeError, match="Graphviz"):
        engine.utils.plot_model(model, str(tmp_path / "m.png"))
    assert not os.path.exists(tmp_path / "m.png")
    dot = engine.utils.model_to_dot(model, show_shapes=True)
    assert dot.startswith('digraph "') and dot.count("->") == 2 and "inner|Functional" in dot


def _ema_model():
    from engine import Input, Model, layers, optimizers
    inp = Input((3,))
    model = Model(inp, layers.Dense(1, kernel_initializer="ones")(inp))
    model.compile(optimizers.SGD(0.1, use_ema=True, ema_momentum=0.5), "mse")
    return model


def test_swap_ema_weights_evaluates_with_the_averages_and_restores_the_weights():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 3)).astype("float32"), rng.normal(size=(32, 1)).astype("float32")
    model = _ema_model()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)     # fit ends with the averages in the weights
    # More steps by hand: the weights and their averages now differ.
    model.train_on_batch(x[:8], y[:8])
    model.train_on_batch(x[8:16], y[8:16])
    weights = [w.copy() for w in model.get_weights()]
    opt = model.optimizer
    kernel = model.trainable_variables[0]
    opt.swap_moving_averages()
    average_kernel = kernel.numpy().copy()
    opt.swap_moving_averages()
    np.testing.assert_array_equal(kernel.numpy(), weights[0])
    assert not np.array_equal(average_kernel, weights[0])
    swap = callbacks.SwapEMAWeights()
    swap.set_model(model)
    swap.on_test_begin()
    with_averages = model.evaluate(x, y, verbose=0)
    swap.on_test_end()
    np.testing.assert_array_equal(kernel.numpy(), weights[0])
    opt.swap_moving_averages()
    assert model.evaluate(x, y, verbose=0) == pytest.approx(with_averages)
    opt.swap_moving_averages()
    # evaluate(callbacks=[...]) and predict do the swap themselves and put the weights back.
    assert model.evaluate(x, y, verbose=0, callbacks=[callbacks.SwapEMAWeights()]) == pytest.approx(with_averages)
    np.testing.assert_array_equal(kernel.numpy(), weights[0])
    model.predict(x, verbose=0, callbacks=[callbacks.SwapEMAWeights()])
    np.testing.assert_array_equal(kernel.numpy(), weights[0])


def test_swap_on_epoch_leaves_the_averages_in_the_model_at_the_end():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(32, 3)).astype("float32"), rng.normal(size=(32, 1)).astype("float32")
    plain, swapped = _ema_model(), _ema_model()
    plain.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
    swapped.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False,
                callbacks=[callbacks.SwapEMAWeights(swap_on_epoch=True)])
    # Between epochs the averages were in the model but training resumed from the weights, so
    # both runs end with the same averages in the weights.
    for a, b in zip(plain.get_weights(), swapped.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    with pytest.raises(ValueError, match="use_ema=True"):
        model = tiny()
        cb = callbacks.SwapEMAWeights()
        cb.set_model(model)
        cb.on_test_begin()


def test_remote_monitor_posts_each_epoch_as_form_or_json():
    import json
    import threading
    import urllib.parse
    from http.server import BaseHTTPRequestHandler, HTTPServer
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers["Content-Type"], self.headers.get("X-Run"), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    root = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        history = tiny().fit(X, Y, epochs=2, batch_size=16, verbose=0,
                             callbacks=[callbacks.RemoteMonitor(root=root, headers={"X-Run": "r1"})])
        tiny().fit(X, Y, epochs=1, batch_size=16, verbose=0,
                   callbacks=[callbacks.RemoteMonitor(root=root, path="/j", send_as_json=True)])
    finally:
        server.shutdown()
    path, ctype, run, body = received[1]
    assert (path, ctype, run) == ("/publish/epoch/end/", "application/x-www-form-urlencoded", "r1")
    sent = json.loads(urllib.parse.parse_qs(body.decode())["data"][0])
    assert sent["epoch"] == 1 and sent["loss"] == pytest.approx(history.history["loss"][1])
    path, ctype, _, body = received[2]
    assert (path, ctype) == ("/j", "application/json") and json.loads(body)["epoch"] == 0
    with pytest.warns(UserWarning, match="Could not reach"):
        tiny().fit(X, Y, epochs=1, verbose=0, callbacks=[callbacks.RemoteMonitor(root="http://127.0.0.1:9")])


def test_which_callbacks_read_train_batch_logs():
    """fit makes a batch's logs only when some callback may read them: one overriding
    on_train_batch_end or on_batch_end (by its class or on the instance, as LambdaCallback sets
    them), at any depth of a CallbackList; History and a plain Callback do not."""
    class EpochOnly(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            pass

    class OldName(callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            pass

    class NewName(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            pass

    reads = callbacks.reads_train_batch_logs
    assert not reads(callbacks.History()) and not reads(EpochOnly()) and not reads(callbacks.Callback())
    assert reads(OldName()) and reads(NewName()) and reads(callbacks.TerminateOnNaN())
    assert reads(callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: None))
    assert not reads(callbacks.LambdaCallback(on_epoch_end=lambda e, logs: None))
    assert reads(callbacks.ProgbarLogger())
    assert not reads(callbacks.CallbackList([callbacks.History(), EpochOnly()]))
    assert reads(callbacks.CallbackList([callbacks.History(), callbacks.CallbackList([NewName()])]))


def test_epoch_logs_are_the_same_whether_or_not_batch_logs_are_read():
    """Without a callback reading batch logs fit makes the logs once per epoch; the epoch's logs
    (History) are those of its last batch either way, and a reader sees every batch's."""
    def run(extra):
        engine.utils.set_random_seed(3)
        inp = Input(shape=(3,))
        model = Model(inp, layers.Dense(2, activation="softmax")(inp))
        model.compile("rmsprop", "categorical_crossentropy", metrics=["accuracy"])
        y = np.eye(2)[(X[:, 0] > 0.5).astype(int)]
        return model.fit(X, y, batch_size=5, epochs=3, verbose=0, callbacks=extra).history

    seen = []
    lazy = run([])
    read = run([callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(dict(logs)))])
    assert lazy == read and set(lazy) == {"loss", "accuracy"}
    assert len(seen) == 3 * 7 and all(set(s) == {"loss", "accuracy"} for s in seen)
    assert [seen[6 + 7 * e] for e in range(3)] == [{k: v[e] for k, v in read.items()} for e in range(3)]


def test_stop_training_mid_epoch_keeps_the_stopping_batch_logs():
    class StopAt(callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 2:
                self.model.stop_training = True

    model = tiny()
    history = model.fit(X, Y, batch_size=4, epochs=4, verbose=0, callbacks=[StopAt()])
    assert len(history.history["loss"]) == 1 and np.isfinite(history.history["loss"][0])
    assert history.history["loss"][0] == pytest.approx(model.get_metrics_result()["loss"])


def test_steps_per_execution_groups_the_batch_hooks_as_keras():
    """Keras 3 (run here with JAX) calls, for 10 batches and steps_per_execution=4, train hooks
    begin 0/4/8 and end 3/7/11; validation on 5 batches begin 0/4, end 3/7; the logs at a
    group's end are its last batch's. The training itself is the one of steps_per_execution=1."""
    import numpy as np
    from engine import Input, layers, callbacks, Model, random as engine_random

    class Recorder(callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.calls = []

        def on_train_batch_begin(self, batch, logs=None):
            self.calls.append(("tb", batch))

        def on_train_batch_end(self, batch, logs=None):
            self.calls.append(("te", batch, round(float(logs["loss"]), 6)))

        def on_test_batch_begin(self, batch, logs=None):
            self.calls.append(("vb", batch))

        def on_test_batch_end(self, batch, logs=None):
            self.calls.append(("ve", batch))

        def on_predict_batch_begin(self, batch, logs=None):
            self.calls.append(("pb", batch))

        def on_predict_batch_end(self, batch, logs=None):
            self.calls.append(("pe", batch))

    rng = np.random.default_rng(0)
    x, y = rng.random((40, 3), dtype=np.float32), rng.random((40, 1), dtype=np.float32)
    runs = {}
    for n in (1, 4):
        engine_random.set_seed(3)
        inputs = Input(shape=(3,))
        model = Model(inputs, layers.Dense(1)(inputs))
        model.compile(optimizer="sgd", loss="mse", steps_per_execution=n)
        rec = Recorder()
        history = model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[rec],
                            validation_data=(x[:20], y[:20]))
        runs[n] = (rec.calls, history.history, model.get_weights(), model)
    grouped, single = runs[4][0], runs[1][0]
    assert [c[:2] for c in grouped if c[0][0] == "t"] == [("tb", 0), ("te", 3), ("tb", 4), ("te", 7), ("tb", 8),
                                                         ("te", 11)]
    assert [c for c in grouped if c[0][0] == "v"] == [("vb", 0), ("ve", 3), ("vb", 4), ("ve", 7)]
    single_end_loss = {c[1]: c[2] for c in single if c[0] == "te"}
    assert [c[2] for c in grouped if c[0] == "te"] == [single_end_loss[3], single_end_loss[7], single_end_loss[9]]
    assert runs[4][1] == runs[1][1]
    for a, b in zip(runs[4][2], runs[1][2]):
        np.testing.assert_array_equal(a, b)
    model = runs[4][3]
    rec = Recorder()
    model.predict(x[:20], batch_size=4, verbose=0, callbacks=[rec])
    assert rec.calls == [("pb", 0), ("pe", 3), ("pb", 4), ("pe", 7)]
    rec = Recorder()
    model.evaluate(x[:36], y[:36], batch_size=4, verbose=0, callbacks=[rec])
    assert rec.calls == [("vb", 0), ("ve", 3), ("vb", 4), ("ve", 7), ("vb", 8), ("ve", 11)]
    import pytest
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="steps_per_execution"):
            model.compile(optimizer="sgd", loss="mse", steps_per_execution=bad)
