"""BatchNormalization's training statistics in a data-parallel step.

synchronized=True: the mean and variance are those of the global batch (sums over ranks, the
variance taken around the global mean), and the gradient flows through the sums to every rank.
synchronized=False (Keras's default): each rank normalises with its own slice's statistics, as
Keras's replicas do; the moving statistics are updated from the ranks' statistics averaged by
row count, so that they, like every other weight, stay identical on every rank.
"""
import numpy as np

from engine import ops
from engine.distribution import collectives
from engine.distribution.training import current_shard
from engine.ops import normalization as norm_ops


def _rows(x):
    return int(np.prod(np.shape(x)[:-1], dtype=np.int64))


def batch_norm_train(x, gamma, beta, epsilon, synchronized):
    """(normalised x, mean, variance) of a BatchNormalization training call in a data-parallel
    step; mean and variance (for the moving statistics) are identical on every rank."""
    live = not current_shard().empty          # a rank without samples adds nothing to the sums
    if not synchronized:
        y, mean, var = norm_ops.batch_norm_train(x, gamma, beta, epsilon=epsilon)
        rows = float(_rows(x)) if live else 0.0
        packed = np.concatenate([[rows], np.asarray(mean, np.float64) * rows, np.asarray(var, np.float64) * rows])
        summed = collectives.fixed_order_sum(packed)
        channels = np.shape(mean)[0]
        dtype = np.asarray(mean).dtype
        return y, (summed[1:1 + channels] / summed[0]).astype(dtype), \
            (summed[1 + channels:] / summed[0]).astype(dtype)
    axes = tuple(range(len(np.shape(x)) - 1))
    rows = collectives.fixed_order_sum(np.array([float(_rows(x)) if live else 0.0]))[0]
    contribution = x if live else ops.multiply(x, 0.0)
    mean = ops.divide(collectives.all_sum(ops.sum(contribution, axis=axes)), rows)
    centred = ops.subtract(x, mean)
    squares = ops.square(centred if live else ops.multiply(centred, 0.0))
    var = ops.divide(collectives.all_sum(ops.sum(squares, axis=axes)), rows)
    y = ops.multiply(centred, ops.rsqrt(ops.add(var, epsilon)))
    if gamma is not None:
        y = ops.multiply(y, gamma)
    if beta is not None:
        y = ops.add(y, beta)
    return y, mean, var
