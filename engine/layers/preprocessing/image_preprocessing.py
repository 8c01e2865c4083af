"""Deterministic image preprocessing layers: Rescaling, Resizing, CenterCrop."""
import numpy as np

from engine import ops
from engine.layers.base import Layer
from engine.layers.preprocessing import _image_ops
from engine.layers.preprocessing._base import standardize_data_format
from engine.saving.registry import register_builtins


class ImageLayer(Layer):
    """Base of the image layers: takes one image (h, w, c) or a batch (n, h, w, c) (channels
    first when data_format says so) and hands `_transform` a channels-last batch as a float
    tensor in the layer's dtype."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format, type(self).__name__)

    def _spatial_axes(self, ndim):
        """The (height, width) axes of an input of rank ndim."""
        return (ndim - 2, ndim - 1) if self.data_format == "channels_first" else (ndim - 3, ndim - 2)

    def _check_rank(self, shape):
        if len(shape) not in (3, 4):
            raise ValueError(f"{type(self).__name__} ({self.name!r}) takes an image of rank 3 (height, width, "
                             f"channels) or a batch of rank 4; got an input of shape {tuple(shape)}")

    def _check_input(self, shape):
        if isinstance(shape, tuple):
            self._check_rank(shape)

    def _to_batch(self, inputs):
        """(channels-last float batch, whether the input was a single image)."""
        self._check_rank(inputs.shape)
        images = ops.cast(inputs, self.dtype)
        single = images.ndim == 3
        if single:
            images = ops.expand_dims(images, 0)
        if self.data_format == "channels_first":
            images = ops.transpose(images, (0, 2, 3, 1))
        return images, single

    def _sized_shape(self, input_shape, height, width):
        """input_shape with its spatial sizes replaced by (height, width)."""
        shape = list(input_shape)
        h, w = self._spatial_axes(len(shape))
        shape[h], shape[w] = height, width
        return tuple(shape)

    def _from_batch(self, images, single):
        if self.data_format == "channels_first":
            images = ops.transpose(images, (0, 3, 1, 2))
        return ops.squeeze(images, 0) if single else images

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class Rescaling(Layer):
    """Multiply inputs by `scale` and add `offset` (e.g. `Rescaling(1 / 255)` maps [0, 255] to [0, 1]).

    Args:
        scale: a number, or one number per channel (broadcast against the last axis).
        offset: a number, or one per channel, added after scaling.

    Returns the inputs, cast to the layer's float dtype, times scale plus offset.
    """

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale
        self.offset = offset
        self.supports_masking = True

    def call(self, inputs):
        dtype = np.dtype(self.dtype)
        x = ops.cast(inputs, self.dtype)
        return ops.add(ops.multiply(x, np.asarray(self.scale, dtype)), np.asarray(self.offset, dtype))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        def plain(v):
            return np.asarray(v).tolist() if isinstance(v, (list, tuple, np.ndarray)) else float(v)
        return {**super().get_config(), "scale": plain(self.scale), "offset": plain(self.offset)}


def check_interpolation(layer, interpolation, allowed):
    """ValueError naming the layer unless `interpolation` is one of `allowed`."""
    if interpolation not in allowed:
        raise ValueError(f"{type(layer).__name__}: interpolation must be one of {', '.join(allowed)}; "
                         f"got {interpolation!r}")


class Resizing(ImageLayer):
    """Resize images to (height, width).

    Args:
        height, width: the output size.
        interpolation: "bilinear", "nearest", "bicubic", "area", "lanczos3" or "lanczos5".
        crop_to_aspect_ratio: crop the largest centred box of the target's aspect ratio first.
        pad_to_aspect_ratio: pad the image (with fill_value) to the target's aspect ratio first.
        fill_mode: how padding is filled; only "constant" (Keras's only mode here).
        fill_value: the padding value.
        antialias: widen the kernel when downsampling (a low-pass filter).
        data_format: "channels_last" (default) or "channels_first".

    Integer images stay integers (rounded and clipped to their value range), as in Keras.
    """

    def __init__(self, height, width, interpolation="bilinear", crop_to_aspect_ratio=False,
                 pad_to_aspect_ratio=False, fill_mode="constant", fill_value=0.0, antialias=False,
                 data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        check_interpolation(self, interpolation, _image_ops.RESIZE_INTERPOLATIONS)
        if crop_to_aspect_ratio and pad_to_aspect_ratio:
            raise ValueError("Resizing: only one of crop_to_aspect_ratio and pad_to_aspect_ratio can be True")
        if fill_mode != "constant":
            raise ValueError(f"Resizing: fill_mode must be 'constant' (the only mode Keras has), got {fill_mode!r}")
        self.height, self.width = int(height), int(width)
        self.interpolation = interpolation
        self.crop_to_aspect_ratio = bool(crop_to_aspect_ratio)
        self.pad_to_aspect_ratio = bool(pad_to_aspect_ratio)
        self.fill_mode = fill_mode
        self.fill_value = fill_value
        self.antialias = bool(antialias)

    def call(self, inputs):
        images, single = self._to_batch(inputs)
        out = _image_ops.resize(images, self.height, self.width, self.interpolation, self.antialias,
                                self.crop_to_aspect_ratio, self.pad_to_aspect_ratio, self.fill_value)
        out = self._from_batch(out, single)
        if inputs.dtype.kind in "iu":
            return _image_ops.round_back_to_integers(out, np.asarray(inputs))
        return out

    def _output_dtype(self, inputs):
        dtype = getattr(inputs, "dtype", None)
        return dtype if dtype is not None and np.dtype(dtype).kind in "iu" else self.dtype

    def compute_output_shape(self, input_shape):
        return self._sized_shape(input_shape, self.height, self.width)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width,
                "interpolation": self.interpolation, "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
                "pad_to_aspect_ratio": self.pad_to_aspect_ratio, "fill_mode": self.fill_mode,
                "fill_value": self.fill_value, "antialias": self.antialias}


class CenterCrop(ImageLayer):
    """Crop the centre (height, width) box of images; an image smaller than that is first cropped
    to the target's aspect ratio and resized (bilinear), as Keras does.

    Args:
        height, width: the output size.
        data_format: "channels_last" (default) or "channels_first".
    """

    def __init__(self, height, width, data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.height, self.width = int(height), int(width)

    def call(self, inputs):
        images, single = self._to_batch(inputs)
        h_diff, w_diff = images.shape[1] - self.height, images.shape[2] - self.width
        if h_diff >= 0 and w_diff >= 0:
            top, left = h_diff // 2, w_diff // 2
            out = ops.getitem(images, (slice(None), slice(top, top + self.height), slice(left, left + self.width)))
        else:
            out = _image_ops.resize(images, self.height, self.width, "bilinear", crop_to_aspect_ratio=True)
        return self._from_batch(out, single)

    compute_output_shape = Resizing.compute_output_shape

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}


register_builtins("layers", globals())  # loadable from .keras configs by class name
