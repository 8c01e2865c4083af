"""Embedding: lookup against numpy, scatter-add gradient, id checks, masks."""
import numpy as np
import pytest

from engine import layers, Input, Model, GradientTape, ops

rng = np.random.default_rng(4)


def test_lookup_and_layout():
    layer = layers.Embedding(10, 3)
    ids = rng.integers(0, 10, (4, 6))
    out = layer(ids)
    table = layer.get_weights()[0]
    assert table.shape == (10, 3) and np.abs(table).max() <= 0.05
    np.testing.assert_array_equal(out, table[ids])
    assert layer(Input(shape=(None,), dtype="int32")).shape == (None, None, 3)


def test_gradient_sums_over_repeated_ids():
    layer = layers.Embedding(5, 2, dtype="float64")
    ids = np.array([[1, 1, 3], [1, 4, 4]])
    g = rng.standard_normal((2, 3, 2))
    with GradientTape() as tape:
        out = layer(ids)
        loss = ops.sum(ops.multiply(out, g))
    grad = tape.gradient(loss, layer.embeddings)
    expected = np.zeros((5, 2))
    np.add.at(expected, ids.reshape(-1), g.reshape(-1, 2))
    np.testing.assert_allclose(grad, expected)


@pytest.mark.parametrize("bad", [-1, 10, 1000])
def test_out_of_range_ids_name_the_layer_and_the_id(bad):
    layer = layers.Embedding(10, 3, name="words")
    ids = np.zeros((2, 4), dtype=np.int64)
    ids[1, 2] = bad
    with pytest.raises(ValueError, match=rf'"words".*id {bad}.*\(1, 2\)'):
        layer(ids)


def test_mask_zero_carries_state_over_padding():
    inp = Input(shape=(None,), dtype="int32")
    emb = layers.Embedding(20, 4, mask_zero=True)
    lstm = layers.LSTM(3)
    model = Model(inp, lstm(emb(inp)))
    ids = rng.integers(1, 20, (2, 5))
    padded = np.concatenate([ids, np.zeros((2, 3), dtype=ids.dtype)], axis=1)
    np.testing.assert_allclose(model.predict(padded, verbose=0), model.predict(ids, verbose=0), rtol=1e-5)


def test_float_ids_are_accepted_like_keras():
    layer = layers.Embedding(6, 2)
    np.testing.assert_array_equal(layer(np.array([[1.0, 5.0]])), layer(np.array([[1, 5]])))
