"""Datasets of numpy batches: ArrayBatches, split_dataset, text_dataset_from_directory and
image_dataset_from_directory.

Keras returns tf.data datasets from these utilities; engine has no tf.data, so they return an
`ArrayBatches`, which follows the protocol of `keras.utils.PyDataset` (`__len__`,
`__getitem__(i)` giving batch i, `on_epoch_end`, iteration) so `fit`, `evaluate` and `predict`
take it as they take a PyDataset.
"""
import math
import os
import random

import numpy as np

from engine.utils.io_utils import print_msg


class ArrayBatches:
    """A dataset of numpy batches following PyDataset's protocol.

    Batch i is `load(indices)` for the i-th slice of `batch_size` sample indices (the last batch
    may be smaller); with `batch_size=None` each item is one sample. The samples are loaded
    only when their batch is asked for (files are read then).

    Args:
        num_samples: the number of samples.
        load: a function from an array of sample indices to one batch (an array, or a tuple
            such as (x, y)); with batch_size=None it gets one index (an int).
        batch_size: samples per batch, or None for unbatched samples.
        shuffle: reorder the samples again at each `on_epoch_end` (the first epoch keeps the
            order given).
        seed: seed of that reshuffling.
        class_names: the label names (as Keras sets `dataset.class_names`), or None.
        file_paths: the files of the samples, in their order (Keras's `dataset.file_paths`).
    """

    def __init__(self, num_samples, load, batch_size=32, shuffle=False, seed=None, class_names=None,
                 file_paths=None):
        if batch_size is not None and (not isinstance(batch_size, (int, np.integer)) or batch_size < 1):
            raise ValueError(f"ArrayBatches: batch_size must be a positive integer or None, got {batch_size!r}")
        self.num_samples = int(num_samples)
        self._load = load
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self._rng = np.random.default_rng(seed)
        self._order = np.arange(self.num_samples)
        self.class_names = class_names
        self.file_paths = file_paths

    @property
    def num_batches(self):
        """The number of batches in an epoch (PyDataset's attribute)."""
        return len(self)

    def __len__(self):
        if self.batch_size is None:
            return self.num_samples
        return math.ceil(self.num_samples / self.batch_size)

    def __getitem__(self, index):
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"ArrayBatches: batches are indexed by integers, got {type(index).__name__}")
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"ArrayBatches: batch {index} is out of range for {n} batches")
        if self.batch_size is None:
            return self._load(int(self._order[index]))
        return self._load(self._order[index * self.batch_size:(index + 1) * self.batch_size])

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def on_epoch_end(self):
        """Reshuffle the samples when the dataset shuffles (fit calls this after each epoch)."""
        if self.shuffle:
            self._rng.shuffle(self._order)

    def batch(self, batch_size):
        """The same samples in batches of `batch_size` (as tf.data's `batch` on unbatched data)."""
        if self.batch_size is not None:
            raise ValueError("ArrayBatches.batch: the dataset is batched already "
                             f"(batch_size={self.batch_size})")
        out = ArrayBatches(self.num_samples, self._batched_load(), batch_size, self.shuffle,
                           class_names=self.class_names, file_paths=self.file_paths)
        out._order = self._order.copy()
        return out

    def map(self, fn):
        """The dataset with `fn` applied to each item when it is loaded: fn(x, y) for (x, y) items, fn(x)
        otherwise (as tf.data's `map`, e.g. `ds.map(lambda x, y: (vectorize(x), y))`). Tensors fn
        returns are turned into numpy arrays."""
        load = self._load

        def mapped(indices):
            item = load(indices)
            out = fn(*item) if isinstance(item, tuple) else fn(item)
            return _to_arrays(out)
        out = ArrayBatches(self.num_samples, mapped, self.batch_size, self.shuffle, class_names=self.class_names,
                           file_paths=self.file_paths)
        out._order = self._order
        out._rng = self._rng
        return out

    def _batched_load(self):
        load = self._load

        def batched(indices):
            samples = [load(int(i)) for i in indices]
            if samples and isinstance(samples[0], tuple):
                return tuple(np.stack(parts) for parts in zip(*samples))
            return np.stack(samples)
        return batched

    def __repr__(self):
        return (f"<ArrayBatches samples={self.num_samples}, batch_size={self.batch_size}, "
                f"batches={len(self)}>")


def _to_arrays(value):
    """Tensors (anything with __array__) in a batch structure as numpy arrays."""
    if isinstance(value, tuple):
        return tuple(_to_arrays(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_arrays(v) for k, v in value.items()}
    return value if isinstance(value, np.ndarray) else np.asarray(value)


def _take(data, indices):
    """Rows `indices` of an array, or of each array of a tuple/list/dict of them."""
    if isinstance(data, dict):
        return {k: _take(v, indices) for k, v in data.items()}
    if isinstance(data, (tuple, list)):
        return tuple(_take(v, indices) for v in data)
    return np.asarray(data)[indices]


def _num_samples(data, what):
    leaves = list(data.values()) if isinstance(data, dict) else list(data) if isinstance(data, (list, tuple)) \
        else [data]
    lengths = {len(leaf) for leaf in leaves}
    if len(lengths) != 1:
        raise ValueError(f"{what}: the arrays must all have the same length, got lengths "
                         f"{[len(leaf) for leaf in leaves]}")
    return lengths.pop()


def arrays_dataset(data, batch_size=None, shuffle=False, seed=None):
    """An ArrayBatches over in-memory arrays (one array, or a tuple/dict of arrays of one length)."""
    n = _num_samples(data, "arrays_dataset")
    return ArrayBatches(n, lambda indices: _take(data, indices), batch_size, shuffle, seed)


def _split_sizes(left_size, right_size, total):
    """Keras's reading of left_size / right_size: fractions in (0, 1) or counts in (0, total)."""
    for name, size in (("left_size", left_size), ("right_size", right_size)):
        if size is None:
            continue
        if type(size) not in (int, float):
            raise TypeError(f"split_dataset: {name} must be an int, a float or None, got {type(size).__name__}")
        if (type(size) is int and not 0 < size < total) or (type(size) is float and not 0 < size < 1):
            raise ValueError(f"split_dataset: {name} must be a positive int smaller than {total} (the number of "
                             f"samples) or a float in (0, 1), got {size!r}")
    if left_size is None and right_size is None:
        raise ValueError("split_dataset: give left_size, right_size or both")
    if type(left_size) is float and type(right_size) is float and left_size + right_size > 1:
        raise ValueError(f"split_dataset: left_size + right_size is {left_size + right_size}, more than 1")
    left = round(left_size * total) if type(left_size) is float else left_size
    right = round(right_size * total) if type(right_size) is float else right_size
    left = total - right if left is None else left
    right = total - left if right is None else right
    if left + right > total:
        raise ValueError(f"split_dataset: left_size + right_size is {left + right} samples, more than the "
                         f"{total} there are")
    if left == 0 or right == 0:
        raise ValueError(f"split_dataset: with {total} samples, left_size={left_size} and right_size={right_size} "
                         "leave one side empty; adjust them")
    return int(left), int(right)


def _dataset_samples(dataset):
    """(number of samples, function from one index to its sample) for split_dataset's inputs."""
    if isinstance(dataset, ArrayBatches):
        if dataset.batch_size is not None:
            raise ValueError("split_dataset: give an unbatched dataset (batch_size=None) or arrays")
        return len(dataset), lambda i: dataset[int(i)]
    if isinstance(dataset, (np.ndarray, list, tuple, dict)):
        n = _num_samples(dataset, "split_dataset")
        return n, lambda i: _take(dataset, i)
    if hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__"):
        return len(dataset), lambda i: dataset[int(i)]
    raise TypeError(f"split_dataset: dataset must be an array, a list/tuple/dict of arrays or an unbatched "
                    f"dataset, got {type(dataset).__name__}")


def split_dataset(dataset, left_size=None, right_size=None, shuffle=False, seed=None, preferred_backend=None):
    """Split a dataset into a left and a right part (e.g. training and test samples).

    Args:
        dataset: an array, a tuple/list/dict of arrays with one length (samples are rows), or an
            unbatched ArrayBatches or other sized, indexable dataset of samples.
        left_size: a float in (0, 1): the fraction of samples on the left; an int: their number;
            None: all those not on the right.
        right_size: the same for the right part (taken from the end).
        shuffle: shuffle the samples before splitting (Python's `random` seeded by `seed`, so the
            split is Keras's for the same seed).
        seed: the shuffling seed (a random one when None).
        preferred_backend: the kind of the two parts: None or "engine" (engine's unbatched
            ArrayBatches), "tensorflow" (`tf.data.Dataset`s of the samples, which needs
            tensorflow) or "torch" (`torch.utils.data.TensorDataset`s, which needs torch).

    Returns:
        (left, right): the two parts; an ArrayBatches part gives batches with `.batch(n)`.
    """
    if preferred_backend not in (None, "engine", "tensorflow", "torch"):
        raise ValueError(f"split_dataset: preferred_backend must be None, 'engine', 'tensorflow' or 'torch', got "
                         f"{preferred_backend!r}")
    total, sample = _dataset_samples(dataset)
    left, right = _split_sizes(left_size, right_size, total)
    order = list(range(total))
    if shuffle:
        random.Random(random.randint(0, int(1e6)) if seed is None else seed).shuffle(order)
    parts = []
    for indices in (order[:left], order[total - right:]):
        indices = np.asarray(indices, dtype=np.int64)
        if isinstance(dataset, (np.ndarray, list, tuple, dict)):
            part = _take(dataset, indices)
            parts.append(part if preferred_backend in ("tensorflow", "torch") else arrays_dataset(part))
        elif preferred_backend in ("tensorflow", "torch"):
            parts.append(_stack_samples([sample(i) for i in indices]))
        else:
            parts.append(ArrayBatches(len(indices), lambda i, idx=indices: sample(idx[i]), batch_size=None))
    if preferred_backend == "tensorflow":
        tf = _import_for_split("tensorflow", "tensorflow-cpu")
        return tuple(tf.data.Dataset.from_tensor_slices(part) for part in parts)
    if preferred_backend == "torch":
        torch = _import_for_split("torch", "torch")
        return tuple(_torch_dataset(torch, part) for part in parts)
    return tuple(parts)


def _stack_samples(samples):
    """Samples (arrays, or tuples / dicts of them) as one structure of stacked arrays."""
    first = samples[0] if samples else np.zeros((0,))
    if isinstance(first, dict):
        return {k: np.stack([np.asarray(s[k]) for s in samples]) for k in first}
    if isinstance(first, (tuple, list)):
        return tuple(np.stack([np.asarray(s[j]) for s in samples]) for j in range(len(first)))
    return np.stack([np.asarray(s) for s in samples]) if samples else first


def _import_for_split(module, package):
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(f"split_dataset(preferred_backend={module!r}) needs {module}: pip install {package}") \
            from None


def _torch_dataset(torch, part):
    if isinstance(part, dict):
        raise ValueError("split_dataset(preferred_backend='torch'): a torch TensorDataset holds a tuple of "
                         "arrays, not a dict; pass the arrays as a tuple")
    arrays = part if isinstance(part, tuple) else (part,)
    return torch.utils.data.TensorDataset(*[torch.from_numpy(np.ascontiguousarray(a)) for a in arrays])


# -- from directories ------------------------------------------------------------------------------
def _check_split_args(validation_split, subset):
    if validation_split and not 0 < validation_split < 1:
        raise ValueError(f"validation_split must be between 0 and 1, got {validation_split}")
    if bool(validation_split) != bool(subset):
        raise ValueError("If subset is set, validation_split must be set, and inversely")
    if subset not in ("training", "validation", "both", None):
        raise ValueError(f'subset must be "training", "validation" or "both", got {subset!r}')


def _files_under(folder, formats, follow_links):
    """Relative paths of the files with one of `formats` under folder, in Keras's (sorted) order."""
    found = []
    for root, _, files in sorted(os.walk(folder, followlinks=follow_links), key=lambda entry: entry[0]):
        for name in sorted(files):
            if name.lower().endswith(formats):
                found.append(os.path.relpath(os.path.join(root, name), folder))
    return found


def index_directory(directory, labels, formats, class_names=None, shuffle=True, seed=None, follow_links=False,
                    verbose=True):
    """(file paths, labels or None, class names or None) as Keras indexes a directory: classes are the
    sorted subfolders (or `class_names`, in its order); files are sorted within each class; with
    shuffle, paths and labels are permuted by numpy's RandomState(seed), as Keras does."""
    if not os.path.isdir(directory):
        raise ValueError(f"Could not find directory {directory}")
    if labels == "inferred":
        subdirs = [d for d in sorted(os.listdir(directory))
                   if os.path.isdir(os.path.join(directory, d)) and not d.startswith(".")]
        if class_names is not None:
            if not set(class_names) <= set(subdirs):
                raise ValueError(f"class_names {class_names} do not match the subfolders of {directory}: "
                                 f"expected some of {subdirs}")
            subdirs = list(class_names)
    else:
        if class_names is not None:
            raise ValueError("class_names can only be given with labels='inferred' (otherwise they are the "
                             "sorted labels, or there are none)")
        subdirs = [""]
    paths, inferred = [], []
    for index, subdir in enumerate(subdirs):
        for rel in _files_under(os.path.join(directory, subdir), formats, follow_links):
            paths.append(os.path.join(directory, subdir, rel) if subdir else os.path.join(directory, rel))
            inferred.append(index)
    if labels == "inferred":
        labels = np.asarray(inferred, dtype="int32")
        class_names = subdirs
    elif labels is None:
        class_names = None
    else:
        if len(labels) != len(paths):
            raise ValueError(f"labels has {len(labels)} entries but {directory} holds {len(paths)} files; give one "
                             "label per file (in the sorted order of the file names)")
        class_names = [str(label) for label in sorted(set(labels))]
        labels = np.asarray(labels)
    if verbose:
        if labels is None:
            print_msg(f"Found {len(paths)} files.")
        else:
            print_msg(f"Found {len(paths)} files belonging to {len(class_names)} classes.")
    if shuffle:
        if seed is None:
            seed = np.random.randint(1e6)
        np.random.RandomState(seed).shuffle(paths)
        if labels is not None:
            np.random.RandomState(seed).shuffle(labels)
    return paths, labels, class_names


def _training_or_validation(paths, labels, validation_split, subset):
    if not validation_split:
        return paths, labels
    num_val = int(validation_split * len(paths))
    if subset == "training":
        print_msg(f"Using {len(paths) - num_val} files for training.")
        keep = slice(0, len(paths) - num_val)
    else:
        print_msg(f"Using {num_val} files for validation.")
        keep = slice(len(paths) - num_val, len(paths))
    return paths[keep], None if labels is None else labels[keep]


def _encode_labels(labels, label_mode, num_classes):
    if label_mode == "binary":
        return labels.astype("float32")[:, None]
    if label_mode == "categorical":
        return np.eye(num_classes, dtype="float32")[labels]
    return labels.astype("int32")


def _check_label_mode(label_mode, labels, class_names=None):
    if labels not in ("inferred", None) and not isinstance(labels, (list, tuple, np.ndarray)):
        raise ValueError("labels must be 'inferred', None, or a list of integer labels (one per file, in the sorted "
                         f"order of the file names); got {labels!r}")
    if labels not in ("inferred", None) and class_names:
        raise ValueError("class_names can only be given with labels='inferred'")
    if label_mode not in ("int", "categorical", "binary", None):
        raise ValueError(f'label_mode must be "int", "categorical", "binary" or None, got {label_mode!r}')


def _check_format(format, what):
    if format not in ("tf", "grain"):
        raise ValueError(f'{what}: format must be "tf" or "grain", got {format!r}')
    if format == "grain":
        raise ValueError(f"{what}: engine has no Grain; leave format='tf' (the default), which gives an "
                         "ArrayBatches dataset (PyDataset's protocol) in place of a tf.data.Dataset")


def _from_directory(directory, labels, label_mode, class_names, batch_size, shuffle, seed, validation_split,
                    subset, follow_links, verbose, formats, read, what):
    """The shared body of text_ and image_dataset_from_directory: index, split, then batch lazily."""
    _check_label_mode(label_mode, labels, class_names)
    if labels is None or label_mode is None:
        labels, label_mode = None, None
    _check_split_args(validation_split, subset)
    if seed is None:
        seed = np.random.randint(1e6)
    paths, found_labels, class_names = index_directory(directory, labels, formats, class_names, shuffle, seed,
                                                       follow_links, verbose)
    if label_mode == "binary" and len(class_names) != 2:
        raise ValueError(f'label_mode="binary" needs exactly 2 classes, found {class_names}')
    num_classes = len(class_names) if class_names else 0

    def make(subset_name, reshuffle):
        sub_paths, sub_labels = _training_or_validation(paths, found_labels, validation_split, subset_name)
        if not sub_paths:
            kind = "" if subset_name is None else f"{subset_name} "
            raise ValueError(f"No {kind}{what} files found in directory {directory}. Allowed formats: "
                             f"{', '.join(formats)}")
        encoded = None if sub_labels is None else _encode_labels(np.asarray(sub_labels), label_mode, num_classes)

        def load(indices):
            scalar = np.ndim(indices) == 0
            picked = [indices] if scalar else indices
            x = read([sub_paths[i] for i in picked])
            x = x[0] if scalar else x
            if encoded is None:
                return x
            return x, encoded[indices]
        return ArrayBatches(len(sub_paths), load, batch_size, shuffle=reshuffle, seed=seed,
                            class_names=class_names, file_paths=list(sub_paths))

    if subset == "both":
        return [make("training", shuffle), make("validation", False)]
    return make(subset, shuffle)


def text_dataset_from_directory(directory, labels="inferred", label_mode="int", class_names=None, batch_size=32,
                                max_length=None, shuffle=True, seed=None, validation_split=None, subset=None,
                                follow_links=False, format="tf", verbose=True):
    """A dataset of (texts, labels) batches from the .txt files in a directory.

    With `labels="inferred"` the directory holds one subfolder per class (class_a/..., class_b/...);
    labels are the subfolders' indices in sorted order.

    Args:
        directory: the folder to read.
        labels: "inferred", None (texts only), or a list of labels, one per file in the sorted order
            of the file paths.
        label_mode: "int" (int32), "categorical" (one-hot float32), "binary" (float32 of shape
            (n, 1), for two classes) or None (no labels).
        class_names: the subfolders to use, in this order (only with labels="inferred").
        batch_size: texts per batch (None: one text per item).
        max_length: keep at most this many characters of each text.
        shuffle: shuffle the files (Keras's order for the same seed), and again each epoch.
        seed: the shuffling seed.
        validation_split: the fraction of the files held out for validation.
        subset: "training", "validation" or "both" (then a list [training, validation]).
        follow_links: follow symbolic links to folders.
        format: "tf" (the default): engine returns an ArrayBatches in place of a tf.data.Dataset.
        verbose: print how many files and classes were found.

    Returns:
        An ArrayBatches of (texts, labels) (texts only without labels): texts are numpy arrays of
        Python strings (dtype object), with `class_names` and `file_paths` attributes.
    """
    _check_format(format, "text_dataset_from_directory")

    def read(paths):
        texts = np.empty(len(paths), dtype=object)
        for k, path in enumerate(paths):
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            texts[k] = text if max_length is None else text[:max_length]
        return texts
    return _from_directory(directory, labels, label_mode, class_names, batch_size, shuffle, seed, validation_split,
                           subset, follow_links, verbose, (".txt",), read, "text")


IMAGE_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
_COLOR_MODES = ("rgb", "rgba", "grayscale")


def image_dataset_from_directory(directory, labels="inferred", label_mode="int", class_names=None, color_mode="rgb",
                                 batch_size=32, image_size=(256, 256), shuffle=True, seed=None, validation_split=None,
                                 subset=None, interpolation="bilinear", follow_links=False,
                                 crop_to_aspect_ratio=False, pad_to_aspect_ratio=False, data_format=None,
                                 format="tf", verbose=True):
    """A dataset of (images, labels) batches from the image files (.bmp, .gif, .jpeg, .jpg, .png) in a
    directory, resized to `image_size`. Reading images needs Pillow (`pip install Pillow`).

    Args:
        directory, labels, label_mode, class_names, batch_size, shuffle, seed, validation_split, subset,
            follow_links, verbose: as in text_dataset_from_directory.
        color_mode: "rgb" (3 channels), "rgba" (4) or "grayscale" (1).
        image_size: (height, width) the images are resized to (an int: a square).
        interpolation: "bilinear", "nearest", "bicubic", "area", "lanczos3" or "lanczos5".
        crop_to_aspect_ratio: crop the largest centred box of the target aspect ratio before resizing.
        pad_to_aspect_ratio: pad (with zeros) to the target aspect ratio before resizing.
        data_format: "channels_last" (default) or "channels_first".
        format: "tf" (the default): engine returns an ArrayBatches in place of a tf.data.Dataset.

    Returns:
        An ArrayBatches of (images, labels) (images only without labels); images are float32 arrays
        of shape (batch, height, width, channels) with values in [0, 255], with `class_names` and
        `file_paths` attributes.
    """
    from engine.layers.preprocessing.image_preprocessing import Resizing
    from engine.utils.image_utils import img_to_array, load_img, pillow_image
    _check_format(format, "image_dataset_from_directory")
    if color_mode not in _COLOR_MODES:
        raise ValueError(f'color_mode must be "rgb", "rgba" or "grayscale", got {color_mode!r}')
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    if not isinstance(image_size, (list, tuple)) or len(image_size) != 2:
        raise ValueError(f"image_size must be a tuple of 2 integers, got {image_size!r}")
    resizer = Resizing(image_size[0], image_size[1], interpolation=interpolation.lower(),
                       crop_to_aspect_ratio=crop_to_aspect_ratio, pad_to_aspect_ratio=pad_to_aspect_ratio,
                       data_format=data_format, dtype="float32")
    pillow_image()   # fail early, before indexing, when images cannot be read

    def read(paths):
        images = []
        for path in paths:
            img = img_to_array(load_img(path, color_mode=color_mode), data_format=resizer.data_format, dtype="float32")
            images.append(np.asarray(resizer(img)))
        return np.stack(images)
    return _from_directory(directory, labels, label_mode, class_names, batch_size, shuffle, seed, validation_split,
                           subset, follow_links, verbose, IMAGE_FORMATS, read, "image")
