"""Activations, the fused dense op, dropout and losses: values against independent float64
numpy formulas, gradients against finite differences."""
import math

import numpy as np
import pytest

from engine import ops
from engine.ops import nn
from engine.testing import check_gradients

rng = np.random.default_rng(1)


def _erf(x):
    return np.vectorize(math.erf)(x)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


REFERENCE = {
    "relu": (ops.relu, lambda x: np.maximum(x, 0)),
    "sigmoid": (ops.sigmoid, _sigmoid),
    "tanh": (ops.tanh, np.tanh),
    "elu": (ops.elu, lambda x: np.where(x > 0, x, np.exp(x) - 1)),
    "selu": (ops.selu, lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * (np.exp(x) - 1))),
    "softplus": (ops.softplus, lambda x: np.log1p(np.exp(x))),
    "gelu_exact": (lambda x: ops.gelu(x, approximate=False), lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2)))),
    "gelu_tanh": (lambda x: ops.gelu(x, approximate=True),
                  lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))),
    "silu": (ops.silu, lambda x: x * _sigmoid(x)),
    "leaky_relu": (ops.leaky_relu, lambda x: np.where(x > 0, x, 0.2 * x)),
    "softmax": (ops.softmax, lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True)),
    "log_softmax": (ops.log_softmax, lambda x: x - np.log(np.exp(x).sum(-1, keepdims=True))),
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_activation_values_and_gradients(name):
    fn, ref = REFERENCE[name]
    x = rng.standard_normal((3, 5)) * 2
    x[np.abs(x) < 1e-3] = 0.5  # keep finite differences away from kinks
    np.testing.assert_allclose(fn(x), ref(x), rtol=1e-10, atol=1e-12)
    x32 = x.astype(np.float32)
    np.testing.assert_allclose(fn(x32), ref(x), rtol=2e-5, atol=2e-6)
    check_gradients(fn, [x])


def test_softmax_other_axis():
    x = rng.standard_normal((2, 4, 3))
    np.testing.assert_allclose(ops.softmax(x, axis=1), np.exp(x) / np.exp(x).sum(1, keepdims=True), rtol=1e-10)
    check_gradients(lambda a: ops.softmax(a, axis=1), [x])


@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh", "softmax", "elu", "selu"])
@pytest.mark.parametrize("x_shape", [(4, 3), (2, 3, 3), (1, 3)])
def test_dense_op(activation, x_shape):
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal((3, 5))
    b = rng.standard_normal(5)
    z = x @ w + b
    expected = z if activation is None else REFERENCE[activation][1](z)
    np.testing.assert_allclose(nn.dense(x, w, b, activation=activation), expected, rtol=1e-10, atol=1e-12)
    check_gradients(lambda a, k, c: nn.dense(a, k, c, activation=activation), [x, w, b])
    check_gradients(lambda a, k: nn.dense(a, k, None, activation=activation), [x, w])


def test_bias_add():
    check_gradients(ops.bias_add, [rng.standard_normal((2, 3, 4)), rng.standard_normal(4)])


def test_dropout_scales_kept_units_and_gradient_uses_the_same_mask():
    x = np.ones((200, 50))
    y = ops.dropout(x, 0.3, seed=3)
    kept = y != 0
    assert 0.6 < kept.mean() < 0.8
    np.testing.assert_allclose(y[kept], 1 / 0.7)
    from engine import GradientTape
    with GradientTape() as tape:
        tape.watch(x)
        y = ops.dropout(x, 0.3, seed=4)
    g = tape.gradient(y, x)
    np.testing.assert_allclose(g, (y != 0) / 0.7)


def test_dropout_finite_difference_gradient_with_a_fixed_key():
    """The op is linear in x for a fixed mask: the gradient through the recomputed mask is the
    finite difference of the forward with the same generator state."""
    x = rng.standard_normal((6, 17))
    check_gradients(lambda a: ops.dropout(a, 0.4, rng=np.random.default_rng(12)), [x])


def test_dropout_noise_shape_broadcasts_one_mask():
    x = np.ones((8, 5, 6))
    y = np.asarray(ops.dropout(x, 0.5, noise_shape=(None, 1, 6), seed=2))
    assert ((y == 0) | (y == 2.0)).all()
    np.testing.assert_array_equal(y, np.broadcast_to(y[:, :1, :], y.shape))   # one draw per (sample, feature)
    assert 0.2 < (y[:, 0, :] != 0).mean() < 0.8


def test_dropout_rows_of_a_data_parallel_shard_are_the_global_masks_rows():
    """A rank computing rows [3, 7) of a global batch of 10 (engine.random's shard) gets exactly
    those rows of the mask one process draws for the whole batch from the same generator state."""
    from engine import random as engine_random
    x = rng.standard_normal((10, 4, 3))
    whole = np.asarray(ops.dropout(x, 0.5, rng=np.random.default_rng(5)))
    whole_noise = np.asarray(ops.dropout(x, 0.5, noise_shape=(None, 1, 3), rng=np.random.default_rng(5)))
    previous = engine_random._batch_shard
    engine_random._batch_shard = (3, 4, 10)
    try:
        part = np.asarray(ops.dropout(x[3:7], 0.5, rng=np.random.default_rng(5)))
        part_noise = np.asarray(ops.dropout(x[3:7], 0.5, noise_shape=(None, 1, 3), rng=np.random.default_rng(5)))
    finally:
        engine_random._batch_shard = previous
    np.testing.assert_array_equal(part, whole[3:7])
    np.testing.assert_array_equal(part_noise, whole_noise[3:7])


# -- losses: independent formulas ---------------------------------------------------------------
def _ref_cce(t, p, eps=1e-7):
    q = p / p.sum(-1, keepdims=True)
    return -(t * np.log(np.clip(q, eps, 1 - eps))).sum(-1)


def _ref_bce(t, p, eps=1e-7):
    p = np.clip(p, eps, 1 - eps)
    return -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean(-1)


LOSSES = {
    "mse": lambda t, p: ((p - t) ** 2).mean(-1),
    "mae": lambda t, p: np.abs(p - t).mean(-1),
    "binary_crossentropy": _ref_bce,
    "categorical_crossentropy": _ref_cce,
    "binary_crossentropy_logits": lambda t, z: (np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))).mean(-1),
    "categorical_crossentropy_logits": lambda t, z: -(t * (z - np.log(np.exp(z).sum(-1, keepdims=True)))).sum(-1),
}


@pytest.mark.parametrize("kind", sorted(LOSSES))
def test_per_sample_losses(kind):
    t = rng.uniform(0, 1, (4, 3))  # soft targets that do not sum to 1
    p = rng.uniform(0.05, 0.95, (4, 3)) if "logits" not in kind else rng.standard_normal((4, 3))
    np.testing.assert_allclose(nn.per_sample_loss(kind, t, p), LOSSES[kind](t, p), rtol=1e-10)
    check_gradients(lambda y: nn.per_sample_loss(kind, t, y), [p], rtol=1e-5, atol=1e-6)


def test_sparse_categorical_crossentropy_matches_one_hot():
    labels = np.array([0, 2, 1, 2])
    p = rng.uniform(0.05, 1.0, (4, 3))
    one_hot = np.eye(3)[labels]
    np.testing.assert_allclose(nn.per_sample_loss("sparse_categorical_crossentropy", labels, p),
                               _ref_cce(one_hot, p), rtol=1e-10)
    check_gradients(lambda y: nn.per_sample_loss("sparse_categorical_crossentropy", labels, y), [p])
    with pytest.raises(ValueError):
        nn.per_sample_loss("sparse_categorical_crossentropy", np.array([0, 3, 1, 2]), p)


def test_categorical_crossentropy_clips_like_keras():
    t = np.array([[1.0, 0.0]])
    p = np.array([[0.0, 1.0]])
    np.testing.assert_allclose(nn.per_sample_loss("categorical_crossentropy", t, p), [-np.log(1e-7)], rtol=1e-6)
