"""ArrayBatches, split_dataset and the *_dataset_from_directory utilities on small folders made here."""
import builtins
import os
import random

import numpy as np
import pytest

from engine import utils
from engine.utils import dataset_utils


def test_array_batches_protocol():
    x, y = np.arange(10), np.arange(10) * 2
    ds = dataset_utils.arrays_dataset((x, y), batch_size=4)
    assert len(ds) == 3 and ds.num_batches == 3
    bx, by = ds[2]
    np.testing.assert_array_equal(bx, [8, 9])
    np.testing.assert_array_equal(by, [16, 18])
    np.testing.assert_array_equal(ds[-1][0], [8, 9])
    assert [len(b[0]) for b in ds] == [4, 4, 2]
    with pytest.raises(IndexError):
        ds[3]
    shuffled = dataset_utils.arrays_dataset(x, batch_size=5, shuffle=True, seed=0)
    first = np.concatenate(list(shuffled))
    np.testing.assert_array_equal(first, x)             # the first epoch keeps the given order
    shuffled.on_epoch_end()
    second = np.concatenate(list(shuffled))
    assert sorted(second) == list(x) and not np.array_equal(second, x)


def test_split_dataset_sizes_and_kerass_shuffle():
    data = np.arange(100).reshape(50, 2)
    left, right = utils.split_dataset(data, left_size=0.8)
    assert len(left) == 40 and len(right) == 10
    np.testing.assert_array_equal(right[0], [80, 81])
    left, right = utils.split_dataset((data, np.arange(50)), left_size=10, right_size=5)
    assert len(left) == 10 and len(right) == 5
    x0, y0 = right[0]
    assert y0 == 45 and list(x0) == [90, 91]
    left, right = utils.split_dataset(np.arange(20), right_size=0.25, shuffle=True, seed=3)
    order = list(range(20))
    random.seed(3)
    random.shuffle(order)                              # what Keras does with the samples
    assert [int(left[i]) for i in range(len(left))] == order[:15]
    assert [int(right[i]) for i in range(len(right))] == order[15:]
    batched = left.batch(4)
    assert len(batched) == 4 and batched[0].tolist() == order[:4]
    with pytest.raises(ValueError, match="left_size"):
        utils.split_dataset(np.arange(10), left_size=1.5)
    with pytest.raises(ValueError, match="give left_size"):
        utils.split_dataset(np.arange(10))
    with pytest.raises(ValueError, match="same length"):
        utils.split_dataset((np.arange(3), np.arange(4)), left_size=1)


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


@pytest.fixture
def text_dir(tmp_path):
    for cls, n in (("neg", 3), ("pos", 4)):
        for i in range(n):
            _write(os.path.join(tmp_path, cls, f"{i}.txt"), f"{cls} review number {i}")
    _write(os.path.join(tmp_path, "pos", "notes.md"), "not a text sample")
    return str(tmp_path)


def test_text_dataset_from_directory_labels_order_and_attributes(text_dir, capsys):
    ds = utils.text_dataset_from_directory(text_dir, batch_size=3, shuffle=False)
    assert "Found 7 files belonging to 2 classes." in capsys.readouterr().out
    assert ds.class_names == ["neg", "pos"] and len(ds) == 3
    texts, labels = ds[0]
    assert texts.tolist() == ["neg review number 0", "neg review number 1", "neg review number 2"]
    assert labels.dtype == np.int32 and labels.tolist() == [0, 0, 0]
    assert ds.file_paths[3] == os.path.join(text_dir, "pos", "0.txt")
    # Shuffled as Keras: numpy's RandomState(seed) permutes the sorted file list.
    shuffled = utils.text_dataset_from_directory(text_dir, batch_size=None, seed=5, verbose=False)
    expected = [os.path.join(text_dir, c, f"{i}.txt") for c, n in (("neg", 3), ("pos", 4)) for i in range(n)]
    np.random.RandomState(5).shuffle(expected)
    assert shuffled.file_paths == expected
    text, label = shuffled[0]
    assert text.startswith(("neg", "pos")) and label == (text.startswith("pos"))


def test_text_dataset_label_modes_split_and_max_length(text_dir):
    cat = utils.text_dataset_from_directory(text_dir, label_mode="categorical", shuffle=False, verbose=False)
    np.testing.assert_array_equal(cat[0][1][-1], [0.0, 1.0])
    binary = utils.text_dataset_from_directory(text_dir, label_mode="binary", shuffle=False, verbose=False)
    assert binary[0][1].shape == (7, 1) and binary[0][1].dtype == np.float32
    only = utils.text_dataset_from_directory(text_dir, labels=None, max_length=3, shuffle=False, verbose=False)
    assert only[0].tolist()[:2] == ["neg", "neg"] and only.class_names is None
    train, val = utils.text_dataset_from_directory(text_dir, validation_split=0.3, subset="both", seed=1,
                                                   verbose=False)
    assert train.num_samples == 5 and val.num_samples == 2
    assert not set(train.file_paths) & set(val.file_paths)
    with pytest.raises(ValueError, match="validation_split"):
        utils.text_dataset_from_directory(text_dir, subset="training")
    with pytest.raises(ValueError, match="exactly 2"):
        utils.text_dataset_from_directory(text_dir, label_mode="binary", class_names=["neg"])
    with pytest.raises(ValueError, match="Could not find directory"):
        utils.text_dataset_from_directory(os.path.join(text_dir, "missing"))


def test_image_dataset_from_directory(tmp_path):
    image_module = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    stored = {}
    for cls in ("cat", "dog"):
        os.makedirs(os.path.join(tmp_path, cls))
        for i in range(3):
            pixels = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
            path = os.path.join(tmp_path, cls, f"{i}.png")
            image_module.fromarray(pixels).save(path)
            stored[path] = pixels
    ds = utils.image_dataset_from_directory(str(tmp_path), image_size=(6, 8), batch_size=4, shuffle=False,
                                            verbose=False)
    images, labels = ds[0]
    assert images.shape == (4, 6, 8, 3) and images.dtype == np.float32
    np.testing.assert_array_equal(images[0], stored[ds.file_paths[0]])
    assert labels.tolist() == [0, 0, 0, 1] and ds.class_names == ["cat", "dog"]
    small = utils.image_dataset_from_directory(str(tmp_path), image_size=3, color_mode="grayscale",
                                               label_mode="categorical", batch_size=6, verbose=False, seed=0)
    images, labels = small[0]
    assert images.shape == (6, 3, 3, 1) and labels.shape == (6, 2)
    resized = utils.image_dataset_from_directory(str(tmp_path), image_size=(3, 4), batch_size=1, shuffle=False,
                                                 verbose=False)
    from engine import layers
    expected = np.asarray(layers.Resizing(3, 4)(stored[resized.file_paths[0]].astype("float32")))
    np.testing.assert_allclose(resized[0][0][0], expected, rtol=1e-6)


def test_image_dataset_without_pillow_names_the_install(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_pillow(name, *args, **kwargs):
        if name == "PIL" or name.startswith("PIL."):
            raise ImportError("No module named 'PIL'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_pillow)
    with pytest.raises(ImportError, match="pip install Pillow"):
        utils.image_dataset_from_directory(str(tmp_path))


def test_image_utils_round_trip_and_smart_resize(tmp_path):
    pytest.importorskip("PIL.Image")
    from engine.preprocessing import image
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, size=(6, 8, 3)).astype("float32")
    path = os.path.join(tmp_path, "x.png")
    utils.save_img(path, pixels, scale=False)
    loaded = utils.img_to_array(utils.load_img(path))
    np.testing.assert_array_equal(loaded, pixels)
    assert loaded.dtype == np.float32 and utils.img_to_array(utils.load_img(path), data_format="channels_first").shape \
        == (3, 6, 8)
    gray = utils.img_to_array(utils.load_img(path, color_mode="grayscale", target_size=(3, 4)))
    assert gray.shape == (3, 4, 1)
    kept = utils.load_img(path, target_size=(4, 4), keep_aspect_ratio=True)
    assert kept.size == (4, 4)
    stretched = utils.img_to_array(utils.array_to_img(np.linspace(0, 1, 12).reshape(2, 2, 3)))
    assert stretched.min() == 0 and stretched.max() == 255
    resized = image.smart_resize(pixels, (3, 3))
    from engine import layers
    np.testing.assert_allclose(resized, layers.Resizing(3, 3, crop_to_aspect_ratio=True)(pixels), rtol=1e-6)
    assert image.smart_resize(pixels[None], (4, 4)).shape == (1, 4, 4, 3)
    with pytest.raises(ValueError, match="color_mode"):
        utils.load_img(path, color_mode="cmyk")
    with pytest.raises(ValueError, match="interpolation"):
        utils.load_img(path, target_size=(2, 2), interpolation="cubic")


def test_text_directory_dataset_feeds_text_vectorization(text_dir):
    from engine import layers
    ds = utils.text_dataset_from_directory(text_dir, batch_size=2, seed=0, verbose=False)
    vectorize = layers.TextVectorization(output_sequence_length=4)
    vectorize.adapt(ds)                                  # (texts, labels) batches: the texts are read
    assert vectorize.get_vocabulary()[:4] == ["", "[UNK]", "review", "number"]
    vectors = ds.map(lambda texts, labels: (vectorize(texts), labels))
    x, y = vectors[0]
    assert isinstance(x, np.ndarray) and x.shape == (2, 4) and x.dtype == np.int64
    assert y.shape == (2,) and len(vectors) == len(ds)
    assert ds.map(lambda texts, labels: labels * 2)[0].tolist() == (ds[0][1] * 2).tolist()


def test_split_dataset_preferred_backend_gives_engine_and_torch_parts():
    from engine.utils import split_dataset
    x = np.arange(20, dtype="float32").reshape(10, 2)
    y = np.arange(10, dtype="int64")
    left, right = split_dataset((x, y), left_size=0.7, preferred_backend="engine")
    assert len(left) == 7 and len(right) == 3
    with pytest.raises(ValueError, match="preferred_backend"):
        split_dataset(x, left_size=0.5, preferred_backend="jax")
    torch = pytest.importorskip("torch")
    tl, tr = split_dataset((x, y), left_size=0.7, shuffle=True, seed=3, preferred_backend="torch")
    el, er = split_dataset((x, y), left_size=0.7, shuffle=True, seed=3)
    assert isinstance(tl, torch.utils.data.TensorDataset) and len(tl) == 7 and len(tr) == 3
    for i in range(7):       # the same samples, in the same order, as engine's own split
        np.testing.assert_array_equal(tl[i][0].numpy(), el[i][0])
        assert int(tl[i][1]) == int(el[i][1])
    # An indexable dataset of samples is stacked first.
    samples = [(x[i], y[i]) for i in range(10)]
    sl, _ = split_dataset(_Indexable(samples), left_size=4, preferred_backend="torch")
    np.testing.assert_array_equal(sl.tensors[0].numpy(), x[:4])
    with pytest.raises(ValueError, match="dict"):
        split_dataset({"a": x}, left_size=0.5, preferred_backend="torch")


class _Indexable:
    def __init__(self, samples):
        self.samples = samples

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        return self.samples[i]


def test_split_dataset_tensorflow_datasets():
    tf = pytest.importorskip("tensorflow")
    from engine.utils import split_dataset
    x = np.arange(12, dtype="float32").reshape(6, 2)
    left, right = split_dataset(x, right_size=2, preferred_backend="tensorflow")
    assert isinstance(left, tf.data.Dataset)
    np.testing.assert_array_equal(np.stack(list(left.as_numpy_iterator())), x[:4])
    np.testing.assert_array_equal(np.stack(list(right.as_numpy_iterator())), x[4:])
