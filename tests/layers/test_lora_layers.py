"""LoRA (Keras 3's enable_lora / lora_rank) on Dense, EinsumDense, Embedding and Conv1D/2D/3D:
weights and their order, the frozen weight, outputs against float64 references of
W + (alpha / rank) a @ b, gradients, configs and .keras files (merged weight, adapters reset)."""
import numpy as np
import pytest

import engine
from engine import layers
from engine.testing import check_layer_gradients

rng = np.random.default_rng(0)


def _randomise(layer):
    layer.set_weights([rng.standard_normal(w.shape) * 0.5 for w in layer.get_weights()])


def test_dense_lora_weights_and_outputs():
    layer = layers.Dense(3, lora_rank=2, lora_alpha=6, dtype="float64")
    x = rng.standard_normal((4, 5))
    layer(x)
    assert [w.name for w in layer.weights] == ["kernel", "bias", "lora_kernel_a", "lora_kernel_b"]
    assert [w.name for w in layer.trainable_weights] == ["bias", "lora_kernel_a", "lora_kernel_b"]
    assert [w.name for w in layer.non_trainable_weights] == ["kernel"]
    assert [w.shape for w in layer.weights] == [(5, 3), (3,), (5, 2), (2, 3)]
    assert not layer.lora_kernel_b.numpy().any()            # b starts at zero: outputs unchanged
    _randomise(layer)
    w, b, la, lb = layer.get_weights()
    merged = w + 3.0 * la @ lb
    np.testing.assert_allclose(np.asarray(layer(x)), x @ merged + b, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(layer.kernel), merged, rtol=1e-12)   # Keras's merged `kernel`
    check_layer_gradients(layer, x)
    assert layer.count_params() == 15 + 3 + 10 + 6


def test_enable_lora_after_building_and_its_errors():
    layer = layers.Dense(2, dtype="float64")
    x = rng.standard_normal((3, 4))
    before = np.asarray(layer(x))
    layer.enable_lora(3)
    assert layer.lora_rank == 3 and layer.lora_alpha == 3 and layer.lora_enabled
    np.testing.assert_allclose(np.asarray(layer(x)), before)
    with pytest.raises(ValueError, match="already enabled"):
        layer.enable_lora(2)
    with pytest.raises(ValueError, match="built"):
        layers.Dense(2).enable_lora(2)
    with pytest.raises(ValueError, match="kernel_constraint"):
        constrained = layers.Dense(2, kernel_constraint="non_neg")
        constrained.build((None, 4))
        constrained.enable_lora(2)
    with pytest.raises(ValueError, match="lora_rank"):
        layers.Dense(2, lora_rank=0)
    with pytest.raises(ValueError, match="quantization_config"):
        layers.Dense(2, quantization_config="int8")


def test_embedding_lora():
    layer = layers.Embedding(7, 3, lora_rank=2, dtype="float64")
    ids = np.array([[0, 3, 6], [2, 2, 5]])
    layer(ids)
    assert [w.name for w in layer.weights] == ["embeddings", "lora_embeddings_a", "lora_embeddings_b"]
    assert [w.name for w in layer.trainable_weights] == ["lora_embeddings_a", "lora_embeddings_b"]
    _randomise(layer)
    table, la, lb = layer.get_weights()
    np.testing.assert_allclose(np.asarray(layer(ids)), (table + la @ lb)[ids], rtol=1e-12)
    check_layer_gradients(layer, ids, check_inputs=False)
    assert layer.get_config()["lora_rank"] == 2


def test_einsum_dense_and_conv_lora():
    x = rng.standard_normal((2, 4, 5))
    layer = layers.EinsumDense("abc,cde->abde", output_shape=(None, 2, 3), bias_axes="de", lora_rank=2,
                               dtype="float64")
    layer(x)
    assert [w.shape for w in layer.weights] == [(5, 2, 3), (2, 3), (5, 2, 2), (2, 3)]
    _randomise(layer)
    w, b, la, lb = layer.get_weights()
    merged = w + la @ lb
    want = np.einsum("abc,cde->abde", x, merged) + b
    np.testing.assert_allclose(np.asarray(layer(x)), want, rtol=1e-12)
    check_layer_gradients(layer, x)

    conv = layers.Conv1D(3, 2, lora_rank=2, lora_alpha=4, dtype="float64")
    conv(x)
    assert [w.shape for w in conv.weights] == [(2, 5, 3), (3,), (2, 5, 2), (2, 3)]
    _randomise(conv)
    w, b, la, lb = conv.get_weights()
    merged = w + 2.0 * la @ lb
    want = np.stack([sum(x[:, t + k] @ merged[k] for k in range(2)) for t in range(3)], axis=1) + b
    np.testing.assert_allclose(np.asarray(conv(x)), want, rtol=1e-10)
    check_layer_gradients(conv, x)
    with pytest.raises(TypeError, match="lora_rank"):
        layers.DepthwiseConv1D(2, lora_rank=2)


def test_config_round_trip_rebuilds_the_adapters():
    layer = layers.Dense(3, lora_rank=2, lora_alpha=5)
    again = layers.Dense.from_config(layer.get_config())
    again.build((None, 4))
    assert again.lora_enabled and again.lora_alpha == 5
    assert [w.name for w in again.weights] == ["kernel", "bias", "lora_kernel_a", "lora_kernel_b"]


def test_a_saved_lora_model_holds_the_merged_kernel(tmp_path):
    pytest.importorskip("h5py")
    inputs = engine.Input((4,))
    dense = layers.Dense(3, lora_rank=2)
    model = engine.Model(inputs, dense(inputs))
    _randomise(dense)
    x = rng.standard_normal((5, 4)).astype("float32")
    want = np.asarray(model(x))
    path = str(tmp_path / "lora.keras")
    model.save(path)
    loaded = engine.saving.load_model(path)
    restored = loaded.layers[-1]
    assert restored.lora_enabled
    # The adapters restart from zero and the frozen kernel holds the merged one: same outputs.
    assert not restored.lora_kernel_a.numpy().any() and not restored.lora_kernel_b.numpy().any()
    np.testing.assert_allclose(np.asarray(loaded(x)), want, rtol=1e-5, atol=1e-6)


def test_lora_files_move_both_ways_with_keras(tmp_path):
    pytest.importorskip("h5py")
    import os
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    x = rng.standard_normal((5, 6)).astype("float32")
    ids = np.array([[1, 4, 0], [2, 3, 3]])

    k_in = keras.Input((6,))
    k_dense = keras.layers.Dense(3, lora_rank=2)
    k_model = keras.Model(k_in, k_dense(k_in))
    k_model.set_weights([rng.standard_normal(w.shape).astype("float32") for w in k_model.get_weights()])
    path = str(tmp_path / "keras_lora.keras")
    k_model.save(path)
    ours = engine.saving.load_model(path)
    assert ours.layers[-1].lora_enabled
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(k_model(x)), rtol=1e-5, atol=1e-5)

    e_in = engine.Input((3,), dtype="int32")
    emb = layers.Embedding(5, 2, lora_rank=2)
    e_model = engine.Model(e_in, emb(e_in))
    _randomise(emb)
    path = str(tmp_path / "engine_lora.keras")
    e_model.save(path)
    theirs = keras.saving.load_model(path)
    assert theirs.layers[-1].lora_enabled
    np.testing.assert_allclose(np.asarray(theirs(ids)), np.asarray(e_model(ids)), rtol=1e-5, atol=1e-6)
