"""keras.datasets.boston_housing: 506 Boston suburbs, 13 features, median home value."""
import numpy as np

from engine.datasets._cache import cached_path, check_test_split, shuffled, split


def load_data(path="boston_housing.npz", test_split=0.2, seed=113):
    """The Boston housing data from Keras's cached boston_housing.npz, shuffled with numpy's
    RandomState(seed); the first 1 - test_split of the rows train.

    Returns:
        (x_train, y_train), (x_test, y_test).
    """
    check_test_split(test_split)
    with np.load(cached_path(path, what="boston_housing.load_data"), allow_pickle=False) as f:
        x, y = f["x"], f["y"]
    return split(*shuffled(seed, x, y), test_split)
