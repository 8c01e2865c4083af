"""Python operators on engine tensors: values, dtypes, and gradients against finite differences.

Each operator is checked through engine.testing.check_gradients, which compares the tape with
central differences in float64 on the same function; the function's values are compared with
numpy written out in the test.
"""
import numpy as np
import pytest

from engine import GradientTape, Variable, ops
from engine.testing import check_gradients
from engine.tensor import Tensor

rng = np.random.default_rng(0)


def r(*shape):
    return rng.standard_normal(shape)


def pos(*shape):
    return rng.uniform(0.5, 2.0, shape)


T = ops.convert_to_tensor

BINARY = {
    "add": (lambda a, b: a + b, np.add),
    "sub": (lambda a, b: a - b, np.subtract),
    "mul": (lambda a, b: a * b, np.multiply),
    "truediv": (lambda a, b: a / b, np.divide),
    "pow": (lambda a, b: a ** b, np.power),
    "mod": (lambda a, b: a % b, np.mod),
}


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_operator_between_tensors_broadcasts_and_differentiates(name):
    op, reference = BINARY[name]
    a, b = pos(3, 4), pos(4)
    out = op(T(a), T(b))
    assert isinstance(out, Tensor)
    np.testing.assert_allclose(np.asarray(out), reference(a, b), rtol=1e-12)
    # mod is differentiable away from its jumps: keep a / b off integers.
    check_gradients(lambda x, y: op(T(x), T(y)), [a, b], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_operator_with_scalars_and_arrays_on_either_side(name):
    op, reference = BINARY[name]
    a, c = pos(2, 3), pos(2, 3)
    for left, right, expected in [(T(a), 1.5, reference(a, 1.5)), (1.5, T(a), reference(1.5, a)),
                                  (T(a), c, reference(a, c)), (c, T(a), reference(c, a))]:
        out = op(left, right)
        assert isinstance(out, Tensor), (name, type(left), type(right))
        np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-12)
    check_gradients(lambda x: op(T(x), 1.5) + op(1.5, T(x)) + op(c, T(x)), [a], rtol=1e-5, atol=1e-6)


def test_floor_divide_values_and_zero_gradient():
    a, b = pos(3, 2) * 5, pos(3, 2)
    np.testing.assert_allclose(np.asarray(T(a) // T(b)), np.floor_divide(a, b))
    np.testing.assert_allclose(np.asarray(7 // T(b)), np.floor_divide(7, b))
    x = T(a)
    with GradientTape() as tape:
        tape.watch(x)
        y = x // 2.0
    np.testing.assert_array_equal(np.asarray(tape.gradient(y, x)), np.zeros_like(a))


def test_unary_operators_and_abs():
    a = r(3, 3)
    np.testing.assert_allclose(np.asarray(-T(a)), -a)
    np.testing.assert_allclose(np.asarray(+T(a)), a)
    np.testing.assert_allclose(np.asarray(abs(T(a))), np.abs(a))
    check_gradients(lambda x: -T(x) + abs(T(x)) * 3.0 + (+T(x)), [a])


def test_matmul_operator_for_matrices_batches_and_vectors():
    for sa, sb in [((4, 3), (3, 5)), ((2, 4, 3), (3, 5)), ((2, 4, 3), (2, 3, 5)), ((3,), (3, 5)),
                   ((4, 3), (3,)), ((3,), (3,)), ((3,), (2, 3, 4))]:
        a, b = r(*sa), r(*sb)
        np.testing.assert_allclose(np.asarray(T(a) @ T(b)), np.matmul(a, b), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(np.asarray(a @ T(b)), np.matmul(a, b), rtol=1e-12, atol=1e-12)
        check_gradients(lambda x, y: T(x) @ T(y), [a, b])


def test_matmul_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        T(r(2, 3)) @ T(r(4, 5))


def test_broadcast_mismatch_is_a_value_error_naming_both_shapes():
    with pytest.raises(ValueError, match=r"\(2,3\).*\(4,\)"):
        T(r(2, 3)) + T(r(4))


def test_comparisons_give_bool_tensors():
    a, b = r(3, 4), r(3, 4)
    for op, ref in [(lambda x, y: x < y, np.less), (lambda x, y: x <= y, np.less_equal),
                    (lambda x, y: x > y, np.greater), (lambda x, y: x >= y, np.greater_equal),
                    (lambda x, y: x == y, np.equal), (lambda x, y: x != y, np.not_equal)]:
        out = op(T(a), T(b))
        assert isinstance(out, Tensor) and out.dtype == np.bool_
        np.testing.assert_array_equal(np.asarray(out), ref(a, b))
        np.testing.assert_array_equal(np.asarray(op(T(a), 0.0)), ref(a, 0.0))
    m = T(a) > 0
    np.testing.assert_array_equal(np.asarray(m & (T(b) > 0)), (a > 0) & (b > 0))
    np.testing.assert_array_equal(np.asarray(m | (T(b) > 0)), (a > 0) | (b > 0))
    np.testing.assert_array_equal(np.asarray(~m), ~(a > 0))
    ints = T(np.array([5, 6], np.int32))
    np.testing.assert_array_equal(np.asarray(ints & 3), [1, 2])


KEYS = [
    ("int", 1), ("negative int", -1), ("slice", slice(1, 3)), ("step slice", slice(None, None, 2)),
    ("tuple", (slice(None), 2)), ("ellipsis", (Ellipsis, 0)), ("newaxis", (None, slice(1, 3))),
    ("int array with repeats", np.array([0, 2, 2, 1])), ("2-d int array", np.array([[0, 1], [3, 3]])),
    ("mixed advanced", (np.array([0, 0, 3]), slice(None), np.array([1, 1, 2]))),
    ("list", [1, 1, 0]),
]


@pytest.mark.parametrize("label,key", KEYS, ids=[k[0] for k in KEYS])
def test_indexing_is_a_differentiable_gather(label, key):
    x = r(4, 3, 5)
    out = T(x)[key]
    assert isinstance(out, Tensor)
    np.testing.assert_array_equal(np.asarray(out), x[key])
    check_gradients(lambda a: T(a)[key], [x])


def test_boolean_mask_indexing():
    x = r(4, 3)
    mask = x > 0
    np.testing.assert_array_equal(np.asarray(T(x)[mask]), x[mask])
    np.testing.assert_array_equal(np.asarray(T(x)[T(mask)]), x[mask])
    check_gradients(lambda a: T(a)[mask], [x])
    row_mask = np.array([True, False, True, True])
    check_gradients(lambda a: T(a)[row_mask], [x])


def test_repeated_indices_add_their_gradients():
    x = T(np.arange(4.0))
    with GradientTape() as tape:
        tape.watch(x)
        y = ops.sum(x[np.array([1, 1, 1, 3])])
    np.testing.assert_array_equal(np.asarray(tape.gradient(y, x)), [0.0, 3.0, 0.0, 1.0])


def test_index_out_of_range_is_an_index_error():
    with pytest.raises(IndexError):
        T(r(3, 2))[3]
    with pytest.raises(IndexError):
        T(r(3, 2))[np.array([0, 5])]
    with pytest.raises(IndexError):
        T(r(3, 2))[:, -3]


def test_tensor_used_several_times_accumulates_its_gradient():
    x = T(np.array([1.0, -2.0, 3.0]))
    with GradientTape() as tape:
        tape.watch(x)
        y = x * x + x + x[0] * x
    g = np.asarray(tape.gradient(y, x))
    # d/dx_i sum(x^2 + x + x0 * x) = 2 x_i + 1 + x0, plus sum(x) on x0
    expected = 2 * np.array([1.0, -2.0, 3.0]) + 1 + 1.0
    expected[0] += np.sum([1.0, -2.0, 3.0])
    np.testing.assert_allclose(g, expected)


def test_augmented_assignment_rebinds_and_never_writes_the_original():
    a = r(3, 4)
    original = a.copy()
    x = T(a)
    alias = x
    x -= ops.mean(x, axis=-1, keepdims=True)
    x *= 2.0
    x += 1
    x /= 3.0
    x **= 2
    x @= T(np.eye(4))
    assert x is not alias
    np.testing.assert_array_equal(a, original)
    np.testing.assert_array_equal(np.asarray(alias), original)
    expected = (((original - original.mean(-1, keepdims=True)) * 2 + 1) / 3) ** 2
    np.testing.assert_allclose(np.asarray(x), expected)

    def antirectifier_like(v):
        t = T(v)
        t -= ops.mean(t, axis=-1, keepdims=True)
        return ops.concatenate([ops.relu(t), ops.relu(-t)], axis=-1)
    check_gradients(antirectifier_like, [a])


def test_variable_operators_record_and_assign_methods():
    v = Variable(np.array([1.0, 2.0, 3.0]), dtype="float64")
    with GradientTape() as tape:
        y = ops.sum(v * v + 2.0 * v - v / 2.0 + v[1] + (v @ v) + v ** 2)
    g = np.asarray(tape.gradient(y, v))
    w = np.array([1.0, 2.0, 3.0])
    # v[1] and v @ v are scalars broadcast over the three elements before the sum.
    expected = 2 * w + 2 - 0.5 + 3 * (2 * w) + 2 * w
    expected[1] += 3
    np.testing.assert_allclose(g, expected)
    assert (v > 1.5).dtype == np.bool_
    v.assign([3.0, 2.0, 1.0])
    v.assign_add(np.ones(3))
    v.assign_sub(0.5)
    np.testing.assert_array_equal(v.numpy(), [3.5, 2.5, 1.5])
    with pytest.raises(ValueError, match="assign_add"):
        v.assign_add(np.ones(4))
    assert hash(v) == hash(v)


def test_tensor_protocol():
    a = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    t = T(a)
    assert t.shape == (2, 3) and t.dtype == "float32" and t.ndim == 2 and len(t) == 2 and t.size == 6
    assert np.asarray(t) is a                      # no copy
    assert np.array_equal(t.numpy(), a) and t.numpy() is not a
    assert isinstance(ops.convert_to_numpy(t), np.ndarray)
    assert ops.is_tensor(t) and not ops.is_tensor(a) and not ops.is_tensor(Variable(a))
    assert ops.convert_to_tensor(t) is t
    assert float(T(np.float32(2.5))) == 2.5 and int(T(np.int32(3))) == 3
    assert [np.asarray(row).tolist() for row in t] == a.tolist()
    assert "shape=(2, 3)" in repr(t)
    with pytest.raises(TypeError):
        t[0] = 1.0
    with pytest.raises(TypeError):
        hash(t)


def test_numpy_functions_on_tensors_give_plain_unrecorded_arrays():
    x = T(r(3))
    with GradientTape() as tape:
        tape.watch(x)
        y = np.tanh(x)
        z = np.add(x, 1.0)
    assert type(y) is np.ndarray and type(z) is np.ndarray
    assert tape.gradient(z, x) is None


def test_convert_to_tensor_dtypes_follow_keras():
    assert T(1.5).dtype == "float32" and T(2).dtype == "int32" and T(True).dtype == "bool"
    assert T([1.0, 2.0]).dtype == "float32" and T([1, 2]).dtype == "int32"
    assert T(np.zeros(2)).dtype == "float64" and T(np.zeros(2, np.int64)).dtype == "int64"
    assert T([1, 2], dtype="float16").dtype == "float16"
    with pytest.raises(ValueError, match="object"):
        T([object()])


PROMOTIONS = [
    # (left, right, Keras 3's result dtype)
    (np.float32, 2.0, "float32"), (np.float32, 2, "float32"), (np.int32, 1.5, "float32"),
    (np.int32, 2, "int32"), (np.int8, 1, "int8"), (np.int32, np.float32, "float32"),
    (np.int64, np.float32, "float32"), (np.float32, np.float64, "float64"), (np.uint8, np.int8, "int16"),
    (np.bool_, 1, "int32"), (np.bool_, 1.5, "float32"), (np.float16, 2.0, "float16"),
    (np.int16, np.float16, "float16"),
]


@pytest.mark.parametrize("left,right,expected", PROMOTIONS)
def test_dtype_promotion_is_keras_3s(left, right, expected):
    a = T(np.ones(2, left))
    b = right if isinstance(right, (int, float)) else T(np.ones(2, right))
    assert (a + b).dtype == expected and (b * a).dtype == expected and (a - b).dtype == expected


def test_division_and_mean_of_integers_give_floats():
    i = T(np.array([1, 2, 3], np.int32))
    assert (i / 2).dtype == "float32" and (i / i).dtype == "float32"
    assert ops.mean(i).dtype == "float32"
    assert (i // 2).dtype == "int32" and (i % 2).dtype == "int32"
