"""Regenerate keras_reference.keras and its expected predictions with Keras 3 (not needed to run
the tests; Keras is an optional bench extra):  KERAS_BACKEND=jax python tests/data/make_keras_reference.py"""
import os

import numpy as np
import keras
from keras import layers

here = os.path.dirname(os.path.abspath(__file__))
keras.utils.set_random_seed(0)
ids = keras.Input(shape=(12,), dtype="int32", name="ids")
feats = keras.Input(shape=(6, 5), name="feats")
e = layers.Embedding(30, 8, name="emb")(ids)
c = layers.Conv1D(4, 3, padding="same", activation="relu", name="conv")(e)
c = layers.MaxPooling1D(2, name="pool")(c)
r = layers.LSTM(3, name="lstm")(c)
g = layers.GRU(2, name="gru")(feats)
h = layers.concatenate([r, g], name="merge")
h = layers.Dense(5, activation="tanh", name="hidden")(h)
h = layers.BatchNormalization(name="bn")(h)
out_a = layers.Dense(3, activation="softmax", name="cls")(h)
out_b = layers.Dense(1, name="reg")(h)
model = keras.Model([ids, feats], [out_a, out_b], name="reference")
model.compile("rmsprop", ["categorical_crossentropy", "mse"])
rng = np.random.default_rng(0)
x = [rng.integers(0, 30, (16, 12)), rng.standard_normal((16, 6, 5)).astype("float32")]
y = [np.eye(3)[rng.integers(0, 3, 16)], rng.standard_normal((16, 1))]
model.fit(x, y, epochs=2, verbose=0)
model.save(os.path.join(here, "keras_reference.keras"))
# Inputs and Keras's predictions, one .npy file each, next to the model file.
outputs = model.predict(x, verbose=0)
for name, array in {"ids": x[0], "feats": x[1], "cls": outputs[0], "reg": outputs[1]}.items():
    np.save(os.path.join(here, f"keras_reference_{name}.npy"), np.asarray(array))
