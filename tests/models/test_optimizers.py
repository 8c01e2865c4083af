"""Each optimizer's first steps against the Keras 3 update rules written out by hand in numpy."""
import numpy as np
import pytest

from engine import optimizers, Variable

W0 = np.array([[0.5, -1.0, 2.0], [0.0, 0.25, -0.75]])
GRADS = [np.array([[0.1, -0.2, 0.3], [0.0, 1.5, -0.4]]),
         np.array([[-0.3, 0.1, 0.2], [0.7, -0.5, 0.05]]),
         np.array([[0.2, 0.2, -0.1], [-0.1, 0.3, 0.6]])]


def run(opt, dtype):
    v = Variable(W0.astype(dtype))
    for g in GRADS:
        opt.apply([g.astype(dtype)], [v])
    return v.numpy()


def sgd_ref(lr=0.01, momentum=0.0, nesterov=False):
    lr = float(np.float32(lr))  # Keras keeps the learning rate in a float32 variable
    w, m = W0.copy(), np.zeros_like(W0)
    for g in GRADS:
        if momentum:
            m = momentum * m - lr * g
            w = w + (momentum * m - lr * g if nesterov else m)
        else:
            w = w - lr * g
    return w


def rmsprop_ref(lr=0.001, rho=0.9, eps=1e-7, momentum=0.0, centered=False):
    lr = float(np.float32(lr))  # Keras keeps the learning rate in a float32 variable
    w, v, mom, avg = W0.copy(), np.zeros_like(W0), np.zeros_like(W0), np.zeros_like(W0)
    for g in GRADS:
        v = rho * v + (1 - rho) * g * g
        if centered:
            avg = rho * avg + (1 - rho) * g
            denom = v - avg * avg + eps
        else:
            denom = v + eps
        inc = lr * g / np.sqrt(denom)
        if momentum:
            mom = momentum * mom + inc
            w = w - mom
        else:
            w = w - inc
    return w


def adam_ref(lr=0.001, b1=0.9, b2=0.999, eps=1e-7, amsgrad=False):
    lr = float(np.float32(lr))  # Keras keeps the learning rate in a float32 variable
    w, m, v, vhat = W0.copy(), np.zeros_like(W0), np.zeros_like(W0), np.zeros_like(W0)
    for t, g in enumerate(GRADS, start=1):
        alpha = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        if amsgrad:
            vhat = np.maximum(vhat, v)
            w = w - alpha * m / (np.sqrt(vhat) + eps)
        else:
            w = w - alpha * m / (np.sqrt(v) + eps)
    return w


def adagrad_ref(lr=0.001, init=0.1, eps=1e-7):
    lr = float(np.float32(lr))  # Keras keeps the learning rate in a float32 variable
    w, acc = W0.copy(), np.full_like(W0, init)
    for g in GRADS:
        acc = acc + g * g
        w = w - lr * g / np.sqrt(acc + eps)
    return w


CASES = [
    ("sgd", lambda: optimizers.SGD(), sgd_ref()),
    ("sgd_momentum", lambda: optimizers.SGD(0.1, momentum=0.9), sgd_ref(0.1, 0.9)),
    ("sgd_nesterov", lambda: optimizers.SGD(0.1, momentum=0.9, nesterov=True), sgd_ref(0.1, 0.9, True)),
    ("rmsprop", lambda: optimizers.RMSprop(), rmsprop_ref()),
    ("rmsprop_centered_momentum", lambda: optimizers.RMSprop(0.01, momentum=0.5, centered=True),
     rmsprop_ref(0.01, momentum=0.5, centered=True)),
    ("adam", lambda: optimizers.Adam(), adam_ref()),
    ("adam_amsgrad", lambda: optimizers.Adam(0.01, amsgrad=True), adam_ref(0.01, amsgrad=True)),
    ("adagrad", lambda: optimizers.Adagrad(), adagrad_ref()),
]


@pytest.mark.parametrize("name,make,expected", CASES, ids=[c[0] for c in CASES])
def test_first_steps_match_keras_rules(name, make, expected):
    np.testing.assert_allclose(run(make(), np.float64), expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(run(make(), np.float32), expected, rtol=1e-5, atol=1e-6)


def test_defaults_are_keras_3():
    assert float(optimizers.SGD().learning_rate) == pytest.approx(0.01)
    r = optimizers.RMSprop()
    assert (float(r.learning_rate), r.rho, r.epsilon, r.momentum) == (pytest.approx(0.001), 0.9, 1e-7, 0.0)
    a = optimizers.Adam()
    assert (float(a.learning_rate), a.beta_1, a.beta_2, a.epsilon) == (pytest.approx(0.001), 0.9, 0.999, 1e-7)
    g = optimizers.Adagrad()
    assert (float(g.learning_rate), g.initial_accumulator_value, g.epsilon) == (pytest.approx(0.001), 0.1, 1e-7)


def test_clipping_and_learning_rate_changes():
    opt = optimizers.SGD(1.0, clipnorm=1.0)
    v = Variable(np.zeros(2))
    opt.apply([np.array([3.0, 4.0])], [v])
    np.testing.assert_allclose(v.numpy(), [-0.6, -0.8])
    opt.learning_rate = 0.5
    assert float(opt.learning_rate) == 0.5
    assert int(opt.iterations.numpy()) == 1
    with pytest.raises(ValueError, match="learning_rate"):
        optimizers.SGD(lr=0.1)


@pytest.mark.parametrize("name", ["Adam", "RMSprop", "SGD", "Adagrad"])
def test_bit_exact_with_keras_where_installed(name):
    """Runs where Keras 3 is installed (a bench extra): five float32 steps give Keras's exact bits."""
    import os
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((5, 4)).astype(np.float32)
    grads = [rng.standard_normal((5, 4)).astype(np.float32) for _ in range(5)]
    theirs, their_opt = keras.Variable(w0.copy()), getattr(keras.optimizers, name)()
    ours, our_opt = Variable(w0.copy()), getattr(optimizers, name)()
    for g in grads:
        their_opt.apply_gradients([(keras.ops.convert_to_tensor(g), theirs)])
        our_opt.apply([g], [ours])
    np.testing.assert_array_equal(np.asarray(theirs.value), ours.numpy())


def _table_steps(opt, table, steps, dense, between=None, read_velocity=True):
    """Run RMSprop `steps` times on `table` with gradients by rows (RowGradient, as an Embedding
    gives them) or, with `dense`, the same gradients as dense arrays; `between(k)` runs after
    step k. Returns the weights and (with `read_velocity`, which applies the deferred decays) the
    velocity after each step."""
    from engine.ops.embedding import RowGradient
    rng = np.random.default_rng(3)
    seen = []
    for k in range(steps):
        ids = rng.integers(0, 12 if k % 4 else table.shape[0], size=7)   # rows 12.. wait for steps 0, 4, 8
        g = RowGradient(ids, rng.standard_normal((7, table.shape[1])).astype(np.float32), table.shape, np.float32)
        opt.apply([g.dense() if dense else g], [table])
        if between is not None:
            between(k)
        seen.append((table.numpy(), opt.variables[2].numpy() if read_velocity else None))
    return seen


@pytest.mark.parametrize("read_between", [False, True])
def test_rmsprop_deferred_decays_give_the_dense_steps_bits(read_between):
    # RMSprop defers the velocity decay of a table's untouched rows (deferred_decay.py); what
    # any reader sees (weights, the velocity through optimizer.variables, get_weights, saved
    # state) must be the dense steps' bits, whether or not it reads between steps.
    def fresh():
        return optimizers.RMSprop(learning_rate=0.01), Variable(np.random.default_rng(1).standard_normal((40, 6))
                                                                   .astype(np.float32))
    (opt_d, table_d), (opt_r, table_r) = fresh(), fresh()
    dense = _table_steps(opt_d, table_d, 10, True)
    rows = _table_steps(opt_r, table_r, 10, False,
                        (lambda k: [v.numpy() for v in opt_r.variables]) if read_between else None)
    for k, ((wd, vd), (wr, vr)) in enumerate(zip(dense, rows)):
        np.testing.assert_array_equal(wr, wd, err_msg=f"weights, step {k}")
        np.testing.assert_array_equal(vr, vd, err_msg=f"velocity, step {k}")
    for a, b in zip(opt_r.variables, opt_d.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_rmsprop_deferred_decays_follow_changes_of_rule():
    # rho changed, momentum switched on, the state overwritten (set_weights) and a dense step
    # between deferring steps: each sees the decays counted so far applied, at the rho they were
    # counted with.
    def run(dense):
        opt = optimizers.RMSprop(learning_rate=0.01)
        table = Variable(np.random.default_rng(2).standard_normal((40, 6)).astype(np.float32))
        steps = lambda n: _table_steps(opt, table, n, dense, read_velocity=False)   # counts pile up
        out = steps(3)
        opt.rho = 0.5
        out += steps(3)
        opt.set_weights([v.numpy() * 1.5 if v.ndim == 2 else v.numpy() for v in opt.variables])
        out += steps(2)
        opt.apply([np.full(table.shape, 0.1, np.float32)], [table])          # a dense step
        out += steps(2)
        opt.momentum = 0.3
        out += steps(2)
        return out + [(table.numpy(), opt.variables[2].numpy())]
    for k, ((wd, vd), (wr, vr)) in enumerate(zip(run(True), run(False))):
        np.testing.assert_array_equal(wr, wd, err_msg=f"weights, step {k}")
        np.testing.assert_array_equal(vr, vd, err_msg=f"velocity, step {k}")


def test_embedding_model_trains_to_the_same_bits_with_deferred_decays():
    # fit of an Embedding model (its table stepped by rows, decays deferred) against the same fit
    # whose table gradient is made dense before the optimizer (gradient accumulation of 1 step
    # densifies every gradient and is otherwise the plain step)
    from engine import Input, Model, layers, utils

    def build(**opt_args):
        utils.set_random_seed(4)
        inp = Input(shape=(5,), dtype="int32")
        out = layers.Dense(3)(layers.Flatten()(layers.Embedding(300, 4)(inp)))
        model = Model(inp, out)
        model.compile(optimizers.RMSprop(learning_rate=0.01, **opt_args), "mse")
        return model
    rng = np.random.default_rng(6)
    x, y = rng.integers(0, 300, (96, 5)).astype("int32"), rng.standard_normal((96, 3)).astype("float32")
    rows_model, dense_model = build(), build(clipvalue=1e30)       # clipping densifies, changes nothing here
    for m in (rows_model, dense_model):
        m.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    for a, b in zip(rows_model.get_weights() + [v.numpy() for v in rows_model.optimizer.variables],
                    dense_model.get_weights() + [v.numpy() for v in dense_model.optimizer.variables]):
        np.testing.assert_array_equal(a, b)
    table_velocity = [v for v in rows_model.optimizer.variables if "embedding" in v.name][0]
    assert table_velocity._pending is not None     # the table did defer (the fit took its rows)


def test_rmsprop_planned_update_applies_deferred_decays_before_a_dense_step():
    # the planned step's fused kernel holds the velocity's raw array: a table whose gradient comes
    # by rows on one step and dense on the next must have its counted decays applied first
    from engine.ops.embedding import RowGradient
    rng = np.random.default_rng(8)

    def run(planned):
        opt = optimizers.RMSprop(learning_rate=0.01)
        table = Variable(np.random.default_rng(9).standard_normal((30, 4)).astype(np.float32))
        opt.build([table])
        update = opt._planned_update([table]) if planned else (lambda grads: opt.apply(grads, [table]))
        for k in range(6):
            ids = np.random.default_rng(k).integers(0, 10, 5)
            g = RowGradient(ids, np.random.default_rng(k + 10).standard_normal((5, 4)).astype(np.float32),
                            table.shape, np.float32)
            update([g if k % 3 else g.dense()])       # steps 0 and 3 dense, the others by rows
        return table.numpy(), opt.variables[2].numpy()
    (w_planned, v_planned), (w_apply, v_apply) = run(True), run(False)
    np.testing.assert_array_equal(w_planned, w_apply)
    np.testing.assert_array_equal(v_planned, v_apply)


def test_velocity_storage_is_its_array_without_applying_deferred_decays():
    # storage() is for identity checks (data-parallel training's "ranks already hold the same
    # state"): the same array object, and the counted decays stay counted; a read applies them
    from engine.ops.embedding import RowGradient
    opt = optimizers.RMSprop(learning_rate=0.01)
    table = Variable(np.ones((20, 3), np.float32))
    g = RowGradient(np.array([1, 2]), np.ones((2, 3), np.float32), table.shape, np.float32)
    opt.apply([g], [table])
    velocity = opt.variables[2]
    held = velocity.storage()
    assert velocity._deferred and held is velocity.storage()
    assert not held[5].any()               # row 5's decay is counted (the velocity starts at 0 anyway)
    velocity.numpy()
    assert not velocity._deferred and velocity.storage() is held and table.storage() is table._value
