"""compile(weighted_metrics=...): metrics computed with the sample (and class) weights, beside
the unweighted `metrics`, named as Keras 3 names them; checked against float64 sums written here."""
import numpy as np
import pytest

import engine
from engine import Input, Model, layers

rng = np.random.default_rng(0)
X = rng.standard_normal((12, 3)).astype(np.float32)
YA = rng.standard_normal((12, 2)).astype(np.float32)
YB = rng.integers(0, 2, size=(12, 1)).astype(np.float32)
W = rng.uniform(0.1, 2.0, size=12).astype(np.float32)


def two_output_model():
    engine.utils.set_random_seed(3)
    inp = Input((3,))
    model = Model(inp, [layers.Dense(2, name="a")(inp), layers.Dense(1, activation="sigmoid", name="b")(inp)])
    model.compile("sgd", ["mse", "binary_crossentropy"], metrics=[["mae"], ["mae"]],
                  weighted_metrics=[["mae", "mse"], ["mae"]])
    return model


def reference(pred_a, pred_b, w):
    pred_a, pred_b, w = (np.asarray(v, np.float64) for v in (pred_a, pred_b, w))
    mae_a = np.abs(pred_a - YA).mean(axis=1)
    mse_a = ((pred_a - YA) ** 2).mean(axis=1)
    mae_b = np.abs(pred_b - YB).mean(axis=1)
    return {"a_mae": mae_a.mean(), "a_weighted_mae": (w * mae_a).sum() / w.sum(),
            "a_mse": (w * mse_a).sum() / w.sum(),
            "b_mae": mae_b.mean(), "b_weighted_mae": (w * mae_b).sum() / w.sum()}


def test_evaluate_reports_weighted_and_unweighted_metrics_as_keras_names_them():
    model = two_output_model()
    pred_a, pred_b = model.predict(X, verbose=0)
    got = model.evaluate(X, [YA, YB], sample_weight=W, batch_size=12, verbose=0, return_dict=True)
    want = reference(pred_a, pred_b, W)
    assert sorted(got) == sorted(["loss", "a_loss", "b_loss"] + list(want))
    for name, value in want.items():
        np.testing.assert_allclose(got[name], value, rtol=2e-5, err_msg=name)
    # Without sample weights the weighted metrics equal the unweighted ones.
    plain = model.evaluate(X, [YA, YB], batch_size=12, verbose=0, return_dict=True)
    np.testing.assert_allclose(plain["a_weighted_mae"], plain["a_mae"], rtol=1e-6)


def test_fit_history_and_batches_weight_the_weighted_metrics():
    model = two_output_model()
    before = model.predict(X, verbose=0)
    history = model.fit(X, [YA, YB], sample_weight=W, batch_size=12, epochs=1, verbose=0, shuffle=False)
    want = reference(*before, W)              # one batch: the metrics see the weights before the update
    for name, value in want.items():
        np.testing.assert_allclose(history.history[name][0], value, rtol=2e-5, err_msg=name)


def test_class_weights_reach_the_weighted_metrics_only():
    engine.utils.set_random_seed(1)
    inp = Input((3,))
    model = Model(inp, layers.Dense(1, activation="sigmoid")(inp))
    model.compile("sgd", "binary_crossentropy", metrics=["accuracy"], weighted_metrics=["accuracy"])
    labels = YB[:, 0]
    pred = model.predict(X, verbose=0)[:, 0]
    history = model.fit(X, YB, class_weight={0: 1.0, 1: 3.0}, batch_size=12, epochs=1, verbose=0)
    w = np.where(labels == 1, 3.0, 1.0)
    correct = ((pred > 0.5) == (labels == 1)).astype(np.float64)
    np.testing.assert_allclose(history.history["accuracy"][0], correct.mean(), rtol=1e-6)
    np.testing.assert_allclose(history.history["weighted_accuracy"][0], (w * correct).sum() / w.sum(), rtol=1e-6)


def test_compute_metrics_passes_weights_to_weighted_metrics_only():
    inp = Input((2,))
    model = Model(inp, layers.Dense(2)(inp))
    model.compile("sgd", "mse", metrics=["mae"], weighted_metrics=["mae"])
    y, p = np.array([[0., 0.], [1., 1.]], np.float32), np.array([[1., 1.], [1., 1.]], np.float32)
    result = model.compute_metrics(None, y, p, sample_weight=np.array([3.0, 1.0], np.float32))
    assert float(result["mae"]) == pytest.approx(0.5)
    assert float(result["weighted_mae"]) == pytest.approx(0.75)


def test_weighted_metrics_errors():
    inp = Input((2,))
    model = Model(inp, layers.Dense(2, name="out")(inp))
    with pytest.raises(ValueError, match="weighted_metrics"):
        model.compile("sgd", "mse", weighted_metrics="mae")
    with pytest.raises(ValueError, match="names outputs"):
        model.compile("sgd", "mse", weighted_metrics={"other": ["mae"]})


def test_weighted_metric_names_match_live_keras():
    keras = pytest.importorskip("keras")
    inp = keras.Input((3,))
    k = keras.Model(inp, [keras.layers.Dense(2, name="a")(inp), keras.layers.Dense(1, activation="sigmoid", name="b")(inp)])
    k.compile("sgd", ["mse", "binary_crossentropy"], metrics=[["mae"], ["mae"]],
              weighted_metrics=[["mae", "mse"], ["mae"]])
    keras_logs = k.fit(X, [YA, YB], sample_weight=W, verbose=0).history
    engine_logs = two_output_model().fit(X, [YA, YB], sample_weight=W, verbose=0).history
    assert sorted(engine_logs) == sorted(keras_logs)


def test_compiling_again_with_the_same_metric_instance_keeps_its_name():
    """The output prefix belongs to the report, not to the metric: a Metric instance given to
    compile twice is reported as "a_mean_absolute_error" both times (it became "a_a_..." before)."""
    inp = Input((3,))
    model = Model(inp, [layers.Dense(2, name="a")(inp), layers.Dense(1, name="b")(inp)])
    mae = engine.metrics.MeanAbsoluteError()
    for _ in range(2):
        model.compile("sgd", ["mse", "mse"], metrics=[[mae], []],
                      weighted_metrics=[[engine.metrics.MeanAbsoluteError()], []])
        logs = model.fit(X, [YA, YB], sample_weight=W, epochs=1, verbose=0).history
        assert sorted(logs) == ["a_loss", "a_mean_absolute_error", "a_weighted_mean_absolute_error", "b_loss",
                                "loss"]
        assert mae.name == "mean_absolute_error"
