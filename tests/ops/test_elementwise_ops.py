"""Elementwise ops of engine.ops.numpy: values against float64 references written here (Python's
math module, series, formulas), gradients against finite differences, Keras's output dtypes."""
import math

import numpy as np
import pytest

from engine import ops
from engine.testing import check_gradients

rng = np.random.default_rng(0)


def scalar_map(f):
    return lambda x: np.vectorize(f, otypes=[np.float64])(x)


def erf_series(x):
    total = np.zeros_like(x)
    term = np.array(x, dtype=np.float64)
    for n in range(80):
        total = total + term / (2 * n + 1)
        term = -term * x * x / (n + 1)
    return 2.0 / math.sqrt(math.pi) * total


def i0_series(x):
    return sum((x / 2.0) ** (2 * k) / math.factorial(k) ** 2 for k in range(40))


def sinc_ref(x):
    return np.where(x == 0, 1.0, np.sin(math.pi * x) / np.where(x == 0, 1.0, math.pi * x))


UNARY = [
    ("tan", ops.tan, scalar_map(math.tan), (-1.2, 1.2)),
    ("sinh", ops.sinh, scalar_map(math.sinh), (-2, 2)),
    ("cosh", ops.cosh, scalar_map(math.cosh), (-2, 2)),
    ("arcsin", ops.arcsin, scalar_map(math.asin), (-0.9, 0.9)),
    ("arccos", ops.arccos, scalar_map(math.acos), (-0.9, 0.9)),
    ("arctan", ops.arctan, scalar_map(math.atan), (-3, 3)),
    ("arcsinh", ops.arcsinh, scalar_map(math.asinh), (-3, 3)),
    ("arccosh", ops.arccosh, scalar_map(math.acosh), (1.1, 4)),
    ("arctanh", ops.arctanh, scalar_map(math.atanh), (-0.9, 0.9)),
    ("expm1", ops.expm1, scalar_map(math.expm1), (-2, 2)),
    ("exp2", ops.exp2, lambda x: 2.0 ** x, (-3, 3)),
    ("log2", ops.log2, scalar_map(math.log2), (0.1, 5)),
    ("log10", ops.log10, scalar_map(math.log10), (0.1, 5)),
    ("cbrt", ops.cbrt, lambda x: np.sign(x) * np.abs(x) ** (1.0 / 3.0), (0.2, 3)),
    ("rsqrt", ops.rsqrt, lambda x: 1.0 / np.vectorize(math.sqrt)(x), (0.2, 3)),
    ("deg2rad", ops.deg2rad, lambda x: x * math.pi / 180, (-200, 200)),
    ("rad2deg", ops.rad2deg, lambda x: x * 180 / math.pi, (-3, 3)),
    ("fabs", ops.fabs, lambda x: np.vectorize(math.fabs)(x), (0.1, 3)),
    ("sinc", ops.sinc, sinc_ref, (-2.5, 2.5)),
    ("erf", ops.erf, erf_series, (-2.5, 2.5)),
    ("erfc", ops.erfc, lambda x: 1 - erf_series(x), (-2.5, 2.5)),
    ("i0", ops.i0, i0_series, (-3, 3)),
    ("relu6", ops.relu6, lambda x: np.minimum(np.maximum(x, 0), 6), (-8, 8)),
    ("hard_sigmoid", ops.hard_sigmoid, lambda x: np.minimum(np.maximum(x / 6 + 0.5, 0), 1), (-5, 5)),
    ("hard_silu", ops.hard_silu, lambda x: x * np.minimum(np.maximum(x / 6 + 0.5, 0), 1), (-5, 5)),
    ("log_sigmoid", ops.log_sigmoid, lambda x: -np.log1p(np.exp(-x)), (-6, 6)),
    ("softsign", ops.softsign, lambda x: x / (1 + np.abs(x)), (-4, 4)),
    ("sparse_plus", ops.sparse_plus, lambda x: np.where(x <= -1, 0, np.where(x >= 1, x, (x + 1) ** 2 / 4)), (-3, 3)),
    ("sparse_sigmoid", ops.sparse_sigmoid, lambda x: np.clip((x + 1) / 2, 0, 1), (-3, 3)),
    ("tanh_shrink", ops.tanh_shrink, lambda x: x - np.vectorize(math.tanh)(x), (-3, 3)),
    ("hard_tanh", ops.hard_tanh, lambda x: np.clip(x, -1, 1), (-3, 3)),
    ("celu", lambda x: ops.celu(x, alpha=0.5), lambda x: np.where(x > 0, x, 0.5 * np.expm1(x / 0.5)), (-3, 3)),
    ("squareplus", lambda x: ops.squareplus(x, b=3), lambda x: (x + np.sqrt(x * x + 3)) / 2, (-3, 3)),
    ("hard_shrink", lambda x: ops.hard_shrink(x, 0.7), lambda x: np.where(np.abs(x) > 0.7, x, 0), (-3, 3)),
    ("soft_shrink", lambda x: ops.soft_shrink(x, 0.7),
     lambda x: np.where(x > 0.7, x - 0.7, np.where(x < -0.7, x + 0.7, 0)), (-3, 3)),
    ("threshold", lambda x: ops.threshold(x, 0.3, -2.0), lambda x: np.where(x > 0.3, x, -2.0), (-3, 3)),
    ("nan_to_num", ops.nan_to_num, lambda x: x, (-3, 3)),
    ("real", ops.real, lambda x: x, (-3, 3)), ("conj", ops.conj, lambda x: x, (-3, 3)),
]


def _away_from_kinks(x):
    """Inputs kept off the points where piecewise ops have kinks (finite differences straddle them)."""
    kinks = np.array([-6, -3, -1, -0.7, 0, 0.3, 0.7, 1, 3, 6])
    near = np.min(np.abs(x[..., None] - kinks), axis=-1) < 1e-3
    return np.where(near, x + 0.01, x)


@pytest.mark.parametrize("name,fn,ref,domain", UNARY, ids=[u[0] for u in UNARY])
def test_unary_values_and_gradients(name, fn, ref, domain):
    x = _away_from_kinks(rng.uniform(*domain, (3, 5)))
    got = fn(x)
    assert isinstance(got, ops.convert_to_tensor(x).__class__)
    np.testing.assert_allclose(np.asarray(got), ref(x), rtol=1e-10, atol=1e-12)
    check_gradients(fn, [x], rtol=1e-5, atol=1e-6)


def test_erfinv_inverts_erf():
    y = rng.uniform(-0.95, 0.95, 20)
    x = np.asarray(ops.erfinv(y))
    np.testing.assert_allclose(erf_series(x), y, atol=1e-12)
    check_gradients(ops.erfinv, [y])
    assert np.isinf(np.asarray(ops.erfinv(np.array([1.0, -1.0])))).all()


@pytest.mark.parametrize("name", ["tan", "log2", "erf", "fabs", "relu6", "softsign", "floor", "ceil"])
def test_integer_inputs_compute_in_floatx(name):
    out = getattr(ops, name)(np.array([1, 2, 3], dtype="int32"))
    assert out.dtype == np.float32


def test_rounding_and_classification():
    x = np.array([-2.5, -1.5, -0.4, 0.5, 1.5, 2.7])
    np.testing.assert_array_equal(np.asarray(ops.floor(x)), [math.floor(v) for v in x])
    np.testing.assert_array_equal(np.asarray(ops.ceil(x)), [math.ceil(v) for v in x])
    np.testing.assert_array_equal(np.asarray(ops.trunc(x)), [math.trunc(v) for v in x])
    np.testing.assert_array_equal(np.asarray(ops.round(x)), [-2.0, -2.0, -0.0, 0.0, 2.0, 3.0])   # halves to even
    np.testing.assert_allclose(np.asarray(ops.round(np.array([1.234, 5.678]), decimals=1)), [1.2, 5.7])
    assert ops.trunc(np.array([3, -4], "int32")).dtype == np.int32
    assert ops.round(np.array([3, -4], "int32")).dtype == np.int32
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0])
    np.testing.assert_array_equal(np.asarray(ops.isnan(special)), [1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(np.asarray(ops.isinf(special)), [0, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(np.asarray(ops.isfinite(special)), [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(np.asarray(ops.isposinf(special)), [0, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(np.asarray(ops.isneginf(special)), [0, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(np.asarray(ops.signbit(special)), [0, 0, 1, 0, 1, 0])
    np.testing.assert_array_equal(np.asarray(ops.nan_to_num(special, nan=7.0, posinf=8.0, neginf=-9.0)),
                                  [7, 8, -9, 0, 0, 1])
    np.testing.assert_array_equal(np.asarray(ops.angle(np.array([-2.0, 0.0, 3.0]))), [math.pi, 0, 0])
    np.testing.assert_array_equal(np.asarray(ops.imag(x)), np.zeros(6))
    with pytest.raises(ValueError, match="round"):
        ops.round(np.array([True]))


def test_nan_to_num_gradient_is_zero_at_replaced_entries():
    from engine import GradientTape
    x = ops.convert_to_tensor(np.array([1.0, np.nan, np.inf, 2.0]))
    with GradientTape() as tape:
        tape.watch(x)
        y = ops.sum(ops.nan_to_num(x))
    np.testing.assert_array_equal(np.asarray(tape.gradient(y, x)), [1, 0, 0, 1])


BINARY = [
    ("arctan2", ops.arctan2, lambda a, b: np.vectorize(math.atan2)(a, b)),
    ("hypot", ops.hypot, lambda a, b: np.sqrt(a * a + b * b)),
    ("logaddexp", ops.logaddexp, lambda a, b: np.log(np.exp(a) + np.exp(b))),
    ("logaddexp2", ops.logaddexp2, lambda a, b: np.log2(2 ** a + 2 ** b)),
    ("divide_no_nan", ops.divide_no_nan, lambda a, b: a / b),
    ("fmax", ops.fmax, lambda a, b: np.where(a >= b, a, b)),
    ("fmin", ops.fmin, lambda a, b: np.where(a <= b, a, b)),
    ("fmod", ops.fmod, lambda a, b: np.vectorize(math.fmod)(a, b)),
]


@pytest.mark.parametrize("name,fn,ref", BINARY, ids=[b[0] for b in BINARY])
def test_binary_values_and_gradients(name, fn, ref):
    a = rng.uniform(-3, 3, (3, 4))
    b = rng.uniform(0.5, 2, (4,)) * np.array([1, -1, 1, -1])
    np.testing.assert_allclose(np.asarray(fn(a, b)), ref(a, b), rtol=1e-12, atol=1e-12)
    check_gradients(fn, [a, b])


def test_divide_no_nan_is_zero_with_zero_gradient_where_the_divisor_is_zero():
    from engine import GradientTape
    a = ops.convert_to_tensor(np.array([1.0, 2.0]))
    b = ops.convert_to_tensor(np.array([0.0, 4.0]))
    with GradientTape() as tape:
        tape.watch([a, b])
        y = ops.sum(ops.divide_no_nan(a, b))
    ga, gb = tape.gradient(y, [a, b])
    np.testing.assert_array_equal(np.asarray(ops.divide_no_nan(a, b)), [0.0, 0.5])
    np.testing.assert_array_equal(np.asarray(ga), [0.0, 0.25])
    np.testing.assert_array_equal(np.asarray(gb), [0.0, -2.0 / 16])


def test_fmax_ignores_nan_and_ldexp():
    np.testing.assert_array_equal(np.asarray(ops.fmax(np.array([np.nan, 1.0, np.nan]), np.array([2.0, np.nan, np.nan])))[:2],
                                  [2.0, 1.0])
    x = rng.standard_normal(4)
    np.testing.assert_array_equal(np.asarray(ops.ldexp(x, np.array([0, 1, -2, 3], "int32"))), x * [1, 2, 0.25, 8])
    check_gradients(lambda v: ops.ldexp(v, np.array([0, 1, -2, 3], "int32")), [x])
    with pytest.raises(ValueError, match="ldexp"):
        ops.ldexp(x, x)


def test_integer_and_bitwise_ops():
    a = np.array([12, -18, 7, 0], "int32")
    b = np.array([8, 12, 5, 9], "int32")
    np.testing.assert_array_equal(np.asarray(ops.gcd(a, b)), [math.gcd(int(p), int(q)) for p, q in zip(a, b)])
    np.testing.assert_array_equal(np.asarray(ops.lcm(a, b)), [abs(int(p) * int(q)) // math.gcd(int(p), int(q)) if p else 0
                                                              for p, q in zip(a, b)])
    np.testing.assert_array_equal(np.asarray(ops.bitwise_and(a, b)), [int(p) & int(q) for p, q in zip(a, b)])
    np.testing.assert_array_equal(np.asarray(ops.bitwise_or(a, b)), [int(p) | int(q) for p, q in zip(a, b)])
    np.testing.assert_array_equal(np.asarray(ops.bitwise_xor(a, b)), [int(p) ^ int(q) for p, q in zip(a, b)])
    np.testing.assert_array_equal(np.asarray(ops.bitwise_invert(a)), [~int(p) for p in a])
    np.testing.assert_array_equal(np.asarray(ops.left_shift(b, 2)), [int(q) << 2 for q in b])
    np.testing.assert_array_equal(np.asarray(ops.bitwise_right_shift(b, 1)), [int(q) >> 1 for q in b])
    assert ops.bitwise_and(a, b).dtype == np.int32
    with pytest.raises(ValueError, match="gcd"):
        ops.gcd(np.array([1.5]), np.array([2.0]))


def test_comparison_helpers():
    x = np.array([1.0, 2.0, np.nan])
    y = np.array([1.0 + 1e-9, 2.1, np.nan])
    np.testing.assert_array_equal(np.asarray(ops.isclose(x, y)), [True, False, False])
    np.testing.assert_array_equal(np.asarray(ops.isclose(x, y, equal_nan=True)), [True, False, True])
    assert not bool(ops.allclose(x, y)) and bool(ops.allclose(x[:1], y[:1]))
    np.testing.assert_array_equal(np.asarray(ops.heaviside(np.array([-1.0, 0.0, 2.0]), 0.5)), [0.0, 0.5, 1.0])
    assert float(ops.nextafter(np.array(1.0), np.array(2.0))) == 1.0 + np.finfo(np.float64).eps


def test_glu_and_sparsemax():
    x = rng.standard_normal((3, 6))
    a, b = x[:, :3], x[:, 3:]
    np.testing.assert_allclose(np.asarray(ops.glu(x)), a / (1 + np.exp(-b)))
    check_gradients(ops.glu, [x])
    check_gradients(lambda v: ops.glu(v, axis=0), [rng.standard_normal((4, 3))])
    with pytest.raises(ValueError, match="even"):
        ops.glu(x[:, :5])
    # sparsemax is the Euclidean projection onto the simplex: brute force over supports.
    z = np.array([[1.0, 1.0, -1.0], [0.5, 2.0, 1.9], [3.0, -1.0, 0.0]])
    expected = []
    for row in z:
        best = None
        for k in range(1, 4):
            top = np.sort(row)[::-1][:k]
            tau = (top.sum() - 1) / k
            p = np.maximum(row - tau, 0)
            if abs(p.sum() - 1) < 1e-12 and (best is None or np.sum((p - row) ** 2) < np.sum((best - row) ** 2)):
                best = p
        expected.append(best)
    np.testing.assert_allclose(np.asarray(ops.sparsemax(z)), expected, atol=1e-12)
    np.testing.assert_allclose(np.asarray(ops.sparsemax(z.T, axis=0)), np.array(expected).T, atol=1e-12)
    check_gradients(ops.sparsemax, [z + np.array([0.0, 0.01, 0.0])])


def test_arithmetic_on_two_bool_tensors_computes_in_int32():
    b = np.array([True, False, True])
    for fn in (ops.power, ops.floor_divide, ops.mod, ops.fmod):
        assert fn(b, np.array([True, True, True])).dtype == np.int32
    out = ops.square(b)
    assert out.dtype == np.int32 and list(np.asarray(out)) == [1, 0, 1]


def test_relu_keeps_integer_dtypes():
    out = ops.relu(np.array([-3, 0, 4], "int32"))
    assert out.dtype == np.int32 and list(np.asarray(out)) == [0, 0, 4]
    assert ops.relu(np.array([True, False])).dtype == np.int32
    assert ops.relu(np.array([-1.0], "float32")).dtype == np.float32
