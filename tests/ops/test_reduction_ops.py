"""Reductions, scans and order statistics: values against loop references written here,
gradients (including products with zeros) against finite differences, Keras's dtypes."""
import itertools
import math

import numpy as np
import pytest

from engine import ops
from engine.testing import check_gradients

rng = np.random.default_rng(0)
V = rng.standard_normal((2, 3, 4))


def reduce_ref(x, axis, fn, keepdims=False):
    """fn applied to the list of elements of each reduced slice, by explicit iteration."""
    axes = tuple(range(x.ndim)) if axis is None else (axis if isinstance(axis, tuple) else (axis,))
    axes = tuple(a % x.ndim for a in axes)
    kept = [a for a in range(x.ndim) if a not in axes]
    out = np.empty([x.shape[a] for a in kept])
    for idx in itertools.product(*[range(x.shape[a]) for a in kept]):
        vals = []
        for red in itertools.product(*[range(x.shape[a]) for a in axes]):
            full = [0] * x.ndim
            for a, i in zip(kept, idx):
                full[a] = i
            for a, i in zip(axes, red):
                full[a] = i
            vals.append(x[tuple(full)])
        out[idx] = fn(vals)
    if keepdims:
        out = out.reshape([1 if a in axes else x.shape[a] for a in range(x.ndim)])
    return out


def prod_list(v):
    return math.prod(v)


def var_list(v):
    mu = sum(v) / len(v)
    return sum((a - mu) ** 2 for a in v) / len(v)


def lse_list(v):
    top = max(v)
    return top + math.log(sum(math.exp(a - top) for a in v))


REDUCTIONS = [
    ("prod", ops.prod, prod_list), ("var", ops.var, var_list), ("std", ops.std, lambda v: math.sqrt(var_list(v))),
    ("logsumexp", ops.logsumexp, lse_list), ("ptp", ops.ptp, lambda v: max(v) - min(v)),
    ("median", ops.median, lambda v: float(np.sort(v)[len(v) // 2]) if len(v) % 2 else
     (sorted(v)[len(v) // 2 - 1] + sorted(v)[len(v) // 2]) / 2),
    ("nansum", ops.nansum, sum), ("nanmean", ops.nanmean, lambda v: sum(v) / len(v)),
    ("nanvar", ops.nanvar, var_list), ("nanmax", ops.nanmax, max), ("nanmin", ops.nanmin, min),
]


@pytest.mark.parametrize("name,fn,ref", REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
@pytest.mark.parametrize("axis,keepdims", [(None, False), (1, False), ((0, 2), True), (-1, True)])
def test_reductions(name, fn, ref, axis, keepdims):
    np.testing.assert_allclose(np.asarray(fn(V, axis=axis, keepdims=keepdims)),
                               reduce_ref(V, axis, ref, keepdims), rtol=1e-12, atol=1e-12)
    check_gradients(lambda a: fn(a, axis=axis, keepdims=keepdims), [V])


def test_prod_and_cumprod_gradients_are_exact_with_zeros():
    x = V.copy()
    x[0, 0, 0] = 0.0
    x[1, 2, 1] = x[1, 2, 3] = 0.0       # two zeros in one slice
    check_gradients(lambda a: ops.prod(a, axis=2), [x])
    check_gradients(lambda a: ops.cumprod(a, axis=2), [x])
    check_gradients(lambda a: ops.cumprod(a, axis=0), [x])


def test_scans():
    x = V
    ref_sum = np.array([[[sum(x[i, j, :k + 1]) for k in range(4)] for j in range(3)] for i in range(2)])
    np.testing.assert_allclose(np.asarray(ops.cumsum(x, axis=2)), ref_sum)
    ref_prod = np.array([[[math.prod(x[i, j, :k + 1]) for k in range(4)] for j in range(3)] for i in range(2)])
    np.testing.assert_allclose(np.asarray(ops.cumprod(x, axis=-1)), ref_prod)
    flat = x.reshape(-1)
    np.testing.assert_allclose(np.asarray(ops.cumsum(x)), [sum(flat[:k + 1]) for k in range(24)])
    check_gradients(lambda a: ops.cumsum(a, axis=1), [x])
    check_gradients(ops.cumsum, [x])
    check_gradients(lambda a: ops.cumprod(a, axis=1), [x])
    assert ops.cumsum(np.array([True, False, True])).dtype == np.int32
    assert ops.cumsum(np.array([1, 2], "uint8")).dtype == np.uint8
    assert ops.cumsum(np.array([1, 2], "int32"), dtype="float32").dtype == np.float32
    y = np.array([1.0, np.nan, 2.0])
    np.testing.assert_array_equal(np.asarray(ops.nancumsum(y)), [1, 1, 3])
    np.testing.assert_array_equal(np.asarray(ops.nancumprod(y)), [1, 1, 2])


def test_reduction_dtypes_follow_keras():
    b = np.array([[True, False], [True, True]])
    assert ops.prod(b).dtype == np.int32 and int(ops.prod(b)) == 0
    assert ops.prod(np.array([2, 3], "uint8")).dtype == np.uint32
    assert ops.sum(b).dtype == np.int32 and int(ops.sum(b)) == 3
    assert ops.var(np.array([1, 2, 3], "int32")).dtype == np.float32
    assert ops.logsumexp(np.array([1, 2], "int32")).dtype == np.float32
    assert ops.count_nonzero(b, axis=0).dtype == np.int32
    assert ops.any(b).dtype == np.bool_ and bool(ops.all(b)) is False
    np.testing.assert_array_equal(np.asarray(ops.any(b, axis=1)), [True, True])
    np.testing.assert_array_equal(np.asarray(ops.all(b, axis=1)), [False, True])
    np.testing.assert_array_equal(np.asarray(ops.count_nonzero(np.array([[0, 1, 2], [0, 0, 3]]), axis=1)), [2, 1])
    assert float(ops.logsumexp(np.array([-np.inf, -np.inf]))) == -np.inf


def test_average():
    w = np.array([1.0, 2.0, 3.0, 4.0])
    ref = np.array([[sum(V[i, j] * w) / sum(w) for j in range(3)] for i in range(2)])
    np.testing.assert_allclose(np.asarray(ops.average(V, axis=2, weights=w)), ref)
    np.testing.assert_allclose(float(ops.average(V)), V.sum() / V.size)
    check_gradients(lambda a, ww: ops.average(a, axis=-1, weights=ww), [V, w])
    with pytest.raises(ValueError, match="weights"):
        ops.average(V, axis=1, weights=w)


def quantile_ref(values, q, method):
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    if method == "lower":
        return s[lo]
    if method == "higher":
        return s[hi]
    if method == "nearest":
        return s[int(np.round(pos))]
    if method == "midpoint":
        return (s[lo] + s[hi]) / 2
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


@pytest.mark.parametrize("method", ["linear", "lower", "higher", "midpoint", "nearest"])
def test_quantile_methods(method):
    for q in (0.0, 0.3, 0.5, 1.0):
        got = np.asarray(ops.quantile(V, q, axis=1, method=method))
        np.testing.assert_allclose(got, reduce_ref(V, 1, lambda v: quantile_ref(v, q, method)))
    got = np.asarray(ops.quantile(V, [0.25, 0.75], axis=(0, 2), method=method, keepdims=True))
    assert got.shape == (2, 1, 3, 1)
    np.testing.assert_allclose(got[1, 0, :, 0], reduce_ref(V, (0, 2), lambda v: quantile_ref(v, 0.75, method)))
    np.testing.assert_allclose(np.asarray(ops.percentile(V, 30.0, method=method)), quantile_ref(V.reshape(-1), 0.3, method))


def test_quantile_gradients_and_nan_versions():
    check_gradients(lambda a: ops.quantile(a, [0.2, 0.9], axis=2), [V])
    check_gradients(lambda a: ops.median(a, axis=0), [V])
    x = np.array([[1.0, np.nan, 3.0, 2.0], [np.nan, np.nan, np.nan, np.nan]])
    np.testing.assert_allclose(np.asarray(ops.nanmedian(x, axis=1))[0], 2.0)
    assert np.isnan(np.asarray(ops.nanmedian(x, axis=1))[1])
    np.testing.assert_allclose(np.asarray(ops.nanquantile(x[0], 0.5)), 2.0)
    np.testing.assert_allclose(np.asarray(ops.nanpercentile(x[0], 100)), 3.0)
    assert np.isnan(np.asarray(ops.nanmax(x, axis=1))[1]) and float(np.asarray(ops.nanmax(x, axis=1))[0]) == 3.0
    np.testing.assert_array_equal(np.asarray(ops.nanargmax(x, axis=1)), [2, -1])
    np.testing.assert_array_equal(np.asarray(ops.nanargmin(x[0])), 0)
    np.testing.assert_allclose(float(ops.nanstd(x[0])), math.sqrt(var_list([1.0, 3.0, 2.0])))
    np.testing.assert_allclose(float(ops.nanprod(x[0])), 6.0)
    with pytest.raises(ValueError, match="quantile"):
        ops.quantile(V, 1.5)
    with pytest.raises(ValueError, match="method"):
        ops.quantile(V, 0.5, method="cubic")


def test_sorting():
    x = np.array([[3.0, 1.0, 2.0, 1.0], [0.5, -1.0, 4.0, 2.0]])
    np.testing.assert_array_equal(np.asarray(ops.sort(x)), [sorted(r) for r in x])
    np.testing.assert_array_equal(np.asarray(ops.sort(x, axis=0)), np.array([sorted(c) for c in x.T]).T)
    order = np.asarray(ops.argsort(x))
    assert order.dtype == np.int32
    np.testing.assert_array_equal(order, [sorted(range(4), key=lambda i: (r[i], i)) for r in x])
    check_gradients(ops.sort, [V])
    values, indices = ops.top_k(x, 2)
    assert indices.dtype == np.int32
    np.testing.assert_array_equal(np.asarray(values), [[3.0, 2.0], [4.0, 2.0]])
    np.testing.assert_array_equal(np.asarray(indices), [[0, 2], [2, 3]])
    ties = np.array([[1.0, 5.0, 5.0, 0.0]])
    np.testing.assert_array_equal(np.asarray(ops.top_k(ties, 2)[1]), [[1, 2]])     # lower index first
    np.testing.assert_array_equal(np.sort(np.asarray(ops.top_k(x, 3, sorted=False)[0]), axis=1),
                                  np.sort([[3.0, 2.0, 1.0], [4.0, 2.0, 0.5]], axis=1))
    check_gradients(lambda a: ops.top_k(a, 2)[0], [V])
    part = np.asarray(ops.argpartition(x, 1, axis=1))
    for row, p in zip(x, part):
        assert row[p[1]] == sorted(row)[1] and all(row[p[0]] <= row[p[1]] for _ in [0])
    np.testing.assert_array_equal(np.asarray(ops.in_top_k(np.array([0, 2]), x, 1)), [True, True])
    np.testing.assert_array_equal(np.asarray(ops.in_top_k(np.array([1, 0]), x, 2)), [False, False])
    with pytest.raises(ValueError, match="top_k"):
        ops.top_k(x, 5)


def test_counting_and_searching():
    np.testing.assert_array_equal(np.asarray(ops.bincount(np.array([0, 2, 2, 5]), minlength=7)), [1, 0, 2, 0, 0, 1, 0])
    assert ops.bincount(np.array([1, 1])).dtype == np.int32
    np.testing.assert_allclose(np.asarray(ops.bincount(np.array([0, 1, 1]), weights=np.array([0.5, 1.0, 2.0]))), [0.5, 3.0])
    np.testing.assert_array_equal(np.asarray(ops.bincount(np.array([[0, 1], [1, 1]]))), [[1, 1], [0, 2]])
    counts, edges = ops.histogram(np.array([0.0, 0.1, 0.5, 1.0]), bins=2)
    np.testing.assert_array_equal(np.asarray(counts), [2, 2])
    np.testing.assert_allclose(np.asarray(edges), [0.0, 0.5, 1.0])
    seq = np.array([1.0, 2.0, 2.0, 3.0])
    np.testing.assert_array_equal(np.asarray(ops.searchsorted(seq, np.array([2.0, 0.0, 4.0]))), [1, 0, 4])
    np.testing.assert_array_equal(np.asarray(ops.searchsorted(seq, np.array([2.0]), side="right")), [3])
    np.testing.assert_array_equal(np.asarray(ops.digitize(np.array([0.5, 1.0, 2.5]), np.array([1.0, 2.0]))), [0, 1, 2])
    u = ops.unique(np.array([3, 1, 3, 2, 1], "int32"), return_index=True, return_inverse=True, return_counts=True)
    values, first, inverse, counts = (np.asarray(t) for t in u)
    np.testing.assert_array_equal(values, [1, 2, 3])
    np.testing.assert_array_equal(first, [1, 3, 0])
    np.testing.assert_array_equal(values[inverse], [3, 1, 3, 2, 1])
    np.testing.assert_array_equal(counts, [2, 1, 2])
    np.testing.assert_array_equal(np.asarray(ops.unique(np.array([3, 1, 3]), size=4, fill_value=-1)), [1, 3, -1, -1])
    rows = np.asarray(ops.unique(np.array([[1, 2], [0, 1], [1, 2]]), axis=0))
    np.testing.assert_array_equal(rows, [[0, 1], [1, 2]])
    idx = ops.nonzero(np.array([[0, 1], [2, 0]]))
    assert [list(np.asarray(i)) for i in idx] == [[0, 1], [1, 0]]


def test_differences_and_integrals():
    x = rng.standard_normal((3, 5))
    d1 = np.array([[x[i, j + 1] - x[i, j] for j in range(4)] for i in range(3)])
    np.testing.assert_allclose(np.asarray(ops.diff(x)), d1)
    np.testing.assert_allclose(np.asarray(ops.diff(x, n=2)), d1[:, 1:] - d1[:, :-1])
    np.testing.assert_allclose(np.asarray(ops.diff(x, axis=0)), x[1:] - x[:-1])
    check_gradients(lambda a: ops.diff(a, n=2), [x])
    t = np.array([0.0, 0.5, 1.5, 2.0, 4.0])
    ref = [sum((t[k + 1] - t[k]) * (x[i, k + 1] + x[i, k]) / 2 for k in range(4)) for i in range(3)]
    np.testing.assert_allclose(np.asarray(ops.trapezoid(x, t)), ref)
    np.testing.assert_allclose(np.asarray(ops.trapezoid(x, dx=0.5)),
                               [sum(0.5 * (x[i, k + 1] + x[i, k]) / 2 for k in range(4)) for i in range(3)])
    check_gradients(lambda a: ops.trapezoid(a, t), [x])
    c = np.asarray(ops.corrcoef(x))
    for i in range(3):
        for j in range(3):
            xi, xj = x[i] - x[i].mean(), x[j] - x[j].mean()
            assert abs(c[i, j] - (xi @ xj) / math.sqrt((xi @ xi) * (xj @ xj))) < 1e-12
    check_gradients(ops.corrcoef, [x])


@pytest.mark.parametrize("call", [
    lambda: ops.prod(V, axis=3), lambda: ops.var(V, axis=(0, 0)), lambda: ops.cumsum(V, axis=-4),
    lambda: ops.logsumexp(V, axis=5), lambda: ops.median(V, axis=3), lambda: ops.sort(V, axis=3),
    lambda: ops.any(V, axis=7), lambda: ops.diff(V, axis=3), lambda: ops.argpartition(V, 9),
])
def test_bad_axes_raise_value_error(call):
    with pytest.raises(ValueError):
        call()
