"""engine.layers: the Keras layers, by family.

The base Layer, Input and the core layers (Dense, Activation, Dropout, ...) come with the package;
every other family loads its module on first use (`layers.LSTM`, `from engine.layers import
RandomFlip`), and is registered for loading from configs by name before that, so a `.keras` file
naming a layer whose module was never imported still loads.
"""
from engine._lazy import lazy_attributes, lazy_table, public_names
from engine.layers.base import Layer
from engine.layers.input_layer import Input, InputLayer
from engine.layers.core import (Dense, Activation, Dropout, Flatten, Reshape, Permute, RepeatVector, Identity,
                                Lambda)
from engine.saving.registry import register_builtin, register_lazy

_LAZY = lazy_table(__name__, {
    '': (
        "activation_layers adaptive_pooling attention base conv_lstm conv_transpose convolutional convolutional3d core "
        "depthwise1d einsum_dense embedding input_layer input_spec keras_tensor merging normalization normalization_layers "
        "pooling preprocessing recurrent regularization reshaping rnn spectral_normalization wrappers"),
    'engine.layers.activation_layers': "ELU LeakyReLU PReLU ReLU Softmax",
    'engine.layers.adaptive_pooling': (
        "AdaptiveAveragePooling1D AdaptiveAveragePooling2D AdaptiveAveragePooling3D AdaptiveMaxPooling1D "
        "AdaptiveMaxPooling2D AdaptiveMaxPooling3D"),
    'engine.layers.attention': "AdditiveAttention Attention GroupQueryAttention MultiHeadAttention",
    'engine.layers.conv_lstm': "ConvLSTM1D ConvLSTM2D ConvLSTM3D",
    'engine.layers.conv_transpose': (
        "Conv1DTranspose Conv2DTranspose Conv3DTranspose Convolution1DTranspose Convolution2DTranspose "
        "Convolution3DTranspose"),
    'engine.layers.convolutional': "Conv1D Conv2D Convolution1D Convolution2D DepthwiseConv2D SeparableConv2D SeparableConvolution2D",
    'engine.layers.convolutional3d': (
        "AveragePooling3D AvgPool3D Conv3D Convolution3D Cropping3D GlobalAveragePooling3D GlobalAvgPool3D "
        "GlobalMaxPool3D GlobalMaxPooling3D MaxPool3D MaxPooling3D UpSampling3D ZeroPadding3D"),
    'engine.layers.depthwise1d': "DepthwiseConv1D SeparableConv1D SeparableConvolution1D",
    'engine.layers.einsum_dense': "EinsumDense",
    'engine.layers.embedding': "Embedding ReversibleEmbedding",
    'engine.layers.input_spec': "InputSpec",
    'engine.layers.merging': (
        "Add Average Concatenate Dot Maximum Minimum Multiply Subtract add average concatenate dot maximum "
        "minimum multiply subtract"),
    'engine.layers.normalization': "BatchNormalization",
    'engine.layers.normalization_layers': "GroupNormalization LayerNormalization RMSNormalization UnitNormalization",
    'engine.layers.pooling': (
        "AveragePooling1D AveragePooling2D AvgPool1D AvgPool2D GlobalAveragePooling1D GlobalAveragePooling2D "
        "GlobalAvgPool1D GlobalAvgPool2D GlobalMaxPool1D GlobalMaxPool2D GlobalMaxPooling1D "
        "GlobalMaxPooling2D MaxPool1D MaxPool2D MaxPooling1D MaxPooling2D"),
    # (the preprocessing package resolves these to its own modules, also on first use)
    'engine.layers.preprocessing': (
        "CategoryEncoding CenterCrop Discretization Hashing IntegerLookup Normalization RandomBrightness "
        "RandomContrast RandomCrop RandomFlip RandomRotation RandomTranslation RandomZoom Rescaling Resizing "
        "StringLookup TextVectorization"),
    'engine.layers.recurrent': "Bidirectional GRU LSTM SimpleRNN",
    'engine.layers.regularization': (
        "ActivityRegularization AlphaDropout GaussianDropout GaussianNoise Masking SpatialDropout1D "
        "SpatialDropout2D SpatialDropout3D"),
    'engine.layers.reshaping': "Cropping1D Cropping2D UpSampling1D UpSampling2D ZeroPadding1D ZeroPadding2D",
    'engine.layers.rnn': "GRUCell LSTMCell RNN SimpleRNNCell StackedRNNCells TimeDistributed",
    'engine.layers.spectral_normalization': "SpectralNormalization",
    'engine.layers.wrappers': "Wrapper",
})
__getattr__, __dir__ = lazy_attributes(globals(), _LAZY)

register_builtin(Layer, "layers")   # user layers are written as "keras.layers", as Keras writes them
register_lazy("layers", {name: target for name, target in _LAZY.items() if name[:1].isupper()})


def serialize(layer):
    """A layer's config dictionary in Keras 3's format (module, class_name, config, registered_name).

    Args:
        layer: the layer to serialize.
    """
    from engine.saving.serialization import serialize_keras_object
    return serialize_keras_object(layer)


def deserialize(config, custom_objects=None):
    """The layer a `serialize` dictionary describes.

    Args:
        config: the dictionary `serialize` (or Keras) wrote.
        custom_objects: optional dict of names to custom classes the config refers to.
    """
    from engine.saving.serialization import deserialize_keras_object
    return deserialize_keras_object(config, custom_objects=custom_objects)


__all__ = public_names(globals(), _LAZY)   # `from ... import *` loads and binds every name
