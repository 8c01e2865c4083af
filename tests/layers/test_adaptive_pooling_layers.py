"""Adaptive pooling layers against float64 loops over PyTorch-style windows
[floor(i*n/out), ceil((i+1)*n/out)), with gradients and output shapes."""
import numpy as np
import pytest

from engine import layers
from engine.testing import check_layer_gradients

rng = np.random.default_rng(0)


def _windows(n, out):
    return [(i * n // out, -(-(i + 1) * n // out)) for i in range(out)]


def _reference(x, sizes, reduce):
    """channels_last x (batch, spatial..., channels) pooled cell by cell."""
    spatial = x.shape[1:-1]
    out = np.empty((x.shape[0],) + tuple(sizes) + (x.shape[-1],))
    for index in np.ndindex(*sizes):
        window = tuple(slice(*_windows(n, o)[i]) for n, o, i in zip(spatial, sizes, index))
        block = x[(slice(None),) + window]
        out[(slice(None),) + index] = reduce(block.reshape(x.shape[0], -1, x.shape[-1]), axis=1)
    return out


CASES = [(layers.AdaptiveAveragePooling1D, 3, (2, 7, 2), np.mean), (layers.AdaptiveMaxPooling1D, 5, (2, 7, 2), np.max),
         (layers.AdaptiveAveragePooling2D, (2, 3), (2, 5, 7, 2), np.mean),
         (layers.AdaptiveMaxPooling2D, 4, (2, 5, 7, 3), np.max),
         (layers.AdaptiveAveragePooling3D, (2, 1, 3), (1, 3, 4, 5, 2), np.mean),
         (layers.AdaptiveMaxPooling3D, 2, (1, 3, 4, 5, 2), np.max)]


@pytest.mark.parametrize("cls,size,shape,reduce", CASES, ids=[c[0].__name__ for c in CASES])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_adaptive_pooling_matches_the_loop(cls, size, shape, reduce, data_format):
    x = rng.standard_normal(shape)
    sizes = (size,) * (len(shape) - 2) if isinstance(size, int) else size
    layer = cls(size, data_format=data_format, dtype="float64")
    want = _reference(x, sizes, reduce)
    if data_format == "channels_first":
        x = np.moveaxis(x, -1, 1)
        want = np.moveaxis(want, -1, 1)
    np.testing.assert_allclose(np.asarray(layer(x)), want, rtol=1e-12)
    assert layer.compute_output_shape((None,) + x.shape[1:]) == (None,) + want.shape[1:]
    check_layer_gradients(layer, x)


def test_adaptive_pooling_arguments_are_checked():
    with pytest.raises(ValueError, match="output_size"):
        layers.AdaptiveAveragePooling2D((2, 3, 4))
    with pytest.raises(ValueError, match="output_size"):
        layers.AdaptiveMaxPooling1D(0)
    with pytest.raises(ValueError, match="rank 4"):
        layers.AdaptiveMaxPooling2D(2)(np.zeros((2, 5, 3), "float32"))
