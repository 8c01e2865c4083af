"""The random generator behind initializers, dropout and shuffling; seed it for reproducible runs."""
import random as _pyrandom

import numpy as np

_generator = np.random.default_rng()


def generator():
    return _generator


def set_seed(seed):
    """Seed engine's generator (and Python's and numpy's legacy ones, as keras.utils.set_random_seed does)."""
    global _generator
    _generator = np.random.default_rng(seed)
    np.random.seed(seed)
    _pyrandom.seed(seed)


def make_generator(seed=None):
    """A generator for one consumer: its own stream when seeded, the global one otherwise."""
    return _generator if seed is None else np.random.default_rng(seed)
