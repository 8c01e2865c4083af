"""Core and merge layers: Keras weight layouts, outputs against numpy, gradients against finite
differences, and errors that name the layer."""
import numpy as np
import pytest

from engine import layers, Input, initializers
from engine.testing import check_layer_gradients

rng = np.random.default_rng(2)


@pytest.mark.parametrize("activation", [None, "relu", "tanh", "softmax", "gelu", "swish", "softplus", "relu6"])
def test_dense_gradients(activation):
    layer = layers.Dense(4, activation=activation, dtype="float64")
    x = rng.standard_normal((3, 5))
    check_layer_gradients(layer, x, atol=1e-6)
    check_layer_gradients(layers.Dense(2, use_bias=False, dtype="float64"), rng.standard_normal((2, 3, 5)))


def test_dense_weights_match_keras_layout_and_initializers():
    layer = layers.Dense(7)
    layer(Input(shape=(5,)))
    kernel, bias = layer.get_weights()
    assert kernel.shape == (5, 7) and bias.shape == (7,)
    assert kernel.dtype == np.float32
    limit = np.sqrt(6 / (5 + 7))
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.3 * limit
    assert not bias.any()
    assert [w.path for w in layer.weights] == [f"{layer.name}/kernel", f"{layer.name}/bias"]


def test_dense_output_against_numpy_and_3d_inputs():
    layer = layers.Dense(3, activation="relu")
    x = rng.standard_normal((2, 4, 6)).astype(np.float32)
    y = layer(x)
    k, b = layer.get_weights()
    np.testing.assert_allclose(y, np.maximum(x @ k + b, 0), rtol=1e-5, atol=1e-6)
    assert layer.compute_output_shape((None, 4, 6)) == (None, 4, 3)


def test_dense_wrong_input_size_names_the_layer():
    layer = layers.Dense(3, name="classifier")
    layer(Input(shape=(4,)))
    with pytest.raises(ValueError, match=r'"classifier".*\(None, 5\)'):
        layer(Input(shape=(5,)))


def test_set_weights_checks_shapes():
    layer = layers.Dense(2)
    layer(Input(shape=(3,)))
    with pytest.raises(ValueError, match=r"\(3, 2\)"):
        layer.set_weights([np.zeros((2, 2)), np.zeros(2)])
    layer.set_weights([np.ones((3, 2)), np.ones(2)])
    np.testing.assert_array_equal(layer.get_weights()[0], np.ones((3, 2)))


def test_flatten_reshape_permute_repeat():
    x = rng.standard_normal((2, 3, 4))
    np.testing.assert_array_equal(layers.Flatten()(x), x.reshape(2, 12).astype(np.float32))
    np.testing.assert_array_equal(layers.Reshape((4, -1))(x), x.reshape(2, 4, 3).astype(np.float32))
    np.testing.assert_array_equal(layers.Permute((2, 1))(x), x.transpose(0, 2, 1).astype(np.float32))
    assert layers.RepeatVector(5)(x[:, 0]).shape == (2, 5, 4)
    assert layers.Flatten()(Input(shape=(3, 4))).shape == (None, 12)
    assert layers.Reshape((-1, 2))(Input(shape=(3, 4))).shape == (None, 6, 2)
    with pytest.raises(ValueError, match="Reshape"):
        layers.Reshape((5,))(Input(shape=(3, 4)))
    for layer in (layers.Flatten(dtype="float64"), layers.Reshape((4, 3), dtype="float64"),
                  layers.Permute((2, 1), dtype="float64")):
        check_layer_gradients(layer, x)


def test_dropout_is_identity_at_inference_and_scaled_in_training():
    layer = layers.Dropout(0.5, seed=1)
    x = np.ones((100, 100), dtype=np.float32)
    np.testing.assert_array_equal(layer(x), x)
    y = layer(x, training=True)
    assert set(np.unique(y)) == {0.0, 2.0}
    assert 0.4 < (y == 0).mean() < 0.6


MERGES = [
    (layers.Add, lambda xs: xs[0] + xs[1] + xs[2]),
    (layers.Multiply, lambda xs: xs[0] * xs[1] * xs[2]),
    (layers.Average, lambda xs: (xs[0] + xs[1] + xs[2]) / 3),
    (layers.Maximum, lambda xs: np.maximum(np.maximum(xs[0], xs[1]), xs[2])),
    (layers.Minimum, lambda xs: np.minimum(np.minimum(xs[0], xs[1]), xs[2])),
]


@pytest.mark.parametrize("cls,ref", MERGES, ids=[m[0].__name__ for m in MERGES])
def test_elementwise_merges(cls, ref):
    xs = [rng.standard_normal((2, 3)) for _ in range(3)]
    np.testing.assert_allclose(cls(dtype="float64")(xs), ref(xs), rtol=1e-12)
    check_layer_gradients(cls(dtype="float64"), xs)
    with pytest.raises(ValueError, match=r"\(None, 3\).*\(None, 4\)"):
        cls()([Input(shape=(3,)), Input(shape=(4,))])


def test_subtract_and_concatenate_and_dot():
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    np.testing.assert_allclose(layers.Subtract(dtype="float64")([a, b]), a - b)
    check_layer_gradients(layers.Subtract(dtype="float64"), [a, b])
    c = rng.standard_normal((2, 5))
    np.testing.assert_allclose(layers.Concatenate(dtype="float64")([a, c]), np.concatenate([a, c], 1))
    check_layer_gradients(layers.Concatenate(dtype="float64"), [a, c])
    assert layers.concatenate([Input(shape=(4, 3)), Input(shape=(4, 5))]).shape == (None, 4, 8)
    with pytest.raises(ValueError, match=r"Concatenate.*\(None, 4, 3\).*\(None, 5, 5\)"):
        layers.concatenate([Input(shape=(4, 3)), Input(shape=(5, 5))])
    np.testing.assert_allclose(layers.Dot(axes=1, dtype="float64")([a, b]), (a * b).sum(1, keepdims=True))
    check_layer_gradients(layers.Dot(axes=1, dtype="float64"), [a, b])
    m1, m2 = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4))
    np.testing.assert_allclose(layers.Dot(axes=(2, 2), dtype="float64")([m1, m2]),
                               np.einsum("bik,bjk->bij", m1, m2))
    assert layers.dot([Input(shape=(3, 4)), Input(shape=(5, 4))], axes=(2, 2)).shape == (None, 3, 5)


def test_einsum_kernels_take_their_fans_from_the_equation_as_keras():
    """Keras tells a variance-scaling kernel initializer which axes are fan-in and fan-out for
    EinsumDense and MultiHeadAttention kernels; the convolution rule would give (32, 2, 16)
    fans of (64, 512) where Keras has (32, 32), a 3x smaller Glorot limit."""
    assert initializers.compute_fans((32, 2, 16), [0], [1, 2]) == (32, 32)
    assert initializers.compute_fans((2, 16, 32), [0, 1], [2]) == (32, 32)
    from engine.layers.einsum_dense import kernel_fan_axes
    assert kernel_fan_axes("abc,cde->abde") == ([0], [1, 2])
    assert kernel_fan_axes("...b,bc->...c") == ([0], [1])
    init = initializers.GlorotUniform(seed=1)
    assert init.with_fan_axes([0], [1, 2]).get_config() == {"seed": 1, "input_axes": [0], "output_axes": [1, 2]}
    assert init.get_config()["input_axes"] is None      # the layer's own initializer is left as given
    # A uniform draw on [-l, l] has std l / sqrt(3): Keras's l = sqrt(6 / (fan_in + fan_out)).
    mha = layers.MultiHeadAttention(num_heads=8, key_dim=64)
    x = np.zeros((1, 3, 256), "float32")
    mha(x, x)
    einsum = layers.EinsumDense("abc,cde->abde", output_shape=(3, 8, 64))
    einsum(x)
    for kernel, fans in [(mha.weights[0], 256 + 512), (mha.weights[-2], 512 + 256), (einsum.kernel, 256 + 512)]:
        limit = np.sqrt(6.0 / fans)
        values = np.asarray(kernel.numpy())
        assert np.abs(values).max() <= limit
        assert abs(values.std() - limit / np.sqrt(3)) < 0.01 * limit, (kernel.shape, values.std(), limit)
    # An initializer given its axes keeps them; one that is not variance scaling is used as is.
    fixed = initializers.VarianceScaling(input_axes=[0, 1], output_axes=[2])
    assert fixed.with_fan_axes([0], [1, 2]) is fixed
    ones = layers.EinsumDense("ab,bc->ac", 4, kernel_initializer="ones")
    ones(np.zeros((1, 3), "float32"))
    np.testing.assert_array_equal(ones.kernel.numpy(), np.ones((3, 4)))


def test_initializers_follow_keras_fans():
    assert initializers.compute_fans((3, 3, 16, 32)) == (144, 288)
    w = initializers.get("he_normal")((1000, 100))
    assert abs(w.std() - np.sqrt(2 / 1000)) < 0.1 * np.sqrt(2 / 1000)
    q = initializers.Orthogonal()((6, 4))
    np.testing.assert_allclose(q.T @ q, np.eye(4), atol=1e-5)
    u = initializers.get("uniform")((1000,))
    assert u.min() >= -0.05 and u.max() <= 0.05
    with pytest.raises(ValueError, match="Unknown initializer"):
        initializers.get("nope")
