"""Convolution workloads: engine against PyTorch (oneDNN, the faster of its channels_last and NCHW
layouts) and Keras 3, each in its own process.

Rows: Conv2D forward+backward 8x32x32x64 -> 128, 3x3, same; 2x250x250x3 -> 32, 3x3, stride 2;
Conv1D 64x500x256 -> 128, k=5; MaxPooling2D 2x2 forward on 8x32x32x64; an epoch of the seed's
three-output model (listings 7-3 to 7-6: 1,000 posts of length 500, batch 64); the dual-camera
Xception `predict` on 2 pairs of 250x250x3 (7.1.6).

    python bench/conv.py
"""
import argparse
import json
import time

import numpy as np

from common import (WORKLOAD_HEADER, alternate, best_of, have, keras_backends, machine, print_table,
                    rounds_note, run_isolated, run_keras, workload_row)

CONVS = {"conv_a": ((8, 32, 32, 64), (3, 3, 64, 128), 1, "same"),
         "conv_b": ((2, 250, 250, 3), (3, 3, 3, 32), 2, "valid"),
         "conv1d": ((64, 500, 256), (5, 256, 128), 1, "valid")}


def engine_task(task):
    import engine
    from engine import ops, GradientTape
    from engine.ops import convolution as C
    rng = np.random.default_rng(0)
    if task in CONVS:
        xs, ws, stride, padding = CONVS[task]
        x = rng.standard_normal(xs).astype(np.float32)
        w = engine.Variable(rng.standard_normal(ws).astype(np.float32) * 0.05)

        def step():
            with GradientTape() as tape:
                tape.watch(x)
                y = ops.conv(x, w, strides=stride, padding=padding)
            tape.gradient(y, [x, w], output_gradients=np.ones_like(y))
        step()
        return best_of(step, repeat=5)
    if task == "maxpool":
        x = rng.standard_normal((8, 32, 32, 64)).astype(np.float32)
        C.pool2d(x, "max", 2)
        return best_of(lambda: C.pool2d(x, "max", 2), repeat=20, number=10)
    from engine import tour
    if task == "three":
        model = tour.build_three_outputs()
        posts, targets = tour.three_outputs_data(rng)
        model.fit(posts[:128], {k: v[:128] for k, v in targets.items()}, epochs=1, batch_size=64, verbose=0)
        return best_of(lambda: model.fit(posts, targets, epochs=1, batch_size=64, verbose=0), repeat=2)
    if task == "xception":
        model = tour.build_dual_camera()
        x, _ = tour.dual_camera_data(rng)
        model.predict(x, verbose=0)
        return best_of(lambda: model.predict(x, verbose=0), repeat=3)
    raise ValueError(task)


def torch_task(task):
    import torch
    import torch.nn.functional as F
    torch.manual_seed(0)
    if task in CONVS:
        xs, ws, stride, padding = CONVS[task]
        best = float("inf")
        for channels_last in (False, True):
            if len(xs) == 3:
                if channels_last:
                    continue
                x = torch.randn(xs[0], xs[2], xs[1], requires_grad=True)
                w = torch.randn(ws[2], ws[1], ws[0], requires_grad=True)
                fn = lambda: F.conv1d(x, w, stride=stride)
            else:
                fmt = torch.channels_last if channels_last else torch.contiguous_format
                x = torch.randn(xs[0], xs[3], xs[1], xs[2]).to(memory_format=fmt).requires_grad_()
                w = torch.randn(ws[3], ws[2], ws[0], ws[1]).to(memory_format=fmt).requires_grad_()
                fn = lambda: F.conv2d(x, w, stride=stride, padding=1 if padding == "same" else 0)

            def step():
                y = fn()
                y.backward(torch.ones_like(y))
            step()
            best = min(best, best_of(step, repeat=5))
        return best
    if task == "maxpool":
        best = float("inf")
        for fmt in (torch.contiguous_format, torch.channels_last):
            x = torch.randn(8, 64, 32, 32).to(memory_format=fmt)
            F.max_pool2d(x, 2)
            best = min(best, best_of(lambda: F.max_pool2d(x, 2), repeat=20, number=10))
        return best
    if task == "three":
        class Three(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.emb = torch.nn.Embedding(50000, 256)
                self.c = torch.nn.ModuleList([torch.nn.Conv1d(256 if i == 0 else (128 if i == 1 else 256),
                                                              128 if i == 0 else 256, 5) for i in range(5)])
                self.dense = torch.nn.Linear(256, 128)
                self.age, self.income, self.gender = (torch.nn.Linear(128, 1), torch.nn.Linear(128, 10),
                                                      torch.nn.Linear(128, 1))

            def forward(self, posts):
                x = self.emb(posts).transpose(1, 2)
                x = F.max_pool1d(F.relu(self.c[0](x)), 5)
                x = F.relu(self.c[2](F.relu(self.c[1](x))))
                x = F.max_pool1d(x, 5)
                x = F.relu(self.c[4](F.relu(self.c[3](x))))
                x = F.relu(self.dense(x.amax(2)))
                return self.age(x), torch.softmax(self.income(x), 1), torch.sigmoid(self.gender(x))
        rng = np.random.default_rng(0)
        model = Three()
        posts = torch.from_numpy(rng.integers(1, 50000, (1000, 500)))
        age = torch.from_numpy(rng.uniform(18, 80, (1000, 1)).astype(np.float32))
        income = torch.from_numpy(np.eye(10, dtype=np.float32)[rng.integers(0, 10, 1000)])
        gender = torch.from_numpy(rng.integers(0, 2, (1000, 1)).astype(np.float32))
        opt = torch.optim.RMSprop(model.parameters(), lr=0.001, alpha=0.9, eps=1e-7)

        def epoch():
            for start in range(0, 1000, 64):
                sl = slice(start, start + 64)
                a, i, g = model(posts[sl])
                g = g.clamp(1e-7, 1 - 1e-7)
                loss = 0.25 * F.mse_loss(a, age[sl]) - (income[sl] * torch.log(i.clamp(1e-7, 1))).sum(1).mean() \
                    - 10 * (gender[sl] * torch.log(g) + (1 - gender[sl]) * torch.log(1 - g)).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        epoch()
        return best_of(epoch, repeat=2)
    return None


KERAS_SCRIPT = """
import json, time, numpy as np, keras
from keras import layers
WHICH = "__WHICH__"
rng = np.random.default_rng(0)
if WHICH == "three":
    posts_input = keras.Input(shape=(None,), dtype='int32')
    x = layers.Embedding(50000, 256)(posts_input)
    x = layers.Conv1D(128, 5, activation='relu')(x); x = layers.MaxPooling1D(5)(x)
    x = layers.Conv1D(256, 5, activation='relu')(x); x = layers.Conv1D(256, 5, activation='relu')(x)
    x = layers.MaxPooling1D(5)(x)
    x = layers.Conv1D(256, 5, activation='relu')(x); x = layers.Conv1D(256, 5, activation='relu')(x)
    x = layers.GlobalMaxPooling1D()(x); x = layers.Dense(128, activation='relu')(x)
    model = keras.Model(posts_input, [layers.Dense(1, name='age')(x), layers.Dense(10, activation='softmax', name='income')(x),
                                      layers.Dense(1, activation='sigmoid', name='gender')(x)])
    model.compile(optimizer='rmsprop', loss=['mse', 'categorical_crossentropy', 'binary_crossentropy'],
                  loss_weights=[0.25, 1., 10.])
    posts = rng.integers(1, 50000, (1000, 500))
    ys = [rng.uniform(18, 80, (1000, 1)), np.eye(10)[rng.integers(0, 10, 1000)], rng.integers(0, 2, (1000, 1)).astype('float32')]
    model.fit(posts[:128], [y[:128] for y in ys], epochs=1, batch_size=64, verbose=0)
    run = lambda: model.fit(posts, ys, epochs=1, batch_size=64, verbose=0)
    repeat = 2
else:
    base = keras.applications.Xception(weights=None, include_top=False)
    l = keras.Input(shape=(250, 250, 3)); r = keras.Input(shape=(250, 250, 3))
    model = keras.Model([l, r], layers.concatenate([base(l), base(r)], axis=-1))
    x = [rng.random((2, 250, 250, 3)).astype('float32') for _ in range(2)]
    model.predict(x, verbose=0)
    run = lambda: model.predict(x, verbose=0)
    repeat = 3
best = 1e9
for _ in range(repeat):
    t0 = time.perf_counter(); run(); best = min(best, time.perf_counter() - t0)
print(json.dumps({"seconds": best}))
"""

TASKS = [("conv_a", "Conv2D fwd+bwd 8x32x32x64 -> 128, 3x3 same (ms)", 1e3),
         ("conv_b", "Conv2D fwd+bwd 2x250x250x3 -> 32, 3x3 s2 (ms)", 1e3),
         ("conv1d", "Conv1D fwd+bwd 64x500x256 -> 128, k5 (ms)", 1e3),
         ("maxpool", "MaxPooling2D 2x2 fwd 8x32x32x64 (ms)", 1e3),
         ("three", "Three-output model epoch, 1000x500 (s)", 1.0),
         ("xception", "Dual-camera Xception predict, 2 pairs (s)", 1.0)]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runner", choices=["engine", "torch"])
    parser.add_argument("--task")
    parser.add_argument("--only", nargs="*", help="task names to run (default: all)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="times each library runs each row, taking turns (the table shows medians)")
    args = parser.parse_args()
    if args.runner:
        fn = engine_task if args.runner == "engine" else torch_task
        print(json.dumps({"seconds": fn(args.task)}))
        return
    rows = []
    for task, label, scale in TASKS:
        if args.only and task not in args.only:
            continue
        fmt = "{:.3f}" if scale == 1.0 else "{:.2f}"
        runs = {"engine": lambda task=task: run_isolated(__file__, "engine", ["--task", task])["seconds"]}
        if have("torch"):
            runs["PyTorch"] = lambda task=task: run_isolated(__file__, "torch", ["--task", task])["seconds"]
        if task in ("three", "xception"):
            for backend in keras_backends():
                if backend in ("jax", "tensorflow"):
                    runs[f"Keras-{backend}"] = (lambda backend=backend, task=task: run_keras(
                        KERAS_SCRIPT.replace("__WHICH__", task), backend, timeout=1800)["seconds"])
        rows.append(workload_row(label, alternate(runs, args.rounds), fmt, scale))
    print_table(f"Convolution workloads ({machine()}, {time.strftime('%Y-%m-%d')}; "
                f"{rounds_note(args.rounds)})",
                WORKLOAD_HEADER, rows)


if __name__ == "__main__":
    main()
