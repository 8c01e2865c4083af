"""Every preprocessing layer rebuilds from its serialized config (Keras's keys) with the same outputs."""
import numpy as np
import pytest

from engine import layers
from engine.saving import deserialize_keras_object, serialize_keras_object
from engine.saving.serialization import to_jsonable

rng = np.random.default_rng(3)
IMAGES = rng.uniform(0, 255, size=(2, 6, 6, 3)).astype("float32")
TEXTS = np.array(["the cat sat", "a dog ran", "the dog sat"])


def _adapted(layer, data):
    layer.adapt(data)
    return layer


CASES = [
    (lambda: layers.Normalization(mean=[1.0, 2.0, 3.0], variance=[1.0, 4.0, 9.0]), rng.normal(size=(4, 3))),
    (lambda: layers.Normalization(axis=None, mean=2.0, variance=3.0, invert=True), rng.normal(size=(4, 3))),
    (lambda: layers.Rescaling(1 / 127.5, offset=-1), IMAGES),
    (lambda: layers.Resizing(4, 5, interpolation="bicubic", crop_to_aspect_ratio=True), IMAGES),
    (lambda: layers.CenterCrop(3, 4), IMAGES),
    (lambda: layers.RandomFlip("vertical", seed=1), IMAGES),
    (lambda: layers.RandomRotation((-0.2, 0.3), fill_mode="constant", fill_value=1.0, seed=2), IMAGES),
    (lambda: layers.RandomZoom(0.2, (-0.1, 0.3), interpolation="nearest", seed=3), IMAGES),
    (lambda: layers.RandomTranslation(0.1, 0.2, fill_mode="wrap", seed=4), IMAGES),
    (lambda: layers.RandomContrast(0.3, value_range=(0, 255), seed=5), IMAGES),
    (lambda: layers.RandomBrightness((-0.2, 0.1), seed=6), IMAGES),
    (lambda: layers.RandomCrop(4, 4, seed=7), IMAGES),
    (lambda: layers.CategoryEncoding(5, output_mode="count"), np.array([[1, 2, 2], [0, 4, 4]])),
    (lambda: layers.Hashing(7, salt=[1, 2], output_mode="one_hot"), np.array(["a", "b", "c"])),
    (lambda: layers.Discretization(bin_boundaries=[-1.0, 0.0, 1.0], output_mode="one_hot"), rng.normal(size=(4,))),
    (lambda: _adapted(layers.Discretization(num_bins=3), rng.normal(size=(50,))), rng.normal(size=(4, 2))),
    (lambda: layers.StringLookup(vocabulary=["a", "b"], mask_token="", num_oov_indices=2), np.array(["a", "", "q"])),
    (lambda: layers.IntegerLookup(vocabulary=[7, 9], invert=True), np.array([0, 1, 2])),
    (lambda: layers.TextVectorization(vocabulary=["cat", "dog"], output_sequence_length=4), TEXTS),
    (lambda: layers.TextVectorization(vocabulary=["the", "dog"], idf_weights=[0.2, 0.7], output_mode="tf_idf"),
     TEXTS),
]


@pytest.mark.parametrize("make,data", CASES, ids=[f"{i}-{c[0]().__class__.__name__}" for i, c in enumerate(CASES)])
def test_preprocessing_layer_round_trips_through_its_config(make, data):
    layer = make()
    config = serialize_keras_object(layer)
    assert config["module"] == "keras.layers" and config["class_name"] == type(layer).__name__
    clone = deserialize_keras_object(config)
    assert type(clone) is type(layer)
    assert to_jsonable(clone.get_config()) == to_jsonable(layer.get_config())   # as JSON: tuples are lists
    training = {"training": False} if layer._call_has_training else {}
    np.testing.assert_array_equal(np.asarray(clone(data, **training)), np.asarray(layer(data, **training)))


def test_seeded_augmentation_clones_draw_the_same_augmentations():
    for make, data in CASES[5:12]:
        layer = make()
        clone = deserialize_keras_object(serialize_keras_object(layer))
        np.testing.assert_array_equal(np.asarray(clone(data, training=True)), np.asarray(layer(data, training=True)))
