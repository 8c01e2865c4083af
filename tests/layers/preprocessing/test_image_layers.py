"""Rescaling, Resizing, CenterCrop and the random augmentation layers: outputs against float64
loops and against values Keras 3 (JAX backend) gave, the training switch, seeding, gradients,
configs, and use inside a model."""
import os

import numpy as np
import pytest

import engine
from engine import layers
from engine.tensor import Tensor
from engine.testing import check_gradients, check_layer_gradients

rng = np.random.default_rng(0)


def _bilinear_reference(img, out_h, out_w):
    """Half-pixel-centre bilinear resize of (h, w, c), edges clamped, float64 loops."""
    h, w, c = img.shape
    out = np.zeros((out_h, out_w, c))
    for i in range(out_h):
        sy = min(max((i + 0.5) * h / out_h - 0.5, 0.0), h - 1)
        y0 = int(np.floor(sy))
        y1, fy = min(y0 + 1, h - 1), sy - y0
        for j in range(out_w):
            sx = min(max((j + 0.5) * w / out_w - 0.5, 0.0), w - 1)
            x0 = int(np.floor(sx))
            x1, fx = min(x0 + 1, w - 1), sx - x0
            out[i, j] = ((1 - fy) * ((1 - fx) * img[y0, x0] + fx * img[y0, x1])
                         + fy * ((1 - fx) * img[y1, x0] + fx * img[y1, x1]))
    return out


@pytest.mark.parametrize("size", [(3, 4), (8, 11), (5, 7), (2, 13)])
def test_resizing_bilinear_matches_loop_reference(size):
    x = rng.uniform(0, 10, size=(2, 5, 7, 3))
    out = layers.Resizing(*size, dtype="float64")(x)
    assert isinstance(out, Tensor) and out.shape == (2,) + size + (3,)
    for b in range(2):
        np.testing.assert_allclose(np.asarray(out)[b], _bilinear_reference(x[b], *size), rtol=1e-12, atol=1e-12)


def test_resizing_nearest_area_and_integer_images():
    x = rng.uniform(0, 10, size=(1, 6, 8, 2))
    near = np.asarray(layers.Resizing(4, 3, interpolation="nearest")(x))
    rows = np.floor((np.arange(4) + 0.5) * 6 / 4).astype(int)
    cols = np.floor((np.arange(3) + 0.5) * 8 / 3).astype(int)
    np.testing.assert_allclose(near, x[:, rows][:, :, cols].astype("float32"))
    area = np.asarray(layers.Resizing(3, 4, interpolation="area", dtype="float64")(x))
    np.testing.assert_allclose(area, x.reshape(1, 3, 2, 4, 2, 2).mean(axis=(2, 4)), rtol=1e-12)
    xi = np.array([[[[10], [200], [30]], [[255], [0], [7]]]], dtype="uint8")
    out = layers.Resizing(3, 4)(xi)
    assert out.dtype == np.uint8                   # Keras keeps integer images integers
    # Keras 3.15's values (JAX backend):
    np.testing.assert_array_equal(np.asarray(out)[0, :, :, 0], [[10, 129, 136, 30], [132, 112, 69, 18],
                                                                [255, 96, 3, 7]])


# Keras 3.15 (JAX backend): Resizing(2, 3 or 7, interpolation=...) of arange(10).reshape(1, 2, 5, 1) ** 2.
KERAS_RESIZE = {
    ("bicubic", 3): [[0.17241347, 4.0, 14.241379], [27.586199, 49.0, 76.827583]],
    ("bicubic", 7): [[-0.05825241, 0.36011112, 1.6530626, 4.0, 7.3673472, 12.415514, 16.407766],
                     [24.359222, 30.290863, 39.510223, 49.0, 59.510200, 72.484779, 81.990280]],
    ("lanczos3", 3): [[0.10929738, 4.0, 14.437421], [27.199139, 49.0, 77.347572]],
    ("lanczos3", 7): [[-0.00467973, 0.34305108, 1.6241028, 4.0, 6.9075813, 12.723362, 16.435714],
                      [24.444828, 29.867662, 40.019760, 48.999996, 58.511932, 73.198746, 81.986206]],
    ("lanczos5", 3): [[0.01655588, 4.0, 14.484553], [26.931557, 49.0, 77.569550]],
}


@pytest.mark.parametrize("interpolation,width", sorted(KERAS_RESIZE))
def test_resizing_kernels_match_keras(interpolation, width):
    x = np.arange(10, dtype="float32").reshape(1, 2, 5, 1) ** 2
    out = layers.Resizing(2, width, interpolation=interpolation)(x)
    np.testing.assert_allclose(np.asarray(out)[0, :, :, 0], KERAS_RESIZE[interpolation, width], rtol=1e-5, atol=1e-5)


def test_resizing_antialias_and_aspect_ratio_options():
    x = np.arange(10, dtype="float32").reshape(1, 2, 5, 1) ** 2
    out = layers.Resizing(2, 2, antialias=True)(x)
    np.testing.assert_allclose(np.asarray(out)[0, :, :, 0], [[1.7272729, 9.727272], [36.727276, 64.72727]], rtol=1e-5)
    img = rng.uniform(size=(1, 4, 8, 1))
    cropped = layers.Resizing(4, 4, crop_to_aspect_ratio=True, dtype="float64")(img)
    np.testing.assert_allclose(cropped, img[:, :, 2:6])      # the centred 4x4 box, already the right size
    padded = layers.Resizing(8, 8, pad_to_aspect_ratio=True, fill_value=-1.0, dtype="float64")(img)
    np.testing.assert_allclose(np.asarray(padded)[0, :2], -1.0)
    np.testing.assert_allclose(np.asarray(padded)[0, 2:6], img[0])
    with pytest.raises(ValueError, match="only one of"):
        layers.Resizing(2, 2, crop_to_aspect_ratio=True, pad_to_aspect_ratio=True)
    with pytest.raises(ValueError, match="interpolation must be one of"):
        layers.Resizing(2, 2, interpolation="gaussian")
    with pytest.raises(ValueError, match="rank 3"):
        layers.Resizing(2, 2)(np.zeros((2, 3)))


def test_resizing_channels_first_and_single_image():
    x = rng.uniform(size=(2, 5, 7, 3)).astype("float32")
    last = layers.Resizing(3, 4)(x)
    first = layers.Resizing(3, 4, data_format="channels_first")(x.transpose(0, 3, 1, 2))
    np.testing.assert_allclose(np.asarray(first).transpose(0, 2, 3, 1), last, rtol=1e-6)
    np.testing.assert_allclose(layers.Resizing(3, 4)(x[0]), np.asarray(last)[0], rtol=1e-6)


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic", "area", "lanczos3", "nearest"])
def test_resizing_gradients(interpolation):
    check_layer_gradients(layers.Resizing(3, 5, interpolation=interpolation, dtype="float64"),
                          rng.standard_normal((2, 4, 3, 2)))
    check_layer_gradients(layers.Resizing(6, 3, interpolation=interpolation, pad_to_aspect_ratio=True,
                                          dtype="float64"), rng.standard_normal((1, 4, 3, 2)))


def test_rescaling_values_dtype_and_gradient():
    x = np.arange(6, dtype="uint8").reshape(2, 3)
    out = layers.Rescaling(1 / 255.0, offset=-0.5)(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, x / 255.0 - 0.5, rtol=1e-6)
    per_channel = layers.Rescaling([1.0, 2.0, 3.0], offset=[0.0, 1.0, 2.0])(np.ones((2, 3)))
    np.testing.assert_allclose(per_channel, [[1.0, 3.0, 5.0]] * 2)
    check_layer_gradients(layers.Rescaling(0.5, offset=2.0, dtype="float64"), rng.standard_normal((2, 3)))
    assert layers.Rescaling.from_config(layers.Rescaling(0.25, 1.0).get_config()).get_config()["scale"] == 0.25


def test_center_crop_crops_or_resizes_small_images():
    x = rng.uniform(size=(2, 5, 7, 3)).astype("float32")
    np.testing.assert_array_equal(layers.CenterCrop(3, 4)(x), x[:, 1:4, 1:5])
    small = layers.CenterCrop(6, 4)(x)           # taller than the image: aspect crop, then resize
    expected = layers.Resizing(6, 4, crop_to_aspect_ratio=True)(x)
    np.testing.assert_allclose(small, expected)
    assert layers.CenterCrop(6, 4).compute_output_shape((None, 5, 7, 3)) == (None, 6, 4, 3)
    check_layer_gradients(layers.CenterCrop(2, 3, dtype="float64"), rng.standard_normal((2, 4, 4, 1)))


# -- augmentation ------------------------------------------------------------------------------------
IMAGE = np.arange(20, dtype="float32").reshape(1, 4, 5, 1)

# Keras 3.15 (JAX backend): RandomTranslation.transform_images(IMAGE, {"translations": [[2, -1.5]]}).
KERAS_SHIFT = {
    "reflect": [[8.5, 7.5, 7.5, 8.5, 9.5], [13.5, 12.5, 12.5, 13.5, 14.5], [16.0, 15.0, 15.0, 16.0, 17.0],
                [13.5, 12.5, 12.5, 13.5, 14.5]],
    "wrap": [[10.5, 11.5, 7.5, 8.5, 9.5], [15.5, 16.5, 12.5, 13.5, 14.5], [10.5, 11.5, 7.5, 8.5, 9.5],
             [5.5, 6.5, 2.5, 3.5, 4.5]],
    "constant": [[-1.0, -1.0, 7.5, 8.5, 9.5], [-1.0, -1.0, 12.5, 13.5, 14.5], [-1.0, -1.0, 7.0, 7.5, 8.0],
                 [-1.0, -1.0, -1.0, -1.0, -1.0]],
    "nearest": [[7.5, 7.5, 7.5, 8.5, 9.5], [12.5, 12.5, 12.5, 13.5, 14.5], [15.0, 15.0, 15.0, 16.0, 17.0],
                [15.0, 15.0, 15.0, 16.0, 17.0]],
}


@pytest.mark.parametrize("fill_mode", sorted(KERAS_SHIFT))
def test_translation_fill_modes_match_keras(fill_mode):
    layer = layers.RandomTranslation(0.5, 0.5, fill_mode=fill_mode, fill_value=-1.0)
    out = layer.transform_images(IMAGE, {"translations": np.array([[2.0, -1.5]])})
    np.testing.assert_allclose(np.asarray(out)[0, :, :, 0], KERAS_SHIFT[fill_mode])


def test_rotation_and_zoom_match_keras():
    square = np.arange(9, dtype="float32").reshape(1, 3, 3, 1)
    rot = layers.RandomRotation(0.3, interpolation="nearest").transform_images(square, {"angle": np.array([90.0])})
    np.testing.assert_array_equal(np.asarray(rot)[0, :, :, 0], [[2, 5, 8], [1, 4, 7], [0, 3, 6]])
    zoom = layers.RandomZoom(0.5).transform_images(IMAGE, {"height_zoom": np.array([[0.5]]),
                                                             "width_zoom": np.array([[1.5]])})
    np.testing.assert_allclose(np.asarray(zoom)[0, :, :, 0],
                               [[3.75, 4.25, 5.75, 7.25, 7.75], [6.25, 6.75, 8.25, 9.75, 10.25],
                                [8.75, 9.25, 10.75, 12.25, 12.75], [11.25, 11.75, 13.25, 14.75, 15.25]])


def test_flip_contrast_brightness_transforms():
    x = rng.uniform(0, 8, size=(2, 3, 4, 2)).astype("float32")
    flip = layers.RandomFlip("horizontal").transform_images(x, {"flips": np.array([True, False])})
    np.testing.assert_array_equal(flip, np.stack([x[0, :, ::-1], x[1]]))
    both = layers.RandomFlip().transform_images(x, {"flips": np.array([True, False])})
    np.testing.assert_array_equal(both, np.stack([x[0, ::-1, ::-1], x[1]]))
    contrast = layers.RandomContrast(0.5, value_range=(0, 8)).transform_images(
        x, {"contrast_factor": np.array([1.3, 0.6])})
    mean = x.mean(axis=(1, 2), keepdims=True)
    factor = np.array([1.3, 0.6]).reshape(2, 1, 1, 1)
    np.testing.assert_allclose(contrast, np.clip((x - mean) * factor + mean, 0, 8), rtol=1e-5)
    bright = layers.RandomBrightness(0.5, value_range=(0, 8)).transform_images(x, {"rgb_delta": np.array([1.3, -0.6])})
    np.testing.assert_allclose(bright, np.clip(x + np.array([1.3, -0.6]).reshape(2, 1, 1, 1), 0, 8), rtol=1e-6,
                               atol=1e-6)   # float32 sums against a float64 reference


@pytest.mark.parametrize("make,transformation", [
    (lambda: layers.RandomRotation(0.2, fill_mode="constant", dtype="float64"), {"angle": np.array([17.0, -40.0])}),
    (lambda: layers.RandomZoom(0.3, fill_mode="reflect", dtype="float64"),
     {"height_zoom": np.array([0.8, 1.2]), "width_zoom": np.array([1.1, 0.9])}),
    (lambda: layers.RandomTranslation(0.3, 0.3, fill_mode="wrap", dtype="float64"),
     {"translations": np.array([[0.3, -0.6], [1.2, 0.4]])}),
    (lambda: layers.RandomContrast(0.5, value_range=(-100, 100), dtype="float64"),
     {"contrast_factor": np.array([1.3, 0.6])}),
    (lambda: layers.RandomFlip(dtype="float64"), {"flips": np.array([True, False])}),
    (lambda: layers.RandomBrightness(0.2, value_range=(-100, 100), dtype="float64"),
     {"rgb_delta": np.array([3.0, -2.0])}),
    (lambda: layers.RandomCrop(2, 3, dtype="float64"), {"top": 1, "left": 2}),
    (lambda: layers.RandomCrop(5, 5, dtype="float64"), {"top": None, "left": None}),   # aspect crop + resize
])
def test_augmentation_gradients(make, transformation):
    layer = make()
    x = rng.standard_normal((2, 4, 5, 2))
    check_gradients(lambda images: layer.transform_images(images, transformation), [x], atol=1e-6)


AUGMENTERS = [
    lambda seed: layers.RandomFlip(seed=seed),
    lambda seed: layers.RandomRotation(0.2, seed=seed),
    lambda seed: layers.RandomZoom(0.2, 0.3, seed=seed),
    lambda seed: layers.RandomTranslation(0.2, 0.1, seed=seed),
    lambda seed: layers.RandomContrast(0.4, seed=seed),
    lambda seed: layers.RandomBrightness(0.2, seed=seed),
    lambda seed: layers.RandomCrop(3, 3, seed=seed),
]


@pytest.mark.parametrize("make", AUGMENTERS)
def test_augmentation_only_in_training_and_seeded(make):
    x = rng.uniform(0, 255, size=(8, 6, 6, 3)).astype("float32")
    layer = make(3)
    inference = np.asarray(layer(x, training=False))
    if isinstance(layer, layers.RandomCrop):
        # In inference: the largest centred window of the target's aspect ratio, resized to it.
        np.testing.assert_allclose(inference, layers.Resizing(3, 3, crop_to_aspect_ratio=True)(x), rtol=1e-6)
    else:
        np.testing.assert_array_equal(inference, x)
    a = np.asarray(make(3)(x, training=True))
    b = np.asarray(make(3)(x, training=True))
    np.testing.assert_array_equal(a, b)                         # same seed, same augmentation
    assert not np.array_equal(np.asarray(layer(x)), np.asarray(layer(x)))  # a direct call trains, as in Keras
    config = layer.get_config()
    assert config["seed"] == 3
    assert type(layer).from_config(config).get_config() == config


@pytest.mark.parametrize("make", AUGMENTERS)
def test_augmentation_streams_come_from_the_layers_seed_generator(make):
    """As Keras 3: `layer.generator` is a SeedGenerator; each training call advances it, and the
    call draws from the numpy stream of the seed pair it gave (so a layer's n-th call is
    reproducible, and rewinding the generator repeats a call)."""
    x = rng.uniform(0, 255, size=(8, 6, 6, 3)).astype("float32")
    layer = make(7)
    assert isinstance(layer.generator, engine.random.SeedGenerator)
    start = layer.generator.state.numpy().copy()
    first = np.asarray(layer(x, training=True))
    np.testing.assert_array_equal(layer.generator.state.numpy(), start + np.array([0, 1], np.uint32))
    second = np.asarray(layer(x, training=True))
    assert not np.array_equal(first, second)
    layer.generator.state.assign(start)                        # rewind: the first call again
    np.testing.assert_array_equal(np.asarray(layer(x, training=True)), first)
    layer.generator.state.assign(start)
    drawn = layer.get_random_transformation(x, training=True)
    expected = layer._draw(x.shape, np.random.default_rng([int(s) for s in start]))
    assert sorted(drawn) == sorted(expected)
    for key in drawn:
        np.testing.assert_array_equal(drawn[key], expected[key])
    layer(x, training=False)                                   # inference leaves the stream alone
    np.testing.assert_array_equal(layer.generator.state.numpy(), start + np.array([0, 1], np.uint32))


def test_unseeded_augmentation_follows_set_random_seed():
    x = rng.uniform(0, 255, size=(4, 6, 6, 3)).astype("float32")
    engine.utils.set_random_seed(11)
    a = np.asarray(layers.RandomRotation(0.3)(x, training=True))
    engine.utils.set_random_seed(11)
    b = np.asarray(layers.RandomRotation(0.3)(x, training=True))
    np.testing.assert_array_equal(a, b)


def test_factor_ranges_and_errors_follow_keras():
    assert layers.RandomContrast(0.2).factor == (0, 0.2)
    assert layers.RandomBrightness(0.2).factor == (-0.2, 0.2)
    assert layers.RandomRotation((0.3, -0.1)).factor == (-0.1, 0.3)
    assert layers.RandomBrightness(0.1).get_config()["value_range"] == [0, 255]
    with pytest.raises(ValueError, match="factor"):
        layers.RandomRotation(1.5)
    with pytest.raises(ValueError, match="height_factor"):
        layers.RandomZoom(-1.0)
    with pytest.raises(ValueError, match="fill_mode"):
        layers.RandomRotation(0.1, fill_mode="mirror2")
    with pytest.raises(ValueError, match="mode"):
        layers.RandomFlip("diagonal")


def test_augmentation_statistics():
    x = np.zeros((2000, 2, 2, 1), dtype="float32")
    x[:, 0, 0] = 1.0
    flipped = np.asarray(layers.RandomFlip("horizontal", seed=0)(x))
    share = flipped[:, 0, 1, 0].mean()
    assert 0.45 < share < 0.55
    deltas = np.asarray(layers.RandomBrightness(0.25, value_range=(-1000, 1000), seed=1)(x))[:, 1, 1, 0]
    assert deltas.min() >= -500 and deltas.max() <= 500 and deltas.std() > 250


def test_augmentation_and_rescaling_inside_a_model_fit_and_predict():
    engine.utils.set_random_seed(0)
    model = engine.Sequential([layers.Input((8, 8, 3)), layers.RandomFlip(seed=1), layers.RandomRotation(0.1, seed=2),
                               layers.RandomCrop(6, 6, seed=3), layers.Rescaling(1 / 255.0), layers.Flatten(),
                               layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = rng.uniform(0, 255, size=(16, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 2, size=16)
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    p1, p2 = model.predict(x, verbose=0), model.predict(x, verbose=0)
    np.testing.assert_array_equal(p1, p2)                       # no augmentation in predict
    assert p1.shape == (16, 2)


def test_image_layers_save_and_load(tmp_path):
    pytest.importorskip("h5py")
    model = engine.Sequential([layers.Input((6, 6, 3)), layers.Resizing(4, 4, interpolation="bicubic"),
                               layers.CenterCrop(3, 3), layers.RandomZoom(0.1, seed=4), layers.Rescaling(0.5)])
    path = os.path.join(tmp_path, "m.keras")
    model.save(path)
    loaded = engine.saving.load_model(path)
    x = rng.uniform(size=(2, 6, 6, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert [type(layer).__name__ for layer in loaded.layers] == ["Resizing", "CenterCrop", "RandomZoom", "Rescaling"]


def test_image_layers_against_live_keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")   # as the other live-Keras tests
    keras = pytest.importorskip("keras")
    if keras.backend.backend() not in ("jax", "numpy"):
        # TensorFlow's and torch's own resize kernels differ from Keras's backend-neutral one (used
        # by the JAX and numpy backends), which engine follows.
        pytest.skip("Keras resizes with its backend-neutral algorithm only on the JAX and numpy backends")
    x = rng.uniform(0, 10, size=(2, 5, 7, 3)).astype("float32")
    for interpolation in ("bilinear", "nearest", "bicubic", "lanczos3", "lanczos5"):
        for kwargs in ({}, {"crop_to_aspect_ratio": True}, {"pad_to_aspect_ratio": True}, {"antialias": True}):
            ours = layers.Resizing(4, 9, interpolation=interpolation, **kwargs)(x)
            theirs = keras.layers.Resizing(4, 9, interpolation=interpolation, **kwargs)(x)
            np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-4, atol=1e-4)
    for fill_mode in ("reflect", "wrap", "constant", "nearest"):
        for interpolation in ("bilinear", "nearest"):
            shifts = np.array([[1.5, -2.25], [-3.0, 0.7]], dtype="float32")
            ours = layers.RandomTranslation(0.5, 0.5, fill_mode=fill_mode, interpolation=interpolation) \
                .transform_images(x, {"translations": shifts})
            theirs = keras.layers.RandomTranslation(0.5, 0.5, fill_mode=fill_mode, interpolation=interpolation) \
                .transform_images(x, {"translations": shifts})
            np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-4, atol=1e-4)


def test_dict_inputs_move_masks_with_images_and_pass_labels():
    x = rng.uniform(0, 255, size=(3, 6, 6, 1)).astype("float32")
    masks = (rng.uniform(size=(3, 6, 6, 1)) > 0.5).astype("float32")
    labels = np.array([0, 1, 2])
    rotate = layers.RandomRotation(0.25, seed=5)
    transformation = rotate.get_random_transformation(x)
    out = rotate.transform_segmentation_masks(masks, transformation)
    assert set(np.unique(np.asarray(out))) <= {0.0, 1.0}       # masks are sampled nearest, never blended
    flip = layers.RandomFlip("horizontal", seed=2)
    result = flip({"images": x, "labels": labels, "segmentation_masks": masks})
    np.testing.assert_array_equal(np.asarray(result["labels"]), labels)
    for i in range(3):   # an image and its mask are flipped together
        same_image = np.array_equal(np.asarray(result["images"])[i], x[i])
        same_mask = np.array_equal(np.asarray(result["segmentation_masks"])[i], masks[i])
        assert same_image == same_mask or np.array_equal(masks[i], masks[i, :, ::-1])
    bright = layers.RandomBrightness(0.5, seed=1)({"images": x, "segmentation_masks": masks})
    np.testing.assert_array_equal(np.asarray(bright["segmentation_masks"]), masks)   # colour leaves masks alone
    crop = layers.RandomCrop(4, 4, seed=3)({"images": x, "segmentation_masks": masks})
    assert np.asarray(crop["segmentation_masks"]).shape == (3, 4, 4, 1)
    with pytest.raises(ValueError, match="bounding boxes"):
        flip({"images": x, "bounding_boxes": {"boxes": np.zeros((3, 1, 4))}})
