"""Whole-sequence recurrent ops: one kernel call runs every time step forward, one runs
backpropagation through time (engine._kernels.recurrent)."""

import numpy as np

from engine.autodiff import differentiable
from engine.ops._util import contiguous
from engine._kernels import recurrent as R


def _maybe(g, dtype):
    return None if g is None else contiguous(g, dtype)


def _meet_kernel(kernel, *arrays):
    """The arrays as the kernels take them: C-contiguous, in the weights' dtype (None stays None).

    Strided, Fortran-order or float64 inputs are valid layer inputs; copying them here, inside
    the op, keeps the tape's link to the caller's array (its gradient comes back in its shape).
    """
    dtype = kernel.dtype
    return tuple(None if a is None else contiguous(a, dtype) for a in arrays)


def _state(h, x, recurrent_kernel):
    """An initial state as the kernels take it: None is zeros, made here (inside the op, so that a
    step plan replaying the op makes them for every batch; a batch-sized array made outside it
    would be a value the plan cannot account for)."""
    if h is not None:
        return h
    return np.zeros((x.shape[0], recurrent_kernel.shape[0]), dtype=recurrent_kernel.dtype)


def _as_input(g, x):
    """A gradient in the dtype of the input it belongs to (the kernel computed it in its own);
    None for an input that was None (a zero initial state)."""
    if x is None:
        return None
    return g if g is None or g.dtype == x.dtype else g.astype(x.dtype)


def _wanted(needs):
    """(input_grad, weight_grads) for the backward kernels: an RNN reading a model input needs no
    dx, whose GEMM costs as much as the whole input projection."""
    return bool(needs[0]), bool(needs[1] or needs[2] or needs[3])


@differentiable
def _lstm(x, kernel, recurrent_kernel, bias, h0, c0, mask=None, rec_mask=None, go_backwards=False,
          activation="tanh", recurrent_activation="sigmoid"):
    xk, h0k, c0k = _meet_kernel(kernel, x, _state(h0, x, recurrent_kernel), _state(c0, x, recurrent_kernel))
    h_seq, h_last, c_last, cache = R.lstm_forward(xk, kernel, recurrent_kernel, bias, h0k, c0k, mask, rec_mask,
                                                  go_backwards, activation, recurrent_activation)

    def vjp(grads, needs):
        g_seq, g_h, g_c = grads
        dt = kernel.dtype
        dx, dw, du, db, dh0, dc0 = R.lstm_backward(cache, _maybe(g_seq, dt), _maybe(g_h, dt), _maybe(g_c, dt),
                                                   *_wanted(needs))
        return _as_input(dx, x), dw, du, db, _as_input(dh0, h0), _as_input(dc0, c0)
    return (h_seq, h_last, c_last), vjp


@differentiable
def _gru(x, kernel, recurrent_kernel, bias, h0, mask=None, rec_mask=None, go_backwards=False,
         activation="tanh", recurrent_activation="sigmoid", reset_after=True):
    xk, h0k = _meet_kernel(kernel, x, _state(h0, x, recurrent_kernel))
    h_seq, h_last, cache = R.gru_forward(xk, kernel, recurrent_kernel, bias, h0k, mask, rec_mask, go_backwards,
                                         activation, recurrent_activation, reset_after)

    def vjp(grads, needs):
        g_seq, g_h = grads
        dt = kernel.dtype
        dx, dw, du, db, dh0 = R.gru_backward(cache, _maybe(g_seq, dt), _maybe(g_h, dt), *_wanted(needs))
        return _as_input(dx, x), dw, du, db, _as_input(dh0, h0)
    return (h_seq, h_last), vjp


@differentiable
def _simple_rnn(x, kernel, recurrent_kernel, bias, h0, mask=None, rec_mask=None, go_backwards=False,
                activation="tanh"):
    xk, h0k = _meet_kernel(kernel, x, _state(h0, x, recurrent_kernel))
    h_seq, h_last, cache = R.simple_rnn_forward(xk, kernel, recurrent_kernel, bias, h0k, mask, rec_mask,
                                                go_backwards, activation)

    def vjp(grads, needs):
        g_seq, g_h = grads
        dt = kernel.dtype
        dx, dw, du, db, dh0 = R.simple_rnn_backward(cache, _maybe(g_seq, dt), _maybe(g_h, dt), *_wanted(needs))
        return _as_input(dx, x), dw, du, db, _as_input(dh0, h0)
    return (h_seq, h_last), vjp


def lstm(x, kernel, recurrent_kernel, bias, h0, c0, mask=None, rec_mask=None, go_backwards=False,
         activation="tanh", recurrent_activation="sigmoid"):
    """Keras 3 LSTM over (B, T, D): returns (h_seq in processing order, h_last, c_last)."""
    return _lstm(x, kernel, recurrent_kernel, bias, h0, c0, mask=mask, rec_mask=rec_mask,
                 go_backwards=go_backwards, activation=activation, recurrent_activation=recurrent_activation)


def gru(x, kernel, recurrent_kernel, bias, h0, mask=None, rec_mask=None, go_backwards=False,
        activation="tanh", recurrent_activation="sigmoid", reset_after=True):
    return _gru(x, kernel, recurrent_kernel, bias, h0, mask=mask, rec_mask=rec_mask, go_backwards=go_backwards,
                activation=activation, recurrent_activation=recurrent_activation, reset_after=reset_after)


def simple_rnn(x, kernel, recurrent_kernel, bias, h0, mask=None, rec_mask=None, go_backwards=False,
               activation="tanh"):
    return _simple_rnn(x, kernel, recurrent_kernel, bias, h0, mask=mask, rec_mask=rec_mask,
                       go_backwards=go_backwards, activation=activation)
