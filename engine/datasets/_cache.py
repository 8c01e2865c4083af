"""Finding Keras's cached data set files and reading them safely. Nothing is ever downloaded.

Keras keeps downloads in `$KERAS_HOME/datasets` (`~/.keras/datasets` without KERAS_HOME; `/tmp/.keras`
when the home folder is not writable); engine reads the same files, under the same names.
"""
import io
import os
import pickle
import zipfile

import numpy as np

from engine.utils.file_utils import keras_home

# What Keras's own restricted unpickler allows: numpy array reconstruction and nothing else.
_ALLOWED_GLOBALS = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
                    ("numpy._core.multiarray", "_reconstruct")}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain Python data and numpy arrays; any other class is refused (a data file that
    names one is corrupt or malicious)."""

    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"Refusing to load {module}.{name} from a data set file: only numpy arrays "
                                     "and plain Python data are read")


def unpickle(stream, encoding="ASCII"):
    """Load a pickle that may hold only plain Python data and numpy arrays."""
    return _ArraysOnlyUnpickler(stream, encoding=encoding).load()


def _candidate_folders(subdir):
    home = os.path.expanduser(keras_home())
    folders = [os.path.join(home, subdir)]
    if not os.access(home, os.W_OK):          # where Keras's get_file falls back to
        folders.append(os.path.join("/tmp", ".keras", subdir))
    return folders


def cached_path(*names, subdir="datasets", what):
    """The first of `names` (a file or folder) found in Keras's cache folder, else a ValueError that says
    which file to place where."""
    for folder in _candidate_folders(subdir):
        for name in names:
            path = os.path.join(folder, name)
            if os.path.exists(path):
                return path
    where = _candidate_folders(subdir)[0]
    raise ValueError(f"{what}: {os.path.join(where, names[0])} is missing. engine never downloads data sets; place "
                     f"Keras's file {names[0]!r} in {where} (the folder Keras's own load_data downloads it to; set "
                     "KERAS_HOME to use another Keras folder)")


def load_npz(path):
    """The arrays of an .npz file; object arrays (lists of sequences) are unpickled safely."""
    arrays = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if member.endswith(".npy"):
                arrays[member[:-4]] = _read_npy(io.BytesIO(archive.read(member)))
    return arrays


def _read_npy(stream):
    try:
        return np.lib.format.read_array(stream, allow_pickle=False)
    except ValueError:                      # an object array: its data is a pickle after the header
        stream.seek(0)
        major, _ = np.lib.format.read_magic(stream)
        if major == 1:
            np.lib.format.read_array_header_1_0(stream)
        else:
            np.lib.format.read_array_header_2_0(stream)
        return unpickle(stream)


def shuffled(seed, *arrays):
    """The arrays permuted by one numpy RandomState(seed) shuffle of their indices (Keras's order)."""
    indices = np.arange(len(arrays[0]))
    np.random.RandomState(seed).shuffle(indices)
    return tuple(a[indices] for a in arrays)


def check_test_split(test_split):
    """A ValueError unless 0 <= test_split < 1."""
    if not 0 <= test_split < 1:
        raise ValueError(f"load_data: test_split must be in [0, 1), got {test_split}")


def split(x, y, test_split):
    """(x_train, y_train), (x_test, y_test): the first 1 - test_split of the samples train."""
    n = int(len(x) * (1 - test_split))
    return (np.array(x[:n]), np.array(y[:n])), (np.array(x[n:]), np.array(y[n:]))
