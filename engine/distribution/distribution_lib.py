"""Keras 3's `keras.distribution` names over MPI ranks: one device per rank ("cpu:0" .. "cpu:N-1").

engine distributes by data parallelism only: `DataParallel` replicates every variable on every
rank and splits each global batch between the ranks. Keras's ModelParallel, LayoutMap,
TensorLayout and distribute_tensor (which shard variables over a mesh) are not provided.
"""
import contextlib
import math
import os

from engine.distribution import _mpi
from engine.utils.traceback_utils import warn_user

DEFAULT_BATCH_DIM_NAME = "batch"

_distribution = None


def _world_size_and_rank():
    comm = _mpi.world()
    return comm.Get_size(), comm.Get_rank()


def list_devices(device_type=None):
    """The devices of the job: one per MPI rank, as "cpu:0" .. "cpu:N-1" (in a job started with
    `mpirun -n N`; "cpu:0" alone otherwise).

    Args:
        device_type: None or "cpu" (engine computes on CPUs only).

    Returns:
        A list of device strings.
    """
    if device_type is not None and str(device_type).lower() != "cpu":
        raise ValueError(f"list_devices: engine runs on CPUs only; got device_type={device_type!r} "
                         "(pass None or 'cpu')")
    size, _ = _world_size_and_rank()
    return [f"cpu:{i}" for i in range(size)]


def get_device_count(device_type=None):
    """The number of devices `list_devices(device_type)` returns (the number of MPI ranks).

    Args:
        device_type: None or "cpu".
    """
    return len(list_devices(device_type))


def initialize(job_addresses=None, num_processes=None, process_id=None):
    """Join the job's MPI world (mpirun / mpiexec set it up; calling this is optional, as the other
    functions join it on first use). The arguments and Keras's KERAS_DISTRIBUTION_* environment
    variables, when given, are checked against what MPI reports.

    Args:
        job_addresses: accepted for Keras's signature; MPI's launcher knows the hosts, so it must
            be None (or come from KERAS_DISTRIBUTION_JOB_ADDRESSES, which is then ignored).
        num_processes: the expected number of ranks, or None.
        process_id: the expected rank of this process, or None.
    """
    if job_addresses is not None:
        raise ValueError("initialize: job_addresses cannot be honoured; engine's processes find each other "
                         "through MPI: start them with `mpirun -n N python script.py` (or -hosts / a "
                         "hostfile for several machines) and pass job_addresses=None")
    if num_processes is None and "KERAS_DISTRIBUTION_NUM_PROCESSES" in os.environ:
        num_processes = int(os.environ["KERAS_DISTRIBUTION_NUM_PROCESSES"])
    if process_id is None and "KERAS_DISTRIBUTION_PROCESS_ID" in os.environ:
        process_id = int(os.environ["KERAS_DISTRIBUTION_PROCESS_ID"])
    size, rank = _world_size_and_rank()
    if num_processes is not None and int(num_processes) != size:
        raise ValueError(f"initialize: num_processes={num_processes} but MPI started {size} rank(s); "
                         f"launch with `mpirun -n {num_processes}` or drop the argument")
    if process_id is not None and int(process_id) != rank:
        raise ValueError(f"initialize: process_id={process_id} but MPI gave this process rank {rank}; "
                         "MPI assigns ranks, drop the argument")


class DeviceMesh:
    """The ranks of the job arranged as a mesh (Keras's DeviceMesh).

    Args:
        shape: the mesh's shape; its product must be the number of devices.
        axis_names: one name per mesh axis.
        devices: the devices (default: `list_devices()`).
    """

    def __init__(self, shape, axis_names, devices=None):
        if not shape or not axis_names:
            raise ValueError(f"DeviceMesh: shape and axis_names must not be empty; got shape={shape}, "
                             f"axis_names={axis_names}")
        if len(shape) != len(axis_names):
            raise ValueError(f"DeviceMesh: shape and axis_names must have the same length; got shape={shape}, "
                             f"axis_names={axis_names}")
        devices = list_devices() if devices is None else [str(d) for d in _flat(devices)]
        if math.prod(shape) != len(devices):
            raise ValueError(f"DeviceMesh: shape {tuple(shape)} does not match the {len(devices)} devices "
                             f"{devices}")
        self._shape = tuple(shape)
        self._axis_names = list(axis_names)
        self._devices = devices

    @property
    def shape(self):
        """The mesh's shape."""
        return self._shape

    @property
    def axis_names(self):
        """The names of the mesh's axes."""
        return self._axis_names

    @property
    def devices(self):
        """The devices, as a numpy array of the mesh's shape."""
        import numpy as np
        return np.array(self._devices).reshape(self._shape)

    def __repr__(self):
        return f"<DeviceMesh shape={self.shape}, axis_names={self.axis_names}>"


def _flat(devices):
    import numpy as np
    return list(np.asarray(devices).reshape(-1))


class DataParallel:
    """Data-parallel training over the job's MPI ranks (Keras's DataParallel).

    Every rank holds all the variables (bit-identical on every rank after every step). `fit`,
    `evaluate` and `predict` split each global batch of `batch_size` samples between the ranks,
    average the gradients across them and report global metrics, so they give the numbers one
    process gives with the same batches. Call `set_distribution(DataParallel())` before building
    the model and start the script with `mpirun -n N python script.py`. Ranks on one machine
    share its cores: each runs its kernels on cores // (ranks there) threads unless OMP_NUM_THREADS
    is set.

    Args:
        device_mesh: optional 1-D DeviceMesh over all the ranks.
        devices: optional list of devices; it must be all of `list_devices()`, in order.
        auto_shard_dataset: must be True: engine shards the data itself (every rank reads the same
            arrays or dataset and takes its part).
    """

    def __init__(self, device_mesh=None, devices=None, auto_shard_dataset=True):
        if device_mesh is not None and devices is not None:
            raise ValueError("DataParallel: pass device_mesh or devices, not both")
        if not auto_shard_dataset:
            raise ValueError("DataParallel: auto_shard_dataset=False cannot be honoured; engine shards the "
                             "data itself: give every rank the same data and leave auto_shard_dataset=True")
        everything = list_devices()
        if device_mesh is not None:
            if not isinstance(device_mesh, DeviceMesh):
                raise ValueError(f"DataParallel: device_mesh must be a DeviceMesh, got "
                                 f"{type(device_mesh).__name__}")
            if len(device_mesh.shape) != 1:
                warn_user(f"DataParallel: expected a 1-D mesh, got shape {device_mesh.shape}; its first "
                          "axis is used for data-parallel sharding.")
            mesh = device_mesh
        else:
            chosen = everything if devices is None else [str(d) for d in _flat(devices)]
            mesh = DeviceMesh((len(chosen),), [DEFAULT_BATCH_DIM_NAME], chosen)
        if list(_flat(mesh.devices)) != everything:
            raise ValueError(f"DataParallel: the devices must be all the job's ranks {everything}, in order; "
                             f"got {list(_flat(mesh.devices))} (start the job with as many ranks as devices)")
        self._device_mesh = mesh
        self._batch_dim_name = mesh.axis_names[0]
        self._auto_shard_dataset = True
        size, rank = _world_size_and_rank()
        self._num_processes, self._process_id = size, rank
        if size > 1:
            _share_cores()

    @property
    def device_mesh(self):
        """The DeviceMesh of the ranks."""
        return self._device_mesh

    @property
    def batch_dim_name(self):
        """The name of the mesh axis the batch is split over."""
        return self._batch_dim_name

    @property
    def auto_shard_dataset(self):
        """Always True: engine shards the data itself."""
        return self._auto_shard_dataset

    @property
    def num_processes(self):
        """The number of ranks."""
        return self._num_processes

    @property
    def num_model_replicas(self):
        """The number of model replicas (one per rank)."""
        return self._num_processes

    @property
    def data_shard_id(self):
        """This rank's index among the data shards (its MPI rank)."""
        return self._process_id

    @contextlib.contextmanager
    def scope(self):
        """A context inside which this distribution is the current one."""
        previous = distribution()
        set_distribution(self)
        try:
            yield
        finally:
            set_distribution(previous)

    def __repr__(self):
        return f"<DataParallel over {self._num_processes} rank(s)>"


def _share_cores():
    """Ranks started on one machine split its cores between their kernel threads (each would
    otherwise start one thread per core, and they would fight over them); OMP_NUM_THREADS, when
    set, is left to decide. Then the ranks' wait policy follows from whether their threads fit
    the machine's cores (engine/distribution/collectives.py)."""
    from engine import config
    from engine.distribution import collectives
    node = _mpi.world().Split_type(_mpi.mpi().COMM_TYPE_SHARED)
    local = node.Get_size()
    own = _usable_cores()
    if local > 1 and "OMP_NUM_THREADS" not in os.environ:
        config.set_num_threads(max(1, len(own) // local))
    # the node's cores: the union of its ranks' affinity masks (a launcher that binds each rank to
    # a core of its own gives every rank a mask of one)
    seen = node.allgather((own, config.get_num_threads()))
    node.Free()
    cores = set().union(*(mask for mask, _ in seen))
    collectives.set_wait_policy(sum(threads for _, threads in seen) <= len(cores))


def _usable_cores():
    """The cores this process may run on: its affinity mask where the OS has one."""
    try:
        return frozenset(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return frozenset(range(os.cpu_count() or 1))


def distribution():
    """The current distribution (set with `set_distribution`), or None."""
    return _distribution


def set_distribution(value):
    """Make `value` (a DataParallel, or None to stop distributing) the current distribution.

    Args:
        value: a DataParallel instance or None.
    """
    global _distribution
    if value is not None and not isinstance(value, DataParallel):
        raise ValueError(f"set_distribution: engine distributes with DataParallel only; got "
                         f"{type(value).__name__}")
    _distribution = value
