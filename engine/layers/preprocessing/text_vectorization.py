"""The TextVectorization layer: standardize, split, ngrams, then a StringLookup (mask "", OOV "[UNK]")."""
import re

import numpy as np

from engine import config
from engine.layers.base import Layer
from engine.layers.preprocessing import _encoding
from engine.layers.preprocessing._base import to_numpy
from engine.layers.preprocessing.index_lookup import StringLookup
from engine.saving.registry import register_builtins

# TensorFlow's string ops, which Keras uses: lower() changes ASCII letters only, the punctuation
# class is Keras's, and whitespace splitting breaks at ASCII whitespace only.
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_PUNCTUATION = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')
_WHITESPACE = re.compile(r"[ \t\n\r\f\v]+")
_STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation")
_SPLIT = ("whitespace", "character")


def _decode(value, encoding):
    return value.decode(encoding) if isinstance(value, bytes) else str(value)


def ngrams(tokens, widths):
    """All ngrams of each width in `widths`, joined by spaces: every unigram, then every bigram, ...
    (a sequence shorter than a width gives none of that width), as tf.strings.ngrams."""
    out = []
    for n in widths:
        out.extend(" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
    return out


class TextVectorization(Layer):
    """Turn strings into token indices or token vectors, learning the vocabulary with `adapt`.

    Args:
        max_tokens: the most indices (mask "" and OOV "[UNK]" included); None: no limit.
        standardize: "lower_and_strip_punctuation" (default), "lower", "strip_punctuation", None, or
            a function from a numpy array of strings to such an array.
        split: "whitespace" (default), "character", None (each input string is one token), or a
            function from a 1-D numpy array of strings to a list of token lists.
        ngrams: None, an int n (the 1- to n-grams), or a tuple of widths.
        output_mode: "int" (token indices), "multi_hot", "count" or "tf_idf" ("binary" is multi_hot).
        output_sequence_length: with "int": pad or truncate every sequence to this length (None: pad
            to the longest in the batch).
        pad_to_max_tokens: encoded outputs have max_tokens entries even when the vocabulary is smaller.
        vocabulary: the tokens (a list, or a file path with one a line), instead of adapt.
        idf_weights: with "tf_idf" and a vocabulary: one weight per token.
        sparse, ragged: must be False (engine has neither sparse nor ragged tensors).
        encoding: the text encoding of byte-string inputs.
    """

    def __init__(self, max_tokens=None, standardize="lower_and_strip_punctuation", split="whitespace", ngrams=None,
                 output_mode="int", output_sequence_length=None, pad_to_max_tokens=False, vocabulary=None,
                 idf_weights=None, sparse=False, ragged=False, encoding="utf-8", name=None, **kwargs):
        has_input_vocabulary = kwargs.pop("has_input_vocabulary", vocabulary is not None)
        vocabulary_size = kwargs.pop("vocabulary_size", None)
        super().__init__(name=name, **kwargs)
        if not (standardize is None or callable(standardize) or standardize in _STANDARDIZE):
            raise ValueError(f"TextVectorization: standardize must be one of {_STANDARDIZE}, None or a function; got "
                             f"{standardize!r}")
        if not (split is None or callable(split) or split in _SPLIT):
            raise ValueError(f"TextVectorization: split must be 'whitespace', 'character', None or a function; got "
                             f"{split!r}")
        if output_mode == "binary":
            output_mode = "multi_hot"
        if output_mode not in ("int", "multi_hot", "count", "tf_idf"):
            raise ValueError(f"TextVectorization: output_mode must be 'int', 'multi_hot', 'count' or 'tf_idf'; got "
                             f"{output_mode!r}")
        if isinstance(ngrams, list):
            ngrams = tuple(ngrams)
        if not (ngrams is None or isinstance(ngrams, int)
                or (isinstance(ngrams, tuple) and all(isinstance(n, int) for n in ngrams))):
            raise ValueError(f"TextVectorization: ngrams must be None, an integer or a tuple of integers; got {ngrams!r}")
        if output_mode == "int" and not (output_sequence_length is None or isinstance(output_sequence_length, int)):
            raise ValueError("TextVectorization: output_sequence_length must be None or an integer; got "
                             f"{output_sequence_length!r}")
        if output_mode != "int" and output_sequence_length is not None:
            raise ValueError("TextVectorization: output_sequence_length applies to output_mode='int' only")
        if sparse or ragged:
            raise ValueError("TextVectorization: sparse=True and ragged=True are not supported (engine has no sparse "
                             "or ragged tensors); leave them False")
        self._max_tokens = max_tokens
        self._standardize = standardize
        self._split = split
        self._ngrams_arg = ngrams
        self._ngrams = tuple(range(1, ngrams + 1)) if isinstance(ngrams, int) else ngrams
        self._output_mode = output_mode
        self._output_sequence_length = output_sequence_length
        self._encoding = encoding
        self._has_input_vocabulary = has_input_vocabulary
        self._lookup_layer = StringLookup(max_tokens=max_tokens, vocabulary=vocabulary, idf_weights=idf_weights,
                                          pad_to_max_tokens=pad_to_max_tokens, mask_token="", output_mode=output_mode,
                                          has_input_vocabulary=has_input_vocabulary, encoding=encoding,
                                          vocabulary_size=vocabulary_size)

    # -- preprocessing --------------------------------------------------------------------------
    def build(self, input_shape=None):
        """Nothing to build from shapes: the state is the lookup's vocabulary (as Keras's, whose
        build is empty; it also keeps the symbolic call from running an unadapted layer)."""
        self.built = True

    def _strings(self, inputs):
        """Inputs as a numpy array of Python strings (bytes decoded)."""
        arr = to_numpy(inputs)
        if arr.dtype.kind == "U":
            return arr
        if arr.dtype.kind not in "SO":
            raise ValueError(f"TextVectorization ({self.name!r}) takes strings, got an array of dtype {arr.dtype}")
        if not arr.size:
            return arr.astype(str)
        return np.vectorize(lambda v: _decode(v, self._encoding), otypes=[object])(arr).astype(str)

    def _standardized(self, strings):
        if callable(self._standardize):
            return np.asarray(self._standardize(strings)).astype(str)
        if self._standardize is None:
            return strings
        def one(text):
            if self._standardize in ("lower_and_strip_punctuation", "lower"):
                text = text.translate(_ASCII_LOWER)
            if self._standardize in ("lower_and_strip_punctuation", "strip_punctuation"):
                text = _PUNCTUATION.sub("", text)
            return text
        return np.vectorize(one, otypes=[object])(strings).astype(str) if strings.size else strings

    def _preprocess(self, inputs):
        """Standardized tokens: a list of token lists (one per string) when splitting, else an array."""
        strings = self._standardized(self._strings(inputs))
        if self._split is None:
            if self._ngrams is None:
                return strings
            return [ngrams([t], self._ngrams) for t in strings.reshape(-1).tolist()]
        if strings.ndim > 1:
            if strings.shape[-1] != 1:
                raise ValueError(f"TextVectorization ({self.name!r}): when splitting, inputs must be strings of shape "
                                 f"(batch,) or (batch, 1); got shape {strings.shape}")
            strings = strings.reshape(strings.shape[:-1])
        if strings.ndim == 0:
            strings = strings.reshape(1)
        texts = strings.tolist()
        if self._split == "whitespace":
            docs = [[t for t in _WHITESPACE.split(text) if t] for text in texts]
        elif self._split == "character":
            docs = [list(text) for text in texts]
        else:
            docs = [[_decode(t, self._encoding) for t in np.asarray(doc).reshape(-1).tolist()]
                    for doc in self._split(np.asarray(texts, dtype=str))]
        if self._ngrams is not None:
            docs = [ngrams(doc, self._ngrams) for doc in docs]
        return docs

    # -- the vocabulary ------------------------------------------------------------------------
    def adapt(self, data, batch_size=None, steps=None):
        """Learn the vocabulary from strings: an array or list (each string one document) or an iterable
        of batches of strings; `steps` caps the batches read from an iterable."""
        self.reset_state()
        for batch in self._lookup_layer._adapt_batches(data, steps):
            self.update_state(batch)
        self.finalize_state()

    def update_state(self, data):
        """Count the tokens of one batch of strings (see adapt)."""
        tokens = self._preprocess(data)
        if isinstance(tokens, list):
            self._lookup_layer._check_adaptable()
            self._lookup_layer._count_documents([np.asarray(doc, dtype=object) for doc in tokens])
        else:
            self._lookup_layer.update_state(tokens)

    def finalize_state(self):
        """Turn the counts into the vocabulary."""
        self._lookup_layer.finalize_state()

    def reset_state(self):
        """Forget the counts of an adapt in progress."""
        self._lookup_layer.reset_state()

    def get_vocabulary(self, include_special_tokens=True):
        """The token of each index ("" and "[UNK]" first, unless include_special_tokens=False)."""
        return self._lookup_layer.get_vocabulary(include_special_tokens)

    def vocabulary_size(self):
        """The number of indices, "" and "[UNK]" included."""
        return self._lookup_layer.vocabulary_size()

    def set_vocabulary(self, vocabulary, idf_weights=None):
        """Use `vocabulary` (and, with tf_idf, `idf_weights`) instead of adapting."""
        self._lookup_layer.set_vocabulary(vocabulary, idf_weights=idf_weights)

    # -- calling --------------------------------------------------------------------------------
    def call(self, inputs):
        tokens = self._preprocess(inputs)
        lookup = self._lookup_layer
        if not isinstance(tokens, list):
            return lookup.call(tokens)
        rows = [lookup._lookup(np.asarray(doc, dtype=object).reshape(-1)) if doc else np.zeros(0, np.int64)
                for doc in tokens]
        if self._output_mode == "int":
            length = self._output_sequence_length
            if length is None:
                length = max((len(r) for r in rows), default=0)
            out = np.zeros((len(rows), length), dtype=np.int64)
            for i, r in enumerate(rows):
                out[i, :min(len(r), length)] = r[:length]
            return out
        longest = max((len(r) for r in rows), default=0)
        padded = np.full((len(rows), longest), -1, dtype=np.int64)   # -1 encodes to nothing
        for i, r in enumerate(rows):
            padded[i, :len(r)] = r
        mode = "count" if self._output_mode == "tf_idf" else self._output_mode
        out = _encoding.encode(padded, mode, lookup._depth(), lookup._encoded_dtype())
        if self._output_mode == "tf_idf":
            out = (out * lookup.idf_weights).astype(config.floatx())
        return out

    def _output_dtype(self, inputs):
        return "int64" if self._output_mode in ("int", "multi_hot", "count") else config.floatx()

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if self._output_mode == "int":
            return (input_shape[0] if input_shape else None, self._output_sequence_length)
        if self._split is None:
            shape = input_shape + (1,) if len(input_shape) <= 1 else input_shape
        else:
            shape = input_shape + (None,)
        return self._lookup_layer.compute_output_shape(shape)

    # -- saving ---------------------------------------------------------------------------------
    def save_own_variables(self, store):
        """The inner StringLookup's arrays (tf_idf weights), as Keras stores them."""
        self._lookup_layer.save_own_variables(store)

    def load_own_variables(self, store):
        """Read back what save_own_variables stored."""
        self._lookup_layer.load_own_variables(store)

    def save_assets(self, dir_path):
        """The vocabulary, as dir_path/vocabulary.txt."""
        self._lookup_layer.save_assets(dir_path)

    def load_assets(self, dir_path):
        """Read the vocabulary save_assets wrote."""
        self._lookup_layer.load_assets(dir_path)

    def get_config(self):
        from engine.saving.serialization import serialize_keras_object
        lookup = self._lookup_layer
        config = {"max_tokens": lookup.max_tokens, "standardize": self._standardize, "split": self._split,
                  "ngrams": self._ngrams_arg, "output_mode": self._output_mode,
                  "output_sequence_length": self._output_sequence_length,
                  "pad_to_max_tokens": lookup.pad_to_max_tokens, "sparse": False, "ragged": False,
                  "vocabulary": lookup.get_config()["vocabulary"], "idf_weights": lookup.get_config()["idf_weights"],
                  "encoding": self._encoding, "vocabulary_size": lookup.vocabulary_size()}
        for key in ("standardize", "split"):
            if callable(config[key]):
                config[key] = serialize_keras_object(config[key])
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config):
        from engine.saving.serialization import deserialize_keras_object
        config = dict(config)
        for key in ("standardize", "split"):
            if config.get(key) is not None and not isinstance(config[key], str):
                config[key] = deserialize_keras_object(config[key])
        return cls(**config)


register_builtins("layers", globals())  # loadable from .keras configs by class name
