"""engine.random (keras.random): seeds as Keras 3 uses them, distribution moments, dropout's
gradient, and set_random_seed making a whole training run repeatable."""
import inspect
import os

import numpy as np
import pytest

import engine
from engine import random, utils, GradientTape
from engine.tensor import Tensor


def test_integer_seeds_repeat_and_seed_generators_advance():
    a, b = random.normal((3, 2), seed=7), random.normal((3, 2), seed=7)
    assert isinstance(a, Tensor) and a.dtype == "float32"
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    gen = random.SeedGenerator(5)
    first, second = random.uniform((4,), seed=gen), random.uniform((4,), seed=gen)
    assert not np.array_equal(first.numpy(), second.numpy())
    again = random.SeedGenerator(5)
    np.testing.assert_array_equal(random.uniform((4,), seed=again).numpy(), first.numpy())
    assert gen.get_config() == {"seed": 5, "name": "seed_generator"}
    with pytest.raises(ValueError, match="seed"):
        random.normal((2,), seed="x")


def test_distribution_moments():
    n = 200_000
    x = random.normal((n,), mean=2.0, stddev=3.0, seed=0).numpy()
    assert abs(x.mean() - 2.0) < 0.05 and abs(x.std() - 3.0) < 0.05
    u = random.uniform((n,), minval=-1.0, maxval=3.0, seed=1).numpy()
    assert u.min() >= -1.0 and u.max() < 3.0 and abs(u.mean() - 1.0) < 0.02
    t = random.truncated_normal((n,), mean=1.0, stddev=0.5, seed=2).numpy()
    assert np.all(np.abs(t - 1.0) <= 1.0 + 1e-6) and abs(t.mean() - 1.0) < 0.01
    i = random.randint((n,), 3, 7, seed=3).numpy()
    assert i.dtype == np.int32 and set(np.unique(i)) == {3, 4, 5, 6}
    g = random.gamma((n,), alpha=2.5, seed=4).numpy()
    assert abs(g.mean() - 2.5) < 0.03
    b = random.beta((n,), alpha=2.0, beta=6.0, seed=5).numpy()
    assert abs(b.mean() - 0.25) < 0.005
    k = random.binomial((n,), counts=10, probabilities=0.3, seed=6).numpy()
    assert k.dtype == np.float32 and abs(k.mean() - 3.0) < 0.03
    logits = np.log(np.array([[0.2, 0.5, 0.3]]))
    c = random.categorical(logits, 60_000, seed=7).numpy()
    assert c.shape == (1, 60_000)
    np.testing.assert_allclose(np.bincount(c[0], minlength=3) / 60_000, [0.2, 0.5, 0.3], atol=0.01)


def test_shuffle_permutes_and_dropout_differentiates():
    x = engine.ops.convert_to_tensor(np.arange(12.0).reshape(6, 2))
    s = random.shuffle(x, seed=1).numpy()
    assert sorted(map(tuple, s)) == sorted(map(tuple, x.numpy())) and not np.array_equal(s, x.numpy())
    v = engine.Variable(np.ones((50, 4), dtype="float32"))
    with GradientTape() as tape:
        y = random.dropout(v.value, 0.5, seed=3)
    grad = tape.gradient(y, v).numpy()
    kept = y.numpy() != 0
    np.testing.assert_array_equal(grad, np.where(kept, 2.0, 0.0))
    assert 0.3 < kept.mean() < 0.7


def _train_once():
    utils.set_random_seed(123)
    inp = engine.Input((4,))
    hidden = engine.layers.Dropout(0.3)(engine.layers.Dense(8, activation="relu")(inp))
    model = engine.Model(inp, engine.layers.Dense(1)(hidden))
    model.compile("adam", "mse")
    data = np.random.default_rng(0).standard_normal((64, 4)).astype("float32")
    model.fit(data, data[:, :1], epochs=2, batch_size=16, verbose=0)
    return [w.numpy() for w in model.weights], random.normal((3,)).numpy()


def test_set_random_seed_makes_a_training_run_repeatable():
    first, second = _train_once(), _train_once()
    for a, b in zip(first[0], second[0]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(first[1], second[1])


def test_signatures_match_keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    for name in ("normal", "uniform", "randint", "truncated_normal", "dropout", "shuffle", "categorical", "gamma",
                 "beta", "binomial", "SeedGenerator"):
        mine, theirs = getattr(random, name), getattr(keras.random, name)
        assert inspect.signature(mine) == inspect.signature(theirs), name
