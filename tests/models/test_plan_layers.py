"""Step plans trace into layers (engine/models/plan.py, Tracer.call_layer): a user's layer written
with replayable ops is recorded op by op, nested layers each decide for themselves, and a layer
doing anything a replay would not repeat -- reading a tensor's value in Python, drawing random
numbers, assigning a variable, an op outside the replayable set, a mask read in numpy -- is one
opaque step called as usual. Each case trains bit for bit as the unplanned step does, and the
cases where baking the trace in would be wrong are built so that it would show."""
import numpy as np
import pytest

from engine import Input, layers, ops
from engine import random as engine_random
from engine.models import Model

from test_plan import _assert_same, _fit_both, _opaque_labels, _train_plans, _twins


def _wrap(layer_cls, out=3):
    def build():
        inputs = Input(shape=(6,))
        x = layers.Dense(6, activation="tanh")(inputs)
        return Model(inputs, layers.Dense(out)(layer_cls()(x)))
    return build


def _data(seed=0, n=48):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 6)).astype(np.float32), rng.standard_normal((n, 3)).astype(np.float32)


def _labels_after_fit(build, compile_kwargs=None, **fit):
    x, y = _data()
    models = _twins(build, compile_kwargs or dict(optimizer="adam", loss="mse"))
    _assert_same(models, _fit_both(models, x, y, batch_size=16, **fit))
    plans = _train_plans(models[0])
    assert plans
    return models, _opaque_labels(plans[0])


class Gated(layers.Layer):
    """Operators, reductions and a sublayer: everything replayable."""

    def build(self, input_shape):
        self.gate = layers.Dense(input_shape[-1], activation="sigmoid")
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="scale")

    def call(self, x):
        centred = x - ops.mean(x, axis=-1, keepdims=True)
        return centred * self.gate(x) * self.scale + ops.square(x) / 2.0

    def compute_output_shape(self, input_shape):
        return input_shape


def test_a_user_layer_of_replayable_ops_is_traced_op_by_op():
    models, labels = _labels_after_fit(_wrap(Gated))
    assert not labels
    lines = []
    _train_plans(models[0])[0].summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "gated (Gated): subtract" in text and "gated (Gated): dense[activation=sigmoid]" in text


class Branching(layers.Layer):
    """A Python branch on a tensor's value: must be taken again on every step."""

    def call(self, x):
        if float(ops.mean(x)) > 0:     # a differentiable op, then the value in Python
            return x * 2.0
        return x - 1.0

    def compute_output_shape(self, input_shape):
        return input_shape


def test_a_python_branch_on_a_value_makes_the_layer_opaque():
    def build():
        inputs = Input(shape=(6,))
        return Model(inputs, layers.Dense(3)(Branching()(inputs)))
    x, y = _data()
    x[16:32] = -np.abs(x[16:32]) - 1       # the second batch takes the other branch
    x[:16] = np.abs(x[:16]) + 1
    models = _twins(build, dict(optimizer="sgd", loss="mse"))
    _assert_same(models, _fit_both(models, x, y, batch_size=16, shuffle=False))
    labels = _opaque_labels(_train_plans(models[0])[0])
    assert len(labels) == 1 and "Branching" in labels[0] and "Python float" in labels[0]


class Noisy(layers.Layer):
    """Draws random numbers in Python (engine.random): new numbers on every step (one per feature,
    so nothing of the batch's size shows that the numbers do not come from the trace)."""

    def call(self, x, training=False):
        if training:
            return x + engine_random.normal((x.shape[-1],), stddev=0.1)
        return x

    def compute_output_shape(self, input_shape):
        return input_shape


class Counting(layers.Layer):
    """Assigns a variable on every call."""

    def build(self, input_shape):
        self.calls = self.add_weight(shape=(), initializer="zeros", trainable=False, name="calls")

    def call(self, x):
        self.calls.assign_add(1.0)
        return x * 1.5

    def compute_output_shape(self, input_shape):
        return input_shape


class Gathering(layers.Layer):
    """An op outside the replayable set (take, whose indices are checked in Python)."""

    def call(self, x):
        return ops.take(x, np.array([5, 0, 1, 2, 3, 4]), axis=1) + x

    def compute_output_shape(self, input_shape):
        return input_shape


@pytest.mark.parametrize("layer_cls, why", [(Noisy, "draws random"), (Counting, "assigns variables"),
                                             (Gathering, "take")])
def test_layers_a_replay_would_not_repeat_are_opaque(layer_cls, why):
    models, labels = _labels_after_fit(_wrap(layer_cls))
    assert len(labels) == 1 and layer_cls.__name__ in labels[0] and why in labels[0], labels
    if layer_cls is Counting:
        counting = [l for l in models[0].layers if isinstance(l, Counting)][0]
        assert float(counting.calls.numpy()) == 2 * 3      # called on every step: 2 epochs x 3 batches


class WithDropout(layers.Layer):
    """A user's block around engine's Dropout: the dropout op draws its mask inside itself."""

    def build(self, input_shape):
        self.dense = layers.Dense(input_shape[-1], activation="relu")
        self.drop = layers.Dropout(0.4)

    def call(self, x, training=False):
        return x + self.drop(self.dense(x), training=training)

    def compute_output_shape(self, input_shape):
        return input_shape


def test_dropout_inside_a_user_layer_is_traced_and_draws_new_masks_every_step():
    models, labels = _labels_after_fit(_wrap(WithDropout), epochs=3)
    assert not labels
    # the masks differ from step to step: two forward passes in training mode differ
    x, _ = _data(1, 8)
    a, b = models[0](x, training=True), models[0](x, training=True)
    assert not np.array_equal(a.numpy(), b.numpy())


def test_jit_compile_false_runs_a_users_python_on_every_step():
    """With plans (jit_compile "auto"), as under Keras's jit, Python in a traced call runs once,
    while the trace is made; jit_compile=False runs it on every step."""
    seen = []

    class Spy(layers.Layer):
        def call(self, x):
            seen.append(1)
            return x * 2.0

        def compute_output_shape(self, input_shape):
            return input_shape
    x, y = _data()
    for jit, expected in (("auto", 1), (False, 6)):
        seen.clear()
        inputs = Input(shape=(6,))
        model = Model(inputs, layers.Dense(3)(Spy()(inputs)))
        model.compile(optimizer="sgd", loss="mse", jit_compile=jit)
        model.fit(x, y, batch_size=16, epochs=2, verbose=0)
        assert len(seen) == expected


def test_multi_head_attention_is_traced_unless_a_mask_is_read():
    def build(masked):
        def make():
            tokens = Input(shape=(5, 8))
            keep = Input(shape=(5, 5), dtype="bool")
            mha = layers.MultiHeadAttention(num_heads=2, key_dim=4)
            att = mha(tokens, tokens, attention_mask=keep) if masked else mha(tokens, tokens)
            return Model([tokens, keep], layers.Dense(3)(layers.GlobalAveragePooling1D()(att)))
        return make
    rng = np.random.default_rng(3)
    x = rng.standard_normal((32, 5, 8)).astype(np.float32)
    keep = rng.random((32, 5, 5)) > 0.3
    y = rng.standard_normal((32, 3)).astype(np.float32)
    for masked in (False, True):
        models = _twins(build(masked), dict(optimizer="adam", loss="mse"))
        _assert_same(models, _fit_both(models, [x, keep], y, batch_size=8))
        labels = _opaque_labels(_train_plans(models[0])[0])
        assert (len(labels) == 1 and "MultiHeadAttention" in labels[0]) if masked else not labels, labels


def test_a_replayed_embedding_still_checks_every_batchs_ids():
    inputs = Input(shape=(4,), dtype="int32")
    model = Model(inputs, layers.Dense(1)(layers.Flatten()(layers.Embedding(10, 3, name="words")(inputs))))
    model.compile(optimizer="sgd", loss="mse")
    ids = np.random.default_rng(0).integers(0, 10, (32, 4)).astype(np.int32)
    model.fit(ids, np.zeros((32, 1), np.float32), batch_size=16, epochs=1, verbose=0)
    assert _train_plans(model) and not _opaque_labels(_train_plans(model)[0])
    bad = ids.copy()
    bad[20, 2] = 10
    with pytest.raises(ValueError, match=r'Layer "words" \(Embedding\): id 10 at position \(4, 2\) is outside \[0, 10\)'):
        model.fit(bad, np.zeros((32, 1), np.float32), batch_size=16, epochs=1, shuffle=False, verbose=0)


class ReadsItsSecondInput(layers.Layer):
    """Reads a value in numpy from the raw array a graph passes as its second input: what it
    computes from it (one row of the batch, not of the batch's size) would be baked in."""

    def call(self, x, weights):
        row = np.asarray(weights)[0]
        return x * ops.convert_to_tensor(row)

    def compute_output_shape(self, input_shape):
        return input_shape


def test_numpy_reads_of_a_graph_input_make_the_layer_opaque():
    def build():
        a, b = Input(shape=(6,)), Input(shape=(6,))
        return Model([a, b], layers.Dense(3)(ReadsItsSecondInput()(a, weights=b)))
    rng = np.random.default_rng(9)
    xa, xb = rng.standard_normal((48, 6)).astype(np.float32), rng.standard_normal((48, 6)).astype(np.float32)
    y = rng.standard_normal((48, 3)).astype(np.float32)
    models = _twins(build, dict(optimizer="sgd", loss="mse"))
    _assert_same(models, _fit_both(models, [xa, xb], y, batch_size=16))
    labels = _opaque_labels(_train_plans(models[0])[0])
    assert len(labels) == 1 and "ReadsItsSecondInput" in labels[0]


class Splits(layers.Layer):
    """Two outputs, and an opaque user layer inside (it reads a value in Python)."""

    def build(self, input_shape):
        self.inner = Branching()

    def call(self, x):
        half = x.shape[-1] // 2
        return self.inner(x)[:, :half] * 2.0, ops.tanh(x[:, half:])

    def compute_output_shape(self, input_shape):
        return [(input_shape[0], input_shape[-1] // 2)] * 2


class Scorer(Model):
    """A subclassed model used as a layer."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = layers.Dense(4, activation="relu")

    def call(self, x):
        return self.dense(x) + 1.0


def test_nested_shared_multi_output_layers_and_a_subclassed_model_inside_a_plan():
    def build():
        a, b = Input(shape=(6,)), Input(shape=(6,))
        splits, scorer = Splits(), Scorer()
        left, right = splits(a)
        left2, right2 = splits(b)                 # shared: each call is its own frame
        merged = layers.Concatenate()([scorer(left), scorer(left2), right, right2])
        return Model([a, b], layers.Dense(3)(merged))
    rng = np.random.default_rng(11)
    xa, xb = rng.standard_normal((48, 6)).astype(np.float32), rng.standard_normal((48, 6)).astype(np.float32)
    xa[16:32] -= 3.0                               # the inner branch flips between batches
    y = rng.standard_normal((48, 3)).astype(np.float32)
    models = _twins(build, dict(optimizer="adam", loss="mse"))
    _assert_same(models, _fit_both(models, [xa, xb], y, batch_size=16, shuffle=False))
    labels = _opaque_labels(_train_plans(models[0])[0])
    # only the value-reading inner layer, once per call of the shared outer one
    assert len(labels) == 2 and all("Branching" in s for s in labels), labels


def test_a_user_layer_inside_a_sequential_model_is_traced():
    from engine.models import Sequential

    def build():
        return Sequential([Input(shape=(6,)), layers.Dense(6), Gated(), layers.Dense(3)])
    models, labels = _labels_after_fit(build)
    assert not labels


def test_recurrent_layers_are_traced_unless_they_draw_dropout_masks_or_carry_state():
    """LSTM / GRU / SimpleRNN make their zero initial states inside the op, so a plan replays
    them; dropout masks (drawn in Python) and an encoder's states passed in make the call opaque."""
    def build(kind):
        def make():
            seq = Input(shape=(7, 4))
            if kind == "plain":
                x = layers.LSTM(5)(seq) + layers.GRU(5)(seq) + layers.SimpleRNN(5)(seq)
            elif kind == "dropout":
                x = layers.LSTM(5, dropout=0.3, recurrent_dropout=0.2)(seq)
            else:
                _, h, c = layers.LSTM(5, return_state=True)(seq)
                x = layers.LSTM(5)(seq, initial_state=[h, c])
            return Model(seq, layers.Dense(3)(x))
        return make
    rng = np.random.default_rng(12)
    x = rng.standard_normal((48, 7, 4)).astype(np.float32)
    y = rng.standard_normal((48, 3)).astype(np.float32)
    for kind, opaque in (("plain", 0), ("dropout", 1), ("states", 1)):
        models = _twins(build(kind), dict(optimizer="adam", loss="mse"))
        _assert_same(models, _fit_both(models, x, y, batch_size=16))
        labels = _opaque_labels(_train_plans(models[0])[0])
        assert len(labels) == opaque and all("LSTM" in s for s in labels), (kind, labels)


def test_batch_normalization_is_traced_and_renorm_stays_opaque():
    """Training BatchNormalization updates its moving statistics inside its op, which the plan
    replays (the statistics after three epochs are the unplanned ones, in get_weights); renorm
    assigns in Python and stays an opaque call."""
    def build(renorm):
        def make():
            inputs = Input(shape=(6,))
            x = layers.BatchNormalization(renorm=renorm, momentum=0.9)(layers.Dense(8)(inputs))
            return Model(inputs, layers.Dense(3)(x))
        return make
    x, y = _data(5)
    for renorm in (False, True):
        models = _twins(build(renorm), dict(optimizer="adam", loss="mse"))
        _assert_same(models, _fit_both(models, x, y, batch_size=16, epochs=3))
        labels = _opaque_labels(_train_plans(models[0])[0])
        assert (len(labels) == 1 and "BatchNormalization" in labels[0]) if renorm else not labels, labels
        bn = [l for l in models[0].layers if isinstance(l, layers.BatchNormalization)][0]
        assert not np.allclose(bn.moving_mean.numpy(), 0)
