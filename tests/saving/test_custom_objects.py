"""Saving helpers: the global custom objects, registration names, scopes and safe mode."""
import json
import os

import numpy as np
import pytest

import engine
from engine import config, layers
from engine.saving import (CustomObjectScope, custom_object_scope, deserialize_keras_object, get_custom_objects,
                           get_registered_name, get_registered_object, register_keras_serializable,
                           serialize_keras_object)
from engine.saving import serialization


class Scale(layers.Layer):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def test_registration_names_are_per_object_not_inherited():
    @register_keras_serializable(package="helpers")
    class Base(Scale):
        pass

    class Child(Base):
        pass

    assert get_registered_name(Base) == "helpers>Base"
    assert get_registered_name(Child) == "Child"       # a subclass is not its registered parent
    assert get_custom_objects()["helpers>Base"] is Base
    assert serialize_keras_object(Child(name="c"))["registered_name"] is None
    with pytest.raises(ValueError, match="get_config"):
        register_keras_serializable("helpers")(type("NoConfig", (), {}))


def test_objects_added_to_get_custom_objects_load_by_plain_name():
    get_custom_objects()["Scale"] = Scale
    try:
        config = json.loads(json.dumps(serialize_keras_object(Scale(3.0, name="s"))))
        clone = deserialize_keras_object(config)
        assert type(clone) is Scale and clone.factor == 3.0
        assert get_registered_object("Scale") is Scale
    finally:
        del get_custom_objects()["Scale"]
    assert get_registered_object("Scale") is None
    assert get_registered_object("Scale", module_objects={"Scale": Scale}) is Scale


def test_custom_object_scopes_nest_and_unwind():
    config = json.loads(json.dumps(serialize_keras_object(Scale(name="s"))))
    with pytest.raises(ValueError, match="Unknown class"):
        deserialize_keras_object(config)
    with CustomObjectScope({"Scale": Scale}):
        assert type(deserialize_keras_object(config)) is Scale
        with custom_object_scope({"Other": int}):
            assert get_registered_object("Scale") is Scale and get_registered_object("Other") is int
        assert get_registered_object("Other") is None
    assert get_registered_object("Scale") is None


def test_enable_unsafe_deserialization_turns_safe_mode_off():
    assert serialization.in_safe_mode()
    try:
        config.enable_unsafe_deserialization()
        assert not serialization.in_safe_mode()
        with CustomObjectScope(safe_mode=True):
            assert serialization.in_safe_mode()
    finally:
        serialization._DEFAULTS["safe_mode"] = True


def test_config_helpers():
    assert config.floatx() == "float32" and config.epsilon() == 1e-7
    assert config.image_data_format() == "channels_last"
    config.set_image_data_format("channels_last")
    with pytest.raises(ValueError, match="channels_last"):
        config.set_image_data_format("channels_first")
    with pytest.raises(ValueError, match="float"):
        config.set_floatx("float16")


def test_keras_reads_engine_registered_objects_and_back():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    assert keras.saving.get_registered_name(keras.layers.Dense) == get_registered_name(layers.Dense) == "Dense"
    assert np.isclose(float(engine.losses.get("huber")(np.zeros(2), np.ones(2))),
                      float(keras.losses.Huber()(np.zeros(2), np.ones(2))))
