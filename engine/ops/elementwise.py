"""Elementwise math beyond the basic arithmetic of ops/math.py: trigonometric and hyperbolic
functions, exponentials and logarithms in other bases, erf, rounding, float classification,
two-argument functions (arctan2, hypot, logaddexp, fmod, ...) and bitwise ops.

Differentiable unary ops are declared by their forward and derivative through math._unary (one
definition each); integer and bool inputs of floating functions compute in floatx, as in Keras.
"""
import math as _pymath

import numpy as np

from engine import config
from engine.autodiff import differentiable
from engine.dtypes import result_type
from engine.ops._naming import named
from engine.ops._util import to_array, unbroadcast, wrap
from engine.ops.math import _unary, _operand, _binary, _as_dtype, _bools_as_int32, cast, convert_to_tensor

_erf_scalar = np.frompyfunc(_pymath.erf, 1, 1)


def _erf_array(x):
    return np.asarray(_erf_scalar(x), dtype=x.dtype)


def _erfinv_array(y):
    """The inverse of erf by Newton's method from a rational first guess (float64 throughout)."""
    y64 = np.asarray(y, dtype=np.float64)
    a = 0.147   # Winitzki's closed-form approximation as the starting point
    with np.errstate(divide="ignore", invalid="ignore"):     # y = +-1 give +-inf, set below
        ln = np.log1p(-np.minimum(y64 * y64, 1.0))
        t = 2.0 / (np.pi * a) + ln / 2.0
        x = np.sign(y64) * np.sqrt(np.sqrt(t * t - ln / a) - t)
        for _ in range(4):
            err = np.asarray(_erf_scalar(x), dtype=np.float64) - y64
            x = x - err / (2.0 / np.sqrt(np.pi) * np.exp(-x * x))
    x = np.where(y64 == 1, np.inf, np.where(y64 == -1, -np.inf, x))
    x = np.where(np.abs(y64) > 1, np.nan, x)
    return x.astype(np.asarray(y).dtype)


def _bessel_i1(x):
    """The modified Bessel function I1 (the derivative of I0) by its power series."""
    x64 = np.asarray(x, dtype=np.float64)
    half = x64 / 2.0
    term = half.copy()
    total = term.copy()
    for k in range(1, 200):
        term = term * half * half / (k * (k + 1))
        total = total + term
        if np.all(np.abs(term) <= 1e-17 * np.abs(total)):
            break
    return total.astype(np.asarray(x).dtype)


_LN2 = np.log(2.0)
_LN10 = np.log(10.0)

tan = _unary("tan", np.tan, lambda x, y: 1.0 + y * y, floating=True, doc="The elementwise tangent.")
sinh = _unary("sinh", np.sinh, lambda x, y: np.cosh(x), floating=True, doc="The elementwise hyperbolic sine.")
cosh = _unary("cosh", np.cosh, lambda x, y: np.sinh(x), floating=True,
              doc="The elementwise hyperbolic cosine.")
arcsin = _unary("arcsin", np.arcsin, lambda x, y: 1.0 / np.sqrt(1.0 - x * x), floating=True,
                doc="The elementwise inverse sine (radians, in [-pi/2, pi/2]).")
arccos = _unary("arccos", np.arccos, lambda x, y: -1.0 / np.sqrt(1.0 - x * x), floating=True,
                doc="The elementwise inverse cosine (radians, in [0, pi]).")
arctan = _unary("arctan", np.arctan, lambda x, y: 1.0 / (1.0 + x * x), floating=True,
                doc="The elementwise inverse tangent (radians, in (-pi/2, pi/2)).")
arcsinh = _unary("arcsinh", np.arcsinh, lambda x, y: 1.0 / np.sqrt(x * x + 1.0), floating=True,
                 doc="The elementwise inverse hyperbolic sine.")
arccosh = _unary("arccosh", np.arccosh, lambda x, y: 1.0 / np.sqrt(x * x - 1.0), floating=True,
                 doc="The elementwise inverse hyperbolic cosine (defined for x >= 1).")
arctanh = _unary("arctanh", np.arctanh, lambda x, y: 1.0 / (1.0 - x * x), floating=True,
                 doc="The elementwise inverse hyperbolic tangent (defined on (-1, 1)).")
expm1 = _unary("expm1", np.expm1, lambda x, y: y + 1.0, floating=True,
               doc="exp(x) - 1, elementwise (accurate for small x).")
exp2 = _unary("exp2", np.exp2, lambda x, y: y * _LN2, floating=True, doc="2 ** x, elementwise.")
log2 = _unary("log2", np.log2, lambda x, y: 1.0 / (x * _LN2), floating=True,
              doc="The elementwise base-2 logarithm.")
log10 = _unary("log10", np.log10, lambda x, y: 1.0 / (x * _LN10), floating=True,
               doc="The elementwise base-10 logarithm.")
cbrt = _unary("cbrt", np.cbrt, lambda x, y: 1.0 / (3.0 * y * y), floating=True,
              doc="The elementwise cube root (negative for negative x).")
rsqrt = _unary("rsqrt", lambda x: 1.0 / np.sqrt(x), lambda x, y: -0.5 * y / x, floating=True,
               doc="1 / sqrt(x), elementwise.")
deg2rad = _unary("deg2rad", np.deg2rad, lambda x, y: np.pi / 180.0, floating=True,
                 doc="Angles in degrees converted to radians, elementwise.")
rad2deg = _unary("rad2deg", np.rad2deg, lambda x, y: 180.0 / np.pi, floating=True,
                 doc="Angles in radians converted to degrees, elementwise.")
fabs = _unary("fabs", np.fabs, lambda x, y: np.sign(x), floating=True,
              doc="|x| as floats, elementwise (integer inputs give floatx).")


def _sinc_derivative(x, y):
    # d/dx sin(pi x)/(pi x) = (cos(pi x) - sinc(x)) / x, which tends to 0 at x = 0.
    safe = np.where(x == 0, 1.0, x)
    return np.where(x == 0, 0.0, (np.cos(np.pi * x) - y) / safe)


sinc = _unary("sinc", np.sinc, _sinc_derivative, floating=True,
              doc="sin(pi x) / (pi x), elementwise (1 at x = 0).")
erf = _unary("erf", _erf_array, lambda x, y: 2.0 / np.sqrt(np.pi) * np.exp(-x * x), floating=True,
             doc="The Gauss error function, elementwise.")
erfc = _unary("erfc", lambda x: 1.0 - _erf_array(x), lambda x, y: -2.0 / np.sqrt(np.pi) * np.exp(-x * x),
              floating=True, doc="The complementary error function 1 - erf(x), elementwise.")
erfinv = _unary("erfinv", _erfinv_array, lambda x, y: np.sqrt(np.pi) / 2.0 * np.exp(y * y), floating=True,
                doc="The inverse of erf, elementwise (defined on [-1, 1]).")
i0 = _unary("i0", np.i0, lambda x, y: _bessel_i1(x), floating=True,
            doc="The modified Bessel function of the first kind, order 0, elementwise.")


# -- rounding and classification (not differentiable) -------------------------------------------
def _float_input(x):
    """x as an array; integer and bool inputs converted to floatx (what Keras's floor/ceil do)."""
    arr = to_array(_operand(x) if not isinstance(x, (list, tuple)) else convert_to_tensor(x))
    return arr.astype(config.floatx()) if arr.dtype.kind in "biu" else arr


def floor(x):
    """The largest integer not greater than each element, as floats (integer inputs give floatx)."""
    return wrap(np.floor(_float_input(x)))


def ceil(x):
    """The smallest integer not less than each element, as floats (integer inputs give floatx)."""
    return wrap(np.ceil(_float_input(x)))


def trunc(x):
    """Each element rounded towards zero (integer and bool inputs are returned unchanged in dtype)."""
    arr = to_array(convert_to_tensor(x))
    return wrap(arr.copy() if arr.dtype.kind in "biu" else np.trunc(arr))


def round(x, decimals=0):
    """Each element rounded to `decimals` decimal places, halves to even (as numpy).

    Args:
        x: input tensor.
        decimals: number of decimal places (negative rounds to tens, hundreds, ...).
    """
    arr = to_array(convert_to_tensor(x))
    if arr.dtype == np.bool_:
        raise ValueError("round: bool tensors cannot be rounded; cast to a number type first")
    return wrap(np.round(arr, int(decimals)))


def _predicate(name, fn, doc):
    @named(name, doc)
    def public(x):
        return wrap(fn(to_array(convert_to_tensor(x))))
    return public


isnan = _predicate("isnan", np.isnan, "True where x is NaN, elementwise (bool).")
isinf = _predicate("isinf", np.isinf, "True where x is +inf or -inf, elementwise (bool).")
isfinite = _predicate("isfinite", np.isfinite, "True where x is neither infinite nor NaN (bool).")
isposinf = _predicate("isposinf", np.isposinf, "True where x is +inf, elementwise (bool).")
isneginf = _predicate("isneginf", np.isneginf, "True where x is -inf, elementwise (bool).")
signbit = _predicate("signbit", lambda a: np.signbit(a) if a.dtype != np.bool_ else np.zeros(a.shape, bool),
                     "True where the sign bit of x is set (negative numbers and -0.0), bool.")
isreal = _predicate("isreal", np.isreal, "True where x has no imaginary part (always, for real tensors).")


# -- complex parts of real tensors: engine has no complex dtypes ----------------------------------
@differentiable
def _identity_copy(x):
    def vjp(g, needs):
        return (g,)
    return x.copy(), vjp


def real(x):
    """The real part of x: engine tensors are real, so a copy of x."""
    return _identity_copy(convert_to_tensor(x))


def conj(x):
    """The complex conjugate of x: engine tensors are real, so a copy of x."""
    return _identity_copy(convert_to_tensor(x))


conjugate = conj


def imag(x):
    """The imaginary part of x: zeros of x's shape and dtype (engine tensors are real)."""
    return wrap(np.zeros_like(to_array(convert_to_tensor(x))))


def angle(x):
    """The argument of each element: 0 for non-negative and pi for negative numbers (floatx for
    integers)."""
    arr = _float_input(x)
    return wrap(np.where(arr < 0, np.pi, 0.0).astype(arr.dtype))


@differentiable
def _nan_to_num(x, nan=0.0, posinf=None, neginf=None):
    out = np.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)

    def vjp(g, needs):
        return (np.where(np.isfinite(x), g, 0).astype(x.dtype),)
    return out, vjp


def nan_to_num(x, nan=0.0, posinf=None, neginf=None):
    """NaN replaced by `nan` and infinities by `posinf` / `neginf` (default: the dtype's largest
    and smallest finite values); integer and bool tensors are returned as they are.

    Args:
        x: input tensor.
        nan: value for NaN.
        posinf: value for +inf (None: the largest finite value of x's dtype).
        neginf: value for -inf (None: the smallest finite value of x's dtype).
    """
    x = convert_to_tensor(x)
    if x.dtype.kind != "f":
        return wrap(to_array(x).copy())
    return _nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)


# -- two-argument functions --------------------------------------------------------------------
def _float_pair(x1, x2):
    """Both operands as tensors of their common float dtype (Keras's promotion; ints to floatx)."""
    x1, x2 = _operand(x1), _operand(x2)
    dtype = result_type(x1, x2, float)
    return cast(convert_to_tensor(x1) if type(x1) in (float, int, bool) else x1, dtype), \
        cast(convert_to_tensor(x2) if type(x2) in (float, int, bool) else x2, dtype)


def _float_binary(name, forward, grads, doc):
    """A differentiable two-argument float function from its forward and its partial derivatives
    `grads(a, b, out) -> (d out/d a, d out/d b)`."""
    @differentiable
    def op(a, b):
        out = forward(a, b)

        def vjp(g, needs):
            da, db = grads(a, b, out)
            return (unbroadcast(g * da, a.shape).astype(a.dtype) if needs[0] else None,
                    unbroadcast(g * db, b.shape).astype(b.dtype) if needs[1] else None)
        return out, vjp
    op.__name__ = "_" + name

    @named(name, doc)
    def public(x1, x2):
        return op(*_float_pair(x1, x2))
    return public


def _arctan2_grads(a, b, out):
    r2 = a * a + b * b
    r2 = np.where(r2 == 0, 1.0, r2)
    return b / r2, -a / r2


def _hypot_grads(a, b, out):
    safe = np.where(out == 0, 1.0, out)
    return np.where(out == 0, 0.0, a / safe), np.where(out == 0, 0.0, b / safe)


def _logaddexp_grads(a, b, out):
    return np.exp(a - out), np.exp(b - out)


def _logaddexp2_grads(a, b, out):
    return np.exp2(a - out), np.exp2(b - out)


arctan2 = _float_binary("arctan2", np.arctan2, _arctan2_grads,
                        "The angle of the point (x2, x1) in radians, elementwise, in [-pi, pi].")
hypot = _float_binary("hypot", np.hypot, _hypot_grads, "sqrt(x1**2 + x2**2), elementwise, without overflow.")
logaddexp = _float_binary("logaddexp", np.logaddexp, _logaddexp_grads,
                          "log(exp(x1) + exp(x2)), elementwise, computed stably.")
logaddexp2 = _float_binary("logaddexp2", np.logaddexp2, _logaddexp2_grads,
                           "log2(2**x1 + 2**x2), elementwise, computed stably.")


@differentiable
def _divide_no_nan(a, b):
    safe = np.where(b == 0, 1, b)
    out = np.where(b == 0, 0, a / safe).astype(a.dtype)

    def vjp(g, needs):
        ga = unbroadcast(np.where(b == 0, 0, g / safe), a.shape).astype(a.dtype) if needs[0] else None
        gb = unbroadcast(np.where(b == 0, 0, -g * out / safe), b.shape).astype(b.dtype) if needs[1] else None
        return ga, gb
    return out, vjp


def divide_no_nan(x1, x2):
    """x1 / x2, elementwise, with 0 wherever x2 is 0 (and a zero gradient there)."""
    return _divide_no_nan(*_float_pair(x1, x2))


def _select_binary(name, pick_first_fn, doc):
    """fmax / fmin: the elementwise choice between x1 and x2 by `pick_first_fn(a, b)` (a bool
    array), with the gradient going to the chosen operand."""
    @differentiable
    def op(a_in, b_in, dtype=None):
        a, b = _as_dtype(a_in, dtype), _as_dtype(b_in, dtype)
        first = pick_first_fn(a, b)
        out = np.where(first, a, b)

        def vjp(g, needs):
            def back(mask, x):
                return unbroadcast(np.where(mask, g, 0), np.shape(x)).astype(x.dtype) \
                    if isinstance(x, np.ndarray) else None
            return (back(first, a_in) if needs[0] else None, back(~first, b_in) if needs[1] else None)
        return out, vjp
    op.__name__ = "_" + name

    @named(name, doc)
    def public(x1, x2):
        return _binary(op, x1, x2)
    return public


# A NaN loses to a number: fmax picks x1 when x1 >= x2 or x2 is NaN.
fmax = _select_binary("fmax", lambda a, b: (a >= b) | np.isnan(b),
                      "The elementwise maximum, ignoring NaNs (NaN only where both are NaN).")
fmin = _select_binary("fmin", lambda a, b: (a <= b) | np.isnan(b),
                      "The elementwise minimum, ignoring NaNs (NaN only where both are NaN).")


@differentiable
def _fmod(a_in, b_in, dtype=None):
    a, b = _as_dtype(a_in, dtype), _as_dtype(b_in, dtype)
    out = np.fmod(a, b)

    def vjp(g, needs):
        # fmod(a, b) = a - trunc(a / b) * b
        ga = unbroadcast(g, a_in.shape).astype(a_in.dtype) if needs[0] else None
        gb = None
        if needs[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                gb = unbroadcast(-g * np.trunc(a / b), b_in.shape).astype(b_in.dtype)
        return ga, gb
    return out, vjp


def fmod(x1, x2):
    """The remainder of x1 / x2 with the sign of x1 (C's fmod), elementwise; bools count as int32."""
    return _binary(_fmod, *_bools_as_int32(x1, x2))


def _promoted_pair(x1, x2, floating=False):
    x1, x2 = _operand(x1), _operand(x2)
    dtype = np.dtype(result_type(x1, x2, float) if floating else result_type(x1, x2))
    return np.asarray(to_array(x1), dtype=dtype), np.asarray(to_array(x2), dtype=dtype)


def heaviside(x1, x2):
    """The Heaviside step of x1: 0 where x1 < 0, 1 where x1 > 0 and x2 where x1 == 0 (floats)."""
    a, b = _promoted_pair(x1, x2, floating=True)
    return wrap(np.heaviside(a, b))


def nextafter(x1, x2):
    """The next representable float after x1 in the direction of x2, elementwise."""
    a, b = _promoted_pair(x1, x2, floating=True)
    return wrap(np.nextafter(a, b))


def _integer_pair(op, x1, x2):
    a, b = _promoted_pair(x1, x2)
    if a.dtype.kind not in "iub":
        raise ValueError(f"{op}: arguments must be integer tensors, got dtype {a.dtype}")
    return a, b


def gcd(x1, x2):
    """The greatest common divisor of |x1| and |x2|, elementwise (integers)."""
    return wrap(np.gcd(*_integer_pair("gcd", x1, x2)))


def lcm(x1, x2):
    """The least common multiple of |x1| and |x2|, elementwise (integers)."""
    return wrap(np.lcm(*_integer_pair("lcm", x1, x2)))


@differentiable
def _ldexp(a, e):
    out = np.ldexp(a, e).astype(a.dtype)

    def vjp(g, needs):
        return unbroadcast(np.ldexp(g, e), a.shape).astype(a.dtype), None
    return out, vjp


def ldexp(x1, x2):
    """x1 * 2**x2, elementwise, for an integer exponent x2."""
    e = to_array(convert_to_tensor(x2))
    if e.dtype.kind not in "iub":
        raise ValueError(f"ldexp: x2 (the exponent) must be an integer tensor, got dtype {e.dtype}")
    x1 = _operand(x1)
    x1 = convert_to_tensor(x1) if not hasattr(x1, "dtype") else x1
    dtype = result_type(x1.dtype, float) if x1.dtype.kind != "f" else x1.dtype
    return _ldexp(cast(x1, dtype), e.astype(np.int32))


def isclose(x1, x2, rtol=1e-05, atol=1e-08, equal_nan=False):
    """True where |x1 - x2| <= atol + rtol * |x2|, elementwise (bool).

    Args:
        x1, x2: tensors to compare.
        rtol: relative tolerance.
        atol: absolute tolerance.
        equal_nan: whether NaNs compare equal to each other.
    """
    a, b = _promoted_pair(x1, x2)
    return wrap(np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


def allclose(x1, x2, rtol=1e-05, atol=1e-08, equal_nan=False):
    """True (a bool scalar tensor) when isclose holds for every element."""
    a, b = _promoted_pair(x1, x2)
    return wrap(np.asarray(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)))


# -- bitwise ops on integer and bool tensors ---------------------------------------------------------
def _bitwise(name, ufunc, doc, shift=False):
    @named(name, doc)
    def public(x, y):
        a, b = _integer_pair(name, x, y)
        if shift and a.dtype == np.bool_:
            a, b = a.astype(np.int32), b.astype(np.int32)   # shifting bools: as int32, as Keras
        return wrap(ufunc(a, b))
    return public


bitwise_and = _bitwise("bitwise_and", np.bitwise_and, "x & y, bit by bit (integer or bool tensors).")
bitwise_or = _bitwise("bitwise_or", np.bitwise_or, "x | y, bit by bit (integer or bool tensors).")
bitwise_xor = _bitwise("bitwise_xor", np.bitwise_xor, "x ^ y, bit by bit (integer or bool tensors).")
bitwise_left_shift = _bitwise("bitwise_left_shift", np.left_shift, "x << y, elementwise (integers).", shift=True)
bitwise_right_shift = _bitwise("bitwise_right_shift", np.right_shift, "x >> y, elementwise (integers).", shift=True)
left_shift = _bitwise("left_shift", np.left_shift, "x << y, elementwise (integers).", shift=True)
right_shift = _bitwise("right_shift", np.right_shift, "x >> y, elementwise (integers).", shift=True)


def bitwise_invert(x):
    """~x, bit by bit (for bools: logical not)."""
    arr = to_array(convert_to_tensor(x))
    if arr.dtype.kind not in "iub":
        raise ValueError(f"bitwise_invert: x must be an integer or bool tensor, got dtype {arr.dtype}")
    return wrap(np.invert(arr))


bitwise_not = bitwise_invert


__all__ = [
    "tan", "sinh", "cosh", "arcsin", "arccos", "arctan", "arcsinh", "arccosh", "arctanh", "expm1", "exp2",
    "log2", "log10", "cbrt", "rsqrt", "deg2rad", "rad2deg", "fabs", "sinc", "erf", "erfc", "erfinv", "i0",
    "floor", "ceil", "trunc", "round", "isnan", "isinf", "isfinite", "isposinf", "isneginf", "signbit",
    "isreal", "real", "conj", "conjugate", "imag", "angle", "nan_to_num", "arctan2", "hypot", "logaddexp",
    "logaddexp2", "divide_no_nan", "fmax", "fmin", "fmod", "heaviside", "nextafter", "gcd", "lcm", "ldexp",
    "isclose", "allclose", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift",
    "bitwise_right_shift", "left_shift", "right_shift", "bitwise_invert", "bitwise_not",
]
