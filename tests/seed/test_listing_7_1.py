"""Section 7.1.1 of the seed chapter, unchanged but for `keras` -> `engine` and seeded random data."""
import numpy as np
import pytest

import engine


def _build_models():
    from engine.models import Sequential, Model
    from engine import layers
    from engine import Input

    seq_model = Sequential()
    seq_model.add(layers.Dense(32, activation='relu', input_shape=(64,)))
    seq_model.add(layers.Dense(32, activation='relu'))
    seq_model.add(layers.Dense(10, activation='softmax'))

    input_tensor = Input(shape=(64,))
    x = layers.Dense(32, activation='relu')(input_tensor)
    x = layers.Dense(32, activation='relu')(x)
    output_tensor = layers.Dense(10, activation='softmax')(x)

    model = Model(input_tensor, output_tensor)
    return seq_model, model, output_tensor


def test_first_functional_example():
    from engine import Input, layers
    input_tensor = Input(shape=(32,))
    dense = layers.Dense(32, activation='relu')
    output_tensor = dense(input_tensor)
    assert output_tensor.shape == (None, 32)


def test_sequential_and_functional_summaries(capsys):
    seq_model, model, _ = _build_models()
    for m in (seq_model, model):
        m.summary()
        text = capsys.readouterr().out
        for count in ("2,080", "1,056", "330"):
            assert count in text
        assert "Total params: 3,466" in text
        assert "Trainable params: 3,466" in text
        assert "Non-trainable params: 0" in text
        assert "(None, 32)" in text and "(None, 10)" in text
    assert seq_model.count_params() == model.count_params() == 3466
    assert [w.shape for w in model.weights] == [(64, 32), (32,), (32, 32), (32,), (32, 10), (10,)]


def test_disconnected_graph_names_the_missing_input():
    from engine.models import Model
    from engine import Input
    _, model, output_tensor = _build_models()
    unrelated_input = Input(shape=(32,))
    with pytest.raises(ValueError) as err:
        bad_model = model = Model(unrelated_input, output_tensor)  # noqa: F841
    message = str(err.value)
    assert "Graph disconnected" in message
    assert model.inputs[0].name in message          # the input it cannot reach
    assert model.layers[1].name in message          # the layer that needs it


def test_compile_fit_evaluate_on_random_data(capsys):
    rng = np.random.default_rng(0)
    engine.utils.set_random_seed(0)     # the initial weights too: the loss must fall on this data
    _, model, _ = _build_models()
    model.compile(optimizer='rmsprop', loss='categorical_crossentropy')
    x_train = rng.random((1000, 64))
    y_train = rng.random((1000, 10))
    history = model.fit(x_train, y_train, epochs=10, batch_size=128)
    score = model.evaluate(x_train, y_train)
    out = capsys.readouterr().out
    assert "Epoch 1/10" in out and "Epoch 10/10" in out and "8/8" in out
    assert len(history.history["loss"]) == 10
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert np.isfinite(score) and abs(score - history.history["loss"][-1]) < 0.5
