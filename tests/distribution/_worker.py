"""The script tests/distribution/test_mpi.py runs, as one process (the reference) or under
`mpirun -n 2` (data-parallel): `python _worker.py MODE OUT_DIR`.

Modes:
  reference  train / evaluate / predict the test models in one process, without a distribution
  parallel   the same under DataParallel, plus the checks only a multi-rank job can make (ranks
             bit-identical after every step, synchronized BatchNormalization against a one-process
             computation, sharding, rank-0 writes); rank 0 saves what it saw
  three      part 1 (arrays) only, for a job of 3 ranks (gradients reduced onto rank 0, then broadcast)
  raise      rank 1 raises during fit (the job must abort with its message)
  kill       rank 1 is killed during fit (the job must end with an error)
  crash      fit with BackupAndRestore(BACKUP_DIR), failing at the start of epoch 3 of 4
  resume     fit again from BACKUP_DIR (on one rank or two): only the last 2 epochs run
The fit of crash / resume has no dropout and no shuffling, so that the resumed weights must be
those of the uninterrupted fit (which the reference job makes).
Usage: python _worker.py MODE OUT_DIR [BACKUP_DIR]. Results: OUT_DIR/MODE.npz (arrays) and OUT_DIR/MODE.json (histories, evaluate results, checks).
"""
import hashlib
import json
import os
import signal
import sys

import numpy as np

import engine
from engine import Input, Model, callbacks, distribution, layers, ops, utils

MODE, OUT = sys.argv[1], sys.argv[2]
BACKUP = sys.argv[3] if len(sys.argv) > 3 else None
PARALLEL = MODE != "reference"        # (under DataParallel a job of one rank runs as one process)
if PARALLEL:
    distribution.set_distribution(distribution.DataParallel())
    from mpi4py import MPI
    COMM = MPI.COMM_WORLD
    RANK = COMM.Get_rank()
else:
    RANK = 0

N, VOCAB, STEPS = 41, 20, 6          # 41 rows in batches of 8: the last global batch has one row


def data(n, seed):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, VOCAB, (n, STEPS)).astype("int32")
    tokens[:, :2] *= rng.integers(0, 2, (n, 1))       # some leading zeros
    numeric = rng.standard_normal((n, 5)).astype("float32")
    cls = np.eye(3, dtype="float32")[rng.integers(0, 3, n)]
    reg = rng.standard_normal((n, 1)).astype("float32")
    return {"tokens": tokens, "numeric": numeric}, {"cls": cls, "reg": reg}


def build(synchronized=True, dropout=0.25):
    """Two inputs, two outputs: Embedding + LSTM, Dense + BatchNormalization + Dropout."""
    utils.set_random_seed(0)
    tokens = Input(shape=(STEPS,), dtype="int32", name="tokens")
    numeric = Input(shape=(5,), name="numeric")
    a = layers.LSTM(8)(layers.Embedding(VOCAB, 8)(tokens))
    b = layers.Dense(8, activation="relu")(numeric)
    b = layers.Dropout(dropout)(layers.BatchNormalization(synchronized=synchronized)(b))
    h = layers.Dense(8, activation="relu")(layers.concatenate([a, b]))
    model = Model([tokens, numeric], [layers.Dense(3, activation="softmax", name="cls")(h),
                                      layers.Dense(1, name="reg")(h)])
    model.compile("adam", {"cls": "categorical_crossentropy", "reg": "mse"},
                  metrics={"cls": ["acc"], "reg": ["mae"]})
    return model


def digest(model):
    h = hashlib.sha256()
    for v in list(model.variables) + list(model.optimizer.variables):
        h.update(np.ascontiguousarray(v.numpy()).tobytes())
    return h.hexdigest()


class SameOnEveryRank(callbacks.Callback):
    """After every training step: the weights and optimizer state hash the same on every rank."""

    def __init__(self):
        super().__init__()
        self.steps = self.mismatches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if len(set(COMM.allgather(digest(self.model)))) != 1:
            self.mismatches += 1


class Batches(utils.PyDataset):
    def __init__(self, x, y, batch_size):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return -(-N // self.batch_size)

    def __getitem__(self, i):
        s = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return {k: v[s] for k, v in self.x.items()}, {k: v[s] for k, v in self.y.items()}


def generator(x, y, batch_size):
    for i in range(0, N, batch_size):
        s = slice(i, i + batch_size)
        yield {k: v[s] for k, v in x.items()}, {k: v[s] for k, v in y.items()}


arrays, report = {}, {"checks": {}}
checks = report["checks"]
counted = {"planned steps": 0, "tables gathered as rows": 0, "tables decided at finish": 0}
if PARALLEL:
    # count the data-parallel steps replayed through their plan, and the Embedding gradients
    # reduced as rows (GradientReducer._gather_rows returns True for those)
    from engine.distribution import gradients as _gradients
    from engine.models import plan as _plan

    def _counting(cls, name, key):
        original = getattr(cls, name)

        def wrapper(*args, **kwargs):
            out = original(*args, **kwargs)
            counted[key] += out is not False
            return out
        setattr(cls, name, wrapper)
    _counting(_plan.Plan, "run_train", "planned steps")
    _counting(_gradients.GradientReducer, "_gather_rows", "tables gathered as rows")
    _counting(_gradients.GradientReducer, "_decide_deferred", "tables decided at finish")


def sparse_model():
    """An Embedding table much larger than a batch's ids: its gradient is reduced as rows. At
    66000 x 4 float32 it is over GradientReducer's 1 MB bucket size, so alone in its bucket: its
    way (rows or dense) is decided when the reduction finishes."""
    utils.set_random_seed(0)
    tokens = Input(shape=(STEPS,), dtype="int32", name="tokens")
    h = layers.GlobalAveragePooling1D()(layers.Embedding(66000, 4)(tokens))
    model = Model(tokens, layers.Dense(3, activation="softmax")(h))
    model.compile("rmsprop", "categorical_crossentropy")
    return model
x, y = data(N, 1)
xv, yv = data(13, 2)

if MODE in ("raise", "kill"):
    class Fail(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 2 and RANK == 1:
                if MODE == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                raise ValueError("boom on rank 1 at step 2")
    build().fit(x, y, batch_size=8, epochs=50, verbose=0, callbacks=[Fail()])
    sys.exit(0)

if MODE in ("crash", "resume"):
    class Crash(callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2 and MODE == "crash":
                raise RuntimeError("interrupted at epoch 3")
    model = build(dropout=0.0)
    history = model.fit(x, y, batch_size=8, epochs=4, shuffle=False, verbose=0,
                        callbacks=[callbacks.BackupAndRestore(BACKUP), Crash()])
    if RANK == 0:
        np.savez(os.path.join(OUT, f"resume{distribution.get_device_count()}.npz"),
                 epochs=len(history.history["loss"]), **{f"w{i}": w for i, w in enumerate(model.get_weights())})
    sys.exit(0)

if MODE == "reference":      # what crash + resume must give
    model = build(dropout=0.0)
    model.fit(x, y, batch_size=8, epochs=4, shuffle=False, verbose=0)
    arrays.update({f"uninterrupted{i}": w for i, w in enumerate(model.get_weights())})

# 1. arrays: shuffled fit with validation, evaluate, predict (global batches as one process)
model = build()
cbs = []
if PARALLEL:
    same = SameOnEveryRank()
    cbs = [same] if MODE == "three" else [
        same, callbacks.CSVLogger(os.path.join(OUT, "log.csv")),
        callbacks.ModelCheckpoint(os.path.join(OUT, "ckpt.weights.h5"), save_weights_only=True)]
history = model.fit(x, y, batch_size=8, epochs=2, shuffle=True, validation_data=(xv, yv),
                    validation_batch_size=6, verbose=0, callbacks=cbs)
report["history"] = history.history
report["evaluate"] = model.evaluate(xv, yv, batch_size=5, verbose=0, return_dict=True)
arrays.update({f"weight{i}": w for i, w in enumerate(model.get_weights())})
arrays.update({f"predict_{k}": v for k, v in zip(["cls", "reg"], model.predict(x, batch_size=7, verbose=0))})
if PARALLEL:
    checks["identical after every step"] = [same.steps, same.mismatches]
    checks["planned steps"], counted["planned steps"] = counted["planned steps"], 0
    checks["tables gathered as rows"], counted["tables gathered as rows"] = counted["tables gathered as rows"], 0
    checks["tables decided at finish"], counted["tables decided at finish"] = counted["tables decided at finish"], 0

# 1b. a table of 66000 rows, 48 ids a step: its gradient travels as rows (the part-1 tokens spread
#     over its first 500 rows); the planned steps reduce it as rows as well
sparse = sparse_model()
sparse_tokens = (x["tokens"] * 23 + np.arange(N)[:, None]) % 500
same = SameOnEveryRank() if PARALLEL else None
sparse.fit(sparse_tokens, y["cls"], batch_size=8, epochs=2, shuffle=True, verbose=0,
           callbacks=[same] if same else [])
arrays.update({f"sparse_weight{i}": w for i, w in enumerate(sparse.get_weights())})
if PARALLEL:
    checks["sparse identical after every step"] = [same.steps, same.mismatches]
    checks["sparse planned steps"], counted["planned steps"] = counted["planned steps"], 0
    checks["sparse tables gathered as rows"] = counted["tables gathered as rows"]
    checks["sparse tables decided at finish"] = counted["tables decided at finish"]
if MODE == "three":
    if RANK == 0:
        np.savez(os.path.join(OUT, "three.npz"), **arrays)
        with open(os.path.join(OUT, "three.json"), "w") as f:
            json.dump(report, f, default=float)
    sys.exit(0)

# 2. a PyDataset and a generator: batches of 4 on each of 2 ranks are global batches of 8
per_rank = 4 if PARALLEL else 8
model = build()
report["history_pydataset"] = model.fit(Batches(x, y, per_rank), epochs=1, shuffle=False, verbose=0).history
report["history_generator"] = model.fit(generator(x, y, per_rank), epochs=1, verbose=0).history
report["evaluate_generator"] = model.evaluate(generator(x, y, per_rank), verbose=0, return_dict=True)
arrays.update({f"source_weight{i}": w for i, w in enumerate(model.get_weights())})
arrays.update({f"source_predict_{k}": v
               for k, v in zip(["cls", "reg"], model.predict(Batches(x, y, per_rank), verbose=0))})

if PARALLEL:
    from engine.distribution import training as distributed
    from engine.distribution.training import shard

    # 3. BatchNormalization without synchronization: each rank its own statistics, the moving ones
    #    averaged, so the ranks still agree after every step.
    model = build(synchronized=False)
    same = SameOnEveryRank()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[same])
    checks["unsynchronized identical after every step"] = [same.steps, same.mismatches]

    # 4. synchronized BatchNormalization on one global batch against one process's computation
    #    (float64 reference written out), output and gradients.
    rng = np.random.default_rng(5)
    xb = rng.standard_normal((7, 3, 4)).astype("float32")       # rank 0 takes 4 rows, rank 1 3
    upstream = rng.standard_normal((7, 3, 4)).astype("float32")
    bn = layers.BatchNormalization(synchronized=True, gamma_initializer="random_normal",
                                   beta_initializer="random_normal")
    bn.build((None, 3, 4))
    part = shard(slice(0, 7), 7)
    with distributed.step(part), engine.GradientTape() as tape:
        xl = ops.convert_to_tensor(xb[part.index])
        tape.watch(xl)
        out = bn(xl, training=True)
        # as in a training step: this rank's mean over its rows x (its rows / global rows)
        loss = ops.sum(out * upstream[part.index]) / part.total
    g_x, g_gamma, g_beta = tape.gradient(loss, [xl, bn.gamma, bn.beta])
    out_all = np.concatenate(COMM.allgather(np.asarray(out)))
    gx_all = np.concatenate(COMM.allgather(np.asarray(g_x)))
    g_gamma = sum(COMM.allgather(np.asarray(g_gamma, np.float64)))
    g_beta = sum(COMM.allgather(np.asarray(g_beta, np.float64)))
    x64, u64 = xb.astype(np.float64).reshape(-1, 4), upstream.astype(np.float64).reshape(-1, 4) / 7
    gamma, beta = bn.gamma.numpy().astype(np.float64), bn.beta.numpy().astype(np.float64)
    mean, var = x64.mean(0), x64.var(0)
    xhat = (x64 - mean) / np.sqrt(var + 1e-3)
    ref_out = (xhat * gamma + beta).reshape(xb.shape)
    dxhat = u64 * gamma
    ref_gx = ((dxhat - dxhat.mean(0) - xhat * (dxhat * xhat).mean(0)) / np.sqrt(var + 1e-3)).reshape(xb.shape)
    checks["synchronized bn output"] = float(np.abs(out_all - ref_out).max())
    checks["synchronized bn grad x"] = float(np.abs(gx_all - ref_gx).max())
    checks["synchronized bn grad gamma"] = float(np.abs(g_gamma - (u64 * xhat).sum(0)).max())
    checks["synchronized bn grad beta"] = float(np.abs(g_beta - u64.sum(0)).max())
    checks["synchronized bn moving mean"] = float(np.abs(bn.moving_mean.numpy() - 0.01 * mean).max())

    # 5. sharding of a global batch: even split, first ranks one row more, a rank with no rows
    parts = [shard(slice(8, 13), 41), shard(np.array([5, 3, 9]), 41), shard(slice(40, 48), 41)]
    checks["shards"] = COMM.allgather([(p.count, p.offset, p.total, p.rows) for p in parts])
    checks["shard indices"] = COMM.allgather([str(parts[0].index), parts[1].index.tolist(), str(parts[2].index)])
    checks["devices"] = distribution.list_devices()
    # the wait policy DataParallel chose: polling when 2 ranks x 1 thread (OMP_NUM_THREADS=1)
    # fit the cores both ranks may run on
    from engine.distribution import collectives as _collectives
    cores = set().union(*COMM.allgather(sorted(os.sched_getaffinity(0))))
    checks["wait policy"] = [_collectives._limits[0] == _collectives.DEDICATED_SPIN_SECONDS, 2 <= len(cores)]

    # 6. only rank 0 writes files
    path = os.path.join(OUT, f"saved_by_rank{RANK}.keras")
    model.save(path)
    COMM.Barrier()
    checks["files"] = sorted(COMM.allgather(sorted(f for f in os.listdir(OUT) if not f.endswith((".npz", ".json")))))[0]
    checks["csv lines"] = sum(1 for _ in open(os.path.join(OUT, "log.csv")))

    # 7. rank 0's arrays written in place on every rank (any dtype, 0-d, a strided view, empty);
    #    shapes that differ between ranks are a ValueError on every rank, none left in a broadcast;
    #    weights changed on one rank are rank 0's again once evaluate begins
    from engine.distribution import collectives
    rng = np.random.default_rng(7 + RANK)
    base = rng.standard_normal((6, 4)).astype("float32")
    held = [rng.standard_normal((3, 5)).astype("float16"), np.array(RANK + 3, np.int64), base[:, ::2],
            np.zeros(0, np.float32), rng.standard_normal((2, 2))]
    rank0 = COMM.bcast([a.copy() for a in held])
    collectives.broadcast_into(held)
    checks["broadcast into"] = [all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(held, rank0)),
                                bool(np.array_equal(base[:, ::2], rank0[2]))]
    try:
        collectives.broadcast_into([np.zeros(3), np.zeros((2, RANK + 1))], names=["first", "second"])
        checks["broadcast mismatch"] = None
    except ValueError as e:
        checks["broadcast mismatch"] = str(e)
    checks["broadcast mismatch"] = COMM.allgather(checks["broadcast mismatch"])
    model = build()
    if RANK == 1:
        model.set_weights([w + 1 for w in model.get_weights()])
    model.evaluate(xv, yv, verbose=0)
    checks["weights from rank 0"] = len(set(COMM.allgather(digest(model)))) == 1

    # 7b. a fit after a fit (or an evaluate after it) sends no state: the ranks already hold the
    #     same; a write one rank makes in between (assign, set_weights, an optimizer step outside
    #     fit, a fit without the distribution) makes the next fit send rank 0's state again
    sent = []
    broadcast_into = collectives.broadcast_into

    def counting_broadcast(arrays, *args, **kwargs):
        sent.append(len(arrays))
        return broadcast_into(arrays, *args, **kwargs)
    collectives.broadcast_into = counting_broadcast

    def sends(action):
        before = len(sent)
        action()
        model.fit(xv, yv, batch_size=4, epochs=1, verbose=0)
        return [len(sent) - before, len(set(COMM.allgather(digest(model)))) == 1]

    def on_rank_1(write):
        return lambda: write() if RANK == 1 else None

    def local_fit():
        dp = distribution.distribution()
        distribution.set_distribution(None)
        model.fit(xv, yv, batch_size=4, epochs=1, verbose=0)
        distribution.set_distribution(dp)
    kernel = model.get_layer("cls").kernel
    resends = {"first fit": sends(lambda: None), "fit after fit": sends(lambda: None),
               "evaluate after fit": sends(lambda: model.evaluate(xv, yv, verbose=0)),
               "assign": sends(on_rank_1(lambda: kernel.assign(kernel.numpy() + 1))),
               "set_weights": sends(on_rank_1(lambda: model.set_weights([w * 2 for w in model.get_weights()]))),
               "optimizer step": sends(on_rank_1(lambda: model.optimizer.apply(
                   [np.full(w.shape, 0.1, w.dtype) for w in model.trainable_weights], model.trainable_weights))),
               "fit without the distribution": sends(on_rank_1(local_fit))}
    collectives.broadcast_into = broadcast_into
    checks["state resent"] = resends

    # 8. ranks reducing different tables by rows at the same point raise (on every rank) instead
    #    of pairing up the wrong collectives
    from engine.distribution.gradients import GradientReducer
    from engine.ops.embedding import RowGradient
    tables = [engine.Variable(np.zeros((50, 3), np.float32)) for _ in range(2)]
    reducer = GradientReducer(tables).start()
    try:
        reducer.on_ready(RANK, RowGradient(np.array([1, 2]), np.ones((2, 3), np.float32), (50, 3), np.float32))
        checks["different tables"] = None
    except RuntimeError as e:
        checks["different tables"] = str(e)
    checks["different tables"] = COMM.allgather(checks["different tables"])
    #    the same for tables alone in their buckets, whose way is decided in finish()
    reducer = GradientReducer(tables, bucket_bytes=64).start()
    table_grad = RowGradient(np.array([1, 2]), np.ones((2, 3), np.float32), (50, 3), np.float32)
    try:
        for i in ((0, 1) if RANK == 0 else (1, 0)):
            reducer.on_ready(i, table_grad)
        reducer.finish()
        checks["different deferred tables"] = None
    except RuntimeError as e:
        checks["different deferred tables"] = str(e)
    checks["different deferred tables"] = COMM.allgather(checks["different deferred tables"])

    # 9. a table alone in its bucket: rows when the ids over all ranks are at most twice its rows,
    #    else dense; either way the sum of every rank's gradient, the same bits on every rank
    def rank_grad(r, n):
        g = np.random.default_rng(90 + r)
        return g.integers(0, 50, n), g.standard_normal((n, 3)).astype(np.float32)
    deferred = []
    for n in (10, 60):                               # 20 ids over 2 ranks: rows; 120 > 100: dense
        reducer = GradientReducer(tables[:1], bucket_bytes=64).start()
        ids, rows = rank_grad(RANK, n)
        reducer.on_ready(0, RowGradient(ids, rows, (50, 3), np.float32))
        got = np.asarray(reducer.finish()[0], np.float64)
        ref = np.zeros((50, 3))
        for r in range(2):
            ids_r, rows_r = rank_grad(r, n)
            np.add.at(ref, ids_r, rows_r.astype(np.float64))
        deferred.append([type(reducer.rows.get(0)).__name__, float(np.abs(got - ref).max()),
                         len(set(COMM.allgather(hashlib.sha256(got.tobytes()).hexdigest())))])
    checks["deferred tables"] = deferred

    # every rank must have seen the same results
    checks["ranks agree"] = len({json.dumps(r, sort_keys=True) for r in COMM.allgather(
        [report["history"], report["evaluate"], report["history_pydataset"]])}) == 1
    checks["predictions agree"] = len(set(COMM.allgather(
        hashlib.sha256(arrays["predict_cls"].tobytes()).hexdigest()))) == 1

if not PARALLEL:
    # the API in a job of one rank (data-parallel training is then off: one process's numbers)
    dp = distribution.DataParallel()
    with dp.scope():
        inside = distribution.distribution() is dp
    errors = []
    for bad in (lambda: distribution.DataParallel(auto_shard_dataset=False),
                lambda: distribution.DataParallel(device_mesh=distribution.DeviceMesh((1,), ["batch"], ["cpu:7"])),
                lambda: distribution.list_devices("gpu"),
                lambda: distribution.set_distribution(object()),
                lambda: distribution.initialize(job_addresses="10.0.0.1:1234"),
                lambda: distribution.initialize(process_id=3)):
        try:
            bad()
            errors.append(None)
        except ValueError as e:
            errors.append(str(e))
    expected = ["auto_shard_dataset", "devices must be all", "CPUs only", "DataParallel only",
                "job_addresses", "process_id"]
    checks["api"] = {"devices": distribution.list_devices(), "count": distribution.get_device_count("cpu"),
                     "data parallel": [dp.num_processes, dp.data_shard_id, dp.batch_dim_name],
                     "scope": [inside, distribution.distribution() is None],
                     "errors": [want if e and want in e else e for want, e in zip(expected, errors)]}

if RANK == 0:
    np.savez(os.path.join(OUT, f"{MODE}.npz"), **arrays)
    with open(os.path.join(OUT, f"{MODE}.json"), "w") as f:
        json.dump(report, f, default=float)
