"""Convolutional LSTMs (channels_last): ConvLSTM1D, ConvLSTM2D, ConvLSTM3D, as keras.layers.ConvLSTM*.

An LSTM whose products are convolutions: each step, the input goes through a convolution with
the layer's strides / padding / dilation and the hidden state through a "same" convolution,
both for the four gates (i, f, c, o) at once, on the GEMM-backed convolution kernels.  The time
loop is RNN's (masks, states, go_backwards, stateful).
"""
from engine import activations, initializers, ops
from engine.layers.convolutional import layer_int_tuple
from engine.layers.convolutional3d import conv3d
from engine.layers.recurrent import _UnitForgetBias
from engine.layers.rnn import RNN, _Cell
from engine.ops import convolution as conv_ops
from engine.saving.registry import register_builtins


class _ConvLSTMCell(_Cell):
    """One ConvLSTM step on (batch, *spatial, channels) inputs; states (batch, *out_spatial, filters)."""

    gates = 4

    def __init__(self, rank, filters, kernel_size, strides=1, padding="valid", dilation_rate=1,
                 unit_forget_bias=True, **kwargs):
        super().__init__(filters, **kwargs)
        self.rank = rank
        self.filters = int(filters)
        self.kernel_size = layer_int_tuple(kernel_size, rank, "kernel_size", self)
        self.strides = layer_int_tuple(strides, rank, "strides", self)
        self.dilation_rate = layer_int_tuple(dilation_rate, rank, "dilation_rate", self)
        self.padding = padding.lower()
        if self.padding not in ("valid", "same"):
            raise ValueError(f"ConvLSTM{rank}D: padding must be 'valid' or 'same', got {padding!r}")
        self.unit_forget_bias = bool(unit_forget_bias)

    @property
    def state_size(self):
        return [self.filters, self.filters]

    def _bias_init(self):
        return _UnitForgetBias(self.bias_initializer, self.filters) if self.unit_forget_bias else self.bias_initializer

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or any(d is None for d in input_shape[1:-1]):
            raise ValueError(f"Layer \"{self.name}\" (ConvLSTM{self.rank}D) needs known spatial and channel sizes, "
                             f"got step shape {tuple(input_shape)}")
        self.kernel = self.add_weight(shape=self.kernel_size + (channels, 4 * self.filters),
                                      initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint, name="kernel")
        self.recurrent_kernel = self.add_weight(shape=self.kernel_size + (self.filters, 4 * self.filters),
                                                initializer=self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer,
                                                constraint=self.recurrent_constraint, name="recurrent_kernel")
        self.bias = self.add_weight(shape=(4 * self.filters,), initializer=self._bias_init(),
                                    regularizer=self.bias_regularizer, constraint=self.bias_constraint,
                                    name="bias") if self.use_bias else None
        self.built = True

    def output_spatial(self, spatial):
        return tuple(conv_ops.output_length(n, k, s, self.padding, d)
                     for n, k, s, d in zip(spatial, self.kernel_size, self.strides, self.dilation_rate))

    def _conv(self, x, kernel, bias, strides, padding, dilation):
        if self.rank == 3:
            return conv3d(x, kernel, bias, strides, padding, dilation)
        if self.rank == 2:
            return conv_ops.conv2d(x, kernel, bias, strides=strides, padding=padding, dilation_rate=dilation)
        n, steps, channels = x.shape
        y = conv_ops.conv2d(ops.reshape(x, (n, 1, steps, channels)), ops.reshape(kernel, (1,) + tuple(kernel.shape)),
                            bias, strides=(1,) + tuple(strides), padding=padding, dilation_rate=(1,) + tuple(dilation))
        return ops.reshape(y, (n, y.shape[2], y.shape[3]))

    def call(self, inputs, states, training=False):
        h, c = states[0], states[1]
        x, h_in = self._inputs_and_state(inputs, h, training)
        z = ops.add(self._conv(x, self.kernel, self.bias, self.strides, self.padding, self.dilation_rate),
                    self._conv(h_in, self.recurrent_kernel, None, (1,) * self.rank, "same", (1,) * self.rank))
        f = self.filters
        i = self.recurrent_activation(z[..., :f])
        fg = self.recurrent_activation(z[..., f:2 * f])
        g = self.activation(z[..., 2 * f:3 * f])
        o = self.recurrent_activation(z[..., 3 * f:])
        c_new = ops.add(ops.multiply(fg, c), ops.multiply(i, g))
        h_new = ops.multiply(o, self.activation(c_new))
        return h_new, [h_new, c_new]


class _ConvLSTM(RNN):
    rank = 2

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 activation="tanh", recurrent_activation="sigmoid", use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros", unit_forget_bias=True,
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, recurrent_constraint=None, bias_constraint=None,
                 dropout=0.0, recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, **kwargs):
        if data_format not in (None, "channels_last"):
            raise ValueError(f"{type(self).__name__}: engine supports data_format='channels_last' only, got "
                             f"{data_format!r}")
        cell = _ConvLSTMCell(self.rank, filters, kernel_size, strides=strides, padding=padding,
                             dilation_rate=dilation_rate, unit_forget_bias=unit_forget_bias, activation=activation,
                             recurrent_activation=recurrent_activation, use_bias=use_bias,
                             kernel_initializer=kernel_initializer, recurrent_initializer=recurrent_initializer,
                             bias_initializer=bias_initializer, kernel_regularizer=kernel_regularizer,
                             recurrent_regularizer=recurrent_regularizer, bias_regularizer=bias_regularizer,
                             kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint,
                             bias_constraint=bias_constraint, dropout=dropout, recurrent_dropout=recurrent_dropout,
                             seed=seed, dtype=kwargs.get("dtype"), name="conv_lstm_cell")  # (Keras's name, for every rank)
        super().__init__(cell, return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, activity_regularizer=activity_regularizer,
                         **kwargs)

    def _check_input(self, shape):
        if not isinstance(shape, tuple) or len(shape) != self.rank + 3:
            axes = {1: "steps", 2: "rows, cols", 3: "depth, rows, cols"}[self.rank]
            raise ValueError(f"Layer \"{self.name}\" ({type(self).__name__}) expects inputs of rank {self.rank + 3} "
                             f"(batch, time, {axes}, channels), got {shape}")

    def _state_shapes(self, batch, inputs_shape):
        shape = (batch,) + self.cell.output_spatial(inputs_shape[2:-1]) + (self.cell.filters,)
        return [shape, shape]

    def compute_output_shape(self, input_shape):
        spatial = self.cell.output_spatial(input_shape[2:-1])
        step = (input_shape[0],) + spatial + (self.cell.filters,)
        out = (input_shape[0], input_shape[1]) + step[1:] if self.return_sequences else step
        return [out, step, step] if self.return_state else out

    def get_config(self):
        config = super().get_config()
        del config["cell"]
        cell = self.cell
        config.update({
            "filters": cell.filters, "kernel_size": cell.kernel_size, "strides": cell.strides,
            "padding": cell.padding, "data_format": "channels_last", "dilation_rate": cell.dilation_rate,
            "activation": activations.serialize(cell.activation),
            "recurrent_activation": activations.serialize(cell.recurrent_activation), "use_bias": cell.use_bias,
            "kernel_initializer": initializers.serialize(cell.kernel_initializer),
            "recurrent_initializer": initializers.serialize(cell.recurrent_initializer),
            "bias_initializer": initializers.serialize(cell.bias_initializer),
            "unit_forget_bias": cell.unit_forget_bias, "dropout": cell.dropout,
            "recurrent_dropout": cell.recurrent_dropout, "seed": cell.seed,
        })
        from engine.saving.serialization import serialize_keras_object
        for name in ("kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "kernel_constraint",
                     "recurrent_constraint", "bias_constraint"):
            config[name] = serialize_keras_object(getattr(cell, name))
        config["activity_regularizer"] = serialize_keras_object(self.activity_regularizer)
        return config


class ConvLSTM1D(_ConvLSTM):
    """1-D convolutional LSTM over (batch, time, steps, channels) inputs, as keras.layers.ConvLSTM1D;
    kernel (k, channels, 4 * filters), recurrent_kernel (k, filters, 4 * filters), bias (4 * filters).

    Args:
        as ConvLSTM2D.
    """

    rank = 1


class ConvLSTM2D(_ConvLSTM):
    """2-D convolutional LSTM over (batch, time, rows, cols, channels) inputs, as
    keras.layers.ConvLSTM2D; kernel (kh, kw, channels, 4 * filters), recurrent_kernel
    (kh, kw, filters, 4 * filters), bias (4 * filters).

    Args:
        filters, kernel_size, strides, padding ("valid" / "same"), data_format, dilation_rate,
        activation, recurrent_activation, use_bias, kernel_initializer, recurrent_initializer,
        bias_initializer, unit_forget_bias, kernel_regularizer, recurrent_regularizer,
        bias_regularizer, activity_regularizer, kernel_constraint, recurrent_constraint,
        bias_constraint, dropout, recurrent_dropout, seed, return_sequences, return_state,
        go_backwards, stateful: as Keras's.
    """

    rank = 2


class ConvLSTM3D(_ConvLSTM):
    """3-D convolutional LSTM over (batch, time, depth, rows, cols, channels) inputs, as
    keras.layers.ConvLSTM3D; kernel (kd, kh, kw, channels, 4 * filters), recurrent_kernel
    (kd, kh, kw, filters, 4 * filters), bias (4 * filters).

    Args:
        as ConvLSTM2D.
    """

    rank = 3


register_builtins("layers", globals())  # loadable from .keras configs by class name
