"""Optimizers, losses, metrics, initializers, regularizers, constraints and activations round-trip
through Keras 3's config dictionaries; every layer class engine exports is covered by a config test;
Keras 3 reads engine's JSON and engine reads Keras's (where Keras is installed)."""
import json
import os

import numpy as np
import pytest

import engine
from engine import layers, optimizers, losses, metrics, initializers, regularizers, constraints, activations
from engine.saving import (serialize_keras_object, deserialize_keras_object, register_keras_serializable,
                           custom_object_scope)


def round_trip(obj, **kwargs):
    """Through JSON text, as a file would carry it."""
    return deserialize_keras_object(json.loads(json.dumps(serialize_keras_object(obj))), **kwargs)


OBJECTS = [
    optimizers.SGD(0.1, momentum=0.9, nesterov=True, clipnorm=1.0),
    optimizers.RMSprop(0.01, rho=0.8, centered=True),
    optimizers.Adam(0.02, beta_1=0.8, amsgrad=True, global_clipnorm=2.0),
    optimizers.AdamW(0.003, weight_decay=0.01),
    optimizers.Adagrad(0.1, initial_accumulator_value=0.2),
    losses.MeanSquaredError(name="sq"),
    losses.MeanAbsoluteError(),
    losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.1),
    losses.CategoricalCrossentropy(from_logits=True),
    losses.SparseCategoricalCrossentropy(),
    metrics.MeanSquaredError(),
    metrics.MeanAbsoluteError(),
    initializers.GlorotUniform(seed=3),
    initializers.HeNormal(seed=1),
    initializers.RandomUniform(-0.5, 0.25, seed=2),
    initializers.Constant(0.7),
    initializers.Orthogonal(gain=2.0, seed=4),
    initializers.Identity(gain=3.0),
    initializers.VarianceScaling(scale=2.0, mode="fan_out", distribution="uniform", seed=5),
    regularizers.L1(0.3),
    regularizers.L2(0.2),
    regularizers.L1L2(0.1, 0.4),
    constraints.MaxNorm(3.0, axis=1),
    constraints.NonNeg(),
    constraints.UnitNorm(axis=-1),
    constraints.MinMaxNorm(0.5, 2.0, rate=0.5),
]


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda o: f"{type(o).__module__.split('.')[-1]}.{type(o).__name__}")
def test_objects_round_trip_as_the_same_class_with_the_same_config(obj):
    clone = round_trip(obj)
    assert type(clone) is type(obj)  # the Identity initializer is not the Identity layer, metrics are not losses
    assert serialize_keras_object(clone) == serialize_keras_object(obj)


def test_objects_compute_the_same_after_a_round_trip():
    w = np.random.default_rng(0).standard_normal((4, 3))
    for reg in (regularizers.L1(0.3), regularizers.L2(0.2), regularizers.L1L2(0.1, 0.4)):
        assert float(round_trip(reg)(w)) == pytest.approx(float(reg(w)))
    for con in (constraints.MaxNorm(1.5), constraints.MinMaxNorm(0.5, 1.0)):
        np.testing.assert_allclose(round_trip(con)(w), con(w))
    init = initializers.GlorotUniform(seed=3)
    np.testing.assert_array_equal(round_trip(init)((4, 3)), initializers.GlorotUniform(seed=3)((4, 3)))
    y, p = np.eye(3)[[0, 2]], np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    loss = losses.CategoricalCrossentropy(label_smoothing=0.2)
    assert float(round_trip(loss)(y, p)) == pytest.approx(float(loss(y, p)))


def test_learning_rate_schedules_are_kept_as_schedules():
    opt = optimizers.Adam(optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5))
    config = serialize_keras_object(opt)
    assert config["config"]["learning_rate"]["class_name"] == "ExponentialDecay"
    clone = round_trip(opt)
    clone.iterations.assign(20)
    assert float(clone.learning_rate.numpy()) == pytest.approx(0.025)


def test_activations_and_loss_functions_serialize_as_keras_writes_functions():
    for fn in (activations.relu, activations.gelu, activations.softmax):
        config = serialize_keras_object(fn)
        assert config == {"module": "builtins", "class_name": "function", "config": fn.__name__,
                          "registered_name": "function"}
        assert round_trip(fn) is fn
    assert round_trip(losses.mean_squared_error) is losses.mean_squared_error
    wrapped = losses.LossFunctionWrapper(losses.mean_absolute_error, name="mae_fn")
    assert round_trip(wrapped).fn is losses.mean_absolute_error
    with pytest.raises(ValueError, match="register_keras_serializable"):
        serialize_keras_object(lambda x: x)


def test_custom_activations_and_regularizers_inside_layers():
    @register_keras_serializable(package="cfgtest")
    def scaled_tanh(x):
        return engine.ops.multiply(engine.ops.tanh(x), 2.0)

    class Tiny(regularizers.Regularizer):
        def __init__(self, weight=1.0):
            self.weight = weight

        def __call__(self, x):
            return engine.ops.multiply(self.weight, engine.ops.sum(x))

        def get_config(self):
            return {"weight": self.weight}

    layer = layers.Dense(2, activation=scaled_tanh, kernel_regularizer=Tiny(0.5))
    config = json.loads(json.dumps(serialize_keras_object(layer)))
    with pytest.raises(ValueError, match="Unknown class 'Tiny'"):
        deserialize_keras_object(config)
    clone = deserialize_keras_object(config, custom_objects={"Tiny": Tiny})
    assert clone.activation is scaled_tanh and clone.kernel_regularizer.weight == 0.5
    with custom_object_scope({"Tiny": Tiny}):
        assert deserialize_keras_object(config).kernel_regularizer.weight == 0.5


def test_layer_weight_settings_are_part_of_the_config():
    layer = layers.Conv2D(2, 3, kernel_regularizer=regularizers.L2(0.1), bias_constraint=constraints.NonNeg())
    clone = round_trip(layer)
    assert clone.kernel_regularizer.l2 == pytest.approx(0.1) and isinstance(clone.bias_constraint, constraints.NonNeg)
    lstm = round_trip(layers.LSTM(2, recurrent_regularizer=regularizers.L1(0.2)))
    assert lstm.recurrent_regularizer.l1 == pytest.approx(0.2)
    dw = round_trip(layers.DepthwiseConv2D(3, depthwise_regularizer=regularizers.L2(0.3),
                                           depthwise_constraint=constraints.MaxNorm(2.0)))
    assert dw.kernel_regularizer.l2 == pytest.approx(0.3) and dw.kernel_constraint.max_value == 2.0
    bn = round_trip(layers.BatchNormalization(gamma_initializer="zeros", beta_regularizer=regularizers.L2(0.5)))
    assert type(bn.gamma_initializer).__name__ == "Zeros" and bn.beta_regularizer.l2 == pytest.approx(0.5)


def test_every_exported_layer_class_has_a_config_test():
    """A layer added to engine.layers must appear in test_layer_configs.CASES (or the merges test)."""
    import importlib.util
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location("layer_configs", os.path.join(here, "test_layer_configs.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    covered = {type(make()) for make, _ in module.CASES} | set(module.MERGES) | set(module.PREPROCESSING) | \
        {type(make()) for make, _ in getattr(module, "CALLED", [])}
    exported = {obj for name, obj in vars(layers).items()
                if isinstance(obj, type) and issubclass(obj, layers.Layer) and obj is not layers.Layer}
    special = {layers.InputLayer, layers.Lambda}  # covered by the model and safe-mode tests
    missing = sorted(c.__name__ for c in exported - covered - special)
    assert not missing, f"layers without a config round-trip test: {missing}"


def test_keras_and_engine_read_each_others_json():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    inp = engine.Input(shape=(4,))
    h = layers.Dense(3, activation="relu", kernel_regularizer=regularizers.L2(0.1),
                     kernel_constraint=constraints.MaxNorm(2.0), bias_regularizer="l1")(inp)
    h = layers.BatchNormalization(gamma_regularizer=regularizers.L1L2(0.1, 0.2))(h)
    h = layers.LSTM(2, kernel_regularizer=regularizers.L2(0.3))(layers.Reshape((3, 1))(h))
    model = engine.Model(inp, h)
    theirs = keras.models.model_from_json(model.to_json())
    assert [type(l).__name__ for l in theirs.layers] == ["InputLayer", "Dense", "BatchNormalization", "Reshape", "LSTM"]
    assert theirs.layers[1].kernel_regularizer.get_config() == {"l2": pytest.approx(0.1)}
    assert theirs.layers[1].kernel_constraint.get_config() == {"max_value": 2.0, "axis": 0}
    ours = engine.models.model_from_json(theirs.to_json())
    assert [w.shape for w in ours.weights] == [w.shape for w in model.weights]
    assert ours.layers[1].kernel_regularizer.l2 == pytest.approx(0.1)
    assert ours.layers[-1].kernel_regularizer.l2 == pytest.approx(0.3)

    opt = keras.optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5))
    mine = deserialize_keras_object(json.loads(json.dumps(keras.saving.serialize_keras_object(opt))))
    mine.iterations.assign(10)
    assert float(mine.learning_rate.numpy()) == pytest.approx(0.05)
    back = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialize_keras_object(mine))))
    assert isinstance(back._learning_rate, keras.optimizers.schedules.ExponentialDecay)
    for obj in (keras.metrics.MeanSquaredError(), keras.losses.MeanSquaredError(), keras.initializers.Identity(2.0),
                keras.layers.Identity(), keras.regularizers.L2(0.1), keras.constraints.MaxNorm(2.0)):
        mine = deserialize_keras_object(json.loads(json.dumps(keras.saving.serialize_keras_object(obj))))
        family = type(obj).__module__.split(".")[2]
        assert type(mine).__name__ == type(obj).__name__ and family in type(mine).__module__


def test_layers_serialize_and_deserialize_round_trip():
    from engine import layers
    dense = layers.Dense(3, activation="relu", name="d1")
    config = layers.serialize(dense)
    assert config["class_name"] == "Dense" and config["config"]["units"] == 3
    clone = layers.deserialize(config)
    assert type(clone) is layers.Dense and clone.get_config() == dense.get_config()
