"""keras.datasets.cifar100: 32x32 colour images in 100 fine (20 coarse) classes."""
import numpy as np

from engine.datasets._cifar import CifarFiles, channels


def load_data(label_mode="fine"):
    """CIFAR-100: (x_train, y_train), (x_test, y_test): uint8 images (n, 32, 32, 3) and labels (n, 1),
    read from `~/.keras/datasets/cifar-100-python-target/cifar-100-python/` (or the older
    `cifar-100-python/` folder, or the downloaded archive).

    Args:
        label_mode: "fine" (100 classes) or "coarse" (20 superclasses).
    """
    if label_mode not in ("fine", "coarse"):
        raise ValueError(f'cifar100.load_data: label_mode must be "fine" or "coarse", got {label_mode!r}')
    files = CifarFiles("cifar-100-python-target", "cifar-100-python", "cifar100.load_data")
    x_train, y_train = files.batch("train", label_key=f"{label_mode}_labels")
    x_test, y_test = files.batch("test", label_key=f"{label_mode}_labels")
    return ((channels(x_train), np.reshape(y_train, (len(y_train), 1))),
            (channels(x_test), np.reshape(y_test, (len(y_test), 1))))
