"""Fourier transforms on (real, imaginary) pairs of tensors, as keras.ops takes and returns
them (fft, fft2, ifft2, rfft, irfft, stft, istft), each differentiable; and the complex-number
helpers polar, view_as_complex and view_as_real (complex tensors, not differentiable)."""
import numpy as np

from engine import config
from engine.autodiff import differentiable
from engine.ops._checks import positive_int
from engine.ops._util import to_array, wrap
from engine.ops import math as m
from engine.ops.arrays import operand_tensor, pad as _pad


def _float(x):
    x = operand_tensor(x)
    return x if x.dtype.kind == "f" else m.cast(x, config.floatx())


def _pair(op, x):
    if not isinstance(x, (tuple, list)) or len(x) != 2:
        raise ValueError(f"{op}: x must be a (real, imaginary) pair of tensors, got {type(x).__name__}")
    re, im = _float(x[0]), _float(x[1])
    if re.shape != im.shape:
        raise ValueError(f"{op}: the real part {re.shape} and the imaginary part {im.shape} must have the same shape")
    if re.dtype != im.dtype:
        im = m.cast(im, re.dtype)
    return re, im


@differentiable
def _dft(re, im, axes=(-1,), inverse=False):
    z = re + 1j * im
    out = np.fft.ifftn(z, axes=axes) if inverse else np.fft.fftn(z, axes=axes)

    def vjp(grads, needs):
        gr = np.zeros_like(re) if grads[0] is None else grads[0]
        gi = np.zeros_like(im) if grads[1] is None else grads[1]
        gz = gr + 1j * gi
        n = int(np.prod([re.shape[a] for a in axes]))
        # The adjoint of the DFT matrix F is conj(F) = n * F^-1.
        back = np.fft.fftn(gz, axes=axes) / n if inverse else np.fft.ifftn(gz, axes=axes) * n
        return back.real.astype(re.dtype), back.imag.astype(im.dtype)
    return (out.real.astype(re.dtype), out.imag.astype(re.dtype)), vjp


def fft(x):
    """The discrete Fourier transform along the last axis of the complex tensor given as a
    (real, imaginary) pair; returns the (real, imaginary) pair of the result."""
    re, im = _pair("fft", x)
    return _dft(re, im, axes=(-1,))


def fft2(x):
    """The 2-D discrete Fourier transform over the last two axes of a (real, imaginary) pair."""
    re, im = _pair("fft2", x)
    if re.ndim < 2:
        raise ValueError(f"fft2: x needs at least 2 axes, got shape {re.shape}")
    return _dft(re, im, axes=(-2, -1))


def ifft2(x):
    """The inverse 2-D discrete Fourier transform over the last two axes of a (real, imaginary) pair."""
    re, im = _pair("ifft2", x)
    if re.ndim < 2:
        raise ValueError(f"ifft2: x needs at least 2 axes, got shape {re.shape}")
    return _dft(re, im, axes=(-2, -1), inverse=True)


def _fit_length(x, n):
    """x cut or zero-padded along its last axis to length n (a recorded op)."""
    if x.shape[-1] == n:
        return x
    if x.shape[-1] > n:
        return m.getitem(x, (Ellipsis, slice(0, n)))
    return _pad(x, ((0, 0),) * (x.ndim - 1) + ((0, n - x.shape[-1]),))


@differentiable
def _rfft(x):
    n = x.shape[-1]
    out = np.fft.rfft(x, axis=-1)

    def vjp(grads, needs):
        gr = np.zeros(out.shape, x.dtype) if grads[0] is None else grads[0]
        gi = np.zeros(out.shape, x.dtype) if grads[1] is None else grads[1]
        full = np.zeros(x.shape, dtype=np.complex128)
        full[..., :out.shape[-1]] = gr + 1j * gi
        return (np.real(np.fft.ifft(full, axis=-1) * n).astype(x.dtype),)
    return (out.real.astype(x.dtype), out.imag.astype(x.dtype)), vjp


def rfft(x, fft_length=None):
    """The DFT of the real x along its last axis, non-negative frequencies only.

    Args:
        x: real input.
        fft_length: the transform length (x is cut or zero-padded to it; default x's length).

    Returns:
        (real, imaginary) pair with fft_length // 2 + 1 frequencies.
    """
    x = _float(x)
    if x.ndim == 0:
        raise ValueError("rfft: x needs at least one axis")
    n = x.shape[-1] if fft_length is None else positive_int("rfft", "fft_length", fft_length)
    return _rfft(_fit_length(x, n))


@differentiable
def _irfft(re, im, n=None):
    bins = n // 2 + 1
    z = re[..., :bins] + 1j * im[..., :bins]
    out = np.fft.irfft(z, n=n, axis=-1).astype(re.dtype)

    def vjp(g, needs):
        c = np.fft.fft(g, axis=-1)[..., :bins]
        weight = np.full(bins, 2.0)
        weight[0] = 1.0
        if n % 2 == 0:
            weight[-1] = 1.0
        gre = np.zeros(re.shape, re.dtype)
        gim = np.zeros(im.shape, im.dtype)
        used = min(bins, re.shape[-1])
        gre[..., :used] = (weight * c.real / n)[..., :used]
        gi = weight * c.imag / n
        gi[..., 0] = 0.0          # the imaginary parts of the zero and Nyquist bins are ignored
        if n % 2 == 0:
            gi[..., -1] = 0.0
        gim[..., :used] = gi[..., :used]
        return gre, gim
    return out, vjp


def irfft(x, fft_length=None):
    """The inverse of rfft: a real signal from its non-negative frequencies.

    Args:
        x: (real, imaginary) pair of the frequencies along the last axis.
        fft_length: the output length (default 2 * (frequencies - 1)).
    """
    re, im = _pair("irfft", x)
    n = 2 * (re.shape[-1] - 1) if fft_length is None else positive_int("irfft", "fft_length", fft_length)
    if n < 1:
        raise ValueError(f"irfft: cannot infer an output length from {re.shape[-1]} frequencies; give fft_length")
    bins = n // 2 + 1
    if re.shape[-1] < bins:
        re = _pad(re, ((0, 0),) * (re.ndim - 1) + ((0, bins - re.shape[-1]),))
        im = _pad(im, ((0, 0),) * (im.ndim - 1) + ((0, bins - im.shape[-1]),))
    return _irfft(re, im, n=n)


def _window(op, window, sequence_length, fft_length, dtype):
    """The analysis window, zero-padded in the middle of fft_length samples (None: ones over
    all fft_length samples, as Keras)."""
    if window is None:
        return np.ones(fft_length, dtype=dtype)
    if isinstance(window, str):
        if window not in ("hann", "hamming"):
            raise ValueError(f"{op}: window must be 'hann', 'hamming', a tensor or None, got {window!r}")
        k = np.arange(sequence_length)
        a = 0.5 if window == "hann" else 0.54
        win = a - (1 - a) * np.cos(2 * np.pi * k / sequence_length)    # periodic, as scipy's default
    else:
        win = np.asarray(to_array(operand_tensor(window)), dtype=np.float64)
        if win.shape != (sequence_length,):
            raise ValueError(f"{op}: window must have shape ({sequence_length},), got {win.shape}")
    left = (fft_length - sequence_length) // 2
    return np.pad(win, (left, fft_length - sequence_length - left)).astype(dtype)


def _frame_args(op, sequence_length, sequence_stride, fft_length):
    length = positive_int(op, "sequence_length", sequence_length)
    stride = positive_int(op, "sequence_stride", sequence_stride)
    n = positive_int(op, "fft_length", fft_length)
    if n < length:
        raise ValueError(f"{op}: fft_length ({n}) must be at least sequence_length ({length})")
    return length, stride, n


def stft(x, sequence_length, sequence_stride, fft_length, window="hann", center=True):
    """The short-time Fourier transform along the last axis.

    Args:
        x: real signal (..., samples), float32 or float64.
        sequence_length: window length.
        sequence_stride: hop between frames.
        fft_length: DFT length (at least sequence_length; the window is centred in it).
        window: "hann", "hamming" (periodic), a 1-D tensor of sequence_length, or None.
        center: reflect-pad fft_length // 2 samples at both ends so frames are centred.

    Returns:
        (real, imaginary) pair of shape (..., frames, fft_length // 2 + 1).
    """
    x = operand_tensor(x)
    if x.dtype.kind != "f":
        raise ValueError(f"stft: x must be float32 or float64, got {x.dtype}")
    length, stride, n = _frame_args("stft", sequence_length, sequence_stride, fft_length)
    if center:
        x = _pad(x, ((0, 0),) * (x.ndim - 1) + ((n // 2, n // 2),), mode="reflect")
    if x.shape[-1] < n:
        raise ValueError(f"stft: the signal ({x.shape[-1]} samples) is shorter than fft_length {n}")
    from engine.ops.patches import extract_sequences
    frames = extract_sequences(x, n, stride)
    win = _window("stft", window, length, n, x.dtype)
    return _rfft(m.multiply(frames, win))


@differentiable
def _overlap_add(frames, stride=1):
    count, n = frames.shape[-2:]
    total = n + stride * (count - 1)
    index = (np.arange(count)[:, None] * stride + np.arange(n)[None, :]).reshape(-1)
    out = np.zeros(frames.shape[:-2] + (total,), frames.dtype)
    flat = frames.reshape(frames.shape[:-2] + (-1,))
    for pos in np.ndindex(frames.shape[:-2]):
        np.add.at(out[pos], index, flat[pos])

    def vjp(g, needs):
        return (g[..., index].reshape(frames.shape),)
    return out, vjp


def istft(x, sequence_length, sequence_stride, fft_length, length=None, window="hann", center=True):
    """The inverse of stft: frames inverted, windowed and overlap-added, divided by the
    overlapping squared windows.

    Args:
        x: (real, imaginary) pair of shape (..., frames, fft_length // 2 + 1).
        sequence_length, sequence_stride, fft_length, window, center: as given to stft.
        length: the number of samples to return (default: all, less the centring padding).
    """
    re, im = _pair("istft", x)
    length_w, stride, n = _frame_args("istft", sequence_length, sequence_stride, fft_length)
    frames = irfft((re, im), fft_length=n)
    win = _window("istft", window, length_w, n, frames.dtype)
    signal = _overlap_add(m.multiply(frames, win), stride=stride)
    count = frames.shape[-2]
    norm = to_array(_overlap_add.raw(np.broadcast_to(win * win, (count, n)).copy(), stride=stride)[0])
    # Where no window overlaps (norm ~ 0) the samples are left unscaled, as scipy does.
    scale = np.where(norm > 1e-10, 1.0 / np.where(norm > 1e-10, norm, 1.0), 1.0).astype(frames.dtype)
    if window is None:
        # Keras's convention without a window: the overlap-added frames times fft_length / stride.
        scale = scale * np.asarray(n / stride, dtype=frames.dtype)
    signal = m.multiply(signal, scale)
    start = n // 2 if center else 0
    total = signal.shape[-1]
    if length is not None:
        end = start + int(length)
    elif center:
        end = total - n // 2
    else:
        end = total
    if end > total:
        signal = _pad(signal, ((0, 0),) * (signal.ndim - 1) + ((0, end - total),))
    return m.getitem(signal, (Ellipsis, slice(start, end)))


def polar(abs_, angle):
    """The complex tensor abs_ * exp(i * angle) (complex64 for float32 inputs)."""
    r, t = to_array(_float(abs_)), to_array(_float(angle))
    dtype = np.complex128 if np.result_type(r, t) == np.float64 else np.complex64
    return wrap((r * np.exp(1j * t)).astype(dtype))


def view_as_complex(x):
    """The complex tensor whose real and imaginary parts are x[..., 0] and x[..., 1]."""
    a = to_array(_float(x))
    if a.ndim == 0 or a.shape[-1] != 2:
        raise ValueError(f"view_as_complex: the last axis must have size 2, got shape {a.shape}")
    dtype = np.complex128 if a.dtype == np.float64 else np.complex64
    return wrap((a[..., 0] + 1j * a[..., 1]).astype(dtype))


def view_as_real(x):
    """A complex tensor as real numbers: a new last axis of size 2 (real, imaginary)."""
    a = to_array(operand_tensor(x))
    if not np.iscomplexobj(a):
        raise ValueError(f"view_as_real: x must be complex, got dtype {a.dtype}")
    return wrap(np.stack([a.real, a.imag], axis=-1))


__all__ = ["fft", "fft2", "ifft2", "rfft", "irfft", "stft", "istft", "polar", "view_as_complex", "view_as_real"]
