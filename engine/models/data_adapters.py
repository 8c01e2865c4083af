"""What fit / evaluate / predict take as data, as Keras 3's data adapters do: arrays (and lists or
dicts of them, pandas objects), Python generators, engine.utils.PyDataset (with workers loading
ahead), tf.data.Dataset and torch DataLoader (recognised by their module, never imported).

Arrays are prepared once and sliced per step (the fast path). Every other source yields raw
batches `x`, `(x, y)` or `(x, y, sample_weight)` as the user's code made them; the trainer
standardizes each one, and names the batch when one does not fit the model.
"""
import itertools

import numpy as np

from engine.utils.data_utils import unpack_x_y_sample_weight
from engine.utils.py_dataset import PyDataset
from engine.utils.traceback_utils import warn_user


def _module_of(x):
    return type(x).__module__ or ""


def is_tf_dataset(x):
    return _module_of(x).startswith("tensorflow") and hasattr(x, "as_numpy_iterator")


def is_torch_dataloader(x):
    return _module_of(x).startswith("torch.utils.data") and hasattr(x, "__iter__")


def is_pandas(x):
    return _module_of(x).startswith("pandas") and hasattr(x, "to_numpy")


def to_numpy(structure):
    """A batch with every leaf a numpy array (torch / TF tensors and engine tensors converted)."""
    if isinstance(structure, (list, tuple)):
        return type(structure)(to_numpy(s) for s in structure)
    if isinstance(structure, dict):
        return {k: to_numpy(v) for k, v in structure.items()}
    if structure is None or isinstance(structure, np.ndarray):
        return structure
    if hasattr(structure, "detach") and hasattr(structure, "cpu"):      # a torch tensor
        return structure.detach().cpu().numpy()
    if hasattr(structure, "numpy") and not hasattr(structure, "__array_interface__"):
        return np.asarray(structure.numpy())
    return np.asarray(structure)


def pandas_to_numpy(x):
    """A pandas DataFrame / Series as numpy (one array; a dict of columns stays a dict)."""
    if isinstance(x, (list, tuple)):
        return type(x)(pandas_to_numpy(v) for v in x)
    if isinstance(x, dict):
        return {k: pandas_to_numpy(v) for k, v in x.items()}
    return x.to_numpy() if is_pandas(x) else x


def is_batch_source(x):
    """Whether x is something that yields batches (not arrays to slice)."""
    if x is None or isinstance(x, (np.ndarray, list, tuple, dict)) or is_pandas(x):
        return False
    return isinstance(x, PyDataset) or is_tf_dataset(x) or is_torch_dataloader(x) or \
        hasattr(x, "__next__") or (hasattr(x, "__getitem__") and hasattr(x, "__len__")
                                   and not hasattr(x, "shape"))


class BatchSource:
    """Batches from a generator, PyDataset, tf.data.Dataset, DataLoader or other sequence.

    `epoch(steps)` yields up to `steps` raw batches (all the source has when steps is None)
    and calls the dataset's epoch hooks; `close()` stops any workers.
    """

    def __init__(self, x, shuffle=False, rng=None):
        self.x = x
        self.shuffle = shuffle
        self.rng = rng
        self._iterator = None      # a generator's state carries over between epochs
        self._pool = None
        self.exhausted = False
        if isinstance(x, PyDataset) or (hasattr(x, "__getitem__") and hasattr(x, "__len__")
                                        and not hasattr(x, "__next__") and not is_tf_dataset(x)
                                        and not is_torch_dataloader(x)):
            self.kind = "indexed"
        else:
            self.kind = "iterable"

    @property
    def num_batches(self):
        """Batches in one epoch, or None when only the source's end tells."""
        if self.kind == "indexed":
            return self.x.num_batches if isinstance(self.x, PyDataset) else len(self.x)
        if is_torch_dataloader(self.x) or is_tf_dataset(self.x):
            try:
                n = len(self.x)
            except TypeError:
                return None
            return n if n >= 0 else None
        return None

    def epoch(self, steps=None, rank=0, ranks=1):
        """Up to `steps` batches of one epoch; with `ranks` > 1 (data-parallel training), only
        batches rank, rank + ranks, rank + 2 ranks, ... of them (an indexed source loads only
        those)."""
        if self.kind == "indexed":
            yield from self._indexed_epoch(steps, rank, ranks)
        elif ranks == 1:
            yield from self._iterable_epoch(steps)
        else:
            for i, batch in enumerate(self._iterable_epoch(steps)):
                if i % ranks == rank:
                    yield batch

    # -- generators, tf.data, DataLoader ----------------------------------------------------------
    def _iterable_epoch(self, steps):
        x = self.x
        if hasattr(x, "__next__"):
            iterator = x                   # a generator: later epochs continue where this one ends
        elif is_tf_dataset(x):
            iterator = iter(x.as_numpy_iterator())
        else:
            iterator = iter(x)             # a DataLoader or other iterable: one pass per epoch
        count = 0
        while steps is None or count < steps:
            try:
                batch = next(iterator)
            except StopIteration:
                if count == 0 or steps is not None:
                    self.exhausted = True
                return
            count += 1
            yield to_numpy(batch)

    # -- PyDataset and other indexed sequences ---------------------------------------------------
    def _order(self, n):
        if self.shuffle and self.rng is not None:
            return [int(i) for i in self.rng.permutation(n)]
        return list(range(n))

    def _indexed_epoch(self, steps, rank=0, ranks=1):
        dataset = self.x
        n = self.num_batches
        hooks = isinstance(dataset, PyDataset)
        if hooks:
            dataset.on_epoch_begin()
        if n is None:
            indices = range(steps) if steps is not None else _count()
        else:
            indices = self._order(n)
            if steps is not None:
                indices = indices[:steps]
        if ranks > 1:
            indices = itertools.islice(indices, rank, None, ranks)
        workers = dataset.workers if hooks else 1
        processes = hooks and dataset.use_multiprocessing
        if workers > 1 or processes:
            yield from self._ahead(dataset, indices, workers, processes, dataset.max_queue_size)
        else:
            for i in indices:
                yield to_numpy(dataset[i])
        if hooks:
            dataset.on_epoch_end()

    def _ahead(self, dataset, indices, workers, processes, queue_size):
        """Batches in order, each loaded by a worker while earlier ones train; at most
        `queue_size` wait loaded. An exception in a worker is raised here, as itself."""
        import concurrent.futures      # here, not at import: engine imports in a blink
        import multiprocessing
        if self._pool is None:
            if processes:
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    workers, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_set_worker_dataset, initargs=(dataset,))
            else:
                self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="engine-data")
        load = _load_in_worker if processes else dataset.__getitem__
        pending = []
        indices = iter(indices)
        try:
            for i in indices:
                pending.append(self._pool.submit(load, i))
                if len(pending) >= queue_size:
                    break
            while pending:
                batch = pending.pop(0).result()
                nxt = next(indices, None)
                if nxt is not None:
                    pending.append(self._pool.submit(load, nxt))
                yield to_numpy(batch)
        except BaseException:
            for f in pending:
                f.cancel()
            self.close()
            raise

    def close(self):
        """Stop the workers (waiting for the ones still loading)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _count():
    i = 0
    while True:
        yield i
        i += 1


_worker_dataset = None


def _set_worker_dataset(dataset):
    global _worker_dataset
    _worker_dataset = dataset


def _load_in_worker(index):
    return _worker_dataset[index]


def check_batch_source_arguments(x, y, sample_weight, shuffle, what):
    """Keras's rules for a batch source: targets and weights come from it, not beside it."""
    if y is not None:
        raise ValueError(f"{what}: `y` must not be given when x is a {type(x).__name__}: the data must "
                         "yield (x, y) or (x, y, sample_weight) itself")
    if sample_weight is not None:
        raise ValueError(f"{what}: `sample_weight` must not be given when x is a {type(x).__name__}: "
                         "the data must yield (x, y, sample_weight) itself")
    if shuffle and (is_tf_dataset(x) or is_torch_dataloader(x) or hasattr(x, "__next__")):
        if shuffle is True and what == "fit" and not hasattr(x, "__next__"):
            warn_user(f"`shuffle=True` was passed, but is ignored for a {type(x).__name__}: "
                      "shuffle the data in the loader itself.")


def split_batch(batch):
    """A raw batch as (x, y, sample_weight), with a clear error for other shapes."""
    if isinstance(batch, dict):
        return batch, None, None
    if isinstance(batch, list):
        batch = tuple(batch)
    if isinstance(batch, tuple) and len(batch) not in (1, 2, 3):
        raise ValueError(f"A batch must be x, (x,), (x, y) or (x, y, sample_weight); got a tuple of "
                         f"{len(batch)} elements")
    return unpack_x_y_sample_weight(batch)
