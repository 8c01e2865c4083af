"""Reductions across ranks whose result is bit-identical on every rank.

`fixed_order_sum` gathers every rank's array and adds them in rank order on every rank, so the
sum never depends on which rank computes it (used for metric states, batch-norm statistics and
sample counts, all small). The large gradient reduction lives in engine/distribution/gradients.py.
"""
import numpy as np

from engine.autodiff import differentiable
from engine.distribution import _mpi


def fixed_order_sum(array):
    """The sum over ranks of `array` (same shape and dtype on every rank), added in rank order, so
    every rank gets the same bits."""
    comm = _mpi.world()
    local = np.ascontiguousarray(array)
    gathered = np.empty((comm.Get_size(),) + local.shape, dtype=local.dtype)
    comm.Allgather(local, gathered)
    total = gathered[0].copy()
    for part in gathered[1:]:
        total += part
    return total


@differentiable
def _all_sum(x):
    """sum over ranks of x; its gradient is the sum over ranks of the output's gradient (each rank's
    loss depends on the shared sum, so every rank's share flows back to every input)."""
    out = fixed_order_sum(x)

    def vjp(g, needs):
        return (fixed_order_sum(np.asarray(g, dtype=x.dtype)),)
    return out, vjp


def all_sum(x):
    """The sum over ranks of the tensor `x`, differentiable (recorded on the tape).

    Args:
        x: a tensor of the same shape and dtype on every rank.

    Returns:
        A Tensor, bit-identical on every rank.
    """
    return _all_sum(x)


def broadcast_arrays(arrays, root=0):
    """`arrays` (a list of numpy arrays) as rank `root` holds them, on every rank."""
    return _mpi.world().bcast([np.asarray(a) for a in arrays] if _mpi.world().Get_rank() == root else None,
                              root=root)


def allgather(obj):
    """A list of every rank's `obj` (any picklable value), in rank order."""
    return _mpi.world().allgather(obj)


def broadcast_object(obj, root=0):
    """Rank `root`'s `obj` (any picklable value) on every rank."""
    return _mpi.world().bcast(obj, root=root)


def barrier():
    """Wait for every rank."""
    _mpi.world().Barrier()
