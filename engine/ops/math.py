"""Differentiable array ops with Keras 3 names and semantics (engine.ops.*)."""
import numpy as np

from engine import autodiff, config
from engine.autodiff import differentiable
from engine.dtypes import result_type, standardize_dtype
from engine.ops._util import to_array, unbroadcast, normalize_axis, contiguous, wrap
from engine.tensor import Tensor
from engine.variables import Variable
from engine._kernels import bias as _bias_kernels, gemm as _gemm

_HOLDERS = (Tensor, Variable)
_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)


def _grad_shape_safe(g, x):
    """The gradient for input x (which may be a Python scalar: then none is needed)."""
    if isinstance(x, np.ndarray):
        return unbroadcast(g, x.shape).astype(x.dtype, copy=False)
    return None


# -- arithmetic ------------------------------------------------------------------------
# Binary ops take tensors, Variables, arrays and Python numbers on either side and promote
# dtypes as Keras 3 does (engine.dtypes.result_type): numpy agrees in the common cases (same
# dtypes, a float array with a Python number), where no dtype is passed; otherwise the op is
# told the result dtype, and each input's gradient is cast back to that input's dtype.

def _operand(x):
    """x as a binary op takes it: tensors, Variables, arrays and Python numbers as they are;
    anything else (lists, numpy scalars) converted as convert_to_tensor does."""
    if isinstance(x, (Tensor, Variable, np.ndarray)) or type(x) in (float, int, bool):
        return x
    return convert_to_tensor(x)


def _binary_dtype(x1, x2, floating=False):
    """The numpy dtype the op must compute in, or None where numpy's own choice is Keras's."""
    d1 = getattr(x1, "dtype", None)
    d2 = getattr(x2, "dtype", None)
    if d1 is not None and d2 is not None:
        if d1 == d2 and (d1.kind == "f" or not floating):
            return None
    elif d1 is not None or d2 is not None:
        d, other = (d1, x2) if d1 is not None else (d2, x1)
        if d.kind == "f" and type(other) in (float, int):
            return None
        if d.kind in "iu" and type(other) is int and not floating:
            return None
    return np.dtype(result_type(x1, x2, float) if floating else result_type(x1, x2))


def _as_dtype(x, dtype):
    return x if dtype is None else np.asarray(x, dtype=dtype)


@differentiable
def _add(a, b, dtype=None):
    out = np.add(a, b, dtype=dtype)

    def vjp(g, needs):
        return (_grad_shape_safe(g, a) if needs[0] else None,
                _grad_shape_safe(g, b) if needs[1] else None)
    return out, vjp


@differentiable
def _subtract(a, b, dtype=None):
    out = np.subtract(a, b, dtype=dtype)

    def vjp(g, needs):
        return (_grad_shape_safe(g, a) if needs[0] else None,
                _grad_shape_safe(-g, b) if needs[1] else None)
    return out, vjp


@differentiable
def _multiply(a, b, dtype=None):
    out = np.multiply(a, b, dtype=dtype)

    def vjp(g, needs):
        return (_grad_shape_safe(g * _as_dtype(b, dtype), a) if needs[0] else None,
                _grad_shape_safe(g * _as_dtype(a, dtype), b) if needs[1] else None)
    return out, vjp


@differentiable
def _divide(a, b, dtype=None):
    out = np.divide(a, b, dtype=dtype)

    def vjp(g, needs):
        bd = _as_dtype(b, dtype)
        return (_grad_shape_safe(g / bd, a) if needs[0] else None,
                _grad_shape_safe(-g * out / bd, b) if needs[1] else None)
    return out, vjp


@differentiable
def _power(a_in, b_in, dtype=None):
    a, b = _as_dtype(a_in, dtype), _as_dtype(b_in, dtype)
    out = np.power(a, b)

    def vjp(g, needs):
        ga = gb = None
        if needs[0]:
            # d/da a**b = b * a**(b-1); b == 0 contributes 0 even where a == 0.
            with np.errstate(divide="ignore", invalid="ignore"):
                da = np.where(np.equal(b, 0), 0, b * np.power(a, b - 1))
            ga = _grad_shape_safe(g * da, a_in)
        if needs[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                logs = np.where(a > 0, np.log(np.where(a > 0, a, 1)), 0)
            gb = _grad_shape_safe(g * out * logs, b_in)
        return ga, gb
    return out, vjp


def _binary(op, x1, x2, floating=False):
    x1, x2 = _operand(x1), _operand(x2)
    dtype = _binary_dtype(x1, x2, floating)
    return op(x1, x2, dtype=dtype) if dtype is not None else op(x1, x2)


def add(x1, x2):
    """x1 + x2, elementwise with broadcasting."""
    return _binary(_add, x1, x2)


def subtract(x1, x2):
    """x1 - x2, elementwise with broadcasting."""
    return _binary(_subtract, x1, x2)


def multiply(x1, x2):
    """x1 * x2, elementwise with broadcasting."""
    return _binary(_multiply, x1, x2)


def divide(x1, x2):
    """x1 / x2, elementwise with broadcasting; integers divide to floatx, as in Keras."""
    return _binary(_divide, x1, x2, floating=True)


true_divide = divide


def _bools_as_int32(x1, x2):
    """Operands as a binary op takes them; two bool tensors as int32 (Keras's arithmetic on bools)."""
    x1, x2 = _operand(x1), _operand(x2)
    if getattr(x1, "dtype", None) == np.bool_ and getattr(x2, "dtype", None) == np.bool_:
        x1, x2 = cast(x1, "int32"), cast(x2, "int32")
    return x1, x2


def power(x1, x2):
    """x1 ** x2, elementwise with broadcasting."""
    return _binary(_power, *_bools_as_int32(x1, x2))


@differentiable
def _maximum(a_in, b_in, dtype=None):
    a, b = _as_dtype(a_in, dtype), _as_dtype(b_in, dtype)
    out = np.maximum(a, b)

    def vjp(g, needs):
        pick_a = np.greater_equal(a, b)
        return (_grad_shape_safe(g * pick_a, a_in) if needs[0] else None,
                _grad_shape_safe(g * ~pick_a, b_in) if needs[1] else None)
    return out, vjp


@differentiable
def _minimum(a_in, b_in, dtype=None):
    a, b = _as_dtype(a_in, dtype), _as_dtype(b_in, dtype)
    out = np.minimum(a, b)

    def vjp(g, needs):
        pick_a = np.less_equal(a, b)
        return (_grad_shape_safe(g * pick_a, a_in) if needs[0] else None,
                _grad_shape_safe(g * ~pick_a, b_in) if needs[1] else None)
    return out, vjp


def maximum(x1, x2):
    """The elementwise maximum (ties send the gradient to x1)."""
    return _binary(_maximum, x1, x2)


def minimum(x1, x2):
    """The elementwise minimum (ties send the gradient to x1)."""
    return _binary(_minimum, x1, x2)


@differentiable
def _floor_divide(a_in, b_in, dtype=None):
    a, b = _as_dtype(a_in, dtype), _as_dtype(b_in, dtype)
    out = np.floor_divide(a, b)

    def vjp(g, needs):
        # Piecewise constant: the derivative is zero wherever it exists (as JAX defines it).
        return (_grad_shape_safe(np.zeros_like(g), a_in) if needs[0] else None,
                _grad_shape_safe(np.zeros_like(g), b_in) if needs[1] else None)
    return out, vjp


@differentiable
def _mod(a_in, b_in, dtype=None):
    a, b = _as_dtype(a_in, dtype), _as_dtype(b_in, dtype)
    out = np.mod(a, b)

    def vjp(g, needs):
        # a mod b = a - floor(a / b) * b
        return (_grad_shape_safe(g, a_in) if needs[0] else None,
                _grad_shape_safe(-g * np.floor_divide(a, b), b_in) if needs[1] else None)
    return out, vjp


def floor_divide(x1, x2):
    """floor(x1 / x2), elementwise (its gradient is zero)."""
    return _binary(_floor_divide, *_bools_as_int32(x1, x2))


def mod(x1, x2):
    """x1 mod x2 with the sign of x2 (Python's %), elementwise."""
    return _binary(_mod, *_bools_as_int32(x1, x2))


# -- comparisons and logic (not differentiable: bool results) ----------------------------------
def _compare(ufunc, x1, x2):
    x1, x2 = _operand(x1), _operand(x2)
    dtype = _binary_dtype(x1, x2)
    a, b = to_array(x1), to_array(x2)
    if dtype is not None:
        a, b = np.asarray(a, dtype=dtype), np.asarray(b, dtype=dtype)
    return wrap(ufunc(a, b))


def equal(x1, x2):
    """x1 == x2, elementwise (bool)."""
    return _compare(np.equal, x1, x2)


def not_equal(x1, x2):
    """x1 != x2, elementwise (bool)."""
    return _compare(np.not_equal, x1, x2)


def less(x1, x2):
    """x1 < x2, elementwise (bool)."""
    return _compare(np.less, x1, x2)


def less_equal(x1, x2):
    """x1 <= x2, elementwise (bool)."""
    return _compare(np.less_equal, x1, x2)


def greater(x1, x2):
    """x1 > x2, elementwise (bool)."""
    return _compare(np.greater, x1, x2)


def greater_equal(x1, x2):
    """x1 >= x2, elementwise (bool)."""
    return _compare(np.greater_equal, x1, x2)


def logical_and(x1, x2):
    """x1 and x2, elementwise, on truth values (bool)."""
    return wrap(np.logical_and(to_array(x1), to_array(x2)))


def logical_or(x1, x2):
    """x1 or x2, elementwise, on truth values (bool)."""
    return wrap(np.logical_or(to_array(x1), to_array(x2)))


def logical_xor(x1, x2):
    """x1 xor x2, elementwise, on truth values (bool)."""
    return wrap(np.logical_xor(to_array(x1), to_array(x2)))


def logical_not(x):
    """not x, elementwise, on truth values (bool)."""
    return wrap(np.logical_not(to_array(x)))


def _unary(name, forward, derivative, floating=False, doc=None, bool_as=None):
    """An elementwise op from its forward and its derivative d(out)/d(x) = derivative(x, out).

    `floating` ops (exp, log, ...) compute integer and bool inputs in floatx, as Keras does;
    `bool_as` names the dtype bool inputs compute in otherwise (square: int32)."""
    @differentiable
    def op(x):
        out = forward(x)

        def vjp(g, needs):
            return (np.asarray(g * derivative(x, out), dtype=x.dtype),)
        return out, vjp
    op.__name__ = "_" + name

    def public(x):
        x = _operand(x)
        if not hasattr(x, "dtype"):
            x = convert_to_tensor(x)
        if floating and x.dtype.kind in "biu":
            x = cast(x, config.floatx())
        elif bool_as is not None and x.dtype == np.bool_:
            x = cast(x, bool_as)
        return op(x)
    public.__name__ = public.__qualname__ = name
    public.__doc__ = doc or f"The elementwise {name} of x."
    public.raw = op
    return public


negative = _unary("negative", np.negative, lambda x, y: -1.0, doc="-x, elementwise.")
square = _unary("square", np.square, lambda x, y: 2.0 * x, doc="x * x, elementwise.", bool_as="int32")
sqrt = _unary("sqrt", np.sqrt, lambda x, y: 0.5 / y, floating=True, doc="The elementwise square root.")
exp = _unary("exp", np.exp, lambda x, y: y, floating=True, doc="e ** x, elementwise.")
log = _unary("log", np.log, lambda x, y: 1.0 / x, floating=True, doc="The elementwise natural logarithm.")
log1p = _unary("log1p", np.log1p, lambda x, y: 1.0 / (1.0 + x), floating=True,
               doc="log(1 + x), elementwise (accurate for small x).")
abs = _unary("abs", np.abs, lambda x, y: np.sign(x), doc="|x|, elementwise (gradient sign(x), 0 at 0).")
absolute = abs
sin = _unary("sin", np.sin, lambda x, y: np.cos(x), floating=True)
cos = _unary("cos", np.cos, lambda x, y: -np.sin(x), floating=True)
reciprocal = _unary("reciprocal", np.reciprocal, lambda x, y: -y * y, floating=True, doc="1 / x, elementwise.")


def sign(x):
    """-1, 0 or 1 by the sign of each element (not differentiable: its gradient is zero)."""
    return wrap(np.sign(to_array(x)))


@differentiable
def _clip(x, lo=None, hi=None):
    out = np.clip(x, lo, hi)

    def vjp(g, needs):
        inside = np.ones(x.shape, dtype=bool)
        if lo is not None:
            inside &= x >= lo
        if hi is not None:
            inside &= x <= hi
        return (g * inside,)
    return out, vjp


def clip(x, x_min, x_max):
    """x limited to [x_min, x_max], elementwise (the gradient is 1 inside the range, 0 outside).

    Args:
        x: input tensor.
        x_min: the lower bound (a number or tensor; None for none).
        x_max: the upper bound (a number or tensor; None for none).

    The result dtype is Keras's promotion of x with the bounds (bools clip as int32).
    """
    x = _reduction_input(x)
    if x.dtype.kind == "f" and type(x_min) in (float, int) and type(x_max) in (float, int):
        return _clip(x, lo=x_min, hi=x_max)      # the common case: a float tensor and number bounds
    if x.dtype == np.bool_:
        x = cast(x, "int32")
    bounds = [b for b in (x_min, x_max) if b is not None]
    dtype = np.dtype(result_type(x, *[b if type(b) in (int, float) else to_array(b) for b in bounds]))
    if dtype != x.dtype:
        x = cast(x, dtype)
    lo = None if x_min is None else np.asarray(to_array(x_min), dtype=dtype)
    hi = None if x_max is None else np.asarray(to_array(x_max), dtype=dtype)
    if x.dtype.kind != "f":
        return wrap(np.clip(to_array(x), lo, hi))
    return _clip(x, lo=lo, hi=hi)


# -- reductions ------------------------------------------------------------------------
def _expand_reduced(g, x_shape, axis, keepdims):
    if axis is None:
        return np.broadcast_to(np.reshape(g, (1,) * len(x_shape)), x_shape)
    if not keepdims:
        axes = axis if isinstance(axis, tuple) else (axis,)
        for a in sorted(axes):
            g = np.expand_dims(g, a)
    return np.broadcast_to(g, x_shape)


_MIDDLE_MAX_INNER = 256   # the kernel's one chunk of columns; past it numpy's strided sum was faster here


def _float_sum(x, axis, keepdims):
    """np.sum of a float array, by engine's kernel (bias.sum_middle, double accumulation) when the
    axes are one run that leaves a last block of at most _MIDDLE_MAX_INNER values (a mean over
    time or space: global average pooling): numpy sums a middle axis with strided adds, 90 us
    against the kernel's 19 for GlobalAveragePooling1D's 32 x 200 x 32."""
    axes = axis if isinstance(axis, tuple) else (axis,)
    if axis is None or not axes or not x.flags.c_contiguous or x.dtype not in (np.float32, np.float64) or \
            axes[-1] >= x.ndim - 1 or list(axes) != list(range(axes[0], axes[-1] + 1)):
        return np.sum(x, axis=axis, keepdims=keepdims)
    shape = x.shape
    outer, mid = int(np.prod(shape[:axes[0]])), int(np.prod(shape[axes[0]:axes[-1] + 1]))
    inner = int(np.prod(shape[axes[-1] + 1:]))
    if inner > _MIDDLE_MAX_INNER or outer * inner == 0:
        return np.sum(x, axis=axis, keepdims=keepdims)
    out = _bias_kernels.sum_middle(x.reshape(outer, mid, inner), np.empty((outer, inner), x.dtype))
    kept = tuple(1 if i in axes else d for i, d in enumerate(shape)) if keepdims else \
        tuple(d for i, d in enumerate(shape) if i not in axes)
    return out.reshape(kept)


@differentiable
def _sum(x, axis=None, keepdims=False):
    # Integers sum in their own dtype (numpy would widen int32 to int64; Keras keeps int32).
    if x.dtype.kind in "iu":
        out = np.asarray(np.sum(x, axis=axis, keepdims=keepdims, dtype=x.dtype))
    elif x.dtype.kind == "f":
        out = np.asarray(_float_sum(x, axis, keepdims))
    else:
        out = np.asarray(np.sum(x, axis=axis, keepdims=keepdims))

    def vjp(g, needs):
        return (np.asarray(_expand_reduced(g, x.shape, axis, keepdims), order="C"),)
    return out, vjp


@differentiable
def _mean(x, axis=None, keepdims=False):
    total = np.asarray(_float_sum(x, axis, keepdims)) if x.dtype.kind == "f" and axis is not None else None
    if total is not None and total.size and x.size:
        out = np.asarray(total / x.dtype.type(x.size // total.size))   # numpy's mean: the sum over the count
    else:
        out = np.asarray(np.mean(x, axis=axis, keepdims=keepdims))
    count = x.size // out.size if out.size else 1

    def vjp(g, needs):
        return (np.asarray(_expand_reduced(g / count, x.shape, axis, keepdims), order="C").astype(x.dtype, copy=False),)
    return out, vjp


def _extreme(reducer):
    @differentiable
    def op(x, axis=None, keepdims=False):
        out = np.asarray(reducer(x, axis=axis, keepdims=keepdims))

        def vjp(g, needs):
            full = _expand_reduced(out, x.shape, axis, keepdims)
            hit = (x == full)
            # Ties share the gradient equally, so the total stays right.
            count = _expand_reduced(np.sum(hit, axis=axis, keepdims=keepdims), x.shape, axis, keepdims)
            return ((_expand_reduced(g, x.shape, axis, keepdims) * hit / count).astype(x.dtype, copy=False),)
        return out, vjp
    return op


_max = _extreme(np.max)
_min = _extreme(np.min)


def _reduction_input(x):
    x = _operand(x)
    return convert_to_tensor(x) if not hasattr(x, "dtype") else x


def sum(x, axis=None, keepdims=False):
    """The sum over `axis` (an int, a tuple of ints, or None for all axes); bools and 8/16-bit
    integers sum in 32 bits, as in Keras."""
    x = _reduction_input(x)
    if x.dtype.kind in "biu" and x.dtype.itemsize < 4:
        x = cast(x, "uint32" if x.dtype.kind == "u" else "int32")
    return _sum(x, axis=normalize_axis(axis, x.ndim), keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    """The mean over `axis`; integer and bool inputs average in float32, as in Keras."""
    x = _reduction_input(x)
    if x.dtype.kind in "biu":
        x = cast(x, result_type(x.dtype, "float32"))
    return _mean(x, axis=normalize_axis(axis, x.ndim), keepdims=keepdims)


def max(x, axis=None, keepdims=False, initial=None):
    """The maximum over `axis` (tied maxima share the gradient equally).

    Args:
        x: input tensor.
        axis: an int, a tuple of ints, or None (all axes).
        keepdims: keep the reduced axes with size 1.
        initial: a value the maximum is taken with (the result where x is empty along axis).
    """
    return _extremum(_max, maximum, x, axis, keepdims, initial)


def min(x, axis=None, keepdims=False, initial=None):
    """The minimum over `axis` (tied minima share the gradient equally); the arguments are max's."""
    return _extremum(_min, minimum, x, axis, keepdims, initial)


def _extremum(reduce, combine, x, axis, keepdims, initial):
    """max / min over `axis`, taken together with `initial` when given (its value where x is empty)."""
    x = _reduction_input(x)
    axis = normalize_axis(axis, x.ndim)
    if initial is None:
        return reduce(x, axis=axis, keepdims=keepdims)
    if not x.size:
        shape = np.sum(np.zeros(x.shape, np.int8), axis=axis, keepdims=keepdims).shape
        return wrap(np.full(shape, initial, dtype=x.dtype))
    return combine(reduce(x, axis=axis, keepdims=keepdims), np.asarray(initial, dtype=x.dtype))


def amax(x, axis=None, keepdims=False):
    """The maximum over `axis` (numpy's name; as max without `initial`)."""
    return max(x, axis=axis, keepdims=keepdims)


def amin(x, axis=None, keepdims=False):
    """The minimum over `axis` (numpy's name; as min without `initial`)."""
    return min(x, axis=axis, keepdims=keepdims)


def argmax(x, axis=None, keepdims=False):
    """Index of the largest element along `axis` (of the flattened input for axis=None), int32."""
    arr = to_array(x)
    axis = normalize_axis(axis, arr.ndim)
    return wrap(np.argmax(arr, axis=axis, keepdims=keepdims).astype(np.int32))


def argmin(x, axis=None, keepdims=False):
    """Index of the smallest element along `axis` (of the flattened input for axis=None), int32."""
    arr = to_array(x)
    axis = normalize_axis(axis, arr.ndim)
    return wrap(np.argmin(arr, axis=axis, keepdims=keepdims).astype(np.int32))


# -- linear algebra --------------------------------------------------------------------
def gemm_2d(a, b, trans_a=False, trans_b=False):
    """op(a) @ op(b) for 2-D float arrays through the engine's GEMM kernel (not recorded: the ops
    that call it define their gradients).

    Args:
        a, b: 2-D numpy arrays (float32 and float64 run as they are, others as float32).
        trans_a, trans_b: use the transpose of a / b.

    Returns:
        A new contiguous array.
    """
    if a.dtype is b.dtype and (a.dtype is _F32 or a.dtype is _F64) and \
            type(a) is np.ndarray and type(b) is np.ndarray:
        # The kernel reads row-strided and column-major (transposed-view) matrices in place and
        # refuses, with a ValueError, the layouts it cannot (then the operands are copied).
        try:
            return _gemm.matmul(a, b, trans_a, trans_b)
        except ValueError:
            pass
    dtype = a.dtype if a.dtype == b.dtype and a.dtype in (np.float32, np.float64) else np.float32
    return _gemm.matmul(contiguous(a, dtype), contiguous(b, dtype), trans_a, trans_b)


def _numpy_product(a, b, trans_a=False, trans_b=False):
    """op(a) @ op(b) with numpy's (batched, broadcasting) matmul; op swaps the last two axes."""
    return np.matmul(np.swapaxes(a, -1, -2) if trans_a else a, np.swapaxes(b, -1, -2) if trans_b else b)


def matmul_grads(a, b, g, needs, product):
    """The gradients of `a @ b` given the output's gradient g -- the one definition, used by
    matmul on both of its paths and by dense: g @ b^T for a and a^T @ g for b, each summed back
    to its operand's shape where the product broadcast it. `product(x, y, trans_a, trans_b)`
    computes op(x) @ op(y) (the GEMM kernel for matrices, numpy's matmul for batches)."""
    ga = unbroadcast(product(g, b, trans_b=True), a.shape) if needs[0] else None
    gb = unbroadcast(product(a, g, trans_a=True), b.shape) if needs[1] else None
    return ga, gb


@differentiable
def _matmul(a, b):
    if a.ndim >= 2 and b.ndim == 2 and a.dtype == b.dtype and a.dtype in (np.float32, np.float64):
        # (..., k) @ (k, n): fold the leading axes into one GEMM.
        lead = a.shape[:-1]
        a2 = a.reshape(-1, a.shape[-1])
        out = gemm_2d(a2, b).reshape(lead + (b.shape[1],))

        def vjp(g, needs):
            ga, gb = matmul_grads(a2, b, g.reshape(-1, b.shape[1]), needs, gemm_2d)
            return (None if ga is None else ga.reshape(a.shape)), gb
        return out, vjp

    # Batched or 1-D operands: numpy's matmul, with a 1-D operand made a matrix (as matmul
    # itself treats it) so one gradient formula covers every case.
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    out2 = np.matmul(a2, b2)
    out = out2
    if b.ndim == 1:
        out = out[..., 0]
    if a.ndim == 1:
        out = out[..., 0, :] if b.ndim > 1 else out[..., 0]

    def vjp(g, needs):
        ga, gb = matmul_grads(a2, b2, np.reshape(g, out2.shape), needs, _numpy_product)
        return (None if ga is None else ga.reshape(a.shape)), (None if gb is None else gb.reshape(b.shape))
    return out, vjp


def matmul(x1, x2):
    """The matrix product of x1 and x2, with numpy's matmul rules (batched, 1-D operands as
    vectors).

    Args:
        x1: a tensor of rank >= 1.
        x2: a tensor of rank >= 1 whose contraction axis (its first for rank 1, else its
            second-to-last) matches x1's last.

    Returns:
        The product, in the operands' promoted dtype.
    """
    if not autodiff._active_tapes and not autodiff._tracers:
        # The common eager case, two float matrices with nothing recording, goes straight to the
        # GEMM kernel (the general path below computes the same product with more checks).
        a = x1._value if isinstance(x1, _HOLDERS) else x1
        b = x2._value if isinstance(x2, _HOLDERS) else x2
        if type(a) is np.ndarray and type(b) is np.ndarray and a.ndim == 2 and b.ndim == 2 \
                and a.dtype is b.dtype and a.shape[1] == b.shape[0]:
            # The kernel reads row-strided and column-major (transposed-view) operands in place,
            # so the gradients' X^T . dY and dY . W^T products copy nothing.
            try:
                return Tensor(_gemm.matmul(a, b, False, False))
            except ValueError:
                pass      # a dtype or memory layout the kernel does not take
    x1, x2 = _reduction_input(x1), _reduction_input(x2)
    if x1.ndim == 0 or x2.ndim == 0:
        raise ValueError(f"matmul: operands must have at least one axis, got shapes {x1.shape} and {x2.shape}")
    k2 = x2.shape[0] if x2.ndim == 1 else x2.shape[-2]
    if x1.shape[-1] != k2:
        raise ValueError(f"matmul: the inner dimensions of shapes {x1.shape} and {x2.shape} differ "
                         f"({x1.shape[-1]} vs {k2})")
    if x1.dtype != x2.dtype:
        dtype = result_type(x1, x2)
        x1, x2 = cast(x1, dtype), cast(x2, dtype)
    return _matmul(x1, x2)


# -- shape manipulation ----------------------------------------------------------------
@differentiable
def _reshape(x, shape=None):
    out = np.reshape(x, shape)

    def vjp(g, needs):
        return (np.reshape(g, x.shape),)
    return out, vjp


def reshape(x, newshape):
    """x with the same elements in shape `newshape` (one size may be -1: inferred)."""
    return _reshape(x, shape=tuple(newshape) if not isinstance(newshape, int) else newshape)


@differentiable
def _transpose(x, axes=None):
    out = np.transpose(x, axes)

    def vjp(g, needs):
        inv = None if axes is None else np.argsort(axes)
        return (np.transpose(g, inv),)
    return out, vjp


def transpose(x, axes=None):
    """x with its axes permuted by `axes` (default: reversed)."""
    return _transpose(x, axes=None if axes is None else tuple(axes))


@differentiable
def _expand_dims(x, axis=0):
    out = np.expand_dims(x, axis)

    def vjp(g, needs):
        return (np.reshape(g, x.shape),)
    return out, vjp


def expand_dims(x, axis):
    """x with a new axis of size 1 inserted at `axis`."""
    return _expand_dims(x, axis=axis)


@differentiable
def _squeeze(x, axis=None):
    out = np.squeeze(x, axis)

    def vjp(g, needs):
        return (np.reshape(g, x.shape),)
    return out, vjp


def squeeze(x, axis=None):
    """x without its size-1 axes (only `axis`, if given)."""
    return _squeeze(x, axis=axis)


@differentiable
def _concatenate(*xs, axis=-1):
    out = np.concatenate(xs, axis=axis)

    def vjp(g, needs):
        bounds = np.cumsum([x.shape[axis] for x in xs])[:-1]
        parts = np.split(g, bounds, axis=axis)
        return tuple(np.ascontiguousarray(p) if n else None for p, n in zip(parts, needs))
    return out, vjp


def concatenate(xs, axis=0):
    """The tensors of `xs` joined along the existing axis `axis`."""
    return _concatenate(*xs, axis=axis)


@differentiable
def _stack(*xs, axis=0):
    out = np.stack(xs, axis=axis)

    def vjp(g, needs):
        return tuple(np.take(g, i, axis=axis) if n else None for i, n in enumerate(needs))
    return out, vjp


def stack(x, axis=0):
    """The tensors of the sequence `x` joined along a new axis `axis` (they share one shape)."""
    return _stack(*x, axis=axis)


def _is_basic_key(key):
    """True when indexing with `key` picks each element at most once (no integer arrays), so
    the gradient can be written with one assignment instead of a scatter-add."""
    parts = key if isinstance(key, tuple) else (key,)
    return all(k is None or k is Ellipsis or isinstance(k, (slice, int, np.integer)) for k in parts)


@differentiable
def _getitem(x, key=None):
    out = np.array(x[key])      # a copy: the result must not alias a Variable that may change

    def vjp(g, needs):
        gx = np.zeros_like(x)
        if _is_basic_key(key):
            gx[key] = g
        else:
            np.add.at(gx, key, g)   # repeated indices add up
        return (gx,)
    return out, vjp


def _index_key(key):
    """An indexing key with tensors replaced by arrays (and lists by integer / bool arrays)."""
    if isinstance(key, tuple):
        return tuple(_index_key(k) for k in key)
    if isinstance(key, (Tensor, Variable)):
        key = to_array(key)
    elif isinstance(key, list):
        key = np.asarray(key)
    if isinstance(key, np.ndarray) and key.dtype.kind not in "biu":
        raise IndexError(f"only integers, slices, ..., None and integer or boolean arrays are valid "
                         f"indices; got an array of dtype {key.dtype}")
    return key


def getitem(x, key):
    """x[key] as a recorded op: ints, slices, ..., None, integer arrays (a gather; repeated
    indices add their gradients) and boolean masks, with numpy's semantics."""
    x = _reduction_input(x)
    key = _index_key(key)
    try:
        return _getitem(x, key=key)
    except IndexError as e:
        raise IndexError(f"index {_describe_key(key)} is out of range for a tensor of shape "
                         f"{tuple(x.shape)}: {e}") from None


def _describe_key(key):
    if isinstance(key, np.ndarray):
        return f"array(shape={key.shape}, dtype={key.dtype})"
    if isinstance(key, tuple):
        return "[" + ", ".join(_describe_key(k) for k in key) + "]"
    return repr(key)


slice_along = getitem


@differentiable
def _take(x, indices, axis=None):
    out = np.take(x, indices, axis=axis)

    def vjp(g, needs):
        from engine.ops.embedding import scatter_rows
        # The gather's gradient is a scatter-add of g's rows (scatter_rows, shared with the
        # embedding lookup): x seen as rows along `axis` (the flattened x for axis=None), g's
        # index axes brought to the front to line up with them.
        n = x.size if axis is None else x.shape[axis]
        ids = np.where(indices < 0, indices + n, indices) if indices.size and indices.min() < 0 else indices
        if axis is None:
            return scatter_rows(n, ids, np.asarray(g, x.dtype).reshape(-1, 1)).reshape(x.shape), None
        k = np.ndim(indices)
        g_front = np.moveaxis(np.asarray(g, x.dtype), list(range(axis, axis + k)), list(range(k)))
        rest = g_front.shape[k:]
        gx = scatter_rows(n, ids, g_front.reshape(ids.size, int(np.prod(rest)))).reshape((n,) + rest)
        return np.moveaxis(gx, 0, axis), None
    return out, vjp


def take(x, indices, axis=None):
    """Elements of x at `indices` along `axis` (of the flattened x for axis=None): a gather."""
    x = _reduction_input(x)
    indices = to_array(indices)
    if indices.dtype.kind not in "iu":
        indices = indices.astype(np.int64)
    axis = normalize_axis(axis, x.ndim)
    size = x.size if axis is None else x.shape[axis]
    if indices.size and (indices.max() >= size or indices.min() < -size):
        raise IndexError(f"take: indices must lie in [{-size}, {size}) for a tensor of shape "
                         f"{tuple(x.shape)} along axis {axis}; got indices from {indices.min()} to "
                         f"{indices.max()}")
    return _take(x, indices, axis=axis)


@differentiable
def _where(condition, x1, x2):
    out = np.where(condition, x1, x2)

    def vjp(g, needs):
        return (None,
                _grad_shape_safe(np.where(condition, g, 0), x1) if needs[1] else None,
                _grad_shape_safe(np.where(condition, 0, g), x2) if needs[2] else None)
    return out, vjp


def where(condition, x1=None, x2=None):
    """Elements of x1 where `condition` holds and of x2 elsewhere (broadcasting all three); with
    only a condition, the indices where it holds (one int32 tensor per axis)."""
    cond = to_array(condition)
    if x1 is None and x2 is None:
        return tuple(wrap(i.astype(np.int32)) for i in np.nonzero(cond))
    if x1 is None or x2 is None:
        raise ValueError("where: pass both x1 and x2, or neither")
    x1, x2 = _operand(x1), _operand(x2)
    dtype = _binary_dtype(x1, x2)
    if dtype is not None:
        x1, x2 = cast(x1, dtype), cast(x2, dtype)
    return _where(np.asarray(cond, dtype=bool), x1, x2)


@differentiable
def _cast(x, dtype=None):
    out = x.astype(dtype, copy=True)

    def vjp(g, needs):
        return (g.astype(x.dtype),)
    return out, vjp


def cast(x, dtype):
    """x converted to `dtype`; float-to-float casts pass the gradient through."""
    dtype = np.dtype(standardize_dtype(dtype))
    x = _operand(x)
    arr = to_array(x)
    if arr.dtype == dtype and isinstance(x, Tensor):
        return x
    if arr.dtype.kind != "f" or dtype.kind != "f":
        return wrap(arr.astype(dtype))
    return _cast(x, dtype=dtype)


def stop_gradient(variable):
    """The value of `variable` (a tensor or Variable) as a constant: no gradient flows back
    through the result."""
    return wrap(to_array(variable).view())


def _default_dtype(arr):
    """Keras's dtype for data converted without one: Python floats are floatx, Python ints int32."""
    if arr.dtype == np.float64:
        return np.dtype(config.floatx())
    if arr.dtype == np.int64:
        return np.dtype(np.int32)
    return arr.dtype


def convert_to_tensor(x, dtype=None, sparse=None, ragged=None):
    """x as an engine Tensor.

    Args:
        x: a tensor (returned as it is), Variable (its current value, recorded as a read of
            the variable), numpy array (wrapped without a copy), or Python data (numbers and
            nested lists: floats become floatx, ints int32, as in Keras).
        dtype: the dtype to convert to (default: keep the input's).
        sparse, ragged: accepted for Keras's signature; engine tensors are always dense.
    """
    if sparse or ragged:
        raise ValueError("convert_to_tensor: engine has no sparse or ragged tensors; pass dense data")
    if isinstance(x, Tensor):
        return x if dtype is None else cast(x, dtype)
    if isinstance(x, Variable):
        value = x.value
        return value if dtype is None else cast(value, dtype)
    if isinstance(x, np.ndarray):
        t = Tensor(x)
        return t if dtype is None or x.dtype == np.dtype(standardize_dtype(dtype)) else cast(t, dtype)
    if hasattr(x, "__array__") and not isinstance(x, (list, tuple)):
        return convert_to_tensor(np.asarray(x), dtype)
    arr = np.asarray(x)
    if arr.dtype == object:
        raise ValueError(f"convert_to_tensor: cannot make a tensor of {type(x).__name__} data "
                         f"(numpy made an object array); pass numbers or strings")
    if isinstance(x, np.generic):
        target = arr.dtype if dtype is None else np.dtype(standardize_dtype(dtype))
    else:
        target = _default_dtype(arr) if dtype is None else np.dtype(standardize_dtype(dtype))
    return Tensor(arr.astype(target, copy=False))


def convert_to_numpy(x):
    """A numpy array with x's value (a copy)."""
    return np.array(to_array(x))


def is_tensor(x):
    """True for engine tensors (numpy arrays and Variables are not tensors)."""
    return isinstance(x, Tensor)


def shape(x):
    """The shape of x as a tuple of ints."""
    return tuple(np.shape(to_array(x)))


def _dtype_or_floatx(dtype):
    return np.dtype(standardize_dtype(dtype))


def zeros(shape, dtype=None):
    """A tensor of zeros (floatx unless told)."""
    return Tensor(np.zeros(shape, dtype=_dtype_or_floatx(dtype)))


def ones(shape, dtype=None):
    """A tensor of ones (floatx unless told)."""
    return Tensor(np.ones(shape, dtype=_dtype_or_floatx(dtype)))


def zeros_like(x, dtype=None):
    """Zeros of x's shape (and dtype unless told)."""
    return Tensor(np.zeros_like(to_array(x), dtype=None if dtype is None else _dtype_or_floatx(dtype)))


def ones_like(x, dtype=None):
    """Ones of x's shape (and dtype unless told)."""
    return Tensor(np.ones_like(to_array(x), dtype=None if dtype is None else _dtype_or_floatx(dtype)))


def one_hot(x, num_classes, axis=-1, dtype=None, sparse=False):
    """One-hot vectors of length `num_classes` for the integer labels x (out-of-range labels,
    negative ones included, give all zeros).

    Args:
        x: integer labels.
        num_classes: the length of each vector.
        axis: where the new class axis goes (default last).
        dtype: the result dtype (default floatx).
        sparse: engine tensors are dense: True is an error.
    """
    if sparse:
        raise ValueError("one_hot: engine has no sparse tensors; call it with sparse=False")
    x = np.asarray(to_array(x), dtype=np.int64)
    dtype = _dtype_or_floatx(dtype)
    out = np.zeros(x.shape + (num_classes,), dtype=dtype)
    valid = (x >= 0) & (x < num_classes)
    np.put_along_axis(out, np.where(valid, x, 0)[..., None], valid[..., None].astype(dtype), axis=-1)
    return wrap(np.moveaxis(out, -1, axis) if axis != -1 else out)


def multi_hot(inputs, num_classes=None, axis=-1, dtype=None, sparse=False, **kwargs):
    """Multi-hot vectors: 1 at every class listed in a sample's labels (the samples are the
    rows of a 2-D input; a 1-D input is one sample).

    Args:
        inputs: integer labels, (batch, labels) or (labels,).
        num_classes: the length of each vector (`num_tokens` is accepted as its old name).
        axis: where the class axis goes.
        dtype: the result dtype (default floatx).
        sparse: engine tensors are dense: True is an error.
    """
    if num_classes is None and "num_tokens" in kwargs:
        num_classes = kwargs.pop("num_tokens")
    if kwargs:
        raise ValueError(f"multi_hot: unexpected arguments {sorted(kwargs)}")
    if num_classes is None:
        raise ValueError("multi_hot: num_classes must be given")
    labels = np.asarray(to_array(inputs))
    hot = to_array(one_hot(labels, num_classes, axis=axis, dtype=dtype, sparse=sparse))
    return wrap(hot.max(axis=1 if labels.ndim > 1 else 0))


@differentiable
def _pad(x, pad_width=None, constant_values=0):
    out = np.pad(x, pad_width, constant_values=constant_values)

    def vjp(g, needs):
        index = tuple(slice(lo, g.shape[i] - hi) for i, (lo, hi) in enumerate(pad_width))
        return (np.ascontiguousarray(g[index]),)
    return out, vjp


@differentiable
def _repeat(x, repeats=1, axis=0):
    out = np.repeat(x, repeats, axis=axis)

    def vjp(g, needs):
        shape = list(x.shape)
        shape.insert(axis + 1, repeats)
        return (g.reshape(shape).sum(axis=axis + 1),)
    return out, vjp
