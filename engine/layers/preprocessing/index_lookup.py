"""Vocabulary lookups: StringLookup and IntegerLookup share IndexLookup.

Index layout (Keras 3's): with output_mode="int" and a mask token, index 0 is the mask; then
come `num_oov_indices` out-of-vocabulary indices, then the vocabulary.  `adapt` orders the
vocabulary by frequency, most frequent first, ties broken by the tokens in descending order
(strings by their UTF-8 bytes), and keeps at most `max_tokens` indices in all.
"""
import collections

import numpy as np

from engine import config
from engine.layers.base import Layer
from engine.layers.preprocessing import _encoding, _hashes
from engine.layers.preprocessing._base import to_numpy
from engine.layers.preprocessing.hashing import standardize_salt
from engine.saving.registry import register_builtins

_INT64_MAX = np.iinfo(np.int64).max


def inverse_document_frequency(document_counts, num_documents):
    """Keras's idf weight of a token found in `document_counts` of `num_documents` documents."""
    return np.log(1.0 + num_documents / (1.0 + np.asarray(document_counts, dtype=np.float64)))


class IndexLookup(Layer):
    """The shared implementation of StringLookup and IntegerLookup (see those for the arguments)."""

    def __init__(self, max_tokens, num_oov_indices, mask_token, oov_token, vocabulary_dtype, vocabulary=None,
                 idf_weights=None, invert=False, output_mode="int", sparse=False, pad_to_max_tokens=False,
                 oov_method="floormod", salt=None, name=None, **kwargs):
        kind = type(self).__name__
        frozen_size = kwargs.pop("vocabulary_size", None)
        has_input_vocabulary = kwargs.pop("has_input_vocabulary", vocabulary is not None)
        kwargs.pop("dtype", None)
        super().__init__(name=name, **kwargs)
        if max_tokens is not None and max_tokens <= 1:
            raise ValueError(f"{kind}: max_tokens must be greater than 1 when set, got {max_tokens}")
        if pad_to_max_tokens and max_tokens is None:
            raise ValueError(f"{kind}: pad_to_max_tokens=True needs max_tokens")
        if num_oov_indices < 0:
            raise ValueError(f"{kind}: num_oov_indices must be 0 or more, got {num_oov_indices}")
        if oov_method not in ("floormod", "farmhash"):
            raise ValueError(f"{kind}: oov_method must be 'floormod' or 'farmhash', got {oov_method!r}")
        if salt is not None and vocabulary_dtype != "string" and oov_method != "farmhash":
            raise ValueError(f"{kind}: salt can only be used with oov_method='farmhash'")
        salt = standardize_salt(salt, kind)
        output_mode = {"binary": "multi_hot", "tf-idf": "tf_idf"}.get(output_mode, output_mode)
        if output_mode not in _encoding.OUTPUT_MODES:
            raise ValueError(f"{kind}: output_mode must be one of {', '.join(_encoding.OUTPUT_MODES)}; "
                             f"got {output_mode!r}")
        if invert and output_mode != "int":
            raise ValueError(f"{kind}: invert=True needs output_mode='int', got {output_mode!r}")
        if sparse:
            raise ValueError(f"{kind}: sparse=True is not supported (engine has no sparse tensors)")
        if idf_weights is not None and output_mode != "tf_idf":
            raise ValueError(f"{kind}: idf_weights are only used with output_mode='tf_idf'")
        if output_mode == "tf_idf" and has_input_vocabulary and idf_weights is None:
            raise ValueError(f"{kind}: with a vocabulary and output_mode='tf_idf', idf_weights must be given too")
        self.invert = bool(invert)
        self.max_tokens = max_tokens
        self.num_oov_indices = int(num_oov_indices)
        self.mask_token = mask_token
        self.oov_token = oov_token
        self.output_mode = output_mode
        self.sparse = False
        self.pad_to_max_tokens = bool(pad_to_max_tokens)
        self.vocabulary_dtype = vocabulary_dtype
        self.oov_method = oov_method
        self.salt = salt
        self._frozen_vocab_size = frozen_size
        self.input_vocabulary = None if isinstance(vocabulary, str) else vocabulary
        self.input_idf_weights = idf_weights
        self._has_input_vocabulary = has_input_vocabulary
        self._tokens = []
        self._index = {}
        self.idf_weights = None
        self._reset_counts()
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, idf_weights)

    # -- indices -------------------------------------------------------------------------------
    def _oov_start_index(self):
        return 1 if self.mask_token is not None and self.output_mode == "int" else 0

    def _token_start_index(self):
        return self._oov_start_index() + self.num_oov_indices

    def vocabulary_size(self):
        """The number of indices: mask and OOV indices included."""
        return self._token_start_index() + len(self._tokens)

    def get_vocabulary(self, include_special_tokens=True):
        """The token of each index (mask and OOV tokens first, unless include_special_tokens=False)."""
        vocab = [self.mask_token] * self._oov_start_index() + [self.oov_token] * self.num_oov_indices \
            + list(self._tokens)
        return vocab if include_special_tokens else vocab[self._token_start_index():]

    def _token(self, value):
        """A vocabulary token in its canonical Python form (str, or int)."""
        if self.vocabulary_dtype == "string":
            return value.decode(getattr(self, "encoding", "utf-8")) if isinstance(value, bytes) else str(value)
        return int(value)

    def _tokens_array(self, values):
        """Input values as an array of canonical tokens (object array of str, or int64)."""
        values = to_numpy(values)
        if self.vocabulary_dtype == "string":
            if values.dtype.kind not in "USO":
                raise ValueError(f"{type(self).__name__} ({self.name!r}) takes strings, got an array of dtype "
                                 f"{values.dtype}")
            if values.dtype.kind == "U":
                return values
            return np.vectorize(self._token, otypes=[object])(values) if values.size else values.astype(object)
        if values.dtype.kind not in "iub":
            if values.dtype.kind == "f" and np.all(values == np.round(values)):
                return values.astype(np.int64)
            raise ValueError(f"{type(self).__name__} ({self.name!r}) takes integers, got an array of dtype "
                             f"{values.dtype}")
        return values.astype(np.int64)

    # -- the vocabulary ------------------------------------------------------------------------
    def set_vocabulary(self, vocabulary, idf_weights=None):
        """Use `vocabulary` (a list/array of tokens, or the path of a text file with one token a line;
        it may start with the mask and OOV tokens) instead of adapting; `idf_weights` (one per token)
        with output_mode="tf_idf"."""
        kind = type(self).__name__
        if self.output_mode == "tf_idf" and idf_weights is None:
            raise ValueError(f"{kind}: idf_weights must be given with output_mode='tf_idf'")
        if self.output_mode != "tf_idf" and idf_weights is not None:
            raise ValueError(f"{kind}: idf_weights are only used with output_mode='tf_idf'")
        if isinstance(vocabulary, str):
            if self.output_mode == "tf_idf":
                raise ValueError(f"{kind}: output_mode='tf_idf' cannot read its vocabulary from a file")
            try:
                with open(vocabulary, encoding="utf-8") as f:
                    lines = f.read().splitlines()
            except OSError as e:
                raise ValueError(f"{kind}: vocabulary file {vocabulary} could not be read ({e})") from None
            vocabulary = lines
        vocabulary = [self._token(v) for v in np.asarray(to_numpy(vocabulary)).reshape(-1).tolist()]
        if not vocabulary:
            raise ValueError(f"{kind}: cannot set an empty vocabulary")
        token_start = self._token_start_index()
        special = [self.mask_token] * self._oov_start_index() + [self.oov_token] * self.num_oov_indices
        found_special = vocabulary[:token_start] == special
        tokens = vocabulary[token_start:] if found_special else vocabulary
        repeated = [t for t, n in collections.Counter(tokens).items() if n > 1]
        if repeated:
            raise ValueError(f"{kind}: the vocabulary repeats {repeated}; give each token once")
        if self.mask_token is not None and self.mask_token in tokens:
            raise ValueError(f"{kind}: the mask token {self.mask_token!r} is in the vocabulary at an unexpected place; "
                             f"leave it out, or start the vocabulary with exactly {special}")
        if self.oov_token is not None and self.invert and self.oov_token in tokens:
            raise ValueError(f"{kind}: the OOV token {self.oov_token!r} is in the vocabulary at an unexpected place; "
                             f"leave it out, or start the vocabulary with exactly {special}")
        if self.max_tokens is not None and token_start + len(tokens) > self.max_tokens:
            raise ValueError(f"{kind}: the vocabulary has {token_start + len(tokens)} indices, more than "
                             f"max_tokens={self.max_tokens}")
        self._set_tokens(tokens)
        if self.output_mode == "tf_idf":
            weights = np.asarray(to_numpy(idf_weights), dtype=np.float64)
            if weights.ndim != 1 or len(weights) != len(vocabulary):
                raise ValueError(f"{kind}: idf_weights must be 1-D with one weight per vocabulary entry "
                                 f"({len(vocabulary)}), got shape {weights.shape}")
            front = 0 if found_special else token_start
            self._set_idf(weights, front, float(np.mean(weights)) if len(weights) else 0.0)

    def _set_tokens(self, tokens):
        if (self.output_mode != "int" and not self.pad_to_max_tokens and self._frozen_vocab_size is not None
                and self.built and self._token_start_index() + len(tokens) != self._frozen_vocab_size):
            raise ValueError(f"{type(self).__name__} ({self.name!r}): with output_mode={self.output_mode!r} and "
                             "pad_to_max_tokens=False the vocabulary size cannot change after the layer is "
                             f"called ({self._frozen_vocab_size} before, {self._token_start_index() + len(tokens)} now)")
        self._tokens = list(tokens)
        start = self._token_start_index()
        self._index = {t: start + i for i, t in enumerate(self._tokens)}
        self._frozen_vocab_size = self.vocabulary_size()

    def _set_idf(self, weights, front, front_value):
        weights = np.asarray(weights, dtype=config.floatx())
        back = self.max_tokens - front - len(weights) if self.pad_to_max_tokens else 0
        self.idf_weights = np.pad(weights, (front, max(back, 0)), constant_values=(front_value, 0)) \
            .astype(config.floatx())

    # -- adapt ----------------------------------------------------------------------------------
    def _reset_counts(self):
        self._counts = collections.Counter()
        self._document_counts = collections.Counter()
        self._num_documents = 0

    def reset_state(self):
        """Forget the counts of an adapt in progress."""
        self._reset_counts()

    def adapt(self, data, steps=None):
        """Learn the vocabulary (and, for tf_idf, the document frequencies) from data.

        Args:
            data: an array or list of tokens (each element of a 1-D array is one document), or an
                iterable of batches (a generator, a PyDataset-like object); batches may be (x, y) pairs.
            steps: read at most this many batches of an iterable.
        """
        self.reset_state()
        for batch in self._adapt_batches(data, steps):
            self.update_state(batch)
        self.finalize_state()

    def _adapt_batches(self, data, steps):
        from engine.layers.preprocessing._base import adapt_batches
        whole = isinstance(data, (list, tuple, np.ndarray)) or hasattr(data, "_value")
        if whole:
            arr = to_numpy(data)
            yield arr[:, None] if arr.ndim == 1 else arr
            return
        for i, batch in enumerate(adapt_batches(data, type(self).__name__ + ".adapt")):
            if steps is not None and i >= steps:
                break
            yield batch

    def _documents(self, data):
        """A batch as a list of 1-D token arrays, one per document."""
        arr = self._tokens_array(data)
        if arr.ndim == 0:
            arr = arr[None]
        if arr.ndim == 1:
            arr = arr[None]
        return [row.reshape(-1) for row in arr]

    def update_state(self, data):
        """Count the tokens of one batch (see adapt)."""
        self._check_adaptable()
        self._count_documents(self._documents(data))

    def _check_adaptable(self):
        if self._has_input_vocabulary:
            raise ValueError(f"{type(self).__name__} ({self.name!r}): cannot adapt after a vocabulary was given "
                             "(the vocabulary argument or set_vocabulary)")

    def _count_documents(self, documents):
        for doc in documents:
            values = doc.tolist()
            self._counts.update(values)
            if self.output_mode == "tf_idf":
                self._document_counts.update(set(values))
        if self.output_mode == "tf_idf":
            self._num_documents += len(documents)

    def finalize_state(self):
        """Turn the counts into the vocabulary: most frequent first, ties by token descending."""
        if self._has_input_vocabulary or not self._counts:
            return
        counts = dict(self._counts)
        for special in (self.mask_token, self.oov_token):
            counts.pop(special, None)
        order = sorted(counts, key=self._sort_key, reverse=True)
        if self.max_tokens:
            order = order[:max(self.max_tokens - self._token_start_index(), 0)]
        self._set_tokens(order)
        if self.output_mode == "tf_idf":
            weights = inverse_document_frequency([self._document_counts[t] for t in order], self._num_documents)
            weights = weights.astype(config.floatx())
            self._set_idf(weights, self._token_start_index(), float(np.mean(weights)) if len(weights) else 0.0)
        self.reset_state()

    def _sort_key(self, token):
        count = self._counts[token]
        return (count, token.encode("utf-8")) if isinstance(token, str) else (count, token)

    # -- lookups --------------------------------------------------------------------------------
    def _lookup(self, tokens):
        """Indices of an array of tokens (mask and OOV handling included)."""
        flat = tokens.reshape(-1)
        uniques, inverse = np.unique(flat, return_inverse=True) if flat.size else (flat, flat.astype(np.int64))
        missing = -1
        found = np.array([self._index.get(t, missing) for t in uniques.tolist()], dtype=np.int64)
        if self.mask_token is not None:
            mask_value = 0 if self.output_mode == "int" else _INT64_MAX
            found = np.where(np.array([t == self.mask_token for t in uniques.tolist()], dtype=bool), mask_value, found)
        oov = found == missing
        if oov.any():
            if self.num_oov_indices == 0:
                raise ValueError(f"{type(self).__name__} ({self.name!r}): with num_oov_indices=0 every input must be "
                                 f"in the vocabulary; found {uniques[oov][:10].tolist()}. Set num_oov_indices=1 "
                                 "(or more) to map unknown values to OOV indices")
            found[oov] = self._oov_indices(uniques[oov]) + self._oov_start_index()
        return found[inverse].reshape(tokens.shape)

    def _oov_indices(self, values):
        """OOV index (0 .. num_oov_indices - 1) of each unknown value, as Keras picks it: integers modulo
        the count ("floormod"), else the hash of the string (or of the integer's decimal string)."""
        n = self.num_oov_indices
        if n == 1:
            return np.zeros(len(values), dtype=np.int64)
        if self.vocabulary_dtype != "string" and self.oov_method != "farmhash":
            return np.mod(np.asarray(values, dtype=np.int64), n)
        if self.vocabulary_dtype == "string":
            strings = [str(v).encode(getattr(self, "encoding", "utf-8")) for v in values]
        else:
            strings = [str(int(v)).encode() for v in values]
        if self.salt is None:
            return np.array([_hashes.fingerprint64(s) % n for s in strings], dtype=np.int64)
        return np.array([_hashes.siphash24(self.salt[0], self.salt[1], s) % n for s in strings], dtype=np.int64)

    def _invert(self, indices):
        indices = np.asarray(indices).astype(np.int64)
        table = np.array(self.get_vocabulary(), dtype=object)
        size = len(table)
        valid = (indices >= self._token_start_index()) & (indices < size)
        out = np.full(indices.shape, self.oov_token, dtype=object)
        out[valid] = table[indices[valid]]
        if self.mask_token is not None:
            out[indices == 0] = self.mask_token
        if self.vocabulary_dtype == "string":
            return out.astype(str) if out.size else out.astype("<U1")
        return out.astype(np.int64)

    def _depth(self):
        return self.max_tokens if self.pad_to_max_tokens else self._frozen_vocab_size

    def call(self, inputs):
        if self.invert:
            return self._invert(to_numpy(inputs))
        if self.output_mode != "int" and not self.pad_to_max_tokens and self._frozen_vocab_size is None:
            raise ValueError(f"{type(self).__name__} ({self.name!r}): with output_mode={self.output_mode!r} and "
                             "pad_to_max_tokens=False, set the vocabulary (the vocabulary argument or adapt) "
                             "before calling the layer")
        indices = self._lookup(self._tokens_array(inputs))
        if self.output_mode == "int":
            return indices
        mode = "count" if self.output_mode == "tf_idf" else self.output_mode
        out = _encoding.encode(indices, mode, self._depth(), self._encoded_dtype())
        if self.output_mode == "tf_idf":
            if self.idf_weights is None:
                raise ValueError(f"{type(self).__name__} ({self.name!r}): output_mode='tf_idf' needs idf weights; "
                                 "adapt the layer or give idf_weights")
            out = (out * self.idf_weights).astype(config.floatx())
        return out

    def _encoded_dtype(self):
        return np.int64 if self.output_mode != "tf_idf" else config.floatx()

    def _output_dtype(self, inputs):
        if self.invert:
            return "string" if self.vocabulary_dtype == "string" else "int64"
        return "int64" if self.output_mode == "int" else config.floatx()

    def compute_output_shape(self, input_shape):
        return _encoding.encoded_shape(input_shape, self.output_mode, self._depth())

    # -- saving ---------------------------------------------------------------------------------
    def save_assets(self, dir_path):
        """Write the vocabulary (special tokens first) to dir_path/vocabulary.txt, as Keras does, unless
        it was given in the config."""
        if self.input_vocabulary is not None:
            return
        import os
        with open(os.path.join(dir_path, "vocabulary.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(str(w) for w in self.get_vocabulary()))

    def load_assets(self, dir_path):
        """Read the vocabulary save_assets wrote."""
        if self.input_vocabulary is not None:
            return
        import os
        with open(os.path.join(dir_path, "vocabulary.txt"), encoding="utf-8") as f:
            lines = f.read().splitlines()
        while lines and lines[-1] == "":
            lines.pop()
        values = lines if self.vocabulary_dtype == "string" else [int(v) for v in lines]
        idf = self.idf_weights if self.output_mode == "tf_idf" else None
        if idf is not None:
            idf = idf[:len(values)]   # the stored weights start with the special tokens' as the vocabulary does
        if values:
            self.set_vocabulary(values, idf_weights=idf)

    def save_own_variables(self, store):
        """Keras stores only the idf weights of a tf_idf layer ("idf_weights")."""
        if self.output_mode == "tf_idf":
            store["idf_weights"] = np.asarray(self.idf_weights)

    def load_own_variables(self, store):
        """Read back what save_own_variables stored."""
        if self.output_mode == "tf_idf":
            self.idf_weights = np.asarray(store["idf_weights"], dtype=config.floatx())

    def get_config(self):
        def listed(v):
            if v is None:
                return None
            return np.asarray(to_numpy(v)).tolist() if not isinstance(v, list) else list(v)
        return {**super().get_config(), "invert": self.invert, "max_tokens": self.max_tokens,
                "num_oov_indices": self.num_oov_indices, "oov_token": self.oov_token, "mask_token": self.mask_token,
                "output_mode": self.output_mode, "sparse": self.sparse, "pad_to_max_tokens": self.pad_to_max_tokens,
                "vocabulary_dtype": self.vocabulary_dtype, "idf_weights": listed(self.input_idf_weights),
                "vocabulary": listed(self.input_vocabulary), "vocabulary_size": self._frozen_vocab_size,
                "oov_method": self.oov_method, "salt": self.salt}


class StringLookup(IndexLookup):
    """Map strings to integer indices from a vocabulary (or back, with invert=True).

    Args:
        max_tokens: the most indices there can be (mask and OOV indices included); None: no limit.
        num_oov_indices: how many indices unknown strings share (a string's OOV index is its
            FarmHash Fingerprint64 modulo this, as in Keras); 0 makes an unknown string an error.
        mask_token: a string standing for masked input (index 0 in "int" mode), or None.
        oov_token: the token `invert` gives for OOV indices ("[UNK]").
        vocabulary: the tokens (a list or array, or the path of a file with one token a line),
            instead of `adapt`.
        idf_weights: with output_mode="tf_idf" and a vocabulary: one idf weight per token.
        invert: map indices back to strings.
        output_mode: "int", "one_hot", "multi_hot", "count" or "tf_idf".
        pad_to_max_tokens: encoded outputs have max_tokens entries even when the vocabulary is smaller.
        sparse: must be False (engine has no sparse tensors).
        encoding: the text encoding of byte-string inputs ("utf-8").
        salt: with num_oov_indices > 1: hash OOV strings with SipHash keyed by this instead.
    """

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token="[UNK]", vocabulary=None,
                 idf_weights=None, invert=False, output_mode="int", pad_to_max_tokens=False, sparse=False,
                 encoding="utf-8", name=None, salt=None, **kwargs):
        self.encoding = encoding
        kwargs.pop("vocabulary_dtype", None)
        super().__init__(max_tokens=max_tokens, num_oov_indices=num_oov_indices, mask_token=mask_token,
                         oov_token=oov_token, vocabulary=vocabulary, idf_weights=idf_weights, invert=invert,
                         output_mode=output_mode, pad_to_max_tokens=pad_to_max_tokens, sparse=sparse, name=name,
                         salt=salt, vocabulary_dtype="string", **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["vocabulary_dtype"]
        return {**config, "encoding": self.encoding}


class IntegerLookup(IndexLookup):
    """Map integers to contiguous indices from a vocabulary (or back, with invert=True).

    Args:
        max_tokens, num_oov_indices, vocabulary, idf_weights, invert, output_mode, pad_to_max_tokens,
            sparse, salt: as in StringLookup (an unknown integer's OOV index is the integer modulo
            num_oov_indices, or its hash with oov_method="farmhash").
        mask_token: an integer standing for masked input (index 0 in "int" mode), or None.
        oov_token: the value `invert` gives for OOV indices (-1).
        vocabulary_dtype: "int64" (the only one Keras has).
        oov_method: "floormod" or "farmhash".
    """

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token=-1, vocabulary=None,
                 vocabulary_dtype="int64", idf_weights=None, invert=False, output_mode="int", sparse=False,
                 pad_to_max_tokens=False, oov_method="floormod", salt=None, name=None, **kwargs):
        if vocabulary_dtype != "int64":
            raise ValueError(f"IntegerLookup: only vocabulary_dtype='int64' is supported, got {vocabulary_dtype!r}")
        super().__init__(max_tokens=max_tokens, num_oov_indices=num_oov_indices, mask_token=mask_token,
                         oov_token=oov_token, vocabulary=vocabulary, vocabulary_dtype=vocabulary_dtype,
                         idf_weights=idf_weights, invert=invert, output_mode=output_mode, sparse=sparse,
                         pad_to_max_tokens=pad_to_max_tokens, oov_method=oov_method, salt=salt, name=name, **kwargs)

    def get_config(self):
        config = super().get_config()
        for key in ("oov_token", "mask_token"):
            if config[key] is not None:
                config[key] = int(config[key])
        if config["vocabulary"] is not None:
            config["vocabulary"] = [int(v) for v in config["vocabulary"]]
        return config


register_builtins("layers", globals())  # loadable from .keras configs by class name
