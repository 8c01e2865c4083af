"""Reverse-mode automatic differentiation on a tape.

Every differentiable op is defined once, by a function that computes its
output and returns it with a vector-Jacobian product (see `differentiable`).
While a GradientTape is active, each op whose inputs depend on something the
tape watches is recorded as (inputs, output, vjp).  `tape.gradient` walks the
records backwards, summing the gradients of values used more than once.

Ops compute on numpy arrays and hand out engine Tensors (engine/tensor.py) that
wrap them.  The tape recognises values by the identity of their arrays, so ops
always return a new array object (never one of their inputs); a Tensor never
changes its array, and a Variable never changes the array it owns.
"""
import functools
import threading

import numpy as np

from engine import _malloc
from engine import tensor as tensor_module
from engine.tensor import Tensor
from engine.variables import Variable, state_writes

_active_tapes = []
# Step planners (engine/models/plan.py) tracing a model's step: every op call is reported to the
# innermost one (see `differentiable`).
_tracers = []
# Non-empty while a planned training step replays its forward: ops then save what their backward
# needs, exactly as under the tape the plan stands in for.
_replaying = []


def _note_value_read(what):
    """A tensor's value left for Python or numpy (engine.tensor calls this): inside a step plan's
    trace, outside any op, the layer doing it is one the plan must call as usual."""
    if _tracers:
        tracer = _tracers[-1]
        if tracer.thread == threading.get_ident() and tracer.depth == 0:
            tracer.untraceable(f"a tensor's value was {what}")


tensor_module._on_value_read = _note_value_read


def is_recording():
    """True while some GradientTape is recording or a planned training step runs (ops may then
    save what their backward needs)."""
    return bool(_active_tapes or _replaying)


class _Record:
    __slots__ = ("inputs", "output", "needs", "vjp", "name")

    def __init__(self, inputs, output, needs, vjp, name):
        self.inputs = inputs
        self.output = output
        self.needs = needs
        self.vjp = vjp
        self.name = name


_HOLDERS = (Tensor, Variable)


def _as_array(x):
    """The array behind a Tensor or Variable (anything else as it is)."""
    if isinstance(x, _HOLDERS):
        return x._value
    return x


_NESTED = (list, tuple, dict)


def _flatten(structure):
    """Leaves of nested lists / tuples / dicts (dicts in key order), as TensorFlow's nest does."""
    if isinstance(structure, dict):
        structure = [structure[k] for k in sorted(structure)]
    elif not isinstance(structure, (list, tuple)):
        return [structure]
    out = []
    for s in structure:
        if isinstance(s, _NESTED):
            out.extend(_flatten(s))
        else:
            out.append(s)
    return out


def _pack(structure, leaves):
    if isinstance(structure, (list, tuple)):
        return type(structure)(_pack(s, leaves) for s in structure)
    if isinstance(structure, dict):
        packed = {k: _pack(structure[k], leaves) for k in sorted(structure)}
        return {k: packed[k] for k in structure}
    return next(leaves)


class SparseGradient:
    """A gradient an op may return in a cheaper form than the dense array (a table lookup's:
    engine.ops.embedding.RowGradient).  The tape hands it over as is only to callers that ask
    for it (the training step, whose optimizer can use it); everyone else gets dense()."""

    def dense(self):
        raise NotImplementedError


def _dense(g):
    return g.dense() if isinstance(g, SparseGradient) else g


def _ones_seed(arr):
    """The default output gradient of a target: ones of its shape and dtype, as a read-only
    stride-0 view of a single 1 when it has axes (a vjp never writes its gradient in place)."""
    if arr.ndim == 0:
        return np.ones_like(arr)
    return np.broadcast_to(np.ones((), dtype=arr.dtype), arr.shape)


def _owned(g):
    """A gradient handed to the caller as an array of its own (a seed view materialised: a
    target that is also a source gets its seed back)."""
    if isinstance(g, np.ndarray) and not g.flags.writeable and g.ndim and 0 in g.strides:
        return np.array(g)
    return g


class GradientTape:
    """Records ops for differentiation, with TensorFlow's interface.

        with GradientTape() as tape:
            loss = ops.mean(ops.square(model(x) - y))
        grads = tape.gradient(loss, model.trainable_weights)
    """

    def __init__(self, persistent=False, watch_accessed_variables=True):
        self.persistent = persistent
        self.watch_accessed_variables = watch_accessed_variables
        self._records = []
        self._tracked = {}
        self._watched_variables = {}
        self._recording = False
        self._used = False

    def __enter__(self):
        _active_tapes.append(self)
        self._recording = True
        return self

    def __exit__(self, *exc):
        self._recording = False
        _active_tapes.remove(self)
        return False

    def watch(self, tensor):
        """Record ops on `tensor` (a Tensor, numpy array or Variable, or a nested structure of them)
        so that gradients with respect to it can be taken."""
        for t in _flatten(tensor):
            arr = _as_array(t)
            if not isinstance(arr, np.ndarray):
                raise ValueError(f"GradientTape.watch: expected a tensor, array or Variable, got "
                                 f"{type(t).__name__}")
            self._tracked[id(arr)] = arr

    def watched_variables(self):
        """The Variables whose reads this tape has recorded."""
        return list(self._watched_variables.values())

    def stop_recording(self):
        """A context manager inside which ops are not recorded on this tape."""
        return _PausedRecording(self)

    def reset(self):
        """Forget everything recorded so far (the tape keeps recording)."""
        self._records.clear()
        self._tracked.clear()
        self._watched_variables.clear()

    # -- recording ------------------------------------------------------------------
    def _needs_for(self, args, arrays):
        tracked = self._tracked
        needs = []
        any_need = False
        for a, arr in zip(args, arrays):
            need = False
            if isinstance(arr, np.ndarray):
                if id(arr) in tracked:
                    need = True
                elif self.watch_accessed_variables:
                    var = a if isinstance(a, Variable) else (a._variable if isinstance(a, Tensor) else None)
                    if var is not None and var.trainable:
                        tracked[id(arr)] = arr
                        self._watched_variables[id(var)] = var
                        need = True
            needs.append(need)
            any_need = any_need or need
        return tuple(needs) if any_need else None

    def _record(self, arrays, output, needs, vjp, name):
        self._records.append(_Record(arrays, output, needs, vjp, name))
        tracked = self._tracked
        if isinstance(output, tuple):
            for o in output:
                tracked[id(o)] = o
        else:
            tracked[id(output)] = output

    # -- differentiation --------------------------------------------------------------
    def gradient(self, target, sources, output_gradients=None, unconnected_gradients=None):
        """Gradients of sum(target) with respect to each source.

        Args:
            target: a tensor, or a nested structure of tensors (their sums are added).
            sources: a tensor, Variable or array, or a nested structure of them; the result has
                the same structure.
            output_gradients: optional gradients of the targets (same structure as `target`),
                used instead of ones.
            unconnected_gradients: "none" (default): a source the target does not depend on gets
                None, as in TensorFlow; "zero": it gets zeros.

        Returns:
            Tensors (or None) in the structure of `sources`.
        """
        if _malloc.TUNED is None:
            # A custom training loop trains too: its step's large buffers are reused, as in fit.
            _malloc.tune_for_training()
        seeds = None if output_gradients is None else _flatten(output_gradients)
        grads = self._gradient(_flatten(target), _flatten(sources), seeds, unconnected_gradients,
                               keep_sparse=False)
        leaves = iter(None if g is None else Tensor(g) for g in grads)
        return _pack(sources, leaves) if isinstance(sources, (list, tuple, dict)) else next(leaves)

    def _gradients_for_optimizer(self, target, sources, seed=None, on_ready=None):
        """gradient() for the training step, on a flat list of sources, as arrays: a
        SparseGradient stays as it is, for the optimizer to fold into its update
        (Optimizer.apply densifies it wherever that cannot be done). `seed` is the target's
        output gradient (ones when None); `on_ready` as in `_gradient`."""
        return self._gradient([target], sources, None if seed is None else [seed], None,
                              keep_sparse=True, on_ready=on_ready)

    def _gradient(self, targets, sources, seeds, unconnected_gradients, keep_sparse, on_ready=None):
        """Gradients of the flat list `targets` (seeded with `seeds`, or ones) for the flat list
        `sources`, as arrays or None.

        `on_ready(i, grad)`, when given, is called once per source as soon as its gradient is
        final: right after the backward pass has visited the earliest recorded op that reads it
        (no op before it can add more), or at the end for sources nothing read. Data-parallel
        training uses it to start reducing gradients while the rest of the backward pass runs
        (engine/distribution/gradients.py)."""
        if self._used and not self.persistent:
            raise RuntimeError("GradientTape.gradient can only be called once on a non-persistent "
                               "tape; create the tape with persistent=True to call it again.")
        if unconnected_gradients not in (None, "none", "zero"):
            raise ValueError(f"GradientTape.gradient: unconnected_gradients must be 'none' or 'zero', "
                             f"got {unconnected_gradients!r}")
        self._used = True
        if seeds is None:
            seeds = [None] * len(targets)
        if len(seeds) != len(targets):
            raise ValueError(f"GradientTape.gradient: {len(seeds)} output_gradients for {len(targets)} targets")
        grads = {}
        for t, og in zip(targets, seeds):
            arr = _as_array(t)
            if not isinstance(arr, np.ndarray):
                arr = np.asarray(arr)
            # The default seed is a read-only broadcast of one 1 (no array of ones the size of the
            # target: a kernel that takes a broadcast gradient reads one row of it; the others
            # materialise it where they need it contiguous).
            seed = _ones_seed(arr) if og is None else np.asarray(_as_array(og), dtype=arr.dtype)
            if seed.shape != arr.shape:
                raise ValueError(f"GradientTape.gradient: an output gradient of shape {seed.shape} for a "
                                 f"target of shape {arr.shape}")
            prev = grads.get(id(arr))
            grads[id(arr)] = seed if prev is None else prev + seed

        ready_after = self._ready_points(sources) if on_ready is not None else None
        records = self._records
        for ri in range(len(records) - 1, -1, -1):
            if ready_after is not None and ri + 1 in ready_after:
                for i in ready_after.pop(ri + 1):
                    on_ready(i, _owned(grads.get(id(_as_array(sources[i])))))
            rec = records[ri]
            out = rec.output
            if isinstance(out, tuple):
                g = tuple(_dense(grads.get(id(o))) for o in out)
                if all(x is None for x in g):
                    continue
            else:
                g = grads.get(id(out))
                if g is None:
                    continue
                g = _dense(g)          # ops' vjps take arrays (a table computed inside the tape)
            in_grads = rec.vjp(g, rec.needs)
            for x, need, gx in zip(rec.inputs, rec.needs, in_grads):
                if not need or gx is None:
                    continue
                if not isinstance(gx, (np.ndarray, SparseGradient)):
                    gx = np.asarray(gx)
                if gx.shape != x.shape:
                    raise RuntimeError(f"internal error: the gradient of op {rec.name!r} has shape "
                                       f"{gx.shape} for an input of shape {x.shape}")
                key = id(x)
                prev = grads.get(key)
                grads[key] = gx if prev is None else _dense(prev) + _dense(gx)

        if ready_after is not None:
            for ri in sorted(ready_after, reverse=True):
                for i in ready_after[ri]:
                    on_ready(i, _owned(grads.get(id(_as_array(sources[i])))))
        result = []
        for s in sources:
            arr = _as_array(s)
            g = grads.get(id(arr))
            if g is None and unconnected_gradients == "zero":
                g = np.zeros_like(arr)
            result.append(g if keep_sparse or g is None else _owned(_dense(g)))
        if not self.persistent:
            self.reset()
        return result

    def _ready_points(self, sources):
        """{f: source indices}, f the earliest record reading those sources: their gradients are
        final once the backward pass has visited record f. Sources read by record 0 or by no
        record are reported at the end."""
        where = {}
        for i, s in enumerate(sources):
            where.setdefault(id(_as_array(s)), []).append(i)
        first = {}
        for ri, rec in enumerate(self._records):
            for x, need in zip(rec.inputs, rec.needs):
                if need and id(x) in where and id(x) not in first:
                    first[id(x)] = ri
        ready_after = {}
        for key, indices in where.items():
            ready_after.setdefault(first[key] if key in first else 0, []).extend(indices)
        return ready_after


class _PausedRecording:
    """GradientTape.stop_recording(): the tape leaves the active list for the block's duration."""

    def __init__(self, tape):
        self.tape = tape

    def __enter__(self):
        if self.tape in _active_tapes:
            _active_tapes.remove(self.tape)
            self.paused = True
        else:
            self.paused = False

    def __exit__(self, *exc):
        if self.paused:
            _active_tapes.append(self.tape)
        return False


def _wrap(out):
    """An op's result as engine tensors (numpy returns scalars from 0-d arithmetic: made arrays)."""
    if isinstance(out, np.ndarray):
        return Tensor(out)
    if isinstance(out, tuple):
        return tuple([Tensor(o if isinstance(o, np.ndarray) else np.asarray(o)) for o in out])
    return Tensor(np.asarray(out))


def differentiable(fn):
    """Turn `fn(*inputs, **attrs) -> (output, vjp)` into a recorded op returning Tensors.

    `fn` computes on numpy arrays: Tensors and Variables among the positional
    inputs are unwrapped before it runs.  `vjp(grad_output, needs)` returns one
    gradient per positional input (None where not needed; `needs[i]` says whether
    input i wants one).  Positional arguments are the op's tensors; keyword
    arguments are its static attributes.  `op.raw` is `fn` itself, for ops that
    compose others inside one recorded step.
    """
    name = fn.__name__.lstrip("_")

    @functools.wraps(fn)
    def op(*args, **attrs):
        arrays = tuple([a._value if isinstance(a, _HOLDERS) else a for a in args])
        if not _active_tapes and not _tracers:
            return _wrap(fn(*arrays, **attrs)[0])
        recorders = []
        for tape in _active_tapes:
            needs = tape._needs_for(args, arrays)
            if needs is not None:
                recorders.append((tape, needs))
        tracer = _tracers[-1] if _tracers else None
        if tracer is not None and tracer.thread != threading.get_ident():
            tracer = None      # another thread's op (a data worker's): not part of the traced step
        if tracer is None:
            out, vjp = fn(*arrays, **attrs)
        else:
            # Only the outermost op is a step of the plan (ops an op calls run inside its replay).
            # Variables the op writes (batch normalization's moving statistics) are written again
            # by every replay: they do not make the layer calling it opaque (tracer.absorbed).
            tracer.depth += 1
            writes = state_writes()
            try:
                out, vjp = fn(*arrays, **attrs)
            finally:
                tracer.depth -= 1
                tracer.absorbed += state_writes() - writes
        if isinstance(out, tuple):
            out = tuple([o if isinstance(o, np.ndarray) else np.asarray(o) for o in out])
        elif not isinstance(out, np.ndarray):
            out = np.asarray(out)  # numpy returns scalars from 0-d arithmetic; the tape needs arrays
        else:
            for a in arrays:
                if out is a:
                    out = out.view()  # identity is how the tape tells values apart
                    break
        for tape, needs in recorders:
            tape._record(arrays, out, needs, vjp, name)
        if tracer is not None and tracer.depth == 0:
            tracer.log(fn, attrs, arrays, out)
        return tuple([Tensor(o) for o in out]) if isinstance(out, tuple) else Tensor(out)

    op.raw = fn
    return op
