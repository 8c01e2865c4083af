"""keras.datasets.reuters: 11,228 newswires as word-index sequences, labelled with 46 topics."""
import json

import numpy as np

from engine.datasets import _sequences
from engine.datasets._cache import cached_path, load_npz, shuffled

_LABELS = ("cocoa", "grain", "veg-oil", "earn", "acq", "wheat", "copper", "housing", "money-supply", "coffee", "sugar",
           "trade", "reserves", "ship", "cotton", "carcass", "crude", "nat-gas", "cpi", "money-fx", "interest", "gnp",
           "meal-feed", "alum", "oilseed", "gold", "tin", "strategic-metal", "livestock", "retail", "ipi",
           "iron-steel", "rubber", "heat", "jobs", "lei", "bop", "zinc", "orange", "pet-chem", "dlr", "gas", "silver",
           "wpi", "hog", "lead")


def load_data(path="reuters.npz", num_words=None, skip_top=0, maxlen=None, test_split=0.2, seed=113, start_char=1,
              oov_char=2, index_from=3):
    """The Reuters newswires, read from Keras's cached reuters.npz, prepared as Keras does (shuffled
    with RandomState(seed), indices shifted, long sequences dropped, rare words replaced), then the
    first 1 - test_split of them for training.

    Args:
        path, num_words, skip_top, maxlen, seed, start_char, oov_char, index_from: as in imdb.load_data.
        test_split: the fraction of the newswires held out for testing.

    Returns:
        (x_train, y_train), (x_test, y_test): object arrays of index lists and topic labels.
    """
    data = load_npz(cached_path(path, what="reuters.load_data"))
    xs, labels = shuffled(seed, data["x"], data["y"])
    xs = _sequences.shift_indices(xs, start_char, index_from)
    if maxlen:
        xs, labels = _sequences.drop_long(maxlen, xs, labels)
    xs = _sequences.limit_vocabulary(xs, num_words, skip_top, oov_char)
    n = int(len(xs) * (1 - test_split))
    return ((_sequences.as_object_array(xs[:n]), np.array(labels[:n])),
            (_sequences.as_object_array(xs[n:]), np.array(labels[n:])))


def get_word_index(path="reuters_word_index.json"):
    """The {word: index} dictionary of the newswires, from Keras's cached reuters_word_index.json."""
    with open(cached_path(path, what="reuters.get_word_index"), encoding="utf-8") as f:
        return json.load(f)


def get_label_names():
    """The names of the 46 topics, in label order."""
    return _LABELS
