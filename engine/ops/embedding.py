"""Embedding lookup: a gather forward and a scatter-add gradient (engine._kernels.embedding)."""
import numpy as np

from engine.autodiff import differentiable
from engine.ops._util import contiguous
from engine._kernels import embedding as E


def _ids_array(ids):
    ids = np.asarray(ids)
    if ids.dtype.kind == "f":
        ids = ids.astype(np.int64)
    elif ids.dtype.kind not in "iu":
        raise ValueError(f"embedding_lookup: ids must be integers, got dtype {ids.dtype}")
    if ids.dtype not in (np.int32, np.int64):
        ids = ids.astype(np.int64)
    return np.ascontiguousarray(ids)


@differentiable
def _lookup(table, ids):
    out = np.empty(ids.shape + (table.shape[1],), dtype=table.dtype)
    E.gather(table, ids, out)

    def vjp(g, needs):
        # Every row written once (sums where ids occur, zeros elsewhere): no separate zero fill.
        grad_table = np.empty_like(table)
        E.segment_sum(grad_table, ids, contiguous(g, table.dtype))
        return grad_table, None
    return out, vjp


def embedding_lookup(table, ids):
    """table[ids] for a (V, D) table and integer ids of any shape; every id must be in [0, V)."""
    return _lookup(table, _ids_array(ids))
