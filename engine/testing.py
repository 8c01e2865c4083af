"""Test helpers: finite-difference gradient checks against the tape.

    from engine.testing import check_gradients, check_layer_gradients
    check_gradients(lambda x, w: ops.matmul(x, w), [x, w])
    check_layer_gradients(layers.Dense(3, dtype="float64"), x)
"""
import numpy as np

from engine.autodiff import GradientTape


def _central_differences(run, array, seed_grad, eps):
    """d <seed_grad, run()> / d array, perturbing `array` in place."""
    grad = np.zeros(array.shape, dtype=np.float64)
    flat = array.reshape(-1)
    out = grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = np.sum(np.asarray(run(), dtype=np.float64) * seed_grad)
        flat[i] = old - eps
        minus = np.sum(np.asarray(run(), dtype=np.float64) * seed_grad)
        flat[i] = old
        out[i] = (plus - minus) / (2 * eps)
    return grad


def _compare(analytic, numeric, rtol, atol, what):
    got = np.zeros_like(numeric) if analytic is None else np.asarray(analytic, dtype=np.float64)
    np.testing.assert_allclose(got, numeric, rtol=rtol, atol=atol,
                               err_msg=f"gradient with respect to {what} differs from finite differences")


def _as_float64(a):
    a = np.asarray(a)
    # C order: the central differences perturb the array through a flat view, which a strided
    # copy (np.array keeps a transposed input's layout) would silently not have, giving zeros.
    return np.array(a, dtype=np.float64, order="C") if np.issubdtype(a.dtype, np.floating) else a


def check_gradients(fn, inputs, wrt=None, rtol=1e-5, atol=1e-7, eps=1e-6, seed=0):
    """Assert that the tape's gradients of `fn(*inputs)` match central differences in float64.

    A random output gradient is used, so every output element is tested. `wrt`
    lists the input indices to check (default: every floating input).
    """
    inputs = [_as_float64(a) for a in inputs]
    if wrt is None:
        wrt = [i for i, a in enumerate(inputs) if a.dtype == np.float64]
    seed_grad = np.random.default_rng(seed).standard_normal(np.shape(fn(*inputs)))
    with GradientTape() as tape:
        for i in wrt:
            tape.watch(inputs[i])
        out = fn(*inputs)
    analytic = tape.gradient(out, [inputs[i] for i in wrt], output_gradients=seed_grad)
    for i, got in zip(wrt, analytic):
        numeric = _central_differences(lambda: fn(*inputs), inputs[i], seed_grad, eps)
        _compare(got, numeric, rtol, atol, f"input {i}")
    return analytic


def check_layer_gradients(layer, inputs, training=False, rtol=1e-5, atol=1e-7, eps=1e-6, seed=0,
                          check_inputs=True, **call_kwargs):
    """Check a float64 layer's gradients with respect to its float inputs and trainable weights."""
    single = not isinstance(inputs, (list, tuple))
    xs = [_as_float64(x) for x in ([inputs] if single else inputs)]
    call_in = xs[0] if single else xs

    def run():
        return layer(call_in, training=training, **call_kwargs) if layer._call_has_training \
            else layer(call_in, **call_kwargs)

    out = run()
    seed_grad = np.random.default_rng(seed).standard_normal(np.shape(out))
    float_xs = [x for x in xs if x.dtype == np.float64] if check_inputs else []
    weights = layer.trainable_weights
    for w in weights:
        if w.dtype != np.float64:
            raise ValueError(f"check_layer_gradients: build the layer with dtype='float64' "
                             f"(weight {w.path} is {w.dtype})")
    with GradientTape() as tape:
        tape.watch(float_xs)
        out = run()
    analytic = tape.gradient(out, float_xs + list(weights), output_gradients=seed_grad)
    for k, x in enumerate(float_xs):
        _compare(analytic[k], _central_differences(run, x, seed_grad, eps), rtol, atol, f"input {k}")
    for w, got in zip(weights, analytic[len(float_xs):]):
        _compare(got, _central_differences(run, w._value, seed_grad, eps), rtol, atol, f"weight {w.path}")
    return analytic
