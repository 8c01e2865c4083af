"""An epoch of the seed's question-answering model fed by a PyDataset whose __getitem__ takes
5 ms (a sleep standing in for reading and decoding), with 0, 2 and 4 workers loading ahead,
against Keras 3 (each installed backend) with the same loader, in alternating rounds. The
target: with workers, the epoch takes no more than the larger of loading and training, plus 10 %.

    python bench/data.py [--rounds 3]
"""
import argparse
import json
import time

import numpy as np

from common import alternate, keras_backends, machine, median, print_table, run_isolated, run_keras, spread

LOAD_SECONDS = 0.005
BATCH = 128
WORKERS = (0, 2, 4)


def engine_epoch(workers):
    from engine import tour
    from engine.utils import PyDataset
    rng = np.random.default_rng(0)
    x, y = tour.question_answering_data(rng)
    n = len(y)

    class Loader(PyDataset):
        def __len__(self):
            return -(-n // BATCH)

        def __getitem__(self, i):
            time.sleep(LOAD_SECONDS)
            s = slice(i * BATCH, (i + 1) * BATCH)
            return {k: a[s] for k, a in x.items()}, y[s]

    model = tour.build_question_answering()
    if workers < 0:          # training alone, from arrays: the "training" floor
        model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0)
        t0 = time.perf_counter()
        model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0)
        return time.perf_counter() - t0
    data = Loader(workers=workers, max_queue_size=10)
    model.fit(data, epochs=1, verbose=0)
    t0 = time.perf_counter()
    model.fit(data, epochs=1, verbose=0)
    return time.perf_counter() - t0


KERAS_SCRIPT = """
import json, time, numpy as np, keras
from keras import layers
WORKERS = __WORKERS__
rng = np.random.default_rng(0)
t_in = keras.Input(shape=(None,), dtype='int32'); q_in = keras.Input(shape=(None,), dtype='int32')
t = layers.LSTM(32)(layers.Embedding(10000, 64)(t_in)); q = layers.LSTM(16)(layers.Embedding(10000, 32)(q_in))
model = keras.Model([t_in, q_in], layers.Dense(500, activation='softmax')(layers.concatenate([t, q])))
model.compile(optimizer='rmsprop', loss='categorical_crossentropy')
x = [rng.integers(1, 10000, (1000, 100)), rng.integers(1, 10000, (1000, 100))]
y = np.eye(500, dtype='float32')[rng.integers(0, 500, 1000)]
class Loader(keras.utils.PyDataset):
    def __len__(self):
        return -(-1000 // 128)
    def __getitem__(self, i):
        time.sleep(__LOAD__)
        s = slice(i * 128, (i + 1) * 128)
        return (x[0][s], x[1][s]), y[s]
data = Loader(workers=max(WORKERS, 1), max_queue_size=10)
model.fit(data, epochs=1, verbose=0)
t0 = time.perf_counter(); model.fit(data, epochs=1, verbose=0)
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runner")
    parser.add_argument("--task")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.runner:
        print(json.dumps({"seconds": engine_epoch(int(args.task))}))
        return
    runs = {"engine, arrays (training alone)": lambda: run_isolated(__file__, "engine", ["--task", "-1"])["seconds"]}
    for w in WORKERS:
        runs[f"engine, {w} workers"] = lambda w=w: run_isolated(__file__, "engine", ["--task", str(w)])["seconds"]
    for backend in keras_backends():
        if backend in ("jax", "tensorflow"):
            for w in WORKERS:
                script = KERAS_SCRIPT.replace("__WORKERS__", str(w)).replace("__LOAD__", str(LOAD_SECONDS))
                runs[f"Keras-{backend}, {w} workers"] = (lambda script=script, backend=backend:
                                                         run_keras(script, backend)["seconds"])
    times = alternate(runs, args.rounds)
    steps = -(-1000 // BATCH)
    loading = steps * LOAD_SECONDS
    training = median(times["engine, arrays (training alone)"])
    target = max(loading, training) * 1.1
    rows = []
    for name, values in times.items():
        if not values:
            continue
        rows.append([name, spread(values, "{:.3f}"), f"{median(values) / target:.2f}"])
    print_table(f"QA epoch fed by a PyDataset, {steps} batches of {BATCH}, {LOAD_SECONDS * 1e3:.0f} ms to load "
                f"each ({machine()}, {time.strftime('%Y-%m-%d')}; median of {args.rounds} alternating rounds). "
                f"Loading alone {loading:.3f} s, engine training alone {training:.3f} s: target "
                f"max(...) x 1.1 = {target:.3f} s",
                ["runner", "s/epoch", "/ target"], rows)


if __name__ == "__main__":
    main()
