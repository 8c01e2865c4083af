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

An Embedding's gradient arrives as rows (engine.ops.embedding.RowGradient: the batch's ids and one
gradient row per id). Reduced dense it would send the whole table (the three-output tour model:
51 MB per step, of which only the batch's rows are non-zero), so it is reduced as rows instead:
the ranks exchange their id counts, then every rank gathers every rank's (ids, rows) in rank
order (Iallgatherv) and the optimizer gets them as one RowGradient. Its sum per table row is
then taken in the same order on every rank (bit-identical, on any number of ranks), and that
order is the global batch's position order, as in one process. A ring all-reduce of a table
moves 2 (N - 1) / N of it through each rank, an all-gather (N - 1) / N of the gathered rows, so
rows are cheaper on the wire up to twice the table's row count (`SPARSE_ROWS`); beyond, the
gradient is reduced dense with its bucket. Rows cost the optimizer a sort and a sum per row,
but spare the reducer the dense table (built, copied into its bucket, reduced): on the QA tour
model (12800 ids for 10000 rows, 2 ranks) copy-in + wait + optimizer took 5.7 ms of CPU per step
by rows and 6.6 ms dense (means of 3 alternating runs).
A variable of at least `BUCKET_BYTES` has a bucket of its own, so that a table reduced as rows
leaves no bucket to send; for such a table the choice is made in finish(), for all of them in
one exchange of id counts (the ranks meet there anyway), so the backward pass has no point where
every rank waits for the slowest. A smaller table shares its bucket and decides when reported.

`sent_bytes` (after `finish`) is what this rank handed to MPI in the step: the buckets reduced
and its own ids and rows (bench/distributed.py's cost model reads it).
"""
import numpy as np

from engine.autodiff import SparseGradient
from engine.distribution import _mpi, collectives
from engine.ops.embedding import RowGradient

BUCKET_BYTES = 1 << 20
SPARSE_ROWS = 2.0        # ids over all ranks, in table rows, up to which a table's gradient travels as rows


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
            large = size * dtype.itemsize >= bucket_bytes
            if b is None or large or (self.buckets[b][2] - self.buckets[b][1]) * dtype.itemsize >= bucket_bytes:
                b = len(self.buckets)
                self.buckets.append([dtype, start, start, []])
                open_bucket[dtype] = None if large else b
            self.buckets[b][2] = start + size
            self.buckets[b][3].append(i)
            self.bucket_of[i] = b


class GradientReducer:
    """Reduces one step's gradients (already scaled by this rank's share of the global batch, so
    their sum over ranks is the global gradient). `on_ready(index, grad)` is the tape's hook;
    `finish()` waits for the reductions and returns the summed gradients, one per variable (None
    where this rank's gradient was None: the graph, hence that pattern, is the same on every rank).
    The dense gradients, and the rows gathered for a table, are views of the reducer's buffers,
    which every step reuses (fresh ones would be page-faulted in on every step): they are the
    optimizer's until the next start()."""

    def __init__(self, variables, bucket_bytes=BUCKET_BYTES):
        self.variables = list(variables)      # held: the caller keys reducers by the variables' ids
        self.layout = _Layout(variables, bucket_bytes)
        self.comm = _mpi.world()
        self.MPI = _mpi.mpi()
        self.buffers = {dtype: np.empty(n, dtype=dtype) for dtype, n in self.layout.sizes.items()}
        self.row_buffers = {}        # table index -> (ids, rows) receive buffers, kept across steps

    def start(self):
        """Begin a step: no slot filled, no bucket started; returns self."""
        lay = self.layout
        self.missing = [len(b[3]) for b in lay.buckets]
        self.dense_members = [len(b[3]) for b in lay.buckets]    # those not reduced as rows
        self.is_none = [False] * len(lay.slots)
        self.rows = {}               # index -> RowGradient of every rank's ids and rows, being gathered
        self.deferred = []           # (index, RowGradient) of tables whose way is decided in finish()
        self.deferred_buckets = set()
        self.sent_bytes = 0
        self.in_flight = []
        self.next_bucket = 0
        self.requests = []
        return self

    def on_ready(self, index, grad):
        """Copy variable `index`'s final gradient into its slot; start the buckets now complete."""
        dtype, start, size = self.layout.slots[index]
        view = self.buffers[dtype][start:start + size]
        bucket = self.layout.bucket_of[index]
        if grad is None:
            self.is_none[index] = True
            view[...] = 0
        elif isinstance(grad, RowGradient) and len(self.layout.buckets[bucket][3]) == 1:
            # A table alone in its bucket holds no other gradient back: rows or dense is decided in
            # finish(), for every such table in one exchange of id counts, where the ranks meet
            # anyway, instead of in one exchange per table here (each a point where every rank
            # waits for the slowest); its bucket is skipped until then.
            self.deferred.append((index, grad))
            self.deferred_buckets.add(bucket)
        elif isinstance(grad, RowGradient) and self._gather_rows(index, grad):
            self.dense_members[self.layout.bucket_of[index]] -= 1
            if self.dense_members[self.layout.bucket_of[index]]:
                view[...] = 0            # its bucket is reduced all the same (for the others)
        else:
            if isinstance(grad, SparseGradient):
                grad = grad.dense()
            view[...] = np.asarray(grad).reshape(-1)
        self.missing[self.layout.bucket_of[index]] -= 1
        self._issue_ready()

    def _exchange_counts(self, tables):
        """Every rank's id count of each (index, RowGradient) in `tables`: an array (ranks, tables).
        The variables must agree, or the ranks' collectives no longer pair up (a table that is rows
        on one rank and dense on another: see test_parts.py's tape / plan check for why the graph
        makes that pattern the same everywhere)."""
        local = np.array([[index, grad.ids.size] for index, grad in tables], np.int64)
        seen = collectives.allgather_array(local)
        if np.any(seen[:, :, 0] != local[:, 0]):
            raise RuntimeError(f"engine.distribution: the ranks reduce the gradients of different tables by rows "
                               f"at the same point (variables by rank: {seen[:, :, 0].tolist()}); every rank must run the "
                               "same model, with the same layers reading each table")
        return seen[:, :, 1]

    def _gather_rows(self, index, grad, counts=None):
        """Start gathering every rank's (ids, rows) of a table's gradient, unless they would
        outweigh the table (then False: it is reduced dense). Every rank decides the same, from
        the same id counts (`counts`, every rank's; exchanged here when None)."""
        ids = np.ascontiguousarray(grad.ids, dtype=np.int64)     # one id type on every rank
        rows = np.ascontiguousarray(grad.rows)
        counts = (self._exchange_counts([(index, grad)])[:, 0] if counts is None else counts).tolist()
        if sum(counts) > SPARSE_ROWS * grad.shape[0]:
            return False
        width, total = grad.shape[1], sum(counts)
        all_ids, all_rows = self._row_buffers(index, total, width, rows.dtype)
        self.requests.append(self.comm.Iallgatherv(ids, (all_ids, counts)))
        self.requests.append(self.comm.Iallgatherv(rows, (all_rows, [c * width for c in counts])))
        self.sent_bytes += ids.nbytes + rows.nbytes
        self.in_flight.append((ids, rows))      # send buffers alive until the gathers complete
        self.rows[index] = RowGradient(all_ids, all_rows, grad.shape, grad.dtype)
        return True

    def _decide_deferred(self):
        """Rows or dense for the deferred tables, from one exchange of every rank's id counts; in
        the order they were reported (the same on every rank), so are the collectives started."""
        counts = self._exchange_counts(self.deferred)
        for k, (index, grad) in enumerate(self.deferred):
            bucket = self.layout.bucket_of[index]
            if self._gather_rows(index, grad, counts[:, k]):
                self.dense_members[bucket] -= 1
                continue
            dtype, start, stop, _ = self.layout.buckets[bucket]
            view = self.buffers[dtype][start:stop]
            view[...] = np.asarray(grad).reshape(-1)
            self.requests.append(self._reduce(view))
            self.sent_bytes += (stop - start) * dtype.itemsize

    def _row_buffers(self, index, total, width, dtype):
        """Receive buffers for `total` gathered ids and rows of table `index`: views of buffers kept
        across steps (grown when a step gathers more), as the dense ones are, so a step does not
        page-fault tens of MB of fresh memory in (glibc maps allocations above 32 MB afresh)."""
        kept = self.row_buffers.get(index)
        if kept is None or len(kept[0]) < total or kept[1].dtype != dtype:
            kept = (np.empty(total, np.int64), np.empty((total, width), dtype))
            self.row_buffers[index] = kept
        return kept[0][:total], kept[1][:total]

    def _issue_ready(self):
        buckets = self.layout.buckets
        while self.next_bucket < len(buckets) and self.missing[self.next_bucket] == 0:
            dtype, start, stop, _ = buckets[self.next_bucket]
            # (every rank skips the same buckets: those reduced as rows, those deferred)
            if self.dense_members[self.next_bucket] and self.next_bucket not in self.deferred_buckets:
                self.requests.append(self._reduce(self.buffers[dtype][start:stop]))
                self.sent_bytes += (stop - start) * dtype.itemsize
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
        if self.deferred:
            self._decide_deferred()
        collectives.wait(self.requests)
        self.in_flight = []
        if self.comm.Get_size() > 2:     # rank 0's sums of the buckets reduced (not the tables sent as rows)
            collectives.wait([self.comm.Ibcast(self.buffers[dtype][start:stop], root=0)
                              for (dtype, start, stop, _), dense in zip(self.layout.buckets, self.dense_members)
                              if dense])
        out = []
        for i, (dtype, start, size) in enumerate(self.layout.slots):
            if self.is_none[i]:
                out.append(None)
            elif i in self.rows:
                out.append(self.rows[i])
            else:
                out.append(self.buffers[dtype][start:start + size].reshape(self.layout.shapes[i]))
        return out
