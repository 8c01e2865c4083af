"""The generic recurrent layer and its cells: RNN, SimpleRNNCell, LSTMCell, GRUCell,
StackedRNNCells, and TimeDistributed.

A cell computes one step, `call(inputs, states) -> (output, new_states)`, from engine ops, with
Keras's weights (kernel, recurrent_kernel, bias) in Keras's order.  RNN runs any cell over the
time axis (masks, initial and carried states, go_backwards, return_sequences / return_state);
for the three built-in cells with kernel-supported activations and no dropout in play it hands
the whole sequence to the fused kernels of engine.ops.recurrent instead, which compute the
same numbers.
"""
import numpy as np

from engine import activations, constraints, initializers, ops, regularizers
from engine import random as engine_random
from engine.layers.base import Layer, snake_case
from engine.layers.recurrent import _KERNEL_ACTIVATIONS, _RNN, _UnitForgetBias, check_unroll
from engine.layers.wrappers import Wrapper
from engine.ops import recurrent as rnn_ops
from engine.ops.layout import ascontiguous
from engine.saving.registry import register_builtins


def _sizes(state_size):
    """A cell's state_size as a list of ints."""
    if isinstance(state_size, (list, tuple)):
        return [int(s) for s in state_size]
    return [int(state_size)]


class _Cell(Layer):
    """What the built-in cells share: arguments, weights, dropout masks fixed for a sequence."""

    gates = 1

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"{type(self).__name__}: units must be a positive integer, got {units!r}")
        if not (0 <= dropout < 1 and 0 <= recurrent_dropout < 1):
            raise ValueError(f"{type(self).__name__}: dropout and recurrent_dropout must be in [0, 1), got "
                             f"{dropout!r}, {recurrent_dropout!r}")
        self.units = int(units)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.dropout, self.recurrent_dropout = float(dropout), float(recurrent_dropout)
        self.seed = seed
        self._rng = engine_random.make_generator(seed) if seed is not None else None
        self._masks = {}

    @property
    def state_size(self):
        return self.units

    @property
    def output_size(self):
        return self.units

    def _bias_shape(self):
        return (self.gates * self.units,)

    def _bias_init(self):
        return self.bias_initializer

    def build(self, input_shape):
        features = input_shape[-1]
        if features is None:
            raise ValueError(f"Layer \"{self.name}\" ({type(self).__name__}): the feature axis must be known, got "
                             f"input shape {tuple(input_shape)}")
        width = self.gates * self.units
        self.kernel = self.add_weight(shape=(features, width), initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint,
                                      name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, width), initializer=self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer,
                                                constraint=self.recurrent_constraint, name="recurrent_kernel")
        self.bias = self.add_weight(shape=self._bias_shape(), initializer=self._bias_init(),
                                    regularizer=self.bias_regularizer, constraint=self.bias_constraint,
                                    name="bias") if self.use_bias else None
        self.built = True

    # Dropout masks are drawn once per sequence (RNN calls reset_dropout_mask before each run).
    def reset_dropout_mask(self):
        self._masks = {}

    reset_recurrent_dropout_mask = reset_dropout_mask

    def _dropped(self, x, rate, key, training):
        if not training or rate == 0:
            return x
        mask = self._masks.get(key)
        if mask is None or mask.shape != tuple(x.shape):
            rng = self._rng or engine_random.generator()
            mask = ((engine_random.draw_for_batch(rng.random, tuple(x.shape)) >= rate) / (1.0 - rate)).astype(x.dtype)
            self._masks[key] = mask
        return ops.multiply(x, mask)

    def _inputs_and_state(self, inputs, h, training):
        return (self._dropped(inputs, self.dropout, "input", training),
                self._dropped(h, self.recurrent_dropout, "recurrent", training))

    def get_initial_state(self, batch_size=None):
        return [np.zeros((batch_size, s), dtype=self.dtype) for s in _sizes(self.state_size)]

    def get_config(self):
        config = super().get_config()
        config.update({
            "units": self.units, "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout, "seed": self.seed,
        })
        config.update(self._weight_settings_config(_Cell))
        return config


def _first(states):
    return states[0] if isinstance(states, (list, tuple)) else states


class SimpleRNNCell(_Cell):
    """One step of a fully connected RNN: h' = activation(x W + h U + b), as
    keras.layers.SimpleRNNCell.

    Args:
        units, activation, use_bias, kernel_initializer, recurrent_initializer,
        bias_initializer, kernel_regularizer, recurrent_regularizer, bias_regularizer,
        kernel_constraint, recurrent_constraint, bias_constraint, dropout, recurrent_dropout,
        seed: as Keras's.
    """

    def __init__(self, units, activation="tanh", **kwargs):
        kwargs.pop("recurrent_activation", None)
        super().__init__(units, activation=activation, **kwargs)

    def call(self, inputs, states, training=False):
        x, h = self._inputs_and_state(inputs, _first(states), training)
        z = ops.add(ops.matmul(x, self.kernel), ops.matmul(h, self.recurrent_kernel))
        if self.bias is not None:
            z = ops.add(z, self.bias)
        out = self.activation(z)
        return out, [out] if isinstance(states, (list, tuple)) else out


class LSTMCell(_Cell):
    """One step of a long short-term memory unit (gates i, f, c, o in Keras's order), as
    keras.layers.LSTMCell.

    Args:
        units, activation, recurrent_activation, use_bias, kernel_initializer,
        recurrent_initializer, bias_initializer, unit_forget_bias, kernel_regularizer,
        recurrent_regularizer, bias_regularizer, kernel_constraint, recurrent_constraint,
        bias_constraint, dropout, recurrent_dropout, seed: as Keras's.
    """

    gates = 4

    def __init__(self, units, unit_forget_bias=True, **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)

    @property
    def state_size(self):
        return [self.units, self.units]

    def _bias_init(self):
        return _UnitForgetBias(self.bias_initializer, self.units) if self.unit_forget_bias else self.bias_initializer

    def call(self, inputs, states, training=False):
        h, c = states[0], states[1]
        x, h_in = self._inputs_and_state(inputs, h, training)
        z = ops.add(ops.matmul(x, self.kernel), ops.matmul(h_in, self.recurrent_kernel))
        if self.bias is not None:
            z = ops.add(z, self.bias)
        u = self.units
        i = self.recurrent_activation(z[:, :u])
        f = self.recurrent_activation(z[:, u:2 * u])
        g = self.activation(z[:, 2 * u:3 * u])
        o = self.recurrent_activation(z[:, 3 * u:])
        c_new = ops.add(ops.multiply(f, c), ops.multiply(i, g))
        h_new = ops.multiply(o, self.activation(c_new))
        return h_new, [h_new, c_new]

    def get_config(self):
        config = super().get_config()
        config.update({"recurrent_activation": activations.serialize(self.recurrent_activation),
                       "unit_forget_bias": self.unit_forget_bias})
        return config


class GRUCell(_Cell):
    """One step of a gated recurrent unit (gates z, r, h in Keras's order), as
    keras.layers.GRUCell.

    Args:
        units, activation, recurrent_activation, use_bias, kernel_initializer,
        recurrent_initializer, bias_initializer, kernel_regularizer, recurrent_regularizer,
        bias_regularizer, kernel_constraint, recurrent_constraint, bias_constraint, dropout,
        recurrent_dropout, reset_after (the reset gate applies after the recurrent product, with
        a separate recurrent bias: bias shape (2, 3 * units)), seed: as Keras's.
    """

    gates = 3

    def __init__(self, units, reset_after=True, **kwargs):
        super().__init__(units, **kwargs)
        self.reset_after = bool(reset_after)

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def call(self, inputs, states, training=False):
        h = _first(states)
        x, h_in = self._inputs_and_state(inputs, h, training)
        u = self.units
        xw = ops.matmul(x, self.kernel)
        if self.bias is not None:
            xw = ops.add(xw, self.bias[0] if self.reset_after else self.bias)
        if self.reset_after:
            hu = ops.matmul(h_in, self.recurrent_kernel)
            if self.bias is not None:
                hu = ops.add(hu, self.bias[1])
            z = self.recurrent_activation(ops.add(xw[:, :u], hu[:, :u]))
            r = self.recurrent_activation(ops.add(xw[:, u:2 * u], hu[:, u:2 * u]))
            hh = self.activation(ops.add(xw[:, 2 * u:], ops.multiply(r, hu[:, 2 * u:])))
        else:
            hu = ops.matmul(h_in, self.recurrent_kernel[:, :2 * u])
            z = self.recurrent_activation(ops.add(xw[:, :u], hu[:, :u]))
            r = self.recurrent_activation(ops.add(xw[:, u:2 * u], hu[:, u:]))
            hh = self.activation(ops.add(xw[:, 2 * u:], ops.matmul(ops.multiply(r, h_in),
                                                                   self.recurrent_kernel[:, 2 * u:])))
        h_new = ops.add(ops.multiply(z, h), ops.multiply(ops.subtract(1.0, z), hh))
        return h_new, [h_new] if isinstance(states, (list, tuple)) else h_new

    def get_config(self):
        config = super().get_config()
        config.update({"recurrent_activation": activations.serialize(self.recurrent_activation),
                       "reset_after": self.reset_after})
        return config


class StackedRNNCells(Layer):
    """Several cells run as one: each step feeds the input through the cells in turn, as
    keras.layers.StackedRNNCells.  Its states are the cells' states, in order.

    Args:
        cells: a list of cells.
    """

    def __init__(self, cells, **kwargs):
        super().__init__(**kwargs)
        for cell in cells:
            if not hasattr(cell, "call") or not hasattr(cell, "state_size"):
                raise ValueError(f"StackedRNNCells: every cell needs call() and state_size, got {cell!r}")
        self.cells = list(cells)

    @property
    def state_size(self):
        return [s for cell in self.cells for s in _sizes(cell.state_size)]

    @property
    def output_size(self):
        last = self.cells[-1]
        return getattr(last, "output_size", _sizes(last.state_size)[0])

    def build(self, input_shape):
        shape = tuple(input_shape)
        for cell in self.cells:
            if isinstance(cell, Layer):
                cell._maybe_build(shape)
            shape = shape[:-1] + (getattr(cell, "output_size", _sizes(cell.state_size)[0]),)
        self.built = True

    def reset_dropout_mask(self):
        for cell in self.cells:
            if hasattr(cell, "reset_dropout_mask"):
                cell.reset_dropout_mask()

    def call(self, inputs, states, training=False):
        new_states, at, x = [], 0, inputs
        for cell in self.cells:
            n = len(_sizes(cell.state_size))
            x, cell_states = _call_cell(cell, x, list(states[at:at + n]), training)
            new_states += cell_states
            at += n
        return x, new_states

    def get_config(self):
        from engine.saving.serialization import serialize_keras_object
        config = super().get_config()
        config["cells"] = [serialize_keras_object(c) for c in self.cells]
        return config

    @classmethod
    def from_config(cls, config):
        from engine.saving.serialization import deserialize_keras_object
        config = dict(config)
        config["cells"] = [deserialize_keras_object(c) for c in config["cells"]]
        return cls(**config)


def _call_cell(cell, x, states, training):
    """One step of any cell: (output, list of new states)."""
    import inspect
    call = cell.call
    takes_training = "training" in inspect.signature(call).parameters
    out, new = call(x, states, training=training) if takes_training else call(x, states)
    new = list(new) if isinstance(new, (list, tuple)) else [new]
    return out, new


def _fused_name(cell, attr):
    name = activations.serialize(getattr(cell, attr))
    return name if name in _KERNEL_ACTIVATIONS else None


class RNN(Layer):
    """Runs a cell over the time axis of (batch, timesteps, features) inputs, as keras.layers.RNN.

    Args:
        cell: a cell (an object with call(inputs, states) -> (output, new_states) and
            state_size), or a list of cells (stacked).
        return_sequences: return every step's output (else the last).
        return_state: also return the final states.
        go_backwards: process the sequence from the end (the outputs come in that order).
        stateful: carry the final states into the next call (reset_states() clears them).
        unroll: whether Keras unrolls the time loop when it compiles the model. Engine steps
            through the sequence in Python either way, which computes the same result; as in
            Keras, True needs a known number of timesteps.
        zero_output_for_mask: masked steps output zeros (else the previous output).

    Call arguments:
        inputs, mask (batch, timesteps), training, initial_state (a list of tensors).
    """

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False, stateful=False,
                 unroll=False, zero_output_for_mask=False, **kwargs):
        if isinstance(cell, dict):
            from engine.saving.serialization import deserialize_keras_object
            cell = deserialize_keras_object(cell)
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(cell)
        if not hasattr(cell, "call") or not hasattr(cell, "state_size"):
            raise ValueError(f"RNN: the cell must have a call(inputs, states) method and a state_size attribute, "
                             f"got {cell!r}")
        super().__init__(**kwargs)
        self.cell = cell
        self.return_sequences, self.return_state = bool(return_sequences), bool(return_state)
        self.go_backwards, self.stateful, self.unroll = bool(go_backwards), bool(stateful), bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.supports_masking = True
        self.states = None

    @property
    def state_count(self):
        return len(_sizes(self.cell.state_size))

    def _output_size(self):
        return getattr(self.cell, "output_size", _sizes(self.cell.state_size)[0])

    def _check_input(self, shape):
        if not isinstance(shape, tuple) or len(shape) < 3:
            raise ValueError(f"Layer \"{self.name}\" (RNN) expects inputs of shape (batch, timesteps, features...), "
                             f"got {shape}")
        check_unroll(self, shape)

    def build(self, input_shape):
        step_shape = (input_shape[0],) + tuple(input_shape[2:])
        if isinstance(self.cell, Layer):
            self.cell._maybe_build(step_shape)       # in the RNN's name scope: "rnn/lstm_cell/kernel"
        elif hasattr(self.cell, "build"):
            self.cell.build(step_shape)
        self.built = True

    def _state_shapes(self, batch, inputs_shape):
        """The shape of each state for a batch (a vector per sample; ConvLSTM's are feature maps)."""
        return [(batch, size) for size in _sizes(self.cell.state_size)]

    def _initial_states(self, batch, initial_state, dtype, inputs_shape=None):
        shapes = self._state_shapes(batch, inputs_shape)
        if initial_state is not None:
            states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
            if len(states) != len(shapes):
                raise ValueError(f"Layer \"{self.name}\" ({type(self).__name__}): the cell takes {len(shapes)} "
                                 f"state(s), got {len(states)} initial states")
            for s, shape in zip(states, shapes):
                if tuple(np.shape(s)) != shape:
                    raise ValueError(f"Layer \"{self.name}\" ({type(self).__name__}): an initial state must have "
                                     f"shape {shape}, got {tuple(np.shape(s))}")
            return [ops.convert_to_tensor(s, dtype) if not hasattr(s, "_value") else s for s in states]
        if self.stateful and self.states is not None and self.states[0].shape[0] == batch:
            return [ops.convert_to_tensor(s) for s in self.states]
        return [ops.zeros(shape, dtype) for shape in shapes]

    def _fused_run(self, x, states, mask, training):
        """The whole sequence in one kernel call for the built-in cells, or None."""
        cell = self.cell
        kind = type(cell)
        if kind not in (LSTMCell, GRUCell, SimpleRNNCell):
            return None
        if training and (cell.dropout > 0 or cell.recurrent_dropout > 0):
            return None
        if self.zero_output_for_mask and mask is not None and self.return_sequences:
            return None
        act = _fused_name(cell, "activation")
        rec = _fused_name(cell, "recurrent_activation") if kind is not SimpleRNNCell else "sigmoid"
        if act is None or rec is None:
            return None
        m = None if mask is None else np.ascontiguousarray(np.asarray(mask, dtype=bool).view(np.uint8))
        dtype = cell.kernel.dtype
        if x.dtype != dtype:            # the cell computes in its own dtype, as in Keras
            x = ops.cast(x, dtype)
            states = [ops.cast(st, dtype) for st in states]
        if not np.asarray(x).flags.c_contiguous:
            x = ascontiguous(x)          # the kernels take C-contiguous sequences
        if kind is LSTMCell:
            h_seq, h_last, c_last = rnn_ops.lstm(x, cell.kernel, cell.recurrent_kernel, cell.bias, states[0],
                                                 states[1], mask=m, go_backwards=self.go_backwards, activation=act,
                                                 recurrent_activation=rec)
            return h_seq, h_last, [h_last, c_last]
        if kind is GRUCell:
            h_seq, h_last = rnn_ops.gru(x, cell.kernel, cell.recurrent_kernel, cell.bias, states[0], mask=m,
                                        go_backwards=self.go_backwards, activation=act, recurrent_activation=rec,
                                        reset_after=cell.reset_after)
            return h_seq, h_last, [h_last]
        h_seq, h_last = rnn_ops.simple_rnn(x, cell.kernel, cell.recurrent_kernel, cell.bias, states[0], mask=m,
                                           go_backwards=self.go_backwards, activation=act)
        return h_seq, h_last, [h_last]

    def _loop(self, x, states, mask, training):
        """Step the cell through time; a masked step keeps the states and repeats the previous
        output (or outputs zeros with zero_output_for_mask)."""
        steps = x.shape[1]
        order = range(steps - 1, -1, -1) if self.go_backwards else range(steps)
        outputs, previous = [], None
        keep = None if mask is None else np.asarray(mask, dtype=bool)
        for t in order:
            out, new_states = _call_cell(self.cell, x[:, t], states, training)
            if keep is not None:
                k = keep[:, t].reshape((-1,) + (1,) * (out.ndim - 1))
                new_states = [ops.where(k, n, s) for n, s in zip(new_states, states)]
                fallback = previous if previous is not None and not self.zero_output_for_mask \
                    else ops.zeros(tuple(out.shape), out.dtype)
                out = ops.where(k, out, fallback)
            states, previous = new_states, out
            outputs.append(out)
        seq = ops.stack(outputs, axis=1) if self.return_sequences else None
        return seq, outputs[-1], states

    def call(self, inputs, mask=None, training=None, initial_state=None):
        if inputs.ndim < 3:
            raise ValueError(f"Layer \"{self.name}\" (RNN) expects inputs of shape (batch, timesteps, features), "
                             f"got {inputs.shape}")
        states = self._initial_states(inputs.shape[0], initial_state, inputs.dtype, tuple(inputs.shape))
        if hasattr(self.cell, "reset_dropout_mask"):
            self.cell.reset_dropout_mask()
        run = self._fused_run(inputs, states, mask, training) if inputs.ndim == 3 and inputs.shape[1] else None
        if run is None:
            run = self._loop(inputs, states, mask, training)
        seq, last, states = run
        if self.stateful:
            self.states = [np.array(s) for s in states]
        output = seq if self.return_sequences else last
        return [output] + list(states) if self.return_state else output

    def reset_states(self, states=None):
        """Forget the carried states (stateful layers), or set them to `states`."""
        self.states = None if states is None else [np.asarray(s) for s in states]

    reset_state = reset_states

    def compute_output_shape(self, input_shape):
        units = self._output_size()
        out = (input_shape[0], input_shape[1], units) if self.return_sequences else (input_shape[0], units)
        if self.return_state:
            return [out] + [(input_shape[0], s) for s in _sizes(self.cell.state_size)]
        return out

    # The output mask: the input's for sequences, none for the states (as LSTM / GRU / SimpleRNN).
    compute_mask = _RNN.compute_mask

    def get_config(self):
        from engine.saving.serialization import serialize_keras_object
        config = super().get_config()
        config.update({"return_sequences": self.return_sequences, "return_state": self.return_state,
                       "go_backwards": self.go_backwards, "stateful": self.stateful, "unroll": self.unroll,
                       "zero_output_for_mask": self.zero_output_for_mask,
                       "cell": serialize_keras_object(self.cell)})
        return config


class TimeDistributed(Wrapper):
    """Apply a layer to every time step of (batch, timesteps, ...) inputs (the steps fold into
    the batch), as keras.layers.TimeDistributed.

    Args:
        layer: the layer to apply.
    """

    def __init__(self, layer, **kwargs):
        super().__init__(layer, **kwargs)
        self.supports_masking = True

    def _check_input(self, shape):
        if not isinstance(shape, tuple) or len(shape) < 3:
            raise ValueError(f"Layer \"{self.name}\" (TimeDistributed) expects inputs of rank >= 3 (batch, "
                             f"timesteps, ...), got {shape}")

    def build(self, input_shape):
        super().build((None,) + tuple(input_shape[2:]))

    def call(self, inputs, mask=None, training=None):
        batch, steps = inputs.shape[:2]
        folded = ops.reshape(inputs, (batch * steps,) + tuple(inputs.shape[2:]))
        kwargs = {}
        if training is not None and self.layer._call_has_training:
            kwargs["training"] = training
        if mask is not None and self.layer._call_has_mask:
            kwargs["mask"] = ops.reshape(ops.convert_to_tensor(mask), (batch * steps,) +
                                         tuple(np.shape(mask)[2:]))
        y = self.layer(folded, **kwargs)
        return ops.reshape(y, (batch, steps) + tuple(y.shape[1:]))

    def compute_output_shape(self, input_shape):
        inner = self.layer.compute_output_shape((None,) + tuple(input_shape[2:]))
        return (input_shape[0], input_shape[1]) + tuple(inner[1:])


register_builtins("layers", globals())  # loadable from .keras configs by class name
