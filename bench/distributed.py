"""Data-parallel training over MPI: epochs of the seed chapter's question-answering model and its
three-output convolutional model on 1 rank x 2 threads, 2 ranks x 1 thread and 1 rank x 1 thread;
all-reduce latency and bandwidth on this machine; and a cost model of N machines.

    python bench/distributed.py [--rounds 3] [--samples 1000] [--latency-us 10]
    mpirun -n 2 python bench/distributed.py --phases qa [--batch B]   # where a step's time goes

--phases WORKLOAD times the phases of training steps on every rank of the job it runs in (any
rank count; one process without mpirun): forward, backward (its own compute), the reducer's
copy-in and its wait for the reductions (both inside the backward), optimizer, the metric
updates, the logs (global metric results: a collective), the rest, and the whole step from
batch begin to batch end. It prints the minimum of each over 2 epochs of up to 8 full global
batches, in wall-clock and in CPU time (on a shared host the CPU time is the steadier of the
two; an MPI wait counts as the CPU it spins), and the phases of the fastest step. --batch sets
another global batch (e.g. one process on half of it, to compare with each rank's step).

Each measurement runs in its own process (`mpirun -n 2` for two ranks, OMP_NUM_THREADS for the
threads), in alternating rounds, each process keeping the best of `--repeat` epochs; the table
gives the median seconds per epoch (same global batch everywhere: 128 for QA, 64 for the
three-output model), their ratio, and the median and range of each round's own ratio. Target: 2 ranks x 1 thread within 10 % of
1 rank x 2 threads on both workloads.

The cost model: a step of a global batch on N machines takes compute / N plus a ring all-reduce of
the gradient bytes S, 2 (N - 1) / N x S / bandwidth + 2 (N - 1) x latency (no overlap assumed, so
it is pessimistic by up to the backward pass). Its minimum over N is at
N* = sqrt((compute - 2 S / bandwidth) / (2 latency)): beyond N* adding machines makes steps slower
(and a machine needs at least one sample, so N <= batch). The model is evaluated for 10 and 100
Gbit/s networks. S is what a rank of the 2-rank run hands to MPI in a step (the last of an
epoch): the dense buckets, and an Embedding's batch rows where engine sends the rows instead of
the table (engine/distribution/gradients.py; an all-gather of T bytes of rows costs about what
an all-reduce of T / 2 bytes does, and a rank's own rows are T / 2 on 2 ranks). The dense size of
all the gradients (the three-output model's tables make it 51 MB) is shown beside it.
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKLOADS = {"qa": ("QA model", 128), "three": ("three-output conv model", 64)}
CONFIGS = [("1 rank x 2 threads", 1, 2), ("2 ranks x 1 thread", 2, 1), ("1 rank x 1 thread", 1, 1)]
NETWORKS = [("10 Gbit/s", 10e9 / 8), ("100 Gbit/s", 100e9 / 8)]


# -- the measured processes -------------------------------------------------------------------------
def _workload(which, samples):
    import numpy as np
    from engine import tour
    build, data = {"qa": (tour.build_question_answering, tour.question_answering_data),
                   "three": (tour.build_three_outputs, tour.three_outputs_data)}[which]
    np.random.seed(0)                      # the QA data comes from numpy's legacy generator
    model = build()
    x, y = data(np.random.default_rng(0))
    take = (lambda a: {k: v[:samples] for k, v in a.items()} if isinstance(a, dict) else a[:samples])
    return model, take(x), take(y)


def worker_epoch(which, samples, repeat):
    """Seconds per epoch (best of `repeat`) of one workload, in this process (all ranks of it)."""
    import numpy as np
    from engine import distribution
    from engine.distribution.training import is_chief
    distribution.set_distribution(distribution.DataParallel())     # on one rank: one process's training
    model, x, y = _workload(which, samples)
    batch = WORKLOADS[which][1]
    warm = (lambda a: {k: v[:2 * batch] for k, v in a.items()} if isinstance(a, dict) else a[:2 * batch])
    model.fit(warm(x), warm(y), epochs=1, batch_size=batch, verbose=0)
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        model.fit(x, y, epochs=1, batch_size=batch, verbose=0)
        best = min(best, time.perf_counter() - start)
    grad_bytes = int(sum(np.prod(w.shape) * np.dtype(w.dtype).itemsize for w in model.trainable_weights))
    steps = -(-len(next(iter(x.values())) if isinstance(x, dict) else x) // batch)
    from engine.distribution import training
    sent = training._reducer[1].sent_bytes if training._reducer is not None else None
    if is_chief():
        print(json.dumps({"seconds": best, "grad_bytes": grad_bytes, "sent_bytes": sent, "steps": steps}))


PHASES = ["forward", "backward", "copy-in", "wait", "optimizer", "metrics", "logs", "rest", "step"]


def worker_phases(which, batch=None, steps=8):
    """Print, per rank, each phase of a training step (ms) in wall-clock and CPU time: the minimum
    over 2 epochs of up to `steps` full global batches of `batch` rows (default: the workload's),
    and the phases of the fastest step (wall-clock), which add up to it."""
    import collections
    from engine import callbacks, distribution
    from engine.distribution import collectives, gradients, training
    from engine.models import plan, trainer
    from engine.optimizers import base
    clocks = (time.perf_counter, time.process_time)
    distribution.set_distribution(distribution.DataParallel())
    batch = batch or WORKLOADS[which][1]
    steps = min(steps, 1000 // batch)        # full batches only (the tour's data has 1000 samples)
    model, x, y = _workload(which, steps * batch)
    spent = collections.defaultdict(lambda: [0.0, 0.0])

    def timing(original, phase):
        def wrapper(*args, **kwargs):
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                total = spent[phase]
                total[0] += time.perf_counter() - wall
                total[1] += time.process_time() - cpu
        return wrapper

    def timed(owner, name, phase):
        setattr(owner, name, timing(getattr(owner, name), phase))
    for owner, name, phase in [(plan.Plan, "_forward", "forward"), (trainer.Trainer, "_run_forward", "forward"),
                               (training, "compute_gradients", "backward"),
                               (gradients.GradientReducer, "on_ready", "copy-in"),
                               (gradients.GradientReducer, "finish", "wait"),
                               (base.Optimizer, "apply", "optimizer"),
                               (training, "update_metrics", "metrics"),
                               (trainer.Trainer, "_logs", "logs")]:
        timed(owner, name, phase)
    planned = base.Optimizer._planned_update       # the planned step's update: timed as a whole

    def planned_update(self, variables):
        update = planned(self, variables)
        return None if update is None else timing(update, "optimizer")
    base.Optimizer._planned_update = planned_update
    rows = []

    class Phases(callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            spent.clear()
            self.start = [c() for c in clocks]

        def on_train_batch_end(self, batch, logs=None):
            row = {k: list(v) for k, v in spent.items()}
            row["step"] = [c() - s for c, s in zip(clocks, self.start)]
            for c in range(2):       # the backward's own compute, without the reducer's parts inside it
                row.setdefault("backward", [0.0, 0.0])[c] -= sum(row.get(k, (0.0, 0.0))[c] for k in ("copy-in", "wait"))
                row["rest"] = row.get("rest", [0.0, 0.0])
                row["rest"][c] = row["step"][c] - sum(v[c] for k, v in row.items() if k not in ("step", "rest"))
            rows.append(row)
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)        # traces the plans
    model.fit(x, y, batch_size=batch, epochs=2, verbose=0, shuffle=False, callbacks=[Phases()])
    d = training.active()
    ranks, rank = (d.num_processes, d.data_shard_id) if d is not None else (1, 0)
    fastest = min(rows, key=lambda r: r["step"][0])
    head = f"{which}, global batch {batch}, {ranks} rank(s) x {os.environ.get('OMP_NUM_THREADS', '?')} thread(s), " \
        f"rank {rank}, ms over {len(rows)} steps"
    lines = [head] + [f"  {label}: " + ", ".join(f"{k} {v * 1e3:.2f}" for k, v in values)
                      for label, values in [
                          ("min wall", [(k, min(r.get(k, (0.0, 0.0))[0] for r in rows)) for k in PHASES]),
                          ("min CPU ", [(k, min(r.get(k, (0.0, 0.0))[1] for r in rows)) for k in PHASES]),
                          ("fastest step, wall", [(k, fastest.get(k, (0.0, 0.0))[0]) for k in PHASES]),
                          ("fastest step, CPU ", [(k, fastest.get(k, (0.0, 0.0))[1]) for k in PHASES])]]
    for text in (collectives.allgather(lines) if d is not None else [lines]):
        if training.is_chief():
            print("\n".join(text))


def worker_allreduce():
    """Latency (8 bytes) and bandwidth (1 to 64 MB) of MPI_Allreduce(SUM) of float32 here."""
    import numpy as np
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    out = {}
    for nbytes in (8, 1 << 20, 1 << 22, 1 << 24, 1 << 26):
        buf = np.ones(nbytes // 4, np.float32)
        reps = 2000 if nbytes == 8 else max(3, (1 << 27) // nbytes)
        comm.Allreduce(MPI.IN_PLACE, buf)
        comm.Barrier()
        start = time.perf_counter()
        for _ in range(reps):
            comm.Allreduce(MPI.IN_PLACE, buf)
        out[nbytes] = (time.perf_counter() - start) / reps
    if comm.Get_rank() == 0:
        print(json.dumps(out))


# -- the driver ---------------------------------------------------------------------------------------
def run(args, ranks, threads, timeout=3600):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, HERE]), OMP_NUM_THREADS=str(threads))
    cmd = [sys.executable, os.path.abspath(__file__)] + args
    if ranks > 1:
        mpirun = shutil.which("mpirun") or shutil.which("mpiexec")
        if mpirun is None:
            raise RuntimeError("no mpirun on PATH: pip install \"engine[mpi]\"")
        cmd = [mpirun, "-n", str(ranks)] + cmd
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def ring_allreduce_seconds(nbytes, machines, bandwidth, latency):
    """Ring all-reduce of `nbytes` over `machines`: reduce-scatter + all-gather, 2 (N - 1) steps."""
    if machines <= 1:
        return 0.0
    return 2 * (machines - 1) / machines * nbytes / bandwidth + 2 * (machines - 1) * latency


def scaling_limit(step_seconds, nbytes, batch, bandwidth, latency):
    """The machine count beyond which a step of the global batch gets no faster (at most `batch`)."""
    spare = step_seconds - 2 * nbytes / bandwidth
    if spare <= 0:
        return 1
    best = math.sqrt(spare / (2 * latency))
    candidates = {max(1, min(batch, int(best))), max(1, min(batch, int(best) + 1))}

    def step(n):
        return step_seconds / n + ring_allreduce_seconds(nbytes, n, bandwidth, latency)
    return min(candidates, key=step)


def median(values):
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else 0.5 * (values[mid - 1] + values[mid])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5, help="epochs timed per process (best kept)")
    parser.add_argument("--samples", type=int, default=1000, help="samples per epoch (the tour's 1000)")
    parser.add_argument("--latency-us", type=float, default=10.0, help="network latency per message")
    parser.add_argument("--only", nargs="*", choices=sorted(WORKLOADS))
    parser.add_argument("--phases", choices=sorted(WORKLOADS), help="time the phases of this workload's steps, here")
    parser.add_argument("--batch", type=int, help="with --phases: the global batch (default: the workload's)")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phases:
        worker_phases(args.phases, args.batch)
        return
    if args.worker:
        if args.worker[0] == "allreduce":
            worker_allreduce()
        else:
            worker_epoch(args.worker[0], int(args.worker[1]), int(args.worker[2]))
        return

    ar = run(["--worker", "allreduce"], 2, 1)
    print("All-reduce (MPI_Allreduce SUM, float32, 2 ranks on this machine):")
    print(f"  latency (8 bytes): {ar['8'] * 1e6:.1f} us")
    for nbytes in (1 << 20, 1 << 22, 1 << 24, 1 << 26):
        t = ar[str(nbytes)]
        print(f"  {nbytes >> 20:3d} MB: {t * 1e3:8.2f} ms, {nbytes / t / 1e9:6.2f} GB/s")

    workloads = args.only or list(WORKLOADS)
    times = {(w, c[0]): [] for w in workloads for c in CONFIGS}
    info = {}
    for r in range(args.rounds):
        order = CONFIGS if r % 2 == 0 else CONFIGS[::-1]   # alternate, to spread the host's drift
        for w in workloads:
            for label, ranks, threads in order:
                out = run(["--worker", w, str(args.samples), str(args.repeat)], ranks, threads)
                times[(w, label)].append(out["seconds"])
                info.setdefault(w, {}).update({k: v for k, v in out.items() if v is not None})
    print("\n| workload | " + " | ".join(c[0] for c in CONFIGS) + " | 2x1 / 1x2 | same, per round: median [range] |")
    print("|---|" + "---|" * (len(CONFIGS) + 2))
    for w in workloads:
        med = [median(times[(w, c[0])]) for c in CONFIGS]
        # each round's own ratio: its two configurations ran next to each other, so a slow minute
        # of the host moves both
        paired = [b / a for a, b in zip(times[(w, CONFIGS[0][0])], times[(w, CONFIGS[1][0])])]
        print(f"| {WORKLOADS[w][0]} epoch (s) | " + " | ".join(f"{m:.3f}" for m in med) +
              f" | {med[1] / med[0]:.3f} | {median(paired):.3f} [{min(paired):.3f}-{max(paired):.3f}] |")

    latency = args.latency_us * 1e-6
    print(f"\nCost model (ring all-reduce, latency {args.latency_us:g} us per message, no overlap): "
          "machines beyond which a step gets no faster")
    print("| workload | gradient MB (dense) | MB sent per step | step on 1 machine x 1 thread (ms) | " +
          " | ".join(f"{n} machines (step ms there)" for n, _ in NETWORKS) + " |")
    print("|---|---|---|---|" + "---|" * len(NETWORKS))
    for w in workloads:
        dense, steps, batch = info[w]["grad_bytes"], info[w]["steps"], WORKLOADS[w][1]
        nbytes = info[w].get("sent_bytes", dense)
        step = median(times[(w, "1 rank x 1 thread")]) / steps
        cells = []
        for _, bandwidth in NETWORKS:
            n = scaling_limit(step, nbytes, batch, bandwidth, latency)
            cells.append(f"{n} ({(step / n + ring_allreduce_seconds(nbytes, n, bandwidth, latency)) * 1e3:.2f})")
        print(f"| {WORKLOADS[w][0]} | {dense / 1e6:.1f} | {nbytes / 1e6:.1f} | {step * 1e3:.1f} | "
              + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
