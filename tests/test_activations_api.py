"""keras.activations: the functions added to match Keras 3's list, against float64 formulas written
here, their gradients against finite differences, and get / deserialize."""
import numpy as np
import pytest

from engine import activations, layers
from engine.saving import register_keras_serializable, serialize_keras_object
from engine.testing import check_gradients

X = np.array([[-3.0, -1.5, -0.7, -0.2, 0.0, 0.3, 0.6, 1.2, 2.5, 4.0]])


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _sparsemax(z):
    """Sparsemax of one row by sorting (Martins & Astudillo's closed form)."""
    s = np.sort(z)[::-1]
    k = np.arange(1, len(z) + 1)
    support = 1 + k * s > np.cumsum(s)
    k_max = k[support][-1]
    tau = (np.cumsum(s)[k_max - 1] - 1) / k_max
    return np.maximum(z - tau, 0.0)


REFERENCES = {
    "celu": (lambda x: np.where(x > 0, x, 0.8 * (np.exp(x / 0.8) - 1)), {"alpha": 0.8}),
    "hard_shrink": (lambda x: np.where(np.abs(x) > 0.6, x, 0.0), {"threshold": 0.6}),
    "hard_tanh": (lambda x: np.clip(x, -1, 1), {}),
    "log_sigmoid": (lambda x: np.log(_sigmoid(x)), {}),
    "soft_shrink": (lambda x: np.where(x > 0.5, x - 0.5, np.where(x < -0.5, x + 0.5, 0.0)), {}),
    "sparse_plus": (lambda x: np.where(x <= -1, 0.0, np.where(x >= 1, x, (x + 1) ** 2 / 4)), {}),
    "sparse_sigmoid": (lambda x: np.where(x <= -1, 0.0, np.where(x >= 1, 1.0, (x + 1) / 2)), {}),
    "squareplus": (lambda x: (x + np.sqrt(x * x + 2.0)) / 2, {"b": 2.0}),
    "tanh_shrink": (lambda x: x - np.tanh(x), {}),
    "threshold": (lambda x: np.where(x > 0.5, x, -2.0), {"threshold": 0.5, "default_value": -2.0}),
    "sparsemax": (lambda x: np.apply_along_axis(_sparsemax, -1, x), {}),
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_activation_matches_its_formula(name):
    reference, kwargs = REFERENCES[name]
    got = np.asarray(getattr(activations, name)(X, **kwargs))
    np.testing.assert_allclose(got, reference(X), rtol=1e-12, atol=1e-12)


def test_glu_gates_the_first_half_with_the_second():
    x = np.random.default_rng(0).normal(size=(3, 8))
    got = np.asarray(activations.glu(x, axis=-1))
    np.testing.assert_allclose(got, x[:, :4] * _sigmoid(x[:, 4:]), rtol=1e-12)
    got0 = np.asarray(activations.glu(x.T, axis=0))
    np.testing.assert_allclose(got0, (x[:, :4] * _sigmoid(x[:, 4:])).T, rtol=1e-12)


# Points away from the kinks, where finite differences are meaningful.
SMOOTH = np.array([[-2.3, -1.3, -0.35, 0.15, 0.45, 0.9, 1.7, 3.1]])


@pytest.mark.parametrize("name", ["celu", "glu", "log_sigmoid", "soft_shrink", "sparse_plus", "squareplus",
                                  "tanh_shrink", "hard_tanh", "sparse_sigmoid", "hard_shrink", "sparsemax"])
def test_activation_gradients(name):
    kwargs = REFERENCES.get(name, (None, {}))[1]
    check_gradients(lambda x: getattr(activations, name)(x, **kwargs), [SMOOTH])


def test_get_and_deserialize_take_names_and_function_configs():
    assert activations.get("squareplus") is activations.squareplus
    assert activations.deserialize("celu") is activations.celu
    config = serialize_keras_object(activations.sparsemax)
    assert activations.get(config) is activations.sparsemax
    assert activations.deserialize(config) is activations.sparsemax
    assert layers.Dense(2, activation="tanh_shrink").activation is activations.tanh_shrink
    with pytest.raises(ValueError, match="no_such"):
        activations.deserialize("no_such")


def test_deserialize_finds_registered_and_custom_functions():
    @register_keras_serializable(package="ActTest")
    def doubled(x):
        return x * 2

    assert activations.deserialize(serialize_keras_object(doubled)) is doubled

    def tripled(x):
        return x * 3

    assert activations.deserialize("tripled", custom_objects={"tripled": tripled}) is tripled


def test_keras_gives_the_same_numbers():
    keras = pytest.importorskip("keras")
    x = np.random.default_rng(1).normal(size=(4, 6)).astype("float32") * 2
    # Not sparsemax: Keras 3.15's JAX sparsemax takes tau from the sum of the support's cumulative
    # sums instead of the k-th one, so any row whose support has 2 or more entries comes out all 0
    # (engine's matches the closed form checked against _sparsemax above).
    for name in ["celu", "glu", "hard_shrink", "hard_tanh", "log_sigmoid", "soft_shrink", "sparse_plus",
                 "sparse_sigmoid", "squareplus", "tanh_shrink"]:
        want = np.asarray(getattr(keras.activations, name)(x))
        np.testing.assert_allclose(np.asarray(getattr(activations, name)(x)), want, rtol=1e-5, atol=1e-6,
                                   err_msg=name)
    np.testing.assert_allclose(np.asarray(activations.threshold(x, 0.3, 9.0)),
                               np.asarray(keras.activations.threshold(x, 0.3, 9.0)))
