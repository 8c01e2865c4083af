"""Data-parallel training over MPI ranks, with Keras 3's `keras.distribution` names.

    from engine import distribution
    distribution.set_distribution(distribution.DataParallel())
    model = ...           # build and compile as usual
    model.fit(x, y, batch_size=256)   # 256 is the global batch; run with mpirun -n N

mpi4py is imported on first use (pip install "engine[mpi]"). See README.md, "Distributed
training", for what is guaranteed.
"""
from engine.distribution.distribution_lib import (DataParallel, DeviceMesh, distribution, get_device_count,
                                                  initialize, list_devices, set_distribution)

__all__ = ["DataParallel", "DeviceMesh", "distribution", "get_device_count", "initialize", "list_devices",
           "set_distribution"]
