"""The planned step's fast paths: the fused optimizer update (optimizer_step.FusedUpdate, one
kernel call for every variable; inside fit it is tested in test_plan.py) and predict's one-batch
path through the forward plan (plan.predict_batch). Each gives the slow path's numbers bit for
bit, and steps aside when it does not apply."""
import numpy as np
import pytest

from engine import GradientTape, Input, callbacks, layers
from engine import random as engine_random
from engine._kernels import optimizer_step as K
from engine.models import Model
from engine.models import plan as plan_module


def _seed_model():
    inputs = Input(shape=(64,))
    x = layers.Dense(32, activation="relu")(inputs)
    x = layers.Dense(32, activation="relu")(x)
    return Model(inputs, layers.Dense(10, activation="softmax")(x))


# -- FusedUpdate against the per-variable kernels ------------------------------------------------
_SHAPES = [(7, 5), (5,), (33, 17), (1,)]

# rule -> (per-variable call, number of state buffers, flag, (lr, a, b, eps))
_RULES = {
    "sgd": (lambda w, g, s, p, flag: K.sgd_update(w, g, p[0]), 0, False, (0.1, 0.0, 0.0, 0.0)),
    "momentum": (lambda w, g, s, p, flag: K.sgd_momentum_update(w, g, s[0], p[0], p[1], flag), 1, False,
                 (0.1, 0.9, 0.0, 0.0)),
    "nesterov": (lambda w, g, s, p, flag: K.sgd_momentum_update(w, g, s[0], p[0], p[1], flag), 1, True,
                 (0.1, 0.9, 0.0, 0.0)),
    "rmsprop": (lambda w, g, s, p, flag: K.rmsprop_update(w, g, s[0], p[0], p[1], p[3], 0.0, None, False, None),
                1, False, (0.01, 0.9, 0.0, 1e-7)),
    "rmsprop_momentum_centered": (
        lambda w, g, s, p, flag: K.rmsprop_update(w, g, s[0], p[0], p[1], p[3], p[2], s[1], True, s[2]),
        3, False, (0.01, 0.9, 0.5, 1e-7)),
    "adam": (lambda w, g, s, p, flag: K.adam_update(w, g, s[0], s[1], p[0], p[1], p[2], p[3]), 2, False,
             (0.01, 0.9, 0.999, 1e-7)),
    "amsgrad": (lambda w, g, s, p, flag: K.adam_update(w, g, s[0], s[1], p[0], p[1], p[2], p[3], s[2]), 3,
                False, (0.01, 0.9, 0.999, 1e-7)),
    "adagrad": (lambda w, g, s, p, flag: K.adagrad_update(w, g, s[0], p[0], p[3]), 1, False,
                (0.01, 0.0, 0.0, 1e-7)),
}
_KERNEL_RULE = {"nesterov": "momentum", "rmsprop_momentum_centered": "rmsprop", "amsgrad": "adam"}


def _state(rng, dtype, n_state):
    ws = [rng.standard_normal(s).astype(dtype) for s in _SHAPES]
    states = [[rng.random(s).astype(dtype) for s in _SHAPES] for _ in range(n_state)]
    return ws, states


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(_RULES))
def test_fused_update_matches_the_per_variable_kernels(name, dtype):
    per_variable, n_state, flag, params = _RULES[name]
    rng = np.random.default_rng(0)
    ws, states = _state(rng, dtype, n_state)
    ref_ws, ref_states = [w.copy() for w in ws], [[s.copy() for s in lst] for lst in states]
    fused = K.FusedUpdate(_KERNEL_RULE.get(name, name), ws, *states, flag=flag)
    assert len(fused) == len(ws)
    for step in range(3):
        grads = [rng.standard_normal(s).astype(dtype) for s in _SHAPES]
        grads[1] = None if step == 1 else grads[1]           # no gradient: the variable stays
        assert fused(grads, *params) == []
        for i, g in enumerate(grads):
            if g is not None:
                per_variable(ref_ws[i], g, [lst[i] for lst in ref_states], params, flag)
        for a, b in zip(ws + [s for lst in states for s in lst],
                        ref_ws + [s for lst in ref_states for s in lst]):
            np.testing.assert_array_equal(a, b)


def test_fused_update_converts_gradients_and_leaves_rows_to_the_caller():
    rng = np.random.default_rng(1)
    ws, (vel,) = _state(rng, np.float32, 1)
    ref_ws, ref_vel = [w.copy() for w in ws], [v.copy() for v in vel]
    fused = K.FusedUpdate("rmsprop", ws, vel)
    wide = rng.standard_normal((7, 10))                       # float64, and a strided view
    grads = [wide[:, ::2], rng.standard_normal(5).astype(np.float32), ("rows", "order", "start"), None]
    assert fused(grads, 0.01, 0.9, 0.0, 1e-7) == [2]
    K.rmsprop_update(ref_ws[0], np.ascontiguousarray(wide[:, ::2], dtype=np.float32), ref_vel[0],
                     0.01, 0.9, 1e-7, 0.0, None, False, None)
    K.rmsprop_update(ref_ws[1], grads[1], ref_vel[1], 0.01, 0.9, 1e-7, 0.0, None, False, None)
    for a, b in zip(ws + vel, ref_ws + ref_vel):
        np.testing.assert_array_equal(a, b)


def test_fused_update_rejects_what_it_cannot_run():
    rng = np.random.default_rng(2)
    ws, (vel,) = _state(rng, np.float32, 1)
    with pytest.raises(ValueError, match="rule must be one of"):
        K.FusedUpdate("lion", ws)
    with pytest.raises(ValueError, match="one FusedUpdate per dtype"):
        K.FusedUpdate("sgd", [ws[0], ws[1].astype(np.float64)])
    with pytest.raises(ValueError, match="has shape"):
        K.FusedUpdate("rmsprop", ws, [v.T.copy() for v in vel[:1]] + vel[1:])
    with pytest.raises(ValueError, match="s1 has 1 buffers for 4 variables"):
        K.FusedUpdate("rmsprop", ws, vel[:1])
    fused = K.FusedUpdate("sgd", ws)
    with pytest.raises(ValueError, match="3 gradients for 4 variables"):
        fused([None] * 3, 0.1)
    with pytest.raises(ValueError, match="gradient 0 has shape"):
        fused([np.zeros((5, 7), np.float32), None, None, None], 0.1)


# -- predict's one-batch path ------------------------------------------------------------------------
def _data(seed, n):
    rng = np.random.default_rng(seed)
    return rng.random((n, 64), dtype=np.float32), rng.random((n, 10), dtype=np.float32)


def _trained(seed=5):
    engine_random.set_seed(seed)
    m = _seed_model()
    m.compile(optimizer="rmsprop", loss="categorical_crossentropy")
    m.fit(*_data(seed, 48), epochs=1, batch_size=16, verbose=0)
    return m


def _slow_predict(model, x):
    """predict through the batching and callback machinery (a callback turns the fast path off)."""
    return model.predict(x, verbose=0, callbacks=[callbacks.Callback()])


def test_predict_one_batch_matches_the_batched_path_and_the_unplanned_model():
    model = _trained()
    unplanned = _trained()
    unplanned.plan_enabled = False
    x = _data(6, 32)[0]
    for n in (1, 7, 32):
        first = model.predict(x[:n], verbose=0)              # traces the forward plan
        fast = model.predict(x[:n], verbose=0)               # replays it
        assert plan_module.predict_batch(model, x[:n]) is not None
        for other in (first, _slow_predict(model, x[:n]), unplanned.predict(x[:n], verbose=0)):
            np.testing.assert_array_equal(fast, other)
        assert fast.dtype == np.float32 and fast.shape == (n, 10) and fast.flags.writeable


def test_predict_outputs_are_the_callers_own_arrays():
    inputs = Input(shape=(4,))
    model = Model(inputs, [inputs, layers.Dense(2)(inputs)])       # an output that is the input
    x = np.random.default_rng(7).random((3, 4), dtype=np.float32)
    model.predict(x, verbose=0)
    same, dense = model.predict(x, verbose=0)
    assert plan_module.predict_batch(model, x) is not None
    assert not np.shares_memory(same, x)
    np.testing.assert_array_equal(same, x)
    dense[...] = 0                                                 # writing the result changes nothing
    np.testing.assert_array_equal(model.predict(x, verbose=0)[1], _slow_predict(model, x)[1])


def test_predict_clears_losses_left_by_earlier_calls_as_the_model_call_does():
    model = _trained()
    x = _data(8, 4)[0]
    model.predict(x, verbose=0)
    model.layers[1]._losses.append(np.float32(1.0))
    model.predict(x, verbose=0)
    assert model.losses == []


@pytest.mark.parametrize("case", ["float64", "strided", "first call", "under a tape", "two inputs",
                                  "plans off"])
def test_predict_batch_steps_aside(case):
    model = _trained()
    x = _data(9, 4)[0]
    model.predict(x, verbose=0)
    if case == "float64":
        x = x.astype(np.float64)
    elif case == "strided":
        x = np.asfortranarray(x)
    elif case == "first call":
        x = x[:3]
    elif case == "plans off":
        model.plan_enabled = False
    elif case == "two inputs":
        a, b = Input(shape=(2,)), Input(shape=(2,))
        model = Model([a, b], layers.Add()([a, b]))
        model.predict([x[:, :2], x[:, 2:4]], verbose=0)
        assert plan_module.predict_batch(model, x[:, :2]) is None
        return
    if case == "under a tape":
        with GradientTape():
            assert plan_module.predict_batch(model, x) is None
        return
    assert plan_module.predict_batch(model, x) is None
    np.testing.assert_array_equal(model.predict(x, verbose=0), _slow_predict(model, x))


def test_predict_fast_path_is_not_taken_with_callbacks_generators_dicts_or_predict_step(monkeypatch):
    model = _trained()
    x = _data(10, 4)[0]
    expected = model.predict(x, verbose=0)
    calls = []
    real = plan_module.predict_batch
    monkeypatch.setattr(plan_module, "predict_batch", lambda m, a: calls.append(1) or real(m, a))
    seen = []
    cb = callbacks.LambdaCallback(on_predict_batch_end=lambda batch, logs: seen.append(batch))
    np.testing.assert_array_equal(model.predict(x, verbose=0, callbacks=[cb]), expected)
    np.testing.assert_array_equal(model.predict((b for b in [x]), verbose=0), expected)
    np.testing.assert_array_equal(model.predict({model.inputs[0].name: x}, verbose=0), expected)
    assert seen == [0] and calls == []
    np.testing.assert_array_equal(model.predict(x, verbose=0), expected)
    assert calls == [1]

    class Doubled(Model):
        def predict_step(self, data):
            return super().predict_step(data) * 2.0
    inputs = Input(shape=(64,))
    doubled = Doubled(inputs, model(inputs))
    calls.clear()
    np.testing.assert_allclose(doubled.predict(x, verbose=0), 2.0 * expected)
    assert calls == []


@pytest.mark.parametrize("layer", ["dropout", "noise", "flip"])
def test_predict_with_training_dependent_layers_matches_the_slow_path(layer):
    """Layers that draw random numbers when training (opaque steps of the plan) are inactive in
    predict on both paths, even called outside any training scope."""
    make = {"dropout": lambda: layers.Dropout(0.5), "noise": lambda: layers.GaussianNoise(1.0),
            "flip": lambda: layers.RandomFlip("horizontal", seed=1)}[layer]
    inputs = Input(shape=(4, 4, 3))
    x = layers.Flatten()(make()(inputs))
    model = Model(inputs, layers.Dense(3)(x))
    data = np.random.default_rng(11).random((5, 4, 4, 3), dtype=np.float32)
    engine_random.set_seed(3)
    expected = _slow_predict(model, data)
    model.predict(data, verbose=0)
    fast = model.predict(data, verbose=0)
    assert plan_module.predict_batch(model, data) is not None
    np.testing.assert_array_equal(fast, expected)
    np.testing.assert_array_equal(model.predict(data, verbose=0), fast)

