"""layers.InputSpec checked on every call (errors naming the layer, the axis and both shapes) and
layers.Wrapper as a base class for user wrappers."""
import numpy as np
import pytest

import engine
from engine import layers, ops


class Square(layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.input_spec = layers.InputSpec(ndim=3, axes={-1: 4})

    def call(self, inputs):
        return ops.square(inputs)


def test_input_spec_is_checked_on_every_call_with_clear_errors():
    layer = Square(name="sq")
    assert layer(np.ones((2, 3, 4), np.float32)).shape == (2, 3, 4)
    with pytest.raises(ValueError, match=r'layer "sq".*expected ndim=3, found ndim=2.*\(2, 4\)'):
        layer(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"expected axis -1 of input shape to have value 4.*\(2, 3, 5\)"):
        layer(np.ones((2, 3, 5), np.float32))        # checked after the layer is built, too
    with pytest.raises(ValueError, match="expected axis -1"):
        layer(engine.Input((3, 5)))                  # and on symbolic inputs


def test_input_spec_forms():
    spec = layers.InputSpec(shape=(None, 2, 3), dtype="float32")
    assert spec.ndim == 3
    from engine.layers.input_spec import assert_input_compatibility as check
    check(spec, np.zeros((5, 2, 3), np.float32), "l")
    with pytest.raises(ValueError, match=r"expected shape=\(None, 2, 3\), found shape=\(5, 2, 4\)"):
        check(spec, np.zeros((5, 2, 4), np.float32), "l")
    with pytest.raises(ValueError, match="expected dtype=float32, found dtype=float64"):
        check(spec, np.zeros((5, 2, 3)), "l")
    with pytest.raises(ValueError, match="min_ndim=2"):
        check(layers.InputSpec(min_ndim=2), np.zeros(3), "l")
    with pytest.raises(ValueError, match="max_ndim=2"):
        check(layers.InputSpec(max_ndim=2), np.zeros((1, 1, 1)), "l")
    with pytest.raises(ValueError, match="expects 2 input"):
        check([spec, spec], [np.zeros((5, 2, 3), np.float32)], "l")
    check(layers.InputSpec(shape=(None, 3, 1), allow_last_axis_squeeze=True), np.zeros((2, 3)), "l")
    with pytest.raises(ValueError, match="greater than"):
        layers.InputSpec(ndim=2, axes={3: 1})
    assert layers.InputSpec.from_config(spec.get_config()).shape == (None, 2, 3)


class Doubler(layers.Wrapper):
    """A user wrapper: twice the wrapped layer's output."""

    def call(self, inputs):
        return ops.multiply(self.layer(inputs), 2.0)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)


def test_user_wrapper_tracks_builds_and_serializes_the_inner_layer():
    wrapper = Doubler(layers.Dense(3, dtype="float64"), dtype="float64")
    x = np.random.default_rng(0).standard_normal((2, 4))
    y = wrapper(x)
    kernel, bias = wrapper.get_weights()
    np.testing.assert_allclose(np.asarray(y), 2 * (x @ kernel + bias))
    assert wrapper.trainable_weights and wrapper.count_params() == 15
    config = wrapper.get_config()
    assert config["layer"]["class_name"] == "Dense"
    clone = Doubler.from_config(config)
    assert isinstance(clone.layer, layers.Dense) and clone.layer.units == 3
    assert isinstance(layers.TimeDistributed(layers.Dense(2)), layers.Wrapper)
    with pytest.raises(ValueError, match="must be a layer"):
        Doubler("dense")
