"""Keras-made .keras files with MultiHeadAttention (causal), LayerNormalization (one and two
axes) and Conv2DTranspose (strides, output_padding, dilation) load in engine with Keras's
predictions, survive engine's own save / load, and (where Keras is installed) Keras reads what
engine writes.  The files come from tests/data/make_keras_layers_reference.py."""
import os

import numpy as np
import pytest

import engine

pytest.importorskip("h5py")
DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")
FILES = ["keras_attention", "keras_conv_transpose"]


def _load(name):
    ref = np.load(os.path.join(DATA, f"{name}.npz"))
    return engine.models.load_model(os.path.join(DATA, f"{name}.keras")), ref["x"], ref["y"]


@pytest.mark.parametrize("name", FILES)
def test_engine_loads_keras_files_with_keras_predictions(name, tmp_path):
    model, x, y = _load(name)
    np.testing.assert_allclose(model.predict(x, verbose=0), y, rtol=1e-4, atol=1e-5)
    path = str(tmp_path / "again.keras")
    model.save(path)
    again = engine.models.load_model(path)
    np.testing.assert_allclose(again.predict(x, verbose=0), y, rtol=1e-4, atol=1e-5)


def test_the_attention_file_keeps_keras_weight_order_and_counts():
    model, _, _ = _load("keras_attention")
    mha = model.get_layer("self_attention")
    assert [w.shape for w in mha.weights] == [(8, 2, 4), (2, 4)] * 3 + [(2, 4, 8), (8,)]
    assert model.get_layer("norm_2d").weights[0].shape == (6, 5)
    assert mha.count_params() == 3 * (8 * 8 + 8) + 8 * 8 + 8


@pytest.mark.parametrize("name", FILES)
def test_keras_reads_engine_files(name, tmp_path):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    model, x, y = _load(name)
    model.compile("adam", "mse")
    model.fit(x, y, epochs=1, verbose=0)
    path = str(tmp_path / "ours.keras")
    model.save(path)
    theirs = keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(theirs.predict(x, verbose=0)), model.predict(x, verbose=0), rtol=1e-4,
                               atol=1e-5)
