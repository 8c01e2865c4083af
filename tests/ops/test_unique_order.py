"""ops.unique(sorted=False): the distinct values in the order of their first occurrence (Keras's
TensorFlow backend's order), with index, inverse and counts in that order; scan's unroll."""
import numpy as np
import pytest

from engine import ops


def _first_occurrence_reference(values):
    """Distinct items of a list in first-seen order, with first index, inverse and counts."""
    seen, firsts, inverse = [], [], []
    for i, v in enumerate(values):
        if v not in seen:
            seen.append(v)
            firsts.append(i)
        inverse.append(seen.index(v))
    counts = [sum(1 for v in values if v == s) for s in seen]
    return seen, firsts, inverse, counts


def test_unsorted_unique_keeps_first_occurrence_order():
    x = np.random.default_rng(0).integers(0, 6, 20)
    got = ops.unique(x, sorted=False, return_index=True, return_inverse=True, return_counts=True)
    want = _first_occurrence_reference(x.tolist())
    for g, w in zip(got, want):
        assert np.asarray(g).tolist() == w
    assert np.asarray(ops.unique(x)).tolist() == sorted(set(x.tolist()))


def test_unsorted_unique_along_an_axis():
    rows = np.array([[2, 0], [1, 1], [2, 0], [0, 3], [1, 1]])
    values, inverse = ops.unique(rows, sorted=False, axis=0, return_inverse=True)
    seen, _, inv, _ = _first_occurrence_reference([tuple(r) for r in rows.tolist()])
    assert [tuple(r) for r in np.asarray(values).tolist()] == seen
    assert np.asarray(inverse).ravel().tolist() == inv


@pytest.mark.parametrize("unroll", [1, 3, True, False])
def test_scan_gives_the_same_result_for_every_unroll(unroll):
    xs = np.arange(6.0)
    carry, ys = ops.scan(lambda c, x: (c + x, c * x), np.float64(1.0), xs, unroll=unroll)
    c, out = 1.0, []
    for x in xs:
        out.append(c * x)
        c += x
    assert float(np.asarray(carry)) == c and np.asarray(ys).tolist() == out
    with pytest.raises(ValueError, match="unroll"):
        ops.scan(lambda c, x: (c, x), 0.0, xs, unroll=0)
