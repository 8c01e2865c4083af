"""The seed chapter's first model (Dense 64-32-32-10, RMSprop, categorical crossentropy) trained
on 1000x64 random data with batch 128: milliseconds per epoch for engine, a hand-written numpy
loop, plain PyTorch and Keras 3 (each installed backend), measured in one run; then the
latency of `predict` on one sample and on 32 (engine's predict and model(x), a hand-written
numpy forward pass, PyTorch eager under no_grad, Keras 3's predict and model(x)); and engine's
first epoch of a fresh model over its second.

    python bench/seed_dense.py [--epochs 30] [--calls 2000]

`ENGINE_PLAN=0` in the environment times engine's unplanned step for comparison.
"""
import argparse
import time

import numpy as np

import json

from common import best_of, have, keras_backends, machine, print_table, run_isolated, run_keras

N, D, BATCH = 1000, 64, 128


def data():
    rng = np.random.default_rng(0)
    return rng.random((N, D)).astype(np.float32), rng.random((N, 10)).astype(np.float32)


def _engine_model():
    from engine import Input, layers, Model
    inp = Input(shape=(D,))
    h = layers.Dense(32, activation="relu")(inp)
    h = layers.Dense(32, activation="relu")(h)
    return Model(inp, layers.Dense(10, activation="softmax")(h))


def time_engine(epochs):
    x, y = data()
    model = _engine_model()
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=BATCH, verbose=0)
    return best_of(lambda: model.fit(x, y, epochs=epochs, batch_size=BATCH, verbose=0), repeat=3) / epochs


def first_epoch_ratio(fresh=3):
    """A fresh model's first epoch (two signatures traced: the full batch and the last, smaller
    one) over its second, best of `fresh` models, in a process that has trained once already
    (so imports and the first fit's allocator tuning are not counted)."""
    x, y = data()
    warm = _engine_model()
    warm.compile(optimizer="rmsprop", loss="categorical_crossentropy")
    warm.fit(x, y, epochs=1, batch_size=BATCH, verbose=0)
    firsts, seconds = [], []
    for _ in range(fresh):
        model = _engine_model()
        model.compile(optimizer="rmsprop", loss="categorical_crossentropy")
        for times in (firsts, seconds):
            start = time.perf_counter()
            model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0)
            times.append(time.perf_counter() - start)
    return min(firsts) / min(seconds)


def time_numpy(epochs):
    """The same training written directly in numpy (float32), the floor for a Python-level loop."""
    x, y = data()
    rng = np.random.default_rng(1)
    shapes = [(D, 32), (32,), (32, 32), (32,), (32, 10), (10,)]
    params = [rng.uniform(-0.1, 0.1, s).astype(np.float32) for s in shapes]
    vel = [np.zeros_like(p) for p in params]

    def epoch():
        order = rng.permutation(N)
        for start in range(0, N, BATCH):
            idx = order[start:start + BATCH]
            xb, yb = x[idx], y[idx]
            w1, b1, w2, b2, w3, b3 = params
            h1 = np.maximum(xb @ w1 + b1, 0)
            h2 = np.maximum(h1 @ w2 + b2, 0)
            z = h2 @ w3 + b3
            p = np.exp(z - z.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            q = np.clip(p, 1e-7, 1 - 1e-7)
            dq = -yb / q / len(xb)
            dz = p * (dq - (dq * p).sum(1, keepdims=True))
            g3, gb3 = h2.T @ dz, dz.sum(0)
            d2 = (dz @ w3.T) * (h2 > 0)
            g2, gb2 = h1.T @ d2, d2.sum(0)
            d1 = (d2 @ w2.T) * (h1 > 0)
            g1, gb1 = xb.T @ d1, d1.sum(0)
            for p_, v_, g_ in zip(params, vel, (g1, gb1, g2, gb2, g3, gb3)):
                v_ *= 0.9
                v_ += 0.1 * g_ * g_
                p_ -= 0.001 * g_ / np.sqrt(v_ + 1e-7)

    epoch()
    return best_of(lambda: [epoch() for _ in range(epochs)], repeat=3) / epochs


def time_torch(epochs):
    import torch
    torch.set_num_threads(max(1, torch.get_num_threads()))
    x, y = (torch.from_numpy(a) for a in data())
    model = torch.nn.Sequential(torch.nn.Linear(D, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32), torch.nn.ReLU(),
                                torch.nn.Linear(32, 10), torch.nn.Softmax(dim=1))
    opt = torch.optim.RMSprop(model.parameters(), lr=0.001, alpha=0.9, eps=1e-7)

    def epoch():
        order = torch.randperm(N)
        for start in range(0, N, BATCH):
            idx = order[start:start + BATCH]
            p = model(x[idx])
            p = torch.clamp(p / p.sum(1, keepdim=True), 1e-7, 1 - 1e-7)
            loss = -(y[idx] * torch.log(p)).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

    epoch()
    return best_of(lambda: [epoch() for _ in range(epochs)], repeat=3) / epochs


KERAS_SCRIPT = """
import json, time, numpy as np, keras
from keras import layers
rng = np.random.default_rng(0)
x = rng.random((1000, 64)).astype('float32'); y = rng.random((1000, 10)).astype('float32')
inp = keras.Input(shape=(64,))
h = layers.Dense(32, activation='relu')(inp)
h = layers.Dense(32, activation='relu')(h)
model = keras.Model(inp, layers.Dense(10, activation='softmax')(h))
model.compile(optimizer='rmsprop', loss='categorical_crossentropy')
model.fit(x, y, epochs=2, batch_size=128, verbose=0)
best = 1e9
for _ in range(3):
    t = time.perf_counter(); model.fit(x, y, epochs=EPOCHS, batch_size=128, verbose=0)
    best = min(best, (time.perf_counter() - t) / EPOCHS)
print(json.dumps({"seconds_per_epoch": best}))
"""


def _per_call(fn, calls):
    """Best mean seconds per call of fn over 5 runs of `calls` calls."""
    fn()
    return best_of(lambda: [fn() for _ in range(calls)], repeat=5) / calls


def latency_engine(calls):
    """(predict, model(x)) seconds per call on 1 and on 32 samples."""
    x, _ = data()
    model = _engine_model()
    out = {}
    for n in (1, 32):
        xb = x[:n]
        out[f"predict {n}"] = _per_call(lambda: model.predict(xb, verbose=0), calls)
        out[f"call {n}"] = _per_call(lambda: model(xb), calls)
    return out


def latency_numpy(calls):
    """The forward pass written directly in numpy: the floor for a Python-level predict."""
    x, _ = data()
    rng = np.random.default_rng(1)
    w1, w2, w3 = (rng.uniform(-0.1, 0.1, s).astype(np.float32) for s in ((D, 32), (32, 32), (32, 10)))
    b1, b2, b3 = np.zeros(32, np.float32), np.zeros(32, np.float32), np.zeros(10, np.float32)

    def forward(xb):
        h1 = np.maximum(xb @ w1 + b1, 0)
        h2 = np.maximum(h1 @ w2 + b2, 0)
        z = h2 @ w3 + b3
        p = np.exp(z - z.max(1, keepdims=True))
        return p / p.sum(1, keepdims=True)
    return {f"forward {n}": _per_call(lambda xb=x[:n]: forward(xb), calls) for n in (1, 32)}


def latency_torch(calls):
    import torch
    x, _ = data()
    model = torch.nn.Sequential(torch.nn.Linear(D, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32), torch.nn.ReLU(),
                                torch.nn.Linear(32, 10), torch.nn.Softmax(dim=1)).eval()
    out = {}
    for n in (1, 32):
        xb = x[:n]

        def forward(xb=xb):
            with torch.no_grad():
                return model(torch.from_numpy(xb)).numpy()
        out[f"eager {n}"] = _per_call(forward, calls)
    return out


KERAS_LATENCY_SCRIPT = """
import json, time, numpy as np, keras
from keras import layers
x = np.random.default_rng(0).random((32, 64)).astype('float32')
inp = keras.Input(shape=(64,))
h = layers.Dense(32, activation='relu')(inp)
h = layers.Dense(32, activation='relu')(h)
model = keras.Model(inp, layers.Dense(10, activation='softmax')(h))
def per_call(fn, calls):
    fn(); best = 1e9
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(calls): fn()
        best = min(best, (time.perf_counter() - t) / calls)
    return best
out = {}
for n in (1, 32):
    xb = x[:n]
    out[f"predict {n}"] = per_call(lambda: model.predict(xb, verbose=0), max(1, CALLS // 20))
    out[f"call {n}"] = per_call(lambda: model(xb), CALLS)
print(json.dumps(out))
"""


RUNNERS = {"engine": time_engine, "numpy": time_numpy, "torch": time_torch}
LATENCY = {"engine": latency_engine, "numpy": latency_numpy, "torch": latency_torch}
LABELS = {"engine": "engine", "numpy": "numpy (hand-written loop)", "torch": "PyTorch (plain loop)"}
LATENCY_LABELS = {"engine": "engine", "numpy": "numpy (hand-written forward)", "torch": "PyTorch"}


def latency_table(calls):
    """Rows of predict latency, microseconds, and each row's ratio to the numpy forward pass."""
    found = []
    for name in ("engine", "numpy") + (("torch",) if have("torch") else ()):
        out = run_isolated(__file__, f"latency-{name}", ["--calls", str(calls)])
        found.extend((f"{LATENCY_LABELS[name]} {k.split()[0]}", int(k.split()[1]), v) for k, v in out.items())
    for backend in keras_backends():
        try:
            out = run_keras(KERAS_LATENCY_SCRIPT.replace("CALLS", str(calls)), backend)
            found.extend((f"Keras 3 ({backend}) {k.split()[0]}", int(k.split()[1]), v) for k, v in out.items())
        except Exception as e:  # a broken optional install must not hide the other rows
            print(f"Keras ({backend}) skipped: {e}")
    floor = {n: t for label, n, t in found if label.startswith("numpy")}
    return [(label, str(n), f"{t * 1e6:.1f}", f"{t / floor[n]:.2f}x") for label, n, t in found]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--calls", type=int, default=2000, help="calls per latency measurement")
    parser.add_argument("--runner", choices=sorted(RUNNERS) + [f"latency-{k}" for k in LATENCY],
                        help="time one runner in this process (internal)")
    args = parser.parse_args()
    if args.runner and args.runner.startswith("latency-"):
        print(json.dumps(LATENCY[args.runner[len("latency-"):]](args.calls)))
        return
    if args.runner == "engine":
        print(json.dumps({"seconds_per_epoch": time_engine(args.epochs), "first_epoch_ratio": first_epoch_ratio()}))
        return
    if args.runner:
        print(json.dumps({"seconds_per_epoch": RUNNERS[args.runner](args.epochs)}))
        return
    results = []
    first_ratio = None
    for name in ("engine", "numpy") + (("torch",) if have("torch") else ()):
        out = run_isolated(__file__, name, ["--epochs", str(args.epochs)])
        results.append((LABELS[name], out["seconds_per_epoch"]))
        first_ratio = out.get("first_epoch_ratio", first_ratio)
    for backend in keras_backends():
        try:
            out = run_keras(KERAS_SCRIPT.replace("EPOCHS", str(args.epochs)), backend)
            results.append((f"Keras 3 ({backend})", out["seconds_per_epoch"]))
        except Exception as e:  # a broken optional install must not hide the other rows
            print(f"Keras ({backend}) skipped: {e}")
    engine_time = results[0][1]
    rows = [(name, f"{t * 1e3:.2f}", f"{t / engine_time:.2f}x") for name, t in results]
    print_table(f"Seed model fit, 1000x64, batch 128, ms per epoch ({machine()}, {time.strftime('%Y-%m-%d')})",
                ["runner", "ms/epoch", "time / engine's"], rows)
    print(f"engine: a fresh model's first epoch / its second: {first_ratio:.2f}x")
    print_table("Seed model predict latency, microseconds per call",
                ["runner", "samples", "us/call", "time / numpy forward's"], latency_table(args.calls))


if __name__ == "__main__":
    main()
