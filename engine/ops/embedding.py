"""Embedding lookup: a gather forward; the gradient stays as rows until the optimizer or a dense
consumer needs it (engine._kernels.embedding.segment_sum builds the dense array)."""
import numpy as np

from engine.autodiff import SparseGradient, differentiable
from engine.ops._util import contiguous
from engine._kernels import embedding as E


def ids_array(ids):
    """Embedding ids as a contiguous int32/int64 array (float ids truncated, as Keras casts them).

    Args:
        ids: an array-like of ids.

    Returns:
        The array; ValueError for ids that are not numbers.
    """
    ids = np.asarray(ids)
    if ids.dtype.kind == "f":
        ids = ids.astype(np.int64)
    elif ids.dtype.kind not in "iu":
        raise ValueError(f"embedding_lookup: ids must be integers, got dtype {ids.dtype}")
    if ids.dtype not in (np.int32, np.int64):
        ids = ids.astype(np.int64)
    return np.ascontiguousarray(ids)


class RowGradient(SparseGradient):
    """The gradient of a table lookup kept as its rows: output-gradient rows and the ids they add
    to.  The training step hands it to the optimizer as is, which can fold it into the table's
    update without building the dense (V, D) array, most of it zeros (see Optimizer.apply).
    Anything else gets the dense array: np.asarray(), +, and GradientTape.gradient's result."""
    __array_priority__ = 100          # so ndarray + RowGradient defers to __radd__

    def __init__(self, ids, rows, shape, dtype):
        self.ids = ids.reshape(-1)
        self.rows = rows.reshape(-1, shape[1])
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)

    def dense(self):
        """Every row written once: the sum where ids occur (in position order), zeros elsewhere."""
        out = np.empty(self.shape, self.dtype)
        E.segment_sum(out, self.ids, self.rows)
        return out

    def kernel_rows(self):
        """(rows, order, start), the form the optimizer kernels take a gradient by rows in: table
        row v's gradient is the sum of rows[order[start[v]:start[v+1]]], in position order (the
        order dense() adds them in)."""
        order, start = E.rows_by_id(self.ids, self.shape[0])
        return self.rows, order, start

    def __array__(self, dtype=None, copy=None):
        dense = self.dense()
        return dense if dtype is None else dense.astype(dtype, copy=False)

    def __add__(self, other):
        return self.dense() + np.asarray(other)

    __radd__ = __add__


@differentiable
def _lookup(table, ids):
    out = np.empty(ids.shape + (table.shape[1],), dtype=table.dtype)
    E.gather(table, ids, out)

    def vjp(g, needs):
        return RowGradient(ids, contiguous(g, table.dtype), table.shape, table.dtype), None
    return out, vjp


def embedding_lookup(table, ids):
    """table[ids] for a (V, D) table and integer ids of any shape; every id must be in [0, V)."""
    return _lookup(table, ids_array(ids))
