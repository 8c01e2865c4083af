"""keras.datasets.fashion_mnist: 28x28 grayscale clothes, read from Keras's cached IDX files."""
import gzip

import numpy as np

from engine.datasets._cache import cached_path

_FILES = ("train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
          "t10k-images-idx3-ubyte.gz")


def _read(name, offset):
    path = cached_path(name, subdir="datasets/fashion-mnist", what="fashion_mnist.load_data")
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def load_data():
    """Fashion-MNIST: (x_train, y_train), (x_test, y_test), uint8 images (n, 28, 28) and labels 0-9,
    read from the four gzipped IDX files Keras caches in `~/.keras/datasets/fashion-mnist/`."""
    y_train = _read(_FILES[0], 8)
    x_train = _read(_FILES[1], 16).reshape(len(y_train), 28, 28)
    y_test = _read(_FILES[2], 8)
    x_test = _read(_FILES[3], 16).reshape(len(y_test), 28, 28)
    return (x_train, y_train), (x_test, y_test)
