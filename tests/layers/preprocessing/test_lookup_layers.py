"""StringLookup, IntegerLookup, CategoryEncoding, Hashing and Discretization against values Keras 3.15
(TensorFlow backend) gave for the same calls, written out here, and against formulas written out."""
import os

import numpy as np
import pytest

import engine
from engine import layers
from engine.layers.preprocessing import _hashes


# -- the hashes -----------------------------------------------------------------------------------
# Published FarmHash Fingerprint64 values (the strings cover every length branch: 0-16, 17-32,
# 33-64 and the 64-byte loop).
FINGERPRINTS = {
    "": 11160318154034397263, "Q": 13816109650407654260, ",=": 1326014594494455617, "WW5": 6316074107149058620,
    "e#p8": 252499459662674074, "#cDR^sLO": 328147020574120176, "/dWQW6&i7h$1@": 11452602314494946942,
    "bF&d$MYIhB.Ac=qC": 17582099205024456557, "dXB@tDQ-v5<H]rq2Pcc*s>nC-[Mdy": 8365906589669344754,
    "2/?98ns)xbzEVL^:wCS$7l3@_g!zP^<D.-bd6": 9728733090894310797,
    "F7479877-4690-4A44-AFC9-8FE987EA512F:some_other_id": 6862335115798125349,
    "test": 8581389452482819506, "test" * 8: 2 ** 64 - 4196240717365766262, "test" * 64: 3500507768004279527,
}


@pytest.mark.parametrize("text", sorted(FINGERPRINTS))
def test_fingerprint64_matches_published_values(text):
    assert _hashes.fingerprint64(text.encode()) == FINGERPRINTS[text]


def test_siphash24_matches_the_reference_vectors():
    k0, k1 = 0x0706050403020100, 0x0f0e0d0c0b0a0908          # key bytes 00..0f
    assert _hashes.siphash24(k0, k1, b"") == 0x726fdb47dd0e0e31
    assert _hashes.siphash24(k0, k1, bytes([0])) == 0x74f839c593dc67fd
    assert _hashes.siphash24(k0, k1, bytes(range(15))) == 0xa129ca6149be45e5


def test_hashing_bins_match_keras():
    letters = np.array([["A"], ["B"], ["C"], ["D"], ["E"]])
    np.testing.assert_array_equal(layers.Hashing(3)(letters), [[1], [0], [1], [1], [2]])
    np.testing.assert_array_equal(layers.Hashing(3, salt=[133, 137])(letters), [[1], [2], [1], [0], [2]])
    np.testing.assert_array_equal(layers.Hashing(3, salt=133)(letters), [[0], [0], [2], [1], [0]])
    np.testing.assert_array_equal(layers.Hashing(3, mask_value="")(np.array([["A"], ["B"], [""], ["C"], ["D"]])),
                                  [[1], [1], [0], [2], [2]])
    words = ["omar", "stringer", "marlo", "wire", "skywalker"]
    np.testing.assert_array_equal(layers.Hashing(2)(words), [0, 0, 1, 0, 0])
    np.testing.assert_array_equal(layers.Hashing(2, salt=[211, 137])(words), [1, 0, 1, 0, 1])
    np.testing.assert_array_equal(layers.Hashing(3)(np.arange(5)), [1, 0, 1, 0, 2])    # ints hash as "0", "1", ...
    np.testing.assert_array_equal(layers.Hashing(3, salt=[133, 137])(np.arange(5)[:, None]), [[1], [1], [2], [0], [1]])
    np.testing.assert_array_equal(layers.Hashing(5)(np.array([1.7, -2.2, 3.0])), [4, 0, 1])   # floats truncated
    long_text = "a much longer string that is over sixty-four bytes long, to be sure of it"
    np.testing.assert_array_equal(layers.Hashing(7)(["tensorflow", "keras", long_text]), [2, 4, 6])
    np.testing.assert_array_equal(layers.Hashing(4, mask_value=0)(np.array([0, 1, 2, 3])), [0, 1, 2, 1])
    counts = layers.Hashing(4, output_mode="count")(np.array([["a", "b", "a"]]))
    assert counts.dtype == np.float32
    np.testing.assert_array_equal(counts, [[0.0, 0.0, 1.0, 2.0]])
    out = layers.Hashing(3)(letters)
    assert out.dtype == np.int64


def test_hashing_errors_and_config():
    with pytest.raises(ValueError, match="num_bins"):
        layers.Hashing(0)
    with pytest.raises(ValueError, match="salt"):
        layers.Hashing(3, salt="pepper")
    with pytest.raises(ValueError, match="output_mode"):
        layers.Hashing(3, output_mode="tf_idf")
    config = layers.Hashing(5, salt=3).get_config()
    assert config["salt"] == [3, 3] and config["dtype"] == "int64" and config["num_bins"] == 5


# -- lookups --------------------------------------------------------------------------------------
def test_vocabulary_order_is_frequency_then_token_descending():
    layer = layers.StringLookup()
    layer.adapt(["a", "b", "b", "c", "c", "d", "d", "d", "e"])
    assert layer.get_vocabulary() == ["[UNK]", "d", "c", "b", "e", "a"]
    np.testing.assert_array_equal(layer(np.array([["a", "z"], ["d", "b"]])), [[5, 0], [1, 3]])
    capped = layers.StringLookup(max_tokens=3)
    capped.adapt(["z", "y", "y", "x", "x", "w"])
    assert capped.get_vocabulary() == ["[UNK]", "y", "x"]
    ints = layers.IntegerLookup()
    ints.adapt([3, 3, 5, 7, 7, 7, -1])                       # -1 is the OOV token: not a vocabulary entry
    assert ints.get_vocabulary() == [-1, 7, 3, 5]
    np.testing.assert_array_equal(ints([7, 5, 100]), [1, 3, 0])


def test_oov_buckets_mask_and_invert_match_keras():
    layer = layers.StringLookup(num_oov_indices=3)
    layer.adapt(["x", "y", "y"])
    np.testing.assert_array_equal(layer(["x", "y", "q", "r", "s", "t", "uu"]), [4, 3, 2, 1, 1, 1, 0])
    salted = layers.StringLookup(num_oov_indices=3, salt=7)
    salted.adapt(["x", "y", "y"])
    np.testing.assert_array_equal(salted(["q", "r", "s", "t", "uu"]), [0, 1, 0, 2, 1])
    ints = layers.IntegerLookup(num_oov_indices=3)
    ints.adapt([5, 5, 6])
    np.testing.assert_array_equal(ints([5, 6, 7, 8, 9, 10, -4]), [3, 4, 1, 2, 0, 1, 2])    # floormod
    farm = layers.IntegerLookup(num_oov_indices=3, oov_method="farmhash")
    farm.adapt([5, 5, 6])
    np.testing.assert_array_equal(farm([7, 8, 9, 10, -4]), [1, 1, 2, 2, 1])
    masked = layers.IntegerLookup(mask_token=0, vocabulary=[12, 36, 1138, 42])
    assert masked.get_vocabulary() == [0, -1, 12, 36, 1138, 42]
    np.testing.assert_array_equal(masked([[12, 1138, 0], [42, 7, 36]]), [[2, 4, 0], [5, 1, 3]])
    back = layers.IntegerLookup(vocabulary=[12, 36, 1138, 42], invert=True, mask_token=0)
    np.testing.assert_array_equal(back([[0, 1, 2], [3, 4, 5]]), [[0, -1, 12], [36, 1138, 42]])
    words = layers.StringLookup(vocabulary=["x", "y"], invert=True)
    assert np.asarray(words([0, 1, 2, 5])).tolist() == ["[UNK]", "x", "y", "[UNK]"]
    with pytest.raises(ValueError, match="num_oov_indices=0"):
        layers.StringLookup(vocabulary=["a"], num_oov_indices=0)(["b"])


def test_encoded_outputs_match_keras():
    one_hot = layers.StringLookup(vocabulary=["a", "b", "c"], output_mode="one_hot")
    np.testing.assert_array_equal(one_hot(["a", "z", "c"]), [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]])
    count = layers.StringLookup(vocabulary=["a", "b", "c"], output_mode="count", pad_to_max_tokens=True, max_tokens=6)
    out = count([["a", "a", "z"], ["c", "b", "b"]])
    assert out.dtype == np.int64                              # Keras's counts are int64 too
    np.testing.assert_array_equal(out, [[1, 2, 0, 0, 0, 0], [0, 0, 2, 1, 0, 0]])
    multi = layers.StringLookup(vocabulary=["a", "b", "c"], mask_token="", output_mode="multi_hot")
    assert multi.get_vocabulary() == ["[UNK]", "a", "b", "c"]   # no mask index outside "int" mode
    np.testing.assert_array_equal(multi([["a", "", ""], ["c", "b", ""]]), [[0, 1, 0, 0], [0, 0, 1, 1]])
    tf_idf = layers.StringLookup(vocabulary=["a", "b"], idf_weights=[0.5, 0.25], output_mode="tf_idf")
    # The OOV index gets the mean of the given weights; counts times weights.
    np.testing.assert_allclose(tf_idf([["a", "a", "z", "b"]]), [[0.375, 1.0, 0.25]])


def test_adapted_tf_idf_weights_follow_kerass_formula():
    layer = layers.StringLookup(output_mode="tf_idf")
    layer.adapt([["a", "b", "a"], ["b", "c", "c"]])
    assert layer.get_vocabulary() == ["[UNK]", "c", "b", "a"]
    idf = np.log(1 + 2 / (1 + np.array([1.0, 2.0, 1.0])))    # document counts of c, b, a; 2 documents
    np.testing.assert_allclose(layer.idf_weights, np.concatenate([[idf.mean()], idf]), rtol=1e-6)
    np.testing.assert_allclose(layer([["a", "a", "z"]]), [[idf.mean(), 0, 0, 2 * idf[2]]], rtol=1e-6)


def test_lookup_config_round_trip_and_keras_keys():
    config = layers.StringLookup(vocabulary=["a"]).get_config()
    assert config["vocabulary"] == ["a"] and config["vocabulary_size"] == 2 and config["encoding"] == "utf-8"
    assert "vocabulary_dtype" not in config
    clone = layers.StringLookup.from_config(config)
    assert clone.get_vocabulary() == ["[UNK]", "a"] and clone.get_config() == config
    ints = layers.IntegerLookup(mask_token=0, vocabulary=[4, 5]).get_config()
    assert ints["vocabulary_dtype"] == "int64" and ints["vocabulary"] == [4, 5] and ints["mask_token"] == 0
    with pytest.raises(ValueError, match="repeats"):
        layers.StringLookup(vocabulary=["a", "a"])
    with pytest.raises(ValueError, match="invert=True needs"):
        layers.StringLookup(invert=True, output_mode="one_hot")


def test_lookup_in_a_model_with_string_input_fit_and_predict():
    lookup = layers.StringLookup(output_mode="one_hot")
    lookup.adapt(["red", "green", "green", "blue"])
    inputs = layers.Input(shape=(1,), dtype="string")
    outputs = layers.Dense(1, activation="sigmoid")(lookup(inputs))
    model = engine.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    x = np.array([["red"], ["green"], ["blue"], ["pink"]])
    model.fit(x, np.array([1.0, 0.0, 1.0, 0.0]), epochs=2, verbose=0)
    assert model.predict(x, verbose=0).shape == (4, 1)


# -- CategoryEncoding and Discretization ------------------------------------------------------------
def test_category_encoding_matches_keras():
    cases = {
        "one_hot": {(3,): [[0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0]], (2, 1): [[0, 1, 0, 0], [0, 0, 1, 0]]},
        "multi_hot": {(3,): [1, 1, 1, 0], (2, 2): [[0, 1, 1, 0], [0, 0, 1, 0]]},
        "count": {(3,): [1, 1, 1, 0], (2, 2): [[0, 1, 1, 0], [0, 0, 2, 0]]},
    }
    data = {(3,): np.array([1, 2, 0]), (2, 1): np.array([[1], [2]]), (2, 2): np.array([[1, 2], [2, 2]])}
    for mode, expected in cases.items():
        for shape, values in expected.items():
            out = layers.CategoryEncoding(4, output_mode=mode)(data[shape])
            assert out.dtype == np.float32
            np.testing.assert_array_equal(out, values)
    weighted = layers.CategoryEncoding(4, output_mode="count")(np.array([[1, 1, 3]]), count_weights=np.array([[.5, .25, 2.]]))
    np.testing.assert_allclose(weighted, [[0, 0.75, 0, 2]])
    np.testing.assert_array_equal(layers.CategoryEncoding(4)(np.array([-1, 2])), [0, 0, 1, 0])   # out of range: nothing
    assert layers.CategoryEncoding(4, output_mode="one_hot").compute_output_shape((None, 1)) == (None, 4)
    with pytest.raises(ValueError, match="count_weights"):
        layers.CategoryEncoding(4)(np.array([1]), count_weights=np.array([1.0]))


def test_discretization_buckets_and_keras_quantiles():
    layer = layers.Discretization(bin_boundaries=[0.0, 1.0, 2.0])
    out = layer(np.array([[-1.0, 0.5, 1.5, 2.0]]))
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [[0, 1, 2, 3]])
    counts = layers.Discretization(bin_boundaries=[0.0, 1.0, 2.0], output_mode="count")(
        np.array([[-1.0, 0.5, 1.5, 2.0], [0.0, 0.0, 3.0, 1.0]]))
    np.testing.assert_array_equal(counts, [[1, 1, 1, 1], [0, 2, 1, 1]])
    adapted = layers.Discretization(num_bins=3)
    adapted.adapt([1.0, 2.0, 3.0, 4.0, 5.0, 8.0])
    assert adapted.bin_boundaries == [2.0, 4.0]              # Keras 3.15's boundaries for the same call
    data = np.random.default_rng(0).normal(size=(1000, 3)).astype("float32")
    whole = layers.Discretization(num_bins=4)
    whole.adapt(data)
    np.testing.assert_allclose(whole.bin_boundaries, [-0.6963789463043213, -0.05797652155160904, 0.646242082118988])
    batched = layers.Discretization(num_bins=4)
    batched.adapt([data[:300], data[300:650], data[650:]])
    np.testing.assert_allclose(batched.bin_boundaries, [-0.6841393709182739, -0.047613974660634995, 0.6606966853141785])
    # The quantile boundaries are close to the data's true quartiles.
    np.testing.assert_allclose(whole.bin_boundaries, np.quantile(data, [0.25, 0.5, 0.75]), atol=0.05)
    with pytest.raises(ValueError, match="not both"):
        layers.Discretization(bin_boundaries=[1.0], num_bins=2)
    with pytest.raises(ValueError, match="adapt"):
        layers.Discretization(bin_boundaries=[1.0]).adapt([1.0])


def test_against_live_keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")   # as the other live-Keras tests
    keras = pytest.importorskip("keras")
    try:
        theirs = keras.layers.StringLookup()
    except ImportError:
        pytest.skip("Keras's lookup layers need TensorFlow")
    data = ["a", "b", "b", "c", "c", "d", "d", "d", "e"]
    ours = layers.StringLookup()
    ours.adapt(data)
    theirs.adapt(data)
    assert ours.get_vocabulary() == [str(t) for t in theirs.get_vocabulary()]
    words = np.array(["omar", "stringer", "marlo", "wire", "skywalker", "x" * 70])
    np.testing.assert_array_equal(layers.Hashing(97)(words), np.asarray(keras.layers.Hashing(97)(words)))
