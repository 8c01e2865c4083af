"""Regenerate keras_preprocessing.keras (TextVectorization and Normalization, with StringLookup,
IntegerLookup, Hashing and Discretization beside them) and Keras's predictions
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

colours = layers.StringLookup(name="colours")
colours.adapt(["red", "green", "green", "blue", "red", "red"])
codes = layers.IntegerLookup(num_oov_indices=2, name="codes")
codes.adapt([10, 20, 20, 30, 30, 30])
buckets = layers.Discretization(num_bins=4, name="buckets")
buckets.adapt(numbers)

text_in = keras.Input(shape=(), dtype="string", name="text")
num_in = keras.Input(shape=(3,), name="numbers")
colour_in = keras.Input(shape=(1,), dtype="string", name="colour")
code_in = keras.Input(shape=(1,), dtype="int64", name="code")
ids = words(text_in)
emb = layers.GlobalAveragePooling1D(name="pool")(layers.Embedding(12, 4, name="emb")(ids))
h = layers.concatenate([emb, weights(text_in), norm(num_in)], name="merge")
out = layers.Dense(2, name="out")(h)
extras = [colours(colour_in), layers.Hashing(7, salt=3, name="hashed")(colour_in), codes(code_in), buckets(num_in)]
model = keras.Model([text_in, num_in, colour_in, code_in], [out, ids] + extras, name="preprocessing")
model.save(os.path.join(here, "keras_preprocessing.keras"))

queries = ["the cat and the dog", "unknown words only", "Birds, birds, BIRDS"]
query_numbers = rng.normal(5.0, 2.0, size=(3, 3)).astype("float32")
query_colours = [["red"], ["pink"], ["blue"]]
query_codes = [[20], [99], [10]]
results = model([keras.ops.convert_to_tensor(v) for v in (queries, query_numbers, query_colours,
                                                           np.array(query_codes, dtype="int64"))])
names = ["scores", "ids", "colour_ids", "hashed", "code_ids", "buckets"]
reference = {"texts": queries, "numbers": query_numbers.tolist(), "colours": query_colours, "codes": query_codes,
             **{name: np.asarray(r).tolist() for name, r in zip(names, results)},
             "words_vocabulary": [str(t) for t in words.get_vocabulary()],
             "weights_vocabulary": [str(t) for t in weights.get_vocabulary()]}
with open(os.path.join(here, "keras_preprocessing.json"), "w") as f:
    json.dump(reference, f, indent=1)
