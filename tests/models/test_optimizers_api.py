"""Keras 3's optimizers and schedules: update rules written out in float64 numpy and run over
several steps; the base pipeline (clipping, weight decay, EMA, gradient accumulation, loss
scaling); state order; configs; and Keras's own numbers where Keras is installed."""
import json
import math
import os
import re

import numpy as np
import pytest

from engine import Variable, optimizers
from engine.optimizers import schedules
from engine.saving import deserialize_keras_object, serialize_keras_object

rng = np.random.default_rng(0)
W0 = rng.standard_normal((3, 4))
B0 = rng.standard_normal((4,))
GRADS = [(rng.standard_normal((3, 4)), rng.standard_normal((4,))) for _ in range(4)]


def f32(x):
    """A learning rate as Keras holds it: in a float32 variable."""
    return float(np.float32(x))


def run(opt, steps=4, dtype="float64"):
    w, b = Variable(W0.astype(dtype), name="w"), Variable(B0.astype(dtype), name="b")
    for gw, gb in GRADS[:steps]:
        opt.apply([gw.astype(dtype), gb.astype(dtype)], [w, b])
    return w.numpy(), b.numpy()


def each(params, step_fn, state_names, steps=4, **state_init):
    """Run a per-variable update rule step_fn(p, g, state, t) over both variables."""
    out = []
    for p0, k in ((W0, 0), (B0, 1)):
        p = p0.copy()
        state = {n: np.full_like(p0, state_init.get(n, 0.0)) for n in state_names}
        for t, grads in enumerate(GRADS[:steps], start=1):
            p = step_fn(p, grads[k], state, t)
        out.append(p)
    return out


def nadam_ref(lr=0.001, b1=0.9, b2=0.999, eps=1e-7):
    u_product = 1.0
    ws = [W0.copy(), B0.copy()]
    ms = [np.zeros_like(W0), np.zeros_like(B0)]
    vs = [np.zeros_like(W0), np.zeros_like(B0)]
    for t, grads in enumerate(GRADS, start=1):
        u_t = b1 * (1 - 0.5 * 0.96 ** t)
        u_next = b1 * (1 - 0.5 * 0.96 ** (t + 1))
        u_product = u_product * u_t
        for i, g in enumerate(grads):
            ms[i] = b1 * ms[i] + (1 - b1) * g
            vs[i] = b2 * vs[i] + (1 - b2) * g * g
            m_hat = u_next * ms[i] / (1 - u_product * u_next) + (1 - u_t) * g / (1 - u_product)
            v_hat = vs[i] / (1 - b2 ** t)
            ws[i] = ws[i] - lr * m_hat / (np.sqrt(v_hat) + eps)
    return ws


def adamax_step(p, g, s, t, lr=0.001, b1=0.9, b2=0.999, eps=1e-7):
    s["m"] = b1 * s["m"] + (1 - b1) * g
    s["u"] = np.maximum(b2 * s["u"], np.abs(g))
    return p - lr * s["m"] / ((1 - b1 ** t) * (s["u"] + eps))


def adadelta_step(p, g, s, t, lr=0.001, rho=0.95, eps=1e-7):
    s["ag"] = rho * s["ag"] + (1 - rho) * g * g
    delta = -np.sqrt(s["ad"] + eps) * g / np.sqrt(s["ag"] + eps)
    s["ad"] = rho * s["ad"] + (1 - rho) * delta * delta
    return p + lr * delta


def ftrl_step(p, g, s, t, lr=0.001, power=-0.5, l1=0.01, l2=0.02, shrink=0.03, beta=0.1):
    l2_total = l2 + beta / (2 * lr)
    g_shrunk = g + 2 * shrink * p
    new_acc = s["acc"] + g * g
    s["lin"] = s["lin"] + g_shrunk - (new_acc ** -power - s["acc"] ** -power) / lr * p
    quadratic = new_acc ** -power / lr + 2 * l2_total
    s["acc"] = new_acc
    return (np.clip(s["lin"], -l1, l1) - s["lin"]) / quadratic


def lion_step(p, g, s, t, lr=0.001, b1=0.9, b2=0.99):
    p = p - lr * np.sign(b1 * s["m"] + (1 - b1) * g)
    s["m"] = b2 * s["m"] + (1 - b2) * g
    return p


def lamb_step(p, g, s, t, lr=0.001, b1=0.9, b2=0.999, eps=1e-7):
    s["m"] = b1 * s["m"] + (1 - b1) * g
    s["v"] = b2 * s["v"] + (1 - b2) * g * g
    update = (s["m"] / (1 - b1 ** t)) / (np.sqrt(s["v"] / (1 - b2 ** t)) + eps)
    wn, un = np.linalg.norm(p), np.linalg.norm(update)
    return p - (wn / un if wn > 0 and un > 0 else 1.0) * lr * update


def adafactor_ref(lr=0.001, decay=-0.8, eps1=1e-30, eps2=1e-3, clip=1.0):
    out = []
    for p0, k in ((W0, 0), (B0, 1)):
        p = p0.copy()
        r, c, v = np.zeros(p.shape[:-1]), np.zeros(p.shape[-1:]), np.zeros_like(p)
        for t, grads in enumerate(GRADS, start=1):
            g = grads[k]
            rho = min(lr, 1 / math.sqrt(t))
            alpha = max(eps2, np.sqrt(np.mean(p * p))) * rho
            sq = g * g + eps1
            beta = 1 - t ** decay
            if p.ndim == 2:
                r = beta * r + (1 - beta) * sq.mean(-1)
                c = beta * c + (1 - beta) * sq.mean(-2)
                v = np.outer(r / r.mean(), c)
            else:
                v = beta * v + (1 - beta) * sq
            u = g / np.sqrt(v)
            p = p - alpha * u / max(1.0, np.sqrt(np.mean(u * u)) / clip)
        out.append(p)
    return out


def schedule_free_ref(lr=0.0025, b1=0.9, b2=0.999, eps=1e-8, warmup=2):
    out = []
    for p0, k in ((W0, 0), (B0, 1)):
        y, z, v = p0.copy(), p0.copy(), np.zeros_like(p0)
        for t, grads in enumerate(GRADS, start=1):
            g = grads[k]
            step_lr = lr * min(t / warmup, 1.0)
            v = b2 * v + (1 - b2) * g * g
            z_old = z
            z = z - step_lr * g / (np.sqrt(v / (1 - b2 ** t)) + eps)
            x_old = (y - (1 - b1) * z_old) / b1
            x_new = (1 - 1 / t) * x_old + z / t
            y = (1 - b1) * z + b1 * x_new
        out.append(y)
    return out


def muon_ref(lr=0.01, mom=0.95, wd=0.004, adam_wd=0.004, b1=0.9, b2=0.999, eps=1e-7, a=3.4445, b=-4.775, c=2.0315):
    w, bias = W0.copy(), B0.copy()
    mw, mb, vb = np.zeros_like(W0), np.zeros_like(B0), np.zeros_like(B0)
    for t, (gw, gb) in enumerate(GRADS, start=1):
        w = w - w * wd * lr
        bias = bias - bias * adam_wd * lr
        mw = mw + gw + mw * (mom - 1)
        x = (gw + mom * mw).T          # 3x4 is wide: no transpose needed; check the wide branch
        x = x.T
        x = x / (np.linalg.norm(x) + 1e-7)
        for _ in range(5):
            gram = x @ x.T
            x = a * x + (b * gram + c * gram @ gram) @ x
        w = w - lr * x * math.sqrt(4) * 0.2
        alpha = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        mb = mb + (gb - mb) * (1 - b1)
        vb = vb + (gb * gb - vb) * (1 - b2)
        bias = bias - mb * alpha / (np.sqrt(vb) + eps)
    return w, bias


RULES = {
    "Nadam": (lambda: optimizers.Nadam(), nadam_ref),
    "Adamax": (lambda: optimizers.Adamax(), lambda: each(None, adamax_step, ["m", "u"])),
    "Adadelta": (lambda: optimizers.Adadelta(), lambda: each(None, adadelta_step, ["ag", "ad"])),
    "Ftrl": (lambda: optimizers.Ftrl(l1_regularization_strength=0.01, l2_regularization_strength=0.02,
                                     l2_shrinkage_regularization_strength=0.03, beta=0.1),
             lambda: each(None, ftrl_step, ["acc", "lin"], acc=0.1)),
    "Lion": (lambda: optimizers.Lion(), lambda: each(None, lion_step, ["m"])),
    "Lamb": (lambda: optimizers.Lamb(), lambda: each(None, lamb_step, ["m", "v"])),
    "Adafactor": (lambda: optimizers.Adafactor(), adafactor_ref),
    "ScheduleFreeAdamW": (lambda: optimizers.ScheduleFreeAdamW(warmup_steps=2), schedule_free_ref),
    "Muon": (lambda: optimizers.Muon(learning_rate=0.01), muon_ref),
}


@pytest.mark.parametrize("name", sorted(RULES))
def test_update_rules_over_several_steps(name):
    make, ref = RULES[name]
    got = run(make())
    for g, r in zip(got, ref()):
        np.testing.assert_allclose(g, r, rtol=1e-8, atol=1e-10)


def adam_ref_pair(lr=f32(0.001), b1=0.9, b2=0.999, eps=1e-7, grads=None, wd=None):
    out = []
    for p0, k in ((W0, 0), (B0, 1)):
        p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
        for t, gs in enumerate(grads, start=1):
            g = gs[k]
            if wd:
                p = p - p * wd * lr
            alpha = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            m = m + (g - m) * (1 - b1)
            v = v + (g * g - v) * (1 - b2)
            p = p - alpha * m / (np.sqrt(v) + eps)
        out.append(p)
    return out


def test_clipping_formulas():
    clip = 0.7
    clipped = [tuple(g * clip / max(np.linalg.norm(g), clip) for g in pair) for pair in GRADS]
    for got, ref in zip(run(optimizers.Adam(clipnorm=clip)), adam_ref_pair(grads=clipped)):
        np.testing.assert_allclose(got, ref, rtol=1e-9)
    glob = []
    for pair in GRADS:
        norm = math.sqrt(sum(np.sum(g * g) for g in pair))
        glob.append(tuple(g * clip * min(1 / norm, 1 / clip) for g in pair))
    for got, ref in zip(run(optimizers.Adam(global_clipnorm=clip)), adam_ref_pair(grads=glob)):
        np.testing.assert_allclose(got, ref, rtol=1e-9)
    by_value = [tuple(np.clip(g, -0.5, 0.5) for g in pair) for pair in GRADS]
    for got, ref in zip(run(optimizers.Adam(clipvalue=0.5)), adam_ref_pair(grads=by_value)):
        np.testing.assert_allclose(got, ref, rtol=1e-9)


def test_weight_decay_and_exclusion():
    opt = optimizers.Adam(weight_decay=0.1)
    opt.exclude_from_weight_decay(var_names=["b"])
    got = run(opt)
    np.testing.assert_allclose(got[0], adam_ref_pair(grads=GRADS, wd=0.1)[0], rtol=1e-9)
    np.testing.assert_allclose(got[1], adam_ref_pair(grads=GRADS)[1], rtol=1e-9)


def test_gradient_accumulation_averages_and_steps_every_n_calls():
    opt = optimizers.Adam(gradient_accumulation_steps=2)
    averaged = [tuple((a + b) / 2 for a, b in zip(GRADS[i], GRADS[i + 1])) for i in (0, 2)]
    got = run(opt)
    for g, r in zip(got, adam_ref_pair(grads=averaged)):
        np.testing.assert_allclose(g, r, rtol=1e-9)
    assert int(opt._iterations.numpy()) == 4 and int(opt.iterations.numpy()) == 2
    one = run(optimizers.Adam(gradient_accumulation_steps=2), steps=1)
    np.testing.assert_array_equal(one[0], W0)   # nothing applied before the second call


def test_ema_tracks_and_overwrites_every_n_steps():
    opt = optimizers.SGD(0.1, use_ema=True, ema_momentum=0.5, ema_overwrite_frequency=3)
    w = Variable(W0.copy(), name="w")
    ref_w, avg = W0.copy(), None
    for i, (g, _) in enumerate(GRADS[:3]):
        opt.apply([g], [w])
        ref_w = ref_w - f32(0.1) * g
        avg = ref_w.copy() if avg is None else 0.5 * avg + 0.5 * ref_w
        if (i + 1) % 3 == 0:
            ref_w = avg.copy()
    np.testing.assert_allclose(w.numpy(), ref_w, rtol=1e-6)
    opt2 = optimizers.SGD(0.1, use_ema=True, ema_momentum=0.9)
    w2 = Variable(W0.copy(), name="w")
    for g, _ in GRADS:
        opt2.apply([g], [w2])
    before = w2.numpy()
    opt2.finalize_variable_values([w2])
    assert not np.allclose(before, w2.numpy())


def test_loss_scale_factor_divides_gradients_and_scale_loss_multiplies():
    opt = optimizers.SGD(0.1, loss_scale_factor=4.0)
    assert float(opt.scale_loss(2.0)) == 8.0
    w = Variable(W0.copy())
    opt.apply([GRADS[0][0] * 4.0], [w])
    with pytest.warns(UserWarning, match="scale_loss"):   # gradients of a loss that was not scaled
        optimizers.SGD(0.1, loss_scale_factor=4.0).apply([GRADS[0][0]], [Variable(W0.copy())])
    np.testing.assert_allclose(w.numpy(), W0 - f32(0.1) * GRADS[0][0], rtol=1e-9)


def test_loss_scale_optimizer_skips_non_finite_steps_and_grows_the_scale():
    opt = optimizers.LossScaleOptimizer(optimizers.SGD(0.1), initial_scale=8.0, dynamic_growth_steps=2)
    w = Variable(W0.copy())
    opt.scale_loss(1.0)
    opt.apply([np.full_like(W0, np.inf)], [w])
    np.testing.assert_array_equal(w.numpy(), W0)
    assert float(opt.dynamic_scale.numpy()) == 4.0
    opt.scale_loss(1.0)
    opt.apply([GRADS[0][0] * 4.0], [w])
    np.testing.assert_allclose(w.numpy(), W0 - f32(0.1) * GRADS[0][0], rtol=1e-9)
    opt.scale_loss(1.0)
    opt.apply([GRADS[1][0] * 4.0], [w])
    assert float(opt.dynamic_scale.numpy()) == 8.0
    assert float(opt.scale_loss(1.0)) == 8.0


@pytest.mark.parametrize("planned", [True, False])
@pytest.mark.parametrize("scaled", ["wrapper", "factor"])
def test_fit_scales_the_loss_for_a_loss_scaling_optimizer(planned, scaled):
    """fit takes the gradients of scale_loss(loss) whenever apply divides by a scale, so training
    with a loss scale (a power of two: exact in float32) ends at plain SGD's weights, warning-free."""
    import warnings
    import engine
    from engine import layers

    def train(opt):
        engine.utils.set_random_seed(0)
        model = engine.Sequential([engine.Input((3,)), layers.Dense(2)])
        model.plan_enabled = planned
        model.compile(opt, "mse")
        data = np.random.default_rng(1)
        model.fit(data.standard_normal((16, 3)), data.standard_normal((16, 2)), epochs=2, batch_size=8,
                  verbose=0, shuffle=False)
        return model.get_weights()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = train(optimizers.LossScaleOptimizer(optimizers.SGD(0.1)) if scaled == "wrapper"
                    else optimizers.SGD(0.1, loss_scale_factor=1024.0))
    for g, w in zip(got, train(optimizers.SGD(0.1))):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-7)


def test_multi_optimizer_routes_variables_by_path():
    sgd, adam = optimizers.SGD(0.1), optimizers.Adam()
    multi = optimizers.MultiOptimizer(optimizers.OptimizerMap(sgd, {"b.*": adam}))
    got = run(multi)
    np.testing.assert_allclose(got[0], W0 - f32(0.1) * sum(g for g, _ in GRADS), rtol=1e-9)
    np.testing.assert_allclose(got[1], adam_ref_pair(grads=GRADS)[1], rtol=1e-9)
    with pytest.raises(AttributeError):
        multi.learning_rate  # noqa: B018


def test_state_order_and_round_trip():
    opt = optimizers.Nadam(use_ema=True)
    w, b = Variable(W0.copy(), name="w"), Variable(B0.copy(), name="b")
    opt.apply([GRADS[0][0], GRADS[0][1]], [w, b])
    names = [v.name for v in opt.variables]
    assert names == ["iteration", "learning_rate", "w_average", "b_average", "w_momentum", "w_velocity",
                     "b_momentum", "b_velocity", "variable"]
    state = opt.ordered_state([w, b])
    clone = optimizers.Nadam(use_ema=True)
    clone.load_ordered_state([w, b], state)
    for a, c in zip(state, clone.ordered_state([w, b])):
        np.testing.assert_array_equal(a, c)
    scheduled = optimizers.Adam(schedules.ExponentialDecay(0.1, 10, 0.5))
    assert len(scheduled.ordered_state([w, b])) == 1 + 4   # no learning_rate entry with a schedule


SCHEDULE_CASES = [
    (schedules.ExponentialDecay(0.1, 10, 0.5, staircase=True), lambda s: 0.1 * 0.5 ** (s // 10)),
    (schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]),
     lambda s: 1.0 if s <= 10 else 0.5 if s <= 20 else 0.1),
    (schedules.PolynomialDecay(0.1, 30, 0.01, power=2.0), lambda s: (0.1 - 0.01) * (1 - min(s, 30) / 30) ** 2 + 0.01),
    (schedules.PolynomialDecay(0.1, 10, 0.01, cycle=True),
     lambda s: (0.09) * (1 - s / (10 * max(1, math.ceil(s / 10)))) + 0.01),
    (schedules.InverseTimeDecay(0.1, 5, 0.5), lambda s: 0.1 / (1 + 0.5 * s / 5)),
    (schedules.CosineDecay(0.1, 20, alpha=0.1), lambda s: 0.1 * (0.9 * 0.5 * (1 + math.cos(math.pi * min(s, 20) / 20)) + 0.1)),
    (schedules.CosineDecay(0.0, 20, warmup_target=0.2, warmup_steps=5),
     lambda s: 0.2 * s / 5 if s < 5 else 0.2 * 0.5 * (1 + math.cos(math.pi * (min(s, 25) - 5) / 20))),
    (schedules.CosineDecayRestarts(0.1, 10, t_mul=1.0, m_mul=0.5),
     lambda s: 0.1 * 0.5 ** (s // 10) * 0.5 * (1 + math.cos(math.pi * (s / 10 - s // 10)))),
]


def restarts_ref(s, lr=0.1, first=10, t_mul=2.0, m_mul=0.8):
    fraction = s / first
    i = math.floor(math.log(1 - fraction * (1 - t_mul)) / math.log(t_mul))
    done = (1 - t_mul ** i) / (1 - t_mul)
    fraction = (fraction - done) / t_mul ** i
    return lr * m_mul ** i * 0.5 * (1 + math.cos(math.pi * fraction))


@pytest.mark.parametrize("index", range(len(SCHEDULE_CASES)))
def test_schedules_at_given_steps(index):
    schedule, ref = SCHEDULE_CASES[index]
    for step in (0, 1, 4, 5, 9, 10, 11, 19, 20, 21, 35):
        assert float(schedule(step)) == pytest.approx(ref(step), rel=2e-6, abs=1e-8), step
    geometric = schedules.CosineDecayRestarts(0.1, 10, t_mul=2.0, m_mul=0.8)
    for step in (0, 3, 10, 29, 30, 31, 69, 75):
        assert float(geometric(step)) == pytest.approx(restarts_ref(step), rel=2e-5, abs=1e-8)


def test_optimizer_reads_its_schedule_at_each_step():
    opt = optimizers.SGD(schedules.PiecewiseConstantDecay([1], [1.0, 0.5]))
    w = Variable(np.zeros(2))
    for _ in range(3):
        opt.apply([np.ones(2)], [w])
    np.testing.assert_allclose(w.numpy(), -(1.0 + 1.0 + 0.5) * np.ones(2))


OPTIMIZER_OBJECTS = [optimizers.Nadam(0.01), optimizers.Adamax(beta_2=0.99), optimizers.Adadelta(rho=0.9),
                     optimizers.Ftrl(l1_regularization_strength=0.1), optimizers.Lion(beta_1=0.8),
                     optimizers.Lamb(epsilon=1e-6), optimizers.Adafactor(relative_step=False),
                     optimizers.Muon(exclude_layers=["head"]), optimizers.ScheduleFreeAdamW(warmup_steps=3),
                     optimizers.Adam(use_ema=True, ema_overwrite_frequency=5, gradient_accumulation_steps=3,
                                     loss_scale_factor=2.0),
                     optimizers.LossScaleOptimizer(optimizers.SGD(0.1), initial_scale=64.0),
                     optimizers.SGD(schedules.CosineDecay(0.1, 100, warmup_target=0.2, warmup_steps=10))]


@pytest.mark.parametrize("opt", OPTIMIZER_OBJECTS, ids=lambda o: type(o).__name__)
def test_optimizer_configs_round_trip(opt):
    clone = deserialize_keras_object(json.loads(json.dumps(serialize_keras_object(opt))))
    assert type(clone) is type(opt) and serialize_keras_object(clone) == serialize_keras_object(opt)


def test_arguments_engine_cannot_honour_are_refused():
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        optimizers.Adam(gradient_accumulation_steps=1)
    with pytest.raises(ValueError, match="ema_momentum"):
        optimizers.Adam(use_ema=True, ema_momentum=1.5)
    with pytest.raises(ValueError, match="does not support"):
        optimizers.LossScaleOptimizer(optimizers.SGD(), clipnorm=1.0)
    assert isinstance(optimizers.get("nadam"), optimizers.Nadam)


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    return pytest.importorskip("keras")


KERAS_CASES = [("Nadam", {}), ("Adamax", {}), ("Adadelta", {"learning_rate": 0.5}),
               ("Ftrl", {"l1_regularization_strength": 0.01, "l2_shrinkage_regularization_strength": 0.02}),
               ("Lion", {}), ("Lamb", {}), ("Adafactor", {}), ("ScheduleFreeAdamW", {"warmup_steps": 2}),
               ("Muon", {"learning_rate": 0.01}), ("Adam", {"clipnorm": 0.5}), ("Adam", {"global_clipnorm": 0.5}),
               ("RMSprop", {"clipvalue": 0.3}), ("SGD", {"weight_decay": 0.1, "momentum": 0.9}),
               ("Adam", {"use_ema": True, "ema_momentum": 0.7, "ema_overwrite_frequency": 2}),
               ("Adam", {"gradient_accumulation_steps": 2}), ("SGD", {"loss_scale_factor": 4.0}),
               ("AdamW", {"gradient_accumulation_steps": 2, "use_ema": True})]


@pytest.mark.parametrize("name,kwargs", KERAS_CASES, ids=lambda v: str(v)[:30])
def test_steps_and_state_match_keras(name, kwargs):
    keras = _keras()
    mine = getattr(optimizers, name)(**kwargs)
    theirs = getattr(keras.optimizers, name)(**kwargs)
    w, b = Variable(W0.astype("float32"), name="w"), Variable(B0.astype("float32"), name="b")
    kw, kb = keras.Variable(W0.astype("float32"), name="w"), keras.Variable(B0.astype("float32"), name="b")
    for gw, gb in GRADS:
        mine.scale_loss(1.0)    # (the gradients stand for those of a scaled loss)
        mine.apply([gw.astype("float32"), gb.astype("float32")], [w, b])
        theirs.apply([gw.astype("float32"), gb.astype("float32")], [kw, kb])
    np.testing.assert_allclose(w.numpy(), np.asarray(kw), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b.numpy(), np.asarray(kb), rtol=1e-5, atol=1e-6)
    state = mine.ordered_state([w, b])
    assert [tuple(np.shape(s)) for s in state] == [tuple(v.shape) for v in theirs.variables]
    for mine_v, their_v in zip(state, theirs.variables):
        np.testing.assert_allclose(np.asarray(mine_v, dtype="float64"), np.asarray(their_v, dtype="float64"),
                                   rtol=1e-4, atol=1e-6)
    without_name = lambda c: {k: v for k, v in c.items() if k != "name"}  # noqa: E731 (Keras numbers repeats)
    assert without_name(mine.get_config()) == without_name(theirs.get_config())
    assert mine.name == re.sub(r"_\d+$", "", theirs.name)


def test_schedules_match_keras():
    keras = _keras()
    for schedule, _ in SCHEDULE_CASES:
        theirs = getattr(keras.optimizers.schedules, type(schedule).__name__).from_config(schedule.get_config())
        assert theirs.get_config() == schedule.get_config()
        for step in (0, 3, 10, 17, 40):
            assert float(schedule(step)) == pytest.approx(float(theirs(step)), rel=1e-6, abs=1e-9)


def test_wrapper_state_order_and_configs_match_keras():
    keras = _keras()
    w, b = Variable(W0.astype("float32"), name="w"), Variable(B0.astype("float32"), name="b")
    kw, kb = keras.Variable(W0.astype("float32"), name="w"), keras.Variable(B0.astype("float32"), name="b")
    # (Keras's LossScaleOptimizer cannot apply eagerly on JAX: its state order is compared once built.)
    scaled = optimizers.LossScaleOptimizer(optimizers.Adam(), initial_scale=16.0, dynamic_growth_steps=2)
    their_scaled = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(), initial_scale=16.0,
                                                       dynamic_growth_steps=2)
    their_scaled.build([kw, kb])
    assert [np.shape(s) for s in scaled.ordered_state([w, b])] == [tuple(v.shape) for v in their_scaled.variables]
    assert scaled.get_config()["inner_optimizer"]["class_name"] == "Adam"
    pairs = [
        (optimizers.MultiOptimizer(optimizers.OptimizerMap(optimizers.SGD(0.1, momentum=0.9), {"b": optimizers.Adam()})),
         keras.optimizers.MultiOptimizer(keras.optimizers.OptimizerMap(keras.optimizers.SGD(0.1, momentum=0.9),
                                                                       {"b": keras.optimizers.Adam()}))),
    ]
    for mine, theirs in pairs:
        for gw, gb in GRADS:
            mine.apply([gw.astype("float32"), gb.astype("float32")], [w, b])
            theirs.apply([gw.astype("float32"), gb.astype("float32")], [kw, kb])
        np.testing.assert_allclose(w.numpy(), np.asarray(kw), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b.numpy(), np.asarray(kb), rtol=1e-5, atol=1e-6)
        state = mine.ordered_state([w, b])
        assert [np.shape(s) for s in state] == [tuple(v.shape) for v in theirs.variables]
        for a, t in zip(state, theirs.variables):
            np.testing.assert_allclose(np.asarray(a, dtype="float64"), np.asarray(t, dtype="float64"), rtol=1e-5,
                                       atol=1e-6)


def test_an_optimizer_written_as_keras_documents_it_runs():
    from engine import ops

    class MomentumSGD(optimizers.Optimizer):
        def __init__(self, learning_rate=0.1, momentum=0.9, name="momentum_sgd", **kwargs):
            super().__init__(learning_rate=learning_rate, name=name, **kwargs)
            self.momentum = momentum

        def build(self, var_list):
            if self.built:
                return
            super().build(var_list)
            self.velocities = [self.add_variable_from_reference(v, "velocity") for v in var_list]

        def update_step(self, gradient, variable, learning_rate):
            lr = ops.cast(learning_rate, variable.dtype)
            v = self.velocities[self._get_variable_index(variable)]
            self.assign(v, v * self.momentum - gradient * lr)
            self.assign_add(variable, v)

    opt = MomentumSGD()
    w = Variable(W0.copy(), name="w")
    ref, vel = W0.copy(), np.zeros_like(W0)
    for g, _ in GRADS:
        opt.apply([g], [w])
        vel = 0.9 * vel - f32(0.1) * g
        ref = ref + vel
    np.testing.assert_allclose(w.numpy(), ref, rtol=1e-9)
    assert [v.name for v in opt.variables] == ["iteration", "learning_rate", "w_velocity"]
    assert len(opt.ordered_state([w])) == 3


@pytest.mark.parametrize("name", ["Adamax", "Nadam", "Lion", "Adadelta"])
def test_elementwise_rules_are_bit_exact_with_keras(name):
    keras = _keras()
    w0 = rng.standard_normal((5, 7)).astype("float32")
    grads = [rng.standard_normal((5, 7)).astype("float32") for _ in range(5)]
    mine, theirs = getattr(optimizers, name)(), getattr(keras.optimizers, name)()
    w, kw = Variable(w0.copy()), keras.Variable(w0.copy())
    for g in grads:
        mine.apply([g], [w])
        theirs.apply([g], [kw])
    np.testing.assert_array_equal(w.numpy(), np.asarray(kw))
