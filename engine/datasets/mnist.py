"""keras.datasets.mnist: 28x28 grayscale digits, read from Keras's cached mnist.npz."""
import numpy as np

from engine.datasets._cache import cached_path


def load_data(path="mnist.npz"):
    """The MNIST digits: (x_train, y_train), (x_test, y_test), uint8 images of shape (n, 28, 28) and
    labels 0-9, read from Keras's cache (`~/.keras/datasets/mnist.npz` or under $KERAS_HOME).

    Args:
        path: the file name in Keras's cache folder.
    """
    with np.load(cached_path(path, what="mnist.load_data"), allow_pickle=False) as f:
        return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
