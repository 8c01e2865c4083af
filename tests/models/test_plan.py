"""Execution plans (engine/models/plan.py): a planned step gives the unplanned step's numbers bit
for bit, for every layer family, and is rebuilt when its signature or the trainable set changes."""
import numpy as np
import pytest

from engine import GradientTape, Input, layers, ops, optimizers
from engine import random as engine_random
from engine.models import Model, Sequential
from engine.models import plan as plan_module


def _twins(build, compile_kwargs):
    """The same model built twice from the same seed: one planned, one not. `compile_kwargs` is
    a dict, or a function making one per model (for optimizer instances, which are not shared)."""
    models = []
    for planned in (True, False):
        engine_random.set_seed(0)
        m = build()
        m.plan_enabled = planned
        m.compile(**(compile_kwargs() if callable(compile_kwargs) else compile_kwargs))
        models.append(m)
    models[1].set_weights(models[0].get_weights())
    return models


def _fit_both(models, x, y, epochs=2, batch_size=32, **kwargs):
    histories = []
    for m in models:
        engine_random.set_seed(1)          # the same shuffles and dropout masks for both
        histories.append(m.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, **kwargs).history)
    return histories


def _assert_same(models, histories):
    planned, unplanned = models
    assert histories[0] == histories[1]
    for a, b in zip(planned.get_weights(), unplanned.get_weights()):
        np.testing.assert_array_equal(a, b)


def _assert_same_predictions(models, x):
    """Forward plans (predict, model(x)) give the unplanned outputs bit for bit."""
    planned, unplanned = models
    for a, b in zip(_flat(planned.predict(x, verbose=0)), _flat(unplanned.predict(x, verbose=0))):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(_flat(planned(x)), _flat(unplanned(x))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert _forward_plans(planned) and not _forward_plans(unplanned)


def _flat(out):
    return out if isinstance(out, (list, tuple)) else [out]


def _train_plans(model):
    cache = model.__dict__.get("_plans", {}).get("train", {})
    return [p for p in cache.values() if isinstance(p, plan_module.Plan)]


def _forward_plans(model):
    cache = model.__dict__.get("_plans", {}).get("forward", {})
    return [p for p in cache.values() if isinstance(p, plan_module.Plan)]


def _opaque_labels(plan):
    return [s.label for s in plan.steps if s.opaque is not None]


def _seed_model():
    inputs = Input(shape=(64,))
    x = layers.Dense(32, activation="relu")(inputs)
    x = layers.Dense(32, activation="relu")(x)
    return Model(inputs, layers.Dense(10, activation="softmax")(x))


def test_seed_model_trains_bit_identically_and_its_last_batch_replays_the_full_batch_plan():
    rng = np.random.default_rng(0)
    x = rng.random((1000, 64), dtype=np.float32)
    y = rng.random((1000, 10), dtype=np.float32)
    models = _twins(_seed_model, dict(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["acc"]))
    _assert_same(models, _fit_both(models, x, y, batch_size=128))
    plans = _train_plans(models[0])
    # the last batch (104 rows) replays the plan traced on the full ones: one plan, under both sizes
    assert len(plans) == 2 and plans[0] is plans[1] and plans[0].batch_generic
    assert plans[0].shapes[plans[0].input_slots[0]][0] == 128
    assert all(not _opaque_labels(p) for p in plans)
    assert not _train_plans(models[1])
    # evaluate and predict go through forward plans, with the same numbers
    for m in models:
        m.plan_enabled = m is models[0]
    np.testing.assert_array_equal(models[0].predict(x[:7], verbose=0), models[1].predict(x[:7], verbose=0))
    assert models[0].evaluate(x, y, verbose=0) == models[1].evaluate(x, y, verbose=0)
    assert _forward_plans(models[0])
    out = models[0](x[:3])
    np.testing.assert_array_equal(out.numpy(), models[1](x[:3]).numpy())


def test_seed_sequential_with_adam_and_sparse_labels():
    def build():
        return Sequential([Input(shape=(20,)), layers.Dense(16, activation="tanh"), layers.Dense(5)])
    rng = np.random.default_rng(1)
    x = rng.standard_normal((150, 20)).astype(np.float32)
    y = rng.integers(0, 5, size=(150,))
    models = _twins(build, dict(optimizer="adam",
                                loss=__import__("engine").losses.SparseCategoricalCrossentropy(from_logits=True),
                                metrics=["accuracy"]))
    _assert_same(models, _fit_both(models, x, y))
    assert _train_plans(models[0])


def test_convolutional_family():
    def build():
        inputs = Input(shape=(12, 12, 3))
        x = layers.Conv2D(4, 3, activation="relu", padding="same")(inputs)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Conv2D(4, 3, activation="relu")(x)
        x = layers.AveragePooling2D(2)(x)
        x = layers.Flatten()(x)
        return Model(inputs, layers.Dense(3, activation="softmax")(x))
    rng = np.random.default_rng(2)
    x = rng.random((40, 12, 12, 3), dtype=np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 40)]
    models = _twins(build, dict(optimizer="sgd", loss="categorical_crossentropy"))
    _assert_same(models, _fit_both(models, x, y, batch_size=16))
    assert all(not _opaque_labels(p) for p in _train_plans(models[0]))
    _assert_same_predictions(models, x[:5])


def test_conv1d_global_pooling_and_merges_with_two_inputs_and_outputs():
    def build():
        a = Input(shape=(10, 4), name="a")
        b = Input(shape=(6,), name="b")
        h = layers.Conv1D(6, 3, activation="relu")(a)
        h = layers.MaxPooling1D(2)(h)
        h = layers.GlobalAveragePooling1D()(h)
        g = layers.Dense(6)(b)
        s = layers.Add()([h, g])
        m = layers.Multiply()([h, g])
        c = layers.Concatenate()([s, m, layers.Subtract()([h, g])])
        out1 = layers.Dense(1, name="reg")(c)
        out2 = layers.Dense(2, activation="sigmoid", name="cls")(layers.Average()([s, m]))
        return Model([a, b], [out1, out2])
    rng = np.random.default_rng(3)
    xa = rng.random((50, 10, 4), dtype=np.float32)
    xb = rng.random((50, 6), dtype=np.float32)
    y1 = rng.random((50, 1), dtype=np.float32)
    y2 = (rng.random((50, 2)) > 0.5).astype(np.float32)
    models = _twins(build, dict(optimizer="rmsprop", loss=["mse", "binary_crossentropy"],
                                loss_weights=[0.5, 2.0], metrics=[["mae"], ["accuracy"]]))
    _assert_same(models, _fit_both(models, [xa, xb], [y1, y2], batch_size=16))
    assert all(not _opaque_labels(p) for p in _train_plans(models[0]))
    _assert_same_predictions(models, [xa[:9], xb[:9]])
    assert models[0].evaluate([xa, xb], [y1, y2], verbose=0) == models[1].evaluate([xa, xb], [y1, y2], verbose=0)


def test_embedding_lstm_and_shared_layers_are_traced_into_the_plan():
    def build():
        q = Input(shape=(7,), dtype="int32")
        d = Input(shape=(7,), dtype="int32")
        emb = layers.Embedding(30, 8)
        lstm = layers.LSTM(6)
        merged = layers.Concatenate()([lstm(emb(q)), lstm(emb(d))])
        return Model([q, d], layers.Dense(1, activation="sigmoid")(merged))
    rng = np.random.default_rng(4)
    q = rng.integers(0, 30, (40, 7)).astype(np.int32)
    d = rng.integers(0, 30, (40, 7)).astype(np.int32)
    y = (rng.random((40, 1)) > 0.5).astype(np.float32)
    models = _twins(build, dict(optimizer="adam", loss="binary_crossentropy", metrics=["acc"]))
    _assert_same(models, _fit_both(models, [q, d], y, batch_size=16))
    assert not _opaque_labels(_train_plans(models[0])[0])
    _assert_same_predictions(models, [q[:3], d[:3]])


def test_dropout_and_batch_normalization_inside_a_plan():
    def build():
        inputs = Input(shape=(8,))
        x = layers.Dense(16, activation="relu")(inputs)
        x = layers.BatchNormalization()(x)
        x = layers.Dropout(0.3)(x)
        return Model(inputs, layers.Dense(1)(x))
    rng = np.random.default_rng(5)
    x = rng.standard_normal((64, 8)).astype(np.float32)
    y = rng.standard_normal((64, 1)).astype(np.float32)
    models = _twins(build, dict(optimizer="adam", loss="mse"))
    _assert_same(models, _fit_both(models, x, y, batch_size=16, epochs=3))
    # BatchNormalization updates its moving statistics inside its op and Dropout draws its mask
    # inside its op: the plan replays both (get_weights above holds the moving statistics too)
    assert not _opaque_labels(_train_plans(models[0])[0])
    # the moving statistics were updated by every step, planned or not
    bn_a = [l for l in models[0].layers if isinstance(l, layers.BatchNormalization)][0]
    assert not np.allclose(bn_a.moving_mean.numpy(), 0)
    _assert_same_predictions(models, x[:6])
    # model(x, training=True) replays a forward plan of its own, Dropout and BN live inside it
    engine_random.set_seed(2)
    a = models[0](x[:6], training=True)
    engine_random.set_seed(2)
    b = models[1](x[:6], training=True)
    np.testing.assert_array_equal(a.numpy(), b.numpy())


class _Scale(layers.Layer):
    """A user layer written with replayable ops: traced into the plan."""

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")

    def call(self, x):
        return ops.tanh(x) * self.w + ops.mean(x, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return input_shape


def test_custom_layer_and_nested_model_inside_a_plan():
    def build():
        inner_in = Input(shape=(6,))
        inner = Model(inner_in, layers.Dense(6, activation="relu")(inner_in), name="inner")
        inputs = Input(shape=(5,))
        x = layers.Dense(6)(inputs)
        x = _Scale()(x)
        x = inner(x)
        return Model(inputs, layers.Dense(2)(x))
    rng = np.random.default_rng(6)
    x = rng.standard_normal((48, 5)).astype(np.float32)
    y = rng.standard_normal((48, 2)).astype(np.float32)
    models = _twins(build, dict(optimizer="sgd", loss="mae"))
    _assert_same(models, _fit_both(models, x, y, batch_size=16))
    plan = _train_plans(models[0])[0]
    assert not _opaque_labels(plan)      # the user's layer and the nested model are traced into
    lines = []
    plan.summary(print_fn=lines.append)
    assert any("_scale" in line and "tanh" in line for line in lines), lines
    _assert_same_predictions(models, x[:4])


def test_sequential_plans_are_dropped_when_the_stack_changes():
    rng = np.random.default_rng(12)
    x = rng.random((8, 4), dtype=np.float32)
    model = Sequential([Input(shape=(4,)), layers.Dense(3)])
    first = model.predict(x, verbose=0)
    assert _forward_plans(model)
    model.add(layers.Dense(2))
    assert not _forward_plans(model)
    second = model.predict(x, verbose=0)
    assert second.shape == (8, 2)
    model.pop()
    np.testing.assert_array_equal(model.predict(x, verbose=0), first)


def test_plans_follow_trainable_changes_and_compile():
    rng = np.random.default_rng(7)
    x = rng.random((64, 64), dtype=np.float32)
    y = rng.random((64, 10), dtype=np.float32)
    models = _twins(_seed_model, dict(optimizer="rmsprop", loss="categorical_crossentropy"))
    _fit_both(models, x, y, epochs=1)
    assert len(_train_plans(models[0])) == 1
    for m in models:
        m.layers[1].trainable = False
    frozen = models[0].layers[1].get_weights()
    _assert_same(models, _fit_both(models, x, y, epochs=1))
    for a, b in zip(frozen, models[0].layers[1].get_weights()):
        np.testing.assert_array_equal(a, b)
    plans = _train_plans(models[0])
    assert len(plans) == 2 and len(plans[-1].tvars) == 4
    for m in models:
        m.compile(optimizer="sgd", loss="mse")
    assert not _train_plans(models[0])
    _assert_same(models, _fit_both(models, x, y, epochs=1))


def test_regularized_model_is_not_planned_and_trains_as_before():
    def build():
        inputs = Input(shape=(4,))
        return Model(inputs, layers.Dense(2, kernel_regularizer="l2")(inputs))
    rng = np.random.default_rng(8)
    x = rng.random((32, 4), dtype=np.float32)
    y = rng.random((32, 2), dtype=np.float32)
    models = _twins(build, dict(optimizer="sgd", loss="mse"))
    _assert_same(models, _fit_both(models, x, y, batch_size=8))
    assert not _train_plans(models[0])


def test_gradient_tape_and_custom_train_step_do_not_use_plans():
    rng = np.random.default_rng(9)
    x = rng.random((16, 64), dtype=np.float32)
    engine_random.set_seed(0)
    model = _seed_model()
    model.predict(x, verbose=0)                      # a forward plan exists
    assert _forward_plans(model)
    with GradientTape() as tape:
        loss = ops.sum(model(x))
    grads = tape.gradient(loss, model.trainable_weights)
    assert all(g is not None for g in grads)
    model.plan_enabled = False
    with GradientTape() as tape:
        loss2 = ops.sum(model(x))
    for a, b in zip(grads, tape.gradient(loss2, model.trainable_weights)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())

    calls = []

    class Custom(Model):
        def train_step(self, data):
            calls.append(1)
            xb, yb = data
            with GradientTape() as t:
                loss = self.compute_loss(y=yb, y_pred=self(xb, training=True))
            self.optimizer.apply(t.gradient(loss, self.trainable_weights), self.trainable_weights)
            return {"loss": loss}
    inputs = Input(shape=(64,))
    custom = Custom(inputs, layers.Dense(3)(inputs))
    custom.compile(optimizer="sgd", loss="mse")
    custom.fit(x, rng.random((16, 3), dtype=np.float32), batch_size=8, verbose=0)
    assert len(calls) == 2 and not _train_plans(custom)


def test_switch_turns_plans_off(monkeypatch):
    monkeypatch.setattr(plan_module, "ENABLED", False)
    rng = np.random.default_rng(10)
    model = _seed_model()
    model.compile(optimizer="sgd", loss="mse")
    model.fit(rng.random((32, 64), dtype=np.float32), rng.random((32, 10), dtype=np.float32), verbose=0)
    model.predict(rng.random((4, 64), dtype=np.float32), verbose=0)
    assert not _train_plans(model) and not _forward_plans(model)


def test_run_eagerly_runs_unplanned():
    rng = np.random.default_rng(13)
    model = _seed_model()
    model.compile(optimizer="sgd", loss="mse", run_eagerly=True)
    model.fit(rng.random((32, 64), dtype=np.float32), rng.random((32, 10), dtype=np.float32), verbose=0)
    assert not _train_plans(model) and model.run_eagerly


def test_jit_compile_chooses_planned_steps_as_keras_chooses_xla():
    rng = np.random.default_rng(14)
    x, y = rng.random((32, 64), dtype=np.float32), rng.random((32, 10), dtype=np.float32)
    results = {}
    for jit in ("auto", True, False):
        model = _seed_model()
        model.set_weights([np.full(w.shape, 0.01 * (i + 1), np.float32) for i, w in enumerate(model.get_weights())])
        model.compile(optimizer="rmsprop", loss="categorical_crossentropy", jit_compile=jit)
        assert model.jit_compile is (jit is not False)
        history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
        assert bool(_train_plans(model)) is (jit is not False)
        results[jit] = (history.history["loss"], model.get_weights())
    # the planned and the op-by-op steps give the same bits
    for jit in (True, False):
        assert results[jit][0] == results["auto"][0]
        for a, b in zip(results[jit][1], results["auto"][1]):
            np.testing.assert_array_equal(a, b)
    model = _seed_model()
    model.compile(optimizer="sgd", loss="mse", run_eagerly=True)
    assert model.jit_compile is False
    with pytest.warns(UserWarning, match="jit_compile"):
        model.compile(optimizer="sgd", loss="mse", run_eagerly=True, jit_compile=True)
    assert model.jit_compile is False
    with pytest.raises(ValueError, match="jit_compile"):
        model.compile(optimizer="sgd", loss="mse", jit_compile="xla")


def test_plan_summary_prints_the_whole_step():
    rng = np.random.default_rng(11)
    model = _seed_model()
    with pytest.raises(ValueError, match="no train plan"):
        model.plan_summary()
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy")
    model.fit(rng.random((64, 64), dtype=np.float32), rng.random((64, 10), dtype=np.float32),
              batch_size=32, verbose=0)
    lines = []
    model.plan_summary(print_fn=lines.append)
    text = "\n".join(lines)
    for expected in ("Forward:", "Backward", "Kept for the backward", "mean_loss", "dense", "Update:"):
        assert expected in text


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adagrad", "nadam", "adamw", "lion",
                                       {"class_name": "SGD", "config": {"momentum": 0.9, "clipnorm": 1.0}},
                                       "loss_scale"])
def test_optimizers_update_identically_through_the_plan(optimizer):
    """The plan's update (Optimizer._planned_update, or apply where the configuration needs it)
    gives apply's numbers: every optimizer kind, clipping, a loss-scale wrapper."""
    from engine import optimizers

    def make():
        if optimizer == "loss_scale":
            return optimizers.LossScaleOptimizer(optimizers.SGD(0.1))
        return optimizers.get(optimizer)
    rng = np.random.default_rng(14)
    x = rng.random((48, 64), dtype=np.float32)
    y = rng.random((48, 10), dtype=np.float32)
    models = _twins(_seed_model, lambda: dict(optimizer=make(), loss="categorical_crossentropy"))
    _assert_same(models, _fit_both(models, x, y, batch_size=16))


def _assert_same_optimizer_state(models):
    for a, b in zip(models[0].optimizer.variables, models[1].optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a._value), np.asarray(b._value))


def _fused(model):
    tvars = model.trainable_weights
    return model.optimizer._fused_step(tvars, [v._value for v in tvars])


@pytest.mark.parametrize("make", [
    lambda: optimizers.RMSprop(),
    lambda: optimizers.RMSprop(momentum=0.5, centered=True),
    lambda: optimizers.SGD(0.05),
    lambda: optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    lambda: optimizers.Adam(amsgrad=True),
    lambda: optimizers.Adagrad(0.05),
], ids=["rmsprop", "rmsprop-momentum-centered", "sgd", "sgd-nesterov", "adam-amsgrad", "adagrad"])
def test_planned_fit_with_the_fused_update_matches_apply(make):
    """The plan's update of all variables in one kernel call (optimizer_step.FusedUpdate) gives
    apply's per-variable numbers, weights and optimizer state."""
    models = _twins(_seed_model, lambda: dict(optimizer=make(), loss="categorical_crossentropy"))
    _assert_same(models, _fit_both(models, *_fit_data()))
    _assert_same_optimizer_state(models)
    assert _fused(models[0]) is not None


def test_an_overridden_update_step_is_not_fused():
    class HalfSGD(optimizers.SGD):
        def update_step(self, g, var, w, lr, step):
            w -= np.float32(0.5 * lr) * g
    models = _twins(_seed_model, lambda: dict(optimizer=HalfSGD(0.1), loss="categorical_crossentropy"))
    _assert_same(models, _fit_both(models, *_fit_data()))
    assert _fused(models[0]) is None


def test_a_rule_changed_during_fit_leaves_the_fused_update():
    """A callback turning on RMSprop's momentum (a state buffer the fused update was not made
    with) gets apply's numbers: the step falls back to the per-variable update."""
    models = _twins(_seed_model, lambda: dict(optimizer=optimizers.RMSprop(), loss="categorical_crossentropy"))
    _fit_both(models, *_fit_data())
    for m in models:
        m.optimizer.momentum = 0.5
    _assert_same(models, _fit_both(models, *_fit_data(12)))
    _assert_same_optimizer_state(models)


def test_embedding_row_gradients_next_to_fused_dense_ones():
    """A table's gradient by rows is left by the fused update to update_step's row kernel."""
    def build():
        inputs = Input(shape=(5,), dtype="int32")
        x = layers.GlobalAveragePooling1D()(layers.Embedding(20, 8)(inputs))
        return Model(inputs, layers.Dense(3, activation="softmax")(x))
    rng = np.random.default_rng(4)
    x = rng.integers(0, 20, (40, 5)).astype(np.int32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 40)]
    models = _twins(build, dict(optimizer="adam", loss="categorical_crossentropy"))
    _assert_same(models, _fit_both(models, x, y, batch_size=8))
    _assert_same_optimizer_state(models)


def _fit_data(seed=3, n=48):
    rng = np.random.default_rng(seed)
    return rng.random((n, 64), dtype=np.float32), rng.random((n, 10), dtype=np.float32)


def test_a_trace_ignores_other_threads_ops():
    """Ops a data worker runs in another thread while a step is traced are not steps of it."""
    import threading
    from engine import autodiff
    model = _seed_model()
    tracer = plan_module.Tracer(model, 4)
    tracer.begin("segment")
    autodiff._tracers.append(tracer)
    try:
        worker = threading.Thread(target=lambda: (ops.add(np.ones(3), 1.0), ops.argmax(np.ones(3))))
        worker.start()
        worker.join()
        ops.add(np.ones(3), 2.0)
    finally:
        autodiff._tracers.remove(tracer)
    assert len(tracer.pending) == 1 and tracer.reason is None


def test_attention_and_layer_normalization_inside_a_plan():
    def build():
        inputs = Input(shape=(6, 8))
        att = layers.MultiHeadAttention(num_heads=2, key_dim=4)(inputs, inputs)
        x = layers.LayerNormalization()(layers.Add()([inputs, att]))
        x = layers.GlobalAveragePooling1D()(layers.Dense(8, activation="gelu")(x))
        return Model(inputs, layers.Dense(3, activation="softmax")(x))
    rng = np.random.default_rng(15)
    x = rng.standard_normal((24, 6, 8)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 24)]
    models = _twins(build, dict(optimizer="adam", loss="categorical_crossentropy"))
    _assert_same(models, _fit_both(models, x, y, batch_size=8))
    assert not _opaque_labels(_train_plans(models[0])[0])     # MultiHeadAttention is audited
    _assert_same_predictions(models, x[:5])


def test_a_batch_generic_plan_serves_other_batch_sizes_and_falls_back_when_it_is_not():
    """A step whose trace holds nothing computed from the batch size replays on batches of another
    size (the last batch, a later fit with another batch_size) bit for bit as the unplanned step;
    one that records the batch size (sample weights: the weighted mean divides by the count, a
    constant; Flatten / Reshape: a shape attribute) is traced once per size, as before."""
    rng = np.random.default_rng(5)
    x = rng.random((90, 64), dtype=np.float32)
    y = rng.random((90, 10), dtype=np.float32)
    sw = rng.random(90).astype(np.float32)
    models = _twins(_seed_model, dict(optimizer="adam", loss="categorical_crossentropy", metrics=["acc"]))
    _assert_same(models, _fit_both(models, x, y, batch_size=32))
    _assert_same(models, _fit_both(models, x, y, epochs=1, batch_size=20))
    plans = _train_plans(models[0])
    assert len(plans) == 4 and all(p is plans[0] for p in plans) and plans[0].batch == 32   # 32, 26, 20, 10
    models = _twins(_seed_model, dict(optimizer="adam", loss="categorical_crossentropy"))
    _assert_same(models, _fit_both(models, x, y, batch_size=32, sample_weight=sw))
    plans = _train_plans(models[0])
    assert sorted(p.batch for p in plans) == [26, 32] and not any(p.batch_generic for p in plans)

    def build():
        inputs = Input(shape=(6,))
        h = layers.Flatten()(layers.Reshape((2, 3))(inputs))
        return Model(inputs, layers.Dense(2)(h))
    x2 = rng.random((10, 6), dtype=np.float32)
    y2 = rng.random((10, 2), dtype=np.float32)
    models = _twins(build, dict(optimizer="sgd", loss="mse"))
    _assert_same(models, _fit_both(models, x2, y2, batch_size=4))
    plans = _train_plans(models[0])
    assert sorted(p.batch for p in plans) == [2, 4] and not any(p.batch_generic for p in plans)


def test_batch_generic_needs_every_array_batched_and_no_batch_sized_values():
    """The rules of Plan.batch_generic on hand-made traces: a constant or an attribute that is a
    multiple of the batch size, a slice attribute, or a batch of one make a plan batch-specific."""
    class _T:
        batch = 8

    def plan_with(kinds, shapes, attrs):
        p = object.__new__(plan_module.Plan)
        p.kind, p.kinds, p.shapes = "train", kinds, shapes
        p.steps = [plan_module._Step(None, attrs, (), (), False, "op")]
        return p

    base_kinds, base_shapes = ["input", "target", "value"], [(8, 3), (8, 1), (8, 1)]
    assert plan_with(base_kinds, base_shapes, {"activation": "relu", "axis": -1})._batch_generic(_T)
    assert plan_with(base_kinds, base_shapes, {"slope": 0.3, "pads": (1, 1)})._batch_generic(_T)
    for attrs in ({"shape": (8, -1)}, {"shape": (-1, 24)}, {"key": slice(0, 3)}, {"a": np.ones(3)},
                  {"scale": 0.125}, {"scale": 16.0}):
        assert not plan_with(base_kinds, base_shapes, attrs)._batch_generic(_T), attrs
    assert not plan_with(base_kinds + ["const"], base_shapes + [()], {})._batch_generic(_T)
    assert not plan_with(["input", "target"], [(8, 3), (4, 1)], {})._batch_generic(_T)
    _T.batch = 1
    assert not plan_with(base_kinds, [(1, 3), (1, 1), (1, 1)], {})._batch_generic(_T)
