"""engine.layers: the Keras layers, by family."""
from engine.layers.base import Layer
from engine.layers.input_layer import Input, InputLayer
from engine.layers.core import (Dense, Activation, Dropout, Flatten, Reshape, Permute, RepeatVector, Identity,
                                Lambda)
from engine.layers.merging import (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot,
                                   add, subtract, multiply, average, maximum, minimum, concatenate, dot)
from engine.layers.embedding import Embedding, ReversibleEmbedding
from engine.layers.recurrent import LSTM, GRU, SimpleRNN, Bidirectional
from engine.layers.convolutional import (Conv1D, Conv2D, DepthwiseConv2D, SeparableConv2D, Convolution1D,
                                         Convolution2D, SeparableConvolution2D)
from engine.layers.pooling import (MaxPooling1D, MaxPooling2D, AveragePooling1D, AveragePooling2D,
                                   GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalAveragePooling1D,
                                   GlobalAveragePooling2D, MaxPool1D, MaxPool2D, AvgPool1D, AvgPool2D,
                                   GlobalMaxPool1D, GlobalMaxPool2D, GlobalAvgPool1D, GlobalAvgPool2D)
from engine.layers.normalization import BatchNormalization
from engine.layers.reshaping import (ZeroPadding1D, ZeroPadding2D, UpSampling1D, UpSampling2D, Cropping1D,
                                     Cropping2D)
from engine.layers.preprocessing import (Normalization, Rescaling, Resizing, CenterCrop, RandomFlip, RandomRotation,
                                         RandomZoom, RandomTranslation, RandomContrast, RandomBrightness, RandomCrop,
                                         CategoryEncoding, Hashing, StringLookup, IntegerLookup, TextVectorization,
                                         Discretization)
from engine.layers.attention import MultiHeadAttention, Attention, AdditiveAttention, GroupQueryAttention
from engine.layers.normalization_layers import (LayerNormalization, GroupNormalization, RMSNormalization,
                                               UnitNormalization)
from engine.layers.activation_layers import ReLU, LeakyReLU, PReLU, ELU, Softmax
from engine.layers.regularization import (Masking, SpatialDropout1D, SpatialDropout2D, SpatialDropout3D,
                                          GaussianNoise, GaussianDropout, AlphaDropout, ActivityRegularization)
from engine.layers.conv_transpose import (Conv1DTranspose, Conv2DTranspose, Conv3DTranspose, Convolution1DTranspose,
                                          Convolution2DTranspose, Convolution3DTranspose)
from engine.layers.convolutional3d import (Conv3D, Convolution3D, MaxPooling3D, AveragePooling3D, MaxPool3D,
                                           AvgPool3D, GlobalMaxPooling3D, GlobalAveragePooling3D, GlobalMaxPool3D,
                                           GlobalAvgPool3D, ZeroPadding3D, UpSampling3D, Cropping3D)
from engine.layers.depthwise1d import DepthwiseConv1D, SeparableConv1D, SeparableConvolution1D
from engine.layers.rnn import RNN, SimpleRNNCell, LSTMCell, GRUCell, StackedRNNCells, TimeDistributed
from engine.layers.input_spec import InputSpec
from engine.layers.wrappers import Wrapper
from engine.layers.conv_lstm import ConvLSTM1D, ConvLSTM2D, ConvLSTM3D
from engine.layers.einsum_dense import EinsumDense
from engine.layers.spectral_normalization import SpectralNormalization
from engine.layers.adaptive_pooling import (AdaptiveAveragePooling1D, AdaptiveAveragePooling2D, AdaptiveAveragePooling3D,  # noqa: E501
                                            AdaptiveMaxPooling1D, AdaptiveMaxPooling2D, AdaptiveMaxPooling3D)


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
