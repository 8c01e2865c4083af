"""Image resampling for the image preprocessing layers, composed of engine ops (so gradients flow).

Images here are channels-last batches (batch, height, width, channels); the layers transpose
channels-first data around these calls.

Resizing follows Keras 3's backend-neutral algorithm: each spatial axis is resampled by a
(input size x output size) weight matrix whose columns are a kernel (triangle, Keys cubic,
Lanczos) evaluated at the distance between input pixel centres and the output pixel's sample
point, normalised to sum to one; "area" weighs input pixels by their overlap with the output
pixel's footprint (TensorFlow's area resize).  Affine transforms follow TensorFlow's
ImageProjectiveTransform convention: output pixel (x, y) reads input point
(a0 x + a1 y + a2, b0 x + b1 y + b2), sampled nearest or bilinearly, with scipy's fill modes
for points outside the image.
"""
import numpy as np

from engine import ops

RESIZE_INTERPOLATIONS = ("bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5")
AFFINE_INTERPOLATIONS = ("nearest", "bilinear")
FILL_MODES = ("reflect", "wrap", "constant", "nearest")

_TINY_WEIGHT_SUM = 1000.0 * np.finfo(np.float32).eps


def _triangle(d):
    return np.maximum(0.0, 1.0 - d)


def _keys_cubic(d):
    near = ((1.5 * d - 2.5) * d) * d + 1.0
    far = ((-0.5 * d + 2.5) * d - 4.0) * d + 2.0
    return np.where(d >= 2.0, 0.0, np.where(d >= 1.0, far, near))


def _lanczos(radius):
    def kernel(d):
        safe = np.where(d != 0, d, 1.0)
        value = radius * np.sin(np.pi * safe) * np.sin(np.pi * safe / radius) / (np.pi ** 2 * safe ** 2)
        return np.where(d > radius, 0.0, np.where(d > 1e-3, value, 1.0))
    return kernel


_KERNELS = {"bilinear": _triangle, "bicubic": _keys_cubic, "lanczos3": _lanczos(3.0), "lanczos5": _lanczos(5.0)}


def resize_weights(in_size, out_size, interpolation, antialias=False):
    """The (in_size, out_size) float64 matrix that resamples one axis (not for 'nearest')."""
    inv_scale = in_size / out_size
    if interpolation == "area":
        left = np.arange(out_size) * inv_scale
        starts = np.arange(in_size, dtype=np.float64)
        weights = np.maximum(0.0, np.minimum(left[None, :] + inv_scale, starts[:, None] + 1.0)
                             - np.maximum(left[None, :], starts[:, None]))
        return weights / weights.sum(axis=0, keepdims=True)
    kernel_scale = max(inv_scale, 1.0) if antialias else 1.0
    sample = (np.arange(out_size) + 0.5) * inv_scale - 0.5    # input coordinate of each output centre
    weights = _KERNELS[interpolation](np.abs(sample[None, :] - np.arange(in_size)[:, None]) / kernel_scale)
    total = weights.sum(axis=0, keepdims=True)
    weights = np.where(np.abs(total) > _TINY_WEIGHT_SUM, weights / np.where(total != 0, total, 1.0), 0.0)
    inside = (sample >= -0.5) & (sample <= in_size - 0.5)
    return np.where(inside[None, :], weights, 0.0)


def _nearest_indices(in_size, out_size):
    return np.floor((np.arange(out_size, dtype=np.float32) + 0.5) * in_size / out_size).astype(np.int64)


def _resample_axis(images, axis, out_size, interpolation, antialias):
    in_size = images.shape[axis]
    if in_size == out_size:
        return images
    if interpolation == "nearest":
        return ops.take(images, _nearest_indices(in_size, out_size), axis=axis)
    weights = resize_weights(in_size, out_size, interpolation, antialias).astype(images.dtype)
    # Contract `axis` with the weight matrix: move it last, matmul, move it back.
    order = [a for a in range(images.ndim) if a != axis] + [axis]
    moved = ops.matmul(ops.transpose(images, order), weights)
    return ops.transpose(moved, list(np.argsort(order)))


def aspect_crop_box(height, width, target_height, target_width):
    """(top, left, crop_height, crop_width): the centred box of the target's aspect ratio."""
    crop_height = max(min(height, int(float(width * target_height) / target_width)), 1)
    crop_width = max(min(width, int(float(height * target_width) / target_height)), 1)
    return int(float(height - crop_height) / 2), int(float(width - crop_width) / 2), crop_height, crop_width


def _pad_to_aspect(images, target_height, target_width, fill_value):
    height, width = images.shape[1], images.shape[2]
    pad_height = max(height, int(float(width * target_height) / target_width))
    pad_width = max(width, int(float(height * target_width) / target_height))
    top = int(float(pad_height - height) / 2)
    left = int(float(pad_width - width) / 2)
    if top == 0 and left == 0:
        return images
    # Keras pads the same amount on both sides (so an odd difference loses a row or column).
    return ops.pad(images, [(0, 0), (top, top), (left, left), (0, 0)], constant_values=fill_value)


def resize(images, height, width, interpolation="bilinear", antialias=False, crop_to_aspect_ratio=False,
           pad_to_aspect_ratio=False, fill_value=0.0):
    """Resize a (batch, h, w, c) float tensor to (batch, height, width, c)."""
    if crop_to_aspect_ratio:
        top, left, ch, cw = aspect_crop_box(images.shape[1], images.shape[2], height, width)
        images = ops.getitem(images, (slice(None), slice(top, top + ch), slice(left, left + cw)))
    elif pad_to_aspect_ratio:
        images = _pad_to_aspect(images, height, width, fill_value)
    images = _resample_axis(images, 1, height, interpolation, antialias)
    return _resample_axis(images, 2, width, interpolation, antialias)


def round_back_to_integers(resized, original):
    """Keras's integer images: the float result rounded and clipped to the input's value range."""
    arr = np.asarray(resized)
    lo, hi = (original.min(), original.max()) if original.size else (0, 0)
    return ops.convert_to_tensor(np.clip(np.round(arr), lo, hi).astype(original.dtype))


# -- affine transforms -----------------------------------------------------------------------------
def _mirror(index, size):
    period = size - 1
    if period == 0:
        return np.zeros_like(index)
    return np.abs((index + period) % (2 * period) - period)


def _fix_index(index, size, fill_mode):
    """An integer source index mapped into [0, size) as scipy's ndimage modes do (constant: as is)."""
    if fill_mode == "nearest":
        return np.clip(index, 0, size - 1)
    if fill_mode == "wrap":
        return index % size
    if fill_mode == "reflect":
        return (_mirror(2 * index + 1, 2 * size + 1) - 1) // 2
    return index


def _round_half_away(x):
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def affine_transform(images, transforms, interpolation="bilinear", fill_mode="reflect", fill_value=0.0):
    """Resample (batch, h, w, c) float images by one 8-number transform per image (batch, 8)."""
    batch, height, width, channels = images.shape
    # Coordinates in the images' precision (at least float32), as Keras computes them: where a
    # point falls halfway between pixels, nearest sampling depends on it.
    dtype = np.result_type(images.dtype, np.float32)
    transforms = np.asarray(transforms, dtype=dtype).reshape(batch, 8)
    ys, xs = np.meshgrid(np.arange(height, dtype=dtype), np.arange(width, dtype=dtype), indexing="ij")
    a0, a1, a2, b0, b1, b2 = (transforms[:, k, None, None] for k in range(6))
    src_x = a0 * xs + a1 * ys + a2                    # (batch, h, w)
    src_y = b0 * xs + b1 * ys + b2
    if interpolation == "nearest":
        corners = [(_round_half_away(src_y), _round_half_away(src_x), np.ones_like(src_x))]
    else:
        y0, x0 = np.floor(src_y), np.floor(src_x)
        wy, wx = src_y - y0, src_x - x0
        corners = [(y0, x0, (1 - wy) * (1 - wx)), (y0, x0 + 1, (1 - wy) * wx),
                   (y0 + 1, x0, wy * (1 - wx)), (y0 + 1, x0 + 1, wy * wx)]
    flat = ops.reshape(images, (batch * height * width, channels))
    base = (np.arange(batch) * height * width)[:, None, None]
    out = None
    for iy, ix, weight in corners:
        iy, ix = iy.astype(np.int64), ix.astype(np.int64)
        valid = (iy >= 0) & (iy < height) & (ix >= 0) & (ix < width)
        fy, fx = _fix_index(iy, height, fill_mode), _fix_index(ix, width, fill_mode)
        if fill_mode == "constant":
            fy, fx = np.clip(fy, 0, height - 1), np.clip(fx, 0, width - 1)
        gathered = ops.take(flat, base + fy * width + fx, axis=0)          # (batch, h, w, c)
        if fill_mode == "constant":
            gathered = ops.where(valid[..., None], gathered, np.asarray(fill_value, images.dtype))
        term = ops.multiply(gathered, weight[..., None].astype(images.dtype))
        out = term if out is None else ops.add(out, term)
    return out


def affine_matrix(angle, translate_x, translate_y, scale, height, width):
    """Keras's (batch, 8) transforms rotating by `angle` degrees about the image centre, scaling
    and translating (arrays of one value per image), computed in the angle's precision."""
    angle = np.asarray(angle)
    dtype = angle.dtype if angle.dtype.kind == "f" else np.float32
    theta = angle * dtype.type(np.pi / 180.0)
    cx, cy = dtype.type(0.5 * (width - 1)), dtype.type(0.5 * (height - 1))
    cos, sin = np.cos(theta), np.sin(theta)
    a0, a1 = scale * cos, -scale * sin
    b0, b1 = scale * sin, scale * cos
    a2 = translate_x + cx - cx * a0 - cy * a1
    b2 = translate_y + cy - cx * b0 - cy * b1
    zeros = np.zeros_like(a0)
    return np.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
