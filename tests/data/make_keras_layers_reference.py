"""Regenerate the Keras-made files of the attention / normalization / transposed-convolution
layers and Keras's predictions on fixed inputs (not needed to run the tests):
    KERAS_BACKEND=jax python tests/data/make_keras_layers_reference.py
Writes keras_attention.keras + keras_attention.npz and keras_conv_transpose.keras +
keras_conv_transpose.npz (the npz holds the inputs "x" and Keras's outputs "y")."""
import os

import numpy as np
import keras
from keras import layers

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(0)


def save(model, name, x):
    model.compile("adam", "mse")
    y = model.predict(x, verbose=0)
    model.fit(x, y + 0.1, epochs=1, verbose=0)   # non-trivial weights and optimizer state
    model.save(os.path.join(here, f"{name}.keras"))
    np.savez(os.path.join(here, f"{name}.npz"), x=x, y=model.predict(x, verbose=0))


keras.utils.set_random_seed(0)
seq = keras.Input(shape=(6, 8), name="seq")
h = layers.MultiHeadAttention(2, 4, name="self_attention")(seq, seq, use_causal_mask=True)
h = layers.LayerNormalization(epsilon=1e-5, name="norm")(layers.Add()([seq, h]))
h = layers.MultiHeadAttention(2, 3, output_shape=5, name="cross")(h, seq)
h = layers.LayerNormalization(axis=[1, 2], name="norm_2d")(h)
save(keras.Model(seq, layers.Dense(3, name="head")(h), name="attention"), "keras_attention",
     rng.standard_normal((4, 6, 8)).astype("float32"))

keras.utils.set_random_seed(1)
img = keras.Input(shape=(5, 5, 3), name="img")
c = layers.Conv2DTranspose(4, 3, strides=2, padding="same", activation="relu", name="up")(img)
c = layers.Conv2DTranspose(2, (3, 2), strides=(2, 1), padding="valid", output_padding=(1, 0), name="up_2")(c)
c = layers.Conv2DTranspose(3, 2, dilation_rate=2, use_bias=False, name="dilated")(c)
save(keras.Model(img, c, name="conv_transpose"), "keras_conv_transpose",
     rng.standard_normal((2, 5, 5, 3)).astype("float32"))
