"""Regenerate keras_preprocessing.keras (TextVectorization + Normalization) and Keras's predictions
for it (not needed to run the tests). Keras's text layers need TensorFlow, so run it with Keras 3 on
the TensorFlow backend:  KERAS_BACKEND=tensorflow python tests/data/make_keras_preprocessing.py"""
import json
import os

import numpy as np
import keras
from keras import layers

here = os.path.dirname(os.path.abspath(__file__))
keras.utils.set_random_seed(0)
texts = ["The cat sat on the mat.", "The dog ate my homework!", "A cat, a dog, a bird?", "Birds sing; cats purr."]
rng = np.random.default_rng(0)
numbers = rng.normal(5.0, 2.0, size=(4, 3)).astype("float32")

words = layers.TextVectorization(max_tokens=12, output_sequence_length=5, name="words")
words.adapt(texts)
weights = layers.TextVectorization(output_mode="tf_idf", ngrams=2, name="weights")
weights.adapt(texts)
norm = layers.Normalization(name="norm")
norm.adapt(numbers)

text_in = keras.Input(shape=(), dtype="string", name="text")
num_in = keras.Input(shape=(3,), name="numbers")
ids = words(text_in)
emb = layers.GlobalAveragePooling1D(name="pool")(layers.Embedding(12, 4, name="emb")(ids))
h = layers.concatenate([emb, weights(text_in), norm(num_in)], name="merge")
out = layers.Dense(2, name="out")(h)
model = keras.Model([text_in, num_in], [out, ids], name="preprocessing")
model.save(os.path.join(here, "keras_preprocessing.keras"))

queries = ["the cat and the dog", "unknown words only", "Birds, birds, BIRDS"]
query_numbers = rng.normal(5.0, 2.0, size=(3, 3)).astype("float32")
scores, token_ids = model([keras.ops.convert_to_tensor(queries), keras.ops.convert_to_tensor(query_numbers)])
reference = {"texts": queries, "numbers": query_numbers.tolist(), "scores": np.asarray(scores).tolist(),
             "ids": np.asarray(token_ids).tolist(), "words_vocabulary": [str(t) for t in words.get_vocabulary()],
             "weights_vocabulary": [str(t) for t in weights.get_vocabulary()]}
with open(os.path.join(here, "keras_preprocessing.json"), "w") as f:
    json.dump(reference, f, indent=1)
