"""keras.datasets.california_housing: California districts, 8 features, median house value."""
import numpy as np

from engine.datasets._cache import cached_path, check_test_split, shuffled, split


def load_data(version="large", path="california_housing.npz", test_split=0.2, seed=113):
    """The California housing data from Keras's cached california_housing.npz, shuffled with numpy's
    RandomState(seed); the first 1 - test_split of the rows train.

    Args:
        version: "large" (all 20,640 rows) or "small" (the first 600).
        path: the file name in Keras's cache folder.
        test_split: the fraction of rows held out.
        seed: the shuffling seed.
    """
    check_test_split(test_split)
    if version not in ("large", "small"):
        raise ValueError(f"california_housing.load_data: version must be 'small' or 'large', got {version!r}")
    with np.load(cached_path(path, what="california_housing.load_data"), allow_pickle=False) as f:
        x, y = f["x"], f["y"]
    if version == "small":
        x, y = x[:600], y[:600]
    return split(*shuffled(seed, x, y), test_split)
