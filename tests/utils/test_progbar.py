"""keras.utils.Progbar: averaging of stateless metrics (weighted by the steps each update covers),
stateful metrics shown as given, add(), and Keras's number formats."""
import io

import pytest

from engine.utils import Progbar


def _run(**kwargs):
    pb = Progbar(10, verbose=0, **kwargs)
    pb.update(2, [("a", 1.0), ("b", -2.0)])
    pb.add(3, [("a", 2.0), ("b", 0.0)])
    pb.update(7, [("a", 4.0), ("b", 0.5)])
    return {k: total / count for k, (total, count) in pb._values.items()}


def test_stateless_metrics_are_step_weighted_averages():
    # updates cover 2, 3 and 2 steps
    assert _run() == pytest.approx({"a": (1 * 2 + 2 * 3 + 4 * 2) / 7, "b": (-2 * 2 + 0 * 3 + 0.5 * 2) / 7})


def test_stateful_and_stateless_lists_choose_what_is_averaged():
    assert _run(stateful_metrics=["b"]) == pytest.approx({"a": 16 / 7, "b": 0.5})
    assert _run(stateless_metrics=["a"]) == pytest.approx({"a": 16 / 7, "b": 0.5})
    with pytest.raises(ValueError, match="only one"):
        Progbar(3, stateful_metrics=["a"], stateless_metrics=["b"])


def test_final_line_shows_the_final_values_in_keras_formats():
    out = io.StringIO()
    pb = Progbar(4, verbose=1, stream=out, unit_name="sample")
    pb.update(2, [("loss", 1.0), ("tiny", 0.0)])
    pb.update(4, [("loss", 0.5), ("tiny", 0.0)])
    line = out.getvalue().strip()
    assert line.startswith("4/4 ") and "/sample" in line
    assert line.endswith(" - loss: 0.5000 - tiny: 0.0000e+00")
    out2 = io.StringIO()
    pb2 = Progbar(2, verbose=2, stream=out2)
    pb2.update(2, [("delta", -0.5)])
    assert out2.getvalue().strip().endswith(" - delta: -5.0000e-01")     # Keras's verbose=2 rule


def test_without_interactive_logging_progress_goes_to_logging(caplog, capsys):
    from engine import Input, Sequential, config, layers, utils
    import logging
    import numpy as np
    model = Sequential([Input((2,)), layers.Dense(1)])
    model.compile("sgd", "mse")
    config.disable_interactive_logging()
    try:
        assert not utils.is_interactive_logging_enabled()
        with caplog.at_level(logging.INFO, logger="engine"):
            model.fit(np.ones((8, 2)), np.ones((8, 1)), epochs=2, batch_size=4, verbose=1)
    finally:
        utils.enable_interactive_logging()
    assert capsys.readouterr().out == ""
    messages = [r.getMessage() for r in caplog.records if r.name == "engine"]
    assert messages[0] == "Epoch 1/2" and messages[1].startswith("2/2 ") and " - loss: " in messages[1]
    assert messages[2] == "Epoch 2/2" and len(messages) == 4
    assert config.is_interactive_logging_enabled()
    model.fit(np.ones((8, 2)), np.ones((8, 1)), epochs=1, batch_size=4, verbose=1)
    assert capsys.readouterr().out.startswith("Epoch 1/1\n2/2 ")
