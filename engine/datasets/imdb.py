"""keras.datasets.imdb: 50,000 movie reviews as word-index sequences with 0/1 sentiment labels."""
import json

import numpy as np

from engine.datasets import _sequences
from engine.datasets._cache import cached_path, load_npz


def load_data(path="imdb.npz", num_words=None, skip_top=0, maxlen=None, seed=113, start_char=1, oov_char=2,
              index_from=3, **kwargs):
    """The IMDB reviews, read from Keras's cached imdb.npz (`~/.keras/datasets/imdb.npz`), as Keras
    prepares them: each split shuffled with numpy's RandomState(seed), word indices shifted by
    index_from after start_char, sequences of maxlen or more words dropped, indices outside
    [skip_top, num_words) replaced by oov_char.

    Args:
        path: the file name in Keras's cache folder.
        num_words: keep the num_words - 1 most frequent words (the rest become oov_char); None: all.
        skip_top: also replace the skip_top most frequent words.
        maxlen: drop reviews with maxlen words or more.
        seed: the shuffling seed.
        start_char: the index each review starts with (None: no start index).
        oov_char: the index of replaced words (None: drop them).
        index_from: added to every word index.

    Returns:
        (x_train, y_train), (x_test, y_test): object arrays of index lists and label arrays.
    """
    if kwargs:
        raise TypeError(f"imdb.load_data: unrecognized keyword arguments {sorted(kwargs)}")
    data = load_npz(cached_path(path, what="imdb.load_data"))
    rng = np.random.RandomState(seed)
    x_train, y_train = data["x_train"], data["y_train"]
    x_test, y_test = data["x_test"], data["y_test"]
    # One generator shuffles both splits in turn, as Keras does.
    order = np.arange(len(x_train))
    rng.shuffle(order)
    x_train, y_train = x_train[order], y_train[order]
    order = np.arange(len(x_test))
    rng.shuffle(order)
    x_test, y_test = x_test[order], y_test[order]
    x_train = _sequences.shift_indices(x_train, start_char, index_from)
    x_test = _sequences.shift_indices(x_test, start_char, index_from)
    if maxlen:
        x_train, y_train = _sequences.drop_long(maxlen, x_train, y_train)
        x_test, y_test = _sequences.drop_long(maxlen, x_test, y_test)
        if not x_train or not x_test:
            raise ValueError(f"imdb.load_data: no review is shorter than maxlen={maxlen}; increase maxlen")
    xs = _sequences.limit_vocabulary(x_train + x_test, num_words, skip_top, oov_char)
    labels = np.concatenate([np.asarray(y_train), np.asarray(y_test)])
    n = len(x_train)
    return ((_sequences.as_object_array(xs[:n]), labels[:n]), (_sequences.as_object_array(xs[n:]), labels[n:]))


def get_word_index(path="imdb_word_index.json"):
    """The {word: index} dictionary of the reviews, from Keras's cached imdb_word_index.json."""
    with open(cached_path(path, what="imdb.get_word_index"), encoding="utf-8") as f:
        return json.load(f)
