"""KerasFileEditor: a weights file read into nested dicts, compared with a model, edited and
saved back in Keras 3's layout (Keras-made files included)."""
import os

import numpy as np
import pytest

import engine
from engine import layers
from engine.saving import KerasFileEditor

pytest.importorskip("h5py")
DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")


def _model(units=(3, 2)):
    inputs = engine.Input((4,))
    x = inputs
    for n in units:
        x = layers.Dense(n)(x)
    return engine.Model(inputs, x)


def test_a_keras_made_file_reads_and_matches_the_model_engine_loads_from_it(capsys):
    path = os.path.join(DATA, "keras_attention.keras")
    editor = KerasFileEditor(path)
    model = engine.saving.load_model(path)
    assert editor.metadata["keras_version"].startswith("3.")
    tree = editor.weights_dict
    np.testing.assert_array_equal(tree["layers"]["dense"]["0"], model.get_layer("head").kernel.numpy())
    assert tree["layers"]["multi_head_attention"]["query_dense"]["0"].shape == (8, 2, 4)
    result = editor.compare(model)
    assert result["status"] == "success" and result["error_count"] == 0
    assert result["match_count"] == len(model.weights) + len(editor.weights_dict["optimizer"])
    editor.summary()
    assert "query_dense/" in capsys.readouterr().out


def test_edits_are_saved_in_keras_layout_and_load_into_the_changed_model(tmp_path):
    old = _model((3, 2))
    old_path = str(tmp_path / "old.weights.h5")
    old.save_weights(old_path)
    editor = KerasFileEditor(old_path)
    # The new model has a third Dense: add its weights; rename and re-add the others to show the edits.
    new = _model((3, 2, 5))
    assert editor.compare(new) == {"status": "error", "error_count": 2, "match_count": 4}
    kernel = np.arange(10, dtype=np.float32).reshape(2, 5)
    editor.add_object("layers/dense_2", {"0": kernel})
    assert editor.compare(new)["error_count"] == 1
    editor.add_weights("dense_2", {"1": np.ones(5, dtype=np.float32)})
    assert editor.compare(new)["status"] == "success"
    editor.rename_object("layers/dense_1", "moved")
    assert editor.compare(new)["error_count"] == 4
    editor.rename_object("moved", "dense_1")
    new_path = str(tmp_path / "new.weights.h5")
    editor.save(new_path)
    new.load_weights(new_path)
    np.testing.assert_array_equal(new.layers[3].kernel.numpy(), kernel)
    np.testing.assert_array_equal(new.layers[1].kernel.numpy(), old.layers[1].kernel.numpy())

    editor.delete_weight("dense_2", "1")
    editor.delete_object("layers/dense_2")
    assert editor.compare(old)["status"] == "success"
    with pytest.raises(ValueError, match="occurs 0 times|does not occur"):
        editor.delete_object("dense_9")
    with pytest.raises(ValueError, match="has no weight '7'"):
        editor.delete_weight("dense", "7")
    with pytest.raises(ValueError, match="must be a dict"):
        editor.add_weights("dense", [np.ones(2)])
    with pytest.raises(ValueError, match=r"\.weights\.h5"):
        editor.save(str(tmp_path / "x.keras"))


def test_keras_reads_what_the_editor_writes(tmp_path):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    model = _model((3, 2))
    path = str(tmp_path / "m.weights.h5")
    model.save_weights(path)
    edited = str(tmp_path / "edited.weights.h5")
    editor = KerasFileEditor(path)
    editor.rename_object("dense", "dense")      # no-op edit; the file is rewritten by the editor
    editor.save(edited)
    inputs = keras.Input((4,))
    theirs = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(3)(inputs)))
    theirs.load_weights(edited)
    x = np.random.default_rng(0).normal(size=(2, 4)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(theirs(x)), model(x).numpy(), rtol=1e-5, atol=1e-6)
