"""GEMM kernel tests: every path (SIMD / portable, small / packed, edge tiles,
k chunks, threads) against float64 numpy, plus the Python boundary checks.

Shapes are chosen around the blocking in csrc/gemm.h: 1, primes and
non-multiples of MR (4/6/12), NR (8/16/32), KC (256/512), MC (96..240),
NC (2048/4096) and of the small path's k chunk (512); n*k large enough for the
packed path in some cases.
"""
import itertools
import threading

import numpy as np
import pytest

from engine import config
from engine._kernels import gemm as G
from engine._kernels import runtime

# (m, k, n)
SHAPES = [
    (1, 1, 1),
    (1, 7, 1),
    (3, 1, 5),
    (2, 3, 1),
    (7, 13, 17),          # everything below one register tile
    (13, 29, 37),         # one full tile + edges, narrow last panel
    (128, 32, 10),        # Keras head: n far below NR
    (61, 97, 33),
    (29, 1100, 70),       # small path with k in chunks (packed when A is transposed)
    (7, 1100, 70),        # small path with k in chunks, also for a transposed A (one sliver)
    (300, 200, 40),       # a transposed A of many rows and a mid k: packed A, small B
    (250, 530, 300),      # packed: two MC blocks (float32), two KC blocks, n % NR != 0
]
BIG_SHAPES = [
    (30, 300, 4200),      # packed with n crossing NC
    (131, 389, 517),
]
TRANS = list(itertools.product([False, True], [False, True]))
DTYPES = [np.float32, np.float64]


@pytest.fixture(autouse=True)
def _restore_state():
    nt = runtime.get_num_threads()
    level = config.get_simd_path()
    yield
    config.set_simd_path(level)
    runtime.set_num_threads(nt)


def _operands(rng, m, k, n, ta, tb, dtype, sliced):
    """A, B, C with op(A) m x k, op(B) k x n; slices of bigger arrays if sliced."""
    ashape = (k, m) if ta else (m, k)
    bshape = (n, k) if tb else (k, n)

    def make(shape):
        if not sliced:
            return rng.standard_normal(shape).astype(dtype)
        big = rng.standard_normal((shape[0] + 5, shape[1] + 7)).astype(dtype)
        return big[2:2 + shape[0], 3:3 + shape[1]]

    return make(ashape), make(bshape), make((m, n))


def _check(A, B, C0, C, ta, tb, alpha, beta):
    a = A.astype(np.float64)
    b = B.astype(np.float64)
    a = a.T if ta else a
    b = b.T if tb else b
    c0 = np.nan_to_num(C0.astype(np.float64)) if beta != 0 else 0.0
    ref = alpha * (a @ b) + beta * c0
    # Standard error bound of a length-k dot product, |err| <= k eps |A||B|,
    # with a little slack for the alpha / beta scaling.
    k = a.shape[1]
    eps = np.finfo(C.dtype).eps
    bound = (k + 4) * eps * (abs(alpha) * (np.abs(a) @ np.abs(b)) + abs(beta) * np.abs(c0)) \
        + 4 * np.finfo(C.dtype).tiny
    err = np.abs(C.astype(np.float64) - ref)
    assert np.all(np.isfinite(C)), "NaN/inf in result"
    assert np.all(err <= bound), f"max err {err.max():g}, worst err/bound {np.max(err / bound):g}"


def _run(rng, shape, ta, tb, dtype, alpha, beta, sliced=False, nan_c=False):
    m, k, n = shape
    A, B, C = _operands(rng, m, k, n, ta, tb, dtype, sliced)
    if nan_c:
        C[...] = np.nan
    C0 = C.copy()
    out = G.gemm(A, B, C, ta, tb, alpha, beta)
    assert out is C
    _check(A, B, C0, C, ta, tb, alpha, beta)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", TRANS)
def test_shapes_all_paths(isa_level, dtype, ta, tb):
    rng = np.random.default_rng(hash((isa_level, dtype.__name__, ta, tb)) % 2**32)
    for i, shape in enumerate(SHAPES):
        # cycle through the alpha / beta cases so each shape sees a few
        alpha, beta, nan_c = [(1.0, 0.0, True), (0.5, 1.0, False), (-2.0, 0.25, False),
                              (1.0, 0.0, False)][i % 4]
        _run(rng, shape, ta, tb, dtype, alpha, beta, sliced=(i % 3 == 1), nan_c=nan_c)


@pytest.mark.parametrize("ta,tb", TRANS)
def test_big_shapes(isa_level, ta, tb):
    rng = np.random.default_rng(7)
    for shape in BIG_SHAPES:
        _run(rng, shape, ta, tb, np.float32, 1.0, 0.0, nan_c=True)
        _run(rng, shape, ta, tb, np.float64, 0.75, -1.0, sliced=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_beta_zero_ignores_nan(dtype):
    rng = np.random.default_rng(1)
    for shape in [(5, 3, 4), (40, 70, 90), (250, 530, 300)]:
        for ta, tb in TRANS:
            _run(rng, shape, ta, tb, dtype, 1.0, 0.0, nan_c=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_accumulate(dtype):
    """beta = 1 adds onto C; repeated calls accumulate like +=."""
    rng = np.random.default_rng(2)
    A = rng.standard_normal((37, 23)).astype(dtype)
    B = rng.standard_normal((23, 41)).astype(dtype)
    C = np.zeros((37, 41), dtype)
    for _ in range(3):
        G.gemm(A, B, C, beta=1.0)
    ref = 3 * (A.astype(np.float64) @ B.astype(np.float64))
    np.testing.assert_allclose(C, ref, rtol=1e-4 if dtype == np.float32 else 1e-12,
                               atol=1e-4 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_degenerate(dtype):
    rng = np.random.default_rng(3)
    # k == 0: C = beta * C, beta == 0 writes zeros over NaN
    A = np.empty((4, 0), dtype)
    B = np.empty((0, 5), dtype)
    C = np.full((4, 5), np.nan, dtype)
    G.gemm(A, B, C)
    assert np.all(C == 0)
    C[...] = 2
    G.gemm(A, B, C, alpha=1.0, beta=0.5)
    assert np.all(C == 1)
    # alpha == 0 never touches A, B (even NaN there), beta == 0 gives zeros
    A = np.full((6, 7), np.nan, dtype)
    B = rng.standard_normal((7, 3)).astype(dtype)
    C = np.full((6, 3), np.nan, dtype)
    G.gemm(A, B, C, alpha=0.0, beta=0.0)
    assert np.all(C == 0)
    # empty m / n
    assert G.matmul(np.empty((0, 3), dtype), np.ones((3, 4), dtype)).shape == (0, 4)
    assert G.matmul(np.ones((2, 3), dtype), np.ones((3, 0), dtype)).shape == (2, 0)


@pytest.mark.parametrize("nt", [1, 2, 3])
@pytest.mark.parametrize("dtype", DTYPES)
def test_thread_counts(nt, dtype):
    """Same results whatever the thread count (k is never split), and the
    multi-threaded split (rows and/or columns) covers every element once.  The last three
    split C by columns with every thread on the packed path, over several KC and MC blocks."""
    runtime.set_num_threads(nt)
    rng = np.random.default_rng(4)
    for shape in [(300, 64, 128), (64, 700, 40), (13, 200, 3000), (250, 530, 300), (2000, 33, 10),
                  (60, 600, 700), (500, 600, 1100), (60, 600, 1100)]:
        for ta, tb in TRANS:
            _run(rng, shape, ta, tb, dtype, 1.0, 0.0, nan_c=True, sliced=True)
            _run(rng, shape, ta, tb, dtype, 0.5, 1.0)


def test_concurrent_python_threads():
    """gemm releases the GIL; concurrent callers use their own scratch buffers."""
    rng = np.random.default_rng(5)
    jobs = []
    for i in range(6):
        m, k, n = [(40, 50, 60), (250, 530, 300), (128, 32, 10)][i % 3]
        A = rng.standard_normal((m, k)).astype(np.float32)
        B = rng.standard_normal((k, n)).astype(np.float32)
        jobs.append((A, B, np.full((m, n), np.nan, np.float32)))
    errors = []

    def work(A, B, C):
        try:
            for _ in range(5):
                G.gemm(A, B, C)
            _check(A, B, C, C, False, False, 1.0, 0.0)
        except AssertionError as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=j) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_matmul_transposed_views_no_copy_needed():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((128, 64)).astype(np.float32)
    dY = rng.standard_normal((128, 32)).astype(np.float32)
    W = rng.standard_normal((64, 32)).astype(np.float32)
    np.testing.assert_allclose(G.matmul(X, dY, trans_a=True), X.T.astype(np.float64) @ dY,
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(G.matmul(dY, W, trans_b=True), dY.astype(np.float64) @ W.T,
                               rtol=1e-4, atol=1e-4)
    out = G.matmul(X, W)
    assert out.dtype == np.float32 and out.flags.c_contiguous and out.shape == (128, 32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(128, 64, 32), (128, 32, 10), (7, 5, 3), (300, 200, 150)])
def test_matmul_reads_column_major_operands_in_place(dtype, shape):
    """matmul takes a column-major operand (x.T of a row-major x, a Fortran-ordered array) as its
    transpose with the flag flipped: the same bits as on a C-contiguous copy, for either operand and
    either flag; gemm (which writes into C) still refuses it, and strides it cannot read raise."""
    m, k, n = shape
    rng = np.random.default_rng(11)
    a_cm = rng.standard_normal((k, m)).astype(dtype).T          # (m, k), column-major
    b_cm = np.asfortranarray(rng.standard_normal((k, n)).astype(dtype))
    a, b = np.ascontiguousarray(a_cm), np.ascontiguousarray(b_cm)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    tol = (2e-5 if dtype == np.float32 else 1e-12) * np.sqrt(k) * np.abs(ref).max()
    for x, y in [(a_cm, b), (a, b_cm), (a_cm, b_cm)]:
        got = G.matmul(x, y)
        np.testing.assert_array_equal(got, G.matmul(a, b))
        assert np.abs(got - ref).max() <= tol
    # op(x) = x^T with x column-major: read as the row-major x^T untransposed
    np.testing.assert_array_equal(G.matmul(np.asfortranarray(a.T), b, trans_a=True), G.matmul(a, b))
    np.testing.assert_array_equal(G.matmul(a, np.asfortranarray(b.T), trans_b=True), G.matmul(a, b))
    with pytest.raises(ValueError):
        G.gemm(a_cm, b, np.zeros((m, n), dtype))
    with pytest.raises(ValueError):                       # neither rows nor columns unit-strided
        G.matmul(rng.standard_normal((2 * m, 2 * k)).astype(dtype)[::2, ::2], b)


def test_gemm_follows_the_one_switch():
    best = runtime.simd_max()
    assert config.set_simd_path("portable") == "portable" and G.simd_path() == "portable"
    assert config.set_simd_path("auto") == best and G.simd_path() == best
    if runtime.cpu_has_avx2_fma():
        assert config.set_simd_path("avx2") == "avx2" and G.simd_path() == "avx2"


def test_boundary_checks():
    f32 = np.ones((3, 4), np.float32)
    g32 = np.ones((4, 5), np.float32)
    c32 = np.zeros((3, 5), np.float32)
    with pytest.raises(ValueError):                       # inner dims differ
        G.gemm(f32, np.ones((5, 5), np.float32), c32)
    with pytest.raises(ValueError):                       # C has the wrong shape
        G.gemm(f32, g32, np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError):                       # transposes make shapes disagree
        G.gemm(f32, g32, c32, trans_a=True)
    with pytest.raises(ValueError):                       # mixed dtypes
        G.gemm(f32, g32.astype(np.float64), c32)
    with pytest.raises(ValueError):                       # unsupported dtype
        G.gemm(f32.astype(np.int32), g32.astype(np.int32), c32.astype(np.int32))
    with pytest.raises(ValueError):                       # non-unit inner stride
        G.gemm(np.ones((3, 8), np.float32)[:, ::2], g32, c32)
    with pytest.raises(ValueError):                       # non-unit inner stride in C
        G.gemm(f32, g32, np.zeros((3, 10), np.float32)[:, ::2])
    with pytest.raises(ValueError):                       # Fortran order = transposed strides
        G.gemm(np.asfortranarray(f32), g32, c32)
    ro = np.zeros((3, 5), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError):                       # read-only C
        G.gemm(f32, g32, ro)
    with pytest.raises(ValueError):                       # not 2-D
        G.gemm(np.ones(4, np.float32), g32, c32)
    with pytest.raises(ValueError):                       # not arrays
        G.gemm([[1.0]], [[1.0]], np.zeros((1, 1)))
    with pytest.raises(ValueError):
        G.matmul(np.ones((2, 2, 2), np.float32), g32)


@pytest.mark.parametrize("nt", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", TRANS)
def test_gemm_pair_equals_two_products(nt, dtype, ta, tb):
    """gemm_pair packs op(B) once for both products where both take the packed path on one
    thread (the first shapes, on one thread); elsewhere it is two calls.  Either way the results
    are those of two gemm calls bit for bit, and within the error bound of float64 numpy."""
    runtime.set_num_threads(nt)
    rng = np.random.default_rng(11)
    for m1, m2, n, k in [(128, 32, 128, 1300), (50, 20, 300, 600), (13, 25, 17, 2000),
                         (13, 7, 40, 700), (1, 3, 5, 9), (30, 12, 64, 0)]:
        A1, B, C1 = _operands(rng, m1, k, n, ta, tb, dtype, sliced=True)
        A2 = _operands(rng, m2, k, n, ta, tb, dtype, sliced=True)[0]
        C2 = rng.standard_normal((m2, n)).astype(dtype)
        C1_0, C2_0 = C1.copy(), C2.copy()
        out = G.gemm_pair(A1, A2, B, C1, C2, ta, tb, 0.5, 1.0)
        assert out[0] is C1 and out[1] is C2
        for A, C0, C in ((A1, C1_0, C1), (A2, C2_0, C2)):
            _check(A, B, C0, C, ta, tb, 0.5, 1.0)
            np.testing.assert_array_equal(C, G.gemm(A, B, C0.copy(), ta, tb, 0.5, 1.0))


@pytest.mark.parametrize("nt", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES)
def test_transposed_a_read_in_place_or_packed(isa_level, nt, dtype):
    """The packed path reads a transposed A in place when a thread's block of C is small (long-k
    weight gradients): the same tiles and order of sums as packing it, so bit-identical results
    either way, within the float64 bound, also for sub-blocks, edge tiles, several KC blocks,
    accumulation and the paired products."""
    runtime.set_num_threads(nt)
    rng = np.random.default_rng(12)
    old = G._set_a_in_place_max_c(dtype, 0)
    try:
        for m, k, n in [(64, 1300, 64), (61, 1200, 67), (13, 1500, 40), (3, 900, 600), (12, 2100, 300)]:
            A, B, C = _operands(rng, m, k, n, True, False, dtype, sliced=True)
            A2 = _operands(rng, 7, k, n, True, False, dtype, sliced=True)[0]
            C2 = rng.standard_normal((7, n)).astype(dtype)
            results = []
            for limit in (0, 1 << 40):           # always packed, always in place
                G._set_a_in_place_max_c(dtype, limit)
                out = G.gemm(A, B, C.copy(), True, False, -0.5, 1.0)
                _check(A, B, C, out, True, False, -0.5, 1.0)
                results.append((out,) + G.gemm_pair(A, A2, B, C.copy(), C2.copy(), True, False, 2.0, 0.0))
            for packed, in_place in zip(*results):
                np.testing.assert_array_equal(packed, in_place)
    finally:
        G._set_a_in_place_max_c(dtype, old)


@pytest.mark.parametrize("nt", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES)
def test_small_path_b_in_place_or_copied(isa_level, nt, dtype):
    """The small path reads a row-major op(B) in place while a k chunk of it fits in half of L1,
    and copies it into panels beyond (for products of many rows): the same tiles and order of
    sums either way, so bit-identical results, within the float64 bound, for full and partial
    panels, several k chunks, sub-blocks and accumulation, with op(A) = A and A^T."""
    runtime.set_num_threads(nt)
    rng = np.random.default_rng(13)
    old = G._set_small_b_in_place_max_bytes(dtype, 0)
    try:
        for (m, k, n), ta in itertools.product([(200, 100, 64), (197, 300, 50), (130, 700, 40),
                                                (150, 64, 8)], [False, True]):
            A, B, C = _operands(rng, m, k, n, ta, False, dtype, sliced=True)
            results = []
            for limit in (0, 1 << 40):           # always copied, always in place
                G._set_small_b_in_place_max_bytes(dtype, limit)
                out = G.gemm(A, B, C.copy(), ta, False, 0.75, -1.0)
                _check(A, B, C, out, ta, False, 0.75, -1.0)
                results.append(out)
            np.testing.assert_array_equal(results[0], results[1])
    finally:
        G._set_small_b_in_place_max_bytes(dtype, old)


def test_gemm_pair_checks_both_products():
    a = np.ones((4, 3), np.float32)
    b = np.ones((3, 5), np.float32)
    with pytest.raises(ValueError, match=r"gemm_pair: shapes do not agree: op\(A\) is \(4, 3\)"):
        G.gemm_pair(a, a, b, np.empty((4, 5), np.float32), np.empty((3, 5), np.float32))
    with pytest.raises(ValueError, match="gemm_pair: A, B, C must share dtype"):  # B is shared
        G.gemm_pair(a, a.astype(np.float64), b, np.empty((4, 5), np.float32), np.empty((4, 5), np.float64))
