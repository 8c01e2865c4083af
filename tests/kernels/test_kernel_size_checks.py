"""A kernel trusts no Python object the caller can reach: a recurrent cache whose sizes or arrays
were changed is refused with a ValueError before the kernel runs (it used to read out of bounds).
Each tampering runs in a child process, so a crash fails the test instead of stopping the run."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from engine._kernels import recurrent as R
from engine._kernels import conv

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _forward(kind, B=3, T=5, D=4, u=6):
    rng = np.random.default_rng(0)
    gates = {"lstm": 4, "gru": 3, "simple_rnn": 1}[kind]
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    W = rng.standard_normal((D, gates * u)).astype(np.float32)
    U = rng.standard_normal((u, gates * u)).astype(np.float32)
    h0 = np.zeros((B, u), np.float32)
    if kind == "lstm":
        b = np.zeros(gates * u, np.float32)
        return R.lstm_forward(x, W, U, b, h0, h0.copy())[-1]
    if kind == "gru":
        b = np.zeros((2, gates * u), np.float32)
        return R.gru_forward(x, W, U, b, h0)[-1]
    b = np.zeros(gates * u, np.float32)
    return R.simple_rnn_forward(x, W, U, b, h0)[-1]


BACKWARD = {"lstm": R.lstm_backward, "gru": R.gru_backward, "simple_rnn": R.simple_rnn_backward}

# (what is changed, how): each makes a size disagree with the arrays the kernel indexes.
TAMPERINGS = [
    ("B", lambda c: c.__setitem__("B", c["B"] * 50)),
    ("T", lambda c: c.__setitem__("T", c["T"] * 50)),
    ("u", lambda c: c.__setitem__("u", c["u"] + 1)),
    ("D", lambda c: c.__setitem__("D", c["D"] * 20)),
    ("G", lambda c: c.__setitem__("G", c["G"] * 2)),
    ("Z", lambda c: c.__setitem__("Z", c["Z"][:1].copy())),
    ("h_seq", lambda c: c.__setitem__("h_seq", np.zeros(3, c["dtype"]))),
    ("x", lambda c: c.__setitem__("x", c["x"][:, :1].copy())),
    ("Hm", lambda c: c.__setitem__("Hm", c["Hm"].astype(np.float64))),
    ("mask", lambda c: c.__setitem__("mask", np.ones((1, 1), np.uint8))),
    ("recurrent_kernel", lambda c: c.__setitem__("recurrent_kernel", c["recurrent_kernel"][:1].copy())),
    ("h0", lambda c: c.__setitem__("h0", np.zeros((c["B"], 2 * c["u"]), c["dtype"])[:, ::2])),
]


@pytest.mark.parametrize("kind", sorted(BACKWARD))
@pytest.mark.parametrize("what,tamper", TAMPERINGS, ids=[t[0] for t in TAMPERINGS])
def test_tampered_cache_is_refused(kind, what, tamper):
    cache = _forward(kind)
    tamper(cache)
    with pytest.raises(ValueError, match=r"_backward: cache\["):
        BACKWARD[kind](cache, d_h_last=np.ones((3, 6), np.float32))


def test_lstm_cache_missing_cell_states_is_refused():
    cache = _forward("lstm")
    del cache["C"]
    with pytest.raises(ValueError, match=r"cache\['C'\] is missing"):
        R.lstm_backward(cache, d_h_last=np.ones((3, 6), np.float32))


def test_untampered_cache_still_runs():
    for kind, backward in BACKWARD.items():
        dx = backward(_forward(kind), d_h_last=np.ones((3, 6), np.float32))[0]
        assert dx.shape == (3, 5, 4) and np.isfinite(dx).all()


def test_tampered_lstm_cache_in_a_child_does_not_crash():
    """The issue's case, end to end in a fresh process: a grown batch size used to read out of
    bounds (SIGSEGV under AddressSanitizer); now the child exits normally with the ValueError."""
    code = textwrap.dedent("""
        import numpy as np
        from engine._kernels import recurrent as R
        rng = np.random.default_rng(0)
        x = rng.standard_normal((2, 3, 4)).astype(np.float32)
        W = rng.standard_normal((4, 8)).astype(np.float32)
        U = rng.standard_normal((2, 8)).astype(np.float32)
        h0 = np.zeros((2, 2), np.float32)
        cache = R.lstm_forward(x, W, U, np.zeros(8, np.float32), h0, h0.copy())[-1]
        cache["B"] = 4096
        cache["T"] = 4096
        try:
            R.lstm_backward(cache, d_h_last=np.ones((2, 2), np.float32))
        except ValueError as e:
            print("refused:", e)
    """)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("refused:"), proc.stdout + proc.stderr


def test_conv_input_gradient_with_wide_padding_matches_reference():
    """Padding wider than the kernel takes the im2col path, not Winograd's (whose transposed
    padding would be negative); checked against a float64 loop."""
    rng = np.random.default_rng(0)
    N, H, W, C, F = 1, 5, 5, 48, 48     # C * F >= 2048: a Winograd-sized convolution
    kh = kw = 3
    pads = (3, 3, 3, 3)
    w = rng.standard_normal((kh, kw, C, F))
    Ho, Wo = H + 6 - 2, W + 6 - 2
    gy = rng.standard_normal((N, Ho, Wo, F))
    dx = np.empty((N, H, W, C), np.float32)
    conv.conv2d_backward_input(gy.astype(np.float32), w.astype(np.float32), dx, (1, 1), (1, 1), pads)
    ref = np.zeros((N, H + 6, W + 6, C))
    for i in range(Ho):
        for j in range(Wo):
            ref[0, i:i + kh, j:j + kw] += np.einsum("abcf,f->abc", w, gy[0, i, j])
    np.testing.assert_allclose(dx, ref[:, 3:3 + H, 3:3 + W], rtol=1e-4, atol=1e-4)
