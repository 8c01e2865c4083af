"""Attention and layer normalization: engine against PyTorch and Keras 3, each in its own process.

Rows: MultiHeadAttention forward+backward (self-attention, float32, gradients for the input and
every weight) for batch 32 x 200 steps x 32 features with 2 heads and 8 x 512 x 256 with 8 heads
(key_dim = features / heads); LayerNormalization forward+backward on 32 x 200 x 256; one epoch
of keras-io's Transformer text classifier (vocab 20,000, maxlen 200, embed 32, 2 heads with
key_dim 32, ff 32, batch 32, Adam) on 1,024 samples (PyTorch: the same model in plain PyTorch).

Each library runs in a fresh process per round (two OpenMP runtimes in one process fight on a
2-core machine) and the libraries take turns, round by round; the table gives the median over
rounds with the range.  A library that is not installed is reported and skipped.  Keras may
live in another interpreter: set ENGINE_BENCH_KERAS_PYTHON, as for the other bench scripts
(KERAS_PYTHON is still read; default: this interpreter).

    python bench/attention.py [--rounds 3]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MHA_SHAPES = [(32, 200, 32, 2), (8, 512, 256, 8)]
LN_SHAPE = (32, 200, 256)
TEXT = dict(vocab=20000, maxlen=200, embed=32, heads=2, ff=32, batch=32, samples=1024)


def best(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def text_data():
    rng = np.random.default_rng(0)
    x = rng.integers(0, TEXT["vocab"], (TEXT["samples"], TEXT["maxlen"])).astype("int32")
    return x, (x[:, 0] < TEXT["vocab"] // 2).astype("int32")


# -- engine -----------------------------------------------------------------------------------------
def engine_rows():
    sys.path.insert(0, os.path.dirname(HERE))
    import engine
    from engine import layers
    from engine.autodiff import GradientTape
    rng = np.random.default_rng(0)
    out = {}
    for b, t, d, h in MHA_SHAPES:
        layer = layers.MultiHeadAttention(h, d // h)
        x = rng.standard_normal((b, t, d)).astype("float32")
        layer(x, x)

        def step():
            with GradientTape() as tape:
                tape.watch(x)
                y = layer(x, x)
            tape.gradient(y, [x] + layer.trainable_weights)
        out[f"mha {b}x{t}x{d} h{h}"] = best(step, 5)
    ln = layers.LayerNormalization()
    x = rng.standard_normal(LN_SHAPE).astype("float32")
    ln(x)

    def ln_step():
        with GradientTape() as tape:
            tape.watch(x)
            y = ln(x)
        tape.gradient(y, [x] + ln.trainable_weights)
    out["layernorm 32x200x256"] = best(ln_step, 10)
    out["text epoch"] = engine_epoch(engine, layers)
    return out


def engine_epoch(engine, layers):
    class TransformerBlock(layers.Layer):
        def __init__(self, embed_dim, num_heads, ff_dim, rate=0.1, **kwargs):
            super().__init__(**kwargs)
            self.att = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
            self.ffn1 = layers.Dense(ff_dim, activation="relu")
            self.ffn2 = layers.Dense(embed_dim)
            self.norm1, self.norm2 = layers.LayerNormalization(epsilon=1e-6), layers.LayerNormalization(epsilon=1e-6)
            self.drop1, self.drop2 = layers.Dropout(rate), layers.Dropout(rate)

        def call(self, inputs, training=False):
            attn = self.drop1(self.att(inputs, inputs), training=training)
            out1 = self.norm1(inputs + attn)
            return self.norm2(out1 + self.drop2(self.ffn2(self.ffn1(out1)), training=training))

        def compute_output_shape(self, input_shape):
            return input_shape

    class TokenAndPositionEmbedding(layers.Layer):
        def __init__(self, maxlen, vocab_size, embed_dim, **kwargs):
            super().__init__(**kwargs)
            self.token_emb = layers.Embedding(vocab_size, embed_dim)
            self.pos_emb = layers.Embedding(maxlen, embed_dim)

        def call(self, x):
            return self.token_emb(x) + self.pos_emb(np.arange(x.shape[-1]))

        def compute_output_shape(self, input_shape):
            return tuple(input_shape) + (self.token_emb.output_dim,)

    return _fit_epoch(engine, layers, TransformerBlock, TokenAndPositionEmbedding)


def _fit_epoch(api, L, block, embedding):
    """Build keras-io's classifier with `api` (engine or keras) and time one epoch."""
    inputs = L.Input(shape=(TEXT["maxlen"],), dtype="int32")
    x = embedding(TEXT["maxlen"], TEXT["vocab"], TEXT["embed"])(inputs)
    x = block(TEXT["embed"], TEXT["heads"], TEXT["ff"])(x)
    x = L.GlobalAveragePooling1D()(x)
    x = L.Dropout(0.1)(x)
    x = L.Dense(20, activation="relu")(x)
    x = L.Dropout(0.1)(x)
    model = api.Model(inputs, L.Dense(2, activation="softmax")(x))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    xs, ys = text_data()
    fit = lambda: model.fit(xs, ys, batch_size=TEXT["batch"], epochs=1, verbose=0)  # noqa: E731
    return best(fit, 2)


# -- Keras 3 ----------------------------------------------------------------------------------------
def keras_rows():
    import jax
    import keras
    from keras import layers, ops
    rng = np.random.default_rng(0)
    out = {}

    def timed_grad(layer, x, call):
        trainable = [v.value for v in layer.trainable_variables]
        non_trainable = [v.value for v in layer.non_trainable_variables]

        def loss(tv, xv):
            y, _ = layer.stateless_call(tv, non_trainable, *call(xv))
            return ops.sum(y)
        grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
        return best(lambda: jax.block_until_ready(grad(trainable, x)), 5)

    for b, t, d, h in MHA_SHAPES:
        layer = layers.MultiHeadAttention(h, d // h)
        x = rng.standard_normal((b, t, d)).astype("float32")
        layer(x, x)
        out[f"mha {b}x{t}x{d} h{h}"] = timed_grad(layer, x, lambda xv: (xv, xv))
    ln = layers.LayerNormalization()
    x = rng.standard_normal(LN_SHAPE).astype("float32")
    ln(x)
    out["layernorm 32x200x256"] = timed_grad(ln, x, lambda xv: (xv,))

    class TransformerBlock(layers.Layer):
        def __init__(self, embed_dim, num_heads, ff_dim, rate=0.1):
            super().__init__()
            self.att = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
            self.ffn = keras.Sequential([layers.Dense(ff_dim, activation="relu"), layers.Dense(embed_dim)])
            self.layernorm1 = layers.LayerNormalization(epsilon=1e-6)
            self.layernorm2 = layers.LayerNormalization(epsilon=1e-6)
            self.dropout1, self.dropout2 = layers.Dropout(rate), layers.Dropout(rate)

        def call(self, inputs, training=False):
            attn_output = self.dropout1(self.att(inputs, inputs), training=training)
            out1 = self.layernorm1(inputs + attn_output)
            return self.layernorm2(out1 + self.dropout2(self.ffn(out1), training=training))

    class TokenAndPositionEmbedding(layers.Layer):
        def __init__(self, maxlen, vocab_size, embed_dim):
            super().__init__()
            self.token_emb = layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
            self.pos_emb = layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

        def call(self, x):
            positions = ops.arange(start=0, stop=ops.shape(x)[-1], step=1)
            return self.token_emb(x) + self.pos_emb(positions)

    out["text epoch"] = _fit_epoch(keras, layers, TransformerBlock, TokenAndPositionEmbedding)
    return out


# -- PyTorch ----------------------------------------------------------------------------------------
def torch_rows():
    import torch
    out = {}
    for b, t, d, h in MHA_SHAPES:
        mha = torch.nn.MultiheadAttention(d, h, batch_first=True)
        x = torch.randn(b, t, d, requires_grad=True)

        def step():
            y, _ = mha(x, x, x, need_weights=False)
            y.sum().backward()
        out[f"mha {b}x{t}x{d} h{h}"] = best(step, 5)
    ln = torch.nn.LayerNorm(LN_SHAPE[-1])
    x = torch.randn(*LN_SHAPE, requires_grad=True)
    out["layernorm 32x200x256"] = best(lambda: ln(x).sum().backward(), 10)
    out["text epoch"] = torch_epoch(torch)
    return out


def torch_epoch(torch):
    """keras-io's text classifier written in plain PyTorch with Keras's sizes (attention heads of
    key_dim = embed, as Keras's MultiHeadAttention(num_heads, key_dim=embed_dim) builds them, so
    the projections are embed -> heads * embed), Keras's epsilons and Adam settings, and one
    shuffled epoch as Keras's fit runs it."""
    nn, F = torch.nn, torch.nn.functional
    e, h, ff = TEXT["embed"], TEXT["heads"], TEXT["ff"]

    class Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.token, self.position = nn.Embedding(TEXT["vocab"], e), nn.Embedding(TEXT["maxlen"], e)
            self.q, self.k, self.v = (nn.Linear(e, h * e) for _ in range(3))
            self.o = nn.Linear(h * e, e)
            self.ffn = nn.Sequential(nn.Linear(e, ff), nn.ReLU(), nn.Linear(ff, e))
            self.norm1, self.norm2 = nn.LayerNorm(e, eps=1e-6), nn.LayerNorm(e, eps=1e-6)
            self.head = nn.Sequential(nn.Dropout(0.1), nn.Linear(e, 20), nn.ReLU(), nn.Dropout(0.1), nn.Linear(20, 2))

        def forward(self, ids):
            x = self.token(ids) + self.position(torch.arange(ids.shape[1]))
            b, t, _ = x.shape
            q, k, v = (p(x).view(b, t, h, e).transpose(1, 2) for p in (self.q, self.k, self.v))
            att = self.o(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, h * e))
            x = self.norm1(x + F.dropout(att, 0.1, self.training))
            x = self.norm2(x + F.dropout(self.ffn(x), 0.1, self.training))
            return self.head(x.mean(dim=1))

    model = Classifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    xs, ys = (torch.from_numpy(a.astype("int64")) for a in text_data())

    def epoch():
        model.train()
        for batch in torch.randperm(len(xs)).split(TEXT["batch"]):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(xs[batch]), ys[batch])   # softmax + sparse crossentropy
            loss.backward()
            optimizer.step()
    return best(epoch, 2)


RUNNERS = {"engine": engine_rows, "Keras-jax": keras_rows, "PyTorch": torch_rows}


def _interpreter(runner):
    if runner.startswith("Keras"):
        return os.environ.get("ENGINE_BENCH_KERAS_PYTHON") or os.environ.get("KERAS_PYTHON", sys.executable)
    return sys.executable


def _run(runner):
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([_interpreter(runner), __file__, "--runner", runner], capture_output=True, text=True,
                          timeout=1800, env=env)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no output")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runner")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.runner:
        print(json.dumps(RUNNERS[args.runner]()))
        return
    times = {name: [] for name in RUNNERS}
    missing = {}
    for _ in range(args.rounds):
        for name in RUNNERS:
            if name in missing:
                continue
            try:
                times[name].append(_run(name))
            except Exception as e:          # not installed, or failed: reported, not fatal
                missing[name] = str(e)
    for name, why in missing.items():
        print(f"{name}: skipped ({why})")
    rows = list(times["engine"][0]) if times["engine"] else []
    print("\n| workload | engine | " + " | ".join(n for n in RUNNERS if n != "engine") + " | fastest other / engine |")
    print("|---" * (len(RUNNERS) + 2) + "|")
    for row in rows:
        def med(name):
            vals = sorted(r[row] for r in times[name] if row in r)
            return vals[len(vals) // 2] if vals else None

        def fmt(name):
            vals = [r[row] for r in times[name] if row in r]
            if not vals:
                return "-"
            unit, scale = ("s", 1) if row == "text epoch" else ("ms", 1e3)
            return f"{med(name) * scale:.2f} {unit} ({min(vals) * scale:.2f}-{max(vals) * scale:.2f})"
        eng = med("engine")
        others = [med(n) for n in RUNNERS if n != "engine" and med(n) is not None]
        ratio = f"{min(others) / eng:.2f}x" if others else "-"
        cells = [fmt(n) + (f" [{med(n) / eng:.2f}x]" if med(n) is not None else "") for n in RUNNERS if n != "engine"]
        print(f"| {row} | {fmt('engine')} | " + " | ".join(cells) + f" | {ratio} |")


if __name__ == "__main__":
    main()
