"""Metric configs carry every constructor argument, with Keras 3's keys, and rebuild the metric."""
import json
import os

import numpy as np
import pytest

import engine
from engine import metrics
from engine.saving import deserialize_keras_object, serialize_keras_object

NAMED = ["Mean", "Accuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy", "BinaryAccuracy",
         "MeanSquaredError", "MeanAbsoluteError"]


def test_binary_accuracy_keeps_its_threshold():
    metric = metrics.BinaryAccuracy(name="acc_at_0.7", threshold=0.7, dtype="float64")
    assert metric.get_config() == {"name": "acc_at_0.7", "dtype": "float64", "threshold": 0.7}
    y_true, y_pred = np.array([[1.0], [1.0], [0.0]]), np.array([[0.6], [0.8], [0.1]])
    for clone in (metrics.BinaryAccuracy.from_config(metric.get_config()),
                  deserialize_keras_object(json.loads(json.dumps(serialize_keras_object(metric))))):
        assert type(clone) is metrics.BinaryAccuracy and clone.get_config() == metric.get_config()
        clone.update_state(y_true, y_pred)
        assert float(clone.result()) == pytest.approx(2 / 3)  # 0.6 is below the threshold


@pytest.mark.parametrize("name", NAMED)
def test_named_metrics_write_name_and_dtype(name):
    cls = getattr(metrics, name)
    config = cls().get_config()
    assert set(config) == ({"name", "dtype", "threshold"} if name == "BinaryAccuracy" else {"name", "dtype"})
    assert config["dtype"] == "float32"
    assert cls(name="renamed", dtype="float64").get_config()["dtype"] == "float64"
    assert cls.from_config(config).get_config() == config


def test_mean_metric_wrapper_writes_its_function_and_keyword_arguments():
    metric = metrics.MeanMetricWrapper(metrics.binary_accuracy, name="w", threshold=0.3)
    config = metric.get_config()
    assert config == {"name": "w", "dtype": "float32", "threshold": 0.3,
                      "fn": {"module": "builtins", "class_name": "function", "config": "binary_accuracy",
                             "registered_name": "function"}}
    clone = deserialize_keras_object(json.loads(json.dumps(serialize_keras_object(metric))))
    assert clone.fn is metrics.binary_accuracy and clone.get_config() == config
    clone.update_state(np.array([[1.0], [0.0]]), np.array([[0.4], [0.2]]))
    assert float(clone.result()) == pytest.approx(1.0)  # 0.4 > 0.3


def test_compiled_metric_objects_survive_saving(tmp_path):
    pytest.importorskip("h5py")
    inp = engine.Input((2,))
    model = engine.Model(inp, engine.layers.Dense(1, activation="sigmoid")(inp))
    model.compile("sgd", "binary_crossentropy", metrics=[metrics.BinaryAccuracy(threshold=0.9)])
    model.save(tmp_path / "m.keras")
    loaded = engine.models.load_model(tmp_path / "m.keras")
    assert loaded._metrics_spec[0].threshold == 0.9


def test_configs_match_keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    for name in NAMED:
        assert getattr(metrics, name)().get_config() == getattr(keras.metrics, name)().get_config(), name
    theirs = keras.metrics.BinaryAccuracy(name="b", dtype="float64", threshold=0.7)
    assert metrics.BinaryAccuracy(name="b", dtype="float64", threshold=0.7).get_config() == theirs.get_config()
    mine = deserialize_keras_object(json.loads(json.dumps(keras.saving.serialize_keras_object(theirs))))
    assert mine.threshold == 0.7
    back = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialize_keras_object(mine))))
    assert back.threshold == 0.7
    wrapper = keras.metrics.MeanMetricWrapper(keras.metrics.binary_accuracy, name="w", threshold=0.3)
    assert metrics.MeanMetricWrapper(metrics.binary_accuracy, name="w", threshold=0.3).get_config() == \
        wrapper.get_config()
    mine = deserialize_keras_object(json.loads(json.dumps(keras.saving.serialize_keras_object(wrapper))))
    assert mine.fn is metrics.binary_accuracy and mine._fn_kwargs == {"threshold": 0.3}


def test_binary_accuracy_thresholds_only_the_prediction():
    """Keras 3 compares y_true as given with (y_pred > threshold): a soft label matches nothing."""
    y_true = np.array([[1.0, 0.0, 0.3]])
    y_pred = np.array([[0.9, 0.2, 0.1]])
    np.testing.assert_allclose(metrics.binary_accuracy(y_true, y_pred), [[1.0, 1.0, 0.0]])  # elementwise, as Keras
    m = metrics.BinaryAccuracy(threshold=0.95)
    m.update_state(y_true, y_pred)
    np.testing.assert_allclose(float(m.result()), 1 / 3, rtol=1e-6)
