"""Small timing check of a few elementwise kernels against plain numpy.

Run: python bench/elementwise.py   (median wall times; the machine is shared, so noisy)
"""
import time

import numpy as np

from types import SimpleNamespace

from engine._kernels import activation, loss, optimizer_step, softmax
E = SimpleNamespace(relu=activation.relu, sigmoid=activation.sigmoid, gelu_tanh=activation.gelu_tanh,
                    softmax=softmax.softmax, adam_update=optimizer_step.adam_update,
                    sparse_categorical_crossentropy_logits=loss.sparse_categorical_crossentropy_logits)
from engine._kernels import runtime


def best(fn, reps=15):
    """Median seconds per call over `reps` timed batches (the median shrugs off
    the multi-millisecond stalls a 2-thread team suffers when another process
    holds the second core)."""
    t0 = time.perf_counter()
    fn()
    once = time.perf_counter() - t0
    inner = max(1, int(1e-3 / max(once, 1e-7)))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return float(np.median(times))


def row(name, n, ours, ref):
    print(f"{name:<22}{n:>10}  engine {ours * 1e6:9.1f} us   numpy {ref * 1e6:9.1f} us   "
          f"x{ref / ours:5.1f}")


def main():
    print(f"threads: {runtime.get_num_threads()}")
    r = np.random.default_rng(0)
    for n in (256, 16384, 1 << 20):
        x = r.standard_normal(n).astype(np.float32)
        out = np.empty_like(x)
        row("relu f32", n, best(lambda: E.relu(x, out)), best(lambda: np.maximum(x, 0, out=out)))
        row("sigmoid f32", n, best(lambda: E.sigmoid(x, out)),
            best(lambda: np.divide(1, 1 + np.exp(-x), out=out)))
        row("gelu_tanh f32", n, best(lambda: E.gelu_tanh(x, out)),
            best(lambda: 0.5 * x * (1 + np.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))))
        w, g, m, v = (r.standard_normal(n).astype(np.float32) for _ in range(4))
        v = np.abs(v)

        def np_adam():
            m[...] += (g - m) * np.float32(0.1)
            v[...] += (g * g - v) * np.float32(0.001)
            w[...] -= (m * np.float32(1e-3)) / (np.sqrt(v) + np.float32(1e-7))
        row("adam f32", n, best(lambda: E.adam_update(w, g, m, v, 1e-3, 0.9, 0.999, 1e-7)),
            best(np_adam))
    for rows, c in ((32, 10), (4096, 1000)):
        x = r.standard_normal((rows, c)).astype(np.float32)
        out = np.empty_like(x)

        def np_softmax():
            e = np.exp(x - x.max(-1, keepdims=True))
            return e / e.sum(-1, keepdims=True)
        row(f"softmax {rows}x{c}", rows * c, best(lambda: E.softmax(x, out)), best(np_softmax))
        labels = r.integers(0, c, rows)
        loss, grad = np.empty(rows, np.float32), np.empty_like(x)
        row(f"sparse_cce_logits", rows * c,
            best(lambda: E.sparse_categorical_crossentropy_logits(labels, x, loss, grad)),
            best(np_softmax))


if __name__ == "__main__":
    main()
