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
    io = {name: np.load(os.path.join(DATA, f"keras_reference_{name}.npy")) for name in ("ids", "feats", "cls", "reg")}
    cls, reg = model.predict({"ids": io["ids"], "feats": io["feats"]}, verbose=0)
    np.testing.assert_allclose(cls, io["cls"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(reg, io["reg"], rtol=1e-5, atol=1e-6)
    assert isinstance(model.optimizer, engine.optimizers.RMSprop)
    assert int(model.optimizer.iterations.numpy()) == 2  # two epochs of one batch each
    assert [type(l).__name__ for l in model.layers].count("LSTM") == 1
    assert model.jit_compile is True and model.run_eagerly is False     # Keras wrote jit_compile: true


def test_compile_settings_round_trip(tmp_path):
    inputs = Input(shape=(4,))
    model = Model(inputs, layers.Dense(2, activation="softmax")(inputs))
    for kwargs in ({"jit_compile": False}, {"run_eagerly": True}, {"steps_per_execution": 3}, {}):
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"],
                      weighted_metrics=["mae"], **kwargs)
        path = str(tmp_path / "compiled.keras")
        model.save(path)
        with zipfile.ZipFile(path) as z:
            saved = json.loads(z.read("config.json"))["compile_config"]
        assert saved["jit_compile"] is model.jit_compile and saved["run_eagerly"] is model.run_eagerly
        assert saved["weighted_metrics"] == ["mae"]
        loaded = load_model(path)
        assert (loaded.jit_compile, loaded.run_eagerly) == (model.jit_compile, model.run_eagerly)
        assert saved["steps_per_execution"] == loaded.steps_per_execution == model.steps_per_execution
        assert loaded._weighted_metrics_spec == ["mae"]


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
    # A known class name from a module engine does not know is refused too, and nothing is imported.
    sys.modules.pop("antigravity", None)
    cfg["config"]["layers"][1] = {"module": "antigravity", "class_name": "Dense", "config": {"units": 2}}
    _archive_with_config(path, cfg)
    with pytest.raises(ValueError, match="Unknown class 'Dense' \\(module 'antigravity'\\)"):
        load_model(path)
    assert "antigravity" not in sys.modules


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


@engine.saving.register_keras_serializable(package="tests")
class TwoLayer(Model):
    """A subclassed model: rebuilt on load from the input shape recorded in build_config."""

    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = layers.Dense(units, activation="relu", kernel_regularizer="l2")
        self.head = layers.Dense(1)

    def call(self, inputs):
        return self.head(self.hidden(inputs))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def next_step_matches(model, loaded, x, y):
    engine.utils.set_random_seed(3)
    a = model.train_on_batch(x, y)
    engine.utils.set_random_seed(3)
    b = loaded.train_on_batch(x, y)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    assert_same_predictions(model, loaded, x)


def test_subclassed_model_with_metrics_and_regularizers_round_trips(tmp_path):
    model = TwoLayer(4)
    model.compile(engine.optimizers.SGD(0.05, momentum=0.9), "mse", metrics=["mae"])
    x, y = rng.random((8, 5)), rng.random((8, 1))
    model.fit(x, y, epochs=2, verbose=0)
    model.save(str(tmp_path / "sub.keras"))
    loaded = load_model(str(tmp_path / "sub.keras"))
    assert type(loaded) is TwoLayer and loaded.units == 4
    assert loaded.hidden.kernel_regularizer is not None
    assert loaded.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0))
    assert int(loaded.optimizer.iterations.numpy()) == 2
    next_step_matches(model, loaded, x, y)


def test_custom_objects_load_an_unregistered_class(tmp_path):
    class Offset(layers.Layer):
        def __init__(self, value=1.0, **kwargs):
            super().__init__(**kwargs)
            self.value = value

        def call(self, inputs):
            return engine.ops.add(inputs, self.value)

        def compute_output_shape(self, shape):
            return shape

        def get_config(self):
            return {**super().get_config(), "value": self.value}

    inp = Input(shape=(2,))
    model = Model(inp, Offset(5.0)(layers.Dense(2)(inp)))
    path = str(tmp_path / "offset.keras")
    model.save(path)
    with pytest.raises(ValueError, match="Unknown class 'Offset'.*custom_objects"):
        load_model(path)
    assert_same_predictions(model, load_model(path, custom_objects={"Offset": Offset}), rng.random((3, 2)))


def test_nested_sequential_and_shared_layers_keep_the_next_training_step(tmp_path):
    block = Sequential([layers.Dense(4, activation="tanh"), layers.Dense(4)], name="block")
    a, b = Input(shape=(4,), name="a"), Input(shape=(4,), name="b")
    shared = layers.Dense(4, name="shared")
    ya, yb = block(shared(a)), block(shared(b))
    model = Model([a, b], [layers.add([ya, yb]), layers.Dense(2, activation="softmax")(yb)])
    model.compile("adam", ["mse", "categorical_crossentropy"], loss_weights=[0.3, 1.0])
    x = [rng.random((6, 4)), rng.random((6, 4))]
    y = [rng.random((6, 4)), np.eye(2)[rng.integers(0, 2, 6)]]
    model.fit(x, y, epochs=2, verbose=0)
    model.save(str(tmp_path / "shared.keras"))
    loaded = load_model(str(tmp_path / "shared.keras"))
    assert len(loaded.get_layer("shared")._inbound_nodes) == 2
    next_step_matches(model, loaded, x, y)


def test_load_weights_from_a_keras_file_and_partial_files(tmp_path):
    model = Sequential([layers.Dense(3, input_shape=(2,)), layers.Dense(1)])
    path = str(tmp_path / "full.keras")
    model.save(path)
    twin = Sequential([layers.Dense(3, input_shape=(2,)), layers.Dense(1)])
    twin.load_weights(path)
    assert_same_predictions(model, twin, rng.random((4, 2)))

    bigger = Sequential([layers.Dense(3, input_shape=(2,)), layers.Dense(1), layers.Dense(2)])
    before = bigger.get_weights()
    with pytest.raises(ValueError, match="dense_2/vars holds 0 arrays"):
        bigger.load_weights(path)  # a weight group missing from the file
    smaller = Sequential([layers.Dense(3, input_shape=(2,))])
    with pytest.raises(ValueError, match="no place for"):
        smaller.load_weights(path)  # arrays in the file the model cannot take
    for u, v in zip(before, bigger.get_weights()):
        np.testing.assert_array_equal(u, v)
    bigger.load_weights(path, skip_mismatch=True)
    np.testing.assert_array_equal(bigger.layers[0].kernel.numpy(), model.layers[0].kernel.numpy())


def _rewrite_member(src, dst, member, data):
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst, "w") as b:
        for name in a.namelist():
            b.writestr(name, data if name == member else a.read(name))


def test_corrupt_members_inside_a_valid_zip(tmp_path):
    model = Sequential([layers.Dense(2, input_shape=(3,))])
    good = str(tmp_path / "good.keras")
    model.save(good)
    bad = str(tmp_path / "bad.keras")
    _rewrite_member(good, bad, "model.weights.h5", b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(ValueError, match="bad.keras.*model.weights.h5.*not a readable weights file"):
        load_model(bad)
    _rewrite_member(good, bad, "config.json", b'{"class_name": "Sequential", "config": ')
    with pytest.raises(ValueError, match="config.json is not valid JSON"):
        load_model(bad)
    _rewrite_member(good, bad, "config.json", b'[1, 2, 3]')
    with pytest.raises(ValueError, match="does not describe a model"):
        load_model(bad)
    # A flipped byte in the compressed data fails the zip's CRC check.
    raw = bytearray(open(good, "rb").read())
    at = raw.find(b"model.weights.h5") + 40
    raw[at] ^= 0xFF
    flipped = tmp_path / "flipped.keras"
    flipped.write_bytes(bytes(raw))
    with pytest.raises(ValueError):
        load_model(str(flipped))


def test_wrong_shapes_in_an_archive_are_reported_with_the_layer(tmp_path):
    small = Sequential([layers.Dense(2, input_shape=(3,), name="d")])
    other = Sequential([layers.Dense(5, input_shape=(3,), name="d")])
    a, b = str(tmp_path / "small.keras"), str(tmp_path / "other.keras")
    small.save(a)
    other.save(b)
    mixed = str(tmp_path / "mixed.keras")
    with zipfile.ZipFile(a) as za, zipfile.ZipFile(b) as zb, zipfile.ZipFile(mixed, "w") as out:
        out.writestr("config.json", za.read("config.json"))
        out.writestr("metadata.json", za.read("metadata.json"))
        out.writestr("model.weights.h5", zb.read("model.weights.h5"))
    with pytest.raises(ValueError, match=r"layers/dense/vars/0 has shape \(3, 5\)"):
        load_model(mixed)


def test_lambda_with_safe_mode_off_takes_only_named_functions(tmp_path):
    def double(t):
        return engine.ops.multiply(t, 2.0)

    named = {"module": "keras.layers", "class_name": "Lambda", "registered_name": None,
             "config": {"name": "lam", "function": {"module": "builtins", "class_name": "function",
                                                    "config": "double", "registered_name": "function"}}}
    cfg = {"module": "keras", "class_name": "Sequential",
           "config": {"name": "s", "layers": [{"module": "keras.layers", "class_name": "InputLayer",
                                                "config": {"batch_shape": [None, 3], "name": "i"}}, named]}}
    path = str(tmp_path / "named.keras")
    empty = Sequential([layers.InputLayer(shape=(3,))])
    weights = str(tmp_path / "empty.weights.h5")
    empty.save_weights(weights)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps(cfg))
        z.writestr("model.weights.h5", open(weights, "rb").read())
    with pytest.raises(ValueError, match="safe_mode=False"):
        load_model(path, custom_objects={"double": double})
    model = load_model(path, custom_objects={"double": double}, safe_mode=False)
    np.testing.assert_allclose(model.predict(np.ones((1, 3)), verbose=0), 2.0)

    named["config"]["function"] = {"class_name": "__lambda__", "config": {"code": "4wEAAAAAAAAA"}}
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps(cfg))
        z.writestr("model.weights.h5", open(weights, "rb").read())
    with pytest.raises(ValueError, match="bytecode"):
        load_model(path, safe_mode=False)


def test_save_weights_is_atomic_too(tmp_path, monkeypatch):
    model = Sequential([layers.Dense(2, input_shape=(3,))])
    path = str(tmp_path / "w.weights.h5")
    model.save_weights(path)
    before = open(path, "rb").read()
    from engine.saving import weights as weights_io

    def fail(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(weights_io, "save_weights_to_h5", fail)
    with pytest.raises(OSError, match="disk full"):
        model.save_weights(path)
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["w.weights.h5"]  # no temporary file left behind


def test_saved_files_get_ordinary_permissions(tmp_path):
    model = Sequential([layers.Dense(2, input_shape=(3,))])
    old = os.umask(0o022)
    try:
        model.save(str(tmp_path / "m.keras"))
        model.save_weights(str(tmp_path / "m.weights.h5"))
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "m.keras").st_mode & 0o777 == 0o644
    assert os.stat(tmp_path / "m.weights.h5").st_mode & 0o777 == 0o644
    os.chmod(tmp_path / "m.keras", 0o600)
    model.save(str(tmp_path / "m.keras"))  # overwriting keeps the file's permissions
    assert os.stat(tmp_path / "m.keras").st_mode & 0o777 == 0o600


def test_clone_model_with_a_clone_function_and_new_inputs():
    model = many_layer_model()
    seen = []

    def keep_dense_share_the_rest(layer):
        seen.append(layer.name)
        if isinstance(layer, layers.Dense):
            return layer  # shared with the original, weights included
        return layer.__class__.from_config(layer.get_config())

    clone = clone_model(model, clone_function=keep_dense_share_the_rest)
    assert set(seen) == {l.name for l in model.layers if not isinstance(l, layers.InputLayer)}
    assert clone.get_layer("a") is model.get_layer("a")
    assert clone.count_params() == model.count_params()

    seq = Sequential([layers.Dense(3, input_shape=(2,)), layers.Dense(1)])
    seq_clone = clone_model(seq, clone_function=lambda l: l)
    x = rng.random((4, 2))
    np.testing.assert_allclose(seq_clone.predict(x, verbose=0), seq.predict(x, verbose=0))
    new_in = Input(shape=(2,), name="fresh")
    rewired = clone_model(seq, input_tensors=new_in)
    assert rewired.inputs[0] is new_in and rewired.count_params() == seq.count_params()


def test_clone_model_call_function_inserts_layers_and_recursive_clones_nested_models():
    inp = Input(shape=(4,), name="cin")
    inner = Sequential([Input(shape=(4,)), layers.Dense(3, name="inner_dense")], name="inner_seq")
    out = layers.Dense(2, name="outer_dense")(inner(inp))
    model = Model(inp, out)
    x = rng.random((5, 4)).astype("float32")

    # call_function: every Dense output goes through an extra scaling layer in the clone.
    def doubled(layer, *args, **kwargs):
        y = layer(*args, **kwargs)
        return layers.Rescaling(2.0)(y) if isinstance(layer, layers.Dense) else y

    same = clone_model(model, clone_function=lambda layer: layer, call_function=doubled)
    np.testing.assert_allclose(same.predict(x, verbose=0), 2 * model.predict(x, verbose=0), rtol=1e-6)

    seen = []

    def record(layer):
        seen.append(layer.name)
        return layer.__class__.from_config(layer.get_config())

    clone_model(model, clone_function=record)
    assert "inner_seq" in seen and "inner_dense" not in seen
    seen.clear()
    deep = clone_model(model, clone_function=record, recursive=True)
    assert "inner_dense" in seen and "inner_seq" not in seen
    assert deep.get_layer("inner_seq") is not inner and deep.count_params() == model.count_params()
    with pytest.raises(ValueError, match="Sequential"):
        clone_model(inner, call_function=doubled)
    with pytest.raises(ValueError, match="unexpected keyword"):
        clone_model(model, bogus=1)
