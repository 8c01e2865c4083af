"""Every array op's gradient against central finite differences in float64."""
import numpy as np
import pytest

from engine import ops
from engine.testing import check_gradients

rng = np.random.default_rng(0)


def r(*shape):
    return rng.standard_normal(shape)


def pos(*shape):
    return rng.uniform(0.5, 2.0, shape)


BINARY = [
    ("add", ops.add), ("subtract", ops.subtract), ("multiply", ops.multiply),
    ("maximum", ops.maximum), ("minimum", ops.minimum),
]


@pytest.mark.parametrize("name,fn", BINARY)
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 3), (1, 4, 3)), ((3,), ())])
def test_binary_broadcasting(name, fn, shapes):
    check_gradients(fn, [r(*shapes[0]), r(*shapes[1])])


def test_divide_and_power():
    check_gradients(ops.divide, [r(3, 4), pos(4)])
    check_gradients(ops.power, [pos(3, 4), r(3, 4)])


@pytest.mark.parametrize("fn,make", [
    (ops.negative, r), (ops.square, r), (ops.sqrt, pos), (ops.exp, r), (ops.log, pos),
    (ops.log1p, pos), (ops.abs, r), (ops.sin, r), (ops.cos, r), (ops.reciprocal, pos),
])
def test_unary(fn, make):
    check_gradients(fn, [make(2, 5)])


def test_clip():
    x = np.array([-2.0, -0.5, 0.1, 0.7, 3.0])
    check_gradients(lambda a: ops.clip(a, -1.0, 1.0), [x])


@pytest.mark.parametrize("reducer", [ops.sum, ops.mean, ops.max, ops.min])
@pytest.mark.parametrize("axis,keepdims", [(None, False), (0, False), (1, True), ((0, 2), False), (-1, False)])
def test_reductions(reducer, axis, keepdims):
    check_gradients(lambda a: reducer(a, axis=axis, keepdims=keepdims), [r(2, 3, 4)])


@pytest.mark.parametrize("reducer", [ops.sum, ops.mean])
@pytest.mark.parametrize("axis,keepdims", [(1, False), ((1, 2), True), ((0, 1), False)])
def test_middle_axis_reductions_take_the_kernel_and_match_float64(reducer, axis, keepdims):
    """Axes ending before the last one go through bias.sum_middle (global average pooling's
    path): the values against numpy in float64, the gradient by finite differences."""
    x = r(3, 5, 4, 6)
    ref = (np.sum if reducer is ops.sum else np.mean)(x, axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(reducer(x, axis=axis, keepdims=keepdims), ref, rtol=1e-12, atol=1e-12)
    x32 = x.astype(np.float32)
    np.testing.assert_allclose(reducer(x32, axis=axis, keepdims=keepdims), ref, rtol=1e-5, atol=1e-6)
    check_gradients(lambda a: reducer(a, axis=axis, keepdims=keepdims), [r(2, 3, 4, 2)])


def test_max_splits_ties_evenly():
    x = np.array([[1.0, 3.0, 3.0]])
    from engine import GradientTape
    with GradientTape() as tape:
        tape.watch(x)
        y = ops.max(x, axis=1)
    np.testing.assert_allclose(tape.gradient(y, x), [[0.0, 0.5, 0.5]])


@pytest.mark.parametrize("a_shape,b_shape", [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((1, 7), (7, 1)),
                                             ((2, 3, 4), (2, 4, 2)), ((4,), (4, 3))])
def test_matmul(a_shape, b_shape):
    check_gradients(ops.matmul, [r(*a_shape), r(*b_shape)])


def test_shape_ops():
    check_gradients(lambda a: ops.reshape(a, (4, 3)), [r(2, 6)])
    check_gradients(lambda a: ops.transpose(a, (2, 0, 1)), [r(2, 3, 4)])
    check_gradients(lambda a: ops.expand_dims(a, 1), [r(2, 3)])
    check_gradients(lambda a: ops.squeeze(a, 1), [r(2, 1, 3)])
    check_gradients(lambda a, b: ops.concatenate([a, b], axis=1), [r(2, 3), r(2, 2)])
    check_gradients(lambda a, b: ops.stack([a, b], axis=1), [r(2, 3), r(2, 3)])
    check_gradients(lambda a: ops.take(a, np.array([0, 2, 2]), axis=0), [r(3, 2)])
    check_gradients(lambda a, b: ops.where(np.array([True, False, True]), a, b), [r(3), r(3)])
    check_gradients(lambda a: ops.cast(a, "float64"), [r(3)])


def test_value_used_twice_accumulates():
    x = r(3)
    check_gradients(lambda a: ops.add(ops.multiply(a, a), ops.sin(a)), [x])


def test_unconnected_source_gets_none_and_numpy_arithmetic_is_not_recorded():
    from engine import GradientTape
    a, b = r(3), r(3)
    with GradientTape() as tape:
        tape.watch([a, b])
        y = ops.square(a)
    assert tape.gradient(y, [a, b])[1] is None
    # Arithmetic on a plain numpy array is numpy's, invisible to the tape (as in TensorFlow):
    # the target does not depend on the source, so its gradient is None ...
    with GradientTape() as tape:
        tape.watch(a)
        y = a * 2.0
    assert tape.gradient(y, a) is None
    # ... while the same operator on an engine tensor is recorded.
    t = ops.convert_to_tensor(a)
    with GradientTape() as tape:
        tape.watch(t)
        y = t * 2.0
    np.testing.assert_array_equal(np.asarray(tape.gradient(y, t)), np.full(3, 2.0))


def test_variables_are_watched_automatically():
    from engine import GradientTape, Variable
    v = Variable(np.array([1.0, 2.0]), dtype="float64")
    with GradientTape() as tape:
        y = ops.sum(ops.square(v))
    np.testing.assert_allclose(tape.gradient(y, v), [2.0, 4.0])


def test_persistent_tape():
    from engine import GradientTape
    x = r(3)
    with GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = ops.sum(ops.square(x))
    g1 = tape.gradient(y, x)
    g2 = tape.gradient(y, x)
    np.testing.assert_allclose(g1, g2)
    with GradientTape() as tape:
        tape.watch(x)
        y = ops.sum(x)
    tape.gradient(y, x)
    with pytest.raises(RuntimeError, match="persistent"):
        tape.gradient(y, x)


@pytest.mark.parametrize("indices, axis", [(np.array([0, -1, 2, 2]), 1), (np.array([[1, 1], [0, 3]]), 0),
                                           (np.array([5, 5, 23]), None), (np.array([], dtype=np.int64), 2)])
def test_take_gradient_adds_repeated_and_negative_indices(indices, axis):
    """take's gradient (the row scatter shared with the embedding lookup) against a plain loop."""
    from engine import GradientTape
    x = r(4, 3, 2)
    g = r(*np.take(x, indices, axis=axis).shape)
    tx = ops.convert_to_tensor(x)
    with GradientTape() as tape:
        tape.watch(tx)
        y = ops.take(tx, indices, axis=axis)
    got = tape.gradient(y, tx, output_gradients=g).numpy()
    expected = np.zeros_like(x)
    if axis is None:
        flat = expected.reshape(-1)
        for pos, i in enumerate(indices):
            flat[i] += g[pos]
    else:
        moved = np.moveaxis(expected, axis, 0)
        g_front = np.moveaxis(g, list(range(axis, axis + indices.ndim)), list(range(indices.ndim)))
        for pos in np.ndindex(indices.shape):
            moved[indices[pos]] += g_front[pos]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
