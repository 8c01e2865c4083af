"""keras.backend / keras.config / keras.utils session helpers: names, clear_session, uids, dtype
predicates, the debugging caps on fit / evaluate / predict, and steps on array inputs."""
import os
import warnings

import numpy as np
import pytest

import engine
from engine import Input, Model, Sequential, backend, config, layers, utils


@pytest.fixture
def no_caps():
    yield
    config.set_max_epochs(None)
    config.set_max_steps_per_epoch(None)


def test_backend_names_itself_and_keeps_configs_settings():
    assert backend.backend() == config.backend() == "engine"
    assert backend.floatx() == config.floatx() and backend.epsilon() == config.epsilon()
    assert backend.get_num_threads() == config.get_num_threads()
    config.set_backend("engine")
    with pytest.raises(ValueError, match="import keras"):
        config.set_backend("jax")


def test_clear_session_restarts_automatic_names():
    backend.clear_session()
    first = layers.Dense(2).name
    assert layers.Dense(2).name == "dense_1"
    utils.clear_session(free_memory=False)
    assert first == "dense" and layers.Dense(2).name == "dense"
    model = Sequential([Input((3,)), layers.Dense(1)])
    backend.clear_session()
    assert Sequential([Input((3,)), layers.Dense(1)]).name == model.name


def test_get_uid_counts_per_prefix():
    backend.clear_session()
    assert [backend.get_uid("a"), backend.get_uid("a"), backend.get_uid("b"), backend.get_uid("a")] == [1, 2, 1, 3]


def test_dtype_predicates_and_keras_tensor():
    assert backend.is_float_dtype("float16") and backend.is_float_dtype(np.float64) and backend.is_float_dtype(float)
    assert not backend.is_float_dtype("int32") and backend.is_int_dtype("uint8") and backend.is_int_dtype(int)
    assert not backend.is_int_dtype("bool")
    assert backend.standardize_dtype(np.dtype("int64")) == utils.standardize_dtype("int64") == "int64"
    assert backend.result_type("int32", "float32") == "float32"
    x = Input((2,))
    assert utils.is_keras_tensor(x) and backend.is_keras_tensor(layers.Dense(1)(x))
    assert not utils.is_keras_tensor(np.ones(2)) and not utils.is_keras_tensor(engine.ops.ones((2,)))


def test_get_source_inputs_walks_back_to_the_inputs_depth_first():
    a, b = Input((3,), name="src_a"), Input((3,), name="src_b")
    dense = layers.Dense(2)
    y = layers.add([dense(b), dense(a)])
    assert utils.get_source_inputs(y) == [b, a]
    assert utils.get_source_inputs(a) == [a]
    inner = Model([a, b], y)
    c = Input((3,), name="src_c")
    assert utils.get_source_inputs(inner([c, c])) == [c]
    with pytest.raises(ValueError, match="symbolic tensor"):
        utils.get_source_inputs(np.ones(3))


def test_top_level_names():
    assert engine.version() == engine.__version__
    assert engine.InputSpec is layers.InputSpec and engine.KerasTensor is type(Input((1,)))
    assert engine.Initializer is engine.initializers.Initializer
    assert engine.Regularizer is engine.regularizers.Regularizer
    assert engine.models.save_model is engine.saving.save_model


def _model():
    model = Sequential([Input((2,)), layers.Dense(1, kernel_initializer="ones")])
    model.compile("sgd", "mse")
    return model


X = np.arange(200, dtype="float32").reshape(100, 2) / 100
Y = np.ones((100, 1), "float32")


def test_evaluate_and_predict_honour_steps_on_arrays():
    model = _model()
    assert model.evaluate(X, Y, batch_size=10, steps=2, verbose=0) == \
        pytest.approx(model.evaluate(X[:20], Y[:20], batch_size=10, verbose=0), rel=1e-6)
    out = model.predict(X, batch_size=10, steps=3, verbose=0)
    np.testing.assert_array_equal(out, model.predict(X[:30], verbose=0))
    with pytest.warns(UserWarning, match="ran out of data"):
        assert model.predict(X, batch_size=10, steps=12, verbose=0).shape == (100, 1)


def test_max_epochs_and_max_steps_cap_fit_evaluate_and_predict(no_caps):
    config.set_max_epochs(2)
    config.set_max_steps_per_epoch(3)
    assert config.max_epochs() == 2 and config.max_steps_per_epoch() == 3
    model = _model()
    seen = []

    class Count(engine.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(batch)

    with pytest.warns(UserWarning, match="Limiting epochs to 2|Limiting steps_per_epoch to 3"):
        history = model.fit(X, Y, batch_size=10, epochs=5, verbose=0, callbacks=[Count()])
    assert len(history.history["loss"]) == 2 and seen == [0, 1, 2, 0, 1, 2]
    with pytest.warns(UserWarning, match="Limiting steps_per_epoch to 3") as caught:
        assert model.predict(X, batch_size=10, verbose=0).shape == (30, 1)
    assert [w.filename for w in caught] == [__file__]      # the warning points at the caller's line
    with pytest.warns(UserWarning, match="Limiting epochs to 2|Limiting steps_per_epoch to 3") as caught:
        model.fit(X, Y, batch_size=10, epochs=5, verbose=0)
    assert sorted(str(w.message) for w in caught) == ["Limiting epochs to 2", "Limiting steps_per_epoch to 3"]
    assert {w.filename for w in caught} == {__file__}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        capped = model.evaluate(X, Y, batch_size=10, verbose=0)
    config.set_max_steps_per_epoch(None)
    assert capped == pytest.approx(model.evaluate(X[:30], Y[:30], batch_size=10, verbose=0), rel=1e-6)
    with pytest.raises(ValueError, match="positive integer"):
        config.set_max_epochs(0)


def test_device_scope_accepts_the_cpu_only():
    with engine.device("cpu:0") as d, engine.device("CPU"):
        assert d.name == "cpu:0"
        assert float(engine.ops.sum(engine.ops.ones((3,)))) == 3.0
    with pytest.raises(ValueError, match="CPU only"):
        engine.device("gpu:0")


def test_callback_list_adds_history_and_progbar_once():
    from engine import callbacks
    model = _model()
    cbs = callbacks.CallbackList(add_history=True, add_progbar=True, model=model, epochs=1, steps=1, verbose=0)
    kinds = [type(c).__name__ for c in cbs.callbacks]
    assert kinds == ["History", "ProgbarLogger"] and model.history is cbs.callbacks[0]
    cbs.on_train_begin()
    cbs.on_epoch_end(0, {"loss": 1.5})
    assert model.history.history == {"loss": [1.5]}
    mine = callbacks.History()
    again = callbacks.CallbackList([mine], add_history=True, model=model)
    assert again.callbacks == [mine] and model.history is mine
    assert callbacks.CallbackList([]).callbacks == []


def test_errors_in_fit_come_without_engine_frames_unless_filtering_is_off():
    import traceback

    def calls_fit():
        model = _model()
        model.fit(np.ones((4, 5), "float32"), np.ones((4, 1), "float32"), verbose=0)

    def frames():
        with pytest.raises(ValueError, match="expects data of shape") as info:
            calls_fit()
        return [f.filename for f in traceback.extract_tb(info.value.__traceback__)]

    engine_dir = os.path.dirname(engine.__file__)
    assert config.is_traceback_filtering_enabled()
    short = frames()
    assert not any(f.startswith(engine_dir) and not f.endswith("traceback_utils.py") for f in short)
    assert short[0] == __file__
    config.disable_traceback_filtering()
    try:
        assert not config.is_traceback_filtering_enabled()
        full = frames()
        assert sum(f.startswith(engine_dir) for f in full) > 2
    finally:
        config.enable_traceback_filtering()
    assert config.is_traceback_filtering_enabled()


def test_flash_attention_switches_as_keras_and_flash_refuses_dropout():
    assert config.is_flash_attention_enabled() is None and config.is_nnx_enabled() is False
    config.disable_flash_attention()
    assert config.is_flash_attention_enabled() is False
    config.enable_flash_attention()
    assert config.is_flash_attention_enabled() is None
    with pytest.raises(ValueError, match="dropout is not supported"):
        layers.MultiHeadAttention(2, 4, dropout=0.1, flash_attention=True)
    assert layers.MultiHeadAttention(2, 4, dropout=0.1).flash_attention is None


def test_keras_flash_attention_switches_match():
    keras = pytest.importorskip("keras")
    for switch in ("disable_flash_attention", "enable_flash_attention"):
        getattr(keras.config, switch)()
        getattr(config, switch)()
        assert config.is_flash_attention_enabled() == keras.config.is_flash_attention_enabled()


def test_variable_takes_keras_arguments_in_keras_order():
    v = engine.Variable(np.ones(2), (2,), "float64", False, False, "none", "auto", "v")
    assert (v.name, v.trainable, v.autocast, v.dtype) == ("v", False, False, np.dtype("float64"))
    assert engine.Variable(1.0).autocast is True
    with pytest.raises(ValueError, match="layout"):
        engine.Variable(1.0, layout=object())


def test_variable_keeps_and_checks_aggregation_and_synchronization():
    # Keras 3's values and attributes: None is stored as "none", anything else is refused
    v = engine.Variable(1.0, aggregation="mean", synchronization="on_read")
    assert (v.aggregation, v.synchronization) == ("mean", "on_read")
    default = engine.Variable(1.0)
    assert (default.aggregation, default.synchronization) == ("none", "auto")
    unset = engine.Variable(1.0, aggregation=None, synchronization=None)
    assert (unset.aggregation, unset.synchronization) == ("none", "none")
    for argument in ("aggregation", "synchronization"):
        with pytest.raises(ValueError, match=f"{argument}='bogus'"):
            engine.Variable(1.0, **{argument: "bogus"})
