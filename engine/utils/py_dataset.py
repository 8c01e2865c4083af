"""PyDataset (keras.utils.PyDataset, also keras.utils.Sequence): batches by index, loadable
ahead of the training step in worker threads or processes."""


class PyDataset:
    """Base class for data given to `fit`, `evaluate` and `predict` batch by batch.

    Subclasses implement `__getitem__(index)`, returning one batch as `x`, `(x, y)` or
    `(x, y, sample_weight)` (numpy arrays, or lists / dicts of them), and `__len__()`, the number
    of batches per epoch (leave it out for an endless dataset: then pass `steps_per_epoch`).
    `on_epoch_begin()` / `on_epoch_end()` are called around each epoch (reshuffle there).

    Args:
        workers: how many workers load batches ahead of the training step (0 or 1: batches
            are loaded in the training loop itself, one at a time, as in Keras).
        use_multiprocessing: load in worker processes instead of threads (for `__getitem__`
            code that holds the GIL). The dataset is pickled to each worker process, which
            starts with the "spawn" method (safe with OpenMP kernels); its class must be
            importable from a module.
        max_queue_size: how many batches may wait loaded ahead of the step.
    """

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        if int(workers) < 0:
            raise ValueError(f"PyDataset: workers must be 0 or more, got {workers}")
        if int(max_queue_size) < 1:
            raise ValueError(f"PyDataset: max_queue_size must be at least 1, got {max_queue_size}")
        self._workers = int(workers)
        self._use_multiprocessing = bool(use_multiprocessing)
        self._max_queue_size = int(max_queue_size)

    # A subclass that forgot super().__init__() still gets Keras's defaults.
    @property
    def workers(self):
        return self.__dict__.get("_workers", 1)

    @workers.setter
    def workers(self, value):
        self._workers = int(value)

    @property
    def use_multiprocessing(self):
        return self.__dict__.get("_use_multiprocessing", False)

    @use_multiprocessing.setter
    def use_multiprocessing(self, value):
        self._use_multiprocessing = bool(value)

    @property
    def max_queue_size(self):
        return self.__dict__.get("_max_queue_size", 10)

    @max_queue_size.setter
    def max_queue_size(self, value):
        self._max_queue_size = int(value)

    def __getitem__(self, index):
        """Batch number `index` (0-based)."""
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__(index) returning a batch")

    @property
    def num_batches(self):
        """Batches per epoch: len(self), or None for an endless dataset (no __len__)."""
        if type(self).__len__ is PyDataset.__len__:
            return None
        return len(self)

    def __len__(self):
        raise TypeError(f"{type(self).__name__} has no __len__: it is an endless dataset")

    def on_epoch_begin(self):
        """Called at the start of every epoch."""

    def on_epoch_end(self):
        """Called at the end of every epoch."""


Sequence = PyDataset
