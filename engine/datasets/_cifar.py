"""Reading the CIFAR python batches Keras caches (extracted, or still in their .tar.gz)."""
import io
import os
import tarfile

import numpy as np

from engine import config
from engine.datasets._cache import cached_path, unpickle


def _decode_keys(batch):
    return {k.decode("utf8") if isinstance(k, bytes) else k: v for k, v in batch.items()}


class CifarFiles:
    """The members of one CIFAR archive: from Keras's extraction folder, the older extracted
    layout, or the downloaded archive itself (read in memory, nothing extracted)."""

    def __init__(self, target, inner, what):
        self.inner = inner
        self.what = what
        found = cached_path(target, inner, target + "_archive", what=what)
        self.folder = self.archive = None
        if os.path.isdir(found):
            nested = os.path.join(found, inner)
            self.folder = nested if os.path.isdir(nested) else found
        else:
            self.archive = found

    def batch(self, name, label_key="labels"):
        """(data (n, 3, 32, 32) uint8, labels) of one batch file."""
        if self.folder is not None:
            path = os.path.join(self.folder, name)
            if not os.path.exists(path):
                raise ValueError(f"{self.what}: {path} is missing; the cached CIFAR folder is incomplete")
            with open(path, "rb") as f:
                batch = _decode_keys(unpickle(f, encoding="bytes"))
        else:
            with tarfile.open(self.archive, "r:*") as tar:
                try:
                    member = tar.extractfile(f"{self.inner}/{name}")
                except KeyError:
                    member = None
                if member is None:
                    raise ValueError(f"{self.what}: {self.archive} has no {self.inner}/{name}")
                batch = _decode_keys(unpickle(io.BytesIO(member.read()), encoding="bytes"))
        data = np.asarray(batch["data"])
        return data.reshape(data.shape[0], 3, 32, 32), batch[label_key]


def channels(x):
    """Keras's image layout: (n, 32, 32, 3) for channels_last."""
    return x.transpose(0, 2, 3, 1) if config.image_data_format() == "channels_last" else x
