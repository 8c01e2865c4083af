"""Data-parallel training over MPI (engine.distribution), on this machine's loopback.

Few jobs, each making many checks (_worker.py): one process without a distribution (the
reference), one `mpirun -n 2` job under DataParallel, and two fault jobs. Every job runs under a
timeout, so a hang in a collective fails the test instead of stalling CI.
"""
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import engine

pytest.importorskip("mpi4py", reason="engine.distribution needs mpi4py: pip install \"engine[mpi]\"")
MPIRUN = shutil.which("mpirun") or shutil.which("mpiexec")
pytestmark = pytest.mark.skipif(MPIRUN is None, reason="no mpirun / mpiexec on PATH (pip install mpich)")

WORKER = os.path.join(os.path.dirname(__file__), "_worker.py")
TIMEOUT = 120


def _run(mode, out, ranks, *extra):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(engine.__file__)), OMP_NUM_THREADS="1")
    cmd = [sys.executable, WORKER, mode, str(out), *extra]
    if ranks:
        cmd = [MPIRUN, "-n", str(ranks)] + cmd
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    return proc, time.monotonic() - start


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("mpi")
    for mode, ranks in (("reference", 0), ("parallel", 2)):
        proc, _ = _run(mode, out, ranks)
        assert proc.returncode == 0, f"{mode} job failed:\n{proc.stdout}\n{proc.stderr}"
    loaded = {}
    for mode in ("reference", "parallel"):
        with open(out / f"{mode}.json") as f:
            report = json.load(f)
        loaded[mode] = (report, dict(np.load(out / f"{mode}.npz")))
    return loaded


def test_resume_with_backup_and_restore_on_other_rank_counts(results, tmp_path):
    pytest.importorskip("h5py", reason="BackupAndRestore writes .weights.h5 files (h5py)")
    backup = tmp_path / "backup"
    proc, _ = _run("crash", tmp_path, 2, str(backup))
    assert proc.returncode != 0 and "interrupted at epoch 3" in proc.stderr, proc.stderr
    assert sorted(os.listdir(backup)) == ["latest.weights.h5", "training_metadata.json"]
    copy = tmp_path / "backup-copy"
    shutil.copytree(backup, copy)
    for ranks, folder in ((0, backup), (2, copy)):
        proc, _ = _run("resume", tmp_path, ranks, str(folder))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert not os.path.exists(folder)                     # deleted once fit completes
    reference = results["reference"][1]
    for ranks in (1, 2):
        resumed = dict(np.load(tmp_path / f"resume{ranks}.npz"))
        assert int(resumed.pop("epochs")) == 2                # epochs 3 and 4 only
        for i in range(len(resumed)):
            _close(resumed[f"w{i}"], reference[f"uninterrupted{i}"], f"resumed on {ranks} rank(s): weight {i}")


def _close(a, b, what):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=2e-4, atol=2e-5,
                               err_msg=what)


def test_two_ranks_train_as_one_process(results):
    (ref, ref_arrays), (par, par_arrays) = results["reference"], results["parallel"]
    # arrays (shuffled, uneven last batch with a rank left empty, validation), PyDataset, generator
    for key in ("history", "history_pydataset", "history_generator"):
        assert sorted(ref[key]) == sorted(par[key]), key
        for name in ref[key]:
            _close(par[key][name], ref[key][name], f"{key}[{name}]")
    for key in ("evaluate", "evaluate_generator"):
        assert sorted(ref[key]) == sorted(par[key]), key
        for name in ref[key]:
            _close(par[key][name], ref[key][name], f"{key}[{name}]")
    ref_arrays = {k: v for k, v in ref_arrays.items() if not k.startswith("uninterrupted")}
    assert sorted(ref_arrays) == sorted(par_arrays)
    for name in ref_arrays:
        assert par_arrays[name].shape == ref_arrays[name].shape, name
        _close(par_arrays[name], ref_arrays[name], name)


def test_three_ranks_train_as_one_process(results, tmp_path):
    # more than 2 ranks: gradients are reduced onto rank 0 and broadcast (see gradients.py)
    proc, _ = _run("three", tmp_path, 3)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(tmp_path / "three.json") as f:
        three = json.load(f)
    arrays = dict(np.load(tmp_path / "three.npz"))
    (ref, ref_arrays) = results["reference"]
    assert three["checks"]["identical after every step"] == [12, 0]
    for key in ("history", "evaluate"):
        for name in ref[key]:
            _close(three[key][name], ref[key][name], f"3 ranks: {key}[{name}]")
    for name in arrays:
        _close(arrays[name], ref_arrays[name], f"3 ranks: {name}")


def test_ranks_bit_identical_after_every_step(results):
    checks = results["parallel"][0]["checks"]
    assert checks["identical after every step"] == [12, 0]           # 2 epochs of 6 steps
    assert checks["unsynchronized identical after every step"] == [6, 0]
    assert checks["ranks agree"] and checks["predictions agree"]


def test_steps_are_planned_and_tables_travel_as_rows(results):
    checks = results["parallel"][0]["checks"]
    # 2 epochs of 6 steps: the first full and the first last (one-row) batch are traced, the
    # other 10 replay their plan, which reduces the gradients across ranks as the tape does
    assert checks["planned steps"] == 10 and checks["sparse planned steps"] == 10
    # part 1's table (20 rows) takes 48 ids a step, reduced dense, except in the one-row last
    # batches (12 ids); the 66000-row table always goes as rows; both trained as one process
    # (test_two_ranks_train_as_one_process compares their weights) and bit-identical ranks
    assert checks["tables gathered as rows"] == 2
    assert checks["sparse tables gathered as rows"] == 12
    assert checks["sparse identical after every step"] == [12, 0]
    # part 1's table shares its bucket (decided when reported); the 66000-row one, alone in its
    # bucket, is decided when the reduction finishes, in every step
    assert checks["tables decided at finish"] == 0 and checks["sparse tables decided at finish"] == 12


def test_rank_zero_state_broadcast_in_place(results):
    checks = results["parallel"][0]["checks"]
    assert checks["broadcast into"] == [True, True]
    # every rank raises, naming the array and both layouts
    assert len(checks["broadcast mismatch"]) == 2
    for message in checks["broadcast mismatch"]:
        assert message is not None and "second has shape (2, 2)" in message and "(2, 1)" in message, message
    assert checks["weights from rank 0"]


def test_state_sent_again_only_after_a_write(results):
    resent = results["parallel"][0]["checks"]["state resent"]
    # the first fit of a new model sends its state (one broadcast of all its arrays); the next
    # fit and an evaluate after a fit send none
    assert resent.pop("first fit")[0] == 1
    assert resent.pop("fit after fit") == [0, True]
    assert resent.pop("evaluate after fit") == [0, True]
    # a write on rank 1 alone between two fits: rank 0's state is sent again, the ranks agree
    for write, (broadcasts, identical) in resent.items():
        assert broadcasts == 1 and identical, (write, broadcasts, identical)


def test_ranks_reducing_different_tables_as_rows_raise(results):
    checks = results["parallel"][0]["checks"]
    for key, seen in (("different tables", "[[0], [1]]"), ("different deferred tables", "[[0, 1], [1, 0]]")):
        messages = checks[key]
        assert len(messages) == 2 and all(m and f"variables by rank: {seen}" in m for m in messages), messages


def test_table_alone_in_its_bucket_decided_at_finish(results):
    # [kind handed to the optimizer, max error against the float64 sum, distinct digests over ranks]
    (rows_kind, rows_err, rows_digests), (dense_kind, dense_err, dense_digests) = \
        results["parallel"][0]["checks"]["deferred tables"]
    assert (rows_kind, dense_kind) == ("RowGradient", "NoneType")
    assert rows_err < 1e-5 and dense_err < 1e-5
    assert rows_digests == dense_digests == 1


def test_synchronized_batch_norm_against_one_process(results):
    checks = results["parallel"][0]["checks"]
    for name in ("output", "grad x", "grad gamma", "grad beta", "moving mean"):
        assert checks[f"synchronized bn {name}"] < 1e-5, (name, checks[f"synchronized bn {name}"])


def test_sharding(results):
    checks = results["parallel"][0]["checks"]
    # (count, offset, total, rows) per rank for rows 8..12, indices [5, 3, 9], and the lone row 40
    assert checks["shards"] == [[[3, 0, 5, 3], [2, 0, 3, 2], [1, 0, 1, 1]],
                                [[2, 3, 5, 2], [1, 2, 3, 1], [0, 0, 1, 1]]]
    assert checks["shard indices"] == [["slice(8, 11, None)", [5, 3], "slice(40, 41, None)"],
                                       ["slice(11, 13, None)", [9], "slice(40, 41, None)"]]
    assert checks["devices"] == ["cpu:0", "cpu:1"]
    polls, threads_fit_cores = checks["wait policy"]
    assert polls == threads_fit_cores


def test_only_rank_zero_writes(results):
    checks = results["parallel"][0]["checks"]
    assert checks["files"] == ["ckpt.weights.h5", "log.csv", "saved_by_rank0.keras"]
    assert checks["csv lines"] == 3                                   # header + 2 epochs, written once


@pytest.mark.parametrize("mode, message", [("raise", "boom on rank 1 at step 2"), ("kill", "signal 9")])
def test_a_failing_rank_ends_the_job(tmp_path, mode, message):
    proc, seconds = _run(mode, tmp_path, 2)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    if mode == "raise":
        assert "rank 1 failed; aborting all ranks" in proc.stderr
    assert seconds < 60


def test_api_in_a_one_process_job(results):
    # checked by the reference job (a plain process is an MPI job of one rank)
    assert results["reference"][0]["checks"]["api"] == {
        "devices": ["cpu:0"], "count": 1, "data parallel": [1, 0, "batch"], "scope": [True, True],
        "errors": ["auto_shard_dataset", "devices must be all", "CPUs only", "DataParallel only",
                   "job_addresses", "process_id"]}
