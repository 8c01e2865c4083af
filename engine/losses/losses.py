"""Keras 3's loss functions and the Loss classes built on them (keras.losses.*).

Every function takes (y_true, y_pred) and returns one value per sample (the last axis reduced),
computed with engine.ops and Tensor operators so the tape differentiates it. The mean squared /
absolute error and the crossentropies run on fused per-sample kernels
(engine.ops.nn.per_sample_loss), which produce the value and its gradient in one pass.
"""

import numpy as np

from engine import config, ops
from engine.losses.loss import Loss, as_tensor, squeeze_or_expand_to_same_rank
from engine.ops._util import to_array
from engine.ops.nn import mean_loss, per_sample_loss
from engine.saving.registry import register_builtins
from engine.utils.traceback_utils import warn_user


def _float_tensor(x):
    """x as a Tensor, in its own float dtype or in floatx when it is not a float array."""
    dtype = getattr(x, "dtype", None)
    return as_tensor(x, dtype if dtype is not None and np.dtype(dtype).kind == "f" else config.floatx())


def _pair(y_true, y_pred, same_rank=True):
    """y_pred as a float tensor and y_true cast to its dtype (ranks matched, as Keras does)."""
    y_pred = _float_tensor(y_pred)
    y_true = as_tensor(y_true, y_pred.dtype)
    if same_rank:
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    return y_true, y_pred


def _last_axis(x, axis, what):
    """x with `axis` moved to the end (the fused kernels reduce the last axis)."""
    ndim = len(x.shape)
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise ValueError(f"{what}: axis must be an int, got {axis!r}")
    axis = int(axis) % ndim
    if axis == ndim - 1:
        return x
    return ops.transpose(x, [i for i in range(ndim) if i != axis] + [axis])


def _smooth_one_hot(y_true, label_smoothing, classes):
    return y_true * (1.0 - label_smoothing) + label_smoothing / classes


# -- regression ------------------------------------------------------------------------------------
def mean_squared_error(y_true, y_pred):
    """Mean of the squared error over the last axis.

    Args:
        y_true: targets, shape (batch, ..., d).
        y_pred: predictions of the same shape.

    Returns:
        The loss of each sample, shape (batch, ...).
    """
    y_true, y_pred = _pair(y_true, y_pred)
    return per_sample_loss("mse", y_true, y_pred)


def mean_absolute_error(y_true, y_pred):
    """Mean of the absolute error over the last axis.

    Args:
        y_true: targets, shape (batch, ..., d).
        y_pred: predictions of the same shape.

    Returns:
        The loss of each sample, shape (batch, ...).
    """
    y_true, y_pred = _pair(y_true, y_pred)
    return per_sample_loss("mae", y_true, y_pred)


def mean_absolute_percentage_error(y_true, y_pred):
    """100 * mean(|y_true - y_pred| / max(|y_true|, epsilon)) over the last axis.

    Args:
        y_true: targets.
        y_pred: predictions of the same shape.

    Returns:
        The loss of each sample.
    """
    y_true, y_pred = _pair(y_true, y_pred)
    diff = ops.abs((y_true - y_pred) / ops.maximum(ops.abs(y_true), config.epsilon()))
    return ops.mean(diff, axis=-1) * 100.0


def mean_squared_logarithmic_error(y_true, y_pred):
    """Mean of (log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1))**2 over the last axis.

    Args:
        y_true: targets.
        y_pred: predictions of the same shape.

    Returns:
        The loss of each sample.
    """
    y_true, y_pred = _pair(y_true, y_pred)
    eps = config.epsilon()
    first = ops.log(ops.maximum(y_pred, eps) + 1.0)
    second = ops.log(ops.maximum(y_true, eps) + 1.0)
    return ops.mean(ops.square(first - second), axis=-1)


def l2_normalize(x, axis=-1):
    """x divided by its L2 norm along `axis` (norms below epsilon count as epsilon, as Keras's
    normalize does; written as a division by sqrt(max(sum(x**2), eps**2)) so the gradient stays
    finite at 0)."""
    eps = config.epsilon()
    square_sum = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return x / ops.sqrt(ops.maximum(square_sum, eps * eps))


def cosine_similarity(y_true, y_pred, axis=-1):
    """The negative cosine similarity of y_true and y_pred along `axis` (-1 is best, 0 orthogonal).

    Args:
        y_true: targets.
        y_pred: predictions of the same shape.
        axis: the axis the vectors lie along.

    Returns:
        The loss of each sample.
    """
    y_true, y_pred = _pair(y_true, y_pred)
    return -ops.sum(l2_normalize(y_true, axis) * l2_normalize(y_pred, axis), axis=axis)


def huber(y_true, y_pred, delta=1.0):
    """Huber loss: 0.5 * e**2 where |e| <= delta, delta * (|e| - 0.5 * delta) elsewhere, averaged
    over the last axis (e = y_pred - y_true).

    Args:
        y_true: targets.
        y_pred: predictions of the same shape.
        delta: where the loss turns from quadratic to linear.

    Returns:
        The loss of each sample.
    """
    y_true, y_pred = _pair(y_true, y_pred)
    error = y_pred - y_true
    abs_error = ops.abs(error)
    delta = float(delta)
    quadratic = ops.square(error) * 0.5
    linear = abs_error * delta - 0.5 * delta * delta
    return ops.mean(ops.where(to_array(abs_error) <= delta, quadratic, linear), axis=-1)


def log_cosh(y_true, y_pred):
    """Mean of log(cosh(y_pred - y_true)) over the last axis, computed as
    x + softplus(-2x) - log(2), which does not overflow for large errors.

    Args:
        y_true: targets.
        y_pred: predictions of the same shape.

    Returns:
        The loss of each sample.
    """
    y_true, y_pred = _pair(y_true, y_pred)
    x = y_pred - y_true
    return ops.mean(x + ops.softplus(x * -2.0) - float(np.log(2.0)), axis=-1)


# -- probabilistic ----------------------------------------------------------------------------------
def kl_divergence(y_true, y_pred):
    """Kullback-Leibler divergence sum(y_true * log(y_true / y_pred)) over the last axis, both
    clipped to [epsilon, 1].

    Args:
        y_true: target distributions.
        y_pred: predicted distributions.

    Returns:
        The loss of each sample.
    """
    y_true, y_pred = _pair(y_true, y_pred, same_rank=False)
    eps = config.epsilon()
    y_true = ops.clip(y_true, eps, 1.0)
    y_pred = ops.clip(y_pred, eps, 1.0)
    return ops.sum(y_true * ops.log(y_true / y_pred), axis=-1)


def poisson(y_true, y_pred):
    """Poisson loss mean(y_pred - y_true * log(y_pred + epsilon)) over the last axis.

    Args:
        y_true: targets (counts).
        y_pred: predicted rates.

    Returns:
        The loss of each sample.
    """
    y_true, y_pred = _pair(y_true, y_pred, same_rank=False)
    return ops.mean(y_pred - y_true * ops.log(y_pred + config.epsilon()), axis=-1)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Binary crossentropy averaged over `axis`.

    Args:
        y_true: targets in [0, 1].
        y_pred: probabilities (or logits with from_logits=True), same shape.
        from_logits: whether y_pred are logits.
        label_smoothing: in [0, 1]; targets become y * (1 - s) + 0.5 * s.
        axis: the axis averaged over.

    Returns:
        The loss of each sample.
    """
    y_true, y_pred = _pair(y_true, y_pred, same_rank=False)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    kind = "binary_crossentropy" + ("_logits" if from_logits else "")
    return per_sample_loss(kind, _last_axis(y_true, axis, "binary_crossentropy"),
                           _last_axis(y_pred, axis, "binary_crossentropy"))


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Categorical crossentropy between one-hot (or soft) targets and predicted distributions.

    Args:
        y_true: one-hot or soft targets, shape (batch, ..., classes).
        y_pred: probabilities (or logits with from_logits=True), same shape.
        from_logits: whether y_pred are logits.
        label_smoothing: in [0, 1]; targets become y * (1 - s) + s / classes.
        axis: the class axis.

    Returns:
        The loss of each sample.
    """
    y_true, y_pred = _pair(y_true, y_pred, same_rank=False)
    if y_pred.shape[-1] == 1:
        warn_user("categorical_crossentropy: y_pred has one class; for two classes use "
                  "binary_crossentropy", SyntaxWarning)
    if label_smoothing:
        # Keras 3 counts the classes along the last axis whatever `axis` is; so does engine.
        y_true = _smooth_one_hot(y_true, label_smoothing, y_true.shape[-1])
    y_true = _last_axis(y_true, axis, "categorical_crossentropy")
    y_pred = _last_axis(y_pred, axis, "categorical_crossentropy")
    kind = "categorical_crossentropy" + ("_logits" if from_logits else "")
    return per_sample_loss(kind, y_true, y_pred)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None, axis=-1):
    """Categorical crossentropy with integer class labels.

    Args:
        y_true: class indices, shape (batch, ...) or (batch, ..., 1).
        y_pred: probabilities (or logits), shape (batch, ..., classes).
        from_logits: whether y_pred are logits.
        ignore_class: a label whose samples get loss 0 and are masked out of the reduction.
        axis: the class axis.

    Returns:
        The loss of each sample (with `_keras_mask` set when ignore_class is given).
    """
    y_pred = _float_tensor(y_pred)
    y_pred = _last_axis(y_pred, axis, "sparse_categorical_crossentropy")
    labels = np.asarray(to_array(y_true))
    if labels.ndim == len(y_pred.shape) and labels.shape[-1] == 1:
        labels = labels.reshape(labels.shape[:-1])
    kind = "sparse_categorical_crossentropy" + ("_logits" if from_logits else "")
    if ignore_class is None:
        return per_sample_loss(kind, labels, y_pred)
    valid = labels != ignore_class
    losses = per_sample_loss(kind, np.where(valid, labels, 0), y_pred)
    losses = ops.where(valid, losses, 0.0)
    losses._keras_mask = valid
    return losses


def binary_focal_crossentropy(y_true, y_pred, apply_class_balancing=False, alpha=0.25, gamma=2.0,
                              from_logits=False, label_smoothing=0.0, axis=-1):
    """Binary focal crossentropy: the crossentropy weighted by (1 - p_t)**gamma, so that easy
    examples count less.

    Args:
        y_true: targets in [0, 1].
        y_pred: probabilities (or logits with from_logits=True).
        apply_class_balancing: weigh positives by alpha and negatives by 1 - alpha.
        alpha: the class-balancing weight.
        gamma: the focusing parameter.
        from_logits: whether y_pred are logits.
        label_smoothing: in [0, 1]; targets become y * (1 - s) + 0.5 * s.
        axis: the axis averaged over.

    Returns:
        The loss of each sample.
    """
    y_true, y_pred = _pair(y_true, y_pred, same_rank=False)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        y_pred = ops.sigmoid(y_pred)
    bce = ops.nn.binary_crossentropy(y_true, y_pred)
    p_t = y_true * y_pred + (1.0 - y_true) * (1.0 - y_pred)
    focal = ops.power(1.0 - p_t, float(gamma)) * bce
    if apply_class_balancing:
        focal = (y_true * alpha + (1.0 - y_true) * (1.0 - alpha)) * focal
    return ops.mean(focal, axis=axis)


def categorical_focal_crossentropy(y_true, y_pred, alpha=0.25, gamma=2.0, from_logits=False,
                                   label_smoothing=0.0, axis=-1):
    """Categorical focal crossentropy: each class's crossentropy term weighted by
    alpha * (1 - p)**gamma.

    Args:
        y_true: one-hot or soft targets.
        y_pred: probabilities (or logits with from_logits=True).
        alpha: the weighting factor.
        gamma: the focusing parameter.
        from_logits: whether y_pred are logits.
        label_smoothing: in [0, 1]; targets become y * (1 - s) + s / classes.
        axis: the class axis.

    Returns:
        The loss of each sample.
    """
    y_true, y_pred = _pair(y_true, y_pred, same_rank=False)
    if label_smoothing:
        y_true = _smooth_one_hot(y_true, label_smoothing, y_true.shape[-1])  # (the last axis, as Keras)
    if from_logits:
        y_pred = ops.softmax(y_pred, axis=axis)
    eps = config.epsilon()
    output = ops.clip(y_pred / ops.sum(y_pred, axis=axis, keepdims=True), eps, 1.0 - eps)
    cce = -y_true * ops.log(output)
    return ops.sum(ops.power(1.0 - output, float(gamma)) * alpha * cce, axis=axis)


def categorical_generalized_cross_entropy(y_true, y_pred, q):
    """Generalized crossentropy (1 - p**q) / q of the true class's probability p: between the
    crossentropy (q -> 0) and the mean absolute error (q = 1), robust to noisy labels.

    Args:
        y_true: integer class labels, shape (batch,).
        y_pred: probabilities, shape (batch, classes).
        q: in (0, 1].

    Returns:
        The loss of each sample.
    """
    y_pred = _float_tensor(y_pred)
    onehot = np.eye(y_pred.shape[-1], dtype=y_pred.dtype)[np.asarray(to_array(y_true)).astype(np.int64)]
    p = ops.sum(y_pred * onehot, axis=-1)
    return (1.0 - ops.power(p, float(q))) / float(q)


# -- hinge -------------------------------------------------------------------------------------------
def _hinge_labels(y_true):
    """0/1 labels become -1/1 (labels already in {-1, 1} stay as they are)."""
    values = to_array(y_true)
    if np.all((values == 0) | (values == 1)):
        return y_true * 2.0 - 1.0
    return y_true


def hinge(y_true, y_pred):
    """Hinge loss mean(max(1 - y_true * y_pred, 0)) over the last axis (0/1 labels become -1/1).

    Args:
        y_true: labels in {-1, 1} or {0, 1}.
        y_pred: predictions (scores).

    Returns:
        The loss of each sample.
    """
    y_true, y_pred = _pair(y_true, y_pred, same_rank=False)
    return ops.mean(ops.maximum(1.0 - _hinge_labels(y_true) * y_pred, 0.0), axis=-1)


def squared_hinge(y_true, y_pred):
    """Squared hinge loss mean(max(1 - y_true * y_pred, 0)**2) over the last axis.

    Args:
        y_true: labels in {-1, 1} or {0, 1}.
        y_pred: predictions (scores).

    Returns:
        The loss of each sample.
    """
    y_true, y_pred = _pair(y_true, y_pred, same_rank=False)
    return ops.mean(ops.square(ops.maximum(1.0 - _hinge_labels(y_true) * y_pred, 0.0)), axis=-1)


def categorical_hinge(y_true, y_pred):
    """max(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0) per sample.

    Args:
        y_true: one-hot labels.
        y_pred: predictions (scores).

    Returns:
        The loss of each sample.
    """
    y_true, y_pred = _pair(y_true, y_pred, same_rank=False)
    pos = ops.sum(y_true * y_pred, axis=-1)
    neg = ops.max((1.0 - y_true) * y_pred, axis=-1)
    return ops.maximum(neg - pos + 1.0, 0.0)


# -- segmentation --------------------------------------------------------------------------------------
def dice(y_true, y_pred, axis=None):
    """Dice loss 1 - 2 * sum(y_true * y_pred) / (sum(y_true) + sum(y_pred) + epsilon).

    Args:
        y_true: targets.
        y_pred: predictions.
        axis: the axes summed over (None: all, giving one value for the batch).

    Returns:
        The loss (per sample when `axis` leaves the batch axis).
    """
    y_true, y_pred = _pair(y_true, y_pred, same_rank=False)
    intersection = ops.sum(y_true * y_pred, axis=axis)
    total = ops.sum(y_true, axis=axis) + ops.sum(y_pred, axis=axis) + config.epsilon()
    return 1.0 - (intersection * 2.0) / total


def tversky(y_true, y_pred, alpha=0.5, beta=0.5, axis=None):
    """Tversky loss 1 - TP / (TP + alpha * FP + beta * FN + epsilon), with soft counts.

    Args:
        y_true: targets.
        y_pred: predictions.
        alpha: weight of false positives.
        beta: weight of false negatives.
        axis: the axes summed over (None: all).

    Returns:
        The loss.
    """
    y_true, y_pred = _pair(y_true, y_pred, same_rank=False)
    tp = ops.sum(y_true * y_pred, axis=axis)
    fp = ops.sum((1.0 - y_pred) * y_true, axis=axis)
    fn = ops.sum(y_pred * (1.0 - y_true), axis=axis)
    return 1.0 - tp / (tp + fp * alpha + fn * beta + config.epsilon())


def _logsumexp_masked(x, mask, axis):
    """log(sum(exp(x))) over the entries where mask is True (-inf where none is)."""
    x_arr = to_array(x)
    shift = np.where(mask, x_arr, -np.inf).max(axis=axis, keepdims=True)
    shift = np.where(np.isfinite(shift), shift, 0.0).astype(x_arr.dtype)
    total = ops.sum(ops.where(mask, ops.exp(x - shift), 0.0), axis=axis)
    return ops.log(total) + shift.squeeze(axis)


def circle(y_true, y_pred, ref_labels=None, ref_embeddings=None, remove_diagonal=True, gamma=80, margin=0.4):
    """Circle loss of L2-normalized embeddings with integer labels: pairs of the same label are
    pulled together, pairs of different labels pushed apart, each weighted by how far it is from
    its optimum.

    Args:
        y_true: integer labels, shape (batch,).
        y_pred: L2-normalized embeddings, shape (batch, dim).
        ref_labels: labels of the reference embeddings (default: y_true).
        ref_embeddings: reference embeddings (default: y_pred).
        remove_diagonal: leave each sample out of its own positive pairs.
        gamma: the scale factor.
        margin: the relaxation margin.

    Returns:
        The loss of each sample (masked where it is 0).
    """
    y_pred = _float_tensor(y_pred)
    labels = np.asarray(to_array(y_true)).astype(np.int32).reshape(-1)
    ref = y_pred if ref_embeddings is None else as_tensor(ref_embeddings, y_pred.dtype)
    ref_lab = labels if ref_labels is None else np.asarray(to_array(ref_labels)).astype(np.int32).reshape(-1)
    distances = ops.maximum(1.0 - ops.matmul(y_pred, ops.transpose(ref)), 0.0)
    positive = labels[:, None] == ref_lab[None, :]
    negative = ~positive
    if remove_diagonal:
        positive = positive & ~np.eye(*positive.shape, dtype=bool)
    pos_w = ops.maximum((distances + margin) * positive.astype(y_pred.dtype), 0.0)
    neg_w = ops.maximum(((1.0 + margin) - distances) * negative.astype(y_pred.dtype), 0.0)
    pos_terms = pos_w * (margin - distances) * (-float(gamma))
    neg_terms = neg_w * ((1.0 - margin) - distances) * float(gamma)
    p_loss = _logsumexp_masked(pos_terms, positive, axis=1)
    n_loss = _logsumexp_masked(neg_terms, negative, axis=1)
    out = ops.softplus(p_loss + n_loss)
    out._keras_mask = to_array(out) > 0
    return out


# -- sequences ---------------------------------------------------------------------------------------------
def ctc(y_true, y_pred):
    """Connectionist temporal classification loss of label sequences against per-step logits.

    Label 0 is the padding (and blank) index, as Keras's `ctc` uses mask_index=0; every step of
    y_pred is used.

    Args:
        y_true: integer labels, shape (batch, max_label_length), padded with 0.
        y_pred: logits, shape (batch, steps, classes).

    Returns:
        The negative log-likelihood of each sample's labels, shape (batch,).
    """
    from engine.losses._ctc import ctc_negative_log_likelihood
    labels = np.asarray(to_array(y_true))
    if labels.ndim != 2:
        raise ValueError(f"ctc: y_true must have shape (batch_size, max_length), got {labels.shape}")
    if len(y_pred.shape) != 3:
        raise ValueError(f"ctc: y_pred must have shape (batch_size, steps, num_classes), got {tuple(y_pred.shape)}")
    y_pred = _float_tensor(y_pred)
    return ctc_negative_log_likelihood(labels.astype(np.int64), y_pred, blank=0)


# -- classes -------------------------------------------------------------------------------------------------
class LossFunctionWrapper(Loss):
    """A Loss from a function fn(y_true, y_pred, **kwargs) that returns per-sample values.

    Args:
        fn: the function.
        reduction: see `Loss`.
        name: the loss's name (default: the function's name).
        dtype: the dtype the loss is computed in.
        **kwargs: keyword arguments passed to fn on every call.
    """

    def __init__(self, fn, reduction="sum_over_batch_size", name=None, dtype=None, **kwargs):
        super().__init__(name=name or getattr(fn, "__name__", "loss"), reduction=reduction, dtype=dtype)
        self.fn = fn
        self._fn_kwargs = kwargs

    def call(self, y_true, y_pred):
        """fn's per-sample values (ranks matched first, as Keras does)."""
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self):
        """name, reduction, the function and its keyword arguments."""
        from engine.saving.serialization import serialize_keras_object
        return {**super().get_config(), "fn": serialize_keras_object(self.fn),
                **serialize_keras_object(self._fn_kwargs)}

    @classmethod
    def from_config(cls, config):
        from engine.saving.serialization import deserialize_keras_object
        config = dict(config)
        if isinstance(config.get("fn"), (dict, str)):
            config["fn"] = deserialize_keras_object(config["fn"])
        return cls(**config)

    def __repr__(self):
        return f"<LossFunctionWrapper({getattr(self.fn, '__name__', self.fn)}, kwargs={self._fn_kwargs})>"


class _BuiltinLoss(LossFunctionWrapper):
    """A Keras loss class over one of this module's functions: its config is its constructor's
    arguments (listed in `_config_keys`), not the function."""

    _config_keys = ()

    def get_config(self):
        config = Loss.get_config(self)
        config.update({key: self._fn_kwargs[key] for key in self._config_keys})
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class _KernelLoss(_BuiltinLoss):
    """A loss whose plain batch mean (no weights, no mask) is fused with the kernel into one op."""

    def _kernel_kind(self):
        return None

    def __call__(self, y_true, y_pred, sample_weight=None):
        kind = self._kernel_kind()
        if kind is not None and sample_weight is None and self.reduction == "sum_over_batch_size" and \
                getattr(y_pred, "_keras_mask", None) is None:
            y_pred_t = as_tensor(y_pred, self.dtype)
            y_true_t = as_tensor(y_true, self.dtype)
            y_true_t, y_pred_t = squeeze_or_expand_to_same_rank(y_true_t, y_pred_t)
            if y_pred_t.ndim >= 1 and y_true_t.shape == y_pred_t.shape:
                return mean_loss(kind, y_true_t, y_pred_t)
        return super().__call__(y_true, y_pred, sample_weight)


class MeanSquaredError(_KernelLoss):
    """Mean of the squared error. Args: reduction, name, dtype (see `Loss`)."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error", dtype=None):
        super().__init__(mean_squared_error, name=name, reduction=reduction, dtype=dtype)

    def _kernel_kind(self):
        return "mse"


class MeanAbsoluteError(_KernelLoss):
    """Mean of the absolute error. Args: reduction, name, dtype (see `Loss`)."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error", dtype=None):
        super().__init__(mean_absolute_error, name=name, reduction=reduction, dtype=dtype)

    def _kernel_kind(self):
        return "mae"


class MeanAbsolutePercentageError(_BuiltinLoss):
    """Mean absolute percentage error. Args: reduction, name, dtype (see `Loss`)."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_percentage_error", dtype=None):
        super().__init__(mean_absolute_percentage_error, name=name, reduction=reduction, dtype=dtype)


class MeanSquaredLogarithmicError(_BuiltinLoss):
    """Mean squared logarithmic error. Args: reduction, name, dtype (see `Loss`)."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_logarithmic_error", dtype=None):
        super().__init__(mean_squared_logarithmic_error, name=name, reduction=reduction, dtype=dtype)


class CosineSimilarity(_BuiltinLoss):
    """Negative cosine similarity.

    Args:
        axis: the axis the vectors lie along.
        reduction, name, dtype: see `Loss`.
    """
    _config_keys = ("axis",)   # (Keras 3 leaves axis out of the config; kept so a round trip keeps it)

    def __init__(self, axis=-1, reduction="sum_over_batch_size", name="cosine_similarity", dtype=None):
        super().__init__(cosine_similarity, name=name, reduction=reduction, dtype=dtype, axis=axis)


class Huber(_BuiltinLoss):
    """Huber loss.

    Args:
        delta: where the loss turns from quadratic to linear.
        reduction, name, dtype: see `Loss`.
    """
    _config_keys = ("delta",)  # (Keras 3 leaves delta out of the config; kept so a round trip keeps it)

    def __init__(self, delta=1.0, reduction="sum_over_batch_size", name="huber_loss", dtype=None):
        super().__init__(huber, name=name, reduction=reduction, dtype=dtype, delta=delta)


class LogCosh(_BuiltinLoss):
    """Logarithm of the hyperbolic cosine of the error. Args: reduction, name, dtype (see `Loss`)."""

    def __init__(self, reduction="sum_over_batch_size", name="log_cosh", dtype=None):
        super().__init__(log_cosh, name=name, reduction=reduction, dtype=dtype)


class KLDivergence(_BuiltinLoss):
    """Kullback-Leibler divergence. Args: reduction, name, dtype (see `Loss`)."""

    def __init__(self, reduction="sum_over_batch_size", name="kl_divergence", dtype=None):
        super().__init__(kl_divergence, name=name, reduction=reduction, dtype=dtype)


class Poisson(_BuiltinLoss):
    """Poisson loss. Args: reduction, name, dtype (see `Loss`)."""

    def __init__(self, reduction="sum_over_batch_size", name="poisson", dtype=None):
        super().__init__(poisson, name=name, reduction=reduction, dtype=dtype)


class _Crossentropy(_KernelLoss):
    """Binary or categorical crossentropy: fused into one op for plain batch means."""
    _config_keys = ("from_logits", "label_smoothing", "axis")
    _function = None   # the per-sample function
    _kind = None       # its kernel's name

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name=None, dtype=None):
        super().__init__(type(self)._function, name=name, reduction=reduction, dtype=dtype,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.from_logits, self.label_smoothing, self.axis = from_logits, label_smoothing, axis

    def _kernel_kind(self):
        # Smoothed targets and other axes go through the function (which handles both).
        if self.label_smoothing or self.axis != -1:
            return None
        return self._kind + ("_logits" if self.from_logits else "")


class BinaryCrossentropy(_Crossentropy):
    """Binary crossentropy.

    Args:
        from_logits: whether predictions are logits.
        label_smoothing: in [0, 1]; targets become y * (1 - s) + 0.5 * s.
        axis: the axis averaged over.
        reduction, name, dtype: see `Loss`.
    """
    _function, _kind = staticmethod(binary_crossentropy), "binary_crossentropy"

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="binary_crossentropy", dtype=None):
        super().__init__(from_logits, label_smoothing, axis, reduction, name, dtype)


class CategoricalCrossentropy(_Crossentropy):
    """Categorical crossentropy.

    Args:
        from_logits: whether predictions are logits.
        label_smoothing: in [0, 1]; targets become y * (1 - s) + s / classes.
        axis: the class axis.
        reduction, name, dtype: see `Loss`.
    """
    _function, _kind = staticmethod(categorical_crossentropy), "categorical_crossentropy"

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="categorical_crossentropy", dtype=None):
        super().__init__(from_logits, label_smoothing, axis, reduction, name, dtype)


class SparseCategoricalCrossentropy(_BuiltinLoss):
    """Categorical crossentropy with integer labels.

    Args:
        from_logits: whether predictions are logits.
        ignore_class: a label to leave out of the loss (its samples are masked).
        reduction, name, dtype: see `Loss`.
        axis: the class axis.
    """
    _config_keys = ("from_logits", "ignore_class")

    def __init__(self, from_logits=False, ignore_class=None, reduction="sum_over_batch_size", axis=-1,
                 name="sparse_categorical_crossentropy", dtype=None):
        super().__init__(sparse_categorical_crossentropy, name=name, reduction=reduction, dtype=dtype,
                         from_logits=from_logits, ignore_class=ignore_class, axis=axis)
        self.from_logits, self.ignore_class, self.axis = from_logits, ignore_class, axis

    def __call__(self, y_true, y_pred, sample_weight=None):
        # The labels stay integers (not cast to the loss dtype), and the plain batch mean is one op.
        in_mask = getattr(y_pred, "_keras_mask", None)
        y_pred = as_tensor(y_pred, self.dtype)
        if self.ignore_class is None and sample_weight is None and in_mask is None and \
                self.reduction == "sum_over_batch_size" and self.axis in (-1, len(y_pred.shape) - 1):
            labels = np.asarray(to_array(y_true))
            if labels.ndim == len(y_pred.shape) and labels.shape[-1] == 1:
                labels = labels.reshape(labels.shape[:-1])
            kind = "sparse_categorical_crossentropy" + ("_logits" if self.from_logits else "")
            return mean_loss(kind, labels, y_pred)
        values = sparse_categorical_crossentropy(y_true, y_pred, **self._fn_kwargs)
        from engine.losses.loss import reduce_weighted_values
        out_mask = getattr(values, "_keras_mask", None)
        mask = in_mask if out_mask is None else (out_mask if in_mask is None else
                                                 np.logical_and(to_array(in_mask), out_mask))
        return reduce_weighted_values(values, sample_weight, mask, self.reduction)


class BinaryFocalCrossentropy(_BuiltinLoss):
    """Binary focal crossentropy.

    Args:
        apply_class_balancing: weigh positives by alpha and negatives by 1 - alpha.
        alpha: the class-balancing weight.
        gamma: the focusing parameter.
        from_logits, label_smoothing, axis: as in `BinaryCrossentropy`.
        reduction, name, dtype: see `Loss`.
    """
    _config_keys = ("from_logits", "label_smoothing", "axis", "apply_class_balancing", "alpha", "gamma")

    def __init__(self, apply_class_balancing=False, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0,
                 axis=-1, reduction="sum_over_batch_size", name="binary_focal_crossentropy", dtype=None):
        super().__init__(binary_focal_crossentropy, name=name, reduction=reduction, dtype=dtype,
                         apply_class_balancing=apply_class_balancing, alpha=alpha, gamma=gamma,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)


class CategoricalFocalCrossentropy(_BuiltinLoss):
    """Categorical focal crossentropy.

    Args:
        alpha: the weighting factor.
        gamma: the focusing parameter.
        from_logits, label_smoothing, axis: as in `CategoricalCrossentropy`.
        reduction, name, dtype: see `Loss`.
    """
    _config_keys = ("from_logits", "label_smoothing", "axis", "alpha", "gamma")

    def __init__(self, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="categorical_focal_crossentropy", dtype=None):
        super().__init__(categorical_focal_crossentropy, name=name, reduction=reduction, dtype=dtype,
                         alpha=alpha, gamma=gamma, from_logits=from_logits, label_smoothing=label_smoothing,
                         axis=axis)


class CategoricalGeneralizedCrossEntropy(_BuiltinLoss):
    """Generalized crossentropy with integer labels.

    Args:
        q: in (0, 1]; near 0 it is the crossentropy, at 1 the mean absolute error.
        reduction, name, dtype: see `Loss`.
    """
    _config_keys = ("q",)

    def __init__(self, q=0.5, reduction="sum_over_batch_size", name="categorical_generalized_cross_entropy",
                 dtype=None):
        if not 0 < q <= 1:
            raise ValueError(f"CategoricalGeneralizedCrossEntropy: q must be in (0, 1], got {q}")
        super().__init__(categorical_generalized_cross_entropy, name=name, reduction=reduction, dtype=dtype, q=q)

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred, **self._fn_kwargs)   # labels are class ids: no rank matching


class Hinge(_BuiltinLoss):
    """Hinge loss. Args: reduction, name, dtype (see `Loss`)."""

    def __init__(self, reduction="sum_over_batch_size", name="hinge", dtype=None):
        super().__init__(hinge, name=name, reduction=reduction, dtype=dtype)


class SquaredHinge(_BuiltinLoss):
    """Squared hinge loss. Args: reduction, name, dtype (see `Loss`)."""

    def __init__(self, reduction="sum_over_batch_size", name="squared_hinge", dtype=None):
        super().__init__(squared_hinge, name=name, reduction=reduction, dtype=dtype)


class CategoricalHinge(_BuiltinLoss):
    """Categorical hinge loss. Args: reduction, name, dtype (see `Loss`)."""

    def __init__(self, reduction="sum_over_batch_size", name="categorical_hinge", dtype=None):
        super().__init__(categorical_hinge, name=name, reduction=reduction, dtype=dtype)


class Dice(_BuiltinLoss):
    """Dice loss.

    Args:
        reduction, name, dtype: see `Loss`.
        axis: the axes summed over (None: all).
    """
    _config_keys = ("axis",)

    def __init__(self, reduction="sum_over_batch_size", name="dice", axis=None, dtype=None):
        super().__init__(dice, name=name, reduction=reduction, dtype=dtype, axis=axis)


class Tversky(_BuiltinLoss):
    """Tversky loss.

    Args:
        alpha: weight of false positives.
        beta: weight of false negatives.
        reduction, name, dtype: see `Loss`.
        axis: the axes summed over (None: all).
    """
    _config_keys = ("alpha", "beta", "axis")

    def __init__(self, alpha=0.5, beta=0.5, reduction="sum_over_batch_size", name="tversky", axis=None, dtype=None):
        super().__init__(tversky, name=name, reduction=reduction, dtype=dtype, alpha=alpha, beta=beta, axis=axis)


class Circle(_BuiltinLoss):
    """Circle loss of embeddings with integer labels.

    Args:
        gamma: the scale factor.
        margin: the relaxation margin.
        remove_diagonal: leave each sample out of its own positive pairs.
        reduction, name, dtype: see `Loss`.
    """
    _config_keys = ("gamma", "margin", "remove_diagonal")

    def __init__(self, gamma=80.0, margin=0.4, remove_diagonal=True, reduction="sum_over_batch_size",
                 name="circle", dtype=None):
        super().__init__(circle, name=name, reduction=reduction, dtype=dtype, gamma=gamma, margin=margin,
                         remove_diagonal=remove_diagonal)

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred, **self._fn_kwargs)


class CTC(_BuiltinLoss):
    """Connectionist temporal classification loss (see `ctc`). Args: reduction, name, dtype."""

    def __init__(self, reduction="sum_over_batch_size", name="ctc", dtype=None):
        super().__init__(ctc, name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred)


mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
kld = KLD = kl_divergence
bce = BCE = binary_crossentropy


register_builtins("losses", globals())  # loadable from .keras configs by class name
