"""Every layer rebuilds from its config with the same weights layout and the same outputs."""
import numpy as np
import pytest

from engine import layers
from engine.saving import serialize_keras_object, deserialize_keras_object

rng = np.random.default_rng(7)

CASES = [
    (lambda: layers.Dense(3, activation="relu", use_bias=False), (2, 4)),
    (lambda: layers.Dense(3, lora_rank=2, lora_alpha=4), (2, 4)),
    (lambda: layers.EinsumDense("abc,cde->abde", (None, 2, 3), bias_axes="de", activation="relu"), (2, 5, 4)),
    (lambda: layers.Conv2D(4, 2, groups=2, data_format="channels_first"), (2, 2, 5, 5)),
    (lambda: layers.ReversibleEmbedding(10, 3, tie_weights=False, logit_soft_cap=2.0), "ids"),
    (lambda: layers.SpectralNormalization(layers.Dense(3), power_iterations=2), (2, 4)),
    (lambda: layers.AdaptiveAveragePooling1D(3), (2, 7, 2)),
    (lambda: layers.AdaptiveAveragePooling2D((2, 3)), (2, 5, 7, 2)),
    (lambda: layers.AdaptiveAveragePooling3D(2, data_format="channels_first"), (2, 2, 5, 4, 3)),
    (lambda: layers.AdaptiveMaxPooling1D(4, data_format="channels_first"), (2, 2, 7)),
    (lambda: layers.AdaptiveMaxPooling2D(3), (2, 5, 7, 2)),
    (lambda: layers.AdaptiveMaxPooling3D((1, 2, 3)), (2, 3, 4, 5, 2)),
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
    # attention, normalization, activation, regularization, transposed and 3-D convolution layers
    (lambda: layers.LayerNormalization(axis=[1, 2], epsilon=1e-5, center=False), (2, 3, 4)),
    (lambda: layers.GroupNormalization(groups=2, scale=False), (2, 3, 4)),
    (lambda: layers.UnitNormalization(axis=[1, 2]), (2, 3, 4)),
    (lambda: layers.RMSNormalization(axis=[1, 2], epsilon=1e-5), (2, 3, 4)),
    (lambda: layers.ReLU(max_value=2.0, negative_slope=0.1, threshold=0.5), (2, 4)),
    (lambda: layers.LeakyReLU(negative_slope=0.2), (2, 4)),
    (lambda: layers.PReLU(alpha_initializer="ones", shared_axes=[1]), (2, 3, 4)),
    (lambda: layers.ELU(alpha=0.5), (2, 4)),
    (lambda: layers.Softmax(axis=[1, 2]), (2, 3, 4)),
    (lambda: layers.Masking(mask_value=1.0), (2, 3, 4)),
    (lambda: layers.SpatialDropout1D(0.3, seed=1), (2, 3, 4)),
    (lambda: layers.SpatialDropout2D(0.3, data_format="channels_first"), (2, 3, 3, 2)),
    (lambda: layers.SpatialDropout3D(0.3), (2, 3, 3, 3, 2)),
    (lambda: layers.GaussianNoise(0.2, seed=2), (2, 4)),
    (lambda: layers.GaussianDropout(0.2), (2, 4)),
    (lambda: layers.AlphaDropout(0.2, noise_shape=(None, 1)), (2, 4)),
    (lambda: layers.ActivityRegularization(l1=0.1, l2=0.2), (2, 4)),
    (lambda: layers.Conv1DTranspose(3, 3, strides=2, padding="same"), (2, 5, 2)),
    (lambda: layers.Conv2DTranspose(2, (2, 3), strides=(2, 1), output_padding=(1, 0)), (2, 4, 4, 3)),
    (lambda: layers.Conv3D(2, 2, strides=(1, 2, 1), padding="same"), (2, 3, 4, 4, 2)),
    (lambda: layers.Conv3DTranspose(2, 2, strides=(2, 1, 1), padding="same"), (2, 3, 3, 3, 2)),
    (lambda: layers.MaxPooling3D(2, padding="same"), (2, 3, 4, 4, 2)),
    (lambda: layers.AveragePooling3D((2, 1, 2)), (2, 3, 4, 4, 2)),
    (lambda: layers.GlobalMaxPooling3D(keepdims=True), (2, 3, 4, 4, 2)),
    (lambda: layers.GlobalAveragePooling3D(), (2, 3, 4, 4, 2)),
    (lambda: layers.ZeroPadding3D((1, 0, 2)), (2, 3, 3, 3, 2)),
    (lambda: layers.UpSampling3D((1, 2, 2)), (2, 3, 3, 3, 2)),
    (lambda: layers.Cropping3D(((1, 0), 1, (0, 1))), (2, 3, 3, 3, 2)),
    (lambda: layers.DepthwiseConv1D(3, depth_multiplier=2, padding="same"), (2, 5, 2)),
    (lambda: layers.SeparableConv1D(3, 2, strides=2), (2, 6, 2)),
    (lambda: layers.RNN(layers.LSTMCell(3), return_sequences=True, go_backwards=True), (2, 5, 4)),
    (lambda: layers.TimeDistributed(layers.Dense(3)), (2, 5, 4)),
    (lambda: layers.Wrapper(layers.Dense(3)), (2, 4)),
    (lambda: layers.ConvLSTM1D(2, 3, padding="same", return_sequences=True), (2, 3, 5, 2)),
    (lambda: layers.ConvLSTM2D(2, 2, strides=2, unit_forget_bias=False), (2, 3, 4, 4, 2)),
    (lambda: layers.ConvLSTM3D(2, (1, 2, 2), padding="same"), (2, 2, 2, 3, 3, 2)),
]
MERGES = [layers.Add, layers.Subtract, layers.Multiply, layers.Average, layers.Maximum, layers.Minimum,
          layers.Concatenate, layers.Dot]


@pytest.mark.parametrize("make,shape", CASES, ids=[c[0]().__class__.__name__ + str(i) for i, c in enumerate(CASES)])
def test_layer_round_trips_through_its_config(make, shape):
    x = rng.integers(0, 10, (2, 5)) if shape == "ids" else rng.standard_normal(shape).astype(np.float32)
    _check_round_trip(make(), lambda layer: layer(x))


def _check_round_trip(layer, run):
    """The clone from the layer's config has its weights layout, outputs and config."""
    y = run(layer)
    clone = deserialize_keras_object(serialize_keras_object(layer))
    assert type(clone) is type(layer)
    run(clone)
    assert [w.shape for w in clone.weights] == [w.shape for w in layer.weights]
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(run(clone), y, rtol=1e-6)
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


# Layers called on several tensors, and cells: (constructor, call(layer) -> output).
_Q, _V = rng.standard_normal((2, 4, 3)).astype(np.float32), rng.standard_normal((2, 5, 3)).astype(np.float32)
_STEP = [rng.standard_normal((2, 3)).astype(np.float32)]
CALLED = [
    (lambda: layers.MultiHeadAttention(2, 3, value_dim=2, output_shape=4, use_gate=True), lambda l: l(_Q, _V)),
    (lambda: layers.GroupQueryAttention(2, 4, 2, use_gate=True, sliding_window=3), lambda l: l(_Q, _V)),
    (lambda: layers.Attention(use_scale=True, score_mode="concat"), lambda l: l([_Q, _V])),
    (lambda: layers.AdditiveAttention(use_scale=False), lambda l: l([_Q, _V])),
    (lambda: layers.SimpleRNNCell(3, activation="relu"), lambda l: l(_Q[:, 0], _STEP)[0]),
    (lambda: layers.LSTMCell(3, unit_forget_bias=False), lambda l: l(_Q[:, 0], _STEP * 2)[0]),
    (lambda: layers.GRUCell(3, reset_after=False), lambda l: l(_Q[:, 0], _STEP)[0]),
    (lambda: layers.StackedRNNCells([layers.GRUCell(3), layers.SimpleRNNCell(3)]),
     lambda l: l(_Q[:, 0], _STEP * 2)[0]),
]


@pytest.mark.parametrize("make,run", CALLED, ids=[c[0]().__class__.__name__ for c in CALLED])
def test_called_layers_round_trip_through_their_config(make, run):
    _check_round_trip(make(), run)
