"""Reductions across ranks whose result is bit-identical on every rank, and how a rank waits.

`fixed_order_sum` gathers every rank's array and adds them in rank order on every rank, so the
sum never depends on which rank computes it (used for metric states, batch-norm statistics and
sample counts, all small). The large gradient reduction lives in engine/distribution/gradients.py.

`wait` completes non-blocking requests. MPI moves a transfer between ranks on one machine only
inside MPI calls on both sides (a shared-memory collective goes in rounds, each needing both
ranks), so a rank that sleeps while its peer is ready stalls the transfer for every round: on
the three-output tour model (2 ranks x 1 thread on 2 cores) sleeping after 1 ms made a step's
row gathers take 5 ms where polling took 1.6 ms. But a rank that polls holds its core, which a
lagging rank, or its kernel threads, may need when the ranks' threads outnumber the machine's
cores. So the policy depends on that (`set_wait_policy`, chosen when a DataParallel is made):
- the cores suffice (ranks on this machine x kernel threads <= its cores): poll for up to
  `DEDICATED_SPIN_SECONDS`, then yield the core between tests (with nothing else runnable a
  yield returns at once) up to `DEDICATED_YIELD_SECONDS`; only a longer wait (rank 0 writing a
  checkpoint) sleeps;
- oversubscribed: spin for `SPIN_SECONDS` (a rank in step with the others waits no longer), yield
  up to `YIELD_SECONDS`, then sleep in slices of at most `SLEEP_SECONDS`, so a long wait costs at
  most that much extra latency.
engine sets no MPI environment variables: the wait strategy lives here, whatever launched the
job.
"""
import os
import time

import numpy as np

from engine.autodiff import differentiable
from engine.distribution import _mpi

SPIN_SECONDS = 50e-6
YIELD_SECONDS = 1e-3
SLEEP_SECONDS = 100e-6
DEDICATED_SPIN_SECONDS = 10e-3
DEDICATED_YIELD_SECONDS = 1.0

_limits = (SPIN_SECONDS, YIELD_SECONDS)       # (spin until, yield until) of the policy in force


def set_wait_policy(dedicated_cores):
    """Choose how `wait` waits: `dedicated_cores` True when every rank's threads have cores of
    their own (poll: see the module's docstring), False when they share them (spin briefly, then
    sleep)."""
    global _limits
    _limits = (DEDICATED_SPIN_SECONDS, DEDICATED_YIELD_SECONDS) if dedicated_cores else \
        (SPIN_SECONDS, YIELD_SECONDS)


def wait(requests):
    """Complete every MPI request in `requests` (a list): spin, then yield, then sleep, for as
    long as the policy in force says (see the module's docstring)."""
    test = _mpi.mpi().Request.Testall
    if test(requests):
        return
    spin, yield_until = _limits
    start = time.perf_counter()
    while not test(requests):
        waited = time.perf_counter() - start
        if waited < spin:
            continue
        if waited < yield_until:
            os.sched_yield()
        else:
            time.sleep(SLEEP_SECONDS)


def allgather_array(array):
    """Every rank's `array` (same shape and dtype on every rank), stacked in rank order: an array
    of shape (ranks,) + array.shape, moved as a buffer (no pickling)."""
    comm = _mpi.world()
    local = np.ascontiguousarray(array)
    gathered = np.empty((comm.Get_size(),) + local.shape, dtype=local.dtype)
    wait([comm.Iallgather(local, gathered)])
    return gathered


def fixed_order_sum(array):
    """The sum over ranks of `array` (same shape and dtype on every rank), added in rank order, so
    every rank gets the same bits."""
    gathered = allgather_array(array)
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


def broadcast_into(arrays, names=None, root=0):
    """Overwrite `arrays` (numpy arrays, written in place) with rank `root`'s, on every rank.

    The bytes go straight from root's arrays into the others' (non-blocking broadcasts, all in
    flight together), without pickling: the three-output tour model's weights and optimizer state
    (112 MB) took 250-400 ms of CPU per fit pickled, against a few tens of ms here. Every rank
    first checks that all ranks hold the same shapes and dtypes (else a ValueError on every rank,
    naming the first array that differs by `names`), so no rank is left in a broadcast alone.
    """
    comm = _mpi.world()
    layouts = comm.allgather([(tuple(a.shape), a.dtype.str) for a in arrays])
    for r, layout in enumerate(layouts):
        if layout != layouts[root]:
            if len(layout) != len(layouts[root]):
                raise ValueError(f"engine.distribution: rank {r} holds {len(layout)} weight and optimizer arrays, "
                                 f"rank {root} {len(layouts[root])}; every rank must build the same model and optimizer")
            i = next(i for i, (a, b) in enumerate(zip(layout, layouts[root])) if a != b)
            name = names[i] if names is not None else f"array {i}"
            raise ValueError(f"engine.distribution: {name} has shape {layout[i][0]} and dtype {layout[i][1]} on "
                             f"rank {r} but {layouts[root][i][0]} / {layouts[root][i][1]} on rank {root}; every "
                             "rank must build the same model and optimizer")
    receiving = comm.Get_rank() != root
    buffers = [a if a.flags.c_contiguous and (a.flags.writeable or not receiving) else np.ascontiguousarray(a)
               for a in arrays]
    # as bytes: every dtype travels (MPI has no float16, for one)
    byte = _mpi.mpi().BYTE
    wait([comm.Ibcast([b.reshape(-1).view(np.uint8), byte], root=root) for b in buffers if b.size])
    for a, b in zip(arrays, buffers):
        if b is not a:
            np.copyto(a, b)


def allgather(obj):
    """A list of every rank's `obj` (any picklable value), in rank order."""
    return _mpi.world().allgather(obj)


def broadcast_object(obj, root=0):
    """Rank `root`'s `obj` (any picklable value) on every rank."""
    return _mpi.world().bcast(obj, root=root)


def barrier():
    """Wait for every rank (without spinning through a long wait: rank 0 may be writing a file)."""
    wait([_mpi.world().Ibarrier()])
