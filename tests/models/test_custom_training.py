"""Keras code as written: custom layers with operators, subclassed models, custom losses and
training steps. Each training result is compared with a float64 reference computed in the test
with numpy alone (forward pass written out, gradients by central differences of that numpy
function), so an unrecorded operation anywhere in engine shows up as a wrong update."""
import numpy as np
import pytest

import engine
from engine import GradientTape, Input, Model, Sequential, layers, metrics, ops

rng = np.random.default_rng(0)
LR = 0.1


def numeric_grads(loss_fn, params, eps=1e-6):
    """Central differences of a numpy loss with respect to each array in params (in place)."""
    grads = []
    for p in params:
        g = np.zeros_like(p)
        flat, gflat = p.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            up = loss_fn()
            flat[i] = old - eps
            down = loss_fn()
            flat[i] = old
            gflat[i] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


def sgd_reference(loss_fn, params):
    """The parameters after one plain SGD step on loss_fn, computed with numpy only."""
    grads = numeric_grads(loss_fn, params)
    return [p - LR * g for p, g in zip(params, grads)]


def np_relu(x):
    return np.maximum(x, 0.0)


class Antirectifier(layers.Layer):
    """keras-io's Antirectifier, as written there (augmented assignment and a unary minus)."""

    def build(self, input_shape):
        dim = input_shape[-1]
        self.kernel = self.add_weight(shape=(dim * 2, dim), initializer="he_normal", name="kernel")

    def call(self, inputs):
        inputs -= ops.mean(inputs, axis=-1, keepdims=True)
        pos = ops.relu(inputs)
        neg = ops.relu(-inputs)
        concatenated = ops.concatenate([pos, neg], axis=-1)
        return ops.matmul(concatenated, self.kernel)

    def compute_output_shape(self, input_shape):
        return input_shape


def test_antirectifier_trains_the_dense_layer_below_it_exactly():
    x, y = rng.standard_normal((8, 5)), rng.standard_normal((8, 3))
    inp = Input((5,), dtype="float64")
    h = layers.Dense(4, dtype="float64")(inp)
    h = Antirectifier(dtype="float64")(h)
    out = layers.Dense(3, dtype="float64")(h)
    model = Model(inp, out)
    model.compile(engine.optimizers.SGD(LR), "mse")
    params = [w.copy() for w in model.get_weights()]   # dense kernel, bias, anti kernel, dense kernel, bias
    w1, b1, k, w2, b2 = params

    def loss():
        h = x @ w1 + b1
        h = h - h.mean(-1, keepdims=True)
        h = np.concatenate([np_relu(h), np_relu(-h)], -1) @ k
        return np.mean((h @ w2 + b2 - y) ** 2)

    expected = sgd_reference(loss, params)
    model.train_on_batch(x, y)
    for got, want in zip(model.get_weights(), expected):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


class Residual(Model):
    def __init__(self):
        super().__init__()
        self.first = layers.Dense(4, activation="tanh", dtype="float64")
        self.inner = layers.Dense(4, activation="relu", dtype="float64")
        self.head = layers.Dense(2, dtype="float64")

    def call(self, x):
        h = self.first(x)
        h = h + self.inner(h)          # the residual: a Python operator on layer outputs
        return self.head(h * 0.5)


def test_residual_subclassed_model_trains_every_layer_exactly():
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    model = Residual()
    model.compile(engine.optimizers.SGD(LR), "mse")
    model(x)   # build
    params = [w.copy() for w in model.get_weights()]
    w1, b1, w2, b2, w3, b3 = params

    def loss():
        h = np.tanh(x @ w1 + b1)
        h = h + np_relu(h @ w2 + b2)
        return np.mean(((h * 0.5) @ w3 + b3 - y) ** 2)

    expected = sgd_reference(loss, params)
    model.fit(x, y, batch_size=6, epochs=1, verbose=0, shuffle=False)
    for got, want in zip(model.get_weights(), expected):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def test_custom_loss_written_with_operators():
    def my_loss(y_true, y_pred):
        return ops.mean(ops.square(y_true - y_pred), axis=-1) + 0.5 * ops.mean(abs(y_pred), axis=-1)

    x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    inp = Input((3,), dtype="float64")
    model = Model(inp, layers.Dense(2, dtype="float64")(inp))
    model.compile(engine.optimizers.SGD(LR), loss=my_loss)
    w, b = [a.copy() for a in model.get_weights()]

    def loss():
        p = x @ w + b
        return np.mean(np.mean((y - p) ** 2, -1) + 0.5 * np.mean(np.abs(p), -1))

    expected = sgd_reference(loss, [w, b])
    history = model.fit(x, y, batch_size=5, verbose=0)
    np.testing.assert_allclose(history.history["loss"][0], loss(), rtol=1e-6)
    for got, want in zip(model.get_weights(), expected):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def test_scalar_loss_from_ops_mean_of_a_scalar():
    inp = Input((2,), dtype="float64")
    model = Model(inp, layers.Dense(1, dtype="float64")(inp))
    model.compile(engine.optimizers.SGD(LR), loss=lambda t, p: ops.mean(ops.mean(ops.square(t - p))))
    model.fit(rng.standard_normal((4, 2)), rng.standard_normal((4, 1)), verbose=0)


class MAEModel(Model):
    """A train_step override that tracks its own metrics (Keras's guide pattern)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_tracker = metrics.Mean(name="loss")
        self.mae_metric = metrics.Mean(name="mae")
        self.steps_seen = 0

    def train_step(self, data):
        x, y = data
        self.steps_seen += 1
        with GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = ops.mean(ops.square(y - y_pred))
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        self.loss_tracker.update_state(loss)
        self.mae_metric.update_state(ops.mean(ops.abs(y - y_pred)))
        return {"loss": self.loss_tracker.result(), "mae": self.mae_metric.result()}

    def test_step(self, data):
        x, y = data
        y_pred = self(x, training=False)
        self.loss_tracker.update_state(ops.mean(ops.square(y - y_pred)))
        return {"loss": self.loss_tracker.result()}

    @property
    def metrics(self):
        return [self.loss_tracker, self.mae_metric]


def test_fit_calls_the_overridden_train_step_and_reports_its_metrics():
    x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 1))
    inp = Input((3,), dtype="float64")
    model = MAEModel(inp, layers.Dense(1, dtype="float64")(inp))     # CustomModel(inputs, outputs)
    assert isinstance(model, MAEModel) and len(model.trainable_weights) == 2
    model.compile(engine.optimizers.SGD(LR))                           # no loss: the step computes it
    w, b = [a.copy() for a in model.get_weights()]
    batch_losses, batch_maes = [], []
    for start in (0, 4):   # the reference: two SGD steps on the unshuffled batches
        xb, yb = x[start:start + 4], y[start:start + 4]
        batch_losses.append(np.mean((xb @ w + b - yb) ** 2))
        batch_maes.append(np.mean(np.abs(xb @ w + b - yb)))
        w, b = sgd_reference(lambda: np.mean((xb @ w + b - yb) ** 2), [w, b])
    seen = []
    cb = engine.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(dict(logs)))
    history = model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0, callbacks=[cb])
    assert model.steps_seen == 4
    assert set(history.history) == {"loss", "mae"}
    # Epoch 1's logs are the means over its two batches (the metrics were reset at its start).
    np.testing.assert_allclose(history.history["loss"][0], np.mean(batch_losses), rtol=1e-7)
    np.testing.assert_allclose(history.history["mae"][0], np.mean(batch_maes), rtol=1e-7)
    assert seen[0]["loss"] == history.history["loss"][0]
    result = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    assert set(result) == {"loss"}
    np.testing.assert_allclose(result["loss"], np.mean((x @ model.get_weights()[0] + model.get_weights()[1] - y) ** 2))


def test_train_step_with_compute_loss_and_compiled_metrics_in_both_styles():
    class Keras3Style(Model):
        def train_step(self, data):
            x, y, sample_weight = engine.utils.unpack_x_y_sample_weight(data)
            with GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
            for m in self.metrics:
                if m.name == "loss":
                    m.update_state(loss)
                else:
                    m.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

    class Keras2Style(Model):
        def train_step(self, data):
            x, y = data
            with GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = self.compiled_loss(y, y_pred, regularization_losses=self.losses)
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
            self.compiled_metrics.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    results = []
    for cls in (Keras3Style, Keras2Style):
        inp = Input((3,), dtype="float64")
        model = cls(inp, layers.Dense(2, dtype="float64", kernel_initializer="ones")(inp))
        model.compile(engine.optimizers.SGD(LR), loss="mse", metrics=["mae"])
        w, b = [a.copy() for a in model.get_weights()]
        history = model.fit(x, y, batch_size=6, verbose=0)
        np.testing.assert_allclose(history.history["loss"][0], np.mean((x @ w + b - y) ** 2), rtol=1e-6)
        np.testing.assert_allclose(history.history["mae"][0], np.mean(np.abs(x @ w + b - y)), rtol=1e-6)
        expected = sgd_reference(lambda: np.mean((x @ w + b - y) ** 2), [w, b])
        for got, want in zip(model.get_weights(), expected):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)
        results.append(history.history)
    for key in results[0]:
        np.testing.assert_allclose(results[0][key], results[1][key], rtol=1e-6)


def test_predict_step_override_and_predict_returns_numpy():
    class Doubled(Model):
        def predict_step(self, data):
            return self(data, training=False) * 2.0

    inp = Input((3,))
    model = Doubled(inp, layers.Dense(2)(inp))
    x = rng.standard_normal((5, 3)).astype(np.float32)
    out = model.predict(x, batch_size=2, verbose=0)
    assert type(out) is np.ndarray
    np.testing.assert_allclose(out, 2.0 * np.asarray(model(x)), rtol=1e-6)
    plain = Model(inp, model.outputs[0])
    assert type(plain.predict(x, verbose=0)) is np.ndarray


def test_compile_without_a_loss_trains_add_loss_models_and_models_without_weights():
    class Penalized(layers.Layer):
        def call(self, x):
            self.add_loss(ops.mean(ops.square(x)))
            return x

    inp = Input((3,))
    h = layers.Dense(3, kernel_initializer="ones")(inp)
    model = Model(inp, Penalized()(h))
    model.compile("sgd")
    x = np.ones((4, 3), np.float32)
    before = model.get_weights()[0].copy()
    history = model.fit(x, epochs=1, verbose=0)
    assert history.history["loss"][0] == pytest.approx(9.0)
    assert not np.allclose(model.get_weights()[0], before)

    frozen_inp = Input((3,))
    frozen = Model(frozen_inp, Penalized()(frozen_inp))
    frozen.compile("sgd")
    with pytest.warns(UserWarning, match="trainable weights"):
        history = frozen.fit(x, epochs=2, verbose=0)
    assert history.history["loss"] == [pytest.approx(1.0), pytest.approx(1.0)]

    nothing = Model(frozen_inp, layers.Dense(2)(frozen_inp))
    nothing.compile("sgd")
    with pytest.raises(ValueError, match="No loss to compute"):
        nothing.train_on_batch(x)


def test_callbacks_always_receive_a_logs_dict():
    received = []

    class Recorder(engine.callbacks.Callback):
        def on_train_begin(self, logs=None):
            received.append(("train_begin", logs))

        def on_epoch_begin(self, epoch, logs=None):
            received.append(("epoch_begin", logs))

        def on_train_batch_begin(self, batch, logs=None):
            received.append(("batch_begin", logs))

        def on_test_begin(self, logs=None):
            received.append(("test_begin", logs))

        def on_predict_batch_end(self, batch, logs=None):
            received.append(("predict_batch_end", logs))

    inp = Input((2,))
    model = Model(inp, layers.Dense(1)(inp))
    model.compile("sgd", "mse")
    x, y = np.ones((4, 2), np.float32), np.ones((4, 1), np.float32)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[Recorder()], validation_data=(x, y))
    model.predict(x, verbose=0, callbacks=[Recorder()])
    assert received and all(isinstance(logs, dict) for _, logs in received)


def test_metric_result_is_a_tensor_and_metrics_take_tensors():
    m = metrics.Mean()
    m.update_state(ops.convert_to_tensor(np.array([1.0, 3.0])))
    m.update_state(np.array([5.0]))
    result = m.result()
    assert float(result) == pytest.approx(3.0)
    assert float(np.asarray(result.numpy())) == pytest.approx(3.0)
    assert ops.is_tensor(result)


def test_sequential_without_input_builds_on_first_eager_and_symbolic_call(tmp_path):
    model = Sequential([layers.Dense(4, activation="relu"), layers.Dense(2)])
    x = rng.standard_normal((3, 5)).astype(np.float32)
    y = model(x)
    assert ops.is_tensor(y) and y.shape == (3, 2)
    assert model.inputs[0].shape == (None, 5) and model.outputs[0].shape == (None, 2)
    lines = []
    model.summary(print_fn=lines.append)
    assert "Total params: 34" in "\n".join(lines)
    path = str(tmp_path / "deferred.keras")
    model.save(path)
    loaded = engine.models.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(y), rtol=1e-6)

    symbolic = Sequential([layers.Dense(3)])
    out = symbolic(Input((7,)))
    assert out.shape == (None, 3) and symbolic.inputs[0].shape == (None, 7)


def test_gradient_tape_as_tensorflow():
    x = ops.convert_to_tensor(np.array([1.0, 2.0]))
    a = np.array([3.0, 4.0])
    with GradientTape(persistent=True) as tape:
        tape.watch(x)
        tape.watch(a)
        y = ops.sum(x * x) + ops.sum(ops.multiply(a, x))
        with tape.stop_recording():
            unrecorded = x * 10.0
        z = ops.sum(ops.stop_gradient(x) * x)
        targets = [ops.sum(x), ops.sum(2.0 * x)]
    g = tape.gradient(y, {"x": x, "nested": [a, x]})
    np.testing.assert_allclose(np.asarray(g["x"]), 2 * np.array([1.0, 2.0]) + a)
    np.testing.assert_allclose(np.asarray(g["nested"][0]), [1.0, 2.0])
    np.testing.assert_allclose(np.asarray(tape.gradient(z, x)), [1.0, 2.0])   # stop_gradient: one side
    assert tape.gradient(unrecorded, x) is None
    assert tape.gradient(y, ops.convert_to_tensor(np.ones(2))) is None
    np.testing.assert_array_equal(np.asarray(tape.gradient(y, ops.convert_to_tensor(np.ones(2)),
                                                           unconnected_gradients="zero")), [0.0, 0.0])
    two = tape.gradient(targets, x)      # several targets: their sums add
    np.testing.assert_allclose(np.asarray(two), [3.0, 3.0])
    once = GradientTape()
    with once:
        once.watch(x)
        w = x * 2.0
    once.gradient(w, x)
    with pytest.raises(RuntimeError, match="persistent"):
        once.gradient(w, x)


def test_gradient_with_respect_to_a_model_input_tensor():
    """Saliency maps: tape.gradient(model(x), x) for a functional model, also through the cast
    of float64 input to the model's float32."""
    inp = Input((3,))
    model = Model(inp, layers.Dense(2, kernel_initializer="ones")(inp))
    for dtype in (np.float32, np.float64):
        x = ops.convert_to_tensor(rng.standard_normal((4, 3)).astype(dtype))
        with GradientTape() as tape:
            tape.watch(x)
            y = ops.sum(model(x))
        g = tape.gradient(y, x)
        assert g is not None and g.dtype == dtype
        np.testing.assert_allclose(np.asarray(g), np.full((4, 3), 2.0))


def test_fit_scales_the_loss_for_the_optimizer_and_finalizes_moving_averages():
    x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 1))

    def trained(**optimizer_args):
        inp = Input((3,), dtype="float64")
        model = Model(inp, layers.Dense(1, dtype="float64", kernel_initializer="ones")(inp))
        model.compile(engine.optimizers.SGD(LR, **optimizer_args), "mse")
        model.fit(x, y, batch_size=8, epochs=3, verbose=0)
        return model.get_weights()

    # A loss scale changes nothing but the size of the numbers the gradient passes through.
    for a, b in zip(trained(), trained(loss_scale_factor=128.0)):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    # With use_ema, fit ends with the moving averages in the weights (Keras's finalize step):
    # the raw trajectory is plain SGD's; the average starts at the first step's weights.
    inp = Input((3,), dtype="float64")
    plain = Model(inp, layers.Dense(1, dtype="float64", kernel_initializer="ones")(inp))
    plain.compile(engine.optimizers.SGD(LR), "mse")
    average = None
    for _ in range(3):
        plain.fit(x, y, batch_size=8, epochs=1, verbose=0)
        w = plain.get_weights()
        average = w if average is None else [0.5 * a + 0.5 * b for a, b in zip(average, w)]
    for got, want in zip(trained(use_ema=True, ema_momentum=0.5), average):
        np.testing.assert_allclose(got, want, rtol=1e-12)
