"""The registry saving finds classes in, and the per-layer hooks for a layer's own state:
registered user classes round-trip, engine's families are found by name before their modules
are imported, save_own_variables / load_own_variables overrides go through .keras files and
save_weights, and weights files follow the layout Keras 3 walks a model into."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import engine
from engine import layers
from engine.saving import (deserialize_keras_object, get_registered_name, get_registered_object,
                           register_keras_serializable, serialize_keras_object)
from engine.saving import registry

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(code):
    """Run code in a fresh interpreter that imports engine from this tree; return its stdout."""
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


@register_keras_serializable(package="registry_tests")
class Offset(layers.Layer):
    """Adds a learned offset; a user class registered under "registry_tests>Offset"."""

    def __init__(self, start=0.5, **kwargs):
        super().__init__(**kwargs)
        self.start = start

    def build(self, input_shape):
        self.offset = self.add_weight(shape=(input_shape[-1],), initializer=engine.initializers.Constant(self.start))

    def call(self, x):
        return x + self.offset

    def get_config(self):
        return {**super().get_config(), "start": self.start}


def test_a_registered_user_class_round_trips_by_its_registered_name(tmp_path):
    assert get_registered_name(Offset) == "registry_tests>Offset"
    assert get_registered_object("registry_tests>Offset") is Offset
    config = json.loads(json.dumps(serialize_keras_object(Offset(1.5, name="off"))))
    assert config["registered_name"] == "registry_tests>Offset"
    assert config["module"] == Offset.__module__
    clone = deserialize_keras_object(config)
    assert type(clone) is Offset and clone.start == 1.5 and clone.name == "off"

    inputs = engine.Input((3,))
    model = engine.Model(inputs, Offset(2.0)(inputs))
    model.get_layer(index=1).offset.assign(np.array([1.0, -2.0, 3.0], dtype=np.float32))
    path = str(tmp_path / "m.keras")
    model.save(path)
    again = engine.saving.load_model(path)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(again.predict(x, verbose=0), x + np.array([1.0, -2.0, 3.0], dtype=np.float32))


def test_builtin_classes_are_written_under_keras_module_paths():
    assert serialize_keras_object(layers.Dense(2))["module"] == "keras.layers"
    assert serialize_keras_object(engine.initializers.GlorotUniform())["module"] == "keras.initializers"
    assert serialize_keras_object(engine.losses.MeanSquaredError())["module"] == "keras.losses"
    assert serialize_keras_object(engine.metrics.MeanSquaredError())["module"] == "keras.metrics"
    assert serialize_keras_object(engine.optimizers.Adam())["module"] == "keras.optimizers"
    schedule = engine.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9)
    assert serialize_keras_object(schedule)["module"] == "keras.optimizers.schedules"
    # The Identity initializer and the Identity layer, the MeanSquaredError loss and metric stay apart.
    assert registry.builtin("initializers", "Identity") is engine.initializers.Identity
    assert registry.builtin("layers", "Identity") is layers.Identity
    assert registry.builtin("metrics", "MeanSquaredError") is engine.metrics.MeanSquaredError
    assert registry.builtin("losses", "MeanSquaredError") is engine.losses.MeanSquaredError


def test_families_are_found_by_name_before_their_modules_are_imported():
    out = _run("""
import sys
import engine
from engine.saving import deserialize_keras_object
lazy = ["engine.layers.preprocessing.image_augmentation", "engine.metrics.confusion", "engine.optimizers.adaptive",
        "engine.layers.attention"]
print([m for m in lazy if m in sys.modules])
flip = deserialize_keras_object({"module": "keras.layers", "class_name": "RandomFlip",
                                 "config": {"mode": "vertical", "name": "flip"}, "registered_name": None})
auc = deserialize_keras_object({"module": "keras.metrics", "class_name": "AUC", "config": {"num_thresholds": 50},
                                "registered_name": None})
nadam = deserialize_keras_object({"module": "keras.optimizers", "class_name": "Nadam",
                                  "config": {"learning_rate": 0.01}, "registered_name": None})
mha = deserialize_keras_object({"module": "keras.layers", "class_name": "MultiHeadAttention",
                                "config": {"num_heads": 2, "key_dim": 3}, "registered_name": None})
print(type(flip).__module__, flip.mode, type(auc).__name__, auc.num_thresholds, type(nadam).__name__,
      type(mha).__name__)
""")
    first, second = out.strip().splitlines()
    assert first == "[]"
    assert second == ("engine.layers.preprocessing.image_augmentation vertical AUC 50 Nadam "
                      "MultiHeadAttention")


class Counter(layers.Layer):
    """A layer with state that is not a variable: it counts the batches it has seen and stores the
    count (and its weight, under a name of its own) through its own save/load hooks."""

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="scale")
        self.seen = np.zeros((), dtype=np.int64)

    def call(self, x):
        self.seen = self.seen + 1
        return x * self.scale

    def save_own_variables(self, store):
        store["scale"] = self.scale.numpy()
        store["seen"] = np.asarray(self.seen)

    def load_own_variables(self, store):
        self.scale.assign(store["scale"])
        self.seen = np.asarray(store["seen"])


def _counter_model():
    inputs = engine.Input((2,))
    counter = Counter(name="counter")
    model = engine.Model(inputs, layers.Dense(1, name="head")(counter(inputs)))
    return model, counter


def test_own_variable_overrides_round_trip_through_keras_files_and_save_weights(tmp_path):
    h5py = pytest.importorskip("h5py")
    model, counter = _counter_model()
    counter.scale.assign(np.array([3.0, -1.0], dtype=np.float32))
    counter.seen = np.asarray(7)

    weights = str(tmp_path / "m.weights.h5")
    model.save_weights(weights)
    with h5py.File(weights) as f:
        assert sorted(f["layers/counter/vars"]) == ["scale", "seen"]
        assert int(f["layers/counter/vars/seen"][()]) == 7
    fresh, fresh_counter = _counter_model()
    fresh.load_weights(weights)
    np.testing.assert_array_equal(fresh_counter.scale.numpy(), [3.0, -1.0])
    assert int(fresh_counter.seen) == 7
    np.testing.assert_array_equal(fresh.get_layer("head").kernel.numpy(), model.get_layer("head").kernel.numpy())

    archive = str(tmp_path / "m.keras")
    model.save(archive)
    loaded = engine.saving.load_model(archive, custom_objects={"Counter": Counter})
    counter_again = loaded.get_layer("counter")
    np.testing.assert_array_equal(counter_again.scale.numpy(), [3.0, -1.0])
    assert int(counter_again.seen) == 7


class Block(layers.Layer):
    """A composite layer: a weight of its own and a Dense sublayer."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.inner = layers.Dense(2)

    def build(self, input_shape):
        self.bias = self.add_weight(shape=(2,), initializer="zeros")

    def call(self, x):
        return self.inner(x) + self.bias


class Tower(engine.Model):
    """A subclassed model with attributes of its own (a list of layers among them)."""

    def __init__(self):
        super().__init__()
        self.d1 = layers.Dense(3)
        self.zz = layers.Dense(2)
        self.blocks = [layers.Dense(2), layers.Dense(2)]

    def call(self, x):
        x = self.zz(self.d1(x))
        for block in self.blocks:
            x = block(x)
        return x


def _datasets(path):
    import h5py
    found = []
    with h5py.File(path) as f:
        f.visititems(lambda name, obj: found.append((name, obj.shape)) if hasattr(obj, "shape") else None)
    return sorted(found)


def test_weights_files_follow_keras_walk_of_sublayers_and_subclassed_models(tmp_path):
    """The paths Keras 3 writes for these models (read off files Keras 3.15 saved): a layer's
    sublayers under their attribute names, an LSTM's weights in its cell, a Bidirectional's two
    layers, a subclassed model's layers by attribute ("layers" holds what no earlier attribute did)."""
    pytest.importorskip("h5py")
    tower = Tower()
    tower(np.zeros((1, 4), dtype=np.float32))
    path = str(tmp_path / "tower.weights.h5")
    tower.save_weights(path)
    assert _datasets(path) == sorted([
        ("blocks/dense/vars/0", (2, 2)), ("blocks/dense/vars/1", (2,)),
        ("blocks/dense_1/vars/0", (2, 2)), ("blocks/dense_1/vars/1", (2,)),
        ("d1/vars/0", (4, 3)), ("d1/vars/1", (3,)),
        ("layers/dense_1/vars/0", (3, 2)), ("layers/dense_1/vars/1", (2,))])

    inputs = engine.Input((4,))
    x = layers.Reshape((2, 2))(inputs)
    x = Block()(layers.LSTM(3)(x))
    x = layers.Bidirectional(layers.GRU(2))(layers.Reshape((1, 2))(x))
    model = engine.Model(inputs, x)
    path = str(tmp_path / "graph.weights.h5")
    model.save_weights(path)
    assert _datasets(path) == sorted([
        ("layers/bidirectional/backward_layer/cell/vars/0", (2, 6)),
        ("layers/bidirectional/backward_layer/cell/vars/1", (2, 6)),
        ("layers/bidirectional/backward_layer/cell/vars/2", (2, 6)),
        ("layers/bidirectional/forward_layer/cell/vars/0", (2, 6)),
        ("layers/bidirectional/forward_layer/cell/vars/1", (2, 6)),
        ("layers/bidirectional/forward_layer/cell/vars/2", (2, 6)),
        ("layers/block/inner/vars/0", (3, 2)), ("layers/block/inner/vars/1", (2,)),
        ("layers/block/vars/0", (2,)),
        ("layers/lstm/cell/vars/0", (2, 12)), ("layers/lstm/cell/vars/1", (3, 12)),
        ("layers/lstm/cell/vars/2", (12,))])
    clone = engine.models.clone_model(model, custom_objects={"Block": Block})
    clone.load_weights(path)
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    np.testing.assert_array_equal(clone.predict(x, verbose=0), model.predict(x, verbose=0))


def test_keras_reads_engine_weights_of_composite_and_subclassed_models(tmp_path):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")

    class KerasTower(keras.Model):
        def __init__(self):
            super().__init__()
            self.d1 = keras.layers.Dense(3)
            self.zz = keras.layers.Dense(2)
            self.blocks = [keras.layers.Dense(2), keras.layers.Dense(2)]

        def call(self, x):
            x = self.zz(self.d1(x))
            for block in self.blocks:
                x = block(x)
            return x

    tower = Tower()
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    tower(x)
    path = str(tmp_path / "tower.weights.h5")
    tower.save_weights(path)
    theirs = KerasTower()
    theirs(x)
    theirs.load_weights(path)
    np.testing.assert_allclose(np.asarray(theirs(x)), tower(x).numpy(), rtol=1e-5, atol=1e-6)


def test_the_hooks_are_keras_own_variables_only():
    block = Block()
    block(np.zeros((1, 3), dtype=np.float32))
    store = {}
    block.save_own_variables(store)
    assert list(store) == ["0"] and store["0"] is block.bias      # the sublayer's are its own
    with pytest.raises(ValueError, match="has 1 variables but the saved state holds 2"):
        block.load_own_variables({"0": np.zeros(2), "1": np.zeros(2)})
    with pytest.raises(ValueError, match=r"has shape \(2,\)"):
        block.load_own_variables({"0": np.zeros(3)})
    block.load_own_variables({"0": np.array([4.0, 5.0])})
    np.testing.assert_array_equal(block.bias.numpy(), [4.0, 5.0])


def test_saving_module_functions_take_keras_arguments(tmp_path):
    pytest.importorskip("h5py")
    inputs = engine.Input((2,))
    model = engine.Model(inputs, layers.Dense(1)(inputs))
    path = str(tmp_path / "w.weights.h5")
    engine.saving.save_weights(model, path)
    other = engine.models.clone_model(model)
    engine.saving.load_weights(other, path)
    np.testing.assert_array_equal(other.get_weights()[0], model.get_weights()[0])
    with pytest.raises(ValueError, match="max_shard_size"):
        engine.saving.save_weights(model, path, max_shard_size="1GB")
    with pytest.raises(ValueError, match="zipped=False"):
        engine.saving.save_model(model, str(tmp_path / "m.keras"), zipped=False)


def test_nested_models_keep_their_own_layer_groups_and_round_trip(tmp_path):
    pytest.importorskip("h5py")
    inner_in = engine.Input((4,))
    inner = engine.Model(inner_in, layers.Dense(3)(inner_in), name="inner")
    inputs = engine.Input((4,))
    tower = Tower()
    x = layers.Dense(4)(inner(inputs))
    model = engine.Model(inputs, layers.Concatenate()([tower(x), layers.LSTM(2)(layers.Reshape((2, 2))(x))]))
    path = str(tmp_path / "nested.weights.h5")
    model.save_weights(path)
    paths = [p for p, _ in _datasets(path)]
    assert "layers/functional/layers/dense/vars/0" in paths      # Keras names a nested graph by its class
    assert "layers/tower/d1/vars/0" in paths and "layers/tower/blocks/dense_1/vars/1" in paths
    assert "layers/lstm/cell/vars/2" in paths
    rng = np.random.default_rng(2)
    for w in model.weights:
        w.assign(rng.normal(size=w.shape).astype(np.float32))
    model.save_weights(path)
    inner2_in = engine.Input((4,))
    inner2 = engine.Model(inner2_in, layers.Dense(3)(inner2_in), name="inner")
    inputs2 = engine.Input((4,))
    x2 = layers.Dense(4)(inner2(inputs2))
    tower2 = Tower()
    again = engine.Model(inputs2, layers.Concatenate()([tower2(x2), layers.LSTM(2)(layers.Reshape((2, 2))(x2))]))
    again.load_weights(path)
    x = rng.normal(size=(3, 4)).astype(np.float32)
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
