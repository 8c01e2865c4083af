"""The TensorBoard callback's event files, read back by a decoder written here (bitwise CRC-32C,
a minimal protocol-buffer parser), and by TensorFlow when it is installed."""
import glob
import os
import struct

import numpy as np
import pytest

from engine import Input, Model, Sequential, callbacks, layers
from engine.utils import event_file


# -- an independent reader -------------------------------------------------------------------------
def _crc32c_bitwise(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 * (crc & 1))
    return crc ^ 0xFFFFFFFF


def _masked(crc):
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _records(path):
    data = open(path, "rb").read()
    pos = 0
    while pos < len(data):
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        assert struct.unpack("<I", data[pos + 8:pos + 12])[0] == _masked(_crc32c_bitwise(header))
        body = data[pos + 12:pos + 12 + length]
        assert struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])[0] == _masked(_crc32c_bitwise(body))
        yield body
        pos += 16 + length


def _fields(buf):
    """{field number: [values]}: varints as ints, 64/32-bit as raw bytes, length-delimited as bytes."""
    out, pos = {}, 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            assert wire == 2
            length, pos = _read_varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        out.setdefault(number, []).append(value)
    return out


def _read_varint(buf, pos):
    shift = result = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, pos


def _tensor(tensor_bytes):
    t = _fields(tensor_bytes)
    dtype = t[1][0]
    dims = _fields(t.get(2, [b""])[0]).get(2, [])                # TensorShapeProto.dim
    shape = tuple(_fields(d).get(1, [0])[0] for d in dims)
    if dtype == 7:
        return [s for s in t.get(8, [])], shape
    np_dtype = {1: "<f4", 2: "<f8"}[dtype]
    return np.frombuffer(t[4][0], dtype=np_dtype).reshape(shape), shape


def read_events(logdir):
    """[(step, tag, plugin name, value)] from every event file under logdir, and the file versions."""
    events, versions = [], []
    for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
        for record in _records(path):
            event = _fields(record)
            if 3 in event:
                versions.append(event[3][0].decode())
                continue
            step = event.get(2, [0])[0]
            for value in _fields(event[5][0])[1]:
                v = _fields(value)
                plugin = _fields(_fields(v[9][0])[1][0])[1][0].decode()
                data, _ = _tensor(v[8][0])
                events.append((step, v[1][0].decode(), plugin, data))
    return events, versions


# -- the writer's pieces against references ---------------------------------------------------------
def test_crc32c_matches_the_bitwise_definition_and_a_known_value():
    assert event_file.crc32c(b"123456789") == 0xE3069283       # the CRC-32C check value
    data = np.random.default_rng(0).integers(0, 256, 999).astype(np.uint8).tobytes()
    assert event_file.crc32c(data) == _crc32c_bitwise(data)


def test_histogram_buckets_count_every_value_once():
    data = np.random.default_rng(1).normal(size=1000)
    buckets = event_file.histogram_buckets(data, 30)
    assert buckets.shape == (30, 3) and buckets[:, 2].sum() == 1000
    assert buckets[0, 0] == data.min() and buckets[-1, 1] == data.max()
    edges = np.linspace(data.min(), data.max(), 31)
    # Every bucket but the last is half-open; the last holds the maximum too.
    want = [np.sum((data >= lo) & (data < hi)) for lo, hi in zip(edges[:-2], edges[1:-1])]
    want.append(np.sum(data >= edges[-2]))
    np.testing.assert_array_equal(buckets[:, 2], want)
    np.testing.assert_array_equal(event_file.histogram_buckets(np.full(4, 2.0)), [[1.5, 2.5, 4.0]])


def test_png_decodes_to_the_pixels():
    import zlib
    img = np.random.default_rng(2).integers(0, 256, (5, 7, 1)).astype(np.uint8)
    png = event_file.encode_png(img)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    length = struct.unpack(">I", png[33:37])[0]
    assert png[37:41] == b"IDAT"
    rows = np.frombuffer(zlib.decompress(png[41:41 + length]), np.uint8).reshape(5, 8)
    assert np.all(rows[:, 0] == 0)
    np.testing.assert_array_equal(rows[:, 1:], img[:, :, 0])


# -- the callback in fit and evaluate ---------------------------------------------------------------
def _data():
    rng = np.random.default_rng(3)
    return rng.normal(size=(40, 4)).astype("float32"), rng.normal(size=(40, 1)).astype("float32")


def _model():
    inp = Input((4,))
    model = Model(inp, layers.Dense(1, name="out")(layers.Dense(3, name="hidden")(inp)))
    model.compile("sgd", "mse", metrics=["mae"])
    return model


def test_fit_writes_keras_tags_steps_and_values(tmp_path):
    x, y = _data()
    model = _model()
    tb = callbacks.TensorBoard(log_dir=tmp_path, histogram_freq=1, write_images=True, update_freq=2)
    history = model.fit(x, y, batch_size=10, epochs=2, validation_data=(x[:20], y[:20]), callbacks=[tb], verbose=0)
    train, versions = read_events(tmp_path / "train")
    val, _ = read_events(tmp_path / "validation")
    assert set(versions) == {"brain.Event:2"}
    scalars = {(step, tag): float(v.reshape(())) for step, tag, plugin, v in train if plugin == "scalars"}
    for epoch in range(2):
        assert scalars[(epoch, "epoch_loss")] == pytest.approx(history.history["loss"][epoch], rel=1e-6)
        assert scalars[(epoch, "epoch_mae")] == pytest.approx(history.history["mae"][epoch], rel=1e-6)
        assert scalars[(epoch, "epoch_learning_rate")] == pytest.approx(0.01)
    # update_freq=2: batch scalars at global batches 2, 4, 6, 8 (4 batches an epoch).
    assert sorted(step for step, tag in scalars if tag == "batch_loss") == [2, 4, 6, 8]
    val_scalars = {(step, tag): float(v.reshape(())) for step, tag, _, v in val}
    assert val_scalars[(1, "epoch_loss")] == pytest.approx(history.history["val_loss"][1], rel=1e-6)
    # Validation after epoch 1 happened at optimizer iteration 4, after epoch 2 at 8.
    assert val_scalars[(8, "evaluation_loss_vs_iterations")] == pytest.approx(history.history["val_loss"][1],
                                                                              rel=1e-6)
    assert (4, "evaluation_mae_vs_iterations") in val_scalars
    hist = {(step, tag): v for step, tag, plugin, v in train if plugin == "histograms"}
    kernel = model.get_layer("hidden").kernel.numpy()
    np.testing.assert_allclose(hist[(1, "hidden/kernel/histogram")], event_file.histogram_buckets(kernel))
    assert hist[(0, "out/bias/histogram")].shape == (1, 3)       # one value: one bucket
    images = {tag: v for step, tag, plugin, v in train if plugin == "images" and step == 1}
    width, height = images["hidden/kernel/image"][:2]
    assert (int(width), int(height)) == (4, 3)                 # (4, 3) kernel shown as 3 x 4
    graph = [v for step, tag, plugin, v in train if plugin == "graph_keras_model"]
    assert len(graph) == 1 and b'"class_name": "Functional"' in graph[0][0]


def test_update_freq_epoch_writes_no_batch_scalars_and_evaluate_writes_evaluation(tmp_path):
    x, y = _data()
    model = _model()
    model.fit(x, y, batch_size=10, epochs=1, callbacks=[callbacks.TensorBoard(tmp_path, write_graph=False)],
              verbose=0)
    train, _ = read_events(tmp_path / "train")
    assert {tag for _, tag, _, _ in train} == {"epoch_loss", "epoch_mae", "epoch_learning_rate"}
    loss, mae = model.evaluate(x, y, callbacks=[callbacks.TensorBoard(tmp_path / "eval")], verbose=0)
    val, _ = read_events(tmp_path / "eval" / "validation")
    got = {tag: (step, float(v.reshape(()))) for step, tag, _, v in val}
    assert got["evaluation_loss_vs_iterations"] == (4, pytest.approx(loss, rel=1e-6))
    assert got["evaluation_mae_vs_iterations"][1] == pytest.approx(mae, rel=1e-6)


def test_projector_config_names_embedding_layers_and_checks_metadata(tmp_path):
    model = Sequential([Input((3,), dtype="int32"), layers.Embedding(10, 2, name="emb"), layers.Flatten(),
                        layers.Dense(1)])
    model.compile("sgd", "mse")
    tb = callbacks.TensorBoard(tmp_path, embeddings_freq=0, embeddings_metadata={"emb": "meta.tsv"})
    tb.embeddings_freq = 1
    tb.set_model(model)
    text = (tmp_path / "projector_config.pbtxt").read_text()
    assert 'metadata_path: "meta.tsv"' in text and text.count("embeddings {") == 1
    with pytest.raises(ValueError, match="nope"):
        callbacks.TensorBoard(tmp_path, embeddings_freq=1, embeddings_metadata={"nope": "m.tsv"}).set_model(model)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="profil"):
        callbacks.TensorBoard(profile_batch=2)
    with pytest.raises(ValueError, match="update_freq"):
        callbacks.TensorBoard(update_freq="sometimes")


def test_tensorflow_reads_the_files(tmp_path):
    tf = pytest.importorskip("tensorflow")
    x, y = _data()
    model = _model()
    history = model.fit(x, y, batch_size=10, epochs=2, verbose=0,
                        callbacks=[callbacks.TensorBoard(tmp_path, histogram_freq=1, write_images=True)])
    seen = {}
    for path in glob.glob(str(tmp_path / "train" / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                seen[(event.step, value.tag, value.metadata.plugin_data.plugin_name)] = tf.make_ndarray(value.tensor)
    assert float(seen[(1, "epoch_loss", "scalars")]) == pytest.approx(history.history["loss"][1], rel=1e-6)
    assert seen[(0, "hidden/kernel/histogram", "histograms")].shape == (30, 3)
    assert seen[(1, "hidden/kernel/image", "images")].shape == (3,)
    png = seen[(1, "hidden/kernel/image", "images")][2]
    assert tf.io.decode_png(png).shape == (3, 4, 1)
