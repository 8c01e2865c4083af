"""GEMM benchmark: engine vs numpy (np.matmul) vs PyTorch (if importable).

    python bench/gemm.py [--peak GFLOPS] [--dtype float32|float64] [--quick]

Prints one markdown table: GFLOP/s on square products 64..2048 and on the
small/skinny products of Keras training steps (forward X.W, weight gradient
X^T.dY, input gradient dY.W^T, operands passed as transposed views, no copies),
the ratio engine/numpy and the fraction of the measured FMA peak.  The skinny
products are also timed through `engine.ops.matmul` on engine Tensors (the
kernel plus the op's whole per-call cost; transposed views are read in place, as
the kernel reads them), against numpy.matmul on the same views.  The peak is
measured with the kernel module's FMA-only loop (AVX2 and AVX-512), with all
threads and with one.  A last block repeats 1024^3 on one thread (numpy and
torch in a child process started with OPENBLAS_NUM_THREADS=1 etc., since their
pools cannot be resized after import without extra packages).

Timing: each measurement is the best of several runs, each long enough (>= ~2 ms) for the
clock; every round measures each shape once per library, the libraries taking turns shape by
shape, and the table shows each library's best round (--rounds, default 7) with the ratio of
those bests, and the median of the rounds' own engine/numpy ratios with their range.  The host's
speed drifts within minutes, so only measurements taken close together compare: the best rounds
of two libraries may come from different minutes, while each round's ratio pairs two
measurements taken a fraction of a second apart, so their median is the steadier of the two.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from engine._kernels import gemm as eg  # noqa: E402
from engine._kernels import runtime  # noqa: E402

try:
    import torch
except Exception:  # torch is optional
    torch = None

SQUARE = [64, 128, 256, 512, 1024, 2048]
PAUSE = 0.3     # seconds between libraries (see run_cases)
# (m, k, n) of a dense layer's forward product X[m,k] . W[k,n]
SKINNY = [(128, 64, 32), (128, 32, 10), (128, 96, 128), (12800, 64, 128)]


def best_time(fn, min_run=2e-3, repeats=7, budget=3.0):
    """Best per-call time over `repeats` runs of `number` calls each."""
    fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    number = max(1, int(min_run / one))
    best = float("inf")
    start = time.perf_counter()
    for r in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
        if time.perf_counter() - start > budget and r >= 2:
            break
    return best


def cases(dtype, quick=False):
    rng = np.random.default_rng(0)
    out = []
    for s in (SQUARE[:4] if quick else SQUARE):
        a = rng.standard_normal((s, s)).astype(dtype)
        b = rng.standard_normal((s, s)).astype(dtype)
        out.append((f"{s}x{s}x{s}", 2.0 * s ** 3, a, False, b, False))
    for (m, k, n) in SKINNY:
        x = rng.standard_normal((m, k)).astype(dtype)
        w = rng.standard_normal((k, n)).astype(dtype)
        dy = rng.standard_normal((m, n)).astype(dtype)
        f = 2.0 * m * k * n
        out.append((f"{m}x{k}x{n} X.W", f, x, False, w, False))
        out.append((f"{k}x{m}x{n} X^T.dY", f, x, True, dy, False))
        out.append((f"{m}x{n}x{k} dY.W^T", f, dy, False, w, True))
    return out


def run_cases(dtype, quick, only=None, rounds=1):
    """{label: {"flops": f, "engine": [gflops per round], "numpy": [...], "torch": [...]}}

    Every round times each shape once per library, the libraries taking turns shape by shape
    (the first one changes from round to round): this host's speed drifts by tens of percent
    within minutes, and a library measured in its own phase mostly records which minute it got.
    A pause before each measurement lets the previous library's worker threads stop spinning
    (libgomp and OpenBLAS keep them busy-waiting after a call, OpenBLAS for 2^28 cycles, ~0.11 s
    here; on 2 cores a spinning pool takes the next library's threads off the CPU for whole
    scheduler slices).  0.1 s was too short: a 128^3 engine call measured 0.1 s after numpy
    stalled for up to 8 ms, its mean over 300 calls 40-118 us against 35-40 us alone; from
    0.2 s on the stalls were gone."""
    todo = [c for c in cases(dtype, quick) if not only or c[0] in only]
    for label, flops, a, ta, b, tb in todo:     # sanity: same answer as float64 numpy
        av, bv = (a.T if ta else a), (b.T if tb else b)
        ref = np.matmul(av.astype(np.float64), bv.astype(np.float64))
        got = eg.matmul(a, b, ta, tb)
        tol = (2e-5 if dtype == np.float32 else 1e-12) * np.sqrt(av.shape[1]) * np.abs(ref).max()
        assert np.abs(got - ref).max() <= tol, label
    res = {c[0]: {"flops": c[1]} for c in todo}
    libs = [("engine", lambda a, b, ta, tb: (lambda: eg.matmul(a, b, ta, tb))),
            ("numpy", lambda a, b, ta, tb: (lambda av=(a.T if ta else a), bv=(b.T if tb else b):
                                             np.matmul(av, bv)))]
    from engine import ops
    from engine.tensor import Tensor

    def ops_fn(a, b, ta, tb):
        x, y = Tensor(a.T if ta else a), Tensor(b.T if tb else b)
        return lambda: ops.matmul(x, y)
    libs.append(("ops", ops_fn))
    if torch is not None:
        def torch_fn(a, b, ta, tb):
            x, y = torch.from_numpy(a), torch.from_numpy(b)
            x, y = (x.t() if ta else x), (y.t() if tb else y)
            return lambda: torch.mm(x, y)
        libs.append(("torch", torch_fn))
    for r in range(rounds):
        order = libs[r % len(libs):] + libs[:r % len(libs)]
        for label, flops, a, ta, b, tb in todo:
            for name, make in order:
                if name == "ops" and " " not in label:
                    continue       # square shapes: the op's fixed cost is noise there
                time.sleep(PAUSE)
                res[label].setdefault(name, []).append(flops / best_time(make(a, b, ta, tb), budget=1.5) / 1e9)
    return res


def summarize(res):
    """Per shape: each library's best GFLOP/s over the rounds (the host's disturbances only
    ever slow a run down, so the best is the closest to the library's own speed, and taking
    turns gave every library the same chances at the quiet moments), engine/numpy from those,
    and the rounds' own ratios (each pairs two measurements taken moments apart): their median,
    which one lucky or unlucky round cannot move, and their range."""
    out = {}
    for label, row in res.items():
        s = {name: max(v) for name, v in row.items() if name != "flops"}
        s["ratio"] = s["engine"] / s["numpy"]
        per_round = np.array(row["engine"]) / np.array(row["numpy"])
        s["ratio_range"] = (float(per_round.min()), float(per_round.max()))
        s["ratio_median"] = float(np.median(per_round))
        if "ops" in row:
            s["ops_ratio_median"] = float(np.median(np.array(row["ops"]) / np.array(row["numpy"])))
        out[label] = s
    return out


def single_thread_child(dtype, rounds):
    """Run in a child with every BLAS pinned to one thread (env set by the parent)."""
    runtime.set_num_threads(1)
    if torch is not None:
        torch.set_num_threads(1)
    r = summarize(run_cases(dtype, False, only={"1024x1024x1024"}, rounds=rounds))
    r.update(avx2_rows(dtype, {"1024x1024x1024"}, r))
    print(json.dumps(r))


def avx2_rows(dtype, labels, res):
    """Engine forced onto its AVX2 kernels, to judge them against the AVX2 peak."""
    if eg.simd_path() != "avx512":
        return {}
    out = {}
    from engine import config
    config.set_simd_path("avx2")
    try:
        for label, flops, a, ta, b, tb in cases(dtype):
            if label in labels:
                row = dict(res[label])
                row["engine"] = flops / best_time(lambda: eg.matmul(a, b, ta, tb)) / 1e9
                row["ratio"] = row["engine"] / row["numpy"]
                row["ratio_range"] = (row["ratio"], row["ratio"])
                row["ratio_median"] = row["ratio"]
                row.pop("torch", None)
                out[label + " (engine AVX2 path)"] = row
    finally:
        config.set_simd_path("auto")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peak", type=float, default=None,
                    help="all-thread FMA peak in GFLOP/s (default: measured, AVX2)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--quick", action="store_true", help="skip 1024/2048 and the one-thread run")
    ap.add_argument("--rounds", type=int, default=7,
                    help="passes over all shapes, libraries taking turns")
    ap.add_argument("--single-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    dtype = np.dtype(args.dtype).type
    if args.single_child:
        single_thread_child(dtype, args.rounds)
        return

    nt = runtime.get_num_threads()
    if torch is not None:
        torch.set_num_threads(nt)
    scale = 1.0 if dtype == np.float32 else 0.5   # flops per FMA lane halve for float64
    peak2 = (args.peak or max(eg._fma_peak_gflops(nt, "avx2") for _ in range(3))) * scale
    peak2_1 = max(eg._fma_peak_gflops(1, "avx2") for _ in range(3)) * scale
    peak5 = max(eg._fma_peak_gflops(nt, "avx512") for _ in range(3)) * scale
    peak5_1 = max(eg._fma_peak_gflops(1, "avx512") for _ in range(3)) * scale

    res = summarize(run_cases(dtype, args.quick, rounds=args.rounds))
    if not args.quick:
        res.update(avx2_rows(dtype, {"1024x1024x1024", "2048x2048x2048"}, res))
    single = None
    if not args.quick:
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--single-child",
                              "--dtype", args.dtype, "--rounds", str(args.rounds)], env=env, capture_output=True, text=True)
        if out.returncode == 0:
            single = json.loads(out.stdout.strip().splitlines()[-1])
        else:
            print(out.stderr, file=sys.stderr)

    print(f"engine simd path: {eg.simd_path()}, threads: {nt}, dtype: {args.dtype}, "
          f"torch: {torch.__version__ if torch is not None else 'not installed'}")
    print(f"measured FMA peak ({args.dtype}): AVX2 {peak2:.1f} GFLOP/s on {nt} threads, "
          f"{peak2_1:.1f} on 1; AVX-512 {peak5:.1f} on {nt}, {peak5_1:.1f} on 1"
          + (" (AVX2 all-thread peak given by --peak)" if args.peak else ""))
    print()
    print(f"GFLOP/s: best of {args.rounds} rounds, the libraries taking turns shape "
          f"by shape; engine/numpy from those bests, and per round: the median of the rounds' own "
          f"ratios [lowest-highest]")
    print()
    hdr = ("| shape (m x k x n) | threads | engine GFLOP/s | engine.ops.matmul GFLOP/s | numpy GFLOP/s | "
           "torch GFLOP/s | engine/numpy (bests) | engine/numpy per round | ops.matmul/numpy per round | "
           "engine % AVX2 peak | engine % AVX-512 peak |")
    print(hdr)
    print("|---|---|---|---|---|---|---|---|---|---|---|")

    def line(label, row, threads, p2, p5):
        t = f"{row['torch']:.1f}" if "torch" in row else "-"
        o = f"{row['ops']:.1f}" if "ops" in row else "-"
        om = f"{row['ops_ratio_median']:.2f}" if "ops_ratio_median" in row else "-"
        print(f"| {label} | {threads} | {row['engine']:.1f} | {o} | {row['numpy']:.1f} | {t} | "
              f"{row['ratio']:.2f} | {row['ratio_median']:.2f} "
              f"[{row['ratio_range'][0]:.2f}-{row['ratio_range'][1]:.2f}] | {om} | "
              f"{100 * row['engine'] / p2:.0f} % | "
              + (f"{100 * row['engine'] / p5:.0f} % |" if p5 > 0 else "- (no AVX-512) |"))

    for label, row in res.items():
        line(label, row, nt, peak2, peak5)
    if single:
        for label, row in single.items():
            line(label, row, 1, peak2_1, peak5_1)


if __name__ == "__main__":
    main()
