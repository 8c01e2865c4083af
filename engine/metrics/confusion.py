"""Metrics from confusion-matrix counts at thresholds: TP/FP/TN/FN, precision, recall, AUC and
the sensitivity/specificity/precision/recall-at-a-constraint family."""
import numpy as np

from engine import config
from engine.metrics.base import Metric, as_array, divide_no_nan, match_ranks
from engine.saving.registry import register_builtins

NEG_INF = -1e10   # the score top_k filtering gives the classes it drops (Keras's value)
_KINDS = ("tp", "fp", "tn", "fn")


def _threshold_list(thresholds, default):
    if thresholds is None:
        return [default]
    values = [thresholds] if np.ndim(thresholds) == 0 else list(thresholds)
    bad = [t for t in values if t is None or t < 0 or t > 1]
    if bad:
        raise ValueError(f"Threshold values must be in [0, 1], got {bad}")
    return [float(t) for t in values]


def evenly_spaced(thresholds):
    """Whether the thresholds are i / (n - 1) for i = 0..n-1 (n >= 3): counts then come from
    one pass of bucketing instead of a comparison per threshold."""
    n = len(thresholds)
    if n < 3:
        return False
    return bool(np.allclose(thresholds, np.arange(n, dtype=np.float32) / (n - 1), atol=config.epsilon()))


def _keep_top_k(scores, k):
    """Scores outside each row's k largest become NEG_INF."""
    order = np.argsort(-scores, axis=-1, kind="stable")[..., :k]
    keep = np.zeros(scores.shape, dtype=bool)
    np.put_along_axis(keep, order, True, axis=-1)
    return np.where(keep, scores, NEG_INF).astype(scores.dtype)


def update_confusion_counts(counts, y_true, y_pred, thresholds, top_k=None, class_id=None, sample_weight=None,
                            multi_label=False, label_weights=None, evenly=False):
    """Add one batch's weighted true/false positive/negative counts at each threshold.

    A prediction is positive at threshold t when it is > t; a label is positive when nonzero.

    Args:
        counts: {"tp"|"fp"|"tn"|"fn": Variable of shape (thresholds,) or (thresholds, labels)}.
        y_true, y_pred: labels and scores (ranks matched as Keras matches them).
        thresholds: the thresholds (a list).
        top_k: only each row's k highest scores can be positive.
        class_id: only this column is counted.
        sample_weight: optional weights broadcastable to y_pred.
        multi_label: keep one count per label column (else all entries are pooled).
        label_weights: optional weights per label column (pooled counts only).
        evenly: the thresholds are evenly spaced in [0, 1] (optionally widened by epsilon at the
            ends): count by bucketing, as Keras does then.
    """
    dtype = next(iter(counts.values())).dtype
    y_true = as_array(y_true).astype(dtype)
    y_pred = as_array(y_pred).astype(dtype)
    y_pred, y_true = match_ranks(y_pred, y_true)
    if sample_weight is not None:
        sample_weight = as_array(sample_weight).astype(dtype)[..., None]
        _, sample_weight = match_ranks(y_true, sample_weight, expand_rank_1=False)
    if top_k is not None:
        y_pred = _keep_top_k(y_pred, top_k)
    if class_id is not None:
        if y_pred.ndim == 1:
            raise ValueError(f"class_id needs y_pred of shape (num_samples, num_classes), got {y_pred.shape}")
        y_true, y_pred = y_true[..., class_id, None], y_pred[..., class_id, None]
    weights = np.ones(y_pred.shape, dtype=np.float64) if sample_weight is None else \
        np.broadcast_to(sample_weight, y_pred.shape).astype(np.float64)
    if label_weights is not None and not multi_label:
        weights = weights * np.broadcast_to(np.asarray(label_weights, dtype=np.float64), y_pred.shape)
    positive = y_true.astype(bool)
    if multi_label:
        preds = y_pred.reshape(-1, y_pred.shape[-1]) if y_pred.ndim > 1 else y_pred[:, None]
        positive = positive.reshape(preds.shape)
        weights = weights.reshape(preds.shape)
    else:
        preds, positive, weights = y_pred.reshape(-1, 1), positive.reshape(-1, 1), weights.reshape(-1, 1)
    thresholds = np.asarray(thresholds, dtype=dtype)
    true_w = np.where(positive, weights, 0.0)
    false_w = np.where(positive, 0.0, weights)
    if evenly:
        tp, fp = _bucketed_counts(preds, true_w, false_w, thresholds)
    else:
        above = preds[None, :, :] > thresholds[:, None, None]      # (thresholds, entries, labels)
        tp = np.sum(np.where(above, true_w[None], 0.0), axis=1)
        fp = np.sum(np.where(above, false_w[None], 0.0), axis=1)
    found = {"tp": tp, "fp": fp}
    if "tn" in counts:
        found["tn"] = false_w.sum(axis=0)[None, :] - fp
    if "fn" in counts:
        found["fn"] = true_w.sum(axis=0)[None, :] - tp
    for kind, var in counts.items():
        value = found[kind]
        var.assign_add(value.reshape(var.shape) if multi_label else value[:, 0])


def _bucketed_counts(preds, true_w, false_w, thresholds):
    """tp and fp at evenly spaced thresholds: each score lands in the bucket of the highest
    threshold below it, and counts are summed from the top bucket down."""
    n = len(thresholds)
    widened = bool(thresholds[0] < 0.0 or thresholds[-1] > 1.0)
    preds = np.clip(preds, 0.0, 1.0)
    bucket = np.ceil(preds * (n - 1)) - 1
    if widened:
        bucket = np.maximum(bucket, 0)
    bucket = bucket.astype(np.int64)
    tp = np.zeros((n, preds.shape[1]))
    fp = np.zeros((n, preds.shape[1]))
    for j in range(preds.shape[1]):
        keep = bucket[:, j] >= 0          # (a score of exactly 0 is above no threshold)
        tp[:, j] = np.bincount(bucket[keep, j], weights=true_w[keep, j], minlength=n)[:n]
        fp[:, j] = np.bincount(bucket[keep, j], weights=false_w[keep, j], minlength=n)[:n]
    return np.cumsum(tp[::-1], axis=0)[::-1], np.cumsum(fp[::-1], axis=0)[::-1]


class _ConfusionCount(Metric):
    _kind = None

    def __init__(self, thresholds=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.thresholds = _threshold_list(thresholds, 0.5)
        self._evenly = evenly_spaced(self.thresholds)
        self.accumulator = self.add_variable((len(self.thresholds),), name="accumulator")

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add one batch's weighted count.

        Args:
            y_true: labels (nonzero is positive).
            y_pred: scores in [0, 1].
            sample_weight: optional weights.
        """
        update_confusion_counts({self._kind: self.accumulator}, y_true, y_pred, self.thresholds,
                                sample_weight=sample_weight, evenly=self._evenly)

    def result(self):
        value = self.accumulator._value
        return self._tensor(value[0] if len(self.thresholds) == 1 else value)

    def get_config(self):
        return {**super().get_config(), "thresholds": self.init_thresholds}


class TruePositives(_ConfusionCount):
    """Weighted count of true positives at each threshold.

    Args:
        thresholds: a float or list of floats in [0, 1] (default 0.5); one count per threshold.
        name, dtype: as for every metric.
    """
    _kind = "tp"


class FalsePositives(_ConfusionCount):
    """Weighted count of false positives at each threshold (arguments as `TruePositives`)."""
    _kind = "fp"


class TrueNegatives(_ConfusionCount):
    """Weighted count of true negatives at each threshold (arguments as `TruePositives`)."""
    _kind = "tn"


class FalseNegatives(_ConfusionCount):
    """Weighted count of false negatives at each threshold (arguments as `TruePositives`)."""
    _kind = "fn"


class _PrecisionRecall(Metric):
    _other = None      # "fp" for precision, "fn" for recall
    _other_name = None

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds, self.top_k, self.class_id = thresholds, top_k, class_id
        self.thresholds = _threshold_list(thresholds, 0.5 if top_k is None else NEG_INF)
        self._evenly = evenly_spaced(self.thresholds)
        self.true_positives = self.add_variable((len(self.thresholds),), name="true_positives")
        setattr(self, self._other_name, self.add_variable((len(self.thresholds),), name=self._other_name))

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add one batch.

        Args:
            y_true: labels (nonzero is positive).
            y_pred: scores in [0, 1].
            sample_weight: optional weights.
        """
        update_confusion_counts({"tp": self.true_positives, self._other: getattr(self, self._other_name)},
                                y_true, y_pred, self.thresholds, top_k=self.top_k, class_id=self.class_id,
                                sample_weight=sample_weight, evenly=self._evenly)

    def result(self):
        tp = self.true_positives._value
        value = divide_no_nan(tp, tp + getattr(self, self._other_name)._value)
        return self._tensor(value[0] if len(self.thresholds) == 1 else value)

    def get_config(self):
        return {**super().get_config(), "thresholds": self.init_thresholds, "top_k": self.top_k,
                "class_id": self.class_id}


class Precision(_PrecisionRecall):
    """Precision TP / (TP + FP) at each threshold.

    Args:
        thresholds: a float or list of floats in [0, 1] (default 0.5, or "any score in the top k"
            with top_k).
        top_k: only each row's k highest scores count as positive.
        class_id: compute it for this class column only.
        name, dtype: as for every metric.
    """
    _other, _other_name = "fp", "false_positives"


class Recall(_PrecisionRecall):
    """Recall TP / (TP + FN) at each threshold (arguments as `Precision`)."""
    _other, _other_name = "fn", "false_negatives"


class _AtConstraint(Metric):
    """The best value of one rate among thresholds where another rate meets a constraint."""

    _value_name = None

    def __init__(self, value, num_thresholds=200, class_id=None, name=None, dtype=None):
        if value < 0 or value > 1:
            raise ValueError(f"{type(self).__name__}: {self._value_name} must be in [0, 1], got {value}")
        if num_thresholds <= 0:
            raise ValueError(f"{type(self).__name__}: num_thresholds must be > 0, got {num_thresholds}")
        super().__init__(name=name, dtype=dtype)
        setattr(self, self._value_name, value)
        self.value, self.num_thresholds, self.class_id = value, num_thresholds, class_id
        if num_thresholds == 1:
            self.thresholds, self._evenly = [0.5], False
        else:
            inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self.thresholds, self._evenly = [0.0] + inner + [1.0], True
        n = len(self.thresholds)
        self.true_positives = self.add_variable((n,), name="true_positives")
        self.false_positives = self.add_variable((n,), name="false_positives")
        self.true_negatives = self.add_variable((n,), name="true_negatives")
        self.false_negatives = self.add_variable((n,), name="false_negatives")

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add one batch (arguments as `Precision.update_state`)."""
        update_confusion_counts({"tp": self.true_positives, "tn": self.true_negatives, "fp": self.false_positives,
                                 "fn": self.false_negatives}, y_true, y_pred, self.thresholds,
                                class_id=self.class_id, sample_weight=sample_weight, evenly=self._evenly)

    def _rates(self):
        tp, fp = self.true_positives._value, self.false_positives._value
        tn, fn = self.true_negatives._value, self.false_negatives._value
        return {"sensitivity": divide_no_nan(tp, tp + fn), "recall": divide_no_nan(tp, tp + fn),
                "specificity": divide_no_nan(tn, tn + fp), "precision": divide_no_nan(tp, tp + fp)}

    def _best(self, constrained, dependent):
        rates = self._rates()
        feasible = rates[constrained] >= self.value
        return self._tensor(np.max(np.where(feasible, rates[dependent], 0), initial=0))

    def get_config(self):
        return {**super().get_config(), "class_id": self.class_id, "num_thresholds": self.num_thresholds,
                self._value_name: self.value}


class SensitivityAtSpecificity(_AtConstraint):
    """The best sensitivity (recall) among thresholds whose specificity is >= `specificity`.

    Args:
        specificity: the required specificity, in [0, 1].
        num_thresholds: how many evenly spaced thresholds are tried.
        class_id: compute it for this class column only.
        name, dtype: as for every metric.
    """
    _value_name = "specificity"

    def __init__(self, specificity, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(specificity, num_thresholds, class_id, name, dtype)

    def result(self):
        return self._best("specificity", "sensitivity")


class SpecificityAtSensitivity(_AtConstraint):
    """The best specificity among thresholds whose sensitivity is >= `sensitivity` (arguments as
    `SensitivityAtSpecificity`, with sensitivity the required value)."""
    _value_name = "sensitivity"

    def __init__(self, sensitivity, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(sensitivity, num_thresholds, class_id, name, dtype)

    def result(self):
        return self._best("sensitivity", "specificity")


class PrecisionAtRecall(_AtConstraint):
    """The best precision among thresholds whose recall is >= `recall` (arguments as
    `SensitivityAtSpecificity`, with recall the required value)."""
    _value_name = "recall"

    def __init__(self, recall, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(recall, num_thresholds, class_id, name, dtype)

    def result(self):
        return self._best("recall", "precision")


class RecallAtPrecision(_AtConstraint):
    """The best recall among thresholds whose precision is >= `precision` (arguments as
    `SensitivityAtSpecificity`, with precision the required value)."""
    _value_name = "precision"

    def __init__(self, precision, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(precision, num_thresholds, class_id, name, dtype)

    def result(self):
        return self._best("precision", "recall")


_CURVES = {"roc": "ROC", "pr": "PR", "prgain": "PRGAIN"}
_SUMMATIONS = ("interpolation", "majoring", "minoring")


class AUC(Metric):
    """Area under the ROC or precision-recall curve, from counts at many thresholds.

    Args:
        num_thresholds: how many thresholds (evenly spaced in [0, 1]) when `thresholds` is None.
        curve: "ROC", "PR" or "PRGAIN".
        summation_method: "interpolation" (trapezoids; for PR, Davis & Goadrich's interpolation),
            "majoring" or "minoring" (upper / lower Riemann sums).
        name, dtype: as for every metric.
        thresholds: explicit thresholds in [0, 1] (then num_thresholds is their count + 2).
        multi_label: one curve per label column, averaged (else all entries pooled).
        num_labels: the number of label columns (multi_label only; else found on the first batch).
        label_weights: weights of the label columns in the average (or in the pooled counts).
        from_logits: apply a sigmoid to predictions first.
    """

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation", name=None, dtype=None,
                 thresholds=None, multi_label=False, num_labels=None, label_weights=None, from_logits=False):
        curve_key = str(curve).lower()
        if curve_key not in _CURVES:
            raise ValueError(f"AUC: invalid curve={curve!r}; expected 'ROC', 'PR' or 'PRGAIN'")
        if str(summation_method).lower() not in _SUMMATIONS:
            raise ValueError(f"AUC: invalid summation_method={summation_method!r}; expected one of {_SUMMATIONS}")
        super().__init__(name=name, dtype=dtype)
        self._init_from_thresholds = thresholds is not None
        eps = config.epsilon()
        if thresholds is not None:
            inner = sorted(float(t) for t in thresholds)
            self.num_thresholds = len(inner) + 2
            self._evenly = evenly_spaced(np.array([0.0] + inner + [1.0]))
        else:
            if num_thresholds <= 1:
                raise ValueError(f"AUC: num_thresholds must be > 1, got {num_thresholds}")
            self.num_thresholds = num_thresholds
            inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self._evenly = True
        self._thresholds = np.array([0.0 - eps] + inner + [1.0 + eps])
        self.curve = _CURVES[curve_key]
        self.summation_method = str(summation_method).lower()
        self.multi_label, self.num_labels = multi_label, num_labels
        self.label_weights = None if label_weights is None else np.asarray(label_weights, dtype=self.dtype)
        self._from_logits = from_logits
        self._built = False
        if multi_label:
            if num_labels:
                self._build((None, num_labels))
        else:
            if num_labels:
                raise ValueError("AUC: num_labels is only used with multi_label=True")
            self._build(None)

    @property
    def thresholds(self):
        """The thresholds, including the two just outside [0, 1]."""
        return list(self._thresholds)

    def _build(self, shape):
        if self.multi_label:
            if len(shape) != 2:
                raise ValueError(f"AUC: with multi_label=True, y_pred must have rank 2, got shape {shape}")
            self._num_labels = shape[1]
            var_shape = (self.num_thresholds, self._num_labels)
        else:
            var_shape = (self.num_thresholds,)
        self.true_positives = self.add_variable(var_shape, name="true_positives")
        self.false_positives = self.add_variable(var_shape, name="false_positives")
        self.true_negatives = self.add_variable(var_shape, name="true_negatives")
        self.false_negatives = self.add_variable(var_shape, name="false_negatives")
        self._built = True

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add one batch.

        Args:
            y_true: labels (nonzero is positive).
            y_pred: scores in [0, 1] (logits with from_logits=True).
            sample_weight: optional weights.
        """
        y_pred = as_array(y_pred)
        if not self._built:
            self._build(y_pred.shape)
        if self._from_logits:
            y_pred = 1.0 / (1.0 + np.exp(-y_pred.astype(np.float64)))
        update_confusion_counts({"tp": self.true_positives, "tn": self.true_negatives, "fp": self.false_positives,
                                 "fn": self.false_negatives}, y_true, y_pred, self._thresholds,
                                sample_weight=sample_weight, multi_label=self.multi_label,
                                label_weights=None if self.multi_label else self.label_weights,
                                evenly=self._evenly)

    def _average(self, per_threshold):
        if not self.multi_label:
            return np.sum(per_threshold)
        by_label = np.sum(per_threshold, axis=0)
        if self.label_weights is None:
            return np.mean(by_label)
        return divide_no_nan(np.sum(by_label * self.label_weights), np.sum(self.label_weights))

    def _interpolated_pr(self, tp, fp, fn):
        # Precision is interpolated linearly in the number of predicted positives between
        # thresholds (Davis & Goadrich 2006), which integrates to a log term.
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = divide_no_nan(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        ratio = np.where((p[:-1] > 0) & (p[1:] > 0), divide_no_nan(p[:-1], np.maximum(p[1:], 0)), 1.0)
        return divide_no_nan(slope * (dtp + intercept * np.log(ratio)), np.maximum(tp[1:] + fn[1:], 0))

    def result(self):
        if not self._built:
            return self._tensor(0.0)
        tp, fp = self.true_positives._value.astype(np.float64), self.false_positives._value.astype(np.float64)
        tn, fn = self.true_negatives._value.astype(np.float64), self.false_negatives._value.astype(np.float64)
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._tensor(self._average(self._interpolated_pr(tp, fp, fn)))
        recall = divide_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = divide_no_nan(fp, fp + tn), recall
        elif self.curve == "PR":
            x, y = recall, divide_no_nan(tp, tp + fp)
        else:
            scale = divide_no_nan(tp + fn, tn + fp)
            recall_gain = np.where(tp == 0, 0.0, 1.0 - scale * divide_no_nan(fn, tp))
            precision_gain = np.where(tp == 0, 1.0, 1.0 - scale * divide_no_nan(fp, tp))
            x, y = np.maximum(recall_gain, 0.0), precision_gain
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:-1], y[1:])
        else:
            heights = np.maximum(y[:-1], y[1:])
        return self._tensor(self._average((x[:-1] - x[1:]) * heights))

    def reset_state(self):
        if self._built:
            super().reset_state()

    def get_config(self):
        config = {**super().get_config(), "num_thresholds": self.num_thresholds, "curve": self.curve,
                  "summation_method": self.summation_method, "multi_label": self.multi_label,
                  "num_labels": self.num_labels,
                  "label_weights": None if self.label_weights is None else self.label_weights.tolist(),
                  "from_logits": self._from_logits}
        if self._init_from_thresholds:
            config["thresholds"] = self.thresholds[1:-1]
        return config


register_builtins("metrics", globals())  # loadable from .keras configs by class name
