"""engine.datasets.*.load_data on small files written here in Keras's formats, in a temporary KERAS_HOME."""
import gzip
import io
import json
import os
import pickle
import tarfile

import numpy as np
import pytest

from engine import datasets


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    folder = tmp_path / "datasets"
    folder.mkdir()
    return folder


def test_missing_file_names_the_file_and_folder(keras_home):
    with pytest.raises(ValueError, match=r"datasets/mnist\.npz is missing.*never downloads"):
        datasets.mnist.load_data()
    with pytest.raises(ValueError, match="fashion-mnist/train-labels-idx1-ubyte.gz"):
        datasets.fashion_mnist.load_data()
    with pytest.raises(ValueError, match="cifar-10-batches-py-target"):
        datasets.cifar10.load_data()


def test_mnist(keras_home):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), "y_train": np.arange(5, dtype=np.uint8),
              "x_test": rng.integers(0, 256, (2, 28, 28), dtype=np.uint8), "y_test": np.array([7, 1], np.uint8)}
    np.savez(keras_home / "mnist.npz", **arrays)
    (x_train, y_train), (x_test, y_test) = datasets.mnist.load_data()
    np.testing.assert_array_equal(x_train, arrays["x_train"])
    np.testing.assert_array_equal(y_test, [7, 1])
    assert x_test.shape == (2, 28, 28) and x_train.dtype == np.uint8


def _idx(values, header_size):
    return gzip.compress(b"\0" * header_size + np.asarray(values, dtype=np.uint8).tobytes())


def test_fashion_mnist_reads_the_idx_files(keras_home):
    folder = keras_home / "fashion-mnist"
    folder.mkdir()
    images = np.arange(3 * 784, dtype=np.uint32).astype(np.uint8).reshape(3, 28, 28)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(_idx([4, 5, 6], 8))
    (folder / "train-images-idx3-ubyte.gz").write_bytes(_idx(images, 16))
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(_idx([9], 8))
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(_idx(images[:1], 16))
    (x_train, y_train), (x_test, y_test) = datasets.fashion_mnist.load_data()
    np.testing.assert_array_equal(x_train, images)
    assert y_train.tolist() == [4, 5, 6] and y_test.tolist() == [9] and x_test.shape == (1, 28, 28)


def _cifar_batch(n, seed, label_key="labels", extra=None):
    rng = np.random.default_rng(seed)
    # Python ints and arrays pickled as the CIFAR files are (numpy's array reconstruction only).
    batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             label_key.encode(): [int(v) for v in rng.integers(0, 10, n)]}
    batch.update(extra or {})
    return batch


def test_cifar10_from_the_extracted_folder_and_from_the_archive(keras_home):
    batches = {f"data_batch_{i}": _cifar_batch(2, i) for i in range(1, 6)}
    batches["test_batch"] = _cifar_batch(3, 9)
    folder = keras_home / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, batch in batches.items():
        (folder / name).write_bytes(pickle.dumps(batch, protocol=3))
    (x_train, y_train), (x_test, y_test) = datasets.cifar10.load_data()
    assert x_train.shape == (10, 32, 32, 3) and y_train.shape == (10, 1) and x_test.shape == (3, 32, 32, 3)
    first = batches["data_batch_1"][b"data"][0].reshape(3, 32, 32).transpose(1, 2, 0)
    np.testing.assert_array_equal(x_train[0], first)
    assert y_train[:2, 0].tolist() == batches["data_batch_1"][b"labels"]
    # The same data still in the downloaded archive (Keras 3's get_file name for it).
    import shutil
    shutil.rmtree(keras_home / "cifar-10-batches-py-target")
    with tarfile.open(keras_home / "cifar-10-batches-py-target_archive", "w:gz") as tar:
        for name, batch in batches.items():
            data = pickle.dumps(batch, protocol=3)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (x2, y2), _ = datasets.cifar10.load_data()
    np.testing.assert_array_equal(x2, x_train)
    np.testing.assert_array_equal(y2, y_train)


def test_cifar100_label_modes_and_refusing_foreign_pickles(keras_home):
    folder = keras_home / "cifar-100-python"          # the older Keras layout is read too
    folder.mkdir()
    for name, n in (("train", 4), ("test", 2)):
        batch = _cifar_batch(n, n, "fine_labels", {b"coarse_labels": [1] * n})
        (folder / name).write_bytes(pickle.dumps(batch, protocol=3))
    (_, y_fine), _ = datasets.cifar100.load_data()
    (_, y_coarse), (x_test, _) = datasets.cifar100.load_data(label_mode="coarse")
    assert y_fine.shape == (4, 1) and y_coarse[:, 0].tolist() == [1, 1, 1, 1] and x_test.shape == (2, 32, 32, 3)
    with pytest.raises(ValueError, match="label_mode"):
        datasets.cifar100.load_data(label_mode="medium")

    class Sneaky:
        def __reduce__(self):
            return (os.getcwd, ())
    (folder / "train").write_bytes(pickle.dumps({b"data": Sneaky(), b"fine_labels": []}))
    with pytest.raises(pickle.UnpicklingError, match="Refusing"):
        datasets.cifar100.load_data()


def _sequences():
    train = [[1, 5, 9], [2, 2], [7, 8, 9, 10], [3]]
    test = [[4, 4, 4], [6]]
    return train, test


def _object_array(seqs):
    out = np.empty(len(seqs), dtype=object)
    out[:] = seqs
    return out


def _keras_prepare(seqs, num_words, skip_top, maxlen, start_char, oov_char, index_from, labels):
    """Keras's steps written out for the reference."""
    seqs = [[start_char] + [w + index_from for w in s] for s in seqs]
    if maxlen:
        kept = [i for i, s in enumerate(seqs) if len(s) < maxlen]
        seqs, labels = [seqs[i] for i in kept], [labels[i] for i in kept]
    top = num_words or max(max(s) for s in seqs)
    return [[w if skip_top <= w < top else oov_char for w in s] for s in seqs], labels


def test_imdb_shuffles_shifts_and_filters_as_keras(keras_home):
    train, test = _sequences()
    np.savez(keras_home / "imdb.npz", x_train=_object_array(train), y_train=np.array([0, 1, 0, 1]),
             x_test=_object_array(test), y_test=np.array([1, 0]))
    (x_train, y_train), (x_test, y_test) = datasets.imdb.load_data(num_words=10, skip_top=4, maxlen=5, seed=3)
    rng = np.random.RandomState(3)
    order_train = np.arange(4)
    rng.shuffle(order_train)
    order_test = np.arange(2)
    rng.shuffle(order_test)
    exp_train, exp_y = _keras_prepare([train[i] for i in order_train], 10, 4, 5, 1, 2, 3,
                                      [[0, 1, 0, 1][i] for i in order_train])
    exp_test, _ = _keras_prepare([test[i] for i in order_test], 10, 4, 5, 1, 2, 3, [0, 0])
    assert x_train.dtype == object and [list(s) for s in x_train] == exp_train and y_train.tolist() == exp_y
    assert [list(s) for s in x_test] == exp_test
    (plain, _), _ = datasets.imdb.load_data(start_char=None, index_from=0, num_words=11, seed=3)
    assert sorted(map(tuple, plain)) == sorted(map(tuple, train))
    (capped, _), _ = datasets.imdb.load_data(start_char=None, index_from=0, seed=3)
    assert [7, 8, 9, 2] in [list(s) for s in capped]   # as Keras: num_words=None is the largest index, itself OOV
    (x_train, _), _ = datasets.imdb.load_data(num_words=8, oov_char=None, seed=3)
    assert all(w < 8 for s in x_train for w in s)
    with pytest.raises(TypeError, match="unrecognized"):
        datasets.imdb.load_data(nb_words=10)
    (keras_home / "imdb_word_index.json").write_text(json.dumps({"the": 1, "movie": 2}))
    assert datasets.imdb.get_word_index() == {"the": 1, "movie": 2}


def test_reuters_split_and_labels(keras_home):
    train, test = _sequences()
    seqs = train + test
    np.savez(keras_home / "reuters.npz", x=_object_array(seqs), y=np.arange(6))
    (x_train, y_train), (x_test, y_test) = datasets.reuters.load_data(test_split=0.5, seed=1)
    order = np.arange(6)
    np.random.RandomState(1).shuffle(order)
    expected, labels = _keras_prepare([seqs[i] for i in order], None, 0, None, 1, 2, 3, list(order))
    assert [list(s) for s in x_train] + [list(s) for s in x_test] == expected
    assert y_train.tolist() == labels[:3] and y_test.tolist() == labels[3:]
    assert len(datasets.reuters.get_label_names()) == 46 and datasets.reuters.get_label_names()[3] == "earn"


def test_housing_data_sets(keras_home):
    x = np.arange(40, dtype="float64").reshape(20, 2)
    y = np.arange(20, dtype="float64")
    np.savez(keras_home / "boston_housing.npz", x=x, y=y)
    (x_train, y_train), (x_test, y_test) = datasets.boston_housing.load_data(test_split=0.25, seed=5)
    order = np.arange(20)
    np.random.RandomState(5).shuffle(order)
    np.testing.assert_array_equal(y_train, y[order[:15]])
    np.testing.assert_array_equal(x_test, x[order[15:]])
    big = np.arange(700 * 8, dtype="float32").reshape(700, 8)
    np.savez(keras_home / "california_housing.npz", x=big, y=np.arange(700, dtype="float32"))
    (xs, ys), (xt, yt) = datasets.california_housing.load_data(version="small")
    assert len(xs) + len(xt) == 600 and len(xs) == 480 and ys.max() < 600
    (xl, _), _ = datasets.california_housing.load_data()
    assert len(xl) == 560
    with pytest.raises(ValueError, match="test_split"):
        datasets.boston_housing.load_data(test_split=1.0)
    with pytest.raises(ValueError, match="version"):
        datasets.california_housing.load_data(version="medium")
