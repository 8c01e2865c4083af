"""Recurrent layers: LSTM, GRU, SimpleRNN and the Bidirectional wrapper.

Each layer runs its whole sequence in one kernel call (engine.ops.recurrent);
this module handles Keras's arguments: masks, dropout, initial and carried
states, return_sequences / return_state and go_backwards.
"""
import numpy as np

from engine import activations, constraints, initializers, ops, regularizers
from engine import random as engine_random
from engine.layers.base import Layer
from engine.ops import recurrent as rnn_ops
from engine.saving.registry import register_builtins

_KERNEL_ACTIVATIONS = ("tanh", "sigmoid", "relu", "linear", "hard_sigmoid")


def _activation_name(activation, what, layer):
    name = activations.serialize(activations.get(activation))
    if name not in _KERNEL_ACTIVATIONS:
        raise ValueError(f"{type(layer).__name__}: {what}={name!r} is not supported by the recurrent kernels; "
                         f"use one of {', '.join(_KERNEL_ACTIVATIONS)}")
    return name


class _UnitForgetBias(initializers.Initializer):
    """Zeros, with ones for the forget gate (the second quarter), as Keras's unit_forget_bias."""

    def __init__(self, base, units):
        self.base, self.units = base, units

    def __call__(self, shape, dtype=None):
        value = np.asarray(self.base((self.units,), dtype=dtype))
        ones = np.ones((self.units,), dtype=dtype or "float32")
        more = np.asarray(self.base((self.units * 2,), dtype=dtype))
        return np.concatenate([value, ones, more]).astype(dtype or "float32")


def _check_use_cudnn(layer, use_cudnn):
    """Keras's LSTM / GRU choose cuDNN with use_cudnn ("auto": where it can run; True: required);
    engine has no cuDNN, so True is refused."""
    if use_cudnn not in ("auto", True, False):
        raise ValueError(f"Layer {layer.name!r}: use_cudnn must be 'auto', True or False, got {use_cudnn!r}")
    if use_cudnn is True:
        raise ValueError(f"Layer {layer.name!r}: use_cudnn=True asks for cuDNN, which engine (CPU kernels) does "
                         "not have; pass use_cudnn='auto' (the default) or False")
    return use_cudnn


class _CellWeights:
    """Stands for an LSTM / GRU / SimpleRNN's cell when saving: the layer's own weights, in its
    order (kernel, recurrent kernel, bias), saved and loaded as a cell's."""

    def __init__(self, layer):
        self.layer = layer
        self.name = layer.name

    def save_own_variables(self, store):
        """The layer's weights under "0", "1", ... as a cell's own variables."""
        Layer.save_own_variables(self.layer, store)

    def load_own_variables(self, store):
        """Assign the layer's weights from what save_own_variables stored."""
        Layer.load_own_variables(self.layer, store)

    def _saveable_children(self):
        return []


def check_unroll(layer, shape):
    """Keras's constraint on unroll=True: the number of timesteps (axis 1) must be known, as an
    unrolled loop is laid out step by step when the model is built; ValueError otherwise."""
    if layer.unroll and isinstance(shape, tuple) and len(shape) > 1 and shape[1] is None:
        raise ValueError(f"Layer \"{layer.name}\" ({type(layer).__name__}): unroll=True needs a known number of "
                         f"timesteps, but the input has shape {shape}; give the time axis a size (e.g. "
                         f"Input(shape=(timesteps, features))) or leave unroll=False")


class _RNN(Layer):
    """What LSTM, GRU and SimpleRNN share: arguments, weights, masks, dropout and outputs."""

    gates = 1
    state_count = 1

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, seed=None,
                 return_sequences=False, return_state=False, go_backwards=False, stateful=False, unroll=False,
                 **kwargs):
        # Keras 2's `implementation` (1 or 2) changes only how the gates are computed, never the
        # result.  (LSTM and GRU take use_cudnn themselves: see _check_use_cudnn.)
        kwargs.pop("implementation", None)
        # Masked steps output zeros instead of the previous output (Keras's RNN argument, which its
        # LSTM / GRU / SimpleRNN pass on).
        self.zero_output_for_mask = bool(kwargs.pop("zero_output_for_mask", False))
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if int(units) <= 0:
            raise ValueError(f"{type(self).__name__}: units must be positive, got {units}")
        self.units = int(units)
        self.activation = _activation_name(activation, "activation", self)
        self.recurrent_activation = _activation_name(recurrent_activation, "recurrent_activation", self)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        if not (0 <= dropout < 1 and 0 <= recurrent_dropout < 1):
            raise ValueError(f"{type(self).__name__}: dropout rates must be in [0, 1), got {dropout}, "
                             f"{recurrent_dropout}")
        self.dropout, self.recurrent_dropout = float(dropout), float(recurrent_dropout)
        self.seed = seed
        self._rng = engine_random.make_generator(seed) if seed is not None else None
        self.return_sequences, self.return_state = return_sequences, return_state
        self.go_backwards, self.stateful, self.unroll = go_backwards, stateful, unroll
        self.supports_masking = True
        self.states = None

    # -- weights -------------------------------------------------------------------------------
    def _bias_shape(self):
        return (self.gates * self.units,)

    def _bias_initializer(self):
        return self.bias_initializer

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"Layer \"{self.name}\" ({type(self).__name__}) expects inputs of shape "
                             f"(batch, timesteps, features) with known features, got {tuple(input_shape)}")
        width = self.gates * self.units
        self.kernel = self.add_weight(shape=(input_shape[-1], width), initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint,
                                      name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, width), initializer=self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer,
                                                constraint=self.recurrent_constraint, name="recurrent_kernel")
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(shape=self._bias_shape(), initializer=self._bias_initializer(),
                                        regularizer=self.bias_regularizer, constraint=self.bias_constraint,
                                        name="bias")
        # Keras's layer keeps these in a cell sublayer: "lstm/lstm_cell/kernel".
        for weight in (self.kernel, self.recurrent_kernel, self.bias):
            if weight is not None:
                weight.path = f"{weight.path.rsplit('/', 1)[0]}/{self.cell_name}/{weight.name}"
        self.built = True

    def _check_input(self, shape):
        if not isinstance(shape, tuple) or len(shape) != 3:
            raise ValueError(f"Layer \"{self.name}\" ({type(self).__name__}) expects inputs of shape "
                             f"(batch, timesteps, features), got {shape}")
        check_unroll(self, shape)
        if self.built and shape[-1] is not None and shape[-1] != self.kernel.shape[0]:
            raise ValueError(f"Layer \"{self.name}\" ({type(self).__name__}) was built for {self.kernel.shape[0]} "
                             f"features per step but got an input of shape {shape}")

    # -- running -------------------------------------------------------------------------------
    def _initial_states(self, batch, initial_state, dtype):
        if initial_state is not None:
            states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
            if len(states) != self.state_count:
                raise ValueError(f"Layer \"{self.name}\" ({type(self).__name__}) takes {self.state_count} initial "
                                 f"state(s), got {len(states)}")
            for s in states:
                if np.shape(s) != (batch, self.units):
                    raise ValueError(f"Layer \"{self.name}\": an initial state must have shape {(batch, self.units)}, "
                                     f"got {np.shape(s)}")
            return [s if np.asarray(s).dtype == dtype else ops.cast(s, dtype) for s in states]
        if self.stateful and self.states is not None and self.states[0].shape[0] == batch:
            return list(self.states)
        return [None] * self.state_count      # zeros, made inside the op (ops/recurrent.py's _state)

    def _dropout_masks(self, inputs, training):
        rng = self._rng or engine_random.generator()
        batch, features = inputs.shape[0], inputs.shape[-1]
        input_keep = rec_mask = None
        if training and self.dropout > 0:
            keep = (engine_random.draw_for_batch(rng.random, (batch, 1, features)) >= self.dropout) / (1.0 - self.dropout)
            input_keep = keep.astype(inputs.dtype)
        if training and self.recurrent_dropout > 0:
            keep = (engine_random.draw_for_batch(rng.random, (batch, self.units)) >= self.recurrent_dropout) / (1.0 - self.recurrent_dropout)
            rec_mask = np.ascontiguousarray(keep, dtype=inputs.dtype)
        return input_keep, rec_mask

    def call(self, inputs, mask=None, training=None, initial_state=None):
        x = inputs
        if x.ndim != 3:
            raise ValueError(f"Layer \"{self.name}\" ({type(self).__name__}) expects inputs of shape "
                             f"(batch, timesteps, features), got {x.shape}")
        self._check_input(tuple(x.shape))
        input_keep, rec_mask = self._dropout_masks(x, training)
        if input_keep is not None:
            x = ops.multiply(x, input_keep)
        if mask is not None:
            mask = np.ascontiguousarray(np.asarray(mask, dtype=bool).view(np.uint8))
        states = self._initial_states(x.shape[0], initial_state, x.dtype)
        h_seq, h_last, new_states = self._run(x, states, mask, rec_mask)
        if self.zero_output_for_mask and mask is not None and self.return_sequences:
            h_seq = ops.where(mask.view(bool)[..., None], h_seq, np.zeros((), h_seq.dtype))
        if self.stateful:
            self.states = [np.array(s) for s in new_states]
        output = h_seq if self.return_sequences else h_last
        if self.return_state:
            return [output] + list(new_states)
        return output

    def reset_states(self, states=None):
        self.states = None if states is None else [np.asarray(s) for s in states]

    reset_state = reset_states

    def compute_output_shape(self, input_shape):
        out = (input_shape[0], input_shape[1], self.units) if self.return_sequences else (input_shape[0], self.units)
        if self.return_state:
            return [out] + [(input_shape[0], self.units)] * self.state_count
        return out

    def compute_mask(self, inputs, previous_mask=None):
        mask = previous_mask if self.return_sequences else None
        if self.return_state:
            return [mask] + [None] * self.state_count
        return mask

    # -- saving: Keras keeps these weights in the layer's cell, at <path>/cell/vars ----------------
    def save_own_variables(self, store):
        """The layer itself stores nothing: its weights are saved as its cell's (see
        _saveable_children), where Keras 3's LSTM / GRU / SimpleRNN keep them."""

    def load_own_variables(self, store):
        """Nothing is stored at the layer's own path (its cell's weights are loaded there)."""
        if list(store.keys()):
            raise ValueError(f"Layer {self.name!r} ({type(self).__name__}) keeps its weights in its cell, but the "
                             f"file stores {len(store.keys())} arrays at the layer itself")

    def _saveable_children(self):
        """Where the weights walk goes below this layer: the cell's path, holding this layer's weights."""
        return [("cell", _CellWeights(self))]

    def get_config(self):
        config = super().get_config()
        config.update({
            "units": self.units, "activation": self.activation, "recurrent_activation": self.recurrent_activation,
            "use_bias": self.use_bias, "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout, "seed": self.seed,
            "return_sequences": self.return_sequences, "return_state": self.return_state,
            "go_backwards": self.go_backwards, "stateful": self.stateful, "unroll": self.unroll,
        })
        config["zero_output_for_mask"] = self.zero_output_for_mask
        config.update(self._weight_settings_config(_RNN))  # regularizers and constraints
        return config


class LSTM(_RNN):
    """Long short-term memory layer (Hochreiter & Schmidhuber, 1997).

    Inputs have shape `(batch, timesteps, features)`; a mask (e.g. from `Embedding(mask_zero=True)`)
    makes the layer skip masked timesteps, carrying the state over them.
    The states are the hidden state `h` and the cell state `c`.

    Args:
        units: positive integer, the size of the output (and of each state).
        activation: the activation applied to the candidate state / output (default `"tanh"`); one
            of `"tanh"`, `"sigmoid"`, `"relu"`, `"linear"` or `"hard_sigmoid"`.
        recurrent_activation: the activation of the gates (default `"sigmoid"`), from the same
            list.
        unit_forget_bias: whether to add 1 to the forget-gate bias at initialization (and use
            `bias_initializer` for the other gates; default `True`).
        use_bias: whether the layer uses a bias vector (default `True`).
        kernel_initializer: initializer of the input kernel (default `"glorot_uniform"`).
        recurrent_initializer: initializer of the recurrent kernel (default `"orthogonal"`).
        bias_initializer: initializer of the bias (default `"zeros"`).
        kernel_regularizer: optional regularizer applied to the input kernel.
        recurrent_regularizer: optional regularizer applied to the recurrent kernel.
        bias_regularizer: optional regularizer applied to the bias.
        activity_regularizer: optional regularizer applied to the layer's output.
        kernel_constraint: optional constraint applied to the input kernel.
        recurrent_constraint: optional constraint applied to the recurrent kernel.
        bias_constraint: optional constraint applied to the bias.
        dropout: float in `[0, 1)`, the fraction of the input features to drop while training
            (the same mask at every timestep; default 0.0).
        recurrent_dropout: float in `[0, 1)`, the fraction of the recurrent state units to drop
            while training (default 0.0).
        seed: optional integer seed for the dropout masks.
        return_sequences: whether to return the output at every timestep, `(batch, timesteps,
            units)`, instead of only the last one, `(batch, units)` (default `False`).
        return_state: whether to also return the final state(s) after the output (default `False`).
        go_backwards: whether to process the input sequence in reverse (default `False`).
        stateful: whether the final states of a batch are used as the initial states of the next
            batch of the same size (default `False`); `reset_states()` clears them.
        unroll: whether Keras unrolls the time loop when it compiles the model (default
            `False`). Engine runs the whole sequence in one kernel call either way, which computes
            the same result; as in Keras, True needs a known number of timesteps.
        use_cudnn: `"auto"` (default) or `False`; there is no cuDNN on engine's CPU kernels, so
            `True`, which in Keras insists on it, is an error.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """

    # Audited for step plans (models/plan.py): one recurrent op, zero initial states made inside
    # it; dropout masks (drawn in Python), input masks and stateful states make the call opaque.
    _plan_traceable = True

    cell_name = "lstm_cell"     # the name of the cell Keras's LSTM holds its weights in
    gates = 4
    state_count = 2

    def __init__(self, units, unit_forget_bias=True, use_cudnn="auto", **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = unit_forget_bias
        self.use_cudnn = _check_use_cudnn(self, use_cudnn)

    def _bias_initializer(self):
        if self.unit_forget_bias:
            return _UnitForgetBias(self.bias_initializer, self.units)
        return self.bias_initializer

    def _run(self, x, states, mask, rec_mask):
        h_seq, h_last, c_last = rnn_ops.lstm(x, self.kernel, self.recurrent_kernel, self.bias, states[0], states[1],
                                             mask=mask, rec_mask=rec_mask, go_backwards=self.go_backwards,
                                             activation=self.activation,
                                             recurrent_activation=self.recurrent_activation)
        return h_seq, h_last, [h_last, c_last]

    def get_config(self):
        config = super().get_config()
        config["unit_forget_bias"] = self.unit_forget_bias
        return config


class GRU(_RNN):
    """Gated recurrent unit layer (Cho et al., 2014).

    Inputs have shape `(batch, timesteps, features)`; a mask (e.g. from `Embedding(mask_zero=True)`)
    makes the layer skip masked timesteps, carrying the state over them.

    Args:
        units: positive integer, the size of the output (and of each state).
        activation: the activation applied to the candidate state / output (default `"tanh"`); one
            of `"tanh"`, `"sigmoid"`, `"relu"`, `"linear"` or `"hard_sigmoid"`.
        recurrent_activation: the activation of the gates (default `"sigmoid"`), from the same
            list.
        reset_after: whether the reset gate is applied after the recurrent matrix product
            (default `True`, the cuDNN-compatible variant with separate input and recurrent
            biases, so the bias has shape `(2, 3 * units)`) or before it.
        use_bias: whether the layer uses a bias vector (default `True`).
        kernel_initializer: initializer of the input kernel (default `"glorot_uniform"`).
        recurrent_initializer: initializer of the recurrent kernel (default `"orthogonal"`).
        bias_initializer: initializer of the bias (default `"zeros"`).
        kernel_regularizer: optional regularizer applied to the input kernel.
        recurrent_regularizer: optional regularizer applied to the recurrent kernel.
        bias_regularizer: optional regularizer applied to the bias.
        activity_regularizer: optional regularizer applied to the layer's output.
        kernel_constraint: optional constraint applied to the input kernel.
        recurrent_constraint: optional constraint applied to the recurrent kernel.
        bias_constraint: optional constraint applied to the bias.
        dropout: float in `[0, 1)`, the fraction of the input features to drop while training
            (the same mask at every timestep; default 0.0).
        recurrent_dropout: float in `[0, 1)`, the fraction of the recurrent state units to drop
            while training (default 0.0).
        seed: optional integer seed for the dropout masks.
        return_sequences: whether to return the output at every timestep, `(batch, timesteps,
            units)`, instead of only the last one, `(batch, units)` (default `False`).
        return_state: whether to also return the final state(s) after the output (default `False`).
        go_backwards: whether to process the input sequence in reverse (default `False`).
        stateful: whether the final states of a batch are used as the initial states of the next
            batch of the same size (default `False`); `reset_states()` clears them.
        unroll: whether Keras unrolls the time loop when it compiles the model (default
            `False`). Engine runs the whole sequence in one kernel call either way, which computes
            the same result; as in Keras, True needs a known number of timesteps.
        use_cudnn: `"auto"` (default) or `False`; there is no cuDNN on engine's CPU kernels, so
            `True`, which in Keras insists on it, is an error.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """

    # Audited for step plans (models/plan.py): one recurrent op, zero initial states made inside
    # it; dropout masks (drawn in Python), input masks and stateful states make the call opaque.
    _plan_traceable = True

    cell_name = "gru_cell"     # the name of the cell Keras's GRU holds its weights in
    gates = 3

    def __init__(self, units, reset_after=True, use_cudnn="auto", **kwargs):
        super().__init__(units, **kwargs)
        self.reset_after = reset_after
        self.use_cudnn = _check_use_cudnn(self, use_cudnn)

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def _run(self, x, states, mask, rec_mask):
        h_seq, h_last = rnn_ops.gru(x, self.kernel, self.recurrent_kernel, self.bias, states[0], mask=mask,
                                    rec_mask=rec_mask, go_backwards=self.go_backwards, activation=self.activation,
                                    recurrent_activation=self.recurrent_activation, reset_after=self.reset_after)
        return h_seq, h_last, [h_last]

    def get_config(self):
        config = super().get_config()
        config["reset_after"] = self.reset_after
        return config


class SimpleRNN(_RNN):
    """Fully connected recurrent layer: the output is fed back as the input of the next step.

    Inputs have shape `(batch, timesteps, features)`; a mask (e.g. from `Embedding(mask_zero=True)`)
    makes the layer skip masked timesteps, carrying the state over them.
    The new state is `activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)`.

    Args:
        units: positive integer, the size of the output (and of each state).
        activation: the activation applied to the candidate state / output (default `"tanh"`); one
            of `"tanh"`, `"sigmoid"`, `"relu"`, `"linear"` or `"hard_sigmoid"`.
        use_bias: whether the layer uses a bias vector (default `True`).
        kernel_initializer: initializer of the input kernel (default `"glorot_uniform"`).
        recurrent_initializer: initializer of the recurrent kernel (default `"orthogonal"`).
        bias_initializer: initializer of the bias (default `"zeros"`).
        kernel_regularizer: optional regularizer applied to the input kernel.
        recurrent_regularizer: optional regularizer applied to the recurrent kernel.
        bias_regularizer: optional regularizer applied to the bias.
        activity_regularizer: optional regularizer applied to the layer's output.
        kernel_constraint: optional constraint applied to the input kernel.
        recurrent_constraint: optional constraint applied to the recurrent kernel.
        bias_constraint: optional constraint applied to the bias.
        dropout: float in `[0, 1)`, the fraction of the input features to drop while training
            (the same mask at every timestep; default 0.0).
        recurrent_dropout: float in `[0, 1)`, the fraction of the recurrent state units to drop
            while training (default 0.0).
        seed: optional integer seed for the dropout masks.
        return_sequences: whether to return the output at every timestep, `(batch, timesteps,
            units)`, instead of only the last one, `(batch, units)` (default `False`).
        return_state: whether to also return the final state(s) after the output (default `False`).
        go_backwards: whether to process the input sequence in reverse (default `False`).
        stateful: whether the final states of a batch are used as the initial states of the next
            batch of the same size (default `False`); `reset_states()` clears them.
        unroll: whether Keras unrolls the time loop when it compiles the model (default
            `False`). Engine runs the whole sequence in one kernel call either way, which computes
            the same result; as in Keras, True needs a known number of timesteps.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """

    # Audited for step plans (models/plan.py): one recurrent op, zero initial states made inside
    # it; dropout masks (drawn in Python), input masks and stateful states make the call opaque.
    _plan_traceable = True

    cell_name = "simple_rnn_cell"     # the name of the cell Keras's SimpleRNN holds its weights in
    gates = 1

    def __init__(self, units, activation="tanh", **kwargs):
        if "recurrent_activation" in kwargs:        # the shared base takes it; a SimpleRNN has no gates
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s) ['recurrent_activation']")
        super().__init__(units, activation=activation, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.pop("recurrent_activation")  # a SimpleRNN has none; Keras rejects the key
        return config

    def _run(self, x, states, mask, rec_mask):
        h_seq, h_last = rnn_ops.simple_rnn(x, self.kernel, self.recurrent_kernel, self.bias, states[0], mask=mask,
                                           rec_mask=rec_mask, go_backwards=self.go_backwards,
                                           activation=self.activation)
        return h_seq, h_last, [h_last]


def _without_prefix(name, prefix):
    return name[len(prefix):] if name.startswith(prefix) else name


def _check_pair(forward, backward):
    """Keras's rule for a given backward layer: it runs the other way and returns the same things."""
    if forward.go_backwards == backward.go_backwards:
        raise ValueError(f"Bidirectional: the forward layer and backward_layer must differ in go_backwards; "
                         f"both have go_backwards={forward.go_backwards}")
    for attr in ("return_sequences", "return_state", "stateful"):
        if getattr(forward, attr, None) != getattr(backward, attr, None):
            raise ValueError(f"Bidirectional: backward_layer.{attr}={getattr(backward, attr, None)} but the "
                             f"forward layer has {attr}={getattr(forward, attr, None)}; they must match")


class Bidirectional(Layer):
    """Runs a recurrent layer forwards and a copy of it backwards, and merges the two.

    Args:
        layer: the recurrent layer (LSTM, GRU, SimpleRNN, or RNN around a cell) to run both ways.
            Two fresh copies are made from its config; `layer` itself holds no weights used here.
        merge_mode: how the two outputs combine: "concat" (default), "sum", "mul", "ave", or None
            for a list of both.
        weights: optional initial weights, forward layer's first, set when the layer is built.
        backward_layer: optional recurrent layer to use as the backward copy; it must run the
            other way (go_backwards) and match `layer`'s return_sequences, return_state, stateful.
    """

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, **kwargs):
        from engine.layers.rnn import RNN
        if not isinstance(layer, (_RNN, RNN)):
            raise ValueError(f"Bidirectional: expected a recurrent layer (LSTM, GRU, SimpleRNN or RNN), got {layer!r}")
        if merge_mode not in ("concat", "sum", "mul", "ave", None):
            raise ValueError(f"Bidirectional: merge_mode must be concat, sum, mul, ave or None, got {merge_mode!r}")
        super().__init__(**kwargs)
        config = layer.get_config()
        config.pop("name", None)
        config.pop("batch_input_shape", None)
        # Keras names the copies forward_<name> and backward_<name>, without stacking the prefix
        # when the wrapped layer comes from a saved Bidirectional (whose "layer" is forward_<name>).
        self.forward_layer = type(layer)(**{**config, "name": "forward_" + _without_prefix(layer.name, "forward_")})
        if backward_layer is None:
            backward_layer = type(layer)(**{**config, "go_backwards": not layer.go_backwards,
                                            "name": "backward_" + _without_prefix(layer.name, "backward_")})
        elif not isinstance(backward_layer, (_RNN, RNN)):
            raise ValueError(f"Bidirectional: backward_layer must be a recurrent layer, got {backward_layer!r}")
        _check_pair(self.forward_layer, backward_layer)
        self.backward_layer = backward_layer
        self.merge_mode = merge_mode
        self.return_sequences, self.return_state = layer.return_sequences, layer.return_state
        self.supports_masking = True
        self._initial_weights = weights

    def build(self, input_shape):
        self.forward_layer._maybe_build(input_shape)
        self.backward_layer._maybe_build(input_shape)
        self.built = True
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def _merge(self, a, b):
        if self.merge_mode == "concat":
            return ops.concatenate([a, b], axis=-1)
        if self.merge_mode == "sum":
            return ops.add(a, b)
        if self.merge_mode == "mul":
            return ops.multiply(a, b)
        if self.merge_mode == "ave":
            return ops.multiply(ops.add(a, b), 0.5)
        return [a, b]

    def call(self, inputs, mask=None, training=None, initial_state=None):
        fw_state = bw_state = None
        if initial_state is not None:
            half = len(initial_state) // 2
            fw_state, bw_state = initial_state[:half], initial_state[half:]
        fw = self.forward_layer._call_eager((inputs,), {"training": training, "initial_state": fw_state}, mask=mask)
        bw = self.backward_layer._call_eager((inputs,), {"training": training, "initial_state": bw_state}, mask=mask)
        fw_out, fw_states = (fw[0], fw[1:]) if self.return_state else (fw, [])
        bw_out, bw_states = (bw[0], bw[1:]) if self.return_state else (bw, [])
        if self.return_sequences:
            # The backward layer returns its sequence in processing order; align it with time.
            bw_out = ops.reshape(ops.take(bw_out, np.arange(np.shape(bw_out)[1] - 1, -1, -1), axis=1),
                                 np.shape(bw_out))
        merged = self._merge(fw_out, bw_out)
        if self.return_state:
            return (merged if isinstance(merged, list) else [merged]) + list(fw_states) + list(bw_states)
        return merged

    def compute_output_shape(self, input_shape):
        single = self.forward_layer.compute_output_shape(input_shape)
        out = single[0] if self.return_state else single
        if self.merge_mode == "concat":
            out = tuple(out[:-1]) + (out[-1] * 2,)
        outs = [out, out] if self.merge_mode is None else [out]
        if self.return_state:
            states = single[1:]
            return outs + list(states) + list(states)
        return outs if self.merge_mode is None else out

    def compute_mask(self, inputs, previous_mask=None):
        mask = previous_mask if self.return_sequences else None
        if self.return_state:
            return [mask] + [None] * (2 * self.forward_layer.state_count)
        return [mask, mask] if self.merge_mode is None else mask

    def get_config(self):
        config = super().get_config()
        from engine.saving.serialization import serialize_keras_object
        # Keras writes both copies, so a loader never has to re-derive the backward one.
        config.update({"merge_mode": self.merge_mode, "layer": serialize_keras_object(self.forward_layer),
                       "backward_layer": serialize_keras_object(self.backward_layer)})
        return config

    @classmethod
    def from_config(cls, config):
        from engine.saving.serialization import deserialize_keras_object
        config = dict(config)
        config["layer"] = deserialize_keras_object(config["layer"])
        if isinstance(config.get("backward_layer"), dict):
            config["backward_layer"] = deserialize_keras_object(config["backward_layer"])
        return cls(**config)


register_builtins("layers", globals())  # loadable from .keras configs by class name
