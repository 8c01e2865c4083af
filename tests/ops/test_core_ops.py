"""Core ops: eager control flow (with gradients through loops and branches), dynamic slices,
scatters, segment reductions, custom_gradient, rearrange, dtype helpers."""
import numpy as np
import pytest

from engine import GradientTape, ops
from engine.testing import check_gradients

rng = np.random.default_rng(0)
X = rng.standard_normal((5, 3))


def test_cond_switch_and_loops():
    assert float(ops.cond(np.array(True), lambda: ops.ones(()), lambda: ops.zeros(()))) == 1.0
    assert ops.cond(False, lambda: 1, lambda: 2) == 2
    with pytest.raises(ValueError, match="scalar"):
        ops.cond(np.array([True, False]), lambda: 1, lambda: 2)
    branches = [lambda a: a + 1, lambda a: a * 10, lambda a: -a]
    assert ops.switch(1, branches, 2) == 20 and ops.switch(7, branches, 2) == -2 and ops.switch(-3, branches, 2) == 3
    i, total = ops.while_loop(lambda i, t: i < 4, lambda i, t: (i + 1, t + i), (0, 0))
    assert (i, total) == (4, 6)
    assert ops.while_loop(lambda v: v < 100, lambda v: v * 2, 1) == 128
    assert ops.while_loop(lambda v: True, lambda v: v + 1, 0, maximum_iterations=5) == 5
    assert ops.fori_loop(2, 5, lambda k, acc: acc * k, 1) == 2 * 3 * 4
    check_gradients(lambda a: ops.fori_loop(0, 3, lambda k, v: ops.multiply(v, a), a), [X])
    check_gradients(lambda a: ops.while_loop(lambda v, k: k < 3, lambda v, k: (ops.sin(v), k + 1), (a, 0))[0], [X])
    check_gradients(lambda a: ops.cond(True, lambda: ops.exp(a), lambda: a), [X])


def test_scan_map_associative_scan():
    def step(carry, x):
        carry = ops.add(ops.multiply(carry, 0.5), x)
        return carry, ops.square(carry)
    carry, ys = ops.scan(step, np.zeros(3), X)
    c, ref = np.zeros(3), []
    for row in X:
        c = 0.5 * c + row
        ref.append(c ** 2)
    np.testing.assert_allclose(np.asarray(carry), c)
    np.testing.assert_allclose(np.asarray(ys), ref)
    carry_r, ys_r = ops.scan(step, np.zeros(3), X, reverse=True)
    c, ref = np.zeros(3), [None] * 5
    for k in range(4, -1, -1):
        c = 0.5 * c + X[k]
        ref[k] = c ** 2
    np.testing.assert_allclose(np.asarray(ys_r), ref)
    check_gradients(lambda a, c0: ops.scan(step, c0, a)[1], [X, rng.standard_normal(3)])
    count, none = ops.scan(lambda c, _: (c + 1, None), 0, length=4)
    assert count == 4 and none is None
    carry, (a, b) = ops.scan(lambda c, x: (c, (x["p"], ops.sum(x["q"]))), 0.0, {"p": X, "q": X * 2})
    assert a.shape == (5, 3) and b.shape == (5,)
    with pytest.raises(ValueError, match="scan"):
        ops.scan(step, np.zeros(3), None)
    np.testing.assert_allclose(np.asarray(ops.map(lambda r: ops.sum(ops.square(r)), X)), (X ** 2).sum(axis=1))
    check_gradients(lambda a: ops.map(lambda r: ops.prod(r), a), [X])
    np.testing.assert_allclose(np.asarray(ops.vectorized_map(lambda r: ops.max(r), X)), X.max(axis=1))
    np.testing.assert_allclose(np.asarray(ops.associative_scan(ops.add, X)), np.cumsum(X, axis=0))
    np.testing.assert_allclose(np.asarray(ops.associative_scan(ops.multiply, X, axis=1)), np.cumprod(X, axis=1))
    np.testing.assert_allclose(np.asarray(ops.associative_scan(ops.maximum, X, reverse=True)),
                               np.maximum.accumulate(X[::-1], axis=0)[::-1])
    check_gradients(lambda a: ops.associative_scan(ops.multiply, a, axis=1), [X])


def test_slice_and_slice_update():
    np.testing.assert_array_equal(np.asarray(ops.slice(X, (1, 1), (3, 2))), X[1:4, 1:3])
    np.testing.assert_array_equal(np.asarray(ops.slice(X, (2, 0), (-1, 2))), X[2:, :2])
    np.testing.assert_array_equal(np.asarray(ops.slice(X, (4, 2), (2, 2))), X[3:5, 1:3])   # clamped, as JAX
    check_gradients(lambda a: ops.slice(a, (1, 1), (3, 2)), [X])
    u = rng.standard_normal((2, 2))
    out = np.asarray(ops.slice_update(X, (3, 1), u))
    ref = X.copy()
    ref[3:5, 1:3] = u
    np.testing.assert_array_equal(out, ref)
    check_gradients(lambda a, b: ops.slice_update(a, (3, 1), b), [X, u])
    with pytest.raises(ValueError, match="slice"):
        ops.slice(X, (0, 0), (6, 1))
    with pytest.raises(ValueError, match="slice_update"):
        ops.slice_update(X, (0,), u)


def test_scatter_and_scatter_update():
    idx = np.array([[0, 1], [2, 0], [0, 1]])
    vals = np.array([1.0, 2.0, 3.0])
    ref = np.zeros((3, 2))
    for (i, j), v in zip(idx, vals):
        ref[i, j] += v
    np.testing.assert_array_equal(np.asarray(ops.scatter(idx, vals, (3, 2))), ref)
    check_gradients(lambda v: ops.scatter(idx, v, (3, 2)), [vals])
    rows = np.array([[1], [3]])
    np.testing.assert_array_equal(np.asarray(ops.scatter(rows, np.ones((2, 3)), (5, 3)))[[1, 3]], np.ones((2, 3)))
    upd = np.array([0.5, -2.0, 3.0])
    for reduction, combine in [(None, lambda a, b: b), ("add", np.add), ("mul", np.multiply), ("max", np.maximum),
                               ("min", np.minimum)]:
        ref = X.copy()
        for (i, j), v in zip(idx, upd):
            ref[i, j] = combine(ref[i, j], v)
        np.testing.assert_allclose(np.asarray(ops.scatter_update(X, idx, upd, reduction=reduction)), ref)
        check_gradients(lambda a, b: ops.scatter_update(a, idx, b, reduction=reduction), [X, upd])
    check_gradients(lambda a, b: ops.scatter_update(a, rows, b), [X, rng.standard_normal((2, 3))])
    with pytest.raises(ValueError, match="reduction"):
        ops.scatter_update(X, idx, upd, reduction="mean")
    with pytest.raises(ValueError, match="scatter"):
        ops.scatter(np.array([[5, 0]]), np.ones(1), (3, 2))


@pytest.mark.parametrize("kind,fn,identity", [("sum", sum, 0.0), ("max", max, -np.inf), ("min", min, np.inf),
                                              ("prod", np.prod, 1.0)])
def test_segment_reductions(kind, fn, identity):
    ids = np.array([0, 2, 0, -1, 2])
    op = getattr(ops, "segment_" + kind)
    out = np.asarray(op(X, ids, num_segments=4))
    for s in range(4):
        rows = [X[k] for k in range(5) if ids[k] == s]
        expected = np.array([fn([r[c] for r in rows]) for c in range(3)]) if rows else np.full(3, identity)
        np.testing.assert_allclose(out[s], expected)
    assert op(X, ids).shape == (3, 3)
    assert op(X, ids, num_segments=2).shape == (2, 3)     # ids past num_segments are dropped
    check_gradients(lambda a: op(a, np.array([0, 1, 0, -1, 2]), num_segments=3), [X])   # no empty segment
    if kind == "prod":
        xz = X.copy()
        xz[0, 1] = 0.0
        check_gradients(lambda a: op(a, np.array([0, 1, 0, -1, 2])), [xz])
    with pytest.raises(ValueError, match="segment"):
        op(X, ids[:3])


def test_segment_max_shares_ties_and_int_segments():
    x = ops.convert_to_tensor(np.array([[1.0], [3.0], [3.0]]))
    with GradientTape() as tape:
        tape.watch(x)
        y = ops.sum(ops.segment_max(x, np.array([0, 0, 0])))
    np.testing.assert_array_equal(np.asarray(tape.gradient(y, x)), [[0.0], [0.5], [0.5]])
    out = ops.segment_max(np.array([1, 5, 2], "int32"), np.array([0, 0, 2]))
    assert out.dtype == np.int32 and list(np.asarray(out)) == [5, np.iinfo(np.int32).min, 2]


def test_custom_gradient():
    @ops.custom_gradient
    def clipped_identity(x):
        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            return ops.clip(upstream, -0.1, 0.1)
        return ops.multiply(x, 1.0), grad

    x = ops.convert_to_tensor(np.array([1.0, 2.0]))
    with GradientTape() as tape:
        tape.watch(x)
        y = ops.sum(ops.multiply(clipped_identity(x), np.array([5.0, -0.05])))
    np.testing.assert_allclose(np.asarray(tape.gradient(y, x)), [0.1, -0.05])

    @ops.custom_gradient
    def two_inputs(a, b):
        return ops.multiply(a, b), lambda g: (ops.multiply(g, 2.0), None)
    a, b = ops.convert_to_tensor(np.ones(2)), ops.convert_to_tensor(np.ones(2))
    with GradientTape() as tape:
        tape.watch([a, b])
        y = ops.sum(two_inputs(a, b))
    ga, gb = tape.gradient(y, [a, b])
    np.testing.assert_array_equal(np.asarray(ga), [2.0, 2.0])
    assert gb is None


def test_rearrange():
    v = rng.standard_normal((2, 6, 4))
    out = np.asarray(ops.rearrange(v, "b (h w) c -> b h w c", h=2))
    assert out.shape == (2, 2, 3, 4) and out[1, 1, 2, 3] == v[1, 1 * 3 + 2, 3]
    out = np.asarray(ops.rearrange(v, "b n c -> c (b n)"))
    assert out.shape == (4, 12) and out[3, 1 * 6 + 5] == v[1, 5, 3]
    assert ops.rearrange(v, "... c -> c ...").shape == (4, 2, 6)
    assert ops.rearrange(v, "b n c -> b 1 n c").shape == (2, 1, 6, 4)
    check_gradients(lambda a: ops.rearrange(a, "b (h w) c -> w b c h", w=3), [v])
    with pytest.raises(ValueError, match="rearrange"):
        ops.rearrange(v, "b n c -> b n")
    with pytest.raises(ValueError, match="rearrange"):
        ops.rearrange(v, "b (h w) c -> b h w c", h=4)


def test_dtype_helpers_and_cdist():
    assert ops.dtype(X) == "float64" and ops.dtype(np.ones(2, "int8")) == "int8"
    np.testing.assert_array_equal(np.asarray(ops.saturate_cast(np.array([-5.0, 300.0, 2.7]), "uint8")), [0, 255, 2])
    np.testing.assert_array_equal(np.asarray(ops.saturate_cast(np.array([-200, 100], "int32"), "int8")), [-128, 100])
    y = rng.standard_normal((4, 3))
    d = np.asarray(ops.cdist(X, y))
    assert d.shape == (5, 4) and abs(d[2, 3] - np.sqrt(((X[2] - y[3]) ** 2).sum())) < 1e-12
    check_gradients(ops.cdist, [X, y])
