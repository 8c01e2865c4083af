"""Xception (Chollet, 2017) with Keras's architecture and layer names.

No weights can be downloaded here: `weights` must be None (random initialization)
or the path of a weights file saved from this architecture.
"""
import os

from engine import layers
from engine.layers.input_layer import Input
from engine.models.functional import Functional


def _check_weights(weights):
    if weights is None:
        return None
    if isinstance(weights, str) and os.path.exists(weights):
        return weights
    raise ValueError(f"Xception: weights={weights!r} cannot be used: engine never downloads anything. Pass "
                     f"weights=None for random initialization, or the path of a local weights file.")


def _separable_block(x, filters, prefix, first_activation=True):
    if first_activation:
        x = layers.Activation("relu", name=f"{prefix}_sepconv1_act")(x)
    x = layers.SeparableConv2D(filters[0], (3, 3), padding="same", use_bias=False, name=f"{prefix}_sepconv1")(x)
    x = layers.BatchNormalization(name=f"{prefix}_sepconv1_bn")(x)
    x = layers.Activation("relu", name=f"{prefix}_sepconv2_act")(x)
    x = layers.SeparableConv2D(filters[1], (3, 3), padding="same", use_bias=False, name=f"{prefix}_sepconv2")(x)
    x = layers.BatchNormalization(name=f"{prefix}_sepconv2_bn")(x)
    return x


def _downsampling_block(x, filters, prefix, first_activation=True):
    residual = layers.Conv2D(filters[1], (1, 1), strides=(2, 2), padding="same", use_bias=False)(x)
    residual = layers.BatchNormalization()(residual)
    x = _separable_block(x, filters, prefix, first_activation)
    x = layers.MaxPooling2D((3, 3), strides=(2, 2), padding="same", name=f"{prefix}_pool")(x)
    return layers.add([x, residual])


def Xception(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None, classes=1000,
             classifier_activation="softmax", name="xception"):
    """The Xception network; `include_top=False` gives the convolutional base (outputs 2048 channels)."""
    weights_path = _check_weights(weights)
    if input_shape is None:
        input_shape = (299, 299, 3) if include_top else (None, None, 3)
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(f"Xception: input_shape must be (height, width, 3), got {input_shape}")
    for side in input_shape[:2]:
        if side is not None and side < 71:
            raise ValueError(f"Xception: input height and width must be at least 71, got {input_shape}")
    img_input = Input(shape=input_shape) if input_tensor is None else input_tensor

    x = layers.Conv2D(32, (3, 3), strides=(2, 2), use_bias=False, name="block1_conv1")(img_input)
    x = layers.BatchNormalization(name="block1_conv1_bn")(x)
    x = layers.Activation("relu", name="block1_conv1_act")(x)
    x = layers.Conv2D(64, (3, 3), use_bias=False, name="block1_conv2")(x)
    x = layers.BatchNormalization(name="block1_conv2_bn")(x)
    x = layers.Activation("relu", name="block1_conv2_act")(x)

    x = _downsampling_block(x, (128, 128), "block2", first_activation=False)
    x = _downsampling_block(x, (256, 256), "block3")
    x = _downsampling_block(x, (728, 728), "block4")

    for i in range(8):
        prefix = f"block{i + 5}"
        residual = x
        x = _separable_block(x, (728, 728), prefix)
        x = layers.Activation("relu", name=f"{prefix}_sepconv3_act")(x)
        x = layers.SeparableConv2D(728, (3, 3), padding="same", use_bias=False, name=f"{prefix}_sepconv3")(x)
        x = layers.BatchNormalization(name=f"{prefix}_sepconv3_bn")(x)
        x = layers.add([x, residual])

    x = _downsampling_block(x, (728, 1024), "block13")

    x = layers.SeparableConv2D(1536, (3, 3), padding="same", use_bias=False, name="block14_sepconv1")(x)
    x = layers.BatchNormalization(name="block14_sepconv1_bn")(x)
    x = layers.Activation("relu", name="block14_sepconv1_act")(x)
    x = layers.SeparableConv2D(2048, (3, 3), padding="same", use_bias=False, name="block14_sepconv2")(x)
    x = layers.BatchNormalization(name="block14_sepconv2_bn")(x)
    x = layers.Activation("relu", name="block14_sepconv2_act")(x)

    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D()(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D()(x)

    inputs = img_input
    model = Functional(inputs, x, name=name)
    if weights_path is not None:
        model.load_weights(weights_path)
    return model
