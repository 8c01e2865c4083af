"""timeseries_dataset_from_array: sliding windows over an array, as batches."""
import numpy as np

from engine.utils.dataset_utils import ArrayBatches


def _check_window_args(data, start_index, end_index, sampling_rate, sequence_stride):
    n = len(data)
    if start_index:
        if start_index < 0:
            raise ValueError(f"timeseries_dataset_from_array: start_index must be 0 or greater, got {start_index}")
        if start_index >= n:
            raise ValueError(f"timeseries_dataset_from_array: start_index must be lower than the length of the data "
                             f"({n}), got {start_index}")
    if end_index:
        if start_index and end_index <= start_index:
            raise ValueError(f"timeseries_dataset_from_array: end_index must be higher than start_index; got "
                             f"start_index={start_index}, end_index={end_index}")
        if end_index >= n:
            raise ValueError(f"timeseries_dataset_from_array: end_index must be lower than the length of the data "
                             f"({n}), got {end_index}")
        if end_index <= 0:
            raise ValueError(f"timeseries_dataset_from_array: end_index must be higher than 0, got {end_index}")
    for name, value in (("sampling_rate", sampling_rate), ("sequence_stride", sequence_stride)):
        if value <= 0:
            raise ValueError(f"timeseries_dataset_from_array: {name} must be higher than 0, got {value}")
        if value >= n:
            raise ValueError(f"timeseries_dataset_from_array: {name} must be lower than the length of the data "
                             f"({n}), got {value}")


def timeseries_dataset_from_array(data, targets, sequence_length, sequence_stride=1, sampling_rate=1,
                                  batch_size=128, shuffle=False, seed=None, start_index=None, end_index=None,
                                  format="tf"):
    """Batches of sliding windows over a timeseries.

    Window k holds the steps start_k, start_k + sampling_rate, ..., (sequence_length steps) of
    `data[start_index:end_index]`, with start_k = k * sequence_stride; its target is
    `targets[start_index + start_k]`. Windows that would run past the end are left out.

    Args:
        data: an array (or list) of timesteps along its first axis.
        targets: the target of each timestep (the window starting there gets it), or None.
        sequence_length: the number of steps in a window.
        sequence_stride: the offset between the starts of consecutive windows.
        sampling_rate: the offset between the steps inside a window.
        batch_size: windows per batch (None: one window per item).
        shuffle: shuffle the windows (their starts are permuted by numpy's RandomState(seed), as Keras
            does; Keras's tf.data also reshuffles within a buffer, which engine does not repeat).
        seed: the shuffling seed.
        start_index, end_index: use only data[start_index:end_index].
        format: "tf" (the default): engine returns an ArrayBatches in place of a tf.data.Dataset.

    Returns:
        An ArrayBatches (PyDataset's protocol) of (windows, targets) batches, or windows alone when
        targets is None; windows have shape (batch, sequence_length) + data.shape[1:].
    """
    if format not in ("tf", "grain"):
        raise ValueError(f'timeseries_dataset_from_array: format must be "tf" or "grain", got {format!r}')
    if format == "grain":
        raise ValueError("timeseries_dataset_from_array: engine has no Grain; leave format='tf' (the default), "
                         "which gives an ArrayBatches dataset in place of a tf.data.Dataset")
    data = np.asarray(data)
    _check_window_args(data, start_index, end_index, sampling_rate, sequence_stride)
    start = start_index or 0
    stop = end_index if end_index is not None else len(data)
    num_windows = stop - start - (sequence_length - 1) * sampling_rate
    if targets is not None:
        targets = np.asarray(targets)
        num_windows = min(num_windows, len(targets))
    starts = np.arange(0, max(num_windows, 0), sequence_stride)
    if shuffle:
        if seed is None:
            seed = np.random.randint(1e6)
        np.random.RandomState(seed).shuffle(starts)
    steps = np.arange(sequence_length) * sampling_rate
    window_data = data[start:stop]
    target_data = None if targets is None else targets[start:]

    def load(indices):
        first = starts[indices]
        windows = window_data[np.asarray(first)[..., None] + steps]
        return windows if target_data is None else (windows, target_data[first])
    return ArrayBatches(len(starts), load, batch_size)
