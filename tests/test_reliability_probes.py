"""Hostile inputs of issue #19, each in a child process with a timeout, so that a crash or a hang
is a test failure rather than a stopped run.  (The fork cases are tests/kernels/test_fork.py,
crafted files tests/saving/test_hostile_files.py, changed kernel caches
tests/kernels/test_kernel_size_checks.py; the cases here are the argument checks.)

Each probe prints one line per case: "ok <case>" when the call raised ValueError with every
expected word in its message (or, for valid input, matched its reference)."""
import os
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PRELUDE = textwrap.dedent("""
    import numpy as np
    from engine import Input, Model, layers, ops
    from engine._kernels import recurrent as R

    def refused(case, fn, *words):
        try:
            fn()
        except ValueError as e:
            missing = [w for w in words if w not in str(e)]
            print(("ok " if not missing else f"bad message (lacks {missing}): {e} ") + case)
        except Exception as e:
            print(f"wrong error {type(e).__name__}: {e} " + case)
        else:
            print("accepted " + case)
""")


def _probe(body, timeout=120):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", PRELUDE + textwrap.dedent(body)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.communicate()
        pytest.fail(f"the probe hung (no answer within {timeout} s)")
    assert proc.returncode == 0, f"the probe crashed (exit {proc.returncode}):\n{out}\n{err[-3000:]}"
    lines = out.strip().splitlines()
    assert lines, err
    bad = [line for line in lines if not line.startswith("ok ")]
    assert not bad, "\n".join(bad)
    return lines


def test_out_of_range_axes_are_refused_naming_axis_and_rank():
    lines = _probe("""
        x = np.ones((2, 3), np.float32)
        refused("sum axis=4", lambda: ops.sum(x, axis=4), "axis 4", "rank 2")
        refused("sum axis=-5", lambda: ops.sum(x, axis=-5), "axis -5", "rank 2")
        refused("sum axes (0, 2)", lambda: ops.sum(x, axis=(0, 2)), "axis 2", "rank 2")
        refused("mean axis=9", lambda: ops.mean(x, axis=9), "axis 9", "rank 2")
        refused("max axis=2", lambda: ops.max(x, axis=2), "axis 2", "rank 2")
        refused("softmax axis=4 on 3-D", lambda: ops.softmax(np.ones((2, 3, 4), np.float32), axis=4),
                "axis 4", "rank 3")
        refused("BatchNormalization(axis=5) on 2-D", lambda: layers.BatchNormalization(axis=5)(x),
                "axis 5", "rank 2", "batch_normalization")
        a, b = Input((3,)), Input((3,))
        refused("concatenate axis=3 symbolic", lambda: layers.concatenate([a, b], axis=3),
                "axis 3", "rank 2", "Concatenate")
        # in range: the answers are those of numpy along the axis asked for
        y = np.arange(6, dtype=np.float32).reshape(2, 3)
        assert np.array_equal(ops.sum(y, axis=-1), y.sum(axis=-1))
        assert np.array_equal(ops.mean(y, axis=0), y.mean(axis=0))
        print("ok in-range axes")
    """)
    assert len(lines) == 9


def test_degenerate_hyper_parameters_are_refused_at_construction():
    _probe("""
        refused("Conv2D(2, 0)", lambda: layers.Conv2D(2, 0), "Conv2D", "kernel_size")
        refused("Conv2D strides=0", lambda: layers.Conv2D(2, 3, strides=0), "Conv2D", "strides")
        refused("Conv1D strides=-1", lambda: layers.Conv1D(2, 3, strides=-1), "Conv1D", "strides")
        refused("Conv2D dilation 0", lambda: layers.Conv2D(2, 3, dilation_rate=(1, 0)), "dilation_rate")
        refused("Conv2D filters 0", lambda: layers.Conv2D(0, 3), "filters")
        refused("SeparableConv2D depth_multiplier 0",
                lambda: layers.SeparableConv2D(2, 3, depth_multiplier=0), "depth_multiplier")
        refused("DepthwiseConv2D strides 0", lambda: layers.DepthwiseConv2D(3, strides=0), "strides")
        refused("MaxPooling2D strides 0", lambda: layers.MaxPooling2D(2, strides=0), "MaxPooling2D", "strides")
        refused("AveragePooling1D pool 0", lambda: layers.AveragePooling1D(0), "pool_size")
        refused("MaxPooling1D strides -2", lambda: layers.MaxPooling1D(2, strides=-2), "strides")
        refused("UpSampling2D size 0", lambda: layers.UpSampling2D(0), "size")
        refused("ZeroPadding2D -1", lambda: layers.ZeroPadding2D(-1), "ZeroPadding2D")
        refused("Cropping1D (1, -2)", lambda: layers.Cropping1D((1, -2)), "Cropping1D")
    """)


def test_recurrent_layers_take_strided_fortran_and_float64_input():
    _probe("""
        rng = np.random.default_rng(0)
        base = rng.standard_normal((4, 12, 5)).astype(np.float32)
        variants = {"strided": base[:, ::2], "fortran": np.asfortranarray(base),
                    "float64": base.astype(np.float64), "strided float64": base.astype(np.float64)[:, 1::2]}
        for cls in (layers.LSTM, layers.GRU, layers.SimpleRNN):
            layer = cls(3, return_sequences=True)
            for name, x in variants.items():
                want = np.asarray(layer(np.ascontiguousarray(x, dtype=np.float32)))
                got = np.asarray(layer(x))
                assert got.dtype == np.float32 and np.array_equal(got, want), (cls.__name__, name)
                print(f"ok {cls.__name__} {name}")
        # and training on such input (the gradient flows back through the copy)
        inp = Input(shape=(6, 5))
        model = Model(inp, layers.Dense(1)(layers.LSTM(3)(inp)))
        model.compile("sgd", "mse")
        x = base[:, ::2]
        y = rng.standard_normal((4, 1)).astype(np.float32)
        h = model.fit(x, y, epochs=2, verbose=0, shuffle=False)
        assert np.isfinite(h.history["loss"]).all()
        print("ok LSTM fit on strided input")
    """)


def test_tampered_lstm_cache_is_refused_not_read_out_of_bounds():
    _probe("""
        rng = np.random.default_rng(0)
        x = rng.standard_normal((2, 3, 4)).astype(np.float32)
        W = rng.standard_normal((4, 8)).astype(np.float32)
        U = rng.standard_normal((2, 8)).astype(np.float32)
        h0 = np.zeros((2, 2), np.float32)
        for key, value in (("B", 1 << 20), ("T", 1 << 20), ("u", 64), ("D", 1 << 16)):
            cache = R.lstm_forward(x, W, U, np.zeros(8, np.float32), h0, h0.copy())[-1]
            cache[key] = value
            refused(f"lstm_backward cache[{key!r}] changed",
                    lambda: R.lstm_backward(cache, d_h_last=np.ones((2, 2), np.float32)), "lstm_backward", "cache")
    """)
