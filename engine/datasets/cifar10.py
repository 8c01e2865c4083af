"""keras.datasets.cifar10: 32x32 colour images in 10 classes, from Keras's cached CIFAR-10 batches."""
import numpy as np

from engine.datasets._cifar import CifarFiles, channels


def load_data():
    """CIFAR-10: (x_train, y_train), (x_test, y_test): uint8 images (n, 32, 32, 3) and uint8 labels
    (n, 1), read from `~/.keras/datasets/cifar-10-batches-py-target/cifar-10-batches-py/` (Keras 3's
    extraction folder; the older `cifar-10-batches-py/` folder or the downloaded
    `cifar-10-batches-py-target_archive` tarball are read too)."""
    files = CifarFiles("cifar-10-batches-py-target", "cifar-10-batches-py", "cifar10.load_data")
    parts = [files.batch(f"data_batch_{i}") for i in range(1, 6)]
    x_train = np.concatenate([p[0] for p in parts]).astype("uint8")
    y_train = np.concatenate([np.asarray(p[1]) for p in parts]).astype("uint8")
    x_test, y_test = files.batch("test_batch")
    x_test = np.asarray(x_test).astype(x_train.dtype)
    y_test = np.asarray(y_test).astype(y_train.dtype)
    return (channels(x_train), y_train.reshape(-1, 1)), (channels(x_test), y_test.reshape(-1, 1))
