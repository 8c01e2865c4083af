"""The Loss base class and the reduction every loss ends with (keras.losses.Loss)."""
import numpy as np

from engine import config, ops
from engine.ops._util import to_array
from engine.tensor import Tensor
from engine.utils.naming import to_snake_case
from engine.saving.registry import register_builtins

REDUCTIONS = ("sum_over_batch_size", "sum", None, "none", "mean", "mean_with_sample_weight")


def standardize_reduction(reduction):
    """Check a `reduction` argument: one of Keras 3's names (see `REDUCTIONS`)."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"Loss: invalid reduction={reduction!r}. Expected one of {REDUCTIONS}")
    return reduction


def dtype_name(dtype, default=None):
    """A dtype argument (name, numpy dtype, Keras dtype-policy config or None) as a dtype name.

    Mixed-precision policies ("mixed_float16", "mixed_bfloat16") are refused: engine computes in
    float32 or float64."""
    if dtype is None:
        return default or config.floatx()
    if isinstance(dtype, dict):
        dtype = dtype.get("config", {}).get("name") or default or config.floatx()
    if dtype == "int":
        return "int32"
    try:
        return np.dtype(getattr(dtype, "name", dtype)).name
    except TypeError:
        raise ValueError(f"dtype={dtype!r} is not a dtype engine computes in; pass 'float32' or 'float64' "
                         "(mixed-precision policies are not supported)") from None


def as_tensor(x, dtype):
    """x as a Tensor of `dtype`, keeping it recorded when it already is one of that dtype."""
    if isinstance(x, Tensor) and x.dtype == dtype:
        return x
    if hasattr(x, "_value") or isinstance(x, Tensor):
        return ops.cast(x, dtype)
    return ops.convert_to_tensor(np.asarray(x), dtype=dtype)


def squeeze_or_expand_to_same_rank(x1, x2, expand_rank_1=True):
    """Make two tensors' ranks agree when they differ by a trailing axis of size 1, as Keras does:
    the longer one loses that axis (or, when the shorter one is 1-D, the shorter one gains it)."""
    r1, r2 = len(x1.shape), len(x2.shape)
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = ops.expand_dims(x2, -1)
        else:
            x1 = ops.squeeze(x1, axis=-1)
    elif r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = ops.expand_dims(x1, -1)
        else:
            x2 = ops.squeeze(x2, axis=-1)
    return x1, x2


def _weights_for(values, sample_weight):
    """The sample weights as an array that broadcasts against the loss values: ranks are matched as
    Keras matches them, then missing trailing axes are added (a (batch,) weight for (batch, steps)
    values weighs each sample's steps)."""
    sw = to_array(sample_weight).astype(values.dtype, copy=False)
    if sw.ndim == values.ndim + 1 and sw.shape[-1] == 1:
        sw = sw.reshape(sw.shape[:-1])
    elif values.ndim == sw.ndim + 1 and values.shape[-1] == 1 and sw.ndim >= 1:
        sw = sw[..., None]
    while sw.ndim < values.ndim:
        sw = sw[..., None]
    try:
        np.broadcast_shapes(sw.shape, values.shape)
    except ValueError:
        raise ValueError(f"Loss: sample_weight of shape {np.shape(sample_weight)} does not broadcast to "
                         f"the per-sample losses of shape {tuple(values.shape)}; pass one weight per "
                         "sample (shape (batch,)) or per element") from None
    return sw


def reduce_weighted_values(values, sample_weight=None, mask=None, reduction="sum_over_batch_size"):
    """Weight per-sample loss values and reduce them as `reduction` says.

    Args:
        values: the per-sample (or per-element) loss values, a Tensor.
        sample_weight: optional weights broadcastable to `values`.
        mask: optional boolean mask (False entries count as weight 0; for the averaging reductions
            the kept entries are scaled up so the average is over the kept entries only, as Keras).
        reduction: "sum_over_batch_size" / "mean" (sum divided by the number of values), "sum",
            "mean_with_sample_weight" (sum divided by the sum of the weights), "none" or None.

    Returns:
        A scalar Tensor, or `values` weighted when there is no reduction.
    """
    reduction = standardize_reduction(reduction)
    dtype = values.dtype
    if mask is not None:
        mask = np.asarray(to_array(mask), dtype=bool)
        if reduction in ("mean", "sum_over_batch_size"):
            valid = mask.sum()
            scale = mask.size / valid if valid else 0.0
            float_mask = np.where(mask, scale, 0.0).astype(dtype)
        else:
            float_mask = mask.astype(dtype)
        sample_weight = float_mask if sample_weight is None else \
            _weights_for(float_mask, sample_weight) * float_mask
    if sample_weight is not None:
        sw = _weights_for(values, sample_weight)
        values = values * sw
    if reduction in (None, "none") or values.shape in ((), (0,)):
        return values
    total = ops.sum(values)
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        divisor = float(np.sum(np.broadcast_to(sw, values.shape)))
    else:
        divisor = float(values.size)
    # divide_no_nan: an empty or all-zero-weight batch gives 0, not nan.
    return total / np.asarray(divisor, dtype) if divisor else ops.zeros((), dtype=dtype)


class Loss:
    """Base class of losses: subclasses implement `call(y_true, y_pred)`, which returns the loss of
    each sample; calling the loss weights and reduces those values.

    Args:
        name: the loss's name (default: the class name in snake case).
        reduction: how per-sample values are combined: "sum_over_batch_size" (default), "sum",
            "mean", "mean_with_sample_weight", "none" or None (no reduction).
        dtype: the dtype the loss is computed in (default: `engine.config.floatx()`).
    """

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        self.name = name or to_snake_case(type(self).__name__)
        self.reduction = standardize_reduction(reduction)
        self._dtype = dtype_name(dtype)

    @property
    def dtype(self):
        """The dtype the loss is computed in."""
        return self._dtype

    def call(self, y_true, y_pred):
        """The per-sample losses (a Tensor); subclasses define it."""
        raise NotImplementedError(f"{type(self).__name__} must define call(y_true, y_pred)")

    def __call__(self, y_true, y_pred, sample_weight=None):
        """The weighted, reduced loss of a batch.

        Args:
            y_true: targets (tensor, array or nested lists).
            y_pred: predictions; a mask on it (`_keras_mask`) weighs masked steps 0.
            sample_weight: optional weights, one per sample or per element.

        Returns:
            A Tensor: a scalar, or the weighted per-sample values when reduction is "none".
        """
        in_mask = getattr(y_pred, "_keras_mask", None)
        y_pred = as_tensor(y_pred, self.dtype)
        y_true = as_tensor(y_true, self.dtype)
        values = self.call(y_true, y_pred)
        out_mask = getattr(values, "_keras_mask", None)
        if in_mask is not None and out_mask is not None:
            mask = np.logical_and(to_array(in_mask), to_array(out_mask))
        else:
            mask = in_mask if in_mask is not None else out_mask
        return reduce_weighted_values(values, sample_weight, mask, self.reduction)

    def get_config(self):
        """The constructor arguments, as Keras writes them."""
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
        """Rebuild a loss from `get_config()`'s dictionary."""
        return cls(**config)


register_builtins("losses", globals())  # loadable from .keras configs by class name
