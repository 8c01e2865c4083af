"""Keras 3's losses: values against float64 references written out here, gradients by central
differences, reductions and sample weights, configs, and Keras's own numbers where installed."""
import json
import os

import numpy as np
import pytest

from engine import losses, GradientTape
from engine.saving import deserialize_keras_object, serialize_keras_object
from engine.testing import check_gradients

EPS = 1e-7
rng = np.random.default_rng(0)
Y_REG = rng.standard_normal((4, 3))
P_REG = rng.standard_normal((4, 3))
Y_POS = rng.uniform(0.1, 2.0, (4, 3))
P_POS = rng.uniform(0.1, 2.0, (4, 3))
Y_PROB = rng.dirichlet(np.ones(3), 4)
P_PROB = rng.dirichlet(np.ones(3), 4)
Y_BIN = (rng.uniform(size=(4, 3)) > 0.5).astype(np.float64)
P_UNIT = rng.uniform(0.05, 0.95, (4, 3))
Y_ONEHOT = np.eye(3)[[0, 2, 1, 2]]


def ref_bce(y, p):
    p = np.clip(p, EPS, 1 - EPS)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def norm(x):
    return x / np.sqrt(np.maximum((x * x).sum(-1, keepdims=True), EPS * EPS))


# (function, y_true, y_pred, float64 reference of the per-sample values)
CASES = {
    "mean_absolute_percentage_error": (Y_POS, P_POS, lambda y, p: 100 * np.mean(np.abs((y - p) / np.maximum(np.abs(y), EPS)), -1)),
    "mean_squared_logarithmic_error": (Y_POS, P_POS, lambda y, p: np.mean((np.log(p + 1) - np.log(y + 1)) ** 2, -1)),
    "cosine_similarity": (Y_REG, P_REG, lambda y, p: -np.sum(norm(y) * norm(p), -1)),
    "huber": (Y_REG, P_REG * 2, lambda y, p: np.mean(np.where(np.abs(p - y) <= 1, 0.5 * (p - y) ** 2, np.abs(p - y) - 0.5), -1)),
    "log_cosh": (Y_REG, P_REG, lambda y, p: np.mean(np.log(np.cosh(p - y)), -1)),
    "kl_divergence": (Y_PROB, P_PROB, lambda y, p: np.sum(y * np.log(y / p), -1)),
    "poisson": (Y_POS, P_POS, lambda y, p: np.mean(p - y * np.log(p + EPS), -1)),
    "hinge": (Y_BIN, P_REG, lambda y, p: np.mean(np.maximum(1 - (2 * y - 1) * p, 0), -1)),
    "squared_hinge": (Y_BIN, P_REG, lambda y, p: np.mean(np.maximum(1 - (2 * y - 1) * p, 0) ** 2, -1)),
    "categorical_hinge": (Y_ONEHOT, P_REG, lambda y, p: np.maximum(np.max((1 - y) * p, -1) - np.sum(y * p, -1) + 1, 0)),
    "binary_focal_crossentropy": (Y_BIN, P_UNIT, lambda y, p: np.mean(
        (1 - (y * p + (1 - y) * (1 - p))) ** 2 * ref_bce(y, p), -1)),
    "categorical_focal_crossentropy": (Y_ONEHOT, P_PROB, lambda y, p: np.sum(
        0.25 * (1 - p) ** 2 * -y * np.log(np.clip(p, EPS, 1 - EPS)), -1)),
    "dice": (Y_BIN, P_UNIT, lambda y, p: 1 - 2 * np.sum(y * p) / (y.sum() + p.sum() + EPS)),
    "tversky": (Y_BIN, P_UNIT, lambda y, p: 1 - np.sum(y * p) / (np.sum(y * p) + 0.5 * np.sum((1 - p) * y)
                                                               + 0.5 * np.sum(p * (1 - y)) + EPS)),
    "mean_squared_error": (Y_REG, P_REG, lambda y, p: np.mean((y - p) ** 2, -1)),
    "mean_absolute_error": (Y_REG, P_REG, lambda y, p: np.mean(np.abs(y - p), -1)),
    "binary_crossentropy": (Y_BIN, P_UNIT, lambda y, p: np.mean(ref_bce(y, p), -1)),
    "categorical_crossentropy": (Y_ONEHOT, P_PROB, lambda y, p: -np.sum(y * np.log(p / p.sum(-1, keepdims=True)), -1)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_loss_functions_match_float64_references(name):
    y, p, ref = CASES[name]
    np.testing.assert_allclose(np.asarray(getattr(losses, name)(y, p)), ref(y, p), rtol=1e-6, atol=1e-9)


# The kernels' gradients (mse ... crossentropies) are tested in tests/ops; these are the composed ones.
@pytest.mark.parametrize("name", sorted(set(CASES) - {"mean_squared_error", "mean_absolute_error",
                                                      "binary_crossentropy", "categorical_crossentropy"}))
def test_loss_function_gradients_by_finite_differences(name):
    y, p, _ = CASES[name]
    fn = getattr(losses, name)
    check_gradients(lambda pred: fn(y, pred), [p], rtol=1e-4, atol=1e-7)


def test_from_logits_and_label_smoothing():
    logits = rng.standard_normal((4, 3))
    s = 0.2
    smoothed = Y_ONEHOT * (1 - s) + s / 3
    ref = -np.sum(smoothed * np.log(softmax(logits)), -1)
    loss = losses.CategoricalCrossentropy(from_logits=True, label_smoothing=s, dtype="float64")
    assert float(loss(Y_ONEHOT, logits)) == pytest.approx(ref.mean(), rel=1e-6)
    b_smoothed = Y_BIN * (1 - s) + 0.5 * s
    sig = 1 / (1 + np.exp(-logits))
    bref = np.mean(-(b_smoothed * np.log(sig) + (1 - b_smoothed) * np.log(1 - sig)), -1)
    bl = losses.BinaryCrossentropy(from_logits=True, label_smoothing=s, dtype="float64")
    assert float(bl(Y_BIN, logits)) == pytest.approx(bref.mean(), rel=1e-6)
    focal = losses.BinaryFocalCrossentropy(from_logits=True, apply_class_balancing=True, alpha=0.3, gamma=1.5,
                                           label_smoothing=s, dtype="float64")
    pt = b_smoothed * sig + (1 - b_smoothed) * (1 - sig)
    fref = np.mean((b_smoothed * 0.3 + (1 - b_smoothed) * 0.7) * (1 - pt) ** 1.5 * ref_bce(b_smoothed, sig), -1)
    assert float(focal(Y_BIN, logits)) == pytest.approx(fref.mean(), rel=1e-5)
    check_gradients(lambda x: losses.categorical_focal_crossentropy(Y_ONEHOT, x, from_logits=True,
                                                                    label_smoothing=s), [logits], rtol=1e-4)


def test_reductions_and_sample_weights():
    y, p = Y_REG, P_REG
    per = np.mean(np.log(np.cosh(p - y)), -1)
    sw = np.array([1.0, 0.0, 2.0, 0.5])
    got = {r: np.asarray(losses.LogCosh(reduction=r, dtype="float64")(y, p, sample_weight=sw))
           for r in ("sum_over_batch_size", "sum", "mean", "none", None, "mean_with_sample_weight")}
    np.testing.assert_allclose(got["none"], per * sw, rtol=1e-7)
    np.testing.assert_allclose(got[None], per * sw, rtol=1e-7)
    assert got["sum"] == pytest.approx(np.sum(per * sw))
    assert got["sum_over_batch_size"] == pytest.approx(np.sum(per * sw) / 4)  # divided by the count, as Keras
    assert got["mean"] == pytest.approx(np.sum(per * sw) / 4)
    assert got["mean_with_sample_weight"] == pytest.approx(np.sum(per * sw) / sw.sum())
    with pytest.raises(ValueError, match="reduction"):
        losses.Huber(reduction="average")


def test_weighted_loss_gradient_flows_through_the_tape():
    sw = np.array([1.0, 0.0, 2.0, 0.5])
    loss = losses.Huber(delta=0.5, dtype="float64")
    check_gradients(lambda pred: loss(Y_REG, pred, sample_weight=sw), [P_REG * 2], rtol=1e-4)
    from engine import Variable
    weights = Variable(P_REG.astype("float32"))
    with GradientTape() as tape:
        value = losses.Poisson()(Y_POS, weights.value + 3.0)
    assert tape.gradient(value, weights) is not None


def test_sparse_categorical_ignore_class_masks_the_mean():
    probs = P_PROB
    labels = np.array([0, 2, -1, 1])
    loss = losses.SparseCategoricalCrossentropy(ignore_class=-1, dtype="float64")
    keep = labels != -1
    ref = -np.log(probs[np.arange(4), np.where(keep, labels, 0)])[keep]
    assert float(loss(labels, probs)) == pytest.approx(ref.mean(), rel=1e-6)


def test_ctc_matches_a_brute_force_sum_over_alignments():
    import itertools
    logits = rng.standard_normal((2, 4, 3))
    labels = np.array([[1, 2], [2, 0]])
    probs = softmax(logits)

    def collapse(path):
        out = []
        prev = None
        for c in path:
            if c != prev and c != 0:
                out.append(c)
            prev = c
        return out

    expected = []
    for b in range(2):
        target = [c for c in labels[b] if c != 0]
        total = sum(np.prod([probs[b, t, c] for t, c in enumerate(path)])
                    for path in itertools.product(range(3), repeat=4) if collapse(path) == target)
        expected.append(-np.log(total))
    np.testing.assert_allclose(np.asarray(losses.ctc(labels, logits)), expected, rtol=1e-6)
    check_gradients(lambda x: losses.ctc(labels, x), [logits], rtol=1e-4)
    assert float(losses.CTC(dtype="float64")(labels, logits)) == pytest.approx(np.mean(expected), rel=1e-6)


def test_circle_and_generalized_crossentropy_run_and_differentiate():
    emb = norm(rng.standard_normal((6, 4)))
    labels = np.array([0, 0, 1, 1, 2, 2])
    check_gradients(lambda e: losses.circle(labels, e), [emb], rtol=1e-4, atol=1e-6)
    gce = losses.categorical_generalized_cross_entropy(np.array([0, 2, 1, 2]), P_PROB, q=0.5)
    np.testing.assert_allclose(np.asarray(gce), (1 - P_PROB[np.arange(4), [0, 2, 1, 2]] ** 0.5) / 0.5, rtol=1e-7)


LOSS_OBJECTS = [losses.Huber(delta=2.0), losses.LogCosh(), losses.Poisson(), losses.KLDivergence(),
                losses.CosineSimilarity(axis=0), losses.Hinge(), losses.SquaredHinge(), losses.CategoricalHinge(),
                losses.Dice(axis=(1,)), losses.Tversky(alpha=0.3, beta=0.7), losses.CategoricalFocalCrossentropy(gamma=3.0),
                losses.BinaryFocalCrossentropy(apply_class_balancing=True), losses.MeanSquaredLogarithmicError(),
                losses.MeanAbsolutePercentageError(reduction="sum"), losses.CTC(), losses.Circle(margin=0.3),
                losses.CategoricalGeneralizedCrossEntropy(q=0.7),
                losses.SparseCategoricalCrossentropy(ignore_class=3)]


@pytest.mark.parametrize("loss", LOSS_OBJECTS, ids=lambda o: type(o).__name__)
def test_loss_configs_round_trip(loss):
    clone = deserialize_keras_object(json.loads(json.dumps(serialize_keras_object(loss))))
    assert type(clone) is type(loss) and serialize_keras_object(clone) == serialize_keras_object(loss)


def test_get_and_deserialize_by_name():
    assert isinstance(losses.get("huber"), losses.Huber)
    assert isinstance(losses.get("Huber"), losses.Huber)
    assert isinstance(losses.get("kld"), losses.KLDivergence)
    assert isinstance(losses.get({"class_name": "Dice", "config": {"axis": None}}), losses.Dice)
    assert losses.deserialize("log_cosh") is losses.log_cosh
    assert losses.serialize(losses.Poisson())["class_name"] == "Poisson"
    with pytest.raises(ValueError, match="Unknown loss"):
        losses.get("no_such_loss")


KERAS_CASES = ["mean_absolute_percentage_error", "mean_squared_logarithmic_error", "cosine_similarity", "huber",
               "log_cosh", "kl_divergence", "poisson", "hinge", "squared_hinge", "categorical_hinge",
               "binary_focal_crossentropy", "categorical_focal_crossentropy", "dice", "tversky"]


@pytest.mark.parametrize("name", KERAS_CASES)
def test_functions_match_keras(name):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    y, p, _ = CASES[name]
    y, p = y.astype("float32"), p.astype("float32")
    theirs = np.asarray(getattr(keras.losses, name)(y, p))
    np.testing.assert_allclose(np.asarray(getattr(losses, name)(y, p)), theirs, rtol=2e-5, atol=1e-6)


def test_classes_match_keras_configs_and_values():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    sw = np.array([1.0, 0.0, 2.0, 0.5], dtype="float32")
    for mine in LOSS_OBJECTS:
        name = type(mine).__name__
        theirs = getattr(keras.losses, name).from_config(mine.get_config())
        extra = {"Huber": {"delta"}, "CosineSimilarity": {"axis"}}.get(name, set())
        assert {k: v for k, v in mine.get_config().items() if k not in extra} == theirs.get_config(), name
    ctc_logits = rng.standard_normal((2, 5, 4)).astype("float32")
    ctc_labels = np.array([[1, 2, 0], [3, 3, 1]])
    np.testing.assert_allclose(np.asarray(losses.ctc(ctc_labels, ctc_logits)),
                               np.asarray(keras.losses.ctc(ctc_labels, ctc_logits)), rtol=1e-5)
    for r in ("sum_over_batch_size", "sum", "none", "mean_with_sample_weight"):
        a = losses.Huber(reduction=r)(Y_REG.astype("float32"), P_REG.astype("float32"), sample_weight=sw)
        b = keras.losses.Huber(reduction=r)(Y_REG.astype("float32"), P_REG.astype("float32"), sample_weight=sw)
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)


def test_masked_predictions_weigh_the_reduction_as_keras():
    import engine
    x = rng.random((2, 3, 4)).astype("float32")
    mask = np.array([[1, 1, 0], [1, 0, 0]], bool)
    probs = engine.ops.softmax(engine.ops.convert_to_tensor(x))
    probs._keras_mask = mask
    labels = np.array([[0, 1, 2], [3, 0, 1]])
    p = softmax(x.astype(np.float64))
    per = -np.log(p[np.arange(2)[:, None], np.arange(3)[None, :], labels])
    # "sum_over_batch_size": the kept entries' mean (kept entries are scaled by total / kept).
    assert float(losses.SparseCategoricalCrossentropy()(labels, probs)) == pytest.approx(per[mask].mean(), rel=1e-5)
    sw = np.array([[1.0, 2.0, 1.0], [0.5, 1.0, 1.0]])
    got = float(losses.SparseCategoricalCrossentropy(reduction="sum")(labels, probs, sample_weight=sw))
    assert got == pytest.approx(np.sum(per * sw * mask), rel=1e-5)


def test_more_functions_match_keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    emb = norm(rng.standard_normal((6, 4))).astype("float32")
    labels = np.array([0, 0, 1, 1, 2, 2])
    np.testing.assert_allclose(np.asarray(losses.circle(labels, emb)), np.asarray(keras.losses.circle(labels, emb)),
                               rtol=1e-5, atol=1e-6)
    probs = P_PROB.astype("float32")
    ids = np.array([0, 2, 1, 2])
    np.testing.assert_allclose(np.asarray(losses.categorical_generalized_cross_entropy(ids, probs, q=0.3)),
                               np.asarray(keras.losses.categorical_generalized_cross_entropy(ids, probs, q=0.3)),
                               rtol=1e-6)
    x = rng.standard_normal((2, 3, 4)).astype("float32")
    onehot = np.eye(3, dtype="float32")[rng.integers(0, 3, (2, 4))].transpose(0, 2, 1)
    for fn, kwargs in ((losses.categorical_crossentropy, {"from_logits": True, "axis": 1, "label_smoothing": 0.1}),
                       (losses.binary_crossentropy, {"from_logits": True, "axis": 1, "label_smoothing": 0.2}),
                       (losses.binary_focal_crossentropy, {"from_logits": True, "gamma": 1.0, "axis": 1})):
        np.testing.assert_allclose(np.asarray(fn(onehot, x, **kwargs)),
                                   np.asarray(getattr(keras.losses, fn.__name__)(onehot, x, **kwargs)), rtol=1e-5)
    sparse = np.array([0, 2, -1, 1])
    for reduction in ("sum_over_batch_size", "sum", "none"):
        mine = losses.SparseCategoricalCrossentropy(ignore_class=-1, reduction=reduction)(sparse, probs)
        theirs = keras.losses.SparseCategoricalCrossentropy(ignore_class=-1, reduction=reduction)(sparse, probs)
        np.testing.assert_allclose(np.asarray(mine), np.asarray(theirs), rtol=1e-6)
