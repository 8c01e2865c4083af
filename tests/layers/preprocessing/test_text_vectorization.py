"""TextVectorization against Keras 3.15's (TensorFlow backend) outputs written out here, and the
.keras round trip with a Keras-made file holding TextVectorization and Normalization."""
import json
import os

import numpy as np
import pytest

import engine
from engine import layers
from engine.saving import register_keras_serializable

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "data")


def test_default_standardize_split_and_padding():
    layer = layers.TextVectorization()
    layer.adapt(["The cat sat on the mat.", "The dog ate my homework", "a b a b c"])
    assert layer.get_vocabulary() == ["", "[UNK]", "the", "b", "a", "sat", "on", "my", "mat", "homework", "dog", "cat",
                                      "c", "ate"]
    out = layer(["the cat sat", "A dog b zebra words more"])
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, [[2, 11, 5, 0, 0, 0], [4, 10, 3, 1, 1, 1]])   # padded to the longest


def test_output_sequence_length_ngrams_and_batches():
    layer = layers.TextVectorization(ngrams=3)
    layer.adapt(["a b c d", "b c"])
    assert layer.get_vocabulary() == ["", "[UNK]", "c", "b c", "b", "d", "c d", "b c d", "a b c", "a b", "a"]
    np.testing.assert_array_equal(layer(["a b c d", "x", ""]), [[10, 4, 2, 5, 9, 3, 6, 8, 7], [1] + [0] * 8, [0] * 9])

    def batches():
        texts = ["The quick brown fox.", "The lazy dog!", "A quick dog, a quick fox"]
        yield np.array(texts[:2])
        yield np.array(texts[2:])
    fixed = layers.TextVectorization(max_tokens=5000, output_sequence_length=6)
    fixed.adapt(batches())
    assert fixed.get_vocabulary() == ["", "[UNK]", "quick", "the", "fox", "dog", "a", "lazy", "brown"]
    np.testing.assert_array_equal(fixed(["the quick red fox jumps over"]), [[3, 2, 1, 4, 1, 1]])
    np.testing.assert_array_equal(fixed(["quick " * 10]), [[2] * 6])                      # truncated


def test_standardize_and_split_options():
    chars = layers.TextVectorization(split="character", output_sequence_length=4, standardize="lower")
    chars.adapt(["AbC", "ab"])
    assert chars.get_vocabulary() == ["", "[UNK]", "b", "a", "c"]
    np.testing.assert_array_equal(chars(np.array([["ABCD"], ["A"]])), [[3, 2, 4, 1], [3, 0, 0, 0]])
    whole = layers.TextVectorization(split=None, standardize=None)
    whole.adapt(np.array(["x", "y", "y"]))
    np.testing.assert_array_equal(whole(np.array([["x"], ["y"], ["q"]])), [[3], [2], [1]])
    punct = layers.TextVectorization(standardize="strip_punctuation")
    punct.adapt(["It's A-OK, (really)? yes_no [x] {y} ~z @w"])
    assert punct.get_vocabulary() == ["", "[UNK]", "z", "yesno", "y", "x", "w", "really", "Its", "AOK"]
    lower = layers.TextVectorization(standardize="lower")
    lower.adapt(["ÀB ab"])                                   # TensorFlow lowers ASCII letters only
    assert lower.get_vocabulary() == ["", "[UNK]", "Àb", "ab"]        # ties: UTF-8 bytes, descending
    spaces = layers.TextVectorization()
    spaces.adapt(["a\u00a0b c\td"])                          # ASCII whitespace splits, a no-break space does not
    assert sorted(spaces.get_vocabulary()[2:]) == ["a\u00a0b", "c", "d"]

    def shout(texts):
        return np.char.upper(texts)

    def on_commas(texts):
        return [t.split(",") for t in texts]
    custom = layers.TextVectorization(standardize=shout, split=on_commas)
    custom.adapt(["a,b,b", "c"])
    assert custom.get_vocabulary() == ["", "[UNK]", "B", "C", "A"]
    np.testing.assert_array_equal(custom(["b,a"]), [[2, 4]])
    with pytest.raises(ValueError, match="standardize"):
        layers.TextVectorization(standardize="upper")
    with pytest.raises(ValueError, match="output_sequence_length"):
        layers.TextVectorization(output_mode="count", output_sequence_length=3)


def test_encoded_modes_match_keras():
    multi = layers.TextVectorization(output_mode="multi_hot")
    multi.adapt(["Hello, World!", "hello there"])
    assert multi.get_vocabulary() == ["[UNK]", "hello", "world", "there"]
    np.testing.assert_array_equal(multi(["hello world", "nope"]), [[0, 1, 1, 0], [1, 0, 0, 0]])
    count = layers.TextVectorization(output_mode="count", pad_to_max_tokens=True, max_tokens=6)
    count.adapt(["Hello, World!", "hello there"])
    np.testing.assert_array_equal(count(["hello hello world", "nope"]), [[0, 2, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]])
    tf_idf = layers.TextVectorization(output_mode="tf_idf")
    tf_idf.adapt(["a b a", "b c", "c c c"])
    assert tf_idf.get_vocabulary() == ["[UNK]", "c", "b", "a"]
    np.testing.assert_allclose(tf_idf(["a c z"]), [[0.76752836, 0.6931472, 0.0, 0.91629076]], rtol=1e-6)
    assert layers.TextVectorization(output_sequence_length=3).compute_output_shape((None,)) == (None, 3)


def test_text_vectorization_in_a_model_fit_predict_and_saving(tmp_path):
    pytest.importorskip("h5py")
    texts = np.array(["good movie", "bad movie", "good good film", "bad film", "awful", "great"])
    labels = np.array([1, 0, 1, 0, 0, 1], dtype="float32")
    vectorize = layers.TextVectorization(max_tokens=20, output_sequence_length=4)
    vectorize.adapt(texts)
    inputs = layers.Input(shape=(), dtype="string")
    h = layers.GlobalAveragePooling1D()(layers.Embedding(20, 3)(vectorize(inputs)))
    model = engine.Model(inputs, layers.Dense(1, activation="sigmoid")(h))
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(texts, labels, epochs=2, batch_size=3, verbose=0)
    path = os.path.join(tmp_path, "text.keras")
    model.save(path)
    loaded = engine.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(texts, verbose=0), model.predict(texts, verbose=0), rtol=1e-6)
    assert loaded.layers[1].get_vocabulary() == vectorize.get_vocabulary()


@register_keras_serializable("test_text")
def _shout(texts):
    return np.char.upper(texts)


def test_config_round_trip_with_a_registered_standardize():
    layer = layers.TextVectorization(standardize=_shout, ngrams=(1, 2), output_mode="count", max_tokens=10)
    layer.adapt(["a b", "b c"])
    config = layer.get_config()
    assert config["standardize"]["config"] == "test_text>_shout" and config["vocabulary_size"] == 6
    clone = layers.TextVectorization.from_config(config)
    assert clone._standardize is _shout and clone._ngrams == (1, 2)


def _reference():
    with open(os.path.join(DATA, "keras_preprocessing.json")) as f:
        return json.load(f)


def test_keras_made_file_with_text_vectorization_and_normalization(tmp_path):
    """Made by tests/data/make_keras_preprocessing.py with Keras 3.15 (TensorFlow backend)."""
    pytest.importorskip("h5py")
    ref = _reference()
    model = engine.saving.load_model(os.path.join(DATA, "keras_preprocessing.keras"))
    words, weights, norm = (model.get_layer(n) for n in ("words", "weights", "norm"))
    assert words.get_vocabulary() == ref["words_vocabulary"]
    assert weights.get_vocabulary() == ref["weights_vocabulary"]
    assert norm.adapt_mean.shape == (3,)
    x = [np.array(ref["texts"]), np.array(ref["numbers"], dtype="float32"), np.array(ref["colours"]),
         np.array(ref["codes"])]
    scores, ids, *extras = model.predict(x, verbose=0)
    np.testing.assert_allclose(scores, ref["scores"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ids, ref["ids"])
    for name, got in zip(("colour_ids", "hashed", "code_ids", "buckets"), extras):   # the other lookups
        np.testing.assert_array_equal(got, ref[name], err_msg=name)
    # engine writes it back in the same layout (vocabularies as assets, idf weights and statistics as arrays).
    path = os.path.join(tmp_path, "again.keras")
    model.save(path)
    import zipfile
    names = zipfile.ZipFile(path).namelist()
    assert "assets/layers/text_vectorization/vocabulary.txt" in names
    assert "assets/layers/text_vectorization_1/_lookup_layer/vocabulary.txt" in names
    again = engine.saving.load_model(path)
    np.testing.assert_allclose(again.predict(x, verbose=0)[0], scores, rtol=1e-6)


def test_engine_file_loads_in_live_keras(tmp_path):
    os.environ.setdefault("KERAS_BACKEND", "jax")   # as the other live-Keras tests
    keras = pytest.importorskip("keras")
    try:
        keras.layers.TextVectorization()
    except ImportError:
        pytest.skip("Keras's TextVectorization needs TensorFlow")
    ref = _reference()
    model = engine.saving.load_model(os.path.join(DATA, "keras_preprocessing.keras"))
    path = os.path.join(tmp_path, "engine.keras")
    model.save(path)
    theirs = keras.saving.load_model(path)
    import tensorflow as tf
    scores, ids, *extras = theirs([tf.constant(ref["texts"]), tf.constant(np.array(ref["numbers"], dtype="float32")),
                                   tf.constant(ref["colours"]), tf.constant(np.array(ref["codes"], dtype="int64"))])
    np.testing.assert_allclose(np.asarray(scores), ref["scores"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(ids), ref["ids"])
    for name, got in zip(("colour_ids", "hashed", "code_ids", "buckets"), extras):
        np.testing.assert_array_equal(np.asarray(got), ref[name], err_msg=name)
