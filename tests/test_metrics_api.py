"""Keras 3's metrics: state over several batches with sample weights against float64 references
written out here, reset_state, result() as an engine Tensor, configs, and Keras's own numbers
where Keras is installed."""
import json
import os

import numpy as np
import pytest

from engine import metrics, ops
from engine.saving import deserialize_keras_object, serialize_keras_object
from engine.tensor import Tensor

rng = np.random.default_rng(0)
BATCHES = 3
Y_BIN = [(rng.uniform(size=(8, 1)) > 0.5).astype("float32") for _ in range(BATCHES)]
P_BIN = [rng.uniform(size=(8, 1)).astype("float32") for _ in range(BATCHES)]
SW = [rng.uniform(0, 2, size=(8,)).astype("float32") for _ in range(BATCHES)]
Y_CLS = [np.eye(4, dtype="float32")[rng.integers(0, 4, 8)] for _ in range(BATCHES)]
P_CLS = [rng.dirichlet(np.ones(4), 8).astype("float32") for _ in range(BATCHES)]
Y_REG = [rng.standard_normal((8, 3)).astype("float32") for _ in range(BATCHES)]
P_REG = [rng.standard_normal((8, 3)).astype("float32") for _ in range(BATCHES)]


def run(metric, ys, ps, sws=None):
    metric.reset_state()
    for i, (y, p) in enumerate(zip(ys, ps)):
        metric.update_state(y, p, sample_weight=None if sws is None else sws[i])
    return np.asarray(metric.result())


def cat(xs):
    return np.concatenate(xs).astype(np.float64)


def counts(y, p, w, t):
    """Weighted tp, fp, tn, fn at threshold t, by a plain loop."""
    out = np.zeros(4)
    for yi, pi, wi in zip(y.ravel(), p.ravel(), w.ravel()):
        pos, lab = pi > t, yi != 0
        out[0 if pos and lab else 1 if pos else 3 if lab else 2] += wi
    return out


def test_result_is_a_tensor_and_update_state_takes_tensors_arrays_and_numbers():
    m = metrics.Mean()
    m.update_state(ops.convert_to_tensor(np.array([1.0, 2.0])))
    m.update_state(np.array([3.0]))
    m.update_state(4.0, sample_weight=2)
    assert isinstance(m.result(), Tensor)
    assert float(m.result()) == pytest.approx((1 + 2 + 3 + 8) / 5)
    assert [v.name for v in m.variables] == ["total", "count"]
    m.reset_state()
    assert float(m.result()) == 0.0
    p = metrics.Precision()
    p.update_state(ops.convert_to_tensor(Y_BIN[0]), ops.convert_to_tensor(P_BIN[0]))
    assert isinstance(p.result(), Tensor) and p.result().numpy().shape == ()


def test_mean_sum_and_wrapper_weigh_samples_across_batches():
    values = [rng.standard_normal((8, 2)) for _ in range(BATCHES)]
    per_sample = cat([v.mean(-1) for v in values])
    w = cat(SW)
    mean, total = metrics.Mean(), metrics.Sum()
    for v, s in zip(values, SW):
        mean.update_state(v, sample_weight=s)
        total.update_state(v, sample_weight=s)
    assert float(mean.result()) == pytest.approx(np.sum(per_sample * w) / w.sum(), rel=1e-5)
    assert float(total.result()) == pytest.approx(np.sum(cat([v.sum(-1) for v in values]) * w), rel=1e-5)
    mae = metrics.MeanMetricWrapper(metrics.mean_absolute_error)
    got = run(mae, Y_REG, P_REG, SW)
    ref = np.abs(cat(Y_REG) - cat(P_REG)).mean(-1)
    assert got == pytest.approx(np.sum(ref * w) / w.sum(), rel=1e-5)


def test_confusion_counts_precision_recall_with_thresholds():
    y, p, w = cat(Y_BIN), cat(P_BIN), cat(SW)
    thresholds = [0.2, 0.5, 0.8]
    expected = np.array([counts(y, p, w, t) for t in thresholds])  # (thresholds, 4)
    for cls, col in ((metrics.TruePositives, 0), (metrics.FalsePositives, 1), (metrics.TrueNegatives, 2),
                     (metrics.FalseNegatives, 3)):
        np.testing.assert_allclose(run(cls(thresholds=thresholds), Y_BIN, P_BIN, SW), expected[:, col], rtol=1e-5)
    tp, fp, tn, fn = expected.T
    np.testing.assert_allclose(run(metrics.Precision(thresholds=thresholds), Y_BIN, P_BIN, SW), tp / (tp + fp), rtol=1e-5)
    np.testing.assert_allclose(run(metrics.Recall(thresholds=thresholds), Y_BIN, P_BIN, SW), tp / (tp + fn), rtol=1e-5)
    tp5, fp5, _, fn5 = counts(y, p, np.ones_like(y), 0.5)
    assert float(run(metrics.Precision(), Y_BIN, P_BIN)) == pytest.approx(tp5 / (tp5 + fp5), rel=1e-6)


def test_precision_recall_top_k_and_class_id():
    y, p = cat(Y_CLS), cat(P_CLS)
    top2 = np.argsort(-p, axis=1)[:, :2]
    predicted = np.zeros_like(p, dtype=bool)
    np.put_along_axis(predicted, top2, True, axis=1)
    tp = np.sum(predicted & (y > 0))
    assert float(run(metrics.Precision(top_k=2), Y_CLS, P_CLS)) == pytest.approx(tp / predicted.sum(), rel=1e-6)
    assert float(run(metrics.Recall(top_k=2), Y_CLS, P_CLS)) == pytest.approx(tp / (y > 0).sum(), rel=1e-6)
    pos, lab = p[:, 2] > 0.5, y[:, 2] > 0
    got = float(run(metrics.Precision(class_id=2), Y_CLS, P_CLS))
    assert got == pytest.approx((pos & lab).sum() / max(pos.sum(), 1), rel=1e-6)


def roc_auc_reference(y, p, w, n=200):
    eps = 1e-7
    thresholds = [0 - eps] + [(i + 1) / (n - 1) for i in range(n - 2)] + [1 + eps]
    c = np.array([counts(y, p, w, t) for t in thresholds])
    tpr = c[:, 0] / np.maximum(c[:, 0] + c[:, 3], 1e-300)
    fpr = c[:, 1] / np.maximum(c[:, 1] + c[:, 2], 1e-300)
    return np.sum((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2), c


def test_auc_roc_and_pr_against_trapezoids():
    y, p, w = cat(Y_BIN), cat(P_BIN), cat(SW)
    ref, c = roc_auc_reference(y, p, w)
    assert float(run(metrics.AUC(), Y_BIN, P_BIN, SW)) == pytest.approx(ref, rel=1e-5)
    precision = np.where(c[:, 0] + c[:, 1] > 0, c[:, 0] / np.maximum(c[:, 0] + c[:, 1], 1e-300), 0)
    recall = c[:, 0] / (c[:, 0] + c[:, 3])
    pr_minoring = np.sum((recall[:-1] - recall[1:]) * np.minimum(precision[:-1], precision[1:]))
    got = float(run(metrics.AUC(curve="PR", summation_method="minoring"), Y_BIN, P_BIN, SW))
    assert got == pytest.approx(pr_minoring, rel=1e-5)
    # Explicit thresholds that are not evenly spaced take the comparison path.
    explicit = metrics.AUC(thresholds=[0.1, 0.35, 0.5, 0.9])
    assert 0.0 <= float(run(explicit, Y_BIN, P_BIN)) <= 1.0
    multi = metrics.AUC(multi_label=True)
    y2, p2 = cat(Y_CLS), cat(P_CLS)
    per_label = [roc_auc_reference(y2[:, j], p2[:, j], np.ones(len(y2)))[0] for j in range(4)]
    assert float(run(multi, Y_CLS, P_CLS)) == pytest.approx(np.mean(per_label), rel=1e-5)


def test_f1_and_fbeta_scores():
    y, p = cat(Y_CLS), cat(P_CLS)
    predicted = (p >= p.max(1, keepdims=True)).astype(float)
    tp, fp, fn = (predicted * y).sum(0), (predicted * (1 - y)).sum(0), ((1 - predicted) * y).sum(0)
    eps = 1e-7
    prec, rec = tp / (tp + fp + eps), tp / (tp + fn + eps)
    for beta, cls in ((1.0, lambda **k: metrics.F1Score(**k)), (2.0, lambda **k: metrics.FBetaScore(beta=2.0, **k))):
        score = (1 + beta ** 2) * prec * rec / (beta ** 2 * prec + rec + eps)
        np.testing.assert_allclose(run(cls(), Y_CLS, P_CLS), score, rtol=1e-5)
        assert float(run(cls(average="macro"), Y_CLS, P_CLS)) == pytest.approx(score.mean(), rel=1e-5)
        weights = y.sum(0) / (y.sum() + eps)
        assert float(run(cls(average="weighted"), Y_CLS, P_CLS)) == pytest.approx(np.sum(score * weights), rel=1e-5)


def test_r2_rmse_and_regression_means():
    y, p, w = cat(Y_REG), cat(P_REG), cat(SW)
    ss_res = ((y - p) ** 2).sum(0)
    ss_tot = ((y - y.mean(0)) ** 2).sum(0)
    assert float(run(metrics.R2Score(), Y_REG, P_REG)) == pytest.approx(np.mean(1 - ss_res / ss_tot), rel=1e-4)
    np.testing.assert_allclose(run(metrics.R2Score(class_aggregation=None), Y_REG, P_REG), 1 - ss_res / ss_tot, rtol=1e-4)
    rmse = np.sqrt(np.sum(((y - p) ** 2).mean(-1) * w) / w.sum())
    assert float(run(metrics.RootMeanSquaredError(), Y_REG, P_REG, SW)) == pytest.approx(rmse, rel=1e-5)
    cos = np.sum(y * p, -1) / np.linalg.norm(y, axis=-1) / np.linalg.norm(p, axis=-1)
    assert float(run(metrics.CosineSimilarity(), Y_REG, P_REG)) == pytest.approx(cos.mean(), rel=1e-5)
    logcosh = np.log(np.cosh(p - y)).mean(-1)
    assert float(run(metrics.LogCoshError(), Y_REG, P_REG, SW)) == pytest.approx(np.sum(logcosh * w) / w.sum(), rel=1e-5)


def test_iou_family():
    labels = [rng.integers(0, 3, 10) for _ in range(BATCHES)]
    preds = [rng.integers(0, 3, 10) for _ in range(BATCHES)]
    cm = np.zeros((3, 3))
    for t, q in zip(np.concatenate(labels), np.concatenate(preds)):
        cm[t, q] += 1
    iou = np.diag(cm) / (cm.sum(0) + cm.sum(1) - np.diag(cm))
    assert float(run(metrics.MeanIoU(3), labels, preds)) == pytest.approx(iou.mean(), rel=1e-5)
    assert float(run(metrics.IoU(3, [0, 2]), labels, preds)) == pytest.approx(iou[[0, 2]].mean(), rel=1e-5)
    onehot = [np.eye(3)[t] for t in labels]
    scores = [np.eye(3)[q] * 0.8 + 0.05 for q in preds]
    assert float(run(metrics.OneHotMeanIoU(3), onehot, scores)) == pytest.approx(iou.mean(), rel=1e-5)
    binary = metrics.BinaryIoU(target_class_ids=[1], threshold=0.5)
    yb, pb = cat(Y_BIN).ravel(), cat(P_BIN).ravel() >= 0.5
    inter = np.sum((yb == 1) & pb)
    assert float(run(binary, Y_BIN, P_BIN)) == pytest.approx(inter / np.sum((yb == 1) | pb), rel=1e-5)


def test_top_k_accuracies():
    y, p = cat(Y_CLS), cat(P_CLS)
    labels = y.argmax(1)
    rank = (p > p[np.arange(len(p)), labels][:, None]).sum(1)
    assert float(run(metrics.TopKCategoricalAccuracy(k=2), Y_CLS, P_CLS)) == pytest.approx(np.mean(rank < 2))
    sparse = [c.argmax(1) for c in Y_CLS]
    assert float(run(metrics.SparseTopKCategoricalAccuracy(k=2), sparse, P_CLS)) == pytest.approx(np.mean(rank < 2))
    ids = [np.argsort(-q, axis=1) for q in P_CLS]
    assert float(run(metrics.SparseTopKCategoricalAccuracy(k=2, from_sorted_ids=True), sparse, ids)) == \
        pytest.approx(np.mean(rank < 2))


def test_at_constraint_metrics_are_in_range_and_ordered():
    hi = float(run(metrics.SensitivityAtSpecificity(0.1), Y_BIN, P_BIN))
    lo = float(run(metrics.SensitivityAtSpecificity(0.9), Y_BIN, P_BIN))
    assert 0.0 <= lo <= hi <= 1.0
    for m in (metrics.SpecificityAtSensitivity(0.5), metrics.PrecisionAtRecall(0.5), metrics.RecallAtPrecision(0.5)):
        assert 0.0 <= float(run(m, Y_BIN, P_BIN, SW)) <= 1.0


METRIC_OBJECTS = [
    metrics.Sum(), metrics.Mean(name="m"), metrics.AUC(curve="PR", num_thresholds=50),
    metrics.AUC(thresholds=[0.2, 0.6], multi_label=True, num_labels=3, label_weights=[1.0, 2.0, 1.0]),
    metrics.Precision(thresholds=[0.3, 0.6], top_k=2), metrics.Recall(class_id=1), metrics.TruePositives(0.3),
    metrics.FalsePositives(), metrics.TrueNegatives(), metrics.FalseNegatives([0.1, 0.9]),
    metrics.F1Score(average="macro", threshold=0.4), metrics.FBetaScore(beta=2.0), metrics.R2Score(num_regressors=1),
    metrics.MeanIoU(4, ignore_class=0), metrics.IoU(3, [1]), metrics.BinaryIoU([1], 0.3), metrics.OneHotIoU(3, [0, 2]),
    metrics.OneHotMeanIoU(3), metrics.TopKCategoricalAccuracy(k=3), metrics.SparseTopKCategoricalAccuracy(k=2),
    metrics.MeanAbsolutePercentageError(), metrics.MeanSquaredLogarithmicError(), metrics.CosineSimilarity(),
    metrics.LogCoshError(), metrics.RootMeanSquaredError(), metrics.KLDivergence(), metrics.Poisson(),
    metrics.Hinge(), metrics.SquaredHinge(), metrics.CategoricalHinge(),
    metrics.BinaryCrossentropy(from_logits=True, label_smoothing=0.1), metrics.CategoricalCrossentropy(axis=-1),
    metrics.SparseCategoricalCrossentropy(ignore_class=2), metrics.PearsonCorrelation(),
    metrics.ConcordanceCorrelation(), metrics.SensitivityAtSpecificity(0.4, num_thresholds=20),
    metrics.SpecificityAtSensitivity(0.4), metrics.PrecisionAtRecall(0.7, class_id=1), metrics.RecallAtPrecision(0.6),
    metrics.MeanMetricWrapper(metrics.huber, name="hub", delta=2.0),
]


@pytest.mark.parametrize("metric", METRIC_OBJECTS, ids=lambda m: type(m).__name__)
def test_metric_configs_round_trip(metric):
    clone = deserialize_keras_object(json.loads(json.dumps(serialize_keras_object(metric))))
    assert type(clone) is type(metric) and serialize_keras_object(clone) == serialize_keras_object(metric)


def test_get_names_metrics_as_compile_does():
    assert isinstance(metrics.get("auc"), metrics.AUC) and metrics.get("auc").name == "auc"
    assert isinstance(metrics.get("Precision"), metrics.Precision)
    m = metrics.get("top_k_categorical_accuracy")
    assert isinstance(m, metrics.MeanMetricWrapper) and m.name == "top_k_categorical_accuracy"
    assert isinstance(metrics.get({"class_name": "Recall", "config": {"thresholds": 0.3}}), metrics.Recall)
    with pytest.raises(ValueError, match="Unknown metric"):
        metrics.get("no_such_metric")


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    return pytest.importorskip("keras")


def test_configs_match_keras():
    keras = _keras()
    for m in METRIC_OBJECTS:
        name = type(m).__name__
        config = m.get_config()
        if name == "MeanMetricWrapper":
            continue
        theirs = getattr(keras.metrics, name).from_config(config).get_config()
        as_lists = lambda c: json.loads(json.dumps(c, default=lambda a: np.asarray(a).tolist()))  # noqa: E731
        assert as_lists(config) == as_lists(theirs), name


KERAS_VALUE_CASES = [
    ("AUC", {}, "bin"), ("AUC", {"curve": "PR"}, "bin"), ("AUC", {"curve": "PRGAIN"}, "bin"),
    ("AUC", {"summation_method": "majoring", "num_thresholds": 17}, "bin"),
    ("AUC", {"thresholds": [0.1, 0.4, 0.45, 0.9]}, "bin"), ("AUC", {"multi_label": True}, "cls"),
    ("AUC", {"label_weights": [1.0, 2.0, 0.5, 1.0]}, "cls"), ("AUC", {"from_logits": True}, "reg1"),
    ("Precision", {"thresholds": [0.2, 0.5, 0.8]}, "bin"), ("Recall", {}, "bin"),
    ("Precision", {"top_k": 2}, "cls"), ("Recall", {"class_id": 3}, "cls"), ("TruePositives", {}, "bin"),
    ("FalseNegatives", {"thresholds": [0.0, 0.3, 0.5, 1.0]}, "bin"),
    ("SensitivityAtSpecificity", {"specificity": 0.5}, "bin"), ("SpecificityAtSensitivity", {"sensitivity": 0.5}, "bin"),
    ("PrecisionAtRecall", {"recall": 0.4}, "bin"), ("RecallAtPrecision", {"precision": 0.4}, "bin"),
    ("F1Score", {}, "cls"), ("F1Score", {"average": "micro", "threshold": 0.3}, "cls"),
    ("FBetaScore", {"beta": 0.5, "average": "weighted"}, "cls"), ("R2Score", {}, "reg"),
    ("R2Score", {"class_aggregation": "variance_weighted_average", "num_regressors": 2}, "reg"),
    ("TopKCategoricalAccuracy", {"k": 2}, "cls"), ("CategoricalAccuracy", {}, "cls"), ("BinaryAccuracy", {}, "bin"),
    ("MeanAbsolutePercentageError", {}, "reg"), ("MeanSquaredLogarithmicError", {}, "reg"),
    ("CosineSimilarity", {}, "reg"), ("LogCoshError", {}, "reg"), ("RootMeanSquaredError", {}, "reg"),
    ("KLDivergence", {}, "cls"), ("Poisson", {}, "cls"), ("Hinge", {}, "bin"), ("SquaredHinge", {}, "bin"),
    ("CategoricalHinge", {}, "cls"), ("BinaryCrossentropy", {}, "bin"), ("CategoricalCrossentropy", {}, "cls"),
    ("PearsonCorrelation", {}, "reg"), ("ConcordanceCorrelation", {}, "reg"),
]


@pytest.mark.parametrize("name,kwargs,data", KERAS_VALUE_CASES, ids=lambda v: str(v)[:40])
def test_values_over_weighted_batches_match_keras(name, kwargs, data):
    keras = _keras()
    ys, ps = {"bin": (Y_BIN, P_BIN), "cls": (Y_CLS, P_CLS), "reg": (Y_REG, P_REG),
              "reg1": (Y_BIN, [q[:, :1] for q in P_REG])}[data]
    mine, theirs = getattr(metrics, name)(**kwargs), getattr(keras.metrics, name)(**kwargs)
    for y, p, w in zip(ys, ps, SW):
        mine.update_state(y, p, sample_weight=w)
        theirs.update_state(y, p, sample_weight=w)
    np.testing.assert_allclose(np.asarray(mine.result()), np.asarray(theirs.result()), rtol=2e-5, atol=1e-6)
    mine.reset_state()
    theirs.reset_state()
    mine.update_state(ys[0], ps[0])
    theirs.update_state(ys[0], ps[0])
    np.testing.assert_allclose(np.asarray(mine.result()), np.asarray(theirs.result()), rtol=2e-5, atol=1e-6)


def test_iou_values_match_keras():
    keras = _keras()
    labels = [rng.integers(0, 3, (4, 5)) for _ in range(BATCHES)]
    preds = [rng.integers(0, 3, (4, 5)) for _ in range(BATCHES)]
    weights = [rng.integers(0, 3, (4, 5)) for _ in range(BATCHES)]
    for name, kwargs in (("MeanIoU", {"num_classes": 3}), ("IoU", {"num_classes": 3, "target_class_ids": [0, 1]}),
                         ("MeanIoU", {"num_classes": 3, "ignore_class": 1})):
        mine, theirs = getattr(metrics, name)(**kwargs), getattr(keras.metrics, name)(**kwargs)
        for y, p, w in zip(labels, preds, weights):
            mine.update_state(y, p, sample_weight=w)
            theirs.update_state(y, p, sample_weight=w)
        np.testing.assert_allclose(np.asarray(mine.result()), np.asarray(theirs.result()), rtol=1e-6)


def test_a_metric_written_as_keras_documents_it_runs_in_fit():
    import engine

    class BinaryTruePositives(metrics.Metric):
        def __init__(self, name="binary_true_positives", **kwargs):
            super().__init__(name=name, **kwargs)
            self.true_positives = self.add_variable(shape=(), initializer="zeros", name="true_positives")

        def update_state(self, y_true, y_pred, sample_weight=None):
            hits = ops.logical_and(ops.cast(y_true, "bool"), ops.greater(y_pred, 0.5))
            self.true_positives.assign(self.true_positives + ops.sum(ops.cast(hits, self.dtype)))

        def result(self):
            return self.true_positives

    m = BinaryTruePositives()
    m.update_state(np.array([1.0, 1.0, 0.0]), np.array([0.9, 0.2, 0.8]))
    assert float(m.result()) == 1.0 and [v.path for v in m.variables] == ["binary_true_positives/true_positives"]
    inp = engine.Input((2,))
    model = engine.Model(inp, engine.layers.Dense(1, activation="sigmoid")(inp))
    model.compile("sgd", "binary_crossentropy", metrics=[BinaryTruePositives(), "auc", "precision"])
    x = rng.standard_normal((16, 2)).astype("float32")
    logs = model.fit(x, (x[:, :1] > 0).astype("float32"), epochs=1, verbose=0).history
    assert {"binary_true_positives", "auc", "precision"} <= set(logs)


def test_a_mask_on_the_values_counts_with_sample_weights_as_in_keras():
    values = ops.convert_to_tensor(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype="float32"))
    values._keras_mask = np.array([[True, True, False], [True, False, False]])
    mean, total = metrics.Mean(), metrics.Sum()
    mean.update_state(values)
    total.update_state(values)
    assert (float(mean.result()), float(total.result())) == (3.5, 21.0)   # Keras ignores it without weights
    sw = np.array([[1.0, 2.0, 1.0], [2.0, 2.0, 2.0]])
    weights = sw * values._keras_mask
    mean.reset_state()
    total.reset_state()
    mean.update_state(values, sample_weight=sw)
    total.update_state(values, sample_weight=sw)
    per_sample = (values.numpy() * weights).mean(axis=1)
    assert float(mean.result()) == pytest.approx(per_sample.sum() / weights.mean(axis=1).sum())
    assert float(total.result()) == pytest.approx(np.sum(values.numpy() * weights))
