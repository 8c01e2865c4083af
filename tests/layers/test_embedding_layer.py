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


def _text_model(optimizer):
    inp = Input(shape=(None,), dtype="int32")
    x = layers.Embedding(500, 8, embeddings_initializer="random_normal")(inp)
    x = layers.GlobalAveragePooling1D()(x)
    out = layers.Dense(3, activation="softmax")(x)
    model = Model(inp, out)
    model.compile(optimizer=optimizer, loss="categorical_crossentropy")
    return model


@pytest.mark.parametrize("name", ["rmsprop", "adam", "sgd_momentum", "adagrad"])
def test_training_uses_row_gradients_with_the_dense_result(name):
    """The training step hands the embedding gradient to the optimizer by rows; the weights after
    a few steps are bit-identical to the dense update's (forced here by an update_step override,
    which is not known to take rows), and users of GradientTape still get a dense array."""
    from engine import optimizers
    make = {"rmsprop": optimizers.RMSprop, "adam": optimizers.Adam, "adagrad": optimizers.Adagrad,
            "sgd_momentum": lambda: optimizers.SGD(0.1, momentum=0.9)}[name]

    def dense_only():
        opt = make()

        class DenseOnly(type(opt)):
            def update_step(self, *args):
                return super().update_step(*args)
        opt.__class__ = DenseOnly
        return opt

    r = np.random.default_rng(9)
    ids = r.integers(0, 200, (64, 12)).astype(np.int32)               # rows 200..499 never used
    y = np.eye(3, dtype=np.float32)[r.integers(0, 3, 64)]
    rows_model, dense_model = _text_model(make()), _text_model(dense_only())
    dense_model.set_weights(rows_model.get_weights())
    for m in (rows_model, dense_model):
        m.fit(ids, y, epochs=3, batch_size=16, shuffle=False, verbose=0)
    for a, b in zip(rows_model.get_weights(), dense_model.get_weights()):
        np.testing.assert_array_equal(a, b)

    table = rows_model.layers[1].embeddings
    with GradientTape() as tape:
        loss = ops.sum(ops.multiply(rows_model(ids[:4]), np.array([1.0, 2.0, 3.0], np.float32)))
    grad = tape.gradient(loss, table)
    assert ops.is_tensor(grad) and grad.shape == (500, 8)
    grad = np.asarray(grad)
    assert not grad[200:].any() and grad[:200].any()


def test_shared_table_gradients_add_up():
    """One Embedding called on two inputs: the two row gradients sum to the dense total."""
    emb = layers.Embedding(50, 4)
    a, b = Input(shape=(3,), dtype="int32"), Input(shape=(3,), dtype="int32")
    model = Model([a, b], layers.Add()([emb(a), emb(b)]))
    ia, ib = np.array([[1, 2, 2]]), np.array([[2, 7, 1]])
    with GradientTape() as tape:
        loss = ops.sum(model([ia, ib]))
    grad = tape.gradient(loss, emb.embeddings)
    want = np.zeros((50, 4), np.float32)
    np.add.at(want, np.concatenate([ia, ib]).ravel(), 1.0)
    np.testing.assert_array_equal(grad, want)


# -- ReversibleEmbedding ----------------------------------------------------------------------------
@pytest.mark.parametrize("tie_weights,cap", [(True, None), (False, None), (True, 2.5)])
def test_reversible_embedding_both_ways(tie_weights, cap):
    from engine.testing import check_gradients
    g = np.random.default_rng(3)
    layer = layers.ReversibleEmbedding(7, 3, tie_weights=tie_weights, logit_soft_cap=cap, dtype="float64")
    ids = np.array([[0, 6, 2], [5, 5, 1]])
    layer(ids)
    assert [w.name for w in layer.weights] == ["embeddings"] + ([] if tie_weights else ["reverse_embeddings"])
    layer.set_weights([g.standard_normal(w.shape) for w in layer.get_weights()])
    table = layer.get_weights()[0]
    np.testing.assert_allclose(np.asarray(layer(ids)), table[ids], rtol=1e-12)
    vectors = g.standard_normal((2, 4, 3))
    kernel = table.T if tie_weights else layer.get_weights()[1]
    logits = vectors @ kernel
    if cap is not None:
        logits = cap * np.tanh(logits / cap)
    np.testing.assert_allclose(np.asarray(layer(vectors, reverse=True)), logits, rtol=1e-12)
    check_gradients(lambda v: layer(v, reverse=True), [vectors])
    assert layer.compute_output_shape((None, 4, 3), reverse=True) == (None, 4, 7)
    again = layers.ReversibleEmbedding.from_config(layer.get_config())
    assert again.tie_weights == tie_weights and again.logit_soft_cap == cap
    with pytest.raises(ValueError, match="output_dim=3"):
        layer(g.standard_normal((2, 5)), reverse=True)


def test_reversible_embedding_ties_a_language_model_head():
    import engine
    ids = engine.Input((4,), dtype="int32")
    emb = layers.ReversibleEmbedding(11, 5)
    out = emb(layers.Dense(5)(emb(ids)), reverse=True)
    assert out.shape == (None, 4, 11)
    model = engine.Model(ids, out)
    assert np.asarray(model(np.array([[1, 2, 3, 10]]))).shape == (1, 4, 11)
    assert len(model.trainable_weights) == 3           # one embeddings matrix, shared both ways
