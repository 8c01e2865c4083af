"""Kernels in a fork()ed child: a parent that ran a two-thread GEMM forks, and the child's
predict and fit must return (GNU OpenMP cannot start a team in a forked child; engine caps the
child at one thread and warns once).  Each case runs in a fresh interpreter with a timeout, so
a hang fails the test instead of stalling the suite."""
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from engine import config

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The parent: a model, and a GEMM big enough to start a team of two threads.
PARENT = textwrap.dedent("""
    import os, sys, warnings
    import numpy as np
    import engine
    from engine import Input, Model, layers, config
    from engine._kernels import gemm as G
    config.set_num_threads(2)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((512, 512)).astype(np.float32)
    c = np.empty_like(a)
    G.gemm(a, a, c)                                 # a parallel region in the parent
    assert np.allclose(c, a.astype(np.float64) @ a, atol=1e-2)
    inp = Input(shape=(64,))
    model = Model(inp, layers.Dense(1)(layers.Dense(256, activation="relu")(inp)))
    model.compile("sgd", "mse")
    x = rng.standard_normal((256, 64)).astype(np.float32)
    y = rng.standard_normal((256, 1)).astype(np.float32)
    expected = model.predict(x, verbose=0)

    def work(_=None):
        # Runs in the child: predict must match the parent's answer, and fit must run.
        out = model.predict(x, verbose=0)
        h = model.fit(x, y, epochs=1, batch_size=64, verbose=0)
        return float(np.abs(out - expected).max()), engine.config.get_num_threads(), \\
            np.isfinite(h.history["loss"][0])
""")


def _run(body, timeout=90):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="2")
    # A session of its own, so a hung grandchild (the forked child) is killed with its parent.
    proc = subprocess.Popen([sys.executable, "-c", PARENT + textwrap.dedent(body)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"the forked child hung (no answer within {timeout} s)")
    assert proc.returncode == 0, out + err
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


needs_openmp = pytest.mark.skipif(not config.openmp_enabled(), reason="kernels built without OpenMP")


@needs_openmp
def test_os_fork_child_predicts_and_fits():
    proc = _run("""
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            with warnings.catch_warnings(record=True):
                diff, threads, finite = work()
            os.write(w, f"{diff} {threads} {finite}".encode())
            os._exit(0)
        os.close(w)
        reply = os.read(r, 200).decode()
        _, status = os.waitpid(pid, 0)
        assert status == 0, status
        diff, threads, finite = reply.split()
        assert float(diff) < 1e-5, diff          # same answer on one thread
        assert threads == "1" and finite == "True", reply
        assert engine.config.get_num_threads() == 2   # the parent keeps its threads
        print("ok")
    """)
    assert proc.stdout.strip().endswith("ok")


@needs_openmp
def test_multiprocessing_fork_pool_returns():
    proc = _run("""
        import multiprocessing as mp
        with mp.get_context("fork").Pool(2) as pool:
            results = pool.map_async(work, range(2)).get(60)
        for diff, threads, finite in results:
            assert diff < 1e-5 and threads == 1 and finite, results
        print("ok")
    """)
    assert proc.stdout.strip().endswith("ok")


@needs_openmp
def test_child_warns_once_naming_cause_and_remedy():
    proc = _run("""
        from engine._fork import ForkedOpenMPWarning, _after_fork_in_child
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                _after_fork_in_child()      # a second fork-hook run in the same process
            os.write(w, str(len(seen)).encode())
            os._exit(0)
        os.close(w)
        assert os.read(r, 10) == b"0"       # already warned when the child was made
        os.waitpid(pid, 0)
    """)
    # The child's first (automatic) warning went to stderr, once.
    assert proc.stderr.count("ForkedOpenMPWarning") == 1, proc.stderr
    assert "fork()" in proc.stderr and "'spawn'" in proc.stderr and "'forkserver'" in proc.stderr


def test_one_thread_cap_for_every_module_and_lifts():
    """The cap lives once, in the runtime module; every module reads it (the forked-child tests
    above hang if a module starting teams did not)."""
    from engine import _fork
    from engine._kernels import runtime
    try:
        _fork.set_thread_cap(1)
        assert runtime._thread_cap() == 1
        assert config.get_num_threads() == 1
    finally:
        _fork.set_thread_cap(0)
    assert runtime._thread_cap() == 0
