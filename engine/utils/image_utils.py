"""Images to and from files and arrays (keras.utils.load_img, img_to_array, array_to_img, save_img,
smart_resize). Pillow is needed only by the functions that read or write files or make Pillow images."""
import io
import os
import pathlib

import numpy as np

from engine import config
from engine.layers.preprocessing._base import standardize_data_format
from engine.utils.traceback_utils import warn_user

_RESAMPLING = ("nearest", "bilinear", "bicubic", "hamming", "box", "lanczos")
_MODES = {"grayscale": ("L", "I;16", "I"), "rgb": ("RGB",), "rgba": ("RGBA",)}


def pillow_image():
    """Pillow's Image module, or an ImportError that says how to install it."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("Reading and writing images needs Pillow: pip install Pillow "
                          "(or pip install \"engine[images]\")") from None
    return Image


def load_img(path, color_mode="rgb", target_size=None, interpolation="nearest", keep_aspect_ratio=False):
    """Read an image file into a Pillow image.

    Args:
        path: a file path (str, bytes or pathlib.Path) or an io.BytesIO.
        color_mode: "rgb", "rgba" or "grayscale" (16-bit and 32-bit grayscale images keep their mode).
        target_size: (height, width) to resize to, or None.
        interpolation: Pillow's resampling: "nearest", "bilinear", "bicubic", "hamming", "box", "lanczos".
        keep_aspect_ratio: resize the largest centred box of the target's aspect ratio instead of
            the whole image.
    """
    image_module = pillow_image()
    if color_mode not in _MODES:
        raise ValueError(f'load_img: color_mode must be "grayscale", "rgb" or "rgba", got {color_mode!r}')
    if isinstance(path, io.BytesIO):
        img = image_module.open(path)
    elif isinstance(path, (str, bytes, pathlib.Path, os.PathLike)):
        with open(path, "rb") as f:
            img = image_module.open(io.BytesIO(f.read()))
    else:
        raise TypeError(f"load_img: path must be a file path or an io.BytesIO, not {type(path).__name__}")
    if img.mode not in _MODES[color_mode]:
        img = img.convert(_MODES[color_mode][0])
    if target_size is None:
        return img
    size = (int(target_size[1]), int(target_size[0]))        # Pillow sizes are (width, height)
    if img.size == size:
        return img
    if interpolation not in _RESAMPLING:
        raise ValueError(f"load_img: interpolation must be one of {', '.join(_RESAMPLING)}; got {interpolation!r}")
    resample = getattr(image_module.Resampling, interpolation.upper())
    box = None
    if keep_aspect_ratio:
        width, height = img.size
        crop_height = min(height, width * size[1] // size[0])
        crop_width = min(width, height * size[0] // size[1])
        top, left = (height - crop_height) // 2, (width - crop_width) // 2
        box = [left, top, left + crop_width, top + crop_height]
    return img.resize(size, resample, box=box)


def img_to_array(img, data_format=None, dtype=None):
    """A Pillow image (or array) as an array of shape (height, width, channels) (channels first
    when data_format says so), in floatx unless dtype is given."""
    data_format = standardize_data_format(data_format, "img_to_array")
    x = np.asarray(img, dtype=dtype or config.floatx())
    if x.ndim == 2:
        x = x[None] if data_format == "channels_first" else x[..., None]
    elif x.ndim == 3:
        if data_format == "channels_first":
            x = x.transpose(2, 0, 1)
    else:
        raise ValueError(f"img_to_array: unsupported image shape {x.shape}")
    return x


def array_to_img(x, data_format=None, scale=True, dtype=None):
    """An array of shape (height, width, channels) as a Pillow image (1, 3 or 4 channels).

    Args:
        scale: stretch the values to [0, 255] (min to 0, max to 255) first.
    """
    image_module = pillow_image()
    x = np.array(x, dtype=dtype or config.floatx())
    if x.ndim != 3:
        raise ValueError(f"array_to_img: expected one image of rank 3, got an array of shape {x.shape}")
    if standardize_data_format(data_format, "array_to_img") == "channels_first":
        x = x.transpose(1, 2, 0)
    if scale:
        x = x - np.min(x)
        top = np.max(x)
        if top != 0:
            x = x / top
        x = x * 255
    channels = x.shape[2]
    if channels in (3, 4):
        return image_module.fromarray(x.astype("uint8"), "RGB" if channels == 3 else "RGBA")
    if channels == 1:
        if np.max(x) > 255:
            return image_module.fromarray(x[:, :, 0].astype("int32"), "I")
        return image_module.fromarray(x[:, :, 0].astype("uint8"), "L")
    raise ValueError(f"array_to_img: images have 1, 3 or 4 channels, got {channels}")


def save_img(path, x, data_format=None, file_format=None, scale=True, **kwargs):
    """Write an image array to a file (the format from the file name unless file_format is given;
    extra keyword arguments go to Pillow's save)."""
    if file_format is None and isinstance(path, (str, pathlib.Path)):
        file_format = pathlib.Path(path).suffix[1:].lower()
    if file_format and file_format.lower() == "jpg":
        file_format = "jpeg"
    img = array_to_img(x, data_format=data_format, scale=scale)
    if img.mode == "RGBA" and file_format == "jpeg":
        warn_user("The JPEG format does not support RGBA images, converting to RGB.")
        img = img.convert("RGB")
    img.save(path, format=file_format, **kwargs)


def smart_resize(x, size, interpolation="bilinear", data_format="channels_last", backend_module=None):
    """Resize an image (or a batch) to size=(height, width) without distorting it: the largest
    centred box of the target's aspect ratio is cropped, then resized. Returns a numpy array.

    Args:
        interpolation: as in the Resizing layer.
        backend_module: accepted for Keras's signature; engine has one backend (None or engine).
    """
    from engine.layers.preprocessing.image_preprocessing import Resizing
    if backend_module is not None and getattr(backend_module, "__name__", "").split(".")[0] != "engine":
        raise ValueError("smart_resize: engine computes with its own ops; leave backend_module=None")
    if len(size) != 2:
        raise ValueError(f"smart_resize: size must be (height, width), got {size!r}")
    x = np.asarray(x)
    if x.ndim not in (3, 4):
        raise ValueError(f"smart_resize: expected an image of rank 3 or a batch of rank 4, got shape {x.shape}")
    layer = Resizing(size[0], size[1], interpolation=interpolation, crop_to_aspect_ratio=True, data_format=data_format)
    return np.asarray(layer(x if x.dtype.kind in "iu" else x.astype(config.floatx())))
