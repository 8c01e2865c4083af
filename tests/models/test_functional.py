"""Functional graphs: branches, shared layers, nested models, multiple inputs and outputs."""
import numpy as np
import pytest

import engine
from engine import Input, layers, Model, Sequential


def test_residual_branches_and_shared_layer_weights_counted_once():
    inp = Input(shape=(8,))
    shared = layers.Dense(8, activation="tanh")
    a = shared(inp)
    b = shared(a)
    out = layers.add([a, b, inp])
    model = Model(inp, out)
    assert model.count_params() == 8 * 8 + 8
    assert len(model.weights) == 2
    x = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    w, c = shared.get_weights()
    ha = np.tanh(x @ w + c)
    hb = np.tanh(ha @ w + c)
    np.testing.assert_allclose(model.predict(x, verbose=0), ha + hb + x, rtol=1e-5, atol=1e-6)


def test_shared_layer_gradients_are_summed():
    inp1, inp2 = Input(shape=(3,)), Input(shape=(3,))
    shared = layers.Dense(2, dtype="float64")
    out = layers.add([shared(inp1), shared(inp2)])
    model = Model([inp1, inp2], out)
    x1, x2 = np.ones((4, 3)), 2 * np.ones((4, 3))
    with engine.GradientTape() as tape:
        y = engine.ops.sum(model([x1, x2]))
    gk, gb = tape.gradient(y, shared.trainable_weights)
    np.testing.assert_allclose(gk, np.full((3, 2), 4 * 1.0 + 4 * 2.0))
    np.testing.assert_allclose(gb, np.full((2,), 8.0))


def test_model_called_as_layer_reuses_weights_and_nests_in_summary(capsys):
    inner_in = Input(shape=(4,))
    inner = Model(inner_in, layers.Dense(3)(inner_in), name="inner")
    a, b = Input(shape=(4,)), Input(shape=(4,))
    merged = layers.concatenate([inner(a), inner(b)])
    outer = Model([a, b], layers.Dense(1)(merged))
    assert outer.count_params() == (4 * 3 + 3) + (6 + 1)
    outer.summary()
    text = capsys.readouterr().out
    assert text.count("inner (Functional)") == 1
    assert "Connected to" in text
    x = np.ones((2, 4), dtype=np.float32)
    y_inner = inner.predict(x, verbose=0)
    full = outer.predict([x, x], verbose=0)
    w, c = outer.layers[-1].get_weights()
    np.testing.assert_allclose(full, np.concatenate([y_inner, y_inner], 1) @ w + c, rtol=1e-5)


def test_multi_output_training_with_lists_and_dicts():
    inp = Input(shape=(6,), name="features")
    h = layers.Dense(8, activation="relu")(inp)
    reg = layers.Dense(1, name="age")(h)
    cls = layers.Dense(3, activation="softmax", name="kind")(h)
    model = Model(inp, [reg, cls])
    rng = np.random.default_rng(0)
    x = rng.random((64, 6))
    y_reg = rng.random((64, 1))
    y_cls = engine.utils.to_categorical(rng.integers(0, 3, 64), 3)
    model.compile("adam", loss=["mse", "categorical_crossentropy"], loss_weights=[0.5, 2.0], metrics=["acc"])
    h1 = model.fit(x, [y_reg, y_cls], epochs=2, batch_size=16, verbose=0)
    assert set(h1.history) == {"loss", "age_loss", "kind_loss", "age_acc", "kind_acc"}
    loss, age_loss, kind_loss = (h1.history[k][-1] for k in ("loss", "age_loss", "kind_loss"))
    assert np.isfinite([loss, age_loss, kind_loss]).all()
    # Each output's loss against values computed here from the predictions, in float64.  With a
    # learning rate of 0 the weights stay, so fit's epoch means (4 equal batches) are these too.
    pred_reg, pred_cls = (p.astype(np.float64) for p in model.predict(x, verbose=0))
    want_age = np.mean((pred_reg - y_reg) ** 2)
    want_kind = np.mean(-np.sum(y_cls * np.log(np.clip(pred_cls, 1e-7, 1 - 1e-7)), axis=1))
    model.compile(engine.optimizers.SGD(learning_rate=0.0),
                  loss=["mse", "categorical_crossentropy"], loss_weights=[0.5, 2.0])
    h0 = model.fit(x, [y_reg, y_cls], epochs=1, batch_size=16, shuffle=False, verbose=0).history
    np.testing.assert_allclose(h0["age_loss"][0], want_age, rtol=1e-5)
    np.testing.assert_allclose(h0["kind_loss"][0], want_kind, rtol=1e-5)
    np.testing.assert_allclose(h0["loss"][0], 0.5 * want_age + 2.0 * want_kind, rtol=1e-5)
    model.compile("adam", loss={"age": "mse", "kind": "categorical_crossentropy"},
                  loss_weights={"age": 0.5, "kind": 2.0})
    logs = model.evaluate(x, {"age": y_reg, "kind": y_cls}, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["age_loss"], want_age, rtol=1e-5)
    np.testing.assert_allclose(logs["kind_loss"], want_kind, rtol=1e-5)
    np.testing.assert_allclose(logs["loss"], 0.5 * want_age + 2.0 * want_kind, rtol=1e-5)
    preds = model.predict(x, verbose=0)
    assert isinstance(preds, list) and preds[0].shape == (64, 1) and preds[1].shape == (64, 3)


def test_multi_input_fit_with_list_and_dict_and_clear_key_errors():
    a, b = Input(shape=(3,), name="left"), Input(shape=(2,), name="right")
    out = layers.Dense(1)(layers.concatenate([a, b]))
    model = Model([a, b], out)
    model.compile("sgd", "mse")
    xa, xb, y = np.ones((10, 3)), np.ones((10, 2)), np.zeros((10, 1))
    model.fit([xa, xb], y, verbose=0)
    model.fit({"left": xa, "right": xb}, y, verbose=0)
    with pytest.raises(ValueError, match="unknown key.*'middle'"):
        model.fit({"left": xa, "middle": xb}, y, verbose=0)
    with pytest.raises(ValueError, match="missing key.*'right'"):
        model.fit({"left": xa}, y, verbose=0)
    with pytest.raises(ValueError, match="2 inputs"):
        model.fit(xa, y, verbose=0)


def test_bad_data_errors_name_the_input_and_shapes():
    inp = Input(shape=(64,), name="features")
    model = Model(inp, layers.Dense(2)(inp))
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match=r'"features".*\(None, 64\).*\(10, 63\)'):
        model.fit(np.zeros((10, 63)), np.zeros((10, 2)), verbose=0)
    with pytest.raises(ValueError, match="10 samples.*9"):
        model.fit(np.zeros((10, 64)), np.zeros((9, 2)), verbose=0)
    with pytest.raises(ValueError, match="numeric"):
        model.fit(np.array([["a"] * 64] * 10), np.zeros((10, 2)), verbose=0)
    with pytest.raises(ValueError, match="dense"):
        model.layers[1](np.zeros((3, 5), dtype=np.float32))


def test_accepts_noncontiguous_float64_and_integer_arrays_and_survives_nan(capsys):
    inp = Input(shape=(4,))
    model = Model(inp, layers.Dense(1)(inp))
    model.compile("rmsprop", "mse")
    x = np.arange(80, dtype=np.float64).reshape(10, 8)[:, ::2]
    assert not x.flags.c_contiguous
    model.fit(x, np.zeros((10, 1)), verbose=0)
    model.fit(np.arange(40, dtype=np.int64).reshape(10, 4), np.zeros((10, 1), dtype=np.int32), verbose=0)
    x_nan = np.ones((10, 4))
    x_nan[3, 1] = np.nan
    # A NaN input is not hidden or dropped (as in Keras): the loss of every epoch says NaN, and
    # the weights it reached are NaN; TerminateOnNaN stops at the first NaN batch.
    history = model.fit(x_nan, np.zeros((10, 1)), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and np.isnan(history.history["loss"]).all()
    assert all(np.isnan(w).any() for w in model.get_weights())
    fresh = Model(inp, layers.Dense(1)(inp))
    fresh.compile("rmsprop", "mse")
    stopped = fresh.fit(x_nan, np.zeros((10, 1)), epochs=5, batch_size=2, shuffle=False, verbose=0,
                        callbacks=[engine.callbacks.TerminateOnNaN()])
    assert len(stopped.history["loss"]) == 1 and np.isnan(stopped.history["loss"][0])
    assert capsys.readouterr().out.strip() == "Batch 1: Invalid loss, terminating training"  # rows 2-3


def test_sequential_variants():
    m = Sequential([layers.Dense(4, input_shape=(3,)), layers.Dense(2)])
    assert m.count_params() == 3 * 4 + 4 + 4 * 2 + 2
    m2 = Sequential([Input(shape=(3,)), layers.Dense(2)])
    assert m2.output_shape == (None, 2)
    m3 = Sequential()
    m3.add(layers.Dense(2))
    m3.compile("sgd", "mse")
    m3.fit(np.ones((4, 5)), np.ones((4, 2)), verbose=0)
    assert m3.layers[0].kernel.shape == (5, 2)
    assert m.get_layer(index=1) is m.layers[1]


def test_get_layer_and_properties():
    inp = Input(shape=(3,), name="x")
    d = layers.Dense(2, name="head")
    model = Model(inp, d(inp), name="tiny")
    assert model.get_layer("head") is d
    assert model.inputs[0] is inp and model.outputs[0].shape == (None, 2)
    with pytest.raises(ValueError, match="No such layer"):
        model.get_layer("nope")
    assert model.name == "tiny"
