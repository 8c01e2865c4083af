"""LSTM and sequence-model training: engine against PyTorch and Keras 3, each in its own process.

Rows: LSTM forward+backward (one layer, float32) for batch 128 x 100 steps x 64 features -> 32 units
and 128 x 50 x 128 -> 32; an epoch of the seed's question-answering model (listings 7-1/7-2: 1,000
samples of length 100, batch 128, RMSprop); an epoch of the shared-LSTM model (7.1.5: 1,000 pairs of
length 50, batch 128).  A second table sets the LSTM rows against their floor: the layer's
three weight-sized products alone, by numpy, in the same rounds.

    python bench/lstm.py
"""
import argparse
import json
import time

import numpy as np

from common import (WORKLOAD_HEADER, alternate, best_of, have, keras_backends, machine, median, print_table,
                    rounds_note, run_isolated, run_keras, spread, workload_row)

SHAPES = [(128, 100, 64, 32), (128, 50, 128, 32)]


# -- engine ------------------------------------------------------------------------------------------
def engine_lstm(b, t, d, u):
    from engine._kernels import recurrent as R
    rng = np.random.default_rng(0)
    x = rng.standard_normal((b, t, d)).astype(np.float32)
    w = (rng.standard_normal((d, 4 * u)) * 0.1).astype(np.float32)
    r = (rng.standard_normal((u, 4 * u)) * 0.1).astype(np.float32)
    bias = np.zeros(4 * u, np.float32)
    h0 = np.zeros((b, u), np.float32)
    g = np.ones((b, u), np.float32)

    # The same work as the PyTorch row: x is data (no gradient asked for it), so the backward
    # computes the weight gradients only.
    def step():
        _, _, _, cache = R.lstm_forward(x, w, r, bias, h0, h0)
        R.lstm_backward(cache, None, g, None, input_grad=False)
    step()
    return best_of(step, repeat=7)


def engine_model(which):
    from engine import tour
    build, data = {"qa": (tour.build_question_answering, tour.question_answering_data),
                   "shared": (tour.build_shared_lstm, tour.shared_lstm_data)}[which]
    model = build()
    x, y = data(np.random.default_rng(0))
    model.fit(x, y, epochs=1, batch_size=128, verbose=0)
    return best_of(lambda: model.fit(x, y, epochs=1, batch_size=128, verbose=0), repeat=3)


def numpy_products(b, t, d, u):
    """The LSTM's three weight-sized products alone, by numpy (OpenBLAS), with no time loop: the
    input projection x W of all steps at once and the weight gradients x^T dZ and h^T dZ.  Every
    LSTM forward+backward on data with no gradient asked does these three (PyTorch and the engine
    both), so this is the floor the rows are measured against: how much the 2 x T sequential
    steps add on top, and what PyTorch's time would allow if they cost nothing."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((b * t, d)).astype(np.float32)
    w = (rng.standard_normal((d, 4 * u)) * 0.1).astype(np.float32)
    h = rng.standard_normal((b * t, u)).astype(np.float32)
    z = np.empty((b * t, 4 * u), np.float32)
    dw, dr = np.empty((d, 4 * u), np.float32), np.empty((u, 4 * u), np.float32)

    def step():
        np.matmul(x, w, out=z)
        np.matmul(x.T, z, out=dw)
        np.matmul(h.T, z, out=dr)
    step()
    return best_of(step, repeat=7)


# -- PyTorch -------------------------------------------------------------------------------------------
def torch_lstm(b, t, d, u):
    import torch
    layer = torch.nn.LSTM(d, u, batch_first=True)
    x = torch.randn(b, t, d)  # data: no gradient, as in the engine row

    def step():
        _, (h, _) = layer(x)
        h.sum().backward()
    step()
    return best_of(step, repeat=7)


def torch_model(which):
    import torch
    rng = np.random.default_rng(0)
    if which == "qa":
        class QA(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.te, self.qe = torch.nn.Embedding(10000, 64), torch.nn.Embedding(10000, 32)
                self.tl, self.ql = torch.nn.LSTM(64, 32, batch_first=True), torch.nn.LSTM(32, 16, batch_first=True)
                self.out = torch.nn.Linear(48, 500)

            def forward(self, text, question):
                _, (ht, _) = self.tl(self.te(text))
                _, (hq, _) = self.ql(self.qe(question))
                return torch.softmax(self.out(torch.cat([ht[0], hq[0]], 1)), 1)
        model = QA()
        xs = [torch.from_numpy(rng.integers(1, 10000, (1000, 100))) for _ in range(2)]
        y = torch.from_numpy(np.eye(500, dtype=np.float32)[rng.integers(0, 500, 1000)])
    else:
        class Shared(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = torch.nn.LSTM(128, 32, batch_first=True)
                self.out = torch.nn.Linear(64, 1)

            def forward(self, left, right):
                _, (hl, _) = self.lstm(left)
                _, (hr, _) = self.lstm(right)
                return torch.sigmoid(self.out(torch.cat([hl[0], hr[0]], 1)))
        model = Shared()
        xs = [torch.from_numpy(rng.standard_normal((1000, 50, 128)).astype(np.float32)) for _ in range(2)]
        y = torch.from_numpy(rng.integers(0, 2, (1000, 1)).astype(np.float32))
    opt = torch.optim.RMSprop(model.parameters(), lr=0.001, alpha=0.9, eps=1e-7)

    def epoch():
        order = torch.randperm(1000)
        for start in range(0, 1000, 128):
            idx = order[start:start + 128]
            p = model(*(x[idx] for x in xs)).clamp(1e-7, 1 - 1e-7)
            yb = y[idx]
            if which == "qa":
                loss = -(yb * torch.log(p / p.sum(1, keepdim=True))).sum(1).mean()
            else:
                loss = -(yb * torch.log(p) + (1 - yb) * torch.log(1 - p)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    epoch()
    return best_of(epoch, repeat=3)


# -- Keras 3 -----------------------------------------------------------------------------------------
KERAS_SCRIPT = """
import json, time, numpy as np, keras
from keras import layers
WHICH = "__WHICH__"
rng = np.random.default_rng(0)
if WHICH == "qa":
    t_in = keras.Input(shape=(None,), dtype='int32'); q_in = keras.Input(shape=(None,), dtype='int32')
    t = layers.LSTM(32)(layers.Embedding(10000, 64)(t_in)); q = layers.LSTM(16)(layers.Embedding(10000, 32)(q_in))
    model = keras.Model([t_in, q_in], layers.Dense(500, activation='softmax')(layers.concatenate([t, q])))
    model.compile(optimizer='rmsprop', loss='categorical_crossentropy')
    x = [rng.integers(1, 10000, (1000, 100)), rng.integers(1, 10000, (1000, 100))]
    y = np.eye(500, dtype='float32')[rng.integers(0, 500, 1000)]
elif WHICH == "shared":
    lstm = layers.LSTM(32); l_in = keras.Input(shape=(None, 128)); r_in = keras.Input(shape=(None, 128))
    model = keras.Model([l_in, r_in], layers.Dense(1, activation='sigmoid')(layers.concatenate([lstm(l_in), lstm(r_in)])))
    model.compile(optimizer='rmsprop', loss='binary_crossentropy')
    x = [rng.standard_normal((1000, 50, 128)).astype('float32') for _ in range(2)]
    y = rng.integers(0, 2, (1000, 1)).astype('float32')
model.fit(x, y, epochs=1, batch_size=128, verbose=0)
best = 1e9
for _ in range(3):
    t0 = time.perf_counter(); model.fit(x, y, epochs=1, batch_size=128, verbose=0)
    best = min(best, time.perf_counter() - t0)
print(json.dumps({"seconds": best}))
"""

RUNNERS = {
    "engine": lambda task: engine_lstm(*SHAPES[int(task[-1])]) if task.startswith("lstm") else engine_model(task),
    "torch": lambda task: torch_lstm(*SHAPES[int(task[-1])]) if task.startswith("lstm") else torch_model(task),
    "numpy-products": lambda task: numpy_products(*SHAPES[int(task[-1])]),
}
FLOOR = "floor: numpy, the 3 big products only"
TASKS = [("lstm0", "LSTM fwd+bwd 128x100x64 -> 32 (ms)"), ("lstm1", "LSTM fwd+bwd 128x50x128 -> 32 (ms)"),
         ("qa", "QA model epoch, 1000x100 (s)"), ("shared", "Shared-LSTM epoch, 1000x50 pairs (s)")]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runner", choices=sorted(RUNNERS))
    parser.add_argument("--task")
    parser.add_argument("--rounds", type=int, default=3,
                        help="times each library runs each row, taking turns (the table shows medians)")
    args = parser.parse_args()
    if args.runner:
        print(json.dumps({"seconds": RUNNERS[args.runner](args.task)}))
        return
    rows, floors = [], []
    for task, label in TASKS:
        scale = 1e3 if task.startswith("lstm") else 1.0
        fmt = "{:.2f}" if scale > 1 else "{:.3f}"
        runs = {"engine": lambda task=task: run_isolated(__file__, "engine", ["--task", task])["seconds"]}
        if have("torch"):
            runs["PyTorch"] = lambda task=task: run_isolated(__file__, "torch", ["--task", task])["seconds"]
        if task.startswith("lstm"):
            runs[FLOOR] = lambda task=task: run_isolated(__file__, "numpy-products", ["--task", task])["seconds"]
        else:
            for backend in keras_backends():
                if backend in ("jax", "tensorflow"):
                    runs[f"Keras-{backend}"] = (lambda backend=backend, task=task: run_keras(
                        KERAS_SCRIPT.replace("__WHICH__", task), backend)["seconds"])
        times = alternate(runs, args.rounds)
        products = times.pop(FLOOR, None)
        rows.append(workload_row(label, times, fmt, scale))
        if products and times["engine"]:
            floor = median(products)
            torch_times = times.get("PyTorch")
            floors.append([label, spread(products, fmt, scale), f"{median(times['engine']) / floor:.2f}",
                             f"{median(torch_times) / floor:.2f}" if torch_times else "-"])
    print_table(f"LSTM workloads ({machine()}, {time.strftime('%Y-%m-%d')}; "
                f"{rounds_note(args.rounds)})",
                WORKLOAD_HEADER, rows)
    if floors:
        print_table("Floor: the layer's three weight-sized products alone (x W, x^T dZ, h^T dZ), by numpy, "
                    "in the same rounds. engine / floor is what its time loop and gate math add; "
                    "PyTorch / floor is the most a layer whose time loop cost nothing could gain over "
                    "PyTorch with products at OpenBLAS's speed",
                    ["workload", FLOOR, "engine / floor", "PyTorch / floor"], floors)


if __name__ == "__main__":
    main()
