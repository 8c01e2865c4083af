"""Recurrent kernels (engine._kernels.recurrent) against float64 step-by-step numpy references
written here, and their backward passes against central finite differences of those references.

Keras 3 semantics: LSTM gates i, f, c, o; GRU gates z, r, h (reset_after with a (2, 3u) bias of
input and recurrent rows, reset_before with a (3u,) bias and r applied to h_{t-1} before U_h);
h_seq in processing order (reversed under go_backwards); a masked step (mask[b, t] == 0, t the
input time) carries h (and c) over; rec_mask multiplies h_{t-1} where it enters the recurrent
kernel only."""

import numpy as np
import pytest

import engine
from engine._kernels import recurrent as R
from engine._kernels import runtime


# ------------------------------------------------------------------ references (float64)

def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


ACT = {
    None: lambda z: z,
    "linear": lambda z: z,
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "relu": lambda z: np.maximum(z, 0.0),
    "hard_sigmoid": lambda z: np.clip(z / 6.0 + 0.5, 0.0, 1.0),  # Keras 3: relu6(x + 3) / 6
}


def _steps(T, go_backwards):
    return range(T - 1, -1, -1) if go_backwards else range(T)


def _carry(mask, t, new, old):
    if mask is None:
        return new
    return np.where((np.asarray(mask)[:, t] != 0)[:, None], new, old)


def ref_lstm(x, W, U, b, h0, c0, mask=None, rec_mask=None, go_backwards=False,
             activation="tanh", recurrent_activation="sigmoid"):
    f, g = ACT[activation], ACT[recurrent_activation]
    u = h0.shape[1]
    h, c, seq = h0, c0, []
    for t in _steps(x.shape[1], go_backwards):
        hm = h if rec_mask is None else h * rec_mask
        z = x[:, t] @ W + hm @ U
        if b is not None:
            z = z + b
        i, fg, cc, o = g(z[:, :u]), g(z[:, u:2 * u]), f(z[:, 2 * u:3 * u]), g(z[:, 3 * u:])
        c_new = fg * c + i * cc
        h_new = o * f(c_new)
        h, c = _carry(mask, t, h_new, h), _carry(mask, t, c_new, c)
        seq.append(h)
    return np.stack(seq, axis=1), h, c


def ref_gru(x, W, U, b, h0, mask=None, rec_mask=None, go_backwards=False,
            activation="tanh", recurrent_activation="sigmoid", reset_after=True):
    f, g = ACT[activation], ACT[recurrent_activation]
    u = h0.shape[1]
    h, seq = h0, []
    for t in _steps(x.shape[1], go_backwards):
        hm = h if rec_mask is None else h * rec_mask
        xw = x[:, t] @ W
        if reset_after:
            if b is not None:
                xw = xw + b[0]
            hu = hm @ U if b is None else hm @ U + b[1]
            z = g(xw[:, :u] + hu[:, :u])
            r = g(xw[:, u:2 * u] + hu[:, u:2 * u])
            hh = f(xw[:, 2 * u:] + r * hu[:, 2 * u:])
        else:
            if b is not None:
                xw = xw + b
            z = g(xw[:, :u] + hm @ U[:, :u])
            r = g(xw[:, u:2 * u] + hm @ U[:, u:2 * u])
            hh = f(xw[:, 2 * u:] + (r * hm) @ U[:, 2 * u:])
        h = _carry(mask, t, z * h + (1.0 - z) * hh, h)
        seq.append(h)
    return np.stack(seq, axis=1), h


def ref_simple(x, W, U, b, h0, mask=None, rec_mask=None, go_backwards=False, activation="tanh"):
    f = ACT[activation]
    h, seq = h0, []
    for t in _steps(x.shape[1], go_backwards):
        hm = h if rec_mask is None else h * rec_mask
        z = x[:, t] @ W + hm @ U
        if b is not None:
            z = z + b
        h = _carry(mask, t, f(z), h)
        seq.append(h)
    return np.stack(seq, axis=1), h


# ------------------------------------------------------------------ one interface for the three cells

# kind -> (gates, parameter names, bias shape as a function of u)
KINDS = {
    "lstm": (4, ("x", "W", "U", "b", "h0", "c0"), lambda u: (4 * u,)),
    "gru": (3, ("x", "W", "U", "b", "h0"), lambda u: (2, 3 * u)),          # reset_after=True
    "gru_before": (3, ("x", "W", "U", "b", "h0"), lambda u: (3 * u,)),     # reset_after=False
    "simple": (1, ("x", "W", "U", "b", "h0"), lambda u: (u,)),
}


def make_params(kind, B, T, D, u, seed, bias=True, scale=1.0):
    gates, names, bshape = KINDS[kind]
    rng = np.random.default_rng(seed)
    p = dict(
        x=rng.standard_normal((B, T, D)) * scale,
        W=rng.standard_normal((D, gates * u)) * 0.6,
        U=rng.standard_normal((u, gates * u)) * 0.6,
        b=rng.standard_normal(bshape(u)) * 0.5 if bias else None,
        h0=rng.standard_normal((B, u)) * 0.5,
    )
    if kind == "lstm":
        p["c0"] = rng.standard_normal((B, u)) * 0.5
    return p


def _opts_for(kind, opts):
    opts = dict(opts)
    if kind == "simple":
        opts.pop("recurrent_activation", None)
    return opts


def reference(kind, p, **opts):
    """(h_seq, h_last[, c_last]) in float64."""
    q = {k: (None if v is None else np.asarray(v, np.float64)) for k, v in p.items()}
    opts = _opts_for(kind, opts)
    if kind == "lstm":
        return ref_lstm(q["x"], q["W"], q["U"], q["b"], q["h0"], q["c0"], **opts)
    if kind == "simple":
        return ref_simple(q["x"], q["W"], q["U"], q["b"], q["h0"], **opts)
    return ref_gru(q["x"], q["W"], q["U"], q["b"], q["h0"], reset_after=(kind == "gru"), **opts)


def kernel_forward(kind, p, dtype=np.float64, **opts):
    """(outputs tuple, cache) from the kernel, with every float array cast to dtype."""
    c = {k: (None if v is None else np.ascontiguousarray(v, dtype)) for k, v in p.items()}
    opts = _opts_for(kind, opts)
    if "rec_mask" in opts and opts["rec_mask"] is not None:
        opts["rec_mask"] = np.ascontiguousarray(opts["rec_mask"], dtype)
    if kind == "lstm":
        *outs, cache = R.lstm_forward(c["x"], c["W"], c["U"], c["b"], c["h0"], c["c0"], **opts)
    elif kind == "simple":
        *outs, cache = R.simple_rnn_forward(c["x"], c["W"], c["U"], c["b"], c["h0"], **opts)
    else:
        *outs, cache = R.gru_forward(c["x"], c["W"], c["U"], c["b"], c["h0"], reset_after=(kind == "gru"),
                                     **opts)
    return tuple(outs), cache


def kernel_backward(kind, cache, upstream, dtype=np.float64, **flags):
    """Gradients as a dict keyed by parameter name; upstream is a tuple like the outputs (entries may
    be None)."""
    up = [None if g is None else np.ascontiguousarray(g, dtype) for g in upstream]
    if kind == "lstm":
        res = R.lstm_backward(cache, up[0], up[1], up[2], **flags)
    elif kind == "simple":
        res = R.simple_rnn_backward(cache, up[0], up[1], **flags)
    else:
        res = R.gru_backward(cache, up[0], up[1], **flags)
    return dict(zip(KINDS[kind][1], res))


def upstream_weights(kind, B, T, u, seed, which=("seq", "h", "c")):
    rng = np.random.default_rng(seed + 1000)
    ws = [rng.standard_normal((B, T, u)), rng.standard_normal((B, u))]
    if kind == "lstm":
        ws.append(rng.standard_normal((B, u)))
    keys = ("seq", "h", "c")
    return tuple(w if keys[i] in which else None for i, w in enumerate(ws))


def loss_of(outs, ws):
    return sum(float(np.sum(w * o)) for o, w in zip(outs, ws) if w is not None)


def numeric_grads(kind, p, ws, eps=1e-6, **opts):
    """Central differences of loss_of(reference(...)) for every parameter that is not None."""
    grads = {}
    for name in KINDS[kind][1]:
        if p[name] is None:
            grads[name] = None
            continue
        base = np.array(p[name], np.float64)
        gr = np.zeros_like(base)
        flat, gflat = base.reshape(-1), gr.reshape(-1)
        for k in range(flat.size):
            old = flat[k]
            flat[k] = old + eps
            lp = loss_of(reference(kind, dict(p, **{name: base}), **opts), ws)
            flat[k] = old - eps
            lm = loss_of(reference(kind, dict(p, **{name: base}), **opts), ws)
            flat[k] = old
            gflat[k] = (lp - lm) / (2 * eps)
        grads[name] = gr
    return grads


# mask rows: a step in the middle masked, the first steps masked, all steps, no step (row 4 if B > 3)
MASK = np.array([[1, 1, 0, 1, 0],
                 [0, 0, 1, 1, 1],
                 [1, 1, 1, 1, 1],
                 [0, 0, 0, 0, 0]], dtype=np.int64)


def _mask(B, T, dtype=np.float32):
    return MASK[:B, :T].astype(dtype)


def _rec_mask(B, u, seed=7):
    # dropout-like: zeros and 1/(1-rate) scales
    rng = np.random.default_rng(seed)
    return (rng.random((B, u)) > 0.3) / 0.7


def _assert_close(actual, expected, rtol, atol, what):
    if expected is None:
        assert actual is None, f"{what}: expected None"
        return
    assert actual is not None, f"{what}: got None"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


@pytest.fixture
def threads_restored():
    before = runtime.get_num_threads()
    yield
    engine.config.set_num_threads(before)


# ------------------------------------------------------------------ forward against the reference

FORWARD_CASES = [
    # (kind, B, T, D, u, options)
    ("lstm", 3, 5, 4, 3, {}),
    ("lstm", 2, 4, 3, 2, dict(go_backwards=True)),
    ("lstm", 3, 5, 2, 3, dict(mask="m", rec_mask="r")),
    ("lstm", 4, 5, 3, 2, dict(mask="m", go_backwards=True)),
    ("lstm", 3, 4, 4, 3, dict(activation="relu", recurrent_activation="hard_sigmoid")),
    ("lstm", 2, 3, 2, 2, dict(activation=None, recurrent_activation="tanh")),
    ("lstm", 2, 3, 2, 3, dict(activation="sigmoid", recurrent_activation="linear", bias=False)),
    ("lstm", 5, 7, 6, 9, dict(mask="m", rec_mask="r")),              # 4 rows of MASK then unmasked
    ("gru", 3, 5, 4, 3, {}),
    ("gru", 3, 5, 3, 2, dict(mask="m", rec_mask="r", go_backwards=True)),
    ("gru", 2, 4, 2, 3, dict(activation="relu", recurrent_activation="hard_sigmoid", bias=False)),
    ("gru", 5, 7, 6, 9, dict(mask="m")),
    ("gru_before", 3, 5, 4, 3, {}),
    ("gru_before", 3, 5, 3, 2, dict(mask="m", rec_mask="r", go_backwards=True)),
    ("gru_before", 2, 4, 2, 3, dict(activation="linear", recurrent_activation="tanh", bias=False)),
    ("gru_before", 5, 7, 6, 9, dict(rec_mask="r")),
    ("simple", 3, 5, 4, 3, {}),
    ("simple", 3, 5, 3, 2, dict(mask="m", rec_mask="r", go_backwards=True)),
    ("simple", 2, 4, 2, 3, dict(activation="relu", bias=False)),
    ("simple", 2, 4, 2, 3, dict(activation="hard_sigmoid")),
    ("simple", 2, 4, 2, 3, dict(activation="sigmoid", mask="m")),
    ("simple", 5, 7, 6, 9, dict(activation=None, mask="m")),
    ("lstm", 1, 1, 1, 1, dict(mask="m")),                              # one step, masked
    ("lstm", 2, 1, 3, 2, dict(go_backwards=True)),
    ("gru", 1, 1, 1, 1, {}),
    ("gru_before", 2, 1, 3, 2, dict(go_backwards=True)),
    ("simple", 1, 1, 1, 1, {}),
]


def _build_case(kind, B, T, D, u, options, seed):
    options = dict(options)
    bias = options.pop("bias", True)
    p = make_params(kind, B, T, D, u, seed, bias=bias)
    if options.get("mask") == "m":
        m = np.ones((B, T), np.float32)
        m[:min(B, 4), :min(T, 5)] = _mask(min(B, 4), min(T, 5))
        options["mask"] = m
    if options.get("rec_mask") == "r":
        options["rec_mask"] = _rec_mask(B, u)
    return p, options


def _case_id(case):
    kind, B, T, D, u, options = case
    return f"{kind}-B{B}T{T}D{D}u{u}-" + ",".join(f"{k}={v}" for k, v in options.items())


@pytest.mark.parametrize("case", FORWARD_CASES, ids=_case_id)
def test_forward_matches_reference(case):
    kind, B, T, D, u, options = case
    p, opts = _build_case(kind, B, T, D, u, options, seed=len(_case_id(case)))
    outs, _ = kernel_forward(kind, p, **opts)
    ref = reference(kind, p, **opts)
    assert len(outs) == len(ref)
    for name, o, r in zip(("h_seq", "h_last", "c_last"), outs, ref):
        assert o.dtype == np.float64
        _assert_close(o, r, 1e-12, 1e-12, name)


def test_masked_steps_carry_the_state_and_go_backwards_reverses_the_output():
    """Direct checks of the semantics (not through the reference)."""
    p = make_params("lstm", 4, 5, 3, 2, seed=3)
    mask = _mask(4, 5)
    (h_seq, h_last, c_last), _ = kernel_forward("lstm", p, mask=mask)
    # row 3 is fully masked: every output is h0, the final cell state c0
    np.testing.assert_array_equal(h_seq[3], np.repeat(p["h0"][3:4], 5, axis=0))
    np.testing.assert_array_equal(c_last[3], p["c0"][3])
    # row 0, step 2 masked: output repeats step 1; step 4 masked: h_last is step 3's output
    np.testing.assert_array_equal(h_seq[0, 2], h_seq[0, 1])
    np.testing.assert_array_equal(h_last[0], h_seq[0, 3])
    # row 1, first steps masked: h0 repeated
    np.testing.assert_array_equal(h_seq[1, :2], np.repeat(p["h0"][1:2], 2, axis=0))
    # go_backwards on reversed inputs gives the same outputs as the forward direction
    rev = dict(p, x=p["x"][:, ::-1].copy())
    (hb, hb_last, cb_last), _ = kernel_forward("lstm", rev, mask=mask[:, ::-1].copy(), go_backwards=True)
    np.testing.assert_allclose(hb, h_seq, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(cb_last, c_last, rtol=1e-13, atol=1e-14)
    np.testing.assert_array_equal(hb_last, hb[:, -1])


@pytest.mark.parametrize("mask_dtype", [np.bool_, np.uint8, np.int8, np.int32, np.float32, np.float64])
def test_mask_dtypes(mask_dtype):
    p = make_params("gru", 4, 5, 3, 2, seed=11)
    mask = MASK.astype(mask_dtype)
    if mask_dtype in (np.float32, np.float64):
        mask = mask * 0.5                        # any nonzero value runs the step
    outs, _ = kernel_forward("gru", p, mask=mask)
    ref = reference("gru", p, mask=MASK)
    for o, r in zip(outs, ref):
        np.testing.assert_allclose(o, r, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ backward against finite differences

GRAD_CASES = [
    ("lstm", {}),
    ("lstm", dict(mask="m", rec_mask="r")),
    ("lstm", dict(mask="m", go_backwards=True)),
    ("lstm", dict(rec_mask="r", go_backwards=True, bias=False)),
    ("lstm", dict(activation="relu", recurrent_activation="hard_sigmoid", mask="m")),
    ("lstm", dict(activation="linear", recurrent_activation="tanh")),
    ("lstm", dict(activation="sigmoid", recurrent_activation="linear", bias=False)),
    ("gru", {}),
    ("gru", dict(mask="m", rec_mask="r")),
    ("gru", dict(mask="m", go_backwards=True, bias=False)),
    ("gru", dict(activation="relu", recurrent_activation="hard_sigmoid", rec_mask="r")),
    ("gru", dict(activation=None, recurrent_activation="tanh", go_backwards=True)),
    ("gru_before", {}),
    ("gru_before", dict(mask="m", rec_mask="r")),
    ("gru_before", dict(mask="m", go_backwards=True, bias=False)),
    ("gru_before", dict(activation="relu", recurrent_activation="hard_sigmoid", rec_mask="r")),
    ("gru_before", dict(activation="linear", recurrent_activation="tanh", go_backwards=True)),
    ("simple", {}),
    ("simple", dict(mask="m", rec_mask="r")),
    ("simple", dict(mask="m", go_backwards=True, bias=False)),
    ("simple", dict(activation="relu", rec_mask="r")),
    ("simple", dict(activation="hard_sigmoid", go_backwards=True)),
    ("simple", dict(activation="sigmoid", mask="m")),
    ("simple", dict(activation="linear")),
]

SHAPE = dict(B=3, T=5, D=4, u=3)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("B,T,D,u", [(1, 1, 1, 1), (2, 1, 3, 2), (1, 3, 1, 1)])
def test_backward_on_degenerate_shapes(kind, B, T, D, u):
    p, opts = _build_case(kind, B, T, D, u, dict(go_backwards=T > 1), seed=B * 100 + T * 10 + u)
    ws = upstream_weights(kind, B, T, u, 3)
    _, cache = kernel_forward(kind, p, **opts)
    got = kernel_backward(kind, cache, ws)
    want = numeric_grads(kind, p, ws, **opts)
    for name in KINDS[kind][1]:
        _assert_close(got[name], want[name], 1e-5, 1e-7, f"d{name}")


def _grad_id(case):
    kind, options = case
    return f"{kind}-" + (",".join(f"{k}={v}" for k, v in options.items()) or "plain")


@pytest.mark.parametrize("case", GRAD_CASES, ids=_grad_id)
def test_backward_matches_finite_differences(case):
    kind, options = case
    B, T, D, u = SHAPE["B"], SHAPE["T"], SHAPE["D"], SHAPE["u"]
    seed = len(_grad_id(case)) * 31 + 5
    p, opts = _build_case(kind, B, T, D, u, options, seed=seed)
    ws = upstream_weights(kind, B, T, u, seed)
    _, cache = kernel_forward(kind, p, **opts)
    got = kernel_backward(kind, cache, ws)
    want = numeric_grads(kind, p, ws, **opts)
    for name in KINDS[kind][1]:
        _assert_close(got[name], want[name], 1e-5, 1e-7, f"d{name}")


@pytest.mark.parametrize("kind,which", [(k, w) for k in KINDS for w in [("seq",), ("h",), ("c",), ()]
                                        if k == "lstm" or w != ("c",)])
def test_backward_with_partial_upstream_gradients(kind, which):
    """None for d_h_seq / d_h_last / d_c_last counts as zero."""
    B, T, D, u = 2, 4, 3, 2
    p, opts = _build_case(kind, B, T, D, u, dict(mask="m", go_backwards=True), seed=21)
    ws = upstream_weights(kind, B, T, u, 21, which=which)
    _, cache = kernel_forward(kind, p, **opts)
    got = kernel_backward(kind, cache, ws)
    if not which:
        for name in KINDS[kind][1]:
            np.testing.assert_array_equal(got[name], np.zeros_like(p[name]))
        return
    want = numeric_grads(kind, p, ws, **opts)
    for name in KINDS[kind][1]:
        _assert_close(got[name], want[name], 1e-5, 1e-7, f"d{name}")


# ------------------------------------------------------------------ flags, cache reuse, inputs untouched

@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("bias", [True, False])
def test_grad_flags_skip_results_and_leave_the_rest_bit_identical(kind, bias):
    B, T, D, u = 3, 5, 4, 3
    p, opts = _build_case(kind, B, T, D, u, dict(mask="m", rec_mask="r", bias=bias), seed=4)
    ws = upstream_weights(kind, B, T, u, 4)
    _, cache = kernel_forward(kind, p, **opts)
    full = kernel_backward(kind, cache, ws)
    weights = ("W", "U", "b")
    for input_grad in (True, False):
        for weight_grads in (True, False):
            part = kernel_backward(kind, cache, ws, input_grad=input_grad, weight_grads=weight_grads)
            for name in KINDS[kind][1]:
                skipped = (name == "x" and not input_grad) or (name in weights and not weight_grads)
                if skipped or full[name] is None:
                    assert part[name] is None, (name, input_grad, weight_grads)
                else:
                    assert part[name].dtype == full[name].dtype
                    np.testing.assert_array_equal(part[name], full[name], err_msg=name)
    if not bias:
        assert full["b"] is None


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_do_not_modify_their_inputs(kind, dtype):
    B, T, D, u = 3, 5, 4, 3
    p, opts = _build_case(kind, B, T, D, u, dict(mask="m", rec_mask="r"), seed=8)
    p = {k: (None if v is None else v.astype(dtype)) for k, v in p.items()}
    opts["rec_mask"] = opts["rec_mask"].astype(dtype)
    before = {k: (None if v is None else v.copy()) for k, v in p.items()}
    mask_before, rm_before = opts["mask"].copy(), opts["rec_mask"].copy()
    ws = tuple(w.astype(dtype) for w in upstream_weights(kind, B, T, u, 8))
    ws_before = [w.copy() for w in ws]
    c = dict(p)
    outs, cache = kernel_forward(kind, c, dtype=dtype, **opts)
    g1 = kernel_backward(kind, cache, ws, dtype=dtype)
    g2 = kernel_backward(kind, cache, ws, dtype=dtype)     # a second backward on the same cache
    for name in KINDS[kind][1]:
        if p[name] is not None:
            np.testing.assert_array_equal(p[name], before[name], err_msg=name)
        if g1[name] is not None:
            np.testing.assert_array_equal(g1[name], g2[name], err_msg=name)
    np.testing.assert_array_equal(opts["mask"], mask_before)
    np.testing.assert_array_equal(opts["rec_mask"], rm_before)
    for w, wb in zip(ws, ws_before):
        np.testing.assert_array_equal(w, wb)


# ------------------------------------------------------------------ float32 against float64

@pytest.fixture
def simd_path(isa_level):
    """Each gate-math path this CPU has (conftest.py's isa_level)."""
    return isa_level


@pytest.mark.parametrize("kind,options", [
    ("lstm", {}),
    ("lstm", dict(mask="m", rec_mask="r", go_backwards=True)),
    ("lstm", dict(activation="relu", recurrent_activation="hard_sigmoid")),
    ("gru", dict(mask="m", rec_mask="r")),
    ("gru_before", dict(mask="m", go_backwards=True)),
    ("simple", dict(mask="m", rec_mask="r")),
    ("simple", dict(activation="sigmoid")),
], ids=lambda v: v if isinstance(v, str) else ",".join(f"{k}={x}" for k, x in v.items()) or "plain")
@pytest.mark.parametrize("u", [9, 16])
def test_float32_agrees_with_float64(kind, options, simd_path, u):
    """u = 9: the gate runs (and the fused LSTM cell of the default activations) use whole 8-wide
    SIMD vectors plus a scalar tail; u = 16: whole vectors only.  Inputs scaled by 3 reach the
    tails of exp/tanh."""
    B, T, D = 5, 7, 6
    p, opts = _build_case(kind, B, T, D, u, options, seed=12)
    p["x"] = p["x"] * 3
    ws = upstream_weights(kind, B, T, u, 12)
    outs64, c64 = kernel_forward(kind, p, np.float64, **opts)
    outs32, c32 = kernel_forward(kind, p, np.float32, **opts)
    for o32, o64 in zip(outs32, outs64):
        assert o32.dtype == np.float32
        np.testing.assert_allclose(o32, o64, rtol=1e-4, atol=2e-5)
    for o64, r in zip(outs64, reference(kind, p, **opts)):
        np.testing.assert_allclose(o64, r, rtol=1e-12, atol=1e-12)
    g64 = kernel_backward(kind, c64, ws, np.float64)
    g32 = kernel_backward(kind, c32, ws, np.float32)
    for name in KINDS[kind][1]:
        if g64[name] is None:
            assert g32[name] is None
            continue
        assert g32[name].dtype == np.float32
        scale = max(1.0, float(np.abs(g64[name]).max()))
        np.testing.assert_allclose(g32[name], g64[name], rtol=2e-4, atol=2e-5 * scale, err_msg=name)


@pytest.mark.parametrize("kind", list(KINDS))
def test_float32_saturated_gates_stay_finite(kind, simd_path):
    """Pre-activations of +-100 and more: the float32 exp is clamped, sigmoid/tanh saturate to
    0/1/+-1 without NaN or inf, and gradients through saturated gates vanish as in float64."""
    B, T, D, u = 4, 5, 3, 9
    p, opts = _build_case(kind, B, T, D, u, dict(mask="m"), seed=13)
    p["x"] = p["x"] * 200
    ws = upstream_weights(kind, B, T, u, 13)
    outs64, c64 = kernel_forward(kind, p, np.float64, **opts)
    outs32, c32 = kernel_forward(kind, p, np.float32, **opts)
    for o32, o64 in zip(outs32, outs64):
        assert np.all(np.isfinite(o32))
        np.testing.assert_allclose(o32, o64, rtol=1e-4, atol=1e-5)
    g64 = kernel_backward(kind, c64, ws, np.float64)
    g32 = kernel_backward(kind, c32, ws, np.float32)
    for name in KINDS[kind][1]:
        assert np.all(np.isfinite(g32[name])), name
        scale = max(1.0, float(np.abs(g64[name]).max()))
        np.testing.assert_allclose(g32[name], g64[name], rtol=1e-3, atol=1e-4 * scale, err_msg=name)


# ------------------------------------------------------------------ threads: batch split into slabs

# Mirrors csrc/recurrent.pyx: a team of threads only when B*T*gates*u >= _PARALLEL_MIN_WORK, and at
# most B // _MIN_ROWS_PER_SLAB slabs.
_PARALLEL_MIN_WORK = 32768
_MIN_ROWS_PER_SLAB = 4


def _slabs(B, T, gates, u, threads):
    n = 1 if B * T * gates * u < _PARALLEL_MIN_WORK else threads
    return max(1, min(n, B // _MIN_ROWS_PER_SLAB))


@pytest.mark.skipif(not engine.config.openmp_enabled(), reason="built without OpenMP")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind,T,u", [("lstm", 30, 24), ("gru", 30, 32), ("gru_before", 30, 32),
                                      ("simple", 40, 64)])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_one_thread_and_several_threads_agree(kind, T, u, dtype, bias, threads_restored):
    """B = 13 is not a multiple of the slab count, so slabs have different sizes; masks and
    rec_mask vary by row so a row computed in the wrong slab would show.  (The outputs and dx are
    bit-identical; the weight and bias gradients are sums of per-slab partials, so the test allows
    roundoff.)"""
    B, D = 13, 5
    gates = KINDS[kind][0]
    assert _slabs(B, T, gates, u, 1) == 1
    assert _slabs(B, T, gates, u, 2) == 2 and _slabs(B, T, gates, u, 3) == 3
    rng = np.random.default_rng(99)
    p = make_params(kind, B, T, D, u, seed=99, bias=bias)
    p["U"] = p["U"] / np.sqrt(u)      # a contracting recurrence: roundoff must not grow over T steps
    p = {k: (None if v is None else v.astype(dtype)) for k, v in p.items()}
    mask = (rng.random((B, T)) > 0.2).astype(np.uint8)
    mask[5, :] = 0
    opts = dict(mask=mask, rec_mask=_rec_mask(B, u).astype(dtype), go_backwards=True)
    ws = tuple(w.astype(dtype) for w in upstream_weights(kind, B, T, u, 99))
    results = {}
    for threads in (1, 2, 3):
        engine.config.set_num_threads(threads)
        outs, cache = kernel_forward(kind, p, dtype, **opts)
        results[threads] = (outs, kernel_backward(kind, cache, ws, dtype))
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    outs1, g1 = results[1]
    for threads in (2, 3):
        outs, g = results[threads]
        for o, o1 in zip(outs, outs1):
            np.testing.assert_allclose(o, o1, **tol)
        for name in KINDS[kind][1]:
            if g1[name] is None:
                assert name == "b" and not bias and g[name] is None
                continue
            scale = max(1.0, float(np.abs(g1[name]).max()))
            np.testing.assert_allclose(g[name], g1[name], rtol=tol["rtol"], atol=tol["atol"] * scale,
                                       err_msg=f"d{name}, {threads} threads")
    if dtype == np.float64:
        for o, r in zip(outs1, reference(kind, p, **opts)):
            np.testing.assert_allclose(o, r, rtol=1e-11, atol=1e-12)


# ------------------------------------------------------------------ argument checks

def _lstm_args(dtype=np.float64, B=2, T=3, D=4, u=3):
    p = make_params("lstm", B, T, D, u, seed=1)
    return {k: v.astype(dtype) for k, v in p.items()}


def _call_lstm(**over):
    a = _lstm_args()
    kw = {}
    for k in ("mask", "rec_mask", "go_backwards", "activation", "recurrent_activation"):
        if k in over:
            kw[k] = over.pop(k)
    a.update(over)
    return R.lstm_forward(a["x"], a["W"], a["U"], a["b"], a["h0"], a["c0"], **kw)


BAD_LSTM = [
    (dict(x=np.zeros((2, 3))), r"x must be 3-D, got shape \(2, 3\)"),
    (dict(x=np.zeros((2, 3, 4), np.int32)), r"x must be float32 or float64, got int32"),
    (dict(x=[[[0.0] * 4] * 3] * 2), r"x must be a numpy array"),
    (dict(x=np.zeros((2, 3, 8))[:, :, ::2]), r"x must be C-contiguous \(shape \(2, 3, 4\)"),
    (dict(x=np.zeros((0, 3, 4))), r"nonzero batch.*\(0, 3, 4\)"),
    (dict(W=np.zeros((5, 12))), r"kernel must have shape \(features, 4\*units\).*4.*\(2, 3, 4\).*\(5, 12\)"),
    (dict(W=np.zeros((4, 10))), r"kernel must have shape.*\(4, 10\)"),
    (dict(W=np.zeros((4, 12), np.float32)), r"kernel has dtype float32 but x has dtype float64"),
    (dict(U=np.zeros((3, 8))), r"recurrent_kernel must have shape \(3, 12\).*\(4, 12\).*\(3, 8\)"),
    (dict(U=np.zeros((2, 12))), r"recurrent_kernel must have shape \(3, 12\).*got \(2, 12\)"),
    (dict(b=np.zeros((9,))), r"bias must have shape \(12,\), got \(9,\)"),
    (dict(b=np.zeros((1, 12))), r"bias must be 1-D, got shape \(1, 12\)"),
    (dict(h0=np.zeros((3, 3))), r"h0 must have shape \(2, 3\), got \(3, 3\)"),
    (dict(h0=None), r"h0 must be a numpy array, got NoneType"),
    (dict(c0=np.zeros((2, 2))), r"c0 must have shape \(2, 3\), got \(2, 2\)"),
    (dict(c0=np.zeros((2, 3), np.float32)), r"c0 has dtype float32"),
    (dict(mask=np.ones((2, 4))), r"mask must have shape \(batch, timesteps\) = \(2, 3\), got \(2, 4\)"),
    (dict(mask=np.ones((3, 2))), r"mask must have shape .*\(2, 3\), got \(3, 2\)"),
    (dict(mask=[[1, 1, 1], [1, 1, 1]]), r"mask must be a numpy array or None"),
    (dict(mask=np.array([["a"] * 3] * 2)), r"mask must be bool or numeric"),
    (dict(rec_mask=np.ones((2, 4))), r"rec_mask must have shape \(2, 3\), got \(2, 4\)"),
    (dict(rec_mask=np.ones((2, 3), np.float32)), r"rec_mask has dtype float32"),
    (dict(activation="gelu"), r"unsupported activation 'gelu'"),
    (dict(recurrent_activation="softmax"), r"unsupported recurrent_activation 'softmax'"),
]


@pytest.mark.parametrize("over,message", BAD_LSTM, ids=[m for _, m in BAD_LSTM])
def test_lstm_forward_rejects_bad_arguments(over, message):
    with pytest.raises(ValueError, match=message):
        _call_lstm(**over)


def test_gru_and_simple_rnn_forward_reject_bad_arguments():
    p = make_params("gru", 2, 3, 4, 3, seed=1)
    x, W, U, h0 = p["x"], p["W"], p["U"], p["h0"]
    with pytest.raises(ValueError, match=r"bias must be 2-D, got shape \(9,\)"):
        R.gru_forward(x, W, U, np.zeros(9), h0)                      # reset_after wants (2, 3u)
    with pytest.raises(ValueError, match=r"bias must have shape \(2, 9\), got \(2, 8\)"):
        R.gru_forward(x, W, U, np.zeros((2, 8)), h0)
    with pytest.raises(ValueError, match=r"bias must be 1-D, got shape \(2, 9\)"):
        R.gru_forward(x, W, U, np.zeros((2, 9)), h0, reset_after=False)
    with pytest.raises(ValueError, match=r"kernel must have shape \(features, 3\*units\).*\(4, 8\)"):
        R.gru_forward(x, np.zeros((4, 8)), U, None, h0)
    with pytest.raises(ValueError, match=r"recurrent_kernel must have shape \(3, 9\).*got \(3, 12\)"):
        R.gru_forward(x, W, np.zeros((3, 12)), None, h0)
    with pytest.raises(ValueError, match=r"h0 must have shape \(2, 3\), got \(2, 4\)"):
        R.gru_forward(x, W, U, None, np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"unsupported activation 'swish'"):
        R.gru_forward(x, W, U, None, h0, activation="swish")
    q = make_params("simple", 2, 3, 4, 3, seed=1)
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\), got \(4,\)"):
        R.simple_rnn_forward(q["x"], q["W"], q["U"], np.zeros(4), q["h0"])
    with pytest.raises(ValueError, match=r"recurrent_kernel must have shape \(3, 3\).*got \(4, 4\)"):
        R.simple_rnn_forward(q["x"], q["W"], np.zeros((4, 4)), None, q["h0"])
    with pytest.raises(ValueError, match=r"x has dtype float64"):
        R.simple_rnn_forward(q["x"], q["W"].astype(np.float32), q["U"], None, q["h0"])
    with pytest.raises(ValueError, match=r"mask must have shape \(batch, timesteps\) = \(2, 3\), got \(3,\)"):
        R.simple_rnn_forward(q["x"], q["W"], q["U"], None, q["h0"], mask=np.ones(3))


def test_backward_rejects_bad_arguments():
    p = make_params("lstm", 2, 3, 4, 3, seed=1)
    *_, cache = R.lstm_forward(p["x"], p["W"], p["U"], p["b"], p["h0"], p["c0"])
    with pytest.raises(ValueError, match=r"d_h_seq must have shape \(2, 3, 3\), got \(2, 3, 4\)"):
        R.lstm_backward(cache, d_h_seq=np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"d_h_last must have shape \(2, 3\), got \(3, 2\)"):
        R.lstm_backward(cache, d_h_last=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"d_c_last must have shape \(2, 3\), got \(2,\)|d_c_last must be 2-D"):
        R.lstm_backward(cache, d_c_last=np.zeros((2,)))
    with pytest.raises(ValueError, match=r"d_h_last has dtype float32 but x has dtype float64"):
        R.lstm_backward(cache, d_h_last=np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"cache must be the cache returned by the matching forward"):
        R.gru_backward(cache)                                        # an LSTM cache
    with pytest.raises(ValueError, match=r"cache must be the cache returned by the matching forward"):
        R.simple_rnn_backward({"kind": "gru"})
    with pytest.raises(ValueError, match=r"cache must be the cache"):
        R.lstm_backward(None)
