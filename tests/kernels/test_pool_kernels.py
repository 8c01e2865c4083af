"""Pooling kernels (engine._kernels.pool) against float64 loops written here.

NHWC max and average pooling, forward and backward, with explicit (top, bottom, left, right)
padding.  "same" padding is TensorFlow's split (the odd pad at the end, computed here, not taken
from engine); padded cells never win a max and an average divides by the real cells of its window
only.  Max pooling records, per output, the window cell (a * pool_w + b) of the first maximum in
row-major window order; the backward adds each output gradient at that cell."""
import numpy as np
import pytest

import engine
from engine._kernels import pool as P
from engine._kernels import runtime


# ------------------------------------------------------------------ reference

def tf_same_pads(size, pool, stride):
    out = -(-size // stride)
    total = max((out - 1) * stride + pool - size, 0)
    return total // 2, total - total // 2


def pads_for(padding, H, W, pool, strides):
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        return tf_same_pads(H, pool[0], strides[0]) + tf_same_pads(W, pool[1], strides[1])
    return tuple(padding)                                            # explicit pads


def out_hw(H, W, pool, strides, pads):
    return ((H + pads[0] + pads[1] - pool[0]) // strides[0] + 1,
            (W + pads[2] + pads[3] - pool[1]) // strides[1] + 1)


def windows(H, W, pool, strides, pads):
    """For each output (i, j): the real cells of its window as (cell index a*pw+b, hi, wi)."""
    Ho, Wo = out_hw(H, W, pool, strides, pads)
    for i in range(Ho):
        for j in range(Wo):
            cells = []
            for a in range(pool[0]):
                for b in range(pool[1]):
                    hi, wi = i * strides[0] + a - pads[0], j * strides[1] + b - pads[2]
                    if 0 <= hi < H and 0 <= wi < W:
                        cells.append((a * pool[1] + b, hi, wi))
            yield i, j, cells


def ref_max(x, pool, strides, pads):
    """out, first-max cell per output, and dx for an output gradient, in float64."""
    x = x.astype(np.float64)
    N, H, W, C = x.shape
    Ho, Wo = out_hw(H, W, pool, strides, pads)
    out = np.empty((N, Ho, Wo, C))
    cell = np.empty((N, Ho, Wo, C), np.int64)
    where = {}
    for i, j, cells in windows(H, W, pool, strides, pads):
        for n in range(N):
            for c in range(C):
                vals = [x[n, hi, wi, c] for _, hi, wi in cells]
                nan = [k for k, v in enumerate(vals) if v != v]
                k = nan[0] if nan else int(np.argmax(vals))           # np.argmax: first maximum
                out[n, i, j, c] = vals[k]
                cell[n, i, j, c] = cells[k][0]
                where[n, i, j, c] = cells[k][1:]

    def backward(gy):
        dx = np.zeros_like(x)
        for (n, i, j, c), (hi, wi) in where.items():
            dx[n, hi, wi, c] += gy[n, i, j, c]
        return dx
    return out, cell, backward


def ref_avg(x, pool, strides, pads):
    x = x.astype(np.float64)
    N, H, W, C = x.shape
    Ho, Wo = out_hw(H, W, pool, strides, pads)
    out = np.empty((N, Ho, Wo, C))
    wins = list(windows(H, W, pool, strides, pads))
    for i, j, cells in wins:
        out[:, i, j] = sum(x[:, hi, wi] for _, hi, wi in cells) / len(cells)
    return out


def ref_avg_backward(x_shape, gy, pool, strides, pads):
    N, H, W, C = x_shape
    dx = np.zeros(x_shape)
    for i, j, cells in windows(H, W, pool, strides, pads):
        for _, hi, wi in cells:
            dx[:, hi, wi] += gy[:, i, j].astype(np.float64) / len(cells)
    return dx


# ------------------------------------------------------------------ kernel wrappers

def run_max(x, pool, strides, pads, with_argmax=True):
    Ho, Wo = out_hw(x.shape[1], x.shape[2], pool, strides, pads)
    out = np.full((x.shape[0], Ho, Wo, x.shape[3]), 12345.0, x.dtype)       # garbage: must be overwritten
    argmax = np.full(out.shape, 777, np.int32) if with_argmax else None
    ret = P.max_pool2d_forward(x, out, argmax, pool, strides, pads)
    assert ret is out
    return out, argmax


def run_max_backward(gy, argmax, x_shape, pool, strides, pads):
    dx = np.full(x_shape, np.nan, gy.dtype)                                 # overwritten, not accumulated
    ret = P.max_pool2d_backward(gy, argmax, dx, pool, strides, pads)
    assert ret is dx
    return dx


def run_avg(x, pool, strides, pads):
    Ho, Wo = out_hw(x.shape[1], x.shape[2], pool, strides, pads)
    out = np.full((x.shape[0], Ho, Wo, x.shape[3]), np.nan, x.dtype)
    assert P.avg_pool2d_forward(x, out, pool, strides, pads) is out
    return out


def run_avg_backward(gy, x_shape, pool, strides, pads):
    dx = np.full(x_shape, np.nan, gy.dtype)
    assert P.avg_pool2d_backward(gy, dx, pool, strides, pads) is dx
    return dx


@pytest.fixture
def threads_restored():
    before = runtime.get_num_threads()
    yield
    engine.config.set_num_threads(before)


# ------------------------------------------------------------------ hand-computed examples

def test_same_padding_split_puts_the_odd_pad_at_the_end():
    assert tf_same_pads(5, 2, 2) == (0, 1)
    assert tf_same_pads(6, 3, 2) == (0, 1)
    assert tf_same_pads(4, 4, 1) == (1, 2)
    assert tf_same_pads(7, 3, 1) == (1, 1)
    assert tf_same_pads(6, 2, 3) == (0, 0)
    # 1-D, pool 2, stride 2, "same" on 5 cells: windows [1 2] [3 4] [5 pad]
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0]).reshape(1, 1, 5, 1)
    pads = (0, 0) + tf_same_pads(5, 2, 2)
    np.testing.assert_array_equal(run_avg(x, (1, 2), (1, 2), pads).ravel(), [1.5, 3.5, 5.0])  # not 2.5
    out, argmax = run_max(-x, (1, 2), (1, 2), pads)
    np.testing.assert_array_equal(out.ravel(), [-1.0, -3.0, -5.0])                            # pad is not 0
    np.testing.assert_array_equal(argmax.ravel(), [0, 0, 0])
    # pool 4 stride 1 "same" on 4 cells: one pad before, two after
    x = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 4, 1)
    pads = (0, 0) + tf_same_pads(4, 4, 1)
    np.testing.assert_allclose(run_avg(x, (1, 4), (1, 1), pads).ravel(), [2.0, 2.5, 3.0, 3.5])
    out, argmax = run_max(x, (1, 4), (1, 1), pads)
    np.testing.assert_array_equal(out.ravel(), [3.0, 4.0, 4.0, 4.0])
    np.testing.assert_array_equal(argmax.ravel(), [3, 3, 2, 1])   # cells counted from the padded start


def test_max_backward_hand_example_with_overlap():
    # 3x3 image, 2x2 pool, stride 1: the centre 9 is every window's max and takes all four gradients
    x = np.array([[1, 2, 3], [4, 9, 5], [6, 7, 8]], np.float64).reshape(1, 3, 3, 1)
    out, argmax = run_max(x, (2, 2), (1, 1), (0, 0, 0, 0))
    np.testing.assert_array_equal(out.ravel(), [9, 9, 9, 9])
    np.testing.assert_array_equal(argmax.ravel(), [3, 2, 1, 0])
    gy = np.array([1.0, 10.0, 100.0, 1000.0]).reshape(1, 2, 2, 1)
    dx = run_max_backward(gy, argmax, x.shape, (2, 2), (1, 1), (0, 0, 0, 0))
    expected = np.zeros((3, 3))
    expected[1, 1] = 1111.0
    np.testing.assert_array_equal(dx[0, :, :, 0], expected)


# ------------------------------------------------------------------ against the float64 loops

CASES = [
    # (N, H, W, C, pool, strides, padding)
    (2, 6, 6, 3, (2, 2), (2, 2), "valid"),
    (2, 7, 9, 4, (3, 3), (2, 2), "valid"),       # overlapping windows, leftover rows/cols
    (3, 7, 8, 2, (2, 3), (1, 2), "valid"),       # rectangular pool, strides differ from pool
    (2, 5, 8, 3, (2, 2), (3, 3), "valid"),       # stride > pool: skipped cells
    (2, 7, 9, 3, (3, 2), (2, 3), "same"),
    (2, 6, 5, 2, (2, 2), (1, 1), "same"),        # one pad, at the end
    (2, 4, 4, 1, (4, 4), (1, 1), "same"),        # pads (1, 2) on both axes
    (2, 8, 7, 3, (2, 3), (3, 2), "same"),        # stride > pool along H
    (2, 9, 10, 5, (3, 3), (2, 2), "same"),
    (1, 1, 11, 5, (1, 3), (1, 2), "same"),       # 1-D
    (3, 1, 12, 4, (1, 4), (1, 3), "valid"),      # 1-D
    (2, 6, 7, 3, (3, 3), (1, 2), (2, 0, 1, 1)),  # explicit pads, more at the top than TF would use
    (2, 5, 6, 2, (2, 3), (2, 1), (1, 1, 0, 2)),
    (1, 3, 3, 2, (3, 3), (1, 1), "valid"),       # one window covering the image
    (1, 2, 3, 1, (1, 1), (1, 1), "valid"),       # identity
]


def _case_id(case):
    N, H, W, C, pool, strides, padding = case
    return f"{N}x{H}x{W}x{C}-p{pool[0]}{pool[1]}-s{strides[0]}{strides[1]}-{padding}"


def _image(case, seed, dtype, ties=False):
    N, H, W, C = case[:4]
    rng = np.random.default_rng(seed)
    if ties:
        return rng.integers(-1, 2, (N, H, W, C)).astype(dtype)   # three values: ties everywhere
    return rng.standard_normal((N, H, W, C)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_max_pool(case, ties, dtype):
    N, H, W, C, pool, strides, padding = case
    pads = pads_for(padding, H, W, pool, strides)
    x = _image(case, len(_case_id(case)), dtype, ties)
    out, argmax = run_max(x, pool, strides, pads)
    want, want_cell, backward = ref_max(x, pool, strides, pads)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, want.astype(dtype))           # a max is exact
    np.testing.assert_array_equal(argmax, want_cell)                 # the first maximum in the window
    # inference mode: no argmax, same maxima
    out2, _ = run_max(x, pool, strides, pads, with_argmax=False)
    np.testing.assert_array_equal(out2, out)

    gy = np.random.default_rng(1).standard_normal(out.shape).astype(dtype)
    dx = run_max_backward(gy, argmax, x.shape, pool, strides, pads)
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, backward(gy), rtol=1e-6 if dtype == np.float32 else 1e-15, atol=1e-6)
    # every output gradient lands on one input cell: totals are preserved per image and channel
    np.testing.assert_allclose(dx.astype(np.float64).sum(axis=(1, 2)), gy.astype(np.float64).sum(axis=(1, 2)),
                               rtol=1e-5, atol=1e-5)
    _check_argmax_consistent(x, out, argmax, gy, dx, pool, strides, pads)


def _check_argmax_consistent(x, out, argmax, gy, dx, pool, strides, pads):
    """The stored cell holds the forward maximum, and dx is gy scattered to exactly those cells."""
    N, H, W, C = x.shape
    _, Ho, Wo, _ = out.shape
    acc = np.zeros(x.shape)
    for n in range(N):
        for i in range(Ho):
            for j in range(Wo):
                for c in range(C):
                    k = int(argmax[n, i, j, c])
                    assert 0 <= k < pool[0] * pool[1]
                    hi = i * strides[0] + k // pool[1] - pads[0]
                    wi = j * strides[1] + k % pool[1] - pads[2]
                    assert 0 <= hi < H and 0 <= wi < W, "argmax points into the padding"
                    assert x[n, hi, wi, c] == out[n, i, j, c] or (np.isnan(x[n, hi, wi, c])
                                                                  and np.isnan(out[n, i, j, c]))
                    acc[n, hi, wi, c] += gy[n, i, j, c]
    np.testing.assert_allclose(dx, acc, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_avg_pool(case, dtype):
    N, H, W, C, pool, strides, padding = case
    pads = pads_for(padding, H, W, pool, strides)
    x = _image(case, len(_case_id(case)) + 1, dtype)
    out = run_avg(x, pool, strides, pads)
    assert out.dtype == dtype
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(out, ref_avg(x, pool, strides, pads), **tol)
    gy = np.random.default_rng(2).standard_normal(out.shape).astype(dtype)
    dx = run_avg_backward(gy, x.shape, pool, strides, pads)
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, ref_avg_backward(x.shape, gy, pool, strides, pads), **tol)
    # the backward is the adjoint of the forward: <avg(x), gy> == <x, dx>
    np.testing.assert_allclose(np.sum(out.astype(np.float64) * gy), np.sum(x.astype(np.float64) * dx),
                               rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_max_pool_nan_is_sticky_and_takes_the_gradient():
    x = np.arange(16, dtype=np.float64).reshape(1, 4, 4, 1)
    x[0, 0, 1, 0] = np.nan           # window (0, 0)
    x[0, 3, 2, 0] = np.nan           # window (1, 1), behind its maximum 15 at (3, 3)
    x[0, 3, 3, 0] = np.nan
    out, argmax = run_max(x, (2, 2), (2, 2), (0, 0, 0, 0))
    want, cell, backward = ref_max(x, (2, 2), (2, 2), (0, 0, 0, 0))
    np.testing.assert_array_equal(out, want)                          # NaN compares equal here
    assert np.isnan(out[0, 0, 0, 0]) and np.isnan(out[0, 1, 1, 0])
    assert out[0, 0, 1, 0] == 7 and out[0, 1, 0, 0] == 13
    np.testing.assert_array_equal(argmax[0, :, :, 0], [[1, 3], [3, 2]])   # the first NaN
    gy = np.ones(out.shape)
    dx = run_max_backward(gy, argmax, x.shape, (2, 2), (2, 2), (0, 0, 0, 0))
    np.testing.assert_array_equal(dx, backward(gy))


def test_max_pool_with_infinities():
    x = np.full((1, 3, 4, 2), -np.inf)
    x[0, 2, 3, 1] = np.inf
    out, argmax = run_max(x, (2, 2), (1, 2), pads_for("same", 3, 4, (2, 2), (1, 2)))
    want, cell, _ = ref_max(x, (2, 2), (1, 2), pads_for("same", 3, 4, (2, 2), (1, 2)))
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(argmax, cell)


def test_max_backward_ignores_cells_outside_the_image():
    """The backward bounds-checks every recorded cell: -1, cells in the padding and cells past the
    image write nothing (the valid ones still do)."""
    pool, strides, pads = (2, 2), (2, 2), (1, 0, 1, 0)
    x_shape = (1, 3, 3, 1)                                            # outputs 2x2
    argmax = np.array([[0, 1], [2, 3]], np.int32).reshape(1, 2, 2, 1)
    argmax[0, 0, 0, 0] = 0                                            # (-1, -1): padding
    argmax[0, 0, 1, 0] = -1
    argmax[0, 1, 0, 0] = 1                                            # (1, 0): real
    argmax[0, 1, 1, 0] = 3                                            # (2, 2): real
    gy = np.array([1.0, 2.0, 4.0, 8.0]).reshape(1, 2, 2, 1)
    dx = run_max_backward(gy, argmax, x_shape, pool, strides, pads)
    expected = np.zeros((3, 3))
    expected[1, 0] = 4.0
    expected[2, 2] = 8.0
    np.testing.assert_array_equal(dx[0, :, :, 0], expected)
    argmax[...] = 1000
    dx = run_max_backward(gy, argmax, x_shape, pool, strides, pads)
    np.testing.assert_array_equal(dx, np.zeros(x_shape))


# ------------------------------------------------------------------ threads

@pytest.mark.skipif(not engine.config.openmp_enabled(), reason="built without OpenMP")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_thread_and_several_threads_agree(dtype, threads_restored):
    """Work above the kernels' 1 << 15 threshold, so a team splits the images / output rows."""
    N, H, W, C, pool, strides = 7, 19, 21, 48, (3, 3), (2, 2)
    pads = pads_for("same", H, W, pool, strides)
    Ho, Wo = out_hw(H, W, pool, strides, pads)
    assert N * Ho * Wo * C >= 1 << 15 and N * H * W * C >= 1 << 15
    x = np.random.default_rng(5).integers(-3, 4, (N, H, W, C)).astype(dtype)   # with ties
    gy = np.random.default_rng(6).standard_normal((N, Ho, Wo, C)).astype(dtype)
    results = []
    for threads in (1, 2, 3):
        engine.config.set_num_threads(threads)
        out, argmax = run_max(x, pool, strides, pads)
        dmax = run_max_backward(gy, argmax, x.shape, pool, strides, pads)
        avg = run_avg(x, pool, strides, pads)
        davg = run_avg_backward(gy, x.shape, pool, strides, pads)
        results.append((out, argmax, dmax, avg, davg))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)
    want, cell, _ = ref_max(x[:2], pool, strides, pads)       # reference on two images (time)
    np.testing.assert_array_equal(results[0][0][:2], want)
    np.testing.assert_array_equal(results[0][1][:2], cell)
    np.testing.assert_allclose(results[0][3][:2], ref_avg(x[:2], pool, strides, pads), rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------ argument checks

def _ok():
    x = np.zeros((2, 5, 6, 3))
    return x, np.zeros((2, 2, 3, 3)), np.zeros((2, 2, 3, 3), np.int32)


BAD = [
    ("x 3-D", lambda x, o, a: P.max_pool2d_forward(x[0], o, a, (2, 2), (2, 2)),
     r"expected 4-D input and output, got \(5, 6, 3\) and \(2, 2, 3, 3\)"),
    ("out wrong shape", lambda x, o, a: P.max_pool2d_forward(x, np.zeros((2, 2, 2, 3)), None, (2, 2), (2, 2)),
     r"output shape \(2, 2, 2, 3\) does not match \(2, 2, 3, 3\) for input \(2, 5, 6, 3\)"),
    ("avg out wrong shape", lambda x, o, a: P.avg_pool2d_forward(x, np.zeros((2, 3, 3, 3)), (2, 2), (2, 2)),
     r"output shape \(2, 3, 3, 3\) does not match \(2, 2, 3, 3\)"),
    ("pool 0", lambda x, o, a: P.avg_pool2d_forward(x, o, (0, 2), (2, 2)), r"must be >= 1"),
    ("stride 0", lambda x, o, a: P.avg_pool2d_forward(x, o, (2, 2), (2, 0)), r"must be >= 1"),
    ("negative pad", lambda x, o, a: P.avg_pool2d_forward(x, o, (2, 2), (2, 2), (0, -1, 0, 0)), r">= 0"),
    ("three pads", lambda x, o, a: P.avg_pool2d_forward(x, o, (2, 2), (2, 2), (0, 0, 0)), r"pads \(0, 0, 0\)"),
    ("pad as big as the pool", lambda x, o, a: P.avg_pool2d_forward(x, np.zeros((2, 3, 3, 3)), (2, 2), (2, 2),
                                                                   (2, 0, 0, 0)),
     r"padding \(2, 0, 0, 0\) must be smaller than the pool \(2, 2\)"),
    ("window larger than image", lambda x, o, a: P.avg_pool2d_forward(x, np.zeros((2, 0, 1, 3)), (6, 6), (1, 1)),
     r"the pool \(6, 6\) does not fit the input \(2, 5, 6, 3\) padded by \(0, 0, 0, 0\)"),
    ("int input", lambda x, o, a: P.max_pool2d_forward(x.astype(np.int32), o, a, (2, 2), (2, 2)),
     r"x must be a C-contiguous float32 or float64 array"),
    ("list input", lambda x, o, a: P.avg_pool2d_forward(x.tolist(), o, (2, 2), (2, 2)),
     r"x must be a C-contiguous float32 or float64 array"),
    ("mixed dtypes", lambda x, o, a: P.max_pool2d_forward(x, o.astype(np.float32), a, (2, 2), (2, 2)),
     r"out is float32 but the other arrays are float64"),
    ("non-contiguous", lambda x, o, a: P.avg_pool2d_forward(np.zeros((2, 5, 12, 3))[:, :, ::2], o, (2, 2),
                                                            (2, 2)),
     r"x must be a C-contiguous"),
    ("argmax int64", lambda x, o, a: P.max_pool2d_forward(x, o, a.astype(np.int64), (2, 2), (2, 2)),
     r"argmax must be None or a C-contiguous int32 array of shape \(2, 2, 3, 3\)"),
    ("argmax wrong shape", lambda x, o, a: P.max_pool2d_forward(x, o, a[:1], (2, 2), (2, 2)),
     r"argmax must be None or a C-contiguous int32 array of shape \(2, 2, 3, 3\)"),
    ("backward argmax None", lambda x, o, a: P.max_pool2d_backward(o, None, x, (2, 2), (2, 2)),
     r"argmax must be a C-contiguous int32 array of shape \(2, 2, 3, 3\)"),
    ("backward argmax wrong shape", lambda x, o, a: P.max_pool2d_backward(o, a[:, :1], x, (2, 2), (2, 2)),
     r"argmax must be a C-contiguous int32 array of shape \(2, 2, 3, 3\)"),
    ("backward gy wrong shape", lambda x, o, a: P.max_pool2d_backward(o[:, :1].copy(), a[:, :1].copy(), x,
                                                                      (2, 2), (2, 2)),
     r"output shape \(2, 1, 3, 3\) does not match \(2, 2, 3, 3\) for input \(2, 5, 6, 3\)"),
    ("avg backward dx wrong shape", lambda x, o, a: P.avg_pool2d_backward(o, np.zeros((2, 7, 6, 3)), (2, 2),
                                                                          (2, 2)),
     r"output shape \(2, 2, 3, 3\) does not match \(2, 3, 3, 3\) for input \(2, 7, 6, 3\)"),
    ("avg backward mixed dtypes", lambda x, o, a: P.avg_pool2d_backward(o.astype(np.float32), x, (2, 2), (2, 2)),
     r"dx is float64 but the other arrays are float32"),
]


@pytest.mark.parametrize("name,call,message", BAD, ids=[b[0] for b in BAD])
def test_bad_arguments_raise_value_error(name, call, message):
    x, o, a = _ok()
    with pytest.raises(ValueError, match=message):
        call(x, o, a)
