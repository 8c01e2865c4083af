"""Each optimizer's first steps against the Keras 3 update rules written out by hand in numpy."""
import numpy as np
import pytest

from engine import optimizers, Variable

W0 = np.array([[0.5, -1.0, 2.0], [0.0, 0.25, -0.75]])
GRADS = [np.array([[0.1, -0.2, 0.3], [0.0, 1.5, -0.4]]),
         np.array([[-0.3, 0.1, 0.2], [0.7, -0.5, 0.05]]),
         np.array([[0.2, 0.2, -0.1], [-0.1, 0.3, 0.6]])]


def run(opt, dtype):
    v = Variable(W0.astype(dtype))
    for g in GRADS:
        opt.apply([g.astype(dtype)], [v])
    return v.numpy()


def sgd_ref(lr=0.01, momentum=0.0, nesterov=False):
    lr = float(np.float32(lr))  # Keras keeps the learning rate in a float32 variable
    w, m = W0.copy(), np.zeros_like(W0)
    for g in GRADS:
        if momentum:
            m = momentum * m - lr * g
            w = w + (momentum * m - lr * g if nesterov else m)
        else:
            w = w - lr * g
    return w


def rmsprop_ref(lr=0.001, rho=0.9, eps=1e-7, momentum=0.0, centered=False):
    lr = float(np.float32(lr))  # Keras keeps the learning rate in a float32 variable
    w, v, mom, avg = W0.copy(), np.zeros_like(W0), np.zeros_like(W0), np.zeros_like(W0)
    for g in GRADS:
        v = rho * v + (1 - rho) * g * g
        if centered:
            avg = rho * avg + (1 - rho) * g
            denom = v - avg * avg + eps
        else:
            denom = v + eps
        inc = lr * g / np.sqrt(denom)
        if momentum:
            mom = momentum * mom + inc
            w = w - mom
        else:
            w = w - inc
    return w


def adam_ref(lr=0.001, b1=0.9, b2=0.999, eps=1e-7, amsgrad=False):
    lr = float(np.float32(lr))  # Keras keeps the learning rate in a float32 variable
    w, m, v, vhat = W0.copy(), np.zeros_like(W0), np.zeros_like(W0), np.zeros_like(W0)
    for t, g in enumerate(GRADS, start=1):
        alpha = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        if amsgrad:
            vhat = np.maximum(vhat, v)
            w = w - alpha * m / (np.sqrt(vhat) + eps)
        else:
            w = w - alpha * m / (np.sqrt(v) + eps)
    return w


def adagrad_ref(lr=0.001, init=0.1, eps=1e-7):
    lr = float(np.float32(lr))  # Keras keeps the learning rate in a float32 variable
    w, acc = W0.copy(), np.full_like(W0, init)
    for g in GRADS:
        acc = acc + g * g
        w = w - lr * g / np.sqrt(acc + eps)
    return w


CASES = [
    ("sgd", lambda: optimizers.SGD(), sgd_ref()),
    ("sgd_momentum", lambda: optimizers.SGD(0.1, momentum=0.9), sgd_ref(0.1, 0.9)),
    ("sgd_nesterov", lambda: optimizers.SGD(0.1, momentum=0.9, nesterov=True), sgd_ref(0.1, 0.9, True)),
    ("rmsprop", lambda: optimizers.RMSprop(), rmsprop_ref()),
    ("rmsprop_centered_momentum", lambda: optimizers.RMSprop(0.01, momentum=0.5, centered=True),
     rmsprop_ref(0.01, momentum=0.5, centered=True)),
    ("adam", lambda: optimizers.Adam(), adam_ref()),
    ("adam_amsgrad", lambda: optimizers.Adam(0.01, amsgrad=True), adam_ref(0.01, amsgrad=True)),
    ("adagrad", lambda: optimizers.Adagrad(), adagrad_ref()),
]


@pytest.mark.parametrize("name,make,expected", CASES, ids=[c[0] for c in CASES])
def test_first_steps_match_keras_rules(name, make, expected):
    np.testing.assert_allclose(run(make(), np.float64), expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(run(make(), np.float32), expected, rtol=1e-5, atol=1e-6)


def test_defaults_are_keras_3():
    assert float(optimizers.SGD().learning_rate) == pytest.approx(0.01)
    r = optimizers.RMSprop()
    assert (float(r.learning_rate), r.rho, r.epsilon, r.momentum) == (pytest.approx(0.001), 0.9, 1e-7, 0.0)
    a = optimizers.Adam()
    assert (float(a.learning_rate), a.beta_1, a.beta_2, a.epsilon) == (pytest.approx(0.001), 0.9, 0.999, 1e-7)
    g = optimizers.Adagrad()
    assert (float(g.learning_rate), g.initial_accumulator_value, g.epsilon) == (pytest.approx(0.001), 0.1, 1e-7)


def test_clipping_and_learning_rate_changes():
    opt = optimizers.SGD(1.0, clipnorm=1.0)
    v = Variable(np.zeros(2))
    opt.apply([np.array([3.0, 4.0])], [v])
    np.testing.assert_allclose(v.numpy(), [-0.6, -0.8])
    opt.learning_rate = 0.5
    assert float(opt.learning_rate) == 0.5
    assert int(opt.iterations.numpy()) == 1
    with pytest.raises(ValueError, match="learning_rate"):
        optimizers.SGD(lr=0.1)


@pytest.mark.parametrize("name", ["Adam", "RMSprop", "SGD", "Adagrad"])
def test_bit_exact_with_keras_where_installed(name):
    """Runs where Keras 3 is installed (a bench extra): five float32 steps give Keras's exact bits."""
    import os
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((5, 4)).astype(np.float32)
    grads = [rng.standard_normal((5, 4)).astype(np.float32) for _ in range(5)]
    theirs, their_opt = keras.Variable(w0.copy()), getattr(keras.optimizers, name)()
    ours, our_opt = Variable(w0.copy()), getattr(optimizers, name)()
    for g in grads:
        their_opt.apply_gradients([(keras.ops.convert_to_tensor(g), theirs)])
        our_opt.apply([g], [ours])
    np.testing.assert_array_equal(np.asarray(theirs.value), ours.numpy())
