"""The gradient reduction of a data-parallel step, overlapped with the backward pass.

The trainable variables are laid out back to front (the backward pass finishes the last layers'
gradients first) in one contiguous buffer per dtype, cut into buckets of about
`BUCKET_BYTES`. The tape reports each variable's gradient as soon as it is final
(`on_ready`); it is copied into its slot, and a bucket whose slots are all filled is handed to a
non-blocking reduction while the backward pass goes on. Buckets are started strictly in bucket
order, so every rank issues the same collectives in the same order.

Every rank must end with the same bits. On 2 ranks `Iallreduce(SUM)` gives that: each rank
adds the same two numbers and IEEE addition is commutative. MPI does not promise that an
allreduce over more ranks returns identical bits everywhere (the order of additions may differ
between ranks), so on N > 2 ranks each bucket is reduced onto rank 0 (`Ireduce`) and the result
is broadcast from there: one rank's bits reach every rank.
"""
import numpy as np

from engine.autodiff import SparseGradient
from engine.distribution import _mpi

BUCKET_BYTES = 1 << 20


class _Layout:
    """Where each variable's gradient lives: (dtype, start, size) in its dtype's buffer, and the
    buckets as (dtype, start, stop, member indices)."""

    def __init__(self, variables, bucket_bytes):
        self.shapes = [tuple(v.shape) for v in variables]
        self.slots = [None] * len(variables)
        self.sizes = {}
        self.buckets = []
        self.bucket_of = [None] * len(variables)
        open_bucket = {}
        for i in reversed(range(len(variables))):
            dtype = np.dtype(variables[i].dtype)
            size = int(np.prod(self.shapes[i], dtype=np.int64))
            start = self.sizes.get(dtype, 0)
            self.slots[i] = (dtype, start, size)
            self.sizes[dtype] = start + size
            b = open_bucket.get(dtype)
            if b is None or (self.buckets[b][2] - self.buckets[b][1]) * dtype.itemsize >= bucket_bytes:
                b = len(self.buckets)
                self.buckets.append([dtype, start, start, []])
                open_bucket[dtype] = b
            self.buckets[b][2] = start + size
            self.buckets[b][3].append(i)
            self.bucket_of[i] = b


class GradientReducer:
    """Reduces one step's gradients (already scaled by this rank's share of the global batch, so
    their sum over ranks is the global gradient). `on_ready(index, grad)` is the tape's hook;
    `finish()` waits for the reductions and returns the summed gradients, one per variable (None
    where this rank's gradient was None: the graph, hence that pattern, is the same on every rank)."""

    def __init__(self, variables, bucket_bytes=BUCKET_BYTES):
        self.layout = _Layout(variables, bucket_bytes)
        self.comm = _mpi.world()
        self.MPI = _mpi.mpi()

    def start(self):
        """Begin a step: fresh buffers, no bucket started; returns self."""
        lay = self.layout
        self.buffers = {dtype: np.empty(n, dtype=dtype) for dtype, n in lay.sizes.items()}
        self.missing = [len(b[3]) for b in lay.buckets]
        self.is_none = [False] * len(lay.slots)
        self.next_bucket = 0
        self.requests = []
        return self

    def on_ready(self, index, grad):
        """Copy variable `index`'s final gradient into its slot; start the buckets now complete."""
        dtype, start, size = self.layout.slots[index]
        view = self.buffers[dtype][start:start + size]
        if grad is None:
            self.is_none[index] = True
            view[...] = 0
        else:
            if isinstance(grad, SparseGradient):
                grad = grad.dense()
            view[...] = np.asarray(grad).reshape(-1)
        self.missing[self.layout.bucket_of[index]] -= 1
        self._issue_ready()

    def _issue_ready(self):
        buckets = self.layout.buckets
        while self.next_bucket < len(buckets) and self.missing[self.next_bucket] == 0:
            dtype, start, stop, _ = buckets[self.next_bucket]
            self.requests.append(self._reduce(self.buffers[dtype][start:stop]))
            self.next_bucket += 1
        if self.requests:
            # MPI moves a non-blocking collective on only inside MPI calls (without a progress
            # thread, which would take a core): test the pending ones at every gradient, so the
            # buckets travel while the backward pass computes the next ones.
            self.MPI.Request.Testall(self.requests)

    def _reduce(self, view):
        MPI, comm = self.MPI, self.comm
        if comm.Get_size() == 2:
            return comm.Iallreduce(MPI.IN_PLACE, view, op=MPI.SUM)
        if comm.Get_rank() == 0:
            return comm.Ireduce(MPI.IN_PLACE, view, op=MPI.SUM, root=0)
        return comm.Ireduce(view, None, op=MPI.SUM, root=0)

    def finish(self):
        """Wait for every bucket; the reduced gradients, shaped as the variables."""
        if any(self.missing):
            raise RuntimeError("internal error: the backward pass did not report every gradient")
        self.MPI.Request.Waitall(self.requests)
        if self.comm.Get_size() > 2:
            for buf in self.buffers.values():
                self.comm.Bcast(buf, root=0)
        out = []
        for i, (dtype, start, size) in enumerate(self.layout.slots):
            out.append(None if self.is_none[i] else
                       self.buffers[dtype][start:start + size].reshape(self.layout.shapes[i]))
        return out
