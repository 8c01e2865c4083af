"""Random image augmentation layers (Keras 3's): RandomFlip, RandomRotation, RandomZoom,
RandomTranslation, RandomContrast, RandomBrightness, RandomCrop.

Each layer augments only in training: inside fit, or when called with training=True (Keras 3's
default for a direct call, as in Keras); with training=False (predict, evaluate) images pass
through unchanged (RandomCrop centre-crops to its output size instead).  Every call draws new
random parameters from the layer's own numpy Generator seeded by `seed`, or from engine's global
generator (seeded by `engine.utils.set_random_seed`) when no seed is given. engine has no
`SeedGenerator` yet, so the streams are numpy's, not Keras's: the same seed gives reproducible
runs, not Keras's exact random draws.

As in Keras, `get_random_transformation(images, training=True)` draws the parameters of one
call and `transform_images(images, transformation)` applies them, so an augmentation can be
replayed; both run on channels-last or channels-first data as the layer's data_format says.
"""
import numpy as np

from engine import ops
from engine import random as engine_random
from engine.layers.preprocessing import _image_ops
from engine.layers.preprocessing._base import to_numpy
from engine.layers.preprocessing.image_preprocessing import ImageLayer, check_interpolation
from engine.saving.registry import register_builtins

HORIZONTAL, VERTICAL, HORIZONTAL_AND_VERTICAL = "horizontal", "vertical", "horizontal_and_vertical"


def _factor_pair(layer, factor, bounds, name="factor"):
    """Keras's factor argument: a number f gives (max(-f, lower bound), f), a pair is sorted; values
    outside `bounds` are a ValueError."""
    lo_bound, hi_bound = bounds
    message = (f"{type(layer).__name__}: {name} must be a number or a pair of numbers in "
               f"[{lo_bound}, {hi_bound}]; got {factor!r}")
    if isinstance(factor, (tuple, list)):
        if len(factor) != 2 or factor[0] > hi_bound or factor[1] < lo_bound:
            raise ValueError(message)
        return tuple(sorted(factor))
    if isinstance(factor, (int, float)) and not isinstance(factor, bool):
        if factor < lo_bound or factor > hi_bound:
            raise ValueError(message)
        return (max(-abs(factor), lo_bound), abs(factor))
    raise ValueError(message)


def _zoom_or_shift_pair(layer, factor, name, lowest_open):
    """RandomZoom's and RandomTranslation's factors: a number f gives (-f, f); each value must lie in
    (-1, 1] for zoom (lowest_open) or [-1, 1] for translation."""
    def check(v):
        if not isinstance(v, (int, float)) or v > 1.0 or v < -1.0 or (lowest_open and v == -1.0):
            raise ValueError(f"{type(layer).__name__}: {name} must be a number or a pair of numbers in "
                             f"{'(' if lowest_open else '['}-1, 1]; got {factor!r}")
    if isinstance(factor, (tuple, list)):
        if len(factor) != 2:
            check(None)
        check(factor[0])
        check(factor[1])
        return tuple(sorted(factor))
    check(factor)
    return (-abs(factor), abs(factor))


def _check_fill_mode(layer, fill_mode):
    if fill_mode not in _image_ops.FILL_MODES:
        raise ValueError(f"{type(layer).__name__}: fill_mode must be one of {', '.join(_image_ops.FILL_MODES)}; "
                         f"got {fill_mode!r}")


class RandomImageLayer(ImageLayer):
    """Base of the augmentation layers: the seed, the random stream and the training switch."""

    _moves_pixels = True      # False for the colour layers, whose masks stay as they are

    def __init__(self, seed=None, data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.seed = seed
        # As Keras 3: the layer's stream is a SeedGenerator (`layer.generator`); each call draws a
        # new seed pair from it, so runs are reproducible from `seed` (or, unseeded, from
        # engine.utils.set_random_seed before the layer is made).
        self.generator = engine_random.SeedGenerator(seed)

    def _rng(self):
        return engine_random.numpy_generator(self.generator)

    def _batch_size(self, images):
        return images.shape[0] if len(images.shape) == 4 else 1

    def _height_width(self, images):
        h, w = self._spatial_axes(len(images.shape))
        return images.shape[h], images.shape[w]

    def call(self, inputs, training=True):
        if isinstance(inputs, dict):
            return self._call_on_dict(inputs, training)
        if not training:
            return self._inference(inputs)
        return self.transform_images(inputs, self.get_random_transformation(inputs, training=True))

    def _call_on_dict(self, data, training):
        """Keras's dict inputs: "images" augmented, "segmentation_masks" moved with them (sampled
        nearest), "labels" passed through."""
        unknown = sorted(set(data) - {"images", "labels", "segmentation_masks"})
        if "images" not in data or unknown:
            raise ValueError(f"{type(self).__name__} ({self.name!r}): a dict input holds 'images' and optionally "
                             f"'labels' and 'segmentation_masks'; got keys {sorted(data)}"
                             + (" (bounding boxes are not supported by engine)" if "bounding_boxes" in data else ""))
        out = dict(data)
        transformation = self.get_random_transformation(data["images"], training=training)
        out["images"] = self.transform_images(data["images"], transformation, training=training)
        if "segmentation_masks" in data:
            out["segmentation_masks"] = self.transform_segmentation_masks(data["segmentation_masks"], transformation,
                                                                          training=training)
        return out

    def transform_segmentation_masks(self, masks, transformation, training=True):
        """Segmentation masks moved as the images are (colour changes leave them alone)."""
        if not self._moves_pixels:
            return masks
        interpolation = getattr(self, "interpolation", None)
        if interpolation is not None:
            self.interpolation = "nearest"      # labels must not be blended
        try:
            return self.transform_images(masks, transformation, training=training)
        finally:
            if interpolation is not None:
                self.interpolation = interpolation

    def _inference(self, inputs):
        return ops.cast(inputs, self.dtype)

    def get_random_transformation(self, data, training=True, seed=None):
        """The random parameters of one call on `data` (None when not training).

        Args:
            data: the images (or a dict with an "images" entry).
            training: False gives None (no augmentation).
            seed: an int for a one-off stream instead of the layer's.
        """
        if not training:
            return None
        images = data["images"] if isinstance(data, dict) else data
        self._check_rank(np.shape(images))
        rng = np.random.default_rng(seed) if seed is not None else self._rng()
        return self._draw(np.shape(images), rng)

    def transform_images(self, images, transformation, training=True):
        """`images` augmented by `transformation` (from get_random_transformation)."""
        if not training or transformation is None:
            return self._inference(images)
        batch, single = self._to_batch(images)
        return self._from_batch(self._apply(batch, transformation), single)

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, dict):
            return {k: (self._image_output_shape(v) if k != "labels" else v) for k, v in input_shape.items()}
        return self._image_output_shape(input_shape)

    def _image_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


class RandomFlip(RandomImageLayer):
    """Flip each image horizontally and/or vertically with probability 1/2, independently per image.

    Args:
        mode: "horizontal", "vertical" or "horizontal_and_vertical" (one draw per image decides both
            flips, as in Keras).
        seed: seed of the layer's random stream.
        data_format: "channels_last" (default) or "channels_first".
    """

    def __init__(self, mode=HORIZONTAL_AND_VERTICAL, seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        if mode not in (HORIZONTAL, VERTICAL, HORIZONTAL_AND_VERTICAL):
            raise ValueError(f"RandomFlip: mode must be 'horizontal', 'vertical' or 'horizontal_and_vertical'; "
                             f"got {mode!r}")
        self.mode = mode

    def _draw(self, shape, rng):
        n = shape[0] if len(shape) == 4 else 1
        return {"flips": rng.uniform(size=n) <= 0.5}

    def _apply(self, images, transformation):
        flips = np.asarray(to_numpy(transformation["flips"]), dtype=bool).reshape(-1, 1, 1, 1)
        out = images
        if self.mode in (HORIZONTAL, HORIZONTAL_AND_VERTICAL):
            out = ops.where(flips, ops.getitem(out, (slice(None), slice(None), slice(None, None, -1))), out)
        if self.mode in (VERTICAL, HORIZONTAL_AND_VERTICAL):
            out = ops.where(flips, ops.getitem(out, (slice(None), slice(None, None, -1))), out)
        return out

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


class _AffineLayer(RandomImageLayer):
    """Shared by rotation, zoom and translation: an affine resampling with fill and interpolation."""

    def __init__(self, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0,
                 data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        _check_fill_mode(self, fill_mode)
        check_interpolation(self, interpolation, _image_ops.AFFINE_INTERPOLATIONS)
        self.fill_mode = fill_mode
        self.interpolation = interpolation
        self.fill_value = fill_value

    def _apply(self, images, transformation):
        return _image_ops.affine_transform(images, self._matrix(transformation, images.shape[1], images.shape[2]),
                                           self.interpolation, self.fill_mode, self.fill_value)

    def get_config(self):
        return {**super().get_config(), "fill_mode": self.fill_mode, "fill_value": self.fill_value,
                "interpolation": self.interpolation}


class RandomRotation(_AffineLayer):
    """Rotate each image by a random angle about its centre.

    Args:
        factor: a fraction of a full turn: f rotates by an angle in [-f * 360, f * 360] degrees;
            a pair (lo, hi) by one in [lo * 360, hi * 360] (positive is counter-clockwise).
        fill_mode: how points outside the image are filled: "reflect", "wrap", "constant", "nearest".
        interpolation: "bilinear" or "nearest".
        seed: seed of the layer's random stream.
        fill_value: the value of "constant" filling.
        data_format: "channels_last" (default) or "channels_first".
    """

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0,
                 data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.factor = _factor_pair(self, factor, (-1, 1))

    def _draw(self, shape, rng):
        n = shape[0] if len(shape) == 4 else 1
        return {"angle": rng.uniform(self.factor[0] * 360.0, self.factor[1] * 360.0, size=n).astype(np.float32)}

    def _matrix(self, transformation, height, width):
        angle = np.asarray(to_numpy(transformation["angle"]), dtype=np.float32).reshape(-1)
        zeros = np.zeros_like(angle)
        return _image_ops.affine_matrix(angle, zeros, zeros, np.ones_like(angle), height, width)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


class RandomZoom(_AffineLayer):
    """Zoom each image in or out by a random factor about its centre.

    Args:
        height_factor: f zooms the height by a factor in [1 - f, 1 + f] (a pair (lo, hi): in
            [1 + lo, 1 + hi]); positive values zoom out (the image shrinks), negative zoom in.
            Each value must lie in (-1, 1].
        width_factor: the same for the width; None keeps the aspect ratio (the height's zoom).
        fill_mode, interpolation, seed, fill_value, data_format: as in RandomRotation.
    """

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.height_factor = height_factor
        self.width_factor = width_factor
        self._height_range = _zoom_or_shift_pair(self, height_factor, "height_factor", True)
        self._width_range = (None if width_factor is None
                             else _zoom_or_shift_pair(self, width_factor, "width_factor", True))

    def _draw(self, shape, rng):
        n = shape[0] if len(shape) == 4 else 1
        height_zoom = rng.uniform(1.0 + self._height_range[0], 1.0 + self._height_range[1], size=n)
        width_zoom = (height_zoom if self._width_range is None
                      else rng.uniform(1.0 + self._width_range[0], 1.0 + self._width_range[1], size=n))
        return {"height_zoom": height_zoom, "width_zoom": width_zoom}

    def _matrix(self, transformation, height, width):
        zy = np.asarray(to_numpy(transformation["height_zoom"]), dtype=np.float64).reshape(-1)
        zx = np.asarray(to_numpy(transformation["width_zoom"]), dtype=np.float64).reshape(-1)
        zeros = np.zeros_like(zx)
        return np.stack([zx, zeros, (width - 1.0) / 2.0 * (1.0 - zx), zeros, zy,
                         (height - 1.0) / 2.0 * (1.0 - zy), zeros, zeros], axis=1)

    def get_config(self):
        return {**super().get_config(), "height_factor": self.height_factor, "width_factor": self.width_factor}


class RandomTranslation(_AffineLayer):
    """Shift each image by a random fraction of its height and width.

    Args:
        height_factor: f shifts vertically by a fraction in [-f, f] of the height (a pair (lo, hi):
            in [lo, hi]; positive moves the image down). Values in [-1, 1].
        width_factor: the same horizontally (positive moves the image right).
        fill_mode, interpolation, seed, fill_value, data_format: as in RandomRotation.
    """

    def __init__(self, height_factor, width_factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.height_factor = height_factor
        self.width_factor = width_factor
        self._height_range = _zoom_or_shift_pair(self, height_factor, "height_factor", False)
        self._width_range = _zoom_or_shift_pair(self, width_factor, "width_factor", False)

    def _draw(self, shape, rng):
        n = shape[0] if len(shape) == 4 else 1
        height, width = self._height_width(np.empty(shape, dtype=np.bool_))
        dy = rng.uniform(self._height_range[0], self._height_range[1], size=n) * height
        dx = rng.uniform(self._width_range[0], self._width_range[1], size=n) * width
        return {"translations": np.stack([dx, dy], axis=1)}

    def _matrix(self, transformation, height, width):
        shifts = np.asarray(to_numpy(transformation["translations"]), dtype=np.float64).reshape(-1, 2)
        ones, zeros = np.ones(len(shifts)), np.zeros(len(shifts))
        return np.stack([ones, zeros, -shifts[:, 0], zeros, ones, -shifts[:, 1], zeros, zeros], axis=1)

    def get_config(self):
        return {**super().get_config(), "height_factor": self.height_factor, "width_factor": self.width_factor}


class RandomContrast(RandomImageLayer):
    """Scale each image's deviation from its mean (per channel) by a random contrast factor.

    Args:
        factor: f draws the contrast factor from [1 - lower, 1 + upper] where (lower, upper) is
            Keras's reading of f: a number gives (0, f), a pair is taken as it is (values in [0, 1]).
        value_range: the (min, max) the output is clipped to.
        seed: seed of the layer's random stream.
    """

    _moves_pixels = False

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = _factor_pair(self, factor, (0, 1))
        self.value_range = value_range

    def _draw(self, shape, rng):
        n = shape[0] if len(shape) == 4 else 1
        return {"contrast_factor": rng.uniform(1.0 - self.factor[0], 1.0 + self.factor[1], size=n)}

    def _apply(self, images, transformation):
        factor = np.asarray(to_numpy(transformation["contrast_factor"])).reshape(-1, 1, 1, 1).astype(images.dtype)
        mean = ops.mean(images, axis=(1, 2), keepdims=True)
        out = ops.add(ops.multiply(ops.subtract(images, mean), factor), mean)
        return ops.clip(out, self.value_range[0], self.value_range[1])

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "value_range": self.value_range}


class RandomBrightness(RandomImageLayer):
    """Add a random brightness offset to each image.

    Args:
        factor: f draws the offset from [-f, f] times the width of value_range (a pair (lo, hi):
            from [lo, hi]); values in [-1, 1].
        value_range: the (min, max) of the pixel values; the output is clipped to it.
        seed: seed of the layer's random stream.
    """

    _moves_pixels = False

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = _factor_pair(self, factor, (-1, 1))
        if not isinstance(value_range, (tuple, list)) or len(value_range) != 2:
            raise ValueError(f"RandomBrightness: value_range must be a pair (min, max); got {value_range!r}")
        self.value_range = sorted(value_range)

    def _draw(self, shape, rng):
        n = shape[0] if len(shape) == 4 else 1
        delta = rng.uniform(self.factor[0], self.factor[1], size=n)
        return {"rgb_delta": delta * (self.value_range[1] - self.value_range[0])}

    def _apply(self, images, transformation):
        delta = np.asarray(to_numpy(transformation["rgb_delta"])).reshape(-1, 1, 1, 1).astype(images.dtype)
        return ops.clip(ops.add(images, delta), self.value_range[0], self.value_range[1])

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "value_range": self.value_range}


class RandomCrop(RandomImageLayer):
    """Crop a random (height, width) window, the same for all images of a batch.

    In inference, and when an image is not larger than the window, the largest centred box of
    the window's aspect ratio is cropped and resized (bilinear) to (height, width), as Keras's
    documentation says (Keras 3.15's code returns inference inputs unchanged, whose shape then
    disagrees with the layer's output shape; engine keeps the documented behaviour).

    Args:
        height, width: the output size.
        seed: seed of the layer's random stream (None: one drawn from engine's global generator,
            as Keras draws one, and kept in the config).
        data_format: "channels_last" (default) or "channels_first".
    """

    def __init__(self, height, width, seed=None, data_format=None, **kwargs):
        if seed is None:        # as Keras: an unseeded RandomCrop draws its seed (kept in its config)
            seed = int(engine_random.generator().integers(0, 2 ** 30))
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.height, self.width = int(height), int(width)

    def _draw(self, shape, rng):
        height, width = self._height_width(np.empty(shape, dtype=np.bool_))
        if height > self.height and width > self.width:
            top = int(rng.uniform(0, height - self.height + 1))
            left = int(rng.uniform(0, width - self.width + 1))
            return {"top": top, "left": left}
        return {"top": None, "left": None}

    def _apply(self, images, transformation):
        top, left = transformation["top"], transformation["left"]
        if top is None:
            return _image_ops.resize(images, self.height, self.width, "bilinear", crop_to_aspect_ratio=True)
        return ops.getitem(images, (slice(None), slice(top, top + self.height), slice(left, left + self.width)))

    def _inference(self, inputs):
        return self.transform_images(inputs, {"top": None, "left": None})

    def _image_output_shape(self, input_shape):
        return self._sized_shape(input_shape, self.height, self.width)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}


register_builtins("layers", globals())  # loadable from .keras configs by class name
