"""The word-index sequence data sets (imdb, reuters): Keras's index shifting and filtering."""
import numpy as np


def shift_indices(seqs, start_char, index_from):
    """Each sequence with index_from added to its word indices, after start_char when given."""
    if start_char is not None:
        return [[start_char] + [w + index_from for w in s] for s in seqs]
    if index_from:
        return [[w + index_from for w in s] for s in seqs]
    return [list(s) for s in seqs]


def drop_long(maxlen, seqs, labels):
    """Only the sequences shorter than maxlen (and their labels)."""
    kept = [(s, y) for s, y in zip(seqs, labels) if len(s) < maxlen]
    return [s for s, _ in kept], [y for _, y in kept]


def limit_vocabulary(seqs, num_words, skip_top, oov_char):
    """Word indices outside [skip_top, num_words) replaced by oov_char (or dropped when it is None);
    num_words=None keeps every index up to the largest."""
    if not num_words:
        num_words = max(max(s) for s in seqs if len(s))
    if oov_char is not None:
        return [[w if skip_top <= w < num_words else oov_char for w in s] for s in seqs]
    return [[w for w in s if skip_top <= w < num_words] for s in seqs]


def as_object_array(seqs):
    """A 1-D object array of lists (numpy would make a 2-D array of equal-length sequences)."""
    out = np.empty(len(seqs), dtype=object)
    out[:] = [list(s) for s in seqs]
    return out
