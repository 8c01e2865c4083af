"""Embedding kernels: gather against numpy take, segment_sum against np.add.at, id checks."""
import numpy as np
import pytest

from engine._kernels import embedding as E
from engine._kernels import runtime


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("id_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("shape", [(0,), (7,), (3, 5), (64, 700)])  # the last one runs threaded
def test_gather_and_segment_sum(dtype, id_dtype, shape):
    rng = np.random.default_rng(0)
    table = rng.standard_normal((50, 9)).astype(dtype)
    ids = rng.integers(0, 50, shape).astype(id_dtype)
    out = np.empty(shape + (9,), dtype)
    E.gather(table, ids, out)
    np.testing.assert_array_equal(out, table[ids])
    grad = rng.standard_normal(shape + (9,)).astype(dtype)
    acc = np.ones_like(table)                      # overwritten, not added to
    E.segment_sum(acc, ids, grad)
    expected = np.zeros((50, 9))
    np.add.at(expected, ids.reshape(-1), grad.reshape(-1, 9).astype(np.float64))
    np.testing.assert_allclose(acc, expected, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-4)


def test_heavily_repeated_ids_with_each_thread_count():
    rng = np.random.default_rng(1)
    ids = np.zeros((40000,), np.int64)
    ids[::3] = 7
    grad = rng.standard_normal((40000, 4))
    before = runtime.get_num_threads()
    try:
        for threads in (1, 2, 3):
            runtime.set_num_threads(threads)
            acc = np.full((10, 4), np.nan)
            E.segment_sum(acc, ids, grad)
            expected = np.zeros((10, 4))
            np.add.at(expected, ids, grad)
            np.testing.assert_allclose(acc, expected, rtol=1e-10)
    finally:
        runtime.set_num_threads(before)


@pytest.mark.parametrize("bad", [-1, 50, 2 ** 40])
def test_out_of_range_ids_raise_and_write_nothing(bad):
    table = np.zeros((50, 3), np.float32)
    ids = np.array([[1, 2], [3, bad]], np.int64)
    out = np.full((2, 2, 3), 7.0, np.float32)
    with pytest.raises(ValueError, match=rf"id {bad} at position \(1, 1\).*\[0, 50\)"):
        E.gather(table, ids, out)
    assert (out == 7.0).all()
    with pytest.raises(ValueError, match=f"id {bad}"):
        E.segment_sum(table, ids, np.ones((2, 2, 3), np.float32))
    assert not table.any()


def test_bad_arguments():
    table = np.zeros((5, 3), np.float32)
    ids = np.array([1, 2], np.int64)
    with pytest.raises(ValueError, match="shape"):
        E.gather(table, ids, np.empty((2, 4), np.float32))
    with pytest.raises(ValueError, match="int32 or int64"):
        E.gather(table, ids.astype(np.float32), np.empty((2, 3), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        E.gather(np.zeros((5, 6), np.float32)[:, ::2], ids, np.empty((2, 3), np.float32))
    with pytest.raises(ValueError, match="float32"):
        E.gather(table, ids, np.empty((2, 3), np.float64))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("id_dtype", [np.int32, np.int64])
def test_segment_sum_is_the_dense_gradient_of_gather(dtype, id_dtype):
    """Every row is overwritten: sums of repeated ids in position order, zeros for unused ids
    (whatever was in the buffer before), the same for any thread count."""
    from engine import config
    rng = np.random.default_rng(5)
    vocab, width = 300, 40
    ids = rng.integers(0, vocab // 2, size=(64, 50)).astype(id_dtype)   # half the table unused
    grad = rng.standard_normal(ids.shape + (width,)).astype(dtype)
    want = np.zeros((vocab, width))
    np.add.at(want, ids.reshape(-1), grad.reshape(-1, width).astype(np.float64))
    results = []
    old = config.get_num_threads()
    try:
        for threads in (1, 2):
            config.set_num_threads(threads)
            out = np.full((vocab, width), np.nan, dtype)
            E.segment_sum(out, ids, grad)
            results.append(out)
    finally:
        config.set_num_threads(old)
    np.testing.assert_allclose(results[0], want, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)
    np.testing.assert_array_equal(results[0], results[1])
    with pytest.raises(ValueError, match="outside"):
        E.segment_sum(np.empty((vocab, width), dtype), np.array([[vocab]], id_dtype), grad[:1, :1])


@pytest.mark.parametrize("id_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("shape,vocab", [((0,), 5), ((7,), 1), ((3, 5), 4), ((128, 100), 10000), ((50,), 0)])
def test_rows_by_id_is_a_stable_sort_with_group_starts(id_dtype, shape, vocab):
    rng = np.random.default_rng(3)
    ids = rng.integers(0, max(vocab, 1), shape).astype(id_dtype) if vocab else np.zeros(0, id_dtype)
    order, start = E.rows_by_id(ids, vocab)
    flat = ids.reshape(-1)
    assert order.dtype == np.int64 and start.dtype == np.int64
    # independent reference: positions listed id by id, in increasing position order
    expected_order = [i for v in range(vocab) for i in range(flat.size) if flat[i] == v] \
        if flat.size * vocab <= 10 ** 6 else np.argsort(flat, kind="stable")
    np.testing.assert_array_equal(order, expected_order)
    counts = np.bincount(flat, minlength=vocab) if vocab else np.zeros(0, np.int64)
    np.testing.assert_array_equal(start, np.concatenate([[0], np.cumsum(counts)]))


@pytest.mark.parametrize("bad", [-1, 10])
def test_rows_by_id_rejects_ids_outside_the_vocabulary(bad):
    ids = np.array([[0, 3], [bad, 9]], np.int64)
    with pytest.raises(ValueError, match=rf"rows_by_id: id {bad} at position \(1, 0\) is outside \[0, 10\)"):
        E.rows_by_id(ids, 10)
    with pytest.raises(ValueError, match="ids must be an int32 or int64 array"):
        E.rows_by_id(ids.astype(np.float32), 10)
