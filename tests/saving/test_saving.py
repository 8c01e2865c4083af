"""Saving and loading: Keras 3's .keras and .weights.h5 formats both ways, configs and JSON,
safe loading and atomic writes."""
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import engine
from engine import layers, Input, Model, Sequential
from engine.models import load_model, model_from_json, clone_model

pytest.importorskip("h5py")
DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")
rng = np.random.default_rng(0)


def assert_same_predictions(a, b, x):
    pa, pb = a.predict(x, verbose=0), b.predict(x, verbose=0)
    for u, v in zip(pa if isinstance(pa, list) else [pa], pb if isinstance(pb, list) else [pb]):
        np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-7)


def test_a_keras_3_file_loads_with_the_same_predictions():
    model = load_model(os.path.join(DATA, "keras_reference.keras"))
    io = np.load(os.path.join(DATA, "keras_reference_io.npz"))
    cls, reg = model.predict({"ids": io["ids"], "feats": io["feats"]}, verbose=0)
    np.testing.assert_allclose(cls, io["cls"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(reg, io["reg"], rtol=1e-5, atol=1e-6)
    assert isinstance(model.optimizer, engine.optimizers.RMSprop)
    assert int(model.optimizer.iterations.numpy()) == 2  # two epochs of one batch each
    assert [type(l).__name__ for l in model.layers].count("LSTM") == 1


def many_layer_model():
    ids = Input(shape=(10,), dtype="int32", name="ids")
    img = Input(shape=(8, 8, 3), name="img")
    e = layers.Embedding(20, 6)(ids)
    s = layers.Conv1D(4, 3, padding="causal", activation="relu")(e)
    s = layers.Bidirectional(layers.LSTM(3, return_sequences=True))(s)
    s = layers.GRU(2)(layers.SimpleRNN(3, return_sequences=True)(s))
    i = layers.SeparableConv2D(4, 3, padding="same")(img)
    i = layers.DepthwiseConv2D(3, depth_multiplier=2)(i)
    i = layers.BatchNormalization()(layers.AveragePooling2D()(i))
    i = layers.GlobalMaxPooling2D()(layers.Conv2D(5, 1, activation="relu")(i))
    shared = layers.Dense(4, activation="tanh")
    h = layers.concatenate([shared(layers.Dense(4)(s)), shared(layers.Dense(4)(i))])
    h = layers.Dropout(0.1)(layers.Reshape((2, 4))(h))
    h = layers.Flatten()(h)
    return Model([ids, img], [layers.Dense(3, activation="softmax", name="a")(h), layers.Dense(1, name="b")(h)])


def test_round_trip_of_every_layer_kind_keeps_predictions_and_the_next_step(tmp_path):
    model = many_layer_model()
    model.compile("adam", ["categorical_crossentropy", "mse"], loss_weights=[1.0, 0.5])
    x = [rng.integers(0, 20, (6, 10)), rng.random((6, 8, 8, 3))]
    y = [np.eye(3)[rng.integers(0, 3, 6)], rng.random((6, 1))]
    model.fit(x, y, epochs=2, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = load_model(path)
    assert_same_predictions(model, loaded, x)
    assert loaded.count_params() == model.count_params()
    assert [w.shape for w in loaded.weights] == [w.shape for w in model.weights]
    engine.utils.set_random_seed(1)
    model.train_on_batch(x, y)
    engine.utils.set_random_seed(1)
    loaded.train_on_batch(x, y)
    assert_same_predictions(model, loaded, x)


def test_nested_and_sequential_models_round_trip(tmp_path):
    inner_in = Input(shape=(5,))
    inner = Model(inner_in, layers.Dense(3)(inner_in), name="inner")
    a, b = Input(shape=(5,)), Input(shape=(5,))
    outer = Model([a, b], layers.add([inner(a), inner(b)]))
    x = [rng.random((4, 5)), rng.random((4, 5))]
    outer.save(tmp_path / "nested.keras")
    assert_same_predictions(outer, load_model(str(tmp_path / "nested.keras")), x)

    seq = Sequential([layers.Dense(4, activation="relu", input_shape=(3,)), layers.Dense(2)])
    seq.compile("sgd", "mse")
    seq.save(str(tmp_path / "seq.keras"))
    loaded = load_model(str(tmp_path / "seq.keras"))
    assert isinstance(loaded, Sequential)
    assert_same_predictions(seq, loaded, rng.random((4, 3)))


def test_weights_files_json_and_clone(tmp_path):
    model = many_layer_model()
    x = [rng.integers(0, 20, (3, 10)), rng.random((3, 8, 8, 3))]
    path = str(tmp_path / "w.weights.h5")
    model.save_weights(path)
    twin = model_from_json(model.to_json())
    assert not np.allclose(twin.predict(x, verbose=0)[1], model.predict(x, verbose=0)[1])
    twin.load_weights(path)
    assert_same_predictions(model, twin, x)
    clone = clone_model(model)
    assert clone.count_params() == model.count_params()
    assert all(a is not b for a, b in zip(clone.weights, model.weights))
    with pytest.raises(ValueError, match="weights.h5"):
        model.save_weights(str(tmp_path / "w.h5"))


def test_mismatched_weights_leave_the_model_untouched(tmp_path):
    small = Sequential([layers.Dense(2, input_shape=(3,))])
    other = Sequential([layers.Dense(4, input_shape=(3,))])
    path = str(tmp_path / "other.weights.h5")
    other.save_weights(path)
    before = small.get_weights()
    with pytest.raises(ValueError, match=r"shape \(3, 4\).*\(3, 2\)"):
        small.load_weights(path)
    for a, b in zip(before, small.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_corrupt_truncated_and_incomplete_files(tmp_path):
    model = Sequential([layers.Dense(2, input_shape=(3,))])
    good = str(tmp_path / "good.keras")
    model.save(good)
    data = open(good, "rb").read()
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a .keras file|corrupt"):
        load_model(str(truncated))
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="not a .keras file"):
        load_model(str(garbage))
    incomplete = str(tmp_path / "incomplete.keras")
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(incomplete, "w") as dst:
        dst.writestr("config.json", src.read("config.json"))
    with pytest.raises(ValueError, match="model.weights.h5"):
        load_model(incomplete)


def _archive_with_config(path, config):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps(config))
        z.writestr("metadata.json", "{}")
        z.writestr("model.weights.h5", b"")


def test_lambda_layers_and_unknown_classes_are_refused(tmp_path):
    lam = {"module": "keras.layers", "class_name": "Lambda", "config": {"function": "print('pwned')"}}
    cfg = {"module": "keras", "class_name": "Sequential",
           "config": {"name": "s", "layers": [{"module": "keras.layers", "class_name": "InputLayer",
                                                "config": {"batch_shape": [None, 3], "name": "i"}}, lam]}}
    path = str(tmp_path / "lambda.keras")
    _archive_with_config(path, cfg)
    with pytest.raises(ValueError, match="safe_mode=False"):
        load_model(path)
    cfg["config"]["layers"][1] = {"module": "evil.module", "class_name": "RunAnything", "config": {}}
    _archive_with_config(path, cfg)
    with pytest.raises(ValueError, match="Unknown class 'RunAnything'.*Known classes:.*Dense"):
        load_model(path)


def test_custom_layers_through_registration_and_custom_objects(tmp_path):
    @engine.saving.register_keras_serializable(package="tests")
    class Scale(layers.Layer):
        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, inputs):
            return engine.ops.multiply(inputs, self.factor)

        def compute_output_shape(self, shape):
            return shape

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    inp = Input(shape=(2,))
    model = Model(inp, Scale(3.0)(inp))
    model.save(str(tmp_path / "custom.keras"))
    loaded = load_model(str(tmp_path / "custom.keras"))
    np.testing.assert_allclose(loaded.predict(np.ones((1, 2)), verbose=0), 3.0)


def test_an_interrupted_save_keeps_the_previous_file(tmp_path):
    model = Sequential([layers.Dense(2, input_shape=(3,))])
    path = str(tmp_path / "keep.keras")
    model.save(path)
    before = open(path, "rb").read()
    # A process killed in the middle of writing the new archive.
    script = f"""
import os, sys
sys.path.insert(0, {os.getcwd()!r})
import engine
from engine import layers, Sequential
from engine.saving import weights
def die(*args, **kwargs):
    os._exit(1)
weights.save_weights_to_h5 = die
Sequential([layers.Dense(2, input_shape=(3,))]).save({path!r})
"""
    assert subprocess.run([sys.executable, "-c", script]).returncode == 1
    assert open(path, "rb").read() == before
    load_model(path)


def test_saving_a_lambda_layer_says_what_to_do_instead(tmp_path):
    inp = Input(shape=(2,))
    model = Model(inp, layers.Lambda(lambda t: engine.ops.multiply(t, 2.0))(inp))
    with pytest.raises(ValueError, match="register_keras_serializable"):
        model.save(str(tmp_path / "lambda.keras"))
    assert not os.path.exists(tmp_path / "lambda.keras")


def test_without_h5py_the_error_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "h5py", None)
    model = Sequential([layers.Dense(2, input_shape=(3,))])
    with pytest.raises(ImportError, match="pip install h5py"):
        model.save_weights(str(tmp_path / "w.weights.h5"))


def test_keras_reads_what_engine_writes(tmp_path):
    """Runs where Keras 3 is installed (a bench extra): engine's file gives Keras the same predictions."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    model = many_layer_model()
    model.compile("rmsprop", ["categorical_crossentropy", "mse"])
    x = [rng.integers(0, 20, (4, 10)), rng.random((4, 8, 8, 3)).astype("float32")]
    model.fit(x, [np.eye(3)[[0, 1, 2, 0]], rng.random((4, 1))], verbose=0)
    path = str(tmp_path / "for_keras.keras")
    model.save(path)
    theirs = keras.saving.load_model(path)
    for ours, their in zip(model.predict(x, verbose=0), theirs.predict(x, verbose=0)):
        np.testing.assert_allclose(ours, np.asarray(their), rtol=1e-4, atol=1e-5)
