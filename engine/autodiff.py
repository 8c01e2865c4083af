"""Reverse-mode automatic differentiation on a tape.

Every differentiable op is defined once, by a function that computes its
output and returns it with a vector-Jacobian product (see `differentiable`).
While a GradientTape is active, each op whose inputs depend on something the
tape watches is recorded as (inputs, output, vjp).  `tape.gradient` walks the
records backwards, summing the gradients of values used more than once.

Values are plain numpy arrays and are recognised by identity, so ops must
always return a new array object (never one of their inputs).  Variables are
recognised through the array they own, which never changes identity.
"""
import functools

import numpy as np

from engine.variables import Variable

_active_tapes = []


def is_recording():
    """True while some GradientTape is recording (ops may then save what their backward needs)."""
    return bool(_active_tapes)


class _Record:
    __slots__ = ("inputs", "output", "needs", "vjp", "name")

    def __init__(self, inputs, output, needs, vjp, name):
        self.inputs = inputs
        self.output = output
        self.needs = needs
        self.vjp = vjp
        self.name = name


def _as_array(x):
    if isinstance(x, Variable):
        return x.value
    return x


class SparseGradient:
    """A gradient an op may return in a cheaper form than the dense array (a table lookup's:
    engine.ops.embedding.RowGradient).  The tape hands it over as is only to callers that ask
    for it (the training step, whose optimizer can use it); everyone else gets dense()."""

    def dense(self):
        raise NotImplementedError


def _dense(g):
    return g.dense() if isinstance(g, SparseGradient) else g


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
        for t in tensor if isinstance(tensor, (list, tuple)) else [tensor]:
            arr = _as_array(t)
            if not isinstance(arr, np.ndarray):
                raise ValueError(f"GradientTape.watch: expected an array or Variable, got {type(t).__name__}")
            self._tracked[id(arr)] = arr

    def stop_recording(self):
        tape = self

        class _Pause:
            def __enter__(self_inner):
                _active_tapes.remove(tape)

            def __exit__(self_inner, *exc):
                _active_tapes.append(tape)
                return False

        return _Pause()

    def reset(self):
        self._records.clear()
        self._tracked.clear()

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
                elif self.watch_accessed_variables and isinstance(a, Variable) and a.trainable:
                    tracked[id(arr)] = arr
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
        """Gradients of sum(target) (or of the list of targets) with respect to each source.

        Sources not connected to the target get None, as in TensorFlow.
        """
        return self._gradient(target, sources, output_gradients, unconnected_gradients, keep_sparse=False)

    def _gradients_for_optimizer(self, target, sources):
        """gradient() for the training step: a SparseGradient stays as it is, for the optimizer to
        fold into its update (Optimizer.apply densifies it wherever that cannot be done)."""
        return self._gradient(target, sources, None, None, keep_sparse=True)

    def _gradient(self, target, sources, output_gradients, unconnected_gradients, keep_sparse):
        if self._used and not self.persistent:
            raise RuntimeError("GradientTape.gradient can only be called once on a non-persistent "
                               "tape; create the tape with persistent=True to call it again.")
        self._used = True
        targets = list(target) if isinstance(target, (list, tuple)) else [target]
        if output_gradients is None:
            output_gradients = [None] * len(targets)
        elif not isinstance(output_gradients, (list, tuple)):
            output_gradients = [output_gradients]
        grads = {}
        for t, og in zip(targets, output_gradients):
            arr = _as_array(t)
            if not isinstance(arr, np.ndarray):
                arr = np.asarray(arr)
            seed = np.ones_like(arr) if og is None else np.asarray(og, dtype=arr.dtype)
            prev = grads.get(id(arr))
            grads[id(arr)] = seed if prev is None else prev + seed
        if not any(id(_as_array(t)) in self._tracked for t in targets):
            raise ValueError(
                "GradientTape.gradient: the target was not computed from anything this tape watches. "
                "Compute it inside the `with GradientTape()` block with engine.ops functions or layers "
                "(plain numpy operators on arrays are not recorded).")

        for rec in reversed(self._records):
            out = rec.output
            if isinstance(out, tuple):
                g = tuple(grads.get(id(o)) for o in out)
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
                if gx.shape != x.shape:
                    raise RuntimeError(f"internal error: the gradient of op {rec.name!r} has shape "
                                       f"{gx.shape} for an input of shape {x.shape}")
                key = id(x)
                prev = grads.get(key)
                grads[key] = gx if prev is None else prev + gx

        single = not isinstance(sources, (list, tuple))
        srcs = [sources] if single else sources
        result = []
        for s in srcs:
            g = grads.get(id(_as_array(s)))
            if g is None and unconnected_gradients == "zero":
                g = np.zeros_like(_as_array(s))
            result.append(g if keep_sparse else _dense(g))
        if not self.persistent:
            self.reset()
        return result[0] if single else result


def differentiable(fn):
    """Turn `fn(*inputs, **attrs) -> (output, vjp)` into a recorded op.

    `vjp(grad_output, needs)` returns one gradient per positional input (None
    where not needed; `needs[i]` says whether input i wants one).  Positional
    arguments are the op's tensors; keyword arguments are its static attributes.
    """
    name = fn.__name__.lstrip("_")

    @functools.wraps(fn)
    def op(*args, **attrs):
        arrays = tuple(a.value if isinstance(a, Variable) else a for a in args)
        if not _active_tapes:
            return fn(*arrays, **attrs)[0]
        recorders = []
        for tape in _active_tapes:
            needs = tape._needs_for(args, arrays)
            if needs is not None:
                recorders.append((tape, needs))
        out, vjp = fn(*arrays, **attrs)
        if not isinstance(out, (np.ndarray, tuple)):
            out = np.asarray(out)  # numpy returns scalars from 0-d arithmetic; the tape needs arrays
        elif not isinstance(out, tuple) and any(out is a for a in arrays):
            out = out.view()  # identity is how the tape tells values apart
        for tape, needs in recorders:
            tape._record(arrays, out, needs, vjp, name)
        return out

    op.raw = fn
    return op
