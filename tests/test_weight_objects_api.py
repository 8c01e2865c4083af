"""keras.initializers / regularizers / constraints: Keras 3's aliases, serialize / deserialize, and
OrthogonalRegularizer against a float64 loop written here."""
import numpy as np
import pytest

from engine import constraints, initializers, layers, regularizers
from engine.saving import register_keras_serializable
from engine.testing import check_gradients


def test_snake_case_initializer_names_are_the_classes():
    pairs = {"constant": "Constant", "zeros": "Zeros", "ones": "Ones", "random_uniform": "RandomUniform",
             "random_normal": "RandomNormal", "truncated_normal": "TruncatedNormal",
             "variance_scaling": "VarianceScaling", "glorot_uniform": "GlorotUniform",
             "glorot_normal": "GlorotNormal", "he_uniform": "HeUniform", "he_normal": "HeNormal",
             "lecun_uniform": "LecunUniform", "lecun_normal": "LecunNormal", "orthogonal": "Orthogonal",
             "OrthogonalInitializer": "Orthogonal", "identity": "Identity", "IdentityInitializer": "Identity"}
    for alias, name in pairs.items():
        assert getattr(initializers, alias) is getattr(initializers, name), alias
    w = initializers.glorot_uniform(seed=3)((4, 5))
    np.testing.assert_array_equal(w, initializers.GlorotUniform(seed=3)((4, 5)))


def test_initializer_deserialize_round_trips_and_prefers_the_initializer_family():
    init = initializers.VarianceScaling(scale=2.0, mode="fan_out", distribution="uniform", seed=5)
    back = initializers.deserialize(initializers.serialize(init))
    assert type(back) is initializers.VarianceScaling and back.get_config() == init.get_config()
    # No "module": Identity is the initializer, not the Identity layer.
    ident = initializers.deserialize({"class_name": "Identity", "config": {"gain": 2.0}})
    np.testing.assert_array_equal(ident((3, 3)), 2.0 * np.eye(3))
    with pytest.raises(ValueError, match="not an instance of Initializer"):
        initializers.deserialize({"class_name": "Dense", "config": {"units": 2}, "module": "keras.layers"})


def test_registered_initializer_loads_through_get():
    @register_keras_serializable(package="InitTest")
    class Fives(initializers.Initializer):
        def __call__(self, shape, dtype=None):
            return np.full(shape, 5.0, dtype=dtype or "float32")

    config = initializers.serialize(Fives())
    config["registered_name"] = "InitTest>Fives"
    got = initializers.get(config)
    assert isinstance(got, Fives)
    layer = layers.Dense(2, kernel_initializer=config)
    layer.build((None, 3))
    np.testing.assert_array_equal(layer.kernel.numpy(), np.full((3, 2), 5.0))


def _orthogonal_penalty(w, factor, mode):
    """The mean absolute cosine of distinct pairs of rows (or columns), times factor, by loops."""
    vectors = w if mode == "rows" else w.T
    n = len(vectors)
    unit = [v / max(np.sqrt(np.sum(v * v)), 1e-7) for v in vectors]
    total = 0.0
    for i in range(n):
        for j in range(n):
            if i != j:
                total += abs(float(np.dot(unit[i], unit[j])))
    return factor * 0.5 * total / (n * (n - 1) / 2)


@pytest.mark.parametrize("mode", ["rows", "columns"])
def test_orthogonal_regularizer_matches_a_loop_and_its_gradient(mode):
    w = np.random.default_rng(0).normal(size=(5, 4))
    reg = regularizers.OrthogonalRegularizer(factor=0.3, mode=mode)
    np.testing.assert_allclose(float(reg(w)), _orthogonal_penalty(w, 0.3, mode), rtol=1e-10)
    check_gradients(lambda x: reg(x), [w])
    assert regularizers.orthogonal_regularizer is regularizers.OrthogonalRegularizer


def test_orthogonal_regularizer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        regularizers.OrthogonalRegularizer(mode="diagonal")
    with pytest.raises(ValueError, match="rank 2"):
        regularizers.OrthogonalRegularizer()(np.ones((2, 3, 4)))


def test_orthogonal_regularizer_adds_its_penalty_to_a_dense_layer():
    layer = layers.Dense(3, kernel_regularizer=regularizers.OrthogonalRegularizer(0.1))
    layer(np.ones((2, 4), "float32"))
    want = _orthogonal_penalty(layer.kernel.numpy().astype(np.float64), 0.1, "rows")
    np.testing.assert_allclose(float(sum(np.asarray(v) for v in layer.losses)), want, rtol=1e-5)


def test_regularizer_and_constraint_serialize_round_trip():
    for obj in (regularizers.L1L2(l1=0.1, l2=0.2), regularizers.OrthogonalRegularizer(0.2, "columns")):
        config = regularizers.serialize(obj)
        assert config["module"] == "keras.regularizers" and config["class_name"] == type(obj).__name__
        back = regularizers.deserialize(config)
        assert type(back) is type(obj) and back.get_config() == obj.get_config()
        assert regularizers.get(config).get_config() == obj.get_config()
    for obj in (constraints.MaxNorm(max_value=3, axis=1), constraints.MinMaxNorm(0.5, 2.0, rate=0.5)):
        config = constraints.serialize(obj)
        back = constraints.deserialize(config)
        assert type(back) is type(obj) and back.get_config() == obj.get_config()
    with pytest.raises(ValueError, match="config dictionary"):
        constraints.deserialize("max_norm")


def test_keras_configs_load_and_keras_computes_the_same_penalty():
    keras = pytest.importorskip("keras")
    w = np.random.default_rng(2).normal(size=(6, 3)).astype("float32")
    for mode in ("rows", "columns"):
        theirs = keras.regularizers.OrthogonalRegularizer(0.25, mode)
        ours = regularizers.deserialize(keras.regularizers.serialize(theirs))
        np.testing.assert_allclose(float(ours(w)), float(theirs(keras.ops.convert_to_tensor(w))), rtol=1e-5)
    ours = constraints.deserialize(keras.constraints.serialize(keras.constraints.MaxNorm(2.5, axis=1)))
    assert ours.get_config() == {"max_value": 2.5, "axis": 1}
    init = initializers.deserialize(keras.initializers.serialize(keras.initializers.HeNormal(seed=1)))
    assert type(init) is initializers.HeNormal
