"""Execution plans: a functional model's step traced once, then replayed on arrays.

The graph of a functional model is fixed, and so, for one input signature (shapes and dtypes),
is the sequence of ops its built-in layers run. A plan records that sequence while the step
runs normally once (the trace), then replays it on every later batch of the same signature:
each op's raw array function (`op.raw`, see engine.autodiff.differentiable) is called on
arrays in a flat slot list, with no Tensor wrapping, tape checks or layer-call bookkeeping,
and the recorded vjps run in reverse with the gradients accumulated per slot. The same raw
functions in the same order, and gradients summed in the tape's order, give the unplanned
step's numbers bit for bit.

What a trace may record is what does not depend on values. Each layer call is a frame of the
trace (Tracer.call_layer), nested as the calls nest: the layers whose calls were audited (a
class attribute `_plan_traceable = True` on the exact class; subclasses do not inherit it) and
the user's layers are recorded op by op, the user's while they record replayable ops only
(_USER_REPLAYABLE), and the built-in losses too. A layer of engine's that was not audited
(Bidirectional, TimeDistributed, the transposed convolutions...), and any frame that reads
a tensor's value in Python, draws random numbers outside an op, assigns a variable, records an
op with an array attribute or a non-differentiable op, or uses a value the trace cannot account
for, is one opaque step of the plan: on replay it is called as usual, under a local GradientTape
when training, and its vjp is that tape's gradient for its inputs and variables. As under
Keras's jit, other Python in a traced call (a print, a counter) runs once, while the trace is
made. A model whose step adds losses (add_loss, regularizers) or carries masks is not planned
at all.

Plans are cached on the model per (kind, signature, trainable variables, optimizer), a few
per kind, and dropped when the model is compiled again or its graph changes. A training plan
whose trace recorded nothing computed from the batch size (Plan.batch_generic: no constants, no
batch-sized attributes) also serves the same step on batches of another size, so an epoch's
last, smaller batch replays the full batches' plan instead of being traced again.
`ENGINE_PLAN=0` in the environment, `model.plan_enabled = False`, `compile(run_eagerly=True)` or
`compile(jit_compile=False)` runs every step unplanned.
"""
import os
import threading

import numpy as np

from engine import autodiff
from engine import random as engine_random
from engine.autodiff import GradientTape, SparseGradient, _dense
from engine.distribution import training as distributed
from engine.layers.base import _context, training_scope
from engine.layers.keras_tensor import flatten, pack_like
from engine.tensor import Tensor
from engine.variables import Variable, state_writes

ENABLED = os.environ.get("ENGINE_PLAN", "1") != "0"
_CACHE_SIZE = 4          # plans kept per kind (train / forward): the full and the last batch
_UNPLANNABLE = object()  # cached for a signature whose step cannot be planned


def enabled(model):
    """Whether the model's steps may be planned (the global switch, the model's own, and
    compile's run_eagerly and jit_compile)."""
    d = model.__dict__
    return ENABLED and d.get("plan_enabled", True) and not d.get("run_eagerly", False) and \
        d.get("jit_compile", True)


def clear(model):
    """Forget the model's plans (compile, a changed graph)."""
    model.__dict__.pop("_plans", None)


def _signature(arrays):
    return tuple((a.shape, a.dtype) for a in arrays)


def _cache(model, kind):
    plans = model.__dict__.get("_plans")
    if plans is None:
        plans = model.__dict__["_plans"] = {}
    return plans.setdefault(kind, {})


def _store(cache, key, plan):
    if len(cache) >= _CACHE_SIZE:
        cache.pop(next(iter(cache)))
    cache[key] = plan


def _is_traceable_loss(model):
    for o in model._compiled_outputs:
        if o.loss is None:
            continue
        if not type(o.loss).__module__.startswith("engine.losses"):
            return False
        fn = getattr(o.loss, "fn", None)
        if fn is not None and not getattr(fn, "__module__", "").startswith("engine."):
            return False
    return True


class _NotPlannable(Exception):
    """The traced step cannot be replayed (masks, added losses, an unresolved value)."""


# -- steps ------------------------------------------------------------------------------------------
class _Step:
    """One step of a plan: fn(*arrays, **attrs) -> (output or tuple of outputs, vjp)."""

    __slots__ = ("fn", "attrs", "ins", "outs", "multi", "needs", "label", "opaque")

    def __init__(self, fn, attrs, ins, outs, multi, label, opaque=None):
        self.fn = fn
        self.attrs = attrs
        self.ins = ins
        self.outs = outs            # tuple of slots
        self.multi = multi          # fn returns a tuple
        self.needs = None
        self.label = label
        self.opaque = opaque


class _OpaqueCall:
    """A segment the plan cannot see into, as a step: its inputs are the segment's input arrays
    then the variables it may differentiate; it runs the segment as usual (through the tape
    when gradients are wanted) and its vjp is that tape's gradient."""

    def __init__(self, run, n_inputs, variables, what):
        self.run = run              # arrays -> flat list of output Tensors
        self.n_inputs = n_inputs
        self.variables = variables
        self.what = what
        self.needs = None           # set when the plan is finished

    def __call__(self, *arrays):
        needs = self.needs
        if needs is None or not any(needs):
            outs = self.run(arrays[:self.n_inputs])
            return tuple(_value(o) for o in outs), None
        tape = GradientTape(watch_accessed_variables=False)
        with tape:
            for a, need in zip(arrays, needs):
                if need:
                    tape.watch(a)
            outs = self.run(arrays[:self.n_inputs])
        out_arrays = tuple(_value(o) for o in outs)

        def vjp(g, needs):
            targets = [o for o, go in zip(out_arrays, g) if go is not None]
            seeds = [go for go in g if go is not None]
            sources = [a for a, need in zip(arrays, needs) if need]
            grads = iter(tape._gradient(targets, sources, seeds, None, keep_sparse=True))
            return tuple(next(grads) if need else None for need in needs)
        return out_arrays, vjp


def _value(x):
    if isinstance(x, (Tensor, Variable)):
        return x._value
    return x if isinstance(x, np.ndarray) else np.asarray(x)


# -- the tracer -------------------------------------------------------------------------------------
# The ops a user's layer may have recorded when its call is traced into the plan: those whose
# public function reads nothing of its tensors' values in Python (what it computes from them
# happens inside the recorded op, so a replay recomputes it; dropout draws its key inside the op).  Any other op (a gather with its
# index checks, `where` on a condition made in numpy, a random draw, a non-differentiable op)
# makes the user's layer one opaque step, called as usual on every replay.  Engine's audited
# layers (`_plan_traceable`) are traced whatever ops they use: each was checked by hand.
_USER_REPLAYABLE = frozenset(f"engine.ops.{name}" for name in (
    "math._add", "math._subtract", "math._multiply", "math._divide", "math._power", "math._maximum",
    "math._minimum", "math._unary.<locals>.op", "math._sum", "math._mean", "math._extreme.<locals>.op",
    "math._matmul", "math._reshape", "math._transpose", "math._expand_dims", "math._squeeze",
    "math._concatenate", "math._stack", "math._cast", "math._getitem", "math._pad",
    "nn._dense", "nn._bias_add", "nn._activation", "nn._dropout_random", "layernorm._layer_norm",
    "contraction._einsum"))


def _user_replayable(fn):
    """Whether an op recorded directly by a user's layer replays as traced (see _USER_REPLAYABLE)."""
    return f"{fn.__module__}.{fn.__qualname__}" in _USER_REPLAYABLE


def _holds_array(value):
    """Whether an op attribute holds an array: a value computed in Python (a gather's index, an
    attention mask's planes) that a replay would bake in.  Any layer recording one is opaque."""
    if isinstance(value, np.ndarray):
        return True
    return isinstance(value, (tuple, list)) and any(_holds_array(e) for e in value)


def _frame_kind(layer):
    """How a traced step sees one layer call: "audited" (engine's layers checked by hand: their ops
    are recorded), "user" (a class of the user's: its ops are recorded while they are replayable,
    see _USER_REPLAYABLE) or "opaque" (engine's other layers -- random, stateful, checking values --
    and any layer with an activity regularizer or a user's activation function: one step, called
    as usual on every replay)."""
    if layer.activity_regularizer is not None:
        return "opaque"
    act = layer.__dict__.get("activation")     # a function, or the name a recurrent kernel takes
    if callable(act) and not getattr(act, "__module__", "").startswith("engine."):
        return "opaque"
    cls = type(layer)
    if cls.__dict__.get("_plan_traceable", False):
        return "audited"
    return "opaque" if cls.__module__.startswith("engine.") else "user"


class _Frame:
    """A layer call the trace looks into (audited or user): where its ops start in the pending
    list, why it cannot be replayed (None while it can), and what the state counters were when
    it began."""

    __slots__ = ("kind", "start", "reason", "writes", "draws", "absorbed")

    def __init__(self, tracer, kind):
        self.kind = kind
        self.start = len(tracer.pending)
        self.reason = None
        self.writes, self.draws, self.absorbed = state_writes(), engine_random.draws(), tracer.absorbed


_VALUE_TYPES = (Tensor, Variable, np.ndarray)


def _leaves(structure):
    """The tensors, variables and arrays in a call's (args, kwargs), in flatten's order."""
    return [x for x in flatten(structure) if isinstance(x, _VALUE_TYPES)]


def _substitute(structure, values):
    """`structure` with its leaves (as _leaves orders them) replaced by `values`, in order."""
    it = iter(values)
    return pack_like(structure, iter([next(it) if isinstance(x, _VALUE_TYPES) else x for x in flatten(structure)]))


class Tracer:
    """Collects a step's ops while it runs normally once, segment by segment (the model's nodes,
    then the loss), and turns them into a Plan.

    Inside a segment every layer call is a frame (Layer._call_eager hands it to call_layer): the
    ops of audited and user layers are recorded, nested layer by layer; a layer the plan cannot
    see into -- engine's random or stateful layers, or a user's layer that did something a replay
    would not repeat (read a tensor's value in Python, drew random numbers, assigned a variable,
    recorded an op outside _USER_REPLAYABLE, used a value the trace cannot account for) -- becomes
    one opaque step: on replay it is called as usual (under a local tape when training)."""

    def __init__(self, model, batch_size):
        self.model = model
        self.batch = batch_size
        self.depth = 0                  # nesting of op calls (autodiff reads and writes it)
        self.thread = threading.get_ident()   # only this thread's ops belong to the step
        self.slots = {}                 # id(array) -> slot
        self.keep = []                  # the traced arrays, alive so that their ids stay unique
        self.base = []                  # slot -> constant value (None for computed slots)
        self.kinds = []                 # slot -> "input", "target", "weight", "var", "const", "value"
        self.steps = []
        self.segment = None
        self.pending = []               # (fn, attrs, arrays, out) of the open segment
        self.produced = {}              # id(array) -> its pending entry, for the open segment's outputs
        self.frames = []                # the layer calls being looked into, innermost last
        self.suppress = 0               # > 0 inside an opaque call: its ops are its own
        self.absorbed = 0               # state writes and draws made inside opaque calls
        self.reason = None              # why the open frameless segment (the loss) is untraceable
        self.forward_done = False
        self.failed = None              # why the step cannot be planned (tracing then stops)
        self.plan = None
        self.retry = False              # the failure is of this step only: trace the next one
        self.weights = model.weights    # looked up once: a model's `weights` walks its layers
        self.layers = None              # the model's _flatten_layers(), once the loss has looked them up
        self.weight_ids = {id(v) for v in self.weights}
        for v in self.weights:
            self._new_slot(v._value, "var", const=True)

    def fail(self, why):
        """Stop tracing: the step runs on unplanned, and so will later steps of its signature."""
        if self.failed is None:
            self.failed = why
        self.segment = None
        self.pending = []
        self.produced = {}

    # called by autodiff and ops/_util while a segment is open
    def log(self, fn, attrs, arrays, out):
        if self.segment is None or self.suppress:
            return
        frame = self.frames[-1] if self.frames else None
        if frame is not None and frame.kind == "user" and frame.reason is None and not _user_replayable(fn):
            frame.reason = f"its op {getattr(fn, '__name__', 'op').lstrip('_')!r} is not one a plan replays in a user's layer"
        if any(_holds_array(v) for v in attrs.values()):
            self.untraceable(f"its op {getattr(fn, '__name__', 'op').lstrip('_')!r} takes an array attribute, a value "
                             "computed in Python")
        for a in arrays:
            if isinstance(a, np.ndarray) and not self._resolvable(a):
                self.untraceable("a value of the step does not come from the traced ops")
                break
        self._append(fn, attrs, arrays, out)

    def untraceable(self, why):
        if self.segment is None or self.suppress:
            return
        if self.frames:
            frame = self.frames[-1]
            if frame.reason is None:
                frame.reason = why
        elif self.reason is None:
            self.reason = why

    def owns(self, model):
        return model is self.model and not self.forward_done

    def _append(self, fn, attrs, arrays, out):
        index = len(self.pending)
        self.pending.append((fn, attrs, arrays, out))
        for j, o in enumerate(out if isinstance(out, tuple) else (out,)):
            self.produced[id(o)] = (index, j, o)

    def _rollback(self, start):
        """Forget the pending entries from `start` on (a frame that becomes one opaque step)."""
        for fn, attrs, arrays, out in self.pending[start:]:
            for o in out if isinstance(out, tuple) else (out,):
                self.produced.pop(id(o), None)
        del self.pending[start:]

    def _resolvable(self, a):
        """Whether a replay can supply array `a`: a slot, an output of the open segment, or a
        constant (an array of the batch's size is almost surely computed from the data with
        numpy -- a cast, a broadcast -- and baking it in would replay the first batch)."""
        return id(a) in self.produced or id(a) in self.slots or not (a.ndim and self.batch in a.shape)

    # layer calls (Layer._call_eager hands them over while tracing)
    def traces_calls(self):
        """Whether a layer call now is part of the step: this thread, a segment open, outside any
        op and any opaque call."""
        return self.segment is not None and not self.suppress and not self.depth and \
            self.failed is None and threading.get_ident() == self.thread

    def call_layer(self, layer, args, kwargs, mask):
        """Run `layer`'s call (layer._run_eager) as a frame of the trace; returns its outputs."""
        kind = _frame_kind(layer)
        training = kwargs.get("training") if kwargs and kwargs.get("training") is not None else \
            getattr(_context, "training", None)
        if kind == "opaque":
            writes, draws = state_writes(), engine_random.draws()
            self.suppress += 1
            try:
                outputs = layer._run_eager(args, kwargs, mask)
            finally:
                self.suppress -= 1
            self.absorbed += state_writes() - writes + engine_random.draws() - draws
            self._record_call(layer, args, kwargs, mask, training, outputs)
            return outputs
        if kind == "user":
            # The user's code sees Tensors (as Keras gives it), never the raw arrays a graph passes
            # along: what it reads of them in numpy then reaches the trace (engine.tensor's hook).
            leaves = _leaves((args, kwargs))
            if any(type(a) is np.ndarray for a in leaves):
                args, kwargs = _substitute((args, kwargs), [Tensor(a) if type(a) is np.ndarray else a for a in leaves])
        frame = _Frame(self, kind)
        self.frames.append(frame)
        try:
            outputs = layer._run_eager(args, kwargs, mask)
        finally:
            self.frames.pop()
        if self.failed is not None:
            return outputs
        inside_opaque = self.absorbed - frame.absorbed
        own = state_writes() - frame.writes + engine_random.draws() - frame.draws - inside_opaque
        if own and frame.reason is None:
            frame.reason = "it assigns variables or draws random numbers"
        if frame.reason is None:
            for o in flatten(outputs):
                if not isinstance(o, Tensor) or (id(o._value) not in self.produced and id(o._value) not in self.slots):
                    frame.reason = "an output does not come from the traced ops"
                    break
        if frame.reason is not None:
            self._rollback(frame.start)
            self.absorbed = frame.absorbed + inside_opaque + own   # all of it is the opaque call's now
            self._record_call(layer, args, kwargs, mask, training, outputs, why=frame.reason)
        elif any(isinstance(o, Tensor) and o._keras_mask is not None for o in flatten(outputs)):
            self.fail(f"layer {layer.name!r} outputs a mask")
        return outputs

    def _record_call(self, layer, args, kwargs, mask, training, outputs, why=None):
        """The call as one opaque pending entry: its inputs the call's tensors and arrays, then the
        model's trainable variables it may differentiate; its outputs the flat output tensors."""
        if mask is not None or any(isinstance(t, Tensor) and t._keras_mask is not None
                                   for t in _leaves((args, kwargs)) + list(flatten(outputs))):
            self.fail(f"layer {layer.name!r} takes or outputs a mask")
            return
        leaves = _leaves((args, kwargs))
        arrays = [_value(x) for x in leaves]
        if not all(self._resolvable(a) for a in arrays):
            # cannot be replayed on its own: the enclosing frame, if any, is then opaque instead
            if self.frames:
                self.untraceable(f"layer {layer.name!r} is called on values the trace cannot account for")
            else:
                self.fail(f"layer {layer.name!r} is called on values the trace cannot account for")
            return
        flat_out = list(flatten(outputs))
        if not all(isinstance(o, Tensor) for o in flat_out):
            self.fail(f"layer {layer.name!r} returns something other than tensors")
            return
        variables = [v for v in layer.trainable_weights if id(v) in self.weight_ids]
        for v in variables:
            if id(v._value) not in self.slots:       # made by this very call (a layer built lazily)
                self.retry = True
                self.fail(f"variable {v.path!r} was created during the traced step")
                return

        def run(in_arrays):
            call_args, call_kwargs = _substitute((args, kwargs), [Tensor(a) for a in in_arrays])
            call_kwargs = dict(call_kwargs)
            if training is not None:
                call_kwargs["training"] = training     # what the enclosing calls had made it
            return flatten(layer._run_eager(call_args, call_kwargs, None))
        label = f"{layer.name} ({type(layer).__name__})"
        call = _OpaqueCall(run, len(arrays), variables, label + (f": {why}" if why else ""))
        self._append(call, {}, tuple(arrays + [v._value for v in variables]),
                     tuple(o._value for o in flat_out))

    # slots
    def _new_slot(self, array, kind, const=False):
        slot = len(self.base)
        self.base.append(array if const else None)
        self.kinds.append(kind)
        if isinstance(array, np.ndarray):
            self.slots[id(array)] = slot
            self.keep.append(array)
        return slot

    def slot_of(self, x):
        arr = _value(x) if x is not None else None
        slot = self.slots.get(id(arr)) if isinstance(arr, np.ndarray) else None
        if slot is None:
            raise _NotPlannable("a value of the step does not come from the traced ops")
        return slot

    def add_inputs(self, arrays, kind):
        return [self._new_slot(_value(a), kind) for a in arrays]

    # segments
    def begin(self, segment):
        if self.failed is not None:
            return
        self.segment = segment
        self.pending = []
        self.produced = {}
        self.reason = None

    def _commit(self, label):
        """The open segment's pending entries as steps (their inputs were checked as they came)."""
        const_slots = {}
        step_slots = []
        for fn, attrs, arrays, out in self.pending:
            ins = []
            for a in arrays:
                if not isinstance(a, np.ndarray):        # None (an absent bias), a Python number
                    ins.append(self._new_slot(a, "const", const=True))
                    continue
                made = self.produced.get(id(a))
                if made is not None and made[0] < len(step_slots):
                    ins.append(step_slots[made[0]][made[1]])
                elif id(a) in self.slots:
                    ins.append(self.slots[id(a)])
                else:
                    if a.ndim and self.batch in a.shape:
                        raise _NotPlannable("a value of the step does not come from the traced ops")
                    if id(a) not in const_slots:
                        const_slots[id(a)] = self._new_slot(a, "const", const=True)
                    ins.append(const_slots[id(a)])
            multi = isinstance(out, tuple)
            outs = tuple(self._new_slot(o, "value") for o in (out if multi else (out,)))
            step_slots.append(outs)
            if isinstance(fn, _OpaqueCall):
                self.steps.append(_Step(fn, {}, tuple(ins), outs, True, f"{fn.what} (opaque, through the tape)",
                                        opaque=fn))
            else:
                name = getattr(fn, "__name__", "op").lstrip("_")
                self.steps.append(_Step(fn, attrs, tuple(ins), outs, multi, f"{label}: {name}"))
        self.pending, self.produced, self.segment = [], {}, None

    def end_segment(self, label, traceable, inputs, outputs, opaque_run, variables):
        """Close a frameless segment (the loss): its ops become steps if it is traceable and they
        resolve, else the whole segment becomes one opaque step."""
        out_arrays = [_value(o) for o in outputs]
        if traceable and self.reason is None and all(id(a) in self.produced or id(a) in self.slots
                                                     for a in out_arrays):
            self._commit(label)
            return
        self.pending, self.produced, self.segment = [], {}, None
        in_slots = [self.slot_of(a) for a in inputs]
        var_slots = [self.slot_of(v) for v in variables]
        call = _OpaqueCall(opaque_run, len(in_slots), variables, label)
        outs = tuple(self._new_slot(a, "value") for a in out_arrays)
        self.steps.append(_Step(call, {}, tuple(in_slots + var_slots), outs, True,
                                f"{label} (opaque, through the tape)", opaque=call))

    # the model's nodes (Functional._interpret calls these)
    def begin_node(self, node):
        self.begin(node)

    def end_node(self, node, outputs):
        if self.failed is not None:
            return
        try:
            self._end_node(node, outputs)
        except _NotPlannable as e:
            self.fail(str(e))

    def _end_node(self, node, outputs):
        layer = node.layer
        flat_out = flatten(outputs)
        if any(isinstance(t, Tensor) and t._keras_mask is not None for t in flat_out):
            raise _NotPlannable(f"layer {layer.name!r} outputs a mask")
        if any(sub._losses for sub in layer._flatten_layers()):
            raise _NotPlannable(f"layer {layer.name!r} adds losses")
        if not all(isinstance(t, Tensor) and (id(t._value) in self.produced or id(t._value) in self.slots)
                   for t in flat_out):
            raise _NotPlannable(f"an output of layer {layer.name!r} does not come from the traced ops")
        self._commit(f"{layer.name} ({type(layer).__name__})")

    def finish(self, kind, output_slots, tvars=(), total=None, per_output=()):
        if any(id(v._value) not in self.slots for v in self.model.weights):   # built by the step?
            self.retry = True    # once built, the next step of the signature can be traced
            raise _NotPlannable("the model created variables during the traced step")
        return Plan(self, kind, output_slots, tvars, total, per_output)


# -- the plan ---------------------------------------------------------------------------------------
class _Backward:
    """A replay's backward pass with the tape's `_gradients_for_optimizer` interface, so that
    engine.distribution.training.compute_gradients takes it as it takes a tape."""

    __slots__ = ("plan", "vals", "vjps")

    def __init__(self, plan, vals, vjps):
        self.plan, self.vals, self.vjps = plan, vals, vjps

    def _gradients_for_optimizer(self, target, variables, seed=None, on_ready=None):
        return self.plan._backward(self.vals, self.vjps, seed, on_ready)


class Plan:
    """A traced step, replayable on arrays of the signature it was traced with."""

    def __init__(self, tracer, kind, output_slots, tvars, total_slot, per_output_slots):
        self.kind = kind
        self.model_name = tracer.model.name
        self.base = tracer.base
        self.kinds = tracer.kinds
        self.steps = tracer.steps
        self.input_slots = [s for s, k in enumerate(self.kinds) if k == "input"]
        self.target_slots = [s for s, k in enumerate(self.kinds) if k == "target"]
        weights = [s for s, k in enumerate(self.kinds) if k == "weight"]
        self.weight_slot = weights[0] if weights else None
        self.output_slots = output_slots
        self.total_slot = total_slot
        self.per_output_slots = per_output_slots
        self.tvars = list(tvars)
        self.tvar_slots = [tracer.slots[id(v._value)] for v in self.tvars]
        self.model_weights = list(tracer.weights)
        self.layers = tracer.layers or tracer.model._flatten_layers()   # fixed while the plan lives (see clear)
        self.weight_slots = [tracer.slots[id(v._value)] for v in self.model_weights]
        traced = self._traced_values(tracer)
        self.shapes = [getattr(a, "shape", None) for a in traced]
        self.dtypes = [getattr(a, "dtype", None) for a in traced]
        # Which slots carry a gradient: the trainable variables and what is computed from them,
        # as the tape would have tracked them.
        live = set(self.tvar_slots)
        for step in self.steps:
            needs = tuple(i in live for i in step.ins)
            if any(needs):
                step.needs = needs
                live.update(step.outs)
            if step.opaque is not None:
                step.opaque.needs = step.needs
        self._update_of = self._update = None
        self._ready = None
        self.kept = sorted({i for st in self.steps if st.needs is not None for i in st.ins
                            if self.kinds[i] == "value"})
        # The replay loops read these flat tuples, looked up once here rather than per op.
        self._fwd = tuple((st.fn, st.ins, st.attrs, st.outs if st.multi else st.outs[0], st.multi)
                          for st in self.steps)
        self._bwd = tuple((k, st.ins, st.needs, st.outs if st.multi else st.outs[0], st.multi)
                          for k, st in reversed(list(enumerate(self.steps))) if st.needs is not None)
        self._opaque = any(st.opaque is not None for st in self.steps)
        self.batch = tracer.batch
        self.batch_generic = self._batch_generic(tracer)

    def _batch_generic(self, tracer):
        """Whether this step, traced on batches of `tracer.batch` rows, replays unchanged on batches
        of any other size: every input, target and sample weight has the batch as its first axis, and
        nothing recorded can have been computed from the batch size. That is judged conservatively:
        no constant at all (a mean's count, a reshape's size are constants), and op attributes only
        None, bools, strings, and numbers that are not a multiple of the batch size (nor, for
        floats, a multiple of its inverse), or tuples of these (slices, arrays and objects may
        encode it). The raw ops read every other shape from their arrays."""
        b = tracer.batch
        if not isinstance(b, int) or b < 2 or self.kind != "train":
            return False
        for s, kind in enumerate(self.kinds):
            shape = self.shapes[s]
            if kind in ("input", "target", "weight") and (not shape or shape[0] != b):
                return False
            if kind == "const":
                return False

        def plain(v):
            if v is None or isinstance(v, (bool, str, np.random.Generator)):   # (a dropout's generator)
                return True
            if isinstance(v, int):
                return v == 0 or v % b != 0
            if isinstance(v, float):
                return v == 0 or not (v % b == 0 or float(v * b).is_integer())
            if isinstance(v, tuple):
                return all(plain(e) for e in v)
            return False
        return all(plain(v) for step in self.steps if step.opaque is None for v in step.attrs.values())

    def _traced_values(self, tracer):
        by_slot = {s: a for a in tracer.keep for s in [tracer.slots.get(id(a))] if s is not None}
        return [by_slot.get(s) for s in range(len(self.base))]

    # replay
    def _forward(self, vals, keep_vjps):
        vjps = [] if keep_vjps else None
        ndarray = np.ndarray
        for fn, ins, attrs, outs, multi in self._fwd:
            out, vjp = fn(*[vals[i] for i in ins], **attrs)
            if multi:
                for s, o in zip(outs, out):
                    vals[s] = o if type(o) is ndarray else np.asarray(o)
            else:
                vals[outs] = out if type(out) is ndarray else np.asarray(out)
            if keep_vjps:
                vjps.append(vjp)
        return vjps

    def run_forward(self, input_arrays):
        vals = list(self.base)
        for s, a in zip(self.input_slots, input_arrays):
            vals[s] = _value(a)
        self._forward(vals, False)
        return [Tensor(vals[s]) for s in self.output_slots]

    def fresh_outputs(self, input_arrays):
        """The forward's outputs as arrays the caller owns (predict hands them to the user): an
        op's new array as it is, a copy of anything else (an input, a weight, a view of one,
        an output listed twice)."""
        vals = list(self.base)
        for s, a in zip(self.input_slots, input_arrays):
            vals[s] = a
        self._forward(vals, False)
        outs, seen = [], set()
        for s in self.output_slots:
            a = vals[s]
            if self.kinds[s] != "value" or a.base is not None or id(a) in seen:
                a = a.copy()
            seen.add(id(a))
            outs.append(a)
        return outs

    def run_train(self, model, xs, ys, sample_weight):
        vals = list(self.base)
        for s, a in zip(self.input_slots, xs):
            vals[s] = a
        for s, a in zip(self.target_slots, ys or ()):
            vals[s] = a
        if self.weight_slot is not None:
            vals[self.weight_slot] = sample_weight
        autodiff._replaying.append(self)
        try:
            if self._opaque:     # only the layers called as usual read the training flag
                with training_scope(True):
                    vjps = self._forward(vals, True)
            else:
                vjps = self._forward(vals, True)
        finally:
            autodiff._replaying.pop()
        # The gradients come through engine.distribution, which, in a data-parallel step, seeds the
        # backward with this rank's share and reduces each gradient across ranks once it is final.
        grads = distributed.compute_gradients(_Backward(self, vals, vjps), vals[self.total_slot], self.tvars)
        update = self._update if self._update_of is model.optimizer else self._planned_update(model)
        if update is not None:
            update(grads)
        else:
            model.optimizer.apply(grads, self.tvars)
        per_output = [None if s is None else Tensor(vals[s]) for s in self.per_output_slots]
        return Tensor(vals[self.total_slot]), per_output, [Tensor(vals[s]) for s in self.output_slots]

    def _planned_update(self, model):
        """The optimizer's update for this plan's variables without apply's per-call checks
        (Optimizer._planned_update), made on the first replay, when the optimizer is built."""
        self._update_of = model.optimizer
        planned = getattr(model.optimizer, "_planned_update", None)   # wrappers have none
        self._update = planned(self.tvars) if planned is not None else None
        return self._update

    def _backward(self, vals, vjps, seed=None, on_ready=None):
        """The tape's walk (engine.autodiff.GradientTape._gradient) on slots: same vjps, same
        order, same sums; `seed` and `on_ready` as there."""
        grads = [None] * len(vals)
        grads[self.total_slot] = np.ones_like(vals[self.total_slot]) if seed is None else seed
        # Data-parallel: each variable's gradient goes to on_ready once the steps reading it are done
        # (keys of _ready_points, fired before the first step below them, as the tape does).
        ready = self._ready_points() if on_ready is not None else {}
        pending = sorted(ready, reverse=True)
        ndarray = np.ndarray
        for k, ins, needs, outs, multi in self._bwd:
            while pending and pending[0] > k:
                for i in ready[pending.pop(0)]:
                    on_ready(i, grads[self.tvar_slots[i]])
            if multi:
                g = tuple([_dense(grads[s]) for s in outs])
                if all(x is None for x in g):
                    continue
            else:
                g = grads[outs]
                if g is None:
                    continue
                if type(g) is not ndarray:
                    g = _dense(g)
            in_grads = vjps[k](g, needs)
            for i, need, gx in zip(ins, needs, in_grads):
                if not need or gx is None:
                    continue
                if type(gx) is not ndarray and not isinstance(gx, (np.ndarray, SparseGradient)):
                    gx = np.asarray(gx)
                prev = grads[i]
                grads[i] = gx if prev is None else _dense(prev) + _dense(gx)
        for key in pending:
            for i in ready[key]:
                on_ready(i, grads[self.tvar_slots[i]])
        return [grads[s] for s in self.tvar_slots]

    def _ready_points(self):
        """{k: trainable-variable indices whose gradient is final once the backward has done steps
        k and later}: the earliest step reading the variable (0 for a variable nothing reads)."""
        if self._ready is None:
            first = {}
            for k, step in enumerate(self.steps):
                if step.needs is not None:
                    for s, need in zip(step.ins, step.needs):
                        if need:
                            first.setdefault(s, k)
            self._ready = {}
            for i, s in enumerate(self.tvar_slots):
                self._ready.setdefault(first.get(s, 0), []).append(i)
        return self._ready

    # printing
    def summary(self, print_fn=print):
        """Print the whole step: its inputs, forward ops, what the backward keeps, backward ops."""
        var_names = {s: v.path for v, s in zip(self.model_weights, self.weight_slots)}

        def name(s):
            return var_names.get(s) or (f"const{self.shapes[s] or ''}" if self.kinds[s] == "const" else f"%{s}")

        def attrs(step):
            shown = [f"{k}={v}" for k, v in step.attrs.items()
                     if isinstance(v, (str, int, float, bool, tuple)) and v is not None]
            return f"[{', '.join(shown)}]" if shown else ""

        def desc(s):
            shape, dtype = self.shapes[s], self.dtypes[s]
            return f"{name(s)} {tuple(shape) if shape is not None else ''} {dtype if dtype is not None else ''}".rstrip()
        lines = [f"Plan of model \"{self.model_name}\" ({self.kind}): {len(self.steps)} steps"]
        for label, kind in (("inputs", "input"), ("targets", "target"), ("sample weights", "weight")):
            slots = [s for s, k in enumerate(self.kinds) if k == kind]
            if slots:
                lines.append(f"  {label}: " + ", ".join(desc(s) for s in slots))
        lines.append("Forward:")
        for step in self.steps:
            ins = ", ".join(name(i) for i in step.ins)
            outs = ", ".join(desc(s) for s in step.outs)
            lines.append(f"  {outs} = {step.label}{attrs(step)}({ins})")
        lines.append("  outputs: " + ", ".join(name(s) for s in self.output_slots))
        made = [s for st in self.steps for s in st.outs if self.shapes[s] is not None]
        made_bytes = sum(int(np.prod(self.shapes[s])) * np.dtype(self.dtypes[s]).itemsize for s in made)
        lines.append(f"Values computed: {len(made)}, {made_bytes:,} bytes, allocated by the ops on every "
                     "replay (no preallocated buffers yet)")
        if self.total_slot is not None:
            lines.append(f"  loss: {name(self.total_slot)}")
            kept_bytes = sum(int(np.prod(self.shapes[s])) * np.dtype(self.dtypes[s]).itemsize
                             for s in self.kept if self.shapes[s] is not None)
            lines.append(f"Kept for the backward: {len(self.kept)} values, {kept_bytes:,} bytes")
            lines.append("Backward (reverse order, gradients summed per slot):")
            for step in reversed(self.steps):
                if step.needs is None:
                    continue
                wanted = ", ".join(name(i) for i, n in zip(step.ins, step.needs) if n)
                lines.append(f"  d[{wanted}] += vjp of {step.label}")
            lines.append(f"Update: one optimizer.apply of the {len(self.tvars)} gradients to "
                         + ", ".join(v.path for v in self.tvars))
        for line in lines:
            print_fn(line)


# -- building and dispatch --------------------------------------------------------------------------
def run_forward(model, input_arrays):
    """The model's outputs (flat list of Tensors) for `input_arrays`, through the plan of their
    signature (traced on first use)."""
    arrays = [_value(a) for a in input_arrays]
    if any(isinstance(a, Tensor) and a._keras_mask is not None for a in input_arrays):
        return model._interpret(input_arrays, None)
    key = (_signature(arrays), bool(_training_flag()))
    cache = _cache(model, "forward")
    plan = cache.get(key)
    if plan is _UNPLANNABLE:
        return model._interpret(input_arrays, None)
    if plan is not None:
        return plan.run_forward(arrays)
    tracer = Tracer(model, _batch(arrays))
    tracer.add_inputs(arrays, "input")
    autodiff._tracers.append(tracer)
    try:
        outs = model._interpret(arrays, tracer)
    finally:
        autodiff._tracers.remove(tracer)
    plan = _UNPLANNABLE
    if tracer.failed is None:
        try:
            plan = tracer.finish("forward", [tracer.slot_of(o) for o in outs])
        except _NotPlannable:
            pass
    if not tracer.retry:
        _store(cache, key, plan)
    return outs


def predict_batch(model, x):
    """predict's outputs for one batch `x` (an array) of a single-input functional model, as fresh
    arrays, when the forward plan of its signature exists and x needs no conversion; else None
    (the caller runs the step as usual). What the step would do around the plan is done here:
    the losses left on the layers by earlier calls are cleared (the model call's call_context)
    and the layers the plan calls as usual see training=False."""
    inputs = model.inputs
    if len(inputs) != 1 or not enabled(model) or autodiff._active_tapes or autodiff._tracers or \
            getattr(_context, "call_depth", 0):
        return None
    spec = inputs[0]
    shape = spec.shape
    if x.dtype != spec.dtype or x.ndim != len(shape) or not x.flags.c_contiguous or \
            any(e is not None and e != a for e, a in zip(shape[1:], x.shape[1:])):
        return None
    plan = _cache(model, "forward").get((((x.shape, x.dtype),), False))
    if plan is None or plan is _UNPLANNABLE:
        return None
    for layer in plan.layers:
        if layer._losses:
            layer._losses.clear()
    if plan._opaque:     # layers called as usual (random augmentations...) read the flag
        with training_scope(False):
            return plan.fresh_outputs([x])
    return plan.fresh_outputs([x])


def _training_flag():
    return getattr(_context, "training", None)


def _batch(arrays):
    for a in arrays:
        if a.ndim:
            return a.shape[0]
    return None


def train_key(model, xs, ys, sample_weight, tvars):
    # Whether a data-parallel step runs is part of the key: layers trace differently inside one
    # (BatchNormalization's statistics across ranks are an opaque call there, an op outside).
    return (_signature(xs), _signature(ys) if ys is not None else None,
            None if sample_weight is None else (sample_weight.shape, sample_weight.dtype),
            tuple(map(id, tvars)), id(model.optimizer), distributed.active() is not None)


def _trainable_plannable(model, tvars):
    if not tvars or model.optimizer.scales_loss:
        return False
    if any(getattr(w, "regularizer", None) is not None for w in model.trainable_weights):
        return False
    return True


def run_train(model, xs, ys, sample_weight, tvars, eager_step):
    """One built-in training step through the plan of this signature: (total, per-output losses,
    outputs). The first step of a signature runs `eager_step(tracer)` (the unplanned step, traced)."""
    key = train_key(model, xs, ys, sample_weight, tvars)
    cache = _cache(model, "train")
    plan = cache.get(key)
    if plan is None and distributed.active() is None:   # data-parallel steps: one trace per size
        plan = _other_batch_size(cache, key)
    if plan is not None and plan is not _UNPLANNABLE:
        return plan.run_train(model, xs, ys, sample_weight)
    if plan is _UNPLANNABLE or not _trainable_plannable(model, tvars):
        return eager_step(None)
    tracer = Tracer(model, _batch(xs))
    tracer.add_inputs(xs, "input")
    autodiff._tracers.append(tracer)
    try:
        result = eager_step(tracer)
    finally:
        autodiff._tracers.remove(tracer)
    if not tracer.retry:
        _store(cache, key, tracer.plan if tracer.failed is None and tracer.plan is not None else _UNPLANNABLE)
    return result


def _other_batch_size(cache, key):
    """A batch-generic plan (Plan.batch_generic) of the same step on batches of another size, now
    also cached for `key`'s size; else None. An epoch's last, smaller batch so replays the full
    batches' plan instead of tracing the step again (a second unplanned step in the first epoch)."""
    xs, ys, sw, tvars, opt, parallel = key
    batch = _key_batch(key)
    if batch is None:
        return None
    for other, plan in cache.items():
        if plan is _UNPLANNABLE or not plan.batch_generic or other[3] != tvars or other[4] != opt:
            continue
        if _key_batch(other) == plan.batch and _rebatched(other, batch) == key:
            _store(cache, key, plan)
            return plan
    return None


def _key_batch(key):
    """The first-axis size every array of a train key shares, or None."""
    sigs = [s for group in (key[0], key[1] or ()) for s in group] + ([key[2]] if key[2] is not None else [])
    sizes = {shape[0] if shape else None for shape, _ in sigs}
    return sizes.pop() if len(sizes) == 1 else None


def _rebatched(key, batch):
    """The train key of the same arrays with `batch` rows."""
    def sig(group):
        return tuple(((batch,) + shape[1:], dtype) for shape, dtype in group)
    xs, ys, sw, tvars, opt, parallel = key
    return (sig(xs), None if ys is None else sig(ys),
            None if sw is None else ((batch,) + sw[0][1:], sw[1]), tvars, opt, parallel)


def begin_loss(tracer, model, outs, ys, sample_weight):
    """Called by the traced training step once the forward has run."""
    tracer.forward_done = True
    if tracer.failed is not None:
        return
    try:
        tracer.out_slots = [tracer.slot_of(o) for o in outs]
    except _NotPlannable as e:
        tracer.fail(str(e))
        return
    tracer.add_inputs(ys or (), "target")
    if sample_weight is not None:
        tracer.add_inputs([sample_weight], "weight")
    tracer.loss_inputs = list(outs) + list(ys or ()) + ([sample_weight] if sample_weight is not None else [])
    tracer.begin("loss")


def end_loss(tracer, model, total, per_output, ys, sample_weight, tvars):
    """Called by the traced training step with its losses, before the gradient is taken."""
    if tracer.failed is not None:
        return
    tracer.layers = model._flatten_layers()     # the plan keeps them (Plan.layers)
    if total is None or any(layer._losses for layer in tracer.layers):
        tracer.fail("the step adds losses of the layers or has no loss")
        return
    n_out = len(tracer.out_slots)
    n_y = len(ys or ())
    present = [p for p in per_output if p is not None]

    def run(arrays):
        outs = [Tensor(a) for a in arrays[:n_out]]
        y = list(arrays[n_out:n_out + n_y]) if ys is not None else None
        sw = arrays[n_out + n_y] if sample_weight is not None else None
        t, per = model._compute_losses(y, outs, sw)
        return [t] + [p for p in per if p is not None]
    try:
        tracer.end_segment("loss", _is_traceable_loss(model), tracer.loss_inputs, [total] + present,
                           run, [])
        total_slot = tracer.slot_of(total)
        per_slots = [None if p is None else tracer.slot_of(p) for p in per_output]
        tracer.plan = tracer.finish("train", tracer.out_slots, tvars, total_slot, per_slots)
    except _NotPlannable as e:
        tracer.fail(str(e))


def plan_summary(model, kind="train", print_fn=print):
    """Print the model's latest plan of a kind ("train" or "forward")."""
    plans = [p for p in _cache(model, kind).values() if p is not _UNPLANNABLE]
    if not plans:
        raise ValueError(f"Model \"{model.name}\" has no {kind} plan yet: it is made by the first "
                         f"{'fit / train_on_batch' if kind == 'train' else 'predict / evaluate / model(x)'} "
                         "call with a built-in step (and plans are off with ENGINE_PLAN=0).")
    plans[-1].summary(print_fn=print_fn)
