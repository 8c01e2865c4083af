"""The MPI world, opened on first use: mpi4py is imported here and nowhere else, so engine runs
without it until the distribution API is used.

Opening the world also installs the fault handler: an exception that reaches the top of any rank
is printed with that rank's number and then aborts every rank (MPI_Abort), so a failure on one
rank ends the job within seconds instead of leaving the others waiting in a collective forever.
"""
import sys
import time

_comm = None
_mpi = None
_previous_excepthook = None


def mpi():
    """The mpi4py.MPI module (imported on first call), with a clear error when it is missing."""
    global _mpi
    if _mpi is None:
        try:
            from mpi4py import MPI
        except ImportError as e:
            raise ImportError(
                "engine.distribution needs mpi4py and an MPI runtime: pip install \"engine[mpi]\" "
                f"(or pip install mpi4py mpich); importing mpi4py failed with: {e}") from None
        _mpi = MPI
    return _mpi


def world():
    """MPI.COMM_WORLD, with the fault handler installed on the first call."""
    global _comm, _previous_excepthook
    if _comm is None:
        _comm = mpi().COMM_WORLD
        if _comm.Get_size() > 1 and _previous_excepthook is None:
            _previous_excepthook = sys.excepthook
            sys.excepthook = _abort_on_exception
    return _comm


def _abort_on_exception(kind, value, tb):
    """sys.excepthook on every rank of a multi-rank job: print the error, then end the job."""
    import traceback
    rank = _comm.Get_rank() if _comm is not None else "?"
    text = "".join(traceback.format_exception(kind, value, tb))
    sys.stderr.write(f"[engine.distribution] rank {rank} failed; aborting all ranks.\n{text}")
    sys.stderr.flush()
    sys.stdout.flush()
    # mpirun forwards a rank's output through its proxy; an abort right away can end the job
    # before the message gets out (seen once in .ci/mpi: a failed job with empty stderr)
    time.sleep(0.5)
    _comm.Abort(1)
