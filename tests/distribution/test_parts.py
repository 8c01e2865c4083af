"""The parts of data-parallel training that need no MPI job: the tape's on_ready hook, the
gradient buckets' layout, the split of a global batch and the per-rank slices of random draws."""
import numpy as np
import pytest

import engine
from engine import ops, random as engine_random
from engine.autodiff import GradientTape


def _chain():
    """loss = sum(((x @ a) * b) @ c): a is read first, so its gradient is final last."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    a, b, c, unused = (engine.Variable(rng.standard_normal(s).astype(np.float32))
                       for s in [(3, 5), (5,), (5, 2), (2,)])
    return x, [a, b, c, unused]


def test_on_ready_reports_each_gradient_once_when_final():
    x, variables = _chain()
    a, b, c, unused = variables
    with GradientTape() as tape:
        h = ops.matmul(x, a)
        loss = ops.sum(ops.matmul(ops.multiply(h, b), c))
    seen = []
    grads = tape._gradients_for_optimizer(loss, variables, on_ready=lambda i, g: seen.append((i, g)))
    assert [i for i, _ in seen] == [2, 1, 0, 3]          # backward order; the unread one at the end
    for i, g in seen:
        assert (g is None) == (i == 3)
        if g is not None:
            np.testing.assert_array_equal(np.asarray(g), np.asarray(grads[i]))
    # float64 reference of the gradients written out
    x64, a64, b64, c64 = (np.asarray(v, np.float64) for v in (x, a.numpy(), b.numpy(), c.numpy()))
    h64 = x64 @ a64
    g_hb = np.ones((4, 2)) @ c64.T
    np.testing.assert_allclose(np.asarray(grads[2]), (h64 * b64).T @ np.ones((4, 2)), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(grads[1]), (g_hb * h64).sum(0), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(grads[0]), x64.T @ (g_hb * b64), rtol=1e-5)


def test_seed_scales_every_gradient():
    x, variables = _chain()
    a, b, c, _ = variables

    def grads(seed):
        with GradientTape() as tape:
            loss = ops.sum(ops.matmul(ops.multiply(ops.matmul(x, a), b), c))
        return tape._gradients_for_optimizer(loss, [a, b, c], seed=seed)
    for g1, g4 in zip(grads(None), grads(np.float32(0.25))):
        np.testing.assert_allclose(np.asarray(g4), 0.25 * np.asarray(g1), rtol=1e-6)


def test_bucket_layout_back_to_front_and_contiguous():
    from engine.distribution.gradients import _Layout
    variables = [engine.Variable(np.zeros(s, np.float32)) for s in [(100,), (300,), (50,), (10,)]] + \
        [engine.Variable(np.zeros((7,), np.float64))]
    layout = _Layout(variables, bucket_bytes=1000)          # 250 float32 per bucket, at least one variable
    assert layout.sizes == {np.dtype(np.float32): 460, np.dtype(np.float64): 7}
    # the last variables first (the backward pass finishes them first); every slot inside its bucket
    assert [layout.slots[i][1] for i in range(4)] == [360, 60, 10, 0]
    for i, b in enumerate(layout.bucket_of):
        dtype, start, stop, members = layout.buckets[b]
        assert i in members and start <= layout.slots[i][1] and layout.slots[i][1] + layout.slots[i][2] <= stop
        assert dtype == layout.slots[i][0]
    # variable 1 (1200 bytes, over the bucket size) has a bucket of its own
    assert [members for _, _, _, members in layout.buckets] == [[4], [3, 2], [1], [0]]


def test_split_of_a_global_batch():
    from engine.distribution.training import _split
    for total, size in [(8, 2), (5, 2), (1, 2), (0, 3), (10, 3), (2, 4)]:
        parts = [_split(total, size, r) for r in range(size)]
        assert sum(c for c, _ in parts) == total
        assert max(c for c, _ in parts) - min(c for c, _ in parts) <= 1
        assert [o for _, o in parts] == [sum(c for c, _ in parts[:r]) for r in range(size)]


def test_draw_for_batch_takes_this_ranks_rows_of_the_global_draw():
    whole = np.random.default_rng(3).random((7, 4))
    try:
        for offset, rows in [(0, 4), (4, 3)]:
            engine_random._batch_shard = (offset, rows, 7)
            part = engine_random.draw_for_batch(np.random.default_rng(3).random, (rows, 4))
            np.testing.assert_array_equal(part, whole[offset:offset + rows])
        # a draw whose first axis is not this rank's rows is left alone
        engine_random._batch_shard = (0, 4, 7)
        np.testing.assert_array_equal(engine_random.draw_for_batch(np.random.default_rng(3).random, (5,)),
                                      np.random.default_rng(3).random((5,)))
    finally:
        engine_random._batch_shard = None


def test_missing_mpi4py_names_the_extra(monkeypatch):
    import builtins
    from engine.distribution import _mpi
    real_import = builtins.__import__

    def no_mpi(name, *args, **kwargs):
        if name.startswith("mpi4py"):
            raise ImportError("No module named 'mpi4py'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(_mpi, "_mpi", None)
    monkeypatch.setattr(builtins, "__import__", no_mpi)
    with pytest.raises(ImportError, match=r'pip install "engine\[mpi\]"'):
        _mpi.mpi()


@pytest.mark.parametrize("make, x_shape", [
    (lambda: engine.layers.Dropout(0.5, seed=4), (6, 5)),
    (lambda: engine.layers.GaussianNoise(0.7, seed=4), (6, 5)),
    (lambda: engine.layers.GaussianDropout(0.4, seed=4), (6, 5)),
    (lambda: engine.layers.AlphaDropout(0.3, seed=4), (6, 5)),
    (lambda: engine.layers.LSTM(3, dropout=0.5, recurrent_dropout=0.5, seed=4), (6, 4, 5)),
    (lambda: engine.layers.RNN(engine.layers.SimpleRNNCell(3, dropout=0.5, seed=4)), (6, 4, 5)),
])
def test_random_layers_draw_this_ranks_rows_of_the_global_batch(make, x_shape):
    """Under a data-parallel step each rank's noise is its rows of what one process draws for the
    whole batch, so data-parallel training matches single-process training."""
    x = np.random.default_rng(0).standard_normal(x_shape).astype(np.float32)
    engine.utils.set_random_seed(9)
    whole = np.asarray(make()(x, training=True))
    try:
        for offset, rows in ((0, 4), (4, 2)):
            engine.utils.set_random_seed(9)
            layer = make()
            engine_random._batch_shard = (offset, rows, len(x))
            part = np.asarray(layer(x[offset:offset + rows], training=True))
            engine_random._batch_shard = None
            np.testing.assert_allclose(part, whole[offset:offset + rows], rtol=1e-6, atol=1e-7)
    finally:
        engine_random._batch_shard = None


def test_planned_backward_reports_gradients_as_the_tape_does(monkeypatch):
    # A data-parallel step gets its gradients through distribution.training.compute_gradients,
    # from the tape (the traced first step) or from the plan's replay (later steps): both must
    # honour the seed and report each gradient once, when final, in the same order with the
    # same bits, so that the ranks' bucket reductions match whichever path a rank takes.
    from engine import Input, Model, layers, optimizers
    from engine.distribution import training as distributed
    engine.utils.set_random_seed(0)
    tokens = Input(shape=(4,), dtype="int32")
    numeric = Input(shape=(3,))
    h = layers.concatenate([layers.GlobalAveragePooling1D()(layers.Embedding(30, 5)(tokens)),
                            layers.Dense(6, activation="tanh")(numeric)])
    model = Model([tokens, numeric], layers.Dense(2)(h))
    model.compile(optimizers.SGD(learning_rate=0.0), "mse")     # weights stay: same step twice
    rng = np.random.default_rng(0)
    x = [rng.integers(0, 30, (8, 4)).astype("int32"), rng.standard_normal((8, 3)).astype("float32")]
    y = rng.standard_normal((8, 2)).astype("float32")
    steps = []

    def compute_gradients(source, target, variables):
        seen = []
        grads = source._gradients_for_optimizer(target, variables, seed=np.full(np.shape(target), 0.25, np.float32),
                                                on_ready=lambda i, g: seen.append((i, g)))
        steps.append((type(source).__name__, seen, grads))
        return grads
    monkeypatch.setattr(distributed, "compute_gradients", compute_gradients)
    model.train_on_batch(x, y)
    model.train_on_batch(x, y)
    assert [kind for kind, _, _ in steps] == ["GradientTape", "_Backward"]    # traced, then replayed
    (_, tape_seen, tape_grads), (_, plan_seen, plan_grads) = steps
    n = len(model.trainable_weights)
    assert [i for i, _ in plan_seen] == [i for i, _ in tape_seen] and sorted(i for i, _ in plan_seen) == list(range(n))
    for (i, g_tape), (_, g_plan) in zip(tape_seen, plan_seen):
        assert type(g_plan) is type(g_tape)                  # the table's gradient stays as rows
        np.testing.assert_array_equal(np.asarray(g_plan), np.asarray(g_tape))
        np.testing.assert_array_equal(np.asarray(plan_grads[i]), np.asarray(g_plan))
    # the seed scales the gradient: the unseeded tape's gradient of the same step, times 0.25
    with GradientTape() as tape:
        loss = model.compute_loss(x, y, model(x, training=True))
    for g, ref in zip(plan_grads, tape.gradient(loss, model.trainable_weights)):
        np.testing.assert_allclose(np.asarray(g), 0.25 * np.asarray(ref), rtol=1e-6, atol=1e-7)


def _fake_wait_clock(monkeypatch):
    """A fake MPI whose Testall takes 5 us of a fake clock and completes once the clock passes
    the request (a time), and the calls wait makes: "test", "yield", or a sleep's seconds."""
    import time
    from engine.distribution import _mpi, collectives
    clock = {"now": 0.0}
    calls = []

    class Request:
        @staticmethod
        def Testall(requests):
            calls.append("test")
            clock["now"] += 5e-6
            return clock["now"] >= requests[0]

    class FakeMPI:
        pass
    FakeMPI.Request = Request
    monkeypatch.setattr(_mpi, "mpi", lambda: FakeMPI)
    monkeypatch.setattr(time, "perf_counter", lambda: clock["now"])
    monkeypatch.setattr(collectives.os, "sched_yield", lambda: calls.append("yield"))

    def sleep(seconds):
        calls.append(seconds)
        clock["now"] += seconds
    monkeypatch.setattr(time, "sleep", sleep)
    monkeypatch.setattr(collectives, "_limits", collectives._limits)     # restored afterwards
    return clock, calls


def _phases(calls):
    """(seconds spun before the first yield, seconds of tests before the first sleep, sleeps)."""
    first_yield = calls.index("yield")
    first_sleep = next(i for i, c in enumerate(calls) if not isinstance(c, str))
    assert first_yield < first_sleep
    return (calls[:first_yield].count("test") * 5e-6, calls[:first_sleep].count("test") * 5e-6,
            [c for c in calls if not isinstance(c, str)])


def test_wait_on_shared_cores_spins_then_yields_then_sleeps_in_short_slices(monkeypatch):
    # When the ranks' threads outnumber the cores, collectives.wait must not spin on a core for
    # the whole of a long wait (a lagging rank may need that core), yet add little latency: spin,
    # yield, then sleep in slices of at most SLEEP_SECONDS until the requests complete.
    from engine.distribution import collectives
    clock, calls = _fake_wait_clock(monkeypatch)
    collectives.set_wait_policy(dedicated_cores=False)
    collectives.wait([0.0])                      # already complete: one test, nothing else
    assert calls == ["test"]
    calls.clear()
    collectives.wait([5e-3])                     # completes after 5 ms
    assert clock["now"] >= 5e-3
    spun, before_sleeping, sleeps = _phases(calls)
    assert collectives.SPIN_SECONDS <= spun <= collectives.SPIN_SECONDS + 10e-6
    assert sleeps and max(sleeps) <= collectives.SLEEP_SECONDS
    # sleeps only once past YIELD_SECONDS, and overshoots by less than one slice and a test
    assert before_sleeping >= collectives.YIELD_SECONDS - 10e-6
    assert clock["now"] - 5e-3 <= collectives.SLEEP_SECONDS + 5e-6


def test_wait_on_dedicated_cores_polls_and_sleeps_only_in_a_long_wait(monkeypatch):
    # When every rank's threads have cores of their own, a rank that sleeps stalls the transfer
    # its peer is ready for (shared-memory collectives move only inside MPI calls on both
    # sides): wait polls, spinning then yielding, and sleeps only past DEDICATED_YIELD_SECONDS.
    from engine.distribution import collectives
    clock, calls = _fake_wait_clock(monkeypatch)
    collectives.set_wait_policy(dedicated_cores=True)
    collectives.wait([5e-3])                     # a step's wait: spun through, no yield, no sleep
    assert set(calls) == {"test"} and clock["now"] >= 5e-3
    calls.clear()
    clock["now"] = 0.0
    collectives.wait([collectives.DEDICATED_YIELD_SECONDS + 2e-3])     # rank 0 writing a file
    spun, before_sleeping, sleeps = _phases(calls)
    assert collectives.DEDICATED_SPIN_SECONDS <= spun <= collectives.DEDICATED_SPIN_SECONDS + 15e-6
    assert before_sleeping >= collectives.DEDICATED_YIELD_SECONDS - 10e-6
    assert sleeps and max(sleeps) <= collectives.SLEEP_SECONDS
