"""RNN unroll=True (same numbers; a known number of timesteps is needed, as in Keras) and
Input's sparse / ragged / optional, which engine refuses clearly."""
import numpy as np
import pytest

import engine
from engine import layers

rng = np.random.default_rng(0)


@pytest.mark.parametrize("make", [lambda u: layers.LSTM(3, unroll=u, return_sequences=True),
                                  lambda u: layers.GRU(3, unroll=u),
                                  lambda u: layers.RNN(layers.SimpleRNNCell(3), unroll=u)])
def test_unroll_computes_the_same_result(make):
    x = rng.standard_normal((2, 5, 4)).astype("float32")
    rolled, unrolled = make(False), make(True)
    rolled(x)
    unrolled(x)
    unrolled.set_weights(rolled.get_weights())
    np.testing.assert_array_equal(np.asarray(unrolled(x)), np.asarray(rolled(x)))
    assert unrolled.get_config()["unroll"] is True
    with pytest.raises(ValueError, match="unroll=True needs a known number of timesteps"):
        make(True)(engine.Input((None, 4)))
    make(False)(engine.Input((None, 4)))          # a loop that is not unrolled takes any length


@pytest.mark.parametrize("kwargs", [{"sparse": True}, {"ragged": True}, {"optional": True}])
def test_input_refuses_what_engine_has_not(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=f"{name}=True is not supported"):
        engine.Input((3,), **kwargs)
    with pytest.raises(ValueError, match=f"{name}=True is not supported"):
        layers.InputLayer(shape=(3,), **kwargs)
    assert engine.Input((3,), **{name: False}).shape == (None, 3)


@pytest.mark.parametrize("cls", [layers.LSTM, layers.GRU, layers.SimpleRNN])
def test_zero_output_for_mask_zeroes_the_masked_steps(cls):
    x = rng.standard_normal((2, 5, 3))
    mask = np.array([[1, 1, 0, 1, 0], [1, 0, 0, 1, 1]], bool)
    carry, zero = cls(4, return_sequences=True, dtype="float64"), \
        cls(4, return_sequences=True, zero_output_for_mask=True, dtype="float64")
    carry(x)
    zero(x)
    zero.set_weights(carry.get_weights())
    kept, zeroed = np.asarray(carry(x, mask=mask)), np.asarray(zero(x, mask=mask))
    np.testing.assert_array_equal(zeroed[mask], kept[mask])
    assert not zeroed[~mask].any() and kept[0, 2].any()      # the carried output is the previous step's
    np.testing.assert_array_equal(kept[0, 2], kept[0, 1])
    assert cls.from_config(zero.get_config()).zero_output_for_mask


def test_use_cudnn_is_checked():
    assert layers.LSTM(2).use_cudnn == "auto" and layers.GRU(2, use_cudnn=False).use_cudnn is False
    with pytest.raises(ValueError, match="cuDNN"):
        layers.LSTM(2, use_cudnn=True)
    with pytest.raises(ValueError, match="use_cudnn"):
        layers.GRU(2, use_cudnn="yes")
