"""Image ops (keras.ops.image): colour conversions, resizing, geometric warps by interpolated
sampling, cropping / padding, patches, blurs, Sobel edges and SSIM.

Images are (batch, height, width, channels) or a single (height, width, channels) image (or
channels first with data_format="channels_first").  The resampling ops are built on two
recorded primitives defined here: a per-axis weight matrix applied by tensordot (resize,
scale_and_translate) and `map_coordinates`, interpolated sampling with a gradient for both the
image and the coordinates.
"""
import numpy as np

from engine import config
from engine.autodiff import differentiable
from engine.dtypes import result_type
from engine.ops._checks import positive_int
from engine.ops._util import to_array, wrap
from engine.ops import math as m
from engine.ops.arrays import operand_tensor, rearrange_with, pad as _pad, moveaxis, broadcast_to


# -- layouts ------------------------------------------------------------------------------------
def _data_format(data_format):
    data_format = config.image_data_format() if data_format is None else data_format
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"data_format must be 'channels_last' or 'channels_first', got {data_format!r}")
    return data_format


def _as_batch(op, images, data_format, ranks=(3, 4)):
    """images as a channels_last batch, and a function putting a result back in the caller's layout."""
    x = operand_tensor(images)
    if x.ndim not in ranks:
        raise ValueError(f"{op}: images must be a rank-{ranks[0]} image or a rank-{ranks[-1]} batch, got shape "
                         f"{x.shape}")
    single = len(ranks) == 2 and x.ndim == ranks[0]
    first = _data_format(data_format) == "channels_first"
    if single:
        x = m.expand_dims(x, 0)
    if first:
        x = moveaxis(x, 1, -1)

    def back(y):
        if first:
            y = moveaxis(y, -1, 1)
        return m.squeeze(y, 0) if single else y
    return x, back


def _float(x):
    return x if x.dtype.kind == "f" else m.cast(x, result_type(x.dtype, float))


def _back_to_dtype(y, dtype):
    """A float result returned in the input's dtype: integers rounded and saturated, as Keras."""
    if y.dtype == dtype:
        return y
    if dtype.kind in "iub":
        from engine.ops.core import saturate_cast
        from engine.ops.elementwise import round as _round
        return saturate_cast(_round(y), dtype)
    return m.cast(y, dtype)


# -- colour --------------------------------------------------------------------------------------
def rgb_to_grayscale(images, data_format=None):
    """Luma of RGB images (0.2989 R + 0.5870 G + 0.1140 B) as one channel; 1-channel images are
    returned as they are.  Integer images keep their dtype (the luma truncated by the cast)."""
    x, back = _as_batch("rgb_to_grayscale", images, data_format)
    if x.shape[-1] not in (1, 3):
        raise ValueError(f"rgb_to_grayscale: images need 1 or 3 channels, got shape {operand_tensor(images).shape}")
    if x.shape[-1] == 1:
        return operand_tensor(images)
    dtype = x.dtype
    xf = _float(x)
    weights = np.array([0.2989, 0.5870, 0.1140], dtype=xf.dtype)
    gray = m.expand_dims(m.matmul(xf, weights), -1)
    return back(gray if gray.dtype == dtype else m.cast(gray, dtype))


def _float_images(op, images, data_format):
    x, back = _as_batch(op, images, data_format)
    if x.dtype.kind != "f":
        raise ValueError(f"{op}: images must be a float tensor, got dtype {x.dtype}")
    if x.shape[-1] != 3:
        raise ValueError(f"{op}: images need 3 channels, got shape {operand_tensor(images).shape}")
    return x, back


def rgb_to_hsv(images, data_format=None):
    """RGB images (floats in [0, 1]) to hue, saturation, value, each in [0, 1]."""
    x, back = _float_images("rgb_to_hsv", images, data_format)
    eps = np.finfo(x.dtype).eps
    x = m.where(np.abs(to_array(x)) < eps, np.array(0, x.dtype), x)
    r, g, b = (m.getitem(x, (Ellipsis, i)) for i in range(3))
    value = m.maximum(m.maximum(r, g), b)
    low = m.minimum(m.minimum(r, g), b)
    spread = m.subtract(value, low)
    v, s_ = to_array(value), to_array(spread)
    safe_value = m.where(v > 0, value, np.array(1, x.dtype))
    safe_spread = m.where(s_ > 0, spread, np.array(1, x.dtype))
    saturation = m.where(v > 0, m.divide(spread, safe_value), np.array(0, x.dtype))
    norm = m.divide(1.0, m.multiply(6.0, safe_spread))
    # Hue by which channel holds the maximum (red first, then green, then blue).
    hue = m.where(v == to_array(g), m.add(m.multiply(norm, m.subtract(b, r)), 2.0 / 6.0),
                  m.add(m.multiply(norm, m.subtract(r, g)), 4.0 / 6.0))
    hue = m.where(v == to_array(r), m.multiply(norm, m.subtract(g, b)), hue)
    hue = m.where(s_ > 0, hue, np.array(0, x.dtype))
    hue = m.add(hue, (to_array(hue) < 0).astype(x.dtype))
    return back(m.stack([hue, saturation, value], axis=-1))


def hsv_to_rgb(images, data_format=None):
    """Hue, saturation, value images (floats in [0, 1]) to RGB."""
    x, back = _float_images("hsv_to_rgb", images, data_format)
    h, s, v = (m.getitem(x, (Ellipsis, i)) for i in range(3))
    dh = m.multiply(m.mod(h, 1.0), 6.0)
    dr = m.clip(m.subtract(m.abs(m.subtract(dh, 3.0)), 1.0), 0.0, 1.0)
    dg = m.clip(m.subtract(2.0, m.abs(m.subtract(dh, 2.0))), 0.0, 1.0)
    db = m.clip(m.subtract(2.0, m.abs(m.subtract(dh, 4.0))), 0.0, 1.0)
    grey = m.subtract(1.0, s)
    rgb = [m.multiply(v, m.add(grey, m.multiply(s, d))) for d in (dr, dg, db)]
    return back(m.stack(rgb, axis=-1))


# -- resampling by weight matrices -----------------------------------------------------------------
def _triangle(x):
    return np.maximum(0.0, 1.0 - x)


def _keys_cubic(x):
    # Keys' cubic convolution kernel with a = -0.5.
    out = ((1.5 * x - 2.5) * x) * x + 1.0
    out = np.where(x >= 1.0, ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0, out)
    return np.where(x >= 2.0, 0.0, out)


def _lanczos(radius):
    def kernel(x):
        with np.errstate(invalid="ignore", divide="ignore"):
            y = radius * np.sin(np.pi * x) * np.sin(np.pi * x / radius)
            out = np.where(x > 1e-3, y / (np.pi ** 2 * x ** 2), 1.0)
        return np.where(x > radius, 0.0, out)
    return kernel


_KERNELS = {"linear": _triangle, "bilinear": _triangle, "trilinear": _triangle, "cubic": _keys_cubic,
            "bicubic": _keys_cubic, "tricubic": _keys_cubic, "lanczos3": _lanczos(3), "lanczos5": _lanczos(5)}


def _weight_matrix(in_size, out_size, scale, translation, kernel, antialias):
    """(in_size, out_size) weights sampling one axis at output centres mapped back into the input
    ((i + 0.5) / scale - translation / scale - 0.5); the kernel is widened by 1/scale when
    antialiasing a downscale; each column is normalised over the taps inside the image, and
    columns sampling outside the image are zero."""
    inv = 1.0 / scale
    kernel_scale = max(inv, 1.0) if antialias else 1.0
    sample = (np.arange(out_size) + 0.5) * inv - translation * inv - 0.5
    dist = np.abs(sample[None, :] - np.arange(in_size)[:, None]) / kernel_scale
    w = kernel(dist)
    total = w.sum(axis=0, keepdims=True)
    w = np.where(np.abs(total) > 1000.0 * np.finfo(np.float32).eps, w / np.where(total != 0, total, 1), 0.0)
    inside = (sample >= -0.5) & (sample <= in_size - 0.5)
    return np.where(inside[None, :], w, 0.0)


def _apply_weights(x, axis, weights):
    """x resampled along `axis` by the (in, out) weight matrix (a recorded tensordot)."""
    from engine.ops.contraction import tensordot
    w = weights.astype(x.dtype)
    out = tensordot(x, w, axes=([axis], [0]))       # the new axis comes last
    return moveaxis(out, -1, axis)


def scale_and_translate(images, output_shape, scale, translation, spatial_dims, method, antialias=True):
    """Resample images along spatial_dims: output[i] samples input at (i + 0.5 - translation) / scale - 0.5.

    Args:
        images: a tensor of any rank.
        output_shape: the full output shape.
        scale, translation: one value per spatial dim.
        spatial_dims: the axes to resample.
        method: "linear"/"bilinear"/"trilinear", "cubic"/"bicubic"/"tricubic", "lanczos3" or "lanczos5".
        antialias: widen the kernel when downscaling.
    """
    if method not in _KERNELS:
        raise ValueError(f"scale_and_translate: method must be one of {sorted(_KERNELS)}, got {method!r}")
    x = _float(operand_tensor(images))
    dims = [int(d) % x.ndim for d in spatial_dims]
    scales = np.reshape(np.asarray(to_array(scale), np.float64), -1)
    shifts = np.reshape(np.asarray(to_array(translation), np.float64), -1)
    out_shape = tuple(int(s) for s in output_shape)
    if len(out_shape) != x.ndim or len(scales) != len(dims) or len(shifts) != len(dims):
        raise ValueError(f"scale_and_translate: output_shape {out_shape}, scale and translation must fit "
                         f"images of shape {x.shape} and spatial_dims {tuple(spatial_dims)}")
    for d, sc, tr in zip(dims, scales, shifts):
        w = _weight_matrix(x.shape[d], out_shape[d], sc, tr, _KERNELS[method], antialias)
        x = _apply_weights(x, d, w)
    return x


_RESIZE_METHODS = ("bilinear", "nearest", "lanczos3", "lanczos5", "bicubic")


def _aspect_box(size, target):
    """The (height, width) of the largest box of the target's aspect ratio inside `size`, and of
    the smallest containing it."""
    (h, w), (th, tw) = size, target
    crop_h = max(min(h, int(float(w * th) / tw)), 1)
    crop_w = max(min(w, int(float(h * tw) / th)), 1)
    pad_h = max(h, int(float(w * th) / tw))
    pad_w = max(w, int(float(h * tw) / th))
    return (crop_h, crop_w), (pad_h, pad_w)


def resize(images, size, interpolation="bilinear", antialias=False, crop_to_aspect_ratio=False,
           pad_to_aspect_ratio=False, fill_mode="constant", fill_value=0.0, data_format=None):
    """Images resized to `size` (height, width).

    Args:
        images: a (H, W, C) image or (N, H, W, C) batch (channels first by data_format).
        size: (height, width).
        interpolation: "bilinear", "nearest", "bicubic", "lanczos3" or "lanczos5" (half-pixel
            centres, as JAX; nearest picks floor((i + 0.5) * in / out)).
        antialias: widen the filter when downscaling.
        crop_to_aspect_ratio: first crop the centre to the target's aspect ratio.
        pad_to_aspect_ratio: first pad to the target's aspect ratio with fill_value.
        fill_mode: "constant" (the only mode, for pad_to_aspect_ratio).
        fill_value: the padding value.
        data_format: "channels_last" or "channels_first".
    """
    if interpolation not in _RESIZE_METHODS:
        raise ValueError(f"resize: interpolation must be one of {_RESIZE_METHODS}, got {interpolation!r}")
    if fill_mode != "constant":
        raise ValueError(f"resize: fill_mode must be 'constant', got {fill_mode!r}")
    if crop_to_aspect_ratio and pad_to_aspect_ratio:
        raise ValueError("resize: crop_to_aspect_ratio and pad_to_aspect_ratio cannot both be True")
    if len(size) != 2:
        raise ValueError(f"resize: size must be (height, width), got {size!r}")
    th, tw = (positive_int("resize", "size", int(s)) for s in size)
    x, back = _as_batch("resize", images, data_format)
    dtype = x.dtype
    h, w = x.shape[1:3]
    (ch, cw), (ph, pw) = _aspect_box((h, w), (th, tw))
    if crop_to_aspect_ratio:
        top, left = int(float(h - ch) / 2), int(float(w - cw) / 2)
        x = m.getitem(x, (slice(None), slice(top, top + ch), slice(left, left + cw)))
    elif pad_to_aspect_ratio:
        top, left = int(float(ph - h) / 2), int(float(pw - w) / 2)
        if top > 0:
            x = _pad(x, ((0, 0), (top, top), (0, 0), (0, 0)), constant_values=fill_value)
        elif left > 0:
            x = _pad(x, ((0, 0), (0, 0), (left, left), (0, 0)), constant_values=fill_value)
    if interpolation == "nearest":
        rows = np.floor((np.arange(th, dtype=np.float32) + 0.5) * x.shape[1] / th).astype(np.int64)
        cols = np.floor((np.arange(tw, dtype=np.float32) + 0.5) * x.shape[2] / tw).astype(np.int64)
        return back(rearrange_with(x, lambda a: a[:, rows][:, :, cols]))
    xf = _float(x)
    for axis, n in ((1, th), (2, tw)):
        if xf.shape[axis] != n:
            wm = _weight_matrix(xf.shape[axis], n, n / xf.shape[axis], 0.0, _KERNELS[interpolation], antialias)
            xf = _apply_weights(xf, axis, wm)
    return back(_back_to_dtype(xf, dtype))


# -- sampling at coordinates ----------------------------------------------------------------------------
def _fix_index(index, size, mode):
    if mode == "nearest":
        return np.clip(index, 0, size - 1)
    if mode == "wrap":
        return np.mod(index, size)
    if mode == "mirror":
        if size == 1:
            return np.zeros_like(index)
        s = size - 1
        return np.abs(np.mod(index + s, 2 * s) - s)
    if mode == "reflect":
        s = 2 * size
        return np.floor_divide(np.abs(np.mod(2 * index + 1 + s, 2 * s) - s) - 1, 2)
    return index


def _taps(coordinate, order):
    """The (index, weight, d weight / d coordinate) of each interpolation tap along one axis."""
    if order == 0:
        # Round half away from zero.
        index = (np.sign(coordinate) * np.floor(np.abs(coordinate) + 0.5)).astype(np.int64)
        return [(index, np.ones_like(coordinate), np.zeros_like(coordinate))]
    lower = np.floor(coordinate)
    upper_w = coordinate - lower
    index = lower.astype(np.int64)
    return [(index, 1.0 - upper_w, -np.ones_like(coordinate)), (index + 1, upper_w, np.ones_like(coordinate))]


_FILL_MODES = ("constant", "nearest", "wrap", "mirror", "reflect")


@differentiable
def _map_coordinates(x, coords, order=1, mode="constant", cval=0.0):
    per_axis = []
    for d in range(x.ndim):
        taps = []
        for index, weight, dweight in _taps(coords[d], order):
            valid = (index >= 0) & (index < x.shape[d]) if mode == "constant" else np.ones(index.shape, bool)
            taps.append((_fix_index(index, x.shape[d], mode), valid, weight, dweight))
        per_axis.append(taps)
    import itertools
    combos = list(itertools.product(*per_axis))
    out = np.zeros(coords.shape[1:], dtype=np.float64)
    values = []
    for combo in combos:
        idx = tuple(np.clip(t[0], 0, x.shape[d] - 1) for d, t in enumerate(combo))
        valid = np.logical_and.reduce([t[1] for t in combo])
        value = np.where(valid, x[idx], cval)
        weight = np.prod([t[2] for t in combo], axis=0)
        out += weight * value
        values.append((idx, valid, value))
    result = out.astype(x.dtype)

    def vjp(g, needs):
        gx = np.zeros(x.shape, dtype=np.float64) if needs[0] else None
        gc = np.zeros(coords.shape, dtype=np.float64) if needs[1] else None
        for combo, (idx, valid, value) in zip(combos, values):
            weight = np.prod([t[2] for t in combo], axis=0)
            if gx is not None:
                np.add.at(gx, idx, np.where(valid, g * weight, 0.0))
            if gc is not None and order == 1:
                for d in range(x.ndim):
                    others = np.prod([t[2] for k, t in enumerate(combo) if k != d], axis=0) if x.ndim > 1 else 1.0
                    gc[d] += g * value * combo[d][3] * others
        return (None if gx is None else gx.astype(x.dtype), None if gc is None else gc.astype(coords.dtype))
    return result, vjp


def map_coordinates(inputs, coordinates, order, fill_mode="constant", fill_value=0):
    """inputs sampled at `coordinates` by nearest (order=0) or linear (order=1) interpolation.

    Args:
        inputs: an N-D tensor.
        coordinates: (N, ...) positions: coordinates[d] indexes axis d.
        order: 0 or 1.
        fill_mode: how positions outside are read: "constant" (fill_value), "nearest" (edge),
            "wrap", "mirror" (reflect about edge pixels) or "reflect" (about edges).
        fill_value: the value outside for "constant".
    """
    x = operand_tensor(inputs)
    c = operand_tensor(coordinates) if not isinstance(coordinates, (list, tuple)) else \
        m.stack([operand_tensor(v) for v in coordinates], axis=0)
    if c.ndim < 2 or c.shape[0] != x.ndim:
        raise ValueError(f"map_coordinates: coordinates need a leading axis of length {x.ndim} (the rank of "
                         f"inputs) and at least 2 axes, got shape {c.shape}")
    if fill_mode not in _FILL_MODES:
        raise ValueError(f"map_coordinates: fill_mode must be one of {_FILL_MODES}, got {fill_mode!r}")
    if order not in (0, 1):
        raise ValueError(f"map_coordinates: order must be 0 or 1, got {order!r}")
    dtype = x.dtype
    xf = _float(x)
    c = m.cast(c, xf.dtype) if c.dtype != xf.dtype else c
    out = _map_coordinates(xf, c, order=int(order), mode=fill_mode, cval=float(fill_value))
    if dtype.kind in "iub":
        arr = to_array(out)
        return wrap((np.sign(arr) * np.floor(np.abs(arr) + 0.5)).astype(dtype))
    return out


_INTERPOLATION_ORDER = {"nearest": 0, "bilinear": 1}


def _sample_images(op, x, rows, cols, interpolation, fill_mode, fill_value):
    """Each image of the batch x (N, H, W, C) sampled at (rows, cols) of shape (N, H', W')."""
    if interpolation not in _INTERPOLATION_ORDER:
        raise ValueError(f"{op}: interpolation must be 'nearest' or 'bilinear', got {interpolation!r}")
    if fill_mode not in _FILL_MODES:
        raise ValueError(f"{op}: fill_mode must be one of {_FILL_MODES}, got {fill_mode!r}")
    channels = x.shape[-1]
    outs = []
    for b in range(x.shape[0]):
        r = m.getitem(rows, b)
        c = m.getitem(cols, b)
        shape = (channels,) + tuple(r.shape)
        ch = np.broadcast_to(np.arange(channels, dtype=x.dtype).reshape((channels,) + (1,) * r.ndim), shape)
        coords = m.stack([broadcast_to(r, shape), broadcast_to(c, shape), wrap(ch)], axis=0)
        sampled = map_coordinates(m.getitem(x, b), coords, _INTERPOLATION_ORDER[interpolation], fill_mode, fill_value)
        outs.append(moveaxis(sampled, 0, -1))
    return m.stack(outs, axis=0)


def affine_transform(images, transform, interpolation="bilinear", fill_mode="constant", fill_value=0,
                     data_format=None):
    """Images warped by projective transforms: output pixel (x, y) reads the input at
    ((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k), k = c0 x + c1 y + 1.

    Args:
        images: a (H, W, C) image or (N, H, W, C) batch.
        transform: [a0, a1, a2, b0, b1, b2, c0, c1], or one such row per image.
        interpolation: "nearest" or "bilinear".
        fill_mode: "constant", "nearest", "wrap", "mirror" or "reflect".
        fill_value: the value outside the image for "constant".
        data_format: "channels_last" or "channels_first".
    """
    x, back = _as_batch("affine_transform", images, data_format)
    t = operand_tensor(transform)
    if t.ndim not in (1, 2) or t.shape[-1] != 8:
        raise ValueError(f"affine_transform: transform must be (8,) or (batch, 8), got shape {t.shape}")
    dtype = x.dtype
    xf = _float(x)
    t = m.cast(t, xf.dtype)
    if t.ndim == 1:
        t = m.reshape(t, (1, 8))
    if t.shape[0] not in (1, xf.shape[0]):
        raise ValueError(f"affine_transform: {t.shape[0]} transforms for {xf.shape[0]} images")
    h, w = xf.shape[1:3]
    gy, gx = np.meshgrid(np.arange(h, dtype=xf.dtype), np.arange(w, dtype=xf.dtype), indexing="ij")

    def coef(i):
        return m.reshape(m.getitem(t, (slice(None), i)), (-1, 1, 1))
    k = m.add(m.add(m.multiply(coef(6), gx), m.multiply(coef(7), gy)), 1.0)
    cols = m.divide(m.add(m.add(m.multiply(coef(0), gx), m.multiply(coef(1), gy)), coef(2)), k)
    rows = m.divide(m.add(m.add(m.multiply(coef(3), gx), m.multiply(coef(4), gy)), coef(5)), k)
    if rows.shape[0] != xf.shape[0]:
        rows = broadcast_to(rows, (xf.shape[0], h, w))
        cols = broadcast_to(cols, (xf.shape[0], h, w))
    out = _sample_images("affine_transform", xf, rows, cols, interpolation, fill_mode, fill_value)
    return back(_back_to_dtype(out, dtype))


def _homography(start, end):
    """The 8 coefficients mapping end points to start points (per batch row), by a linear solve."""
    sx, sy, ex, ey = start[..., 0], start[..., 1], end[..., 0], end[..., 1]
    zeros, ones = np.zeros_like(ex), np.ones_like(ex)
    x_rows = np.stack([ex, ey, ones, zeros, zeros, zeros, -sx * ex, -sx * ey], axis=-1)
    y_rows = np.stack([zeros, zeros, zeros, ex, ey, ones, -sy * ex, -sy * ey], axis=-1)
    a = np.concatenate([x_rows, y_rows], axis=1)
    rhs = np.concatenate([sx, sy], axis=-1)[..., None]
    return np.linalg.solve(a, rhs)[..., 0]


def perspective_transform(images, start_points, end_points, interpolation="bilinear", fill_value=0,
                          data_format=None):
    """Images warped so that the four start_points move to end_points (a homography).

    Args:
        images: a (H, W, C) image or (N, H, W, C) batch.
        start_points, end_points: (4, 2) or (N, 4, 2) (x, y) corner positions.
        interpolation: "nearest" or "bilinear".
        fill_value: the value outside the image.
        data_format: "channels_last" or "channels_first".
    """
    x, back = _as_batch("perspective_transform", images, data_format)
    s = np.asarray(to_array(operand_tensor(start_points)), np.float64)
    e = np.asarray(to_array(operand_tensor(end_points)), np.float64)
    for name, p in (("start_points", s), ("end_points", e)):
        if p.shape[-2:] != (4, 2) or p.ndim not in (2, 3):
            raise ValueError(f"perspective_transform: {name} must be (4, 2) or (batch, 4, 2), got shape {p.shape}")
    if s.shape != e.shape:
        raise ValueError(f"perspective_transform: start_points {s.shape} and end_points {e.shape} differ in shape")
    if s.ndim == 2:
        s, e = s[None], e[None]
    coefficients = _homography(s, e).astype(_float(x).dtype)
    return back(affine_transform(x, coefficients, interpolation=interpolation, fill_mode="constant",
                                 fill_value=fill_value, data_format="channels_last"))


# -- cropping and padding ------------------------------------------------------------------------------
def _box_args(op, word, images, data_format, top, bottom, height, left, right, width):
    """Checks that two of (top, bottom, target_height) and two of (left, right, target_width) are
    given, none negative; returns the channels_last batch, its way back, and (H, W)."""
    for names, values in (((f"top_{word}", f"bottom_{word}", "target_height"), (top, bottom, height)),
                          ((f"left_{word}", f"right_{word}", "target_width"), (left, right, width))):
        if values.count(None) != 1:
            raise ValueError(f"{op}: give exactly two of {', '.join(names)}; got {dict(zip(names, values))}")
        for name, v in zip(names, values):
            if v is not None and int(v) < 0:
                raise ValueError(f"{op}: {name} must be >= 0, got {v}")
    x, back = _as_batch(op, images, data_format)
    return x, back, tuple(x.shape[1:3])


def pad_images(images, top_padding=None, left_padding=None, bottom_padding=None, right_padding=None,
               target_height=None, target_width=None, data_format=None):
    """Images padded with zeros.

    Args:
        images: a (H, W, C) image or (N, H, W, C) batch.
        top_padding, bottom_padding, target_height: exactly two of them (rows added above,
            below, and the resulting height).
        left_padding, right_padding, target_width: exactly two of them (columns).
        data_format: "channels_last" or "channels_first".
    """
    x, back, (h, w) = _box_args("pad_images", "padding", images, data_format, top_padding, bottom_padding,
                                target_height, left_padding, right_padding, target_width)
    top = target_height - bottom_padding - h if top_padding is None else top_padding
    bottom = target_height - top - h if bottom_padding is None else bottom_padding
    left = target_width - right_padding - w if left_padding is None else left_padding
    right = target_width - left - w if right_padding is None else right_padding
    for name, v in (("top_padding", top), ("bottom_padding", bottom), ("left_padding", left),
                    ("right_padding", right)):
        if v < 0:
            raise ValueError(f"pad_images: {name} comes out as {v} for images of size {(h, w)}; it must be >= 0")
    return back(_pad(x, ((0, 0), (int(top), int(bottom)), (int(left), int(right)), (0, 0))))


def crop_images(images, top_cropping=None, left_cropping=None, bottom_cropping=None, right_cropping=None,
                target_height=None, target_width=None, data_format=None):
    """Images cropped to a box.

    Args:
        images: a (H, W, C) image or (N, H, W, C) batch.
        top_cropping, bottom_cropping, target_height: exactly two of them (rows removed above,
            below, and the resulting height).
        left_cropping, right_cropping, target_width: exactly two of them (columns).
        data_format: "channels_last" or "channels_first".
    """
    x, back, (h, w) = _box_args("crop_images", "cropping", images, data_format, top_cropping, bottom_cropping,
                                target_height, left_cropping, right_cropping, target_width)
    top = h - target_height - bottom_cropping if top_cropping is None else top_cropping
    height = h - bottom_cropping - top if target_height is None else target_height
    left = w - target_width - right_cropping if left_cropping is None else left_cropping
    width = w - right_cropping - left if target_width is None else target_width
    if top < 0 or left < 0 or height < 0 or width < 0 or top + height > h or left + width > w:
        raise ValueError(f"crop_images: the box top={top}, left={left}, height={height}, width={width} does "
                         f"not fit images of size {(h, w)}")
    return back(m.getitem(x, (slice(None), slice(int(top), int(top + height)), slice(int(left), int(left + width)))))


# -- patches ---------------------------------------------------------------------------------------------
def _patches(op, x, size, strides, dilation_rate, padding):
    """The patches of the channels_last batch x (N, spatial..., C) with k spatial axes, as
    (N, out..., prod(size) * C) in (patch position..., channel) order."""
    k = x.ndim - 2
    size = (size,) * k if isinstance(size, (int, np.integer)) else tuple(size)
    strides = size if strides is None else ((strides,) * k if isinstance(strides, (int, np.integer)) else tuple(strides))
    dil = (dilation_rate,) * k if isinstance(dilation_rate, (int, np.integer)) else tuple(dilation_rate)
    if not (len(size) == len(strides) == len(dil) == k):
        raise ValueError(f"{op}: size, strides and dilation_rate need {k} values each")
    size = tuple(positive_int(op, "size", int(v)) for v in size)
    strides = tuple(positive_int(op, "strides", int(v)) for v in strides)
    dil = tuple(positive_int(op, "dilation_rate", int(v)) for v in dil)
    padding = padding.lower()
    if padding not in ("valid", "same"):
        raise ValueError(f"{op}: padding must be 'valid' or 'same', got {padding!r}")
    pads, outs = [], []
    for n, kk, s, d in zip(x.shape[1:-1], size, strides, dil):
        eff = (kk - 1) * d + 1
        if padding == "same":
            out = -(-n // s)
            total = max((out - 1) * s + eff - n, 0)
            pads.append((total // 2, total - total // 2))
        else:
            out = (n - eff) // s + 1
            pads.append((0, 0))
        if out <= 0:
            raise ValueError(f"{op}: a patch of size {size} does not fit images of shape {x.shape}")
        outs.append(out)
    grids = []
    for axis, (out, kk, s, d) in enumerate(zip(outs, size, strides, dil)):
        grids.append(np.arange(out)[:, None] * s + np.arange(kk)[None, :] * d)   # (out, k) positions

    def gather(a):
        p = np.pad(a, ((0, 0),) + tuple(pads) + ((0, 0),))
        index = [slice(None)]
        for axis, g in enumerate(grids):
            shape = [1] * (2 * k)
            shape[axis], shape[k + axis] = g.shape
            index.append(g.reshape(shape))
        patches = p[tuple(index)]            # (N, out..., k..., C)
        return patches.reshape(patches.shape[:1 + k] + (-1,))
    return rearrange_with(x, gather)


def extract_patches(images, size, strides=None, dilation_rate=1, padding="valid", data_format=None):
    """The (size x size) patches of images, flattened into the channel axis.

    Args:
        images: a (H, W, C) image or (N, H, W, C) batch.
        size: an int or (height, width) of the patches.
        strides: the step between patches (default: size).
        dilation_rate: the spacing of a patch's pixels.
        padding: "valid" or "same".
        data_format: "channels_last" or "channels_first".

    Returns:
        (N, out_h, out_w, size_h * size_w * C), each patch in (row, column, channel) order.
    """
    x, back = _as_batch("extract_patches", images, data_format)
    return back(_patches("extract_patches", x, size, strides, dilation_rate, padding))


def extract_patches_3d(volumes, size, strides=None, dilation_rate=1, padding="valid", data_format=None):
    """The 3-D patches of volumes (N, D, H, W, C) (or one (D, H, W, C) volume), flattened into the
    channel axis in (depth, row, column, channel) order; arguments as extract_patches."""
    x, back = _as_batch("extract_patches_3d", volumes, data_format, ranks=(4, 5))
    return back(_patches("extract_patches_3d", x, size, strides, dilation_rate, padding))


# -- filters ----------------------------------------------------------------------------------------------
def _gaussian_1d(size, sigma):
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _depthwise(x, kernel2d, padding):
    """Each channel of the batch x convolved with the same 2-D kernel."""
    from engine.ops.convolution import depthwise_conv
    c = x.shape[-1]
    k = np.repeat(kernel2d[:, :, None, None], c, axis=2).astype(x.dtype)
    return depthwise_conv(x, np.ascontiguousarray(k), strides=1, padding=padding, data_format="channels_last")


def gaussian_blur(images, kernel_size=(3, 3), sigma=(1.0, 1.0), data_format=None):
    """Images blurred by a Gaussian kernel per channel (zero padding, output of the input's size).

    Args:
        images: a (H, W, C) image or (N, H, W, C) batch.
        kernel_size: (height, width) of the kernel.
        sigma: (sigma_y, sigma_x)... as Keras: sigma[0] goes with kernel_size[0] along the
            width and sigma[1] with kernel_size[1] along the height.
        data_format: "channels_last" or "channels_first".
    """
    x, back = _as_batch("gaussian_blur", images, data_format)
    ks = (kernel_size, kernel_size) if isinstance(kernel_size, (int, np.integer)) else tuple(kernel_size)
    sg = (sigma, sigma) if isinstance(sigma, (int, float)) else tuple(float(v) for v in to_array(sigma).reshape(-1))
    kx = _gaussian_1d(int(ks[0]), sg[0])
    ky = _gaussian_1d(int(ks[1]), sg[1])
    dtype = x.dtype
    return back(_back_to_dtype(_depthwise(_float(x), np.outer(ky, kx), "same"), dtype))


def sobel_edges(images, data_format=None):
    """The Sobel derivatives of each channel: (..., C, 2) with [d/dy, d/dx] in the last axis
    (zero padding)."""
    x, back = _as_batch("sobel_edges", images, data_format, ranks=(4,))
    xf = _float(x)
    kx = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    dy = _depthwise(xf, kx.T, "same")
    dx = _depthwise(xf, kx, "same")
    first = _data_format(data_format) == "channels_first"
    if first:
        dy, dx = moveaxis(dy, -1, 1), moveaxis(dx, -1, 1)
    return m.stack([dy, dx], axis=-1)


def ssim(image1, image2, max_val=1.0, filter_size=11, filter_sigma=1.5, k1=0.01, k2=0.03, data_format=None):
    """The structural similarity of two images (or batches), per image, from Gaussian-weighted
    local means, variances and covariance (valid windows), averaged over pixels and channels.

    Args:
        image1, image2: images of the same shape.
        max_val: the dynamic range of the pixel values.
        filter_size, filter_sigma: the Gaussian window.
        k1, k2: the stabilising constants' factors.
        data_format: "channels_last" or "channels_first".
    """
    a, back_a = _as_batch("ssim", image1, data_format)
    b, _ = _as_batch("ssim", image2, data_format)
    if a.shape != b.shape:
        raise ValueError(f"ssim: image1 {tuple(a.shape)} and image2 {tuple(b.shape)} must have the same shape")
    dtype = a.dtype
    a, b = _float(a), m.cast(_float(b), _float(a).dtype)
    g = _gaussian_1d(int(filter_size), float(filter_sigma))
    kernel = np.outer(g, g)
    c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2

    def blur(t):
        return _depthwise(t, kernel, "valid")
    mu1, mu2 = blur(a), blur(b)
    mu11, mu22, mu12 = m.multiply(mu1, mu1), m.multiply(mu2, mu2), m.multiply(mu1, mu2)
    s11 = m.subtract(blur(m.multiply(a, a)), mu11)
    s22 = m.subtract(blur(m.multiply(b, b)), mu22)
    s12 = m.subtract(blur(m.multiply(a, b)), mu12)
    num = m.multiply(m.add(m.multiply(2.0, mu12), c1), m.add(m.multiply(2.0, s12), c2))
    den = m.multiply(m.add(m.add(mu11, mu22), c1), m.add(m.add(s11, s22), c2))
    per_image = m.mean(m.divide(num, den), axis=(1, 2, 3))
    if operand_tensor(image1).ndim == 3:
        per_image = m.squeeze(per_image, 0)
    return per_image if per_image.dtype == dtype or dtype.kind != "f" else m.cast(per_image, dtype)


def elastic_transform(images, alpha=20.0, sigma=5.0, interpolation="bilinear", fill_mode="reflect", fill_value=0.0,
                      seed=None, data_format=None):
    """Images displaced by smooth random fields: each pixel reads the input at its position plus
    alpha times Gaussian-blurred (sigma) standard normal noise, one field per axis.

    Args:
        images: a (H, W, C) image or (N, H, W, C) batch.
        alpha: the displacement scale.
        sigma: the smoothness (the blur's sigma; kernel of odd size about 6 sigma).
        interpolation: "nearest" or "bilinear".
        fill_mode: "constant", "nearest", "wrap", "mirror" or "reflect".
        fill_value: the value outside the image for "constant".
        seed: an int (or None) seeding the noise.
        data_format: "channels_last" or "channels_first".
    """
    if seed is not None and not isinstance(seed, (int, np.integer)):
        raise ValueError(f"elastic_transform: seed must be an int or None, got {type(seed).__name__}")
    x, back = _as_batch("elastic_transform", images, data_format)
    dtype = x.dtype
    xf = _float(x)
    n, h, w, _ = xf.shape
    rng = np.random.default_rng(seed)
    size = int(6 * sigma) | 1
    kernel = np.outer(_gaussian_1d(size, sigma), _gaussian_1d(size, sigma))
    fields = [to_array(_depthwise(wrap(rng.standard_normal((n, h, w, 1)).astype(xf.dtype) * sigma), kernel,
                                  "same"))[..., 0] for _ in range(2)]
    gy, gx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    rows = wrap((gy[None] + alpha * fields[0]).astype(xf.dtype))
    cols = wrap((gx[None] + alpha * fields[1]).astype(xf.dtype))
    out = _sample_images("elastic_transform", xf, rows, cols, interpolation, fill_mode, fill_value)
    return back(_back_to_dtype(out, dtype))


__all__ = ["rgb_to_grayscale", "rgb_to_hsv", "hsv_to_rgb", "scale_and_translate", "resize", "map_coordinates",
           "affine_transform", "perspective_transform", "pad_images", "crop_images", "extract_patches",
           "extract_patches_3d", "gaussian_blur", "sobel_edges", "ssim", "elastic_transform"]
