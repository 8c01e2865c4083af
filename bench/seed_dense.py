"""The seed chapter's first model (Dense 64-32-32-10, RMSprop, categorical crossentropy) trained
on 1000x64 random data with batch 128: milliseconds per epoch for engine, a hand-written numpy
loop, plain PyTorch and Keras 3 (each installed backend), measured in one run.

    python bench/seed_dense.py [--epochs 30]
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


def time_engine(epochs):
    from engine import Input, layers, Model
    x, y = data()
    inp = Input(shape=(D,))
    h = layers.Dense(32, activation="relu")(inp)
    h = layers.Dense(32, activation="relu")(h)
    model = Model(inp, layers.Dense(10, activation="softmax")(h))
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=BATCH, verbose=0)
    return best_of(lambda: model.fit(x, y, epochs=epochs, batch_size=BATCH, verbose=0), repeat=3) / epochs


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


RUNNERS = {"engine": time_engine, "numpy": time_numpy, "torch": time_torch}
LABELS = {"engine": "engine", "numpy": "numpy (hand-written loop)", "torch": "PyTorch (plain loop)"}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--runner", choices=sorted(RUNNERS), help="time one runner in this process (internal)")
    args = parser.parse_args()
    if args.runner:
        print(json.dumps({"seconds_per_epoch": RUNNERS[args.runner](args.epochs)}))
        return
    results = []
    for name in ("engine", "numpy") + (("torch",) if have("torch") else ()):
        out = run_isolated(__file__, name, ["--epochs", str(args.epochs)])
        results.append((LABELS[name], out["seconds_per_epoch"]))
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


if __name__ == "__main__":
    main()
