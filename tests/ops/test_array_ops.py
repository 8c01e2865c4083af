"""Creation and rearrangement ops: values against references written with loops / explicit
index arithmetic, gradients against finite differences, errors for bad axes and shapes."""
import numpy as np
import pytest

from engine import ops
from engine.testing import check_gradients

rng = np.random.default_rng(0)
X = rng.standard_normal((3, 4))
V = rng.standard_normal((2, 3, 4))


def test_creation_values_and_dtypes():
    assert ops.arange(5).dtype == np.int32 and list(np.asarray(ops.arange(5))) == [0, 1, 2, 3, 4]
    assert list(np.asarray(ops.arange(2, 11, 3))) == [2, 5, 8]
    a = ops.arange(0.0, 1.0, 0.25)
    assert a.dtype == np.float32 and list(np.asarray(a)) == [0.0, 0.25, 0.5, 0.75]
    assert ops.arange(3, dtype="float64").dtype == np.float64
    lin = np.asarray(ops.linspace(1.0, 2.0, 5))
    np.testing.assert_allclose(lin, [1 + i / 4 for i in range(5)], rtol=1e-7)
    np.testing.assert_allclose(np.asarray(ops.linspace(0, 1, 4, endpoint=False)), [0, 0.25, 0.5, 0.75])
    values, step = ops.linspace(0.0, 1.0, 3, retstep=True)
    assert float(step) == 0.5
    np.testing.assert_allclose(np.asarray(ops.logspace(0, 2, 3)), [1, 10, 100], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(ops.geomspace(1, 8, 4)), [1, 2, 4, 8], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(ops.linspace(np.array([0.0, 1.0]), np.array([1.0, 3.0]), 3, axis=1)),
                               [[0, 0.5, 1], [1, 2, 3]])
    eye = np.asarray(ops.eye(3, 4, k=1))
    assert eye.dtype == np.float32
    assert all(eye[i, j] == (1.0 if j - i == 1 else 0.0) for i in range(3) for j in range(4))
    tri = np.asarray(ops.tri(3, 4, k=-1))
    assert all(tri[i, j] == (1.0 if j <= i - 1 else 0.0) for i in range(3) for j in range(4))
    np.testing.assert_array_equal(np.asarray(ops.identity(2)), [[1, 0], [0, 1]])
    full = ops.full((2, 3), 7)
    assert full.dtype == np.float32 and np.all(np.asarray(full) == 7)
    assert ops.full_like(np.zeros(3, "int32"), 2.5).dtype == np.int32
    assert np.all(np.asarray(ops.empty((2, 2))) == 0) and ops.empty_like(X).shape == X.shape
    assert ops.array([1, 2]).dtype == np.int32 and ops.array([1.0, 2]).dtype == np.float32
    with pytest.raises(ValueError, match="step"):
        ops.arange(0, 5, 0)
    with pytest.raises(ValueError, match="full"):
        ops.full((-1, 2), 0)


def test_windows():
    n = 7
    k = np.arange(n)
    np.testing.assert_allclose(np.asarray(ops.hanning(n)), 0.5 - 0.5 * np.cos(2 * np.pi * k / (n - 1)), atol=1e-7)
    np.testing.assert_allclose(np.asarray(ops.hamming(n)), 0.54 - 0.46 * np.cos(2 * np.pi * k / (n - 1)), atol=1e-7)
    np.testing.assert_allclose(np.asarray(ops.bartlett(n)), 1 - np.abs(2 * k / (n - 1) - 1), atol=1e-7)
    np.testing.assert_allclose(np.asarray(ops.blackman(n)),
                               0.42 - 0.5 * np.cos(2 * np.pi * k / (n - 1)) + 0.08 * np.cos(4 * np.pi * k / (n - 1)),
                               atol=1e-6)
    assert ops.kaiser(5, 3.0).shape == (5,)


def loop_ref(shape, source):
    """out[i] = x[source(i)] for every output index (None: zero)."""
    return source, shape


REARRANGE = [
    ("flip", lambda a: ops.flip(a, axis=1), lambda a: a[:, ::-1]),
    ("flip_all", lambda a: ops.flip(a), lambda a: a[::-1, ::-1]),
    ("fliplr", ops.fliplr, lambda a: a[:, ::-1]), ("flipud", ops.flipud, lambda a: a[::-1]),
    ("roll", lambda a: ops.roll(a, 2, axis=1), lambda a: a[:, [(j - 2) % 4 for j in range(4)]]),
    ("roll_flat", lambda a: ops.roll(a, 5),
     lambda a: a.reshape(-1)[[(i - 5) % 12 for i in range(12)]].reshape(3, 4)),
    ("rot90", ops.rot90, lambda a: np.array([[a[j, 3 - i] for j in range(3)] for i in range(4)])),
    ("swapaxes", lambda a: ops.swapaxes(a, 0, 1), lambda a: np.array([[a[i, j] for i in range(3)] for j in range(4)])),
    ("tile", lambda a: ops.tile(a, (2, 3)), lambda a: np.array([[a[i % 3, j % 4] for j in range(12)] for i in range(6)])),
    ("triu", lambda a: ops.triu(a, k=1), lambda a: np.array([[a[i, j] if j >= i + 1 else 0 for j in range(4)] for i in range(3)])),
    ("tril", lambda a: ops.tril(a, k=-1), lambda a: np.array([[a[i, j] if j <= i - 1 else 0 for j in range(4)] for i in range(3)])),
    ("diag", lambda a: ops.diag(a, k=1), lambda a: np.array([a[i, i + 1] for i in range(3)])),
    ("diag_build", lambda a: ops.diag(ops.getitem(a, 0), k=-1),
     lambda a: np.array([[a[0, j] if i == j + 1 else 0 for j in range(5)] for i in range(5)])),
    ("diagflat", lambda a: ops.diagflat(ops.getitem(a, (slice(0, 2), slice(0, 2)))),
     lambda a: np.diag([a[0, 0], a[0, 1], a[1, 0], a[1, 1]])),
    ("diagonal", lambda a: ops.diagonal(a, offset=-1), lambda a: np.array([a[1, 0], a[2, 1]])),
    ("ravel", ops.ravel, lambda a: np.array([a[i, j] for i in range(3) for j in range(4)])),
    ("broadcast_to", lambda a: ops.broadcast_to(ops.getitem(a, slice(0, 1)), (2, 3, 4)),
     lambda a: np.array([[a[0] for _ in range(3)] for _ in range(2)])),
    ("repeat", lambda a: ops.repeat(a, 2), lambda a: np.array([v for v in a.reshape(-1) for _ in range(2)])),
    ("repeat_counts", lambda a: ops.repeat(a, [2, 0, 1], axis=0), lambda a: np.stack([a[0], a[0], a[2]])),
    ("take_along_axis", lambda a: ops.take_along_axis(a, np.array([[3, 0], [1, 1], [0, 2]]), axis=1),
     lambda a: np.array([[a[0, 3], a[0, 0]], [a[1, 1], a[1, 1]], [a[2, 0], a[2, 2]]])),
    ("take_along_axis_neg", lambda a: ops.take_along_axis(a, np.array([[-1], [0], [-4]]), axis=1),
     lambda a: np.array([[a[0, 3]], [a[1, 0]], [a[2, 0]]])),
    ("copy", ops.copy, lambda a: a),
]


@pytest.mark.parametrize("name,fn,ref", REARRANGE, ids=[r[0] for r in REARRANGE])
def test_rearrangements(name, fn, ref):
    np.testing.assert_array_equal(np.asarray(fn(X)), ref(X))
    check_gradients(fn, [X])


def test_moveaxis_and_meshgrid():
    out = np.asarray(ops.moveaxis(V, 0, -1))
    assert out.shape == (3, 4, 2) and all(out[j, k, i] == V[i, j, k] for i in range(2) for j in range(3) for k in range(4))
    out = np.asarray(ops.moveaxis(V, [0, 1], [2, 0]))
    assert out.shape == (3, 4, 2) and out[1, 2, 0] == V[0, 1, 2]
    check_gradients(lambda a: ops.moveaxis(a, [0, 1], [2, 0]), [V])
    a, b = np.arange(3.0), np.arange(2.0) + 10
    gx, gy = ops.meshgrid(a, b)
    assert gx.shape == (2, 3) and all(np.asarray(gx)[i, j] == a[j] and np.asarray(gy)[i, j] == b[i]
                                      for i in range(2) for j in range(3))
    gx, gy = ops.meshgrid(a, b, indexing="ij")
    assert gx.shape == (3, 2) and np.asarray(gy)[2, 1] == b[1]
    check_gradients(lambda p, q: ops.meshgrid(p, q)[1], [a, b])


def test_split_family_and_unstack():
    parts = ops.split(X, 2, axis=1)
    assert [p.shape for p in parts] == [(3, 2), (3, 2)]
    np.testing.assert_array_equal(np.asarray(parts[1]), X[:, 2:])
    parts = ops.split(X, [1, 3], axis=1)
    assert [p.shape[1] for p in parts] == [1, 2, 1]
    assert [p.shape[1] for p in ops.array_split(X, 3, axis=1)] == [2, 1, 1]
    check_gradients(lambda a: ops.concatenate([ops.split(a, [1, 3], axis=1)[2], ops.split(a, [1, 3], axis=1)[0]], 1), [X])
    with pytest.raises(ValueError, match="equal"):
        ops.split(X, 3, axis=1)
    assert [p.shape for p in ops.hsplit(X, 2)] == [(3, 2), (3, 2)]
    assert len(ops.vsplit(X, 3)) == 3 and len(ops.dsplit(V, 2)) == 2
    slices = ops.unstack(V, axis=1)
    assert len(slices) == 3 and slices[2].shape == (2, 4)
    np.testing.assert_array_equal(np.asarray(slices[2]), V[:, 2])
    check_gradients(lambda a: ops.stack(ops.unstack(a, axis=2)[::-1], axis=0), [V])
    with pytest.raises(ValueError, match="num"):
        ops.unstack(V, num=5)


def test_joining():
    np.testing.assert_array_equal(np.asarray(ops.append(X, X[:1], axis=0)), np.concatenate([X, X[:1]]))
    assert ops.append(X, X).shape == (24,)
    assert ops.append(np.ones(2, "int32"), np.ones(2, "float32")).dtype == np.float32
    assert ops.hstack([X, X]).shape == (3, 8) and ops.vstack([X[0], X[1]]).shape == (2, 4)
    assert ops.dstack([X, X]).shape == (3, 4, 2)
    check_gradients(lambda a, b: ops.hstack([a, b]), [X, X[:, :2]])
    with pytest.raises(ValueError, match="hstack"):
        ops.hstack([X, V])


def pad_reference(a, width, mode):
    """numpy.pad's documented meaning of each mode, one axis at a time, by explicit index maps."""
    out = a
    for axis, (lo, hi) in enumerate(width):
        n = out.shape[axis]

        def take(i):
            return np.take(out, [i], axis=axis)
        before, after = [], []
        for k in range(lo, 0, -1):                    # k-th cell before the start
            before.append(k)
        if mode in ("edge", "reflect", "symmetric", "wrap"):
            def src(i):   # i: position in the padded axis relative to the start (may be negative)
                if mode == "edge":
                    return min(max(i, 0), n - 1)
                if mode == "wrap":
                    return i % n
                period = 2 * (n - 1) if mode == "reflect" else 2 * n
                j = i % period
                if mode == "reflect":
                    return j if j < n else period - j
                return j if j < n else period - 1 - j
            pieces = [take(src(i)) for i in range(-lo, n + hi)]
        else:
            stat = {"maximum": np.max, "minimum": np.min, "mean": np.mean, "median": np.median}.get(mode)
            if mode == "linear_ramp":
                first, last = take(0), take(n - 1)
                left = [first * (k / lo) for k in range(lo)]
                right = [last * (1 - (k + 1) / hi) for k in range(hi)]
            else:
                s = stat(out, axis=axis, keepdims=True)
                left, right = [s] * lo, [s] * hi
            pieces = left + [take(i) for i in range(n)] + right
        out = np.concatenate(pieces, axis=axis)
    return out


@pytest.mark.parametrize("mode", ["edge", "reflect", "symmetric", "wrap", "maximum", "minimum", "mean", "median",
                                  "linear_ramp"])
def test_pad_modes(mode):
    width = ((2, 1), (3, 2))
    np.testing.assert_allclose(np.asarray(ops.pad(X, width, mode=mode)), pad_reference(X, width, mode), atol=1e-12)
    check_gradients(lambda a: ops.pad(a, width, mode=mode), [X])


def test_pad_constant_and_errors():
    out = np.asarray(ops.pad(X, 1, constant_values=3.0))
    assert out.shape == (5, 6) and out[0, 0] == 3.0 and out[1, 1] == X[0, 0]
    np.testing.assert_array_equal(np.asarray(ops.pad(X, ((0, 0), (1, 0)), mode="circular")), pad_reference(X, ((0, 0), (1, 0)), "wrap"))
    check_gradients(lambda a: ops.pad(a, ((1, 2), (0, 1)), constant_values=2.0), [X])
    with pytest.raises(ValueError, match="constant_values"):
        ops.pad(X, 1, mode="edge", constant_values=1)
    with pytest.raises(ValueError, match="mode"):
        ops.pad(X, 1, mode="bogus")
    with pytest.raises(ValueError, match="pad_width"):
        ops.pad(X, ((1, 1), (1, 1), (1, 1)))


@pytest.mark.parametrize("call", [
    lambda: ops.flip(X, axis=2), lambda: ops.swapaxes(X, 0, 3), lambda: ops.moveaxis(X, 0, 5),
    lambda: ops.take_along_axis(X, np.zeros((3, 1), "int32"), axis=-3), lambda: ops.diagonal(X, axis1=0, axis2=0),
    lambda: ops.broadcast_to(X, (2, 3)), lambda: ops.rot90(X[0]), lambda: ops.tile(X, -1),
    lambda: ops.take_along_axis(X, np.zeros((3,), "int32"), axis=1), lambda: ops.diag(V),
    lambda: ops.roll(X, 1, axis=4), lambda: ops.repeat(X, [1, 2], axis=0),
])
def test_bad_axes_and_shapes_raise_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_select_vander_unravel_isin():
    cond = [X > 0.5, X < -0.5]
    out = np.asarray(ops.select(cond, [X * 10, X * 100], default=-1.0))
    ref = np.array([[X[i, j] * 10 if X[i, j] > 0.5 else (X[i, j] * 100 if X[i, j] < -0.5 else -1.0)
                     for j in range(4)] for i in range(3)])
    np.testing.assert_allclose(out, ref)
    check_gradients(lambda a: ops.select([X > 0.5], [ops.square(a)], default=0.0), [X])
    v = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(np.asarray(ops.vander(v)), [[x ** p for p in (2, 1, 0)] for x in v])
    np.testing.assert_allclose(np.asarray(ops.vander(v, N=4, increasing=True)), [[x ** p for p in range(4)] for x in v])
    check_gradients(lambda a: ops.vander(a, 3), [v])
    rows, cols = ops.unravel_index(np.array([0, 5, 11]), (3, 4))
    assert list(np.asarray(rows)) == [0, 1, 2] and list(np.asarray(cols)) == [0, 1, 3]
    np.testing.assert_array_equal(np.asarray(ops.isin(np.array([1, 2, 3]), np.array([3, 1]))), [True, False, True])
    assert ops.ndim(V) == 3 and ops.size(V) == 24
    assert ops.view(np.array([1.0], "float32"), "int32").dtype == np.int32


def test_vectorize_maps_a_python_function():
    f = ops.vectorize(lambda a, b: ops.multiply(a, b) if float(a) > 0 else b)
    x, y = np.array([1.0, -1.0, 2.0]), np.array([3.0, 4.0, 5.0])
    np.testing.assert_allclose(np.asarray(f(x, y)), [3.0, 4.0, 10.0])
    dot = ops.vectorize(lambda a, b: ops.sum(ops.multiply(a, b)), signature="(n),(n)->()")
    np.testing.assert_allclose(np.asarray(dot(X, X[0])), X @ X[0])
    check_gradients(lambda a: dot(a, X[0]), [X])


def test_split_follows_numpy_for_unsorted_points_and_pieces_share_one_backward():
    x = np.arange(5.0)
    pieces = ops.split(x, [3, 1])
    assert [list(np.asarray(p)) for p in pieces] == [[0.0, 1.0, 2.0], [], [1.0, 2.0, 3.0, 4.0]]
    check_gradients(lambda a: ops.concatenate(ops.split(a, [3, 1]), 0), [x])      # overlapping pieces add up
    check_gradients(lambda a: ops.stack(ops.unstack(a, axis=1)[::2], 0), [X])      # unused pieces get zeros
