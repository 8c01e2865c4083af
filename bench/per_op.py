"""The cost of one small op: an elementwise add of two 128x32 float32 arrays and a 128x64 . 64x32
matmul, through engine.ops, through a Tensor operator, and recorded on a fresh GradientTape,
against numpy and PyTorch eager (with autograd recording: inputs that require grad), when
installed; each library in its own process,
in alternating rounds (microseconds per call, best of many calls per round).

    python bench/per_op.py [--rounds 5]
"""
import argparse
import json
import time

import numpy as np

from common import alternate, have, machine, median, print_table, run_isolated, spread

CALLS = 20000


def per_call(fn, calls=CALLS):
    fn()
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


def engine_runs():
    from engine import GradientTape, ops
    rng = np.random.default_rng(0)
    a, b = (ops.convert_to_tensor(rng.standard_normal((128, 32)).astype(np.float32)) for _ in range(2))
    x = ops.convert_to_tensor(rng.standard_normal((128, 64)).astype(np.float32))
    w = ops.convert_to_tensor(rng.standard_normal((64, 32)).astype(np.float32))
    out = {"add, ops.add": per_call(lambda: ops.add(a, b)),
           "add, a + b": per_call(lambda: a + b),
           "matmul, ops.matmul": per_call(lambda: ops.matmul(x, w)),
           "matmul, x @ w": per_call(lambda: x @ w)}
    # Recorded: each call opens a tape, watches its input and records the one op (a tape kept
    # open over thousands of calls would mostly measure the memory its records hold).
    def recorded(fn, source):
        def call():
            with GradientTape() as tape:
                tape.watch(source)
                fn()
        return call
    out["add, a + b recorded (new tape)"] = per_call(recorded(lambda: a + b, a))
    out["matmul, x @ w recorded (new tape)"] = per_call(recorded(lambda: x @ w, w))
    return out


def numpy_runs():
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((128, 32)).astype(np.float32) for _ in range(2))
    x, w = rng.standard_normal((128, 64)).astype(np.float32), rng.standard_normal((64, 32)).astype(np.float32)
    return {"add": per_call(lambda: a + b), "matmul": per_call(lambda: x @ w)}


def torch_runs():
    import torch
    torch.set_num_threads(2)
    a, b = torch.randn(128, 32), torch.randn(128, 32)
    x, w = torch.randn(128, 64), torch.randn(64, 32)
    out = {"add": per_call(lambda: a + b), "matmul": per_call(lambda: x @ w)}
    ag, wg = a.clone().requires_grad_(), w.clone().requires_grad_()
    out["add, autograd"] = per_call(lambda: ag + b)
    out["matmul, autograd"] = per_call(lambda: x @ wg)
    return out


RUNNERS = {"engine": engine_runs, "numpy": numpy_runs, "torch": torch_runs}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runner", choices=sorted(RUNNERS))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.runner:
        print(json.dumps(RUNNERS[args.runner]()))
        return
    libs = ["engine", "numpy"] + (["torch"] if have("torch") else [])
    collected = {lib: [] for lib in libs}
    runs = {lib: (lambda lib=lib: collected[lib].append(run_isolated(__file__, lib)) or 0.0) for lib in libs}
    alternate(runs, args.rounds)
    rows = []
    numpy_us = {op: median([r[op] for r in collected["numpy"]]) for op in ("add", "matmul")}
    for lib in libs:
        for key in collected[lib][0]:
            values = [r[key] for r in collected[lib]]
            op = key.split(",")[0]
            rows.append([f"{lib}: {key}", spread(values, "{:.2f}", 1e6),
                         f"{median(values) / numpy_us[op]:.2f}"])
    print_table(f"Per-op cost, microseconds per call ({machine()}, {time.strftime('%Y-%m-%d')}; "
                f"median of {args.rounds} alternating rounds, each the best of 5 x {CALLS} calls)",
                ["call", "us/call", "/ numpy"], rows)


if __name__ == "__main__":
    main()
