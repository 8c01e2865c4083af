"""Intersection-over-union metrics from a confusion matrix accumulated over batches."""

import numpy as np

from engine import config
from engine.metrics.base import Metric, as_array
from engine.saving.registry import register_builtins
from engine.utils.traceback_utils import warn_user


class _IoUBase(Metric):
    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None, sparse_y_true=True,
                 sparse_y_pred=True, axis=-1):
        super().__init__(name=name, dtype=dtype or "int32")
        self.num_classes, self.ignore_class = num_classes, ignore_class
        self.sparse_y_true, self.sparse_y_pred, self.axis = sparse_y_true, sparse_y_pred, axis
        self.total_cm = self.add_variable((num_classes, num_classes), name="total_confusion_matrix")

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add one batch to the confusion matrix.

        Args:
            y_true: class ids (or one-hot with sparse_y_true=False).
            y_pred: class ids (or scores with sparse_y_pred=False).
            sample_weight: optional weights (cast to the metric's dtype: integer by default).
        """
        y_true, y_pred = as_array(y_true), as_array(y_pred)
        if not self.sparse_y_true:
            y_true = np.argmax(y_true, axis=self.axis)
        if not self.sparse_y_pred:
            y_pred = np.argmax(y_pred, axis=self.axis)
        y_true = y_true.astype(self.dtype).reshape(-1)
        y_pred = y_pred.astype(self.dtype).reshape(-1)
        if sample_weight is None:
            sw = np.ones_like(y_true)
        else:
            sw = as_array(sample_weight)
            if sw.dtype.kind == "f" and np.dtype(self.dtype).kind in "iu":
                warn_user("IoU: float sample weights are cast to the metric's integer dtype; pass integer "
                          "weights or dtype='float32'")
            sw = np.broadcast_to(sw.astype(self.dtype).reshape(-1) if sw.ndim > 1 else sw.astype(self.dtype),
                                 y_true.shape)
        valid = (y_true >= 0) & (y_true < self.num_classes) & (y_pred >= 0) & (y_pred < self.num_classes)
        if self.ignore_class is not None:
            valid &= y_true != self.ignore_class
        cm = np.zeros((self.num_classes, self.num_classes), dtype=self.dtype)
        np.add.at(cm, (y_true[valid].astype(np.int64), y_pred[valid].astype(np.int64)), sw[valid])
        self.total_cm.assign_add(cm)

    def reset_state(self):
        self.total_cm.assign(np.zeros(self.total_cm.shape, dtype=self.total_cm.dtype))


class IoU(_IoUBase):
    """Mean intersection-over-union TP / (TP + FP + FN) of the target classes (those with no
    predictions and no labels are left out of the mean).

    Args:
        num_classes: the number of classes.
        target_class_ids: the classes averaged.
        name, dtype: as for every metric (dtype of the confusion matrix: int32 by default).
        ignore_class: a label whose entries are not counted.
        sparse_y_true: labels are class ids (else one-hot along `axis`).
        sparse_y_pred: predictions are class ids (else scores along `axis`).
        axis: the class axis of one-hot labels or scores.
    """

    def __init__(self, num_classes, target_class_ids, name=None, dtype=None, ignore_class=None, sparse_y_true=True,
                 sparse_y_pred=True, axis=-1):
        super().__init__(num_classes, name=name, dtype=dtype, ignore_class=ignore_class,
                         sparse_y_true=sparse_y_true, sparse_y_pred=sparse_y_pred, axis=axis)
        if max(target_class_ids) >= num_classes:
            raise ValueError(f"IoU: target class id {max(target_class_ids)} is out of range [0, {num_classes})")
        self.target_class_ids = list(target_class_ids)

    def result(self):
        cm = self.total_cm._value.astype(np.float64)
        tp = np.diag(cm)
        denominator = (cm.sum(axis=0) + cm.sum(axis=1) - tp)[self.target_class_ids]
        tp = tp[self.target_class_ids]
        valid = denominator > 1e-9
        iou = np.where(valid, tp / (denominator + config.epsilon()), 0.0)
        return self._tensor(np.sum(iou) / (np.sum(valid) + config.epsilon()), "float32")

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "target_class_ids": self.target_class_ids,
                "ignore_class": self.ignore_class, "sparse_y_true": self.sparse_y_true,
                "sparse_y_pred": self.sparse_y_pred, "axis": self.axis}


class BinaryIoU(IoU):
    """IoU of binary predictions thresholded at `threshold`.

    Args:
        target_class_ids: which of the classes 0 and 1 are averaged.
        threshold: scores >= threshold are class 1.
        name, dtype: as for every metric.
    """

    def __init__(self, target_class_ids=(0, 1), threshold=0.5, name=None, dtype=None):
        super().__init__(num_classes=2, target_class_ids=target_class_ids, name=name, dtype=dtype)
        self.threshold = threshold

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add one batch (labels 0/1, scores thresholded)."""
        y_pred = (as_array(y_pred, np.float32) >= self.threshold).astype(self.dtype)
        super().update_state(as_array(y_true).astype(self.dtype), y_pred, sample_weight)

    def get_config(self):
        return {"target_class_ids": self.target_class_ids, "threshold": self.threshold, "name": self.name,
                "dtype": self.dtype}


class MeanIoU(IoU):
    """IoU averaged over every class (arguments as `IoU`, without target_class_ids)."""

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None, sparse_y_true=True, sparse_y_pred=True,
                 axis=-1):
        super().__init__(num_classes, list(range(num_classes)), name=name, dtype=dtype, ignore_class=ignore_class,
                         sparse_y_true=sparse_y_true, sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self):
        return {"num_classes": self.num_classes, "name": self.name, "dtype": self.dtype,
                "ignore_class": self.ignore_class, "sparse_y_true": self.sparse_y_true,
                "sparse_y_pred": self.sparse_y_pred, "axis": self.axis}


class OneHotIoU(IoU):
    """IoU with one-hot labels (arguments as `IoU`; sparse_y_pred says whether predictions are ids)."""

    def __init__(self, num_classes, target_class_ids, name=None, dtype=None, ignore_class=None, sparse_y_pred=False,
                 axis=-1):
        super().__init__(num_classes, target_class_ids, name=name, dtype=dtype, ignore_class=ignore_class,
                         sparse_y_true=False, sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self):
        return {"num_classes": self.num_classes, "target_class_ids": self.target_class_ids, "name": self.name,
                "dtype": self.dtype, "ignore_class": self.ignore_class, "sparse_y_pred": self.sparse_y_pred,
                "axis": self.axis}


class OneHotMeanIoU(MeanIoU):
    """Mean IoU with one-hot labels (arguments as `MeanIoU`, without sparse_y_true)."""

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None, sparse_y_pred=False, axis=-1):
        super().__init__(num_classes, name=name, dtype=dtype, ignore_class=ignore_class, sparse_y_true=False,
                         sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self):
        return {"num_classes": self.num_classes, "name": self.name, "dtype": self.dtype,
                "ignore_class": self.ignore_class, "sparse_y_pred": self.sparse_y_pred, "axis": self.axis}


register_builtins("metrics", globals())  # loadable from .keras configs by class name
