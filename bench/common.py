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


def keras_backends():
    """Keras 3 backends that can run here (Keras and the backend package both installed)."""
    if not have("keras"):
        return []
    found = []
    for backend, module in (("jax", "jax"), ("tensorflow", "tensorflow"), ("torch", "torch")):
        if have(module):
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
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=timeout)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"Keras ({backend}) run failed:\n{proc.stderr[-2000:]}")
