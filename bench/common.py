"""Shared helpers for the benchmark scripts: timing, machine description, tables, Keras runs."""
import json
import os
import platform
import subprocess
import sys
import time


def best_of(fn, repeat=5, number=1):
    """Best wall time of `number` calls of fn, over `repeat` rounds (seconds per call)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def alternate(runs, rounds):
    """Time every library once per round, taking turns, and return each one's list of times.

    This machine's speed drifts by tens of percent within minutes (a shared host): measured one
    library after the other, a ratio mostly says which one ran during a slow minute.  Taking
    turns puts each through the same drift, and the median over rounds is robust to one bad
    minute.  A run that raises is reported once and its library skipped in later rounds (its
    list is then empty); a run returning None means the library has no such workload (None in
    place of the list).
    """
    times = {name: [] for name in runs}
    finished = set()        # failed, or no such workload
    for _ in range(rounds):
        for name, run in runs.items():
            if name in finished:
                continue
            try:
                seconds = run()
            except Exception as e:
                print(f"{name} skipped: {e}", flush=True)
                times[name] = []
                finished.add(name)
                continue
            if seconds is None:
                times[name] = None
                finished.add(name)
            else:
                times[name].append(seconds)
    return times


def median(values):
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])


def spread(values, fmt, scale=1.0):
    """The median, with the range over rounds when there were several: "6.27 (5.93-6.66)"."""
    if not values:
        return "failed"
    text = fmt.format(median(values) * scale)
    if len(values) > 1:
        text += f" ({fmt.format(min(values) * scale)}-{fmt.format(max(values) * scale)})"
    return text


WORKLOAD_HEADER = ["workload", "engine", "PyTorch", "PyTorch / engine", "Keras-JAX", "Keras-TF",
                   "fastest other / engine"]


def workload_row(label, times, fmt, scale=1.0):
    """A WORKLOAD_HEADER row from alternate()'s times (keys engine, PyTorch, Keras-jax,
    Keras-tensorflow), ratios of medians; it also prints the row's times as progress."""
    print(f"{label}: " + "; ".join(f"{name} {spread(t, fmt, scale)}" for name, t in times.items()
                                   if t is not None), flush=True)
    eng = median(times["engine"])
    others = {name: median(t) for name, t in times.items() if name != "engine" and t}
    row = [label, spread(times["engine"], fmt, scale)]
    torch_times = times.get("PyTorch")
    row += [spread(torch_times, fmt, scale), f"{others['PyTorch'] / eng:.2f}x"] if torch_times else ["-", "-"]
    for backend in ("jax", "tensorflow"):
        t = times.get(f"Keras-{backend}")
        row.append("-" if t is None else spread(t, fmt, scale))
    row.append(f"{min(others.values()) / eng:.2f}x" if others else "-")
    return row


def rounds_note(rounds):
    return "one run each" if rounds == 1 else f"median of {rounds} alternating rounds, range in brackets"


def machine():
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def print_table(title, header, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(header)]
    print(f"\n{title}\n")
    print("| " + " | ".join(str(h).ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |")


def have(module):
    try:
        __import__(module)
        return True
    except Exception:
        return False


# Keras may live in another environment than engine's (ENGINE_BENCH_KERAS_PYTHON=/path/to/python).
KERAS_PYTHON = os.environ.get("ENGINE_BENCH_KERAS_PYTHON", sys.executable)


def _keras_python_has(module):
    if KERAS_PYTHON == sys.executable:
        return have(module)
    return subprocess.run([KERAS_PYTHON, "-c", f"import {module}"], capture_output=True).returncode == 0


def keras_backends():
    """Keras 3 backends that can run here (Keras and the backend package both installed)."""
    if not _keras_python_has("keras"):
        return []
    found = []
    for backend, module in (("jax", "jax"), ("tensorflow", "tensorflow"), ("torch", "torch")):
        if _keras_python_has(module):
            found.append(backend)
    return found


def run_isolated(script_path, runner, extra_args=(), timeout=900):
    """Run `script_path --runner NAME` in a fresh process; it prints one JSON line as its last output.

    Each library gets a process of its own: two OpenMP runtimes in one process spin-wait
    against each other on a 2-core machine and distort every number.
    """
    proc = subprocess.run([sys.executable, script_path, "--runner", runner, *extra_args],
                          capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"{runner} failed:\n{proc.stderr[-2000:]}")


def run_keras(script, backend, timeout=900):
    """Run a Keras timing script in a subprocess with KERAS_BACKEND set; it prints one JSON line."""
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([KERAS_PYTHON, "-c", script], env=env, capture_output=True, text=True,
                          timeout=timeout)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"Keras ({backend}) run failed:\n{proc.stderr[-2000:]}")
