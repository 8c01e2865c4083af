"""Embedding lookup: a gather forward; the gradient stays as rows until the optimizer or a dense
consumer needs it (engine._kernels.embedding.segment_sum builds the dense array)."""
import numpy as np

from engine.autodiff import SparseGradient, differentiable
from engine.ops._util import contiguous
from engine.tensor import ArrayHolder
from engine._kernels import embedding as E


def ids_array(ids):
    """Embedding ids as a contiguous int32/int64 array (float ids truncated, as Keras casts them).

    Args:
        ids: an array-like of ids.

    Returns:
        The array; ValueError for ids that are not numbers.
    """
    ids = np.asarray(ids._value if isinstance(ids, ArrayHolder) else ids)   # (no value is read here)
    if ids.dtype.kind == "f":
        ids = ids.astype(np.int64)
    elif ids.dtype.kind not in "iu":
        raise ValueError(f"embedding_lookup: ids must be integers, got dtype {ids.dtype}")
    if ids.dtype not in (np.int32, np.int64):
        ids = ids.astype(np.int64)
    return np.ascontiguousarray(ids)


def scatter_rows(n_rows, ids, rows):
    """The gradient of a gather of rows -- the one definition, for embedding lookups and take:
    an (n_rows, width) array whose row v is the sum of the rows of `rows` (one per id, in
    position order) where ids == v, zeros elsewhere. ids: integers in [0, n_rows), any shape;
    rows: ids' shape + (width,) or (ids.size, width). The kernel takes float32/float64; other
    dtypes add the same rows in the same order with numpy."""
    flat = ids.reshape(-1)
    if rows.dtype in (np.float32, np.float64):
        if flat.dtype not in (np.int32, np.int64):
            flat = flat.astype(np.int64)
        out = np.empty((n_rows, rows.shape[1]), rows.dtype)
        E.segment_sum(out, np.ascontiguousarray(flat), np.ascontiguousarray(rows))
        return out
    out = np.zeros((n_rows, rows.shape[1]), rows.dtype)
    np.add.at(out, flat, rows)
    return out


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
        return scatter_rows(self.shape[0], self.ids, self.rows)

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
def _lookup(table, ids, layer=None):
    out = np.empty(ids.shape + (table.shape[1],), dtype=table.dtype)
    try:
        E.gather(table, ids, out)       # the kernel checks every id against the table's rows
    except ValueError as e:
        if layer is None:
            raise
        # inside the op, so that a replayed step plan checks the ids of every batch too
        raise ValueError(f"Layer \"{layer}\" (Embedding): {str(e).split(': ', 1)[-1]}; input_dim is "
                         f"{table.shape[0]} (input shape {ids.shape})") from None

    def vjp(g, needs):
        return RowGradient(ids, contiguous(g, table.dtype), table.shape, table.dtype), None
    return out, vjp


def embedding_lookup(table, ids, layer=None):
    """table[ids] for a (V, D) table and integer ids of any shape; every id must be in [0, V)
    (a ValueError otherwise, naming `layer` when given)."""
    return _lookup(table, ids_array(ids), layer=layer)
