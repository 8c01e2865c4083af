"""fit / evaluate / predict on generators, PyDatasets (with worker threads and processes) and
other batch sources: the same batches in the same order train exactly as arrays do; loader
errors reach the caller as themselves and leave no worker behind."""
import multiprocessing
import threading

import numpy as np
import pytest

import engine
from engine import Input, Model, layers
from engine.utils import PyDataset

rng = np.random.default_rng(0)
X = rng.standard_normal((40, 4)).astype(np.float32)
Y = rng.standard_normal((40, 2)).astype(np.float32)
BATCH = 8


def make_model(seed=1):
    engine.utils.set_random_seed(seed)
    inp = Input((4,), name="features")
    h = layers.Dense(5, activation="tanh")(inp)
    model = Model(inp, layers.Dense(2, name="out")(h))
    model.compile(engine.optimizers.SGD(0.05), "mse")
    return model


def trained_on_arrays(epochs=2):
    model = make_model()
    model.fit(X, Y, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0)
    return model.get_weights()


def batches():
    for start in range(0, len(X), BATCH):
        yield X[start:start + BATCH], Y[start:start + BATCH]


class Batches(PyDataset):
    """Batch i is rows [8i, 8i+8), as the array path slices them."""

    def __init__(self, fail_at=None, **kwargs):
        super().__init__(**kwargs)
        self.fail_at = fail_at
        self.epochs_ended = 0
        self.seen = []

    def __len__(self):
        return len(X) // BATCH

    def __getitem__(self, i):
        if i == self.fail_at:
            raise KeyError(f"batch {i} is missing on disk")
        self.seen.append(i)
        return X[i * BATCH:(i + 1) * BATCH], Y[i * BATCH:(i + 1) * BATCH]

    def on_epoch_end(self):
        self.epochs_ended += 1


def assert_same_weights(got, want):
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def test_generator_with_steps_per_epoch_trains_as_arrays():
    def endless():
        while True:
            yield from batches()
    model = make_model()
    model.fit(endless(), steps_per_epoch=len(X) // BATCH, epochs=2, verbose=0)
    assert_same_weights(model.get_weights(), trained_on_arrays())


def test_finite_generator_is_one_epoch_and_then_runs_out_with_a_warning():
    model = make_model()
    model.fit(batches(), epochs=1, verbose=0)
    assert_same_weights(model.get_weights(), trained_on_arrays(epochs=1))
    model = make_model()
    with pytest.warns(UserWarning, match="ran out of data"):
        history = model.fit(batches(), epochs=3, verbose=0)
    assert len(history.history["loss"]) == 1


@pytest.mark.parametrize("workers,processes", [(1, False), (2, False), (3, True)])
def test_py_dataset_with_workers_trains_as_arrays(workers, processes):
    data = Batches(workers=workers, use_multiprocessing=processes, max_queue_size=2)
    model = make_model()
    model.fit(data, epochs=2, shuffle=False, verbose=0)
    assert_same_weights(model.get_weights(), trained_on_arrays())
    assert data.epochs_ended == 2
    assert not [t for t in threading.enumerate() if t.name.startswith("engine-data")]
    assert not multiprocessing.active_children()


def test_py_dataset_shuffle_reorders_batches_each_epoch():
    data = Batches()
    engine.utils.set_random_seed(3)
    make_model().fit(data, epochs=2, shuffle=True, verbose=0)
    first, second = data.seen[:5], data.seen[5:]
    assert sorted(first) == sorted(second) == list(range(5))
    assert first != list(range(5)) or second != list(range(5))


def test_generator_batches_with_sample_weights_and_dict_inputs():
    a, b = Input((3,), name="a"), Input((2,), name="b")
    out = layers.Dense(1, name="y")(layers.concatenate([a, b]))
    xa, xb = rng.standard_normal((12, 3)), rng.standard_normal((12, 2))
    y = rng.standard_normal((12, 1))
    w = rng.uniform(0.5, 2.0, 12)

    def fitted(data, **kw):
        engine.utils.set_random_seed(5)
        model = Model([a, b], out)
        model.set_weights([np.ones((5, 1), np.float32), np.zeros(1, np.float32)])
        model.compile(engine.optimizers.SGD(0.1), "mse")
        model.fit(data, epochs=1, verbose=0, **kw)
        return model.get_weights()

    def gen():
        for s in range(0, 12, 4):
            yield {"a": xa[s:s + 4], "b": xb[s:s + 4]}, y[s:s + 4], w[s:s + 4]

    from_gen = fitted(gen())
    from_arrays = fitted({"a": xa, "b": xb}, y=y, sample_weight=w, batch_size=4, shuffle=False)
    for g, arr in zip(from_gen, from_arrays):
        np.testing.assert_allclose(g, arr, rtol=1e-6)


def test_an_exception_in_a_generator_reaches_the_caller_as_itself():
    def broken():
        yield X[:8], Y[:8]
        raise RuntimeError("the file is corrupt at record 9")
    with pytest.raises(RuntimeError, match="corrupt at record 9"):
        make_model().fit(broken(), epochs=1, verbose=0)


@pytest.mark.parametrize("workers,processes", [(1, False), (2, False), (2, True)])
def test_an_exception_in_a_worker_reaches_the_caller_and_stops_the_workers(workers, processes):
    data = Batches(fail_at=3, workers=workers, use_multiprocessing=processes)
    with pytest.raises(KeyError, match="batch 3 is missing on disk"):
        make_model().fit(data, epochs=1, verbose=0)
    assert not [t for t in threading.enumerate() if t.name.startswith("engine-data")]
    assert not multiprocessing.active_children()


def test_a_batch_that_does_not_fit_names_the_batch_the_input_and_both_shapes():
    def wrong_at_two():
        for i, (x, y) in enumerate(batches()):
            yield (x[:, :3] if i == 2 else x), y
    with pytest.raises(ValueError, match=r"Batch 2.*features.*\(None, 4\).*\(8, 3\)"):
        make_model().fit(wrong_at_two(), epochs=1, verbose=0)


def test_y_beside_a_batch_source_is_refused():
    with pytest.raises(ValueError, match="`y` must not be given"):
        make_model().fit(Batches(), Y, verbose=0)


def test_evaluate_and_predict_on_batch_sources():
    model = make_model()
    model.fit(X, Y, batch_size=BATCH, epochs=1, verbose=0)
    want = model.evaluate(X, Y, batch_size=BATCH, verbose=0)
    assert model.evaluate(Batches(workers=2), verbose=0) == pytest.approx(want, rel=1e-6)
    assert model.evaluate(batches(), verbose=0) == pytest.approx(want, rel=1e-6)
    expected = model.predict(X, verbose=0)
    np.testing.assert_allclose(model.predict(Batches(), verbose=0), expected, rtol=1e-6)
    np.testing.assert_allclose(model.predict((x for x, _ in batches()), verbose=0), expected, rtol=1e-6)

    class PlainSequence:          # no PyDataset base: just __len__ and __getitem__
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return X[i * BATCH:(i + 1) * BATCH]

    np.testing.assert_allclose(model.predict(PlainSequence(), verbose=0), expected, rtol=1e-6)


def test_validation_data_from_a_generator():
    model = make_model()
    history = model.fit(X, Y, batch_size=BATCH, epochs=1, verbose=0, validation_data=Batches())
    want = model.evaluate(X, Y, batch_size=BATCH, verbose=0)
    assert history.history["val_loss"][0] == pytest.approx(want, rel=1e-6)


def test_progress_bar_shows_an_unknown_total(capsys):
    make_model().fit(batches(), epochs=1, verbose=2)
    out = capsys.readouterr().out
    assert "5/Unknown" in out


def test_pandas_frames_are_arrays():
    pd = pytest.importorskip("pandas")
    model = make_model()
    model.fit(pd.DataFrame(X), pd.DataFrame(Y), batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    assert_same_weights(model.get_weights(), trained_on_arrays())


def test_torch_dataloader_trains_as_arrays():
    torch = pytest.importorskip("torch")
    data = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(Y))
    loader = torch.utils.data.DataLoader(data, batch_size=BATCH, shuffle=False)
    model = make_model()
    # fit's default shuffle=True cannot reach a DataLoader: a warning at the caller's line says so
    with pytest.warns(UserWarning, match="ignored for a DataLoader") as caught:
        model.fit(loader, epochs=2, verbose=0)
    assert {w.filename for w in caught} == {__file__}
    assert_same_weights(model.get_weights(), trained_on_arrays())
    np.testing.assert_allclose(model.predict(loader, verbose=0), model.predict(X, verbose=0), rtol=1e-6)


def test_tf_data_dataset_trains_as_arrays():
    tf = pytest.importorskip("tensorflow")
    dataset = tf.data.Dataset.from_tensor_slices((X, Y)).batch(BATCH)
    model = make_model()
    with pytest.warns(UserWarning, match="shuffle"):           # as Keras: a tf.data dataset shuffles itself
        history = model.fit(dataset, epochs=2, verbose=0, validation_data=dataset)
    assert_same_weights(model.get_weights(), trained_on_arrays())
    assert len(history.history["val_loss"]) == 2
    np.testing.assert_allclose(model.predict(dataset, verbose=0), model.predict(X, verbose=0), rtol=1e-6)
    np.testing.assert_allclose(model.evaluate(dataset, verbose=0), model.evaluate(X, Y, batch_size=BATCH, verbose=0),
                               rtol=1e-6)
    # A dict-keyed dataset of (features, target) and a repeated (endless) one with steps_per_epoch.
    keyed = tf.data.Dataset.from_tensor_slices(({"features": X}, Y)).batch(BATCH)
    model = make_model()
    model.fit(keyed, epochs=2, verbose=0, shuffle=False)
    assert_same_weights(model.get_weights(), trained_on_arrays())
    model = make_model()
    model.fit(dataset.repeat(), steps_per_epoch=len(X) // BATCH, epochs=2, verbose=0, shuffle=False)
    assert_same_weights(model.get_weights(), trained_on_arrays())


def test_array_batches_from_the_utilities_train_as_arrays():
    """The data utilities' datasets (ArrayBatches: timeseries windows, split_dataset halves) feed
    fit, evaluate and predict as PyDatasets do."""
    from engine.utils.dataset_utils import ArrayBatches
    data = ArrayBatches(len(X), lambda idx: (X[idx], Y[idx]), BATCH)
    model = make_model()
    model.fit(data, epochs=2, verbose=0, shuffle=False)     # shuffle=True would reorder the batches
    assert_same_weights(model.get_weights(), trained_on_arrays())
    np.testing.assert_allclose(model.predict(data, verbose=0), model.predict(X, verbose=0), rtol=1e-6)
    series = np.arange(60, dtype=np.float32).reshape(30, 2)
    windows = engine.utils.timeseries_dataset_from_array(series, series[3:, :1], sequence_length=3, batch_size=4)
    inp = Input((3, 2))
    lstm = Model(inp, layers.Dense(1)(layers.Flatten()(inp)))
    lstm.compile("sgd", "mse")
    want_x = np.stack([series[i:i + 3] for i in range(27)])
    want_y = series[3:30, :1]
    got = [b for b in windows]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in got]), want_x)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in got]), want_y)
    assert lstm.predict(windows, verbose=0).shape == (27, 1)
    left, right = engine.utils.split_dataset((X, Y), left_size=0.75)
    assert (len(left), len(right)) == (30, 10)                # unbatched samples, as Keras's split
    model = make_model()
    model.fit(left.batch(BATCH), epochs=2, verbose=0, shuffle=False)
    reference = make_model()
    reference.fit(X[:30], Y[:30], batch_size=BATCH, epochs=2, verbose=0, shuffle=False)
    assert_same_weights(model.get_weights(), reference.get_weights())
    np.testing.assert_allclose(model.evaluate(right.batch(BATCH), verbose=0),
                               model.evaluate(X[30:], Y[30:], verbose=0), rtol=1e-6)
