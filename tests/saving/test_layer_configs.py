"""Every layer rebuilds from its config with the same weights layout and the same outputs."""
import numpy as np
import pytest

from engine import layers
from engine.saving import serialize_keras_object, deserialize_keras_object

rng = np.random.default_rng(7)

CASES = [
    (lambda: layers.Dense(3, activation="relu", use_bias=False), (2, 4)),
    (lambda: layers.Activation("tanh"), (2, 4)),
    (lambda: layers.Dropout(0.3, seed=1), (2, 4)),
    (lambda: layers.Flatten(), (2, 3, 4)),
    (lambda: layers.Reshape((2, 6)), (2, 3, 4)),
    (lambda: layers.Permute((2, 1)), (2, 3, 4)),
    (lambda: layers.RepeatVector(3), (2, 4)),
    (lambda: layers.Embedding(10, 3, mask_zero=True), "ids"),
    (lambda: layers.LSTM(3, return_sequences=True, go_backwards=True), (2, 5, 4)),
    (lambda: layers.GRU(3, reset_after=True, activation="relu"), (2, 5, 4)),
    (lambda: layers.SimpleRNN(2), (2, 5, 4)),
    (lambda: layers.Bidirectional(layers.LSTM(2), merge_mode="sum"), (2, 5, 4)),
    (lambda: layers.Conv1D(3, 2, strides=2, padding="causal", dilation_rate=1), (2, 8, 4)),
    (lambda: layers.Conv2D(3, (2, 3), padding="same", activation="relu"), (2, 6, 6, 2)),
    (lambda: layers.DepthwiseConv2D(3, depth_multiplier=2), (2, 6, 6, 2)),
    (lambda: layers.SeparableConv2D(3, 3, padding="same"), (2, 6, 6, 2)),
    (lambda: layers.MaxPooling2D(3, strides=2, padding="same"), (2, 6, 6, 2)),
    (lambda: layers.AveragePooling1D(2), (2, 6, 2)),
    (lambda: layers.GlobalAveragePooling2D(keepdims=True), (2, 6, 6, 2)),
    (lambda: layers.BatchNormalization(momentum=0.9, epsilon=1e-2), (4, 3)),
    (lambda: layers.ZeroPadding2D(((1, 0), (2, 1))), (2, 3, 3, 2)),
    (lambda: layers.UpSampling2D((2, 1)), (2, 3, 3, 2)),
    (lambda: layers.Cropping1D((1, 2)), (2, 6, 2)),
    (lambda: layers.Cropping2D(((1, 0), (0, 2))), (2, 5, 5, 2)),
    (lambda: layers.ZeroPadding1D((2, 1)), (2, 4, 2)),
    (lambda: layers.UpSampling1D(3), (2, 4, 2)),
    (lambda: layers.MaxPooling1D(2, strides=1, padding="same"), (2, 6, 2)),
    (lambda: layers.AveragePooling2D((2, 3), padding="same"), (2, 6, 6, 2)),
    (lambda: layers.GlobalMaxPooling1D(keepdims=True), (2, 6, 2)),
    (lambda: layers.GlobalMaxPooling2D(), (2, 6, 6, 2)),
    (lambda: layers.GlobalAveragePooling1D(), (2, 6, 2)),
    (lambda: layers.Identity(), (2, 3)),
    (lambda: layers.Dense(2, kernel_regularizer="l2", bias_constraint="non_neg", dtype="float64"), (2, 3)),
]
MERGES = [layers.Add, layers.Subtract, layers.Multiply, layers.Average, layers.Maximum, layers.Minimum,
          layers.Concatenate, layers.Dot]


@pytest.mark.parametrize("make,shape", CASES, ids=[c[0]().__class__.__name__ + str(i) for i, c in enumerate(CASES)])
def test_layer_round_trips_through_its_config(make, shape):
    layer = make()
    x = rng.integers(0, 10, (2, 5)) if shape == "ids" else rng.standard_normal(shape).astype(np.float32)
    y = layer(x)
    clone = deserialize_keras_object(serialize_keras_object(layer))
    assert type(clone) is type(layer)
    clone(x)
    assert [w.shape for w in clone.weights] == [w.shape for w in layer.weights]
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(clone(x), y, rtol=1e-6)
    assert clone.get_config() == layer.get_config()


def test_merges_round_trip():
    for layer in (layers.Add(), layers.Subtract(), layers.Multiply(), layers.Average(), layers.Maximum(),
                  layers.Minimum(), layers.Concatenate(axis=1), layers.Dot(axes=1, normalize=True)):
        clone = deserialize_keras_object(serialize_keras_object(layer))
        xs = [rng.standard_normal((2, 3)).astype(np.float32) for _ in range(2)]
        assert clone.get_config() == layer.get_config()
        np.testing.assert_allclose(clone(xs), layer(xs), rtol=1e-6)

# The preprocessing layers (issue 18) take strings or draw random numbers, so their config round
# trips live in tests/layers/preprocessing/test_preprocessing_configs.py; listed here for the check
# that every exported layer has one.
PREPROCESSING = [layers.Normalization, layers.Rescaling, layers.Resizing, layers.CenterCrop, layers.RandomFlip,
                 layers.RandomRotation, layers.RandomZoom, layers.RandomTranslation, layers.RandomContrast,
                 layers.RandomBrightness, layers.RandomCrop, layers.CategoryEncoding, layers.Hashing,
                 layers.StringLookup, layers.IntegerLookup, layers.TextVectorization, layers.Discretization]
