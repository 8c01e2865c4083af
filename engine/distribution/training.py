"""The calls the training loop makes into data-parallel training (engine/models/trainer.py).

Each is a no-op (or the single-process behaviour) unless a DataParallel distribution is set
and the job has more than one rank, so the trainer calls them unconditionally:

    begin(model, training)          at the start of fit / evaluate / predict: weights, optimizer
                                    state (unless no rank has touched them since the ranks last
                                    held the same) and the global random generator from rank 0
    end(model)                      at the end of one: the ranks hold the same state again
    shard(idx, n)                   this rank's part of a global batch of array rows
    epoch(source, steps)            this rank's batches of a generator / PyDataset, with shards
    step(shard)                     the scope of one step (gradient scaling, dropout rows, BN)
    compute_gradients(tape, loss, variables)   the globally averaged gradients, reduced in
                                    buckets while the backward pass runs
    update_metrics(model, shard, fn)  metric updates (undone for a rank without samples)
    global_metrics(model)           the scope in which metric results are the global ones
    gather_outputs(chunks, shards)  predict's outputs of every rank, in global order
    num_steps(n)                    global steps over a source of n batches
    any_rank(flag)                  whether flag holds on some rank (a choice every rank makes alike)
    is_chief()                      whether this rank writes files and prints

A global batch of B rows is split as evenly as possible (the first B % N ranks take one row more);
a rank left without rows runs the step on one row with weight 0, so that every rank makes the
same collective calls. Gradients: each rank seeds its backward pass with (its rows / B), so the
sum over ranks is the gradient of the global batch's mean loss.
"""
import contextlib
import weakref

import numpy as np

from engine import random as engine_random
from engine import variables as variables_module
from engine.autodiff import _as_array
from engine.distribution import collectives, distribution_lib
from engine.distribution.gradients import GradientReducer

_current = None          # the Shard of the step running now
_reducer = None          # (key, GradientReducer) of the last variables reduced
_synced = None           # (state writes, weak references to the arrays) when this rank's state was
                         # last known to be every rank's: see _unchanged_since_synced


class Shard:
    """This rank's part of one global batch.

    Attributes:
        index: the rows of the arrays to take (a slice or an index array); None for a source.
        count: real samples on this rank (0: the rank runs one row with weight 0).
        offset: the first global row this rank holds.
        total: samples in the global batch.
        rows: rows this rank computes (count, or 1 for a rank without samples).
    """
    __slots__ = ("index", "count", "offset", "total", "rows")

    def __init__(self, index, count, offset, total):
        self.index, self.count, self.offset, self.total = index, count, offset, total
        self.rows = count if count else 1

    @property
    def empty(self):
        """Whether this rank has no samples in this step."""
        return self.count == 0


def active():
    """The DataParallel distribution when data-parallel training is on (one is set and the job has
    more than one rank), else None."""
    d = distribution_lib.distribution()
    return d if d is not None and d.num_processes > 1 else None


def is_chief():
    """Whether this process writes files and prints progress: rank 0 of a data-parallel job, and
    every process otherwise."""
    d = active()
    return d is None or d.data_shard_id == 0


def any_rank(flag):
    """Whether `flag` is true on any rank (this rank's `flag` without distribution): for choices
    every rank must make alike, such as whether a step makes its logs (a collective)."""
    if active() is None:
        return bool(flag)
    return bool(collectives.allgather_array(np.array([bool(flag)], np.int8)).any())


def wait_for_chief():
    """Wait until every rank, rank 0 included, has got here (a no-op without distribution)."""
    if active() is not None:
        collectives.barrier()


def current_shard():
    """The Shard of the data-parallel step running now, or None."""
    return _current


def _split(total, size, rank):
    base, extra = divmod(total, size)
    count = base + (1 if rank < extra else 0)
    return count, rank * base + min(rank, extra)


def shard(idx, n):
    """This rank's Shard of the global batch `idx` (a slice or an index array) of arrays of n
    rows; None when not distributing."""
    d = active()
    if d is None:
        return None
    if isinstance(idx, slice):
        start, stop = idx.start or 0, min(n if idx.stop is None else idx.stop, n)
        total = max(stop - start, 0)
        count, offset = _split(total, d.num_processes, d.data_shard_id)
        local = slice(start + offset, start + offset + count) if count else slice(start, start + 1)
    else:
        total = len(idx)
        count, offset = _split(total, d.num_processes, d.data_shard_id)
        local = idx[offset:offset + count] if count else idx[:1]
    return Shard(local, count, offset if count else 0, total)


def num_steps(num_batches):
    """Global steps over a source of `num_batches` batches (one batch per rank per step)."""
    d = active()
    if d is None or num_batches is None:
        return num_batches
    return -(-num_batches // d.num_processes)


def _first_row(structure):
    if isinstance(structure, (list, tuple)):
        return type(structure)(_first_row(s) for s in structure)
    if isinstance(structure, dict):
        return {k: _first_row(v) for k, v in structure.items()}
    if structure is None or np.ndim(structure) == 0:
        return structure
    return np.asarray(structure)[:1]


def _rows(batch):
    from engine.models.data_adapters import split_batch
    x = split_batch(batch)[0]
    while isinstance(x, (list, tuple, dict)):
        x = list(x.values())[0] if isinstance(x, dict) else x[0]
    return int(np.shape(x)[0])


def epoch(source, steps=None):
    """(batch, Shard) for each global step of a BatchSource; batch k of the source goes to rank
    k % N, and step j is made of batches jN .. jN + N - 1 (N ranks). Without distribution,
    (batch, None) for each batch."""
    d = active()
    if d is None:
        for batch in source.epoch(steps):
            yield batch, None
        return
    size, rank = d.num_processes, d.data_shard_id
    own = source.epoch(None if steps is None else steps * size, rank=rank, ranks=size)
    fallback = None
    while True:
        batch = next(own, None)
        count = 0 if batch is None else _rows(batch)
        if batch is not None and fallback is None:
            fallback = _first_row(batch)
        seen = collectives.allgather_array(np.array([count, fallback is not None], np.int64)).tolist()
        counts = [c for c, _ in seen]
        total = sum(counts)
        if total == 0:
            own.close()
            return
        if any(c == 0 and not has for c, has in seen):
            # A rank that has had no batch yet gets rank 0's first row (rank 0 always has one).
            first = _first_row(batch) if rank == 0 else None
            given = collectives.broadcast_object(first)
            if fallback is None:
                fallback = given
        offset = sum(counts[:rank])
        yield (batch if count else fallback), Shard(None, count, offset if count else 0, total)


_NO_SCOPE = contextlib.nullcontext()     # what a single process gets: no generator per step


def step(shard):
    """The scope of one data-parallel step on `shard` (nothing when shard is None)."""
    return _NO_SCOPE if shard is None else _step(shard)


@contextlib.contextmanager
def _step(shard):
    global _current
    previous = _current, engine_random._batch_shard
    _current = shard
    engine_random._batch_shard = (shard.offset if shard.count else 0, shard.rows, shard.total)
    try:
        yield
    finally:
        _current, engine_random._batch_shard = previous


def compute_gradients(tape, target, variables):
    """The gradients for the optimizer: the tape's own outside a data-parallel step; in one, the
    sum over ranks of each rank's gradient of (its rows / global rows) x its loss, reduced
    bucket by bucket while the backward pass runs, bit-identical on every rank."""
    shard = _current
    if shard is None:
        return tape._gradients_for_optimizer(target, variables)
    global _reducer
    # (the reducer holds the variables, so while it lives no other variable can take their ids;
    # a variable's shape and dtype never change)
    key = tuple(map(id, variables))
    if _reducer is None or _reducer[0] != key:
        _reducer = (key, GradientReducer(variables))
    reducer = _reducer[1].start()
    value = _as_array(target)
    seed = np.full(np.shape(value), shard.count / shard.total, dtype=np.asarray(value).dtype)
    tape._gradients_for_optimizer(target, variables, seed=seed, on_ready=reducer.on_ready)
    return reducer.finish()


def _metric_variables(model):
    out = []
    for m in model.metrics:
        if hasattr(m, "variables"):
            out.extend(m.variables)
        else:
            for sub in m.metrics:
                out.extend(sub.variables)
    return out


def update_metrics(model, shard, fn):
    """Run `fn` (the step's metric updates); on a rank without samples in this step, undo them
    (metrics created by the update stay, at zero, so every rank holds the same metric state)."""
    if shard is None or not shard.empty:
        fn()
        return
    before = {id(v): v._value.copy() for v in _metric_variables(model)}
    fn()
    for v in _metric_variables(model):
        old = before.get(id(v))
        v.assign(np.zeros_like(v._value) if old is None else old)


def global_metrics(model):
    """A scope in which every metric of `model` holds the sum over ranks of its state (metric
    states are sums over batches: totals, counts, confusion counts), so results are the
    global ones; each rank's own state is put back afterwards."""
    return _NO_SCOPE if active() is None else _global_metrics(model)


@contextlib.contextmanager
def _global_metrics(model):
    variables = _metric_variables(model)
    local = [v._value.copy() for v in variables]   # assign copies into the same array
    flat = np.concatenate([np.asarray(a, dtype=np.float64).reshape(-1) for a in local]) if local \
        else np.zeros(0)
    # the sizes first (every rank raises if they differ), then the states as one buffer
    sizes = collectives.allgather_array(np.array([flat.size], np.int64))[:, 0]
    if len(set(sizes.tolist())) != 1:
        raise RuntimeError("engine.distribution: the ranks hold different metric states (sizes "
                           f"{sizes.tolist()}); every rank must run the same model and metrics")
    total = collectives.fixed_order_sum(flat)
    at = 0
    for v, a in zip(variables, local):
        size = np.size(a)
        v.assign(total[at:at + size].reshape(np.shape(a)).astype(np.asarray(a).dtype))
        at += size
    try:
        yield
    finally:
        for v, a in zip(variables, local):
            v.assign(a)


def gather_outputs(chunks, shards):
    """predict's per-step outputs (lists of arrays) of every rank, in global row order: step k's
    arrays are the ranks' parts of global batch k, concatenated in rank order."""
    if active() is None:
        return chunks
    local = [[np.asarray(a)[:s.count] for a in chunk] for chunk, s in zip(chunks, shards)]
    everyone = collectives.allgather(local)
    return [[np.concatenate([ranks[k][i] for ranks in everyone], axis=0) for i in range(len(local[k]))]
            for k in range(len(local))]


def begin(model, training=False):
    """Start fit (training=True), evaluate or predict: check that the model can be trained
    data-parallel, and give every rank rank 0's weights and optimizer state (unless the ranks
    hold the same already: see share_training_state) and global random generator state."""
    d = active()
    if d is None:
        return
    if training:
        from engine.models.trainer import Trainer
        if type(model).train_step is not Trainer.train_step:
            raise ValueError(f"DataParallel: {type(model).__name__} overrides train_step, whose gradients "
                             "engine cannot reduce across ranks; use the built-in step (compile with the loss) "
                             "or train without a distribution")
        for o in getattr(model, "_compiled_outputs", []):
            reduction = getattr(o.loss, "reduction", "sum_over_batch_size")
            if o.loss is not None and reduction not in ("sum_over_batch_size", None):
                raise ValueError(f"DataParallel: the loss of output \"{o.name}\" has reduction={reduction!r}; "
                                 "data-parallel training averages per-sample losses over the global batch, "
                                 "so only reduction='sum_over_batch_size' (the default) can be honoured")
    share_training_state(model, build_optimizer=training, unless_synced=True)
    generator = engine_random.generator()
    generator.bit_generator.state = collectives.broadcast_object(generator.bit_generator.state)


def end(model):
    """Note, at the end of a fit / evaluate / predict that ran to completion, that every rank holds
    the same weights and optimizer state (data-parallel steps keep them identical), so that the
    next one need not send them again if nothing writes to them in between."""
    if active() is not None:
        optimizer = getattr(model, "optimizer", None)
        _note_synced(_state_arrays(model, optimizer, optimizer is not None and optimizer.built))


def _state_arrays(model, optimizer, with_optimizer):
    """The variables of `model`, and of `optimizer` when `with_optimizer`, in a fixed order."""
    variables = list(model.variables)
    if with_optimizer:
        variables += [v for v in optimizer.variables if not any(v is w for w in variables)]
    return variables


def _storage(v):
    """The array behind a variable (or an optimizer's plain array), without materialising work a
    variable defers: identity is all the synced check compares."""
    return v.storage() if isinstance(v, variables_module.Variable) else v


def _note_synced(variables):
    global _synced
    _synced = (variables_module.state_writes(), [weakref.ref(_storage(v)) for v in variables])


def _unchanged_since_synced(variables):
    """Whether, on this rank, `variables` are the arrays the ranks last held identical and nothing
    has written to any variable or optimizer state since (engine.variables.state_writes). Every
    write a rank makes between two fits (set_weights, load_weights, assign, an optimizer step
    outside fit, a fit without the distribution) is counted; a layer built since adds arrays."""
    if _synced is None:
        return False
    writes, refs = _synced
    return writes == variables_module.state_writes() and len(refs) == len(variables) and \
        all(r() is _storage(v) for r, v in zip(refs, variables))


def share_training_state(model, value=None, build_optimizer=True, unless_synced=False):
    """Give every rank rank 0's weights and optimizer state, and return rank 0's `value`
    (BackupAndRestore's epoch). The optimizer's state is built first (zeros, as its first update
    would) when `build_optimizer` or when rank 0's is built, so every rank lists the same state.
    With `unless_synced`, nothing is sent when every rank finds its state untouched since the
    ranks last held the same (a fit after a fit); the ranks decide that together. Without
    distribution, returns `value`."""
    d = active()
    if d is None:
        return value
    optimizer = getattr(model, "optimizer", None)
    built = optimizer is not None and optimizer.built
    build, value = collectives.broadcast_object((optimizer is not None and (build_optimizer or built), value))
    if build and not optimizer.built:
        optimizer.build(model.trainable_weights)
    variables = _state_arrays(model, optimizer, build)
    if unless_synced:
        everyone = collectives.allgather_array(np.array([_unchanged_since_synced(variables)], np.int8))
        if everyone.all():
            return value
    # (a Variable's assign copies into its array, so the broadcast writes there in place)
    collectives.broadcast_into([v._value if hasattr(v, "_value") else v for v in variables],
                               names=[getattr(v, "path", None) or f"optimizer array {i}" for i, v in enumerate(variables)])
    _note_synced(variables)
    return value
