"""keras.dtype_policies / keras.mixed_precision: policies, the global policy, layers made with
one, and the 16-bit policies engine refuses."""
import numpy as np
import pytest

import engine
from engine import Input, Model, config, dtype_policies, layers, mixed_precision


@pytest.fixture(autouse=True)
def reset_policy():
    yield
    dtype_policies._global_policy = None


def test_policy_names_and_dtypes():
    p = engine.DTypePolicy("float64")
    assert (p.name, p.compute_dtype, p.variable_dtype, p.quantization_mode) == ("float64", "float64", "float64", None)
    mixed = engine.DTypePolicy("mixed_bfloat16")
    assert (mixed.compute_dtype, mixed.variable_dtype) == ("bfloat16", "float32")
    assert repr(p) == '<DTypePolicy "float64">' and p == engine.FloatDTypePolicy("float64") and p != mixed
    assert engine.DTypePolicy().name == "float32"
    with pytest.raises(ValueError, match="cannot convert 'float99'"):
        engine.DTypePolicy("float99")


def test_serialize_get_and_deserialize_round_trip():
    p = engine.DTypePolicy("float64")
    config_ = dtype_policies.serialize(p)
    assert config_ == {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float64"},
                       "registered_name": None}
    assert dtype_policies.deserialize(config_) == p == dtype_policies.get(config_) == dtype_policies.get("float64")
    assert dtype_policies.get(None) == engine.DTypePolicy("float32")

    class Mine(engine.DTypePolicy):
        pass

    assert type(dtype_policies.deserialize({"class_name": "Mine", "config": {"name": "float32"}},
                                           custom_objects={"Mine": Mine})) is Mine
    with pytest.raises(ValueError, match="DTypePolicy config"):
        dtype_policies.deserialize({"class_name": "Dense", "config": {}})


def test_global_policy_sets_the_dtype_of_new_layers_but_not_floatx():
    config.set_dtype_policy("float64")
    assert config.dtype_policy() == mixed_precision.global_policy() == engine.DTypePolicy("float64")
    dense = layers.Dense(2)
    assert dense.dtype == "float64" and dense.dtype_policy.name == "float64"
    assert config.floatx() == "float32" and engine.ops.ones((2,)).dtype == "float32"
    inp = Input((3,))
    out = dense(inp)
    model = Model(inp, out)
    y = model.predict(np.ones((2, 3), "float32"), verbose=0)
    assert y.dtype == np.float64 and dense.kernel.numpy().dtype == np.float64
    mixed_precision.set_global_policy("float32")
    assert layers.Dense(2).dtype == "float32"


def test_layers_take_a_policy_object_or_its_config():
    assert layers.Dense(2, dtype=engine.DTypePolicy("float64")).compute_dtype == "float64"
    assert layers.Dense(2, dtype=dtype_policies.serialize(engine.DTypePolicy("float64"))).variable_dtype == "float64"
    layer = layers.Dense(2, dtype="float64")
    assert isinstance(layer.dtype_policy, engine.DTypePolicy) and layer.dtype_policy.name == "float64"


def test_sixteen_bit_policies_are_refused_with_a_reason():
    for name in ("mixed_float16", "mixed_bfloat16", "float16", "bfloat16"):
        with pytest.raises(ValueError, match="engine's kernels do not"):
            mixed_precision.set_global_policy(name)
    with pytest.raises(ValueError, match="Layer 'half'.*mixed_float16"):
        layers.Dense(2, dtype="mixed_float16", name="half")
    with pytest.raises(ValueError, match="policy name"):
        config.set_dtype_policy(3)
    assert mixed_precision.Policy is engine.DTypePolicy
    assert mixed_precision.LossScaleOptimizer is engine.optimizers.LossScaleOptimizer


def test_keras_policy_configs_load():
    keras = pytest.importorskip("keras")
    config_ = keras.dtype_policies.serialize(keras.DTypePolicy("float64"))
    assert dtype_policies.deserialize(config_) == engine.DTypePolicy("float64")
    theirs = keras.DTypePolicy("mixed_float16")
    ours = engine.DTypePolicy("mixed_float16")
    assert (ours.compute_dtype, ours.variable_dtype) == (theirs.compute_dtype, theirs.variable_dtype)
