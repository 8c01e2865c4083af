"""pad_sequences (both paths) and timeseries_dataset_from_array against values written out here."""
import numpy as np
import pytest

import engine
from engine import layers, utils
from engine.preprocessing import sequence


def test_pad_sequences_defaults_pre_padding_and_truncation():
    seqs = [[1], [2, 3], [4, 5, 6]]
    out = utils.pad_sequences(seqs)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [[0, 0, 1], [0, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(utils.pad_sequences(seqs, value=-1), [[-1, -1, 1], [-1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(utils.pad_sequences(seqs, padding="post"), [[1, 0, 0], [2, 3, 0], [4, 5, 6]])
    np.testing.assert_array_equal(utils.pad_sequences(seqs, maxlen=2), [[0, 1], [2, 3], [5, 6]])
    np.testing.assert_array_equal(utils.pad_sequences(seqs, maxlen=2, truncating="post"), [[0, 1], [2, 3], [4, 5]])
    assert sequence.pad_sequences is utils.pad_sequences
    assert engine.preprocessing.sequence.pad_sequences(seqs).shape == (3, 3)


def test_pad_sequences_empty_rows_float_strings_and_timestep_shapes():
    out = utils.pad_sequences([[], [1.5, 2.5]], dtype="float32", maxlen=3)
    np.testing.assert_array_equal(out, [[0, 0, 0], [0, 1.5, 2.5]])
    words = utils.pad_sequences([["a"], ["b", "c"]], dtype=object, value="<pad>")
    assert words.tolist() == [["<pad>", "a"], ["b", "c"]]
    vectors = utils.pad_sequences([np.ones((1, 2)), np.ones((3, 2))], dtype="float32")
    assert vectors.shape == (2, 3, 2) and vectors[0, :2].sum() == 0
    assert utils.pad_sequences([]).shape == (0, 0)
    with pytest.raises(ValueError, match="dtype=object"):
        utils.pad_sequences([["a"]], value="x")
    with pytest.raises(ValueError, match="padding"):
        utils.pad_sequences([[1]], padding="middle")
    with pytest.raises(ValueError, match="iterables"):
        utils.pad_sequences([1, 2])
    with pytest.raises(ValueError, match="timesteps of shape"):
        utils.pad_sequences([np.ones((1, 2)), np.ones((1, 3))])


def test_timeseries_windows_follow_kerass_docstring_example():
    data = np.arange(99)
    ds = utils.timeseries_dataset_from_array(data, None, sequence_length=10, sampling_rate=2, sequence_stride=3,
                                             batch_size=8)
    windows = np.concatenate(list(ds))
    np.testing.assert_array_equal(windows[0], np.arange(0, 20, 2))
    np.testing.assert_array_equal(windows[1], np.arange(3, 23, 2))
    np.testing.assert_array_equal(windows[-1], np.arange(78, 98, 2))
    assert len(windows) == 27 and len(ds) == 4
    assert isinstance(ds, utils.ArrayBatches)


def test_timeseries_targets_start_end_and_unbatched():
    data = np.arange(100, dtype="float32")[:, None] * np.array([1.0, -1.0])
    targets = np.arange(100) * 10
    ds = utils.timeseries_dataset_from_array(data, targets, sequence_length=5, batch_size=16, start_index=10,
                                             end_index=60)
    x, y = ds[0]
    assert x.shape == (16, 5, 2) and y.shape == (16,)
    np.testing.assert_array_equal(x[0, :, 0], np.arange(10, 15))
    np.testing.assert_array_equal(y[:3], [100, 110, 120])          # target of the window's first step
    total = sum(len(b[1]) for b in ds)
    assert total == 50 - 4
    single = utils.timeseries_dataset_from_array(data[:20], targets[:20], sequence_length=3, batch_size=None)
    window, target = single[2]
    assert window.shape == (3, 2) and target == 20


def test_timeseries_shuffle_is_kerass_permutation_of_starts():
    data = np.arange(30)
    ds = utils.timeseries_dataset_from_array(data, None, sequence_length=4, batch_size=None, shuffle=True, seed=7)
    starts = np.arange(27)
    np.random.RandomState(7).shuffle(starts)
    np.testing.assert_array_equal([w[0] for w in ds], starts)


def test_timeseries_errors():
    with pytest.raises(ValueError, match="sampling_rate"):
        utils.timeseries_dataset_from_array(np.arange(10), None, 3, sampling_rate=0)
    with pytest.raises(ValueError, match="end_index"):
        utils.timeseries_dataset_from_array(np.arange(10), None, 3, end_index=20)
    with pytest.raises(ValueError, match="Grain"):
        utils.timeseries_dataset_from_array(np.arange(10), None, 3, format="grain")


def test_timeseries_dataset_trains_a_model_like_its_arrays():
    rng = np.random.default_rng(0)
    series = rng.standard_normal((60, 2)).astype("float32")
    ds = utils.timeseries_dataset_from_array(series[:-5], series[5:, 0], sequence_length=5, batch_size=8)
    x = np.stack([series[i:i + 5] for i in range(51)])
    y = series[5:56, 0]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in ds]), x)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in ds]), y)
    model = engine.Sequential([layers.Input((5, 2)), layers.Flatten(), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    for batch_x, batch_y in ds:           # train_on_batch over the dataset's batches
        model.train_on_batch(batch_x, batch_y)
    assert np.isfinite(model.predict(x, verbose=0)).all()
