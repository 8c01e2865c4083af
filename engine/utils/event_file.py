"""TensorBoard event files written without TensorFlow: what the TensorBoard callback logs.

An event file is a sequence of records (TFRecord framing: length, masked CRC-32C of the length,
the bytes, their masked CRC-32C), each an `Event` protocol buffer. The first event names the file
version; the others carry a `Summary` of tagged values at a step. Values are written the way
TensorFlow 2's `tf.summary` writes them (a tensor plus the plugin that displays it: scalars,
histograms, images), so TensorBoard and `tf.compat.v1.train.summary_iterator` read them as files
made by Keras on TensorFlow. The protocol buffers are few and small, so they are encoded here by
hand (field numbers from TensorFlow's event.proto, summary.proto, tensor.proto and
tensor_shape.proto) instead of depending on the protobuf package.
"""
import itertools
import os
import socket
import struct
import time
import zlib

import numpy as np

# -- CRC-32C (Castagnoli), as TFRecord framing requires ----------------------------------------
_CRC32C_POLY = 0x82F63B78


def _crc32c_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _CRC32C_POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data):
    """The CRC-32C of `data` (bytes)."""
    crc = 0xFFFFFFFF
    table = _CRC32C_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data):
    """TFRecord's masked CRC: the CRC rotated right by 15 bits plus a constant (mod 2**32)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame_record(data):
    """One TFRecord: the length and its CRC, the data and its CRC."""
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc32c(header)) + data + struct.pack("<I", masked_crc32c(data))


# -- protocol buffer encoding (the wire format's varints and length-delimited fields) ---------------
def _varint(n):
    n &= (1 << 64) - 1          # int64 fields: negatives as 64-bit two's complement
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | 0x80 if n else low)
        if not n:
            return bytes(out)


def _field(number, wire_type):
    return _varint(number << 3 | wire_type)


def _int_field(number, value):
    return _field(number, 0) + _varint(int(value))


def _double_field(number, value):
    return _field(number, 1) + struct.pack("<d", value)


def _bytes_field(number, data):
    data = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return _field(number, 2) + _varint(len(data)) + data


# TensorFlow's DataType and SummaryMetadata.DataClass numbers.
_DT_FLOAT, _DT_DOUBLE, _DT_STRING = 1, 2, 7
_DATA_CLASS_SCALAR, _DATA_CLASS_TENSOR, _DATA_CLASS_BLOB_SEQUENCE = 1, 2, 3


def _tensor_shape(shape):
    return b"".join(_bytes_field(2, _int_field(1, size)) for size in shape)   # TensorShapeProto.dim


def _tensor_proto(dtype, shape, content=None, strings=None):
    body = _int_field(1, dtype) + _bytes_field(2, _tensor_shape(shape))
    if content is not None:
        body += _bytes_field(4, content)                                          # tensor_content
    for s in strings or ():
        body += _bytes_field(8, s)                                                # string_val
    return body


def _metadata(plugin_name, data_class, content=b""):
    plugin_data = _bytes_field(1, plugin_name) + (_bytes_field(2, content) if content else b"")
    return _bytes_field(1, plugin_data) + (_int_field(4, data_class) if data_class else b"")


def _value(tag, metadata, tensor):
    return _bytes_field(1, tag) + _bytes_field(9, metadata) + _bytes_field(8, tensor)


# -- the values TensorBoard's plugins display ------------------------------------------------------
def scalar_value(tag, value):
    """A scalar as `tf.summary.scalar` writes it: a float32 tensor for the scalars plugin."""
    tensor = _tensor_proto(_DT_FLOAT, (), content=struct.pack("<f", float(value)))
    return _value(tag, _metadata("scalars", _DATA_CLASS_SCALAR), tensor)


def histogram_buckets(data, bucket_count=30):
    """`(bucket_count, 3)` float64 rows of (left edge, right edge, count) over equal-width buckets
    spanning the data (one bucket of width 1 around a constant; zero rows for no data)."""
    data = np.asarray(data, dtype=np.float64).ravel()
    if data.size == 0:
        return np.zeros((0, 3))
    low, high = float(data.min()), float(data.max())
    if low == high:
        return np.array([[low - 0.5, high + 0.5, float(data.size)]])
    edges = np.linspace(low, high, bucket_count + 1)
    index = np.minimum(((data - low) / (high - low) * bucket_count).astype(np.int64), bucket_count - 1)
    counts = np.bincount(index, minlength=bucket_count).astype(np.float64)
    return np.stack([edges[:-1], edges[1:], counts], axis=1)


def histogram_value(tag, data, bucket_count=30):
    """A histogram as `tf.summary.histogram` writes it: a (k, 3) float64 tensor of buckets."""
    buckets = histogram_buckets(data, bucket_count)
    tensor = _tensor_proto(_DT_DOUBLE, buckets.shape, content=buckets.astype("<f8").tobytes())
    return _value(tag, _metadata("histograms", _DATA_CLASS_TENSOR), tensor)


def encode_png(image):
    """A (height, width, channels) uint8 array (1, 3 or 4 channels) as PNG bytes."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    height, width, channels = image.shape
    color_type = {1: 0, 3: 2, 4: 6}[channels]
    rows = np.concatenate([np.zeros((height, 1), np.uint8), image.reshape(height, width * channels)], axis=1)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes())) + \
        chunk(b"IEND", b"")


def image_value(tag, images, max_outputs=3):
    """Images as `tf.summary.image` writes them: a string tensor [width, height, png, ...].

    Args:
        tag: the summary's name.
        images: a (k, height, width, channels) array; floats are read as [0, 1] intensities.
        max_outputs: the most images written (the first ones).
    """
    images = np.asarray(images)
    if images.dtype.kind == "f":
        images = (np.clip(images, 0.0, 1.0) * 255.5).astype(np.uint8)    # convert_image_dtype's rounding
    images = images[:max_outputs]
    strings = [str(images.shape[2]), str(images.shape[1])] + [encode_png(img) for img in images]
    tensor = _tensor_proto(_DT_STRING, (len(strings),), strings=strings)
    return _value(tag, _metadata("images", _DATA_CLASS_BLOB_SEQUENCE), tensor)


def text_blob_value(tag, text, plugin_name, content=b""):
    """A string scalar for a plugin (the Keras model summary: plugin "graph_keras_model")."""
    tensor = _tensor_proto(_DT_STRING, (), strings=[text])
    return _value(tag, _metadata(plugin_name, 0, content), tensor)


# -- the file ----------------------------------------------------------------------------------------
_file_ids = itertools.count()


class EventFileWriter:
    """Appends events to a new TensorBoard event file in a log directory.

    Args:
        logdir: the directory (made if missing); the file is named as TensorFlow 2 names its
            (`events.out.tfevents.<time>.<host>.<pid>.<n>.v2`), so TensorBoard finds it.
    """

    def __init__(self, logdir):
        os.makedirs(logdir, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}.{next(_file_ids)}.v2"
        self.path = os.path.join(logdir, name)
        self._file = open(self.path, "wb")
        self._write_event(_bytes_field(3, "brain.Event:2"))                     # file_version

    def _write_event(self, body, step=None):
        event = _double_field(1, time.time()) + (_int_field(2, step) if step is not None else b"") + body
        self._file.write(frame_record(event))

    def write(self, values, step):
        """Writes one event holding encoded values (from `scalar_value`, ...) at `step`."""
        if values:
            self._write_event(_bytes_field(5, b"".join(_bytes_field(1, v) for v in values)), step=int(step))

    def flush(self):
        """Pushes what was written to the file."""
        self._file.flush()

    def close(self):
        """Flushes and closes the file (later writes are an error)."""
        if not self._file.closed:
            self._file.close()
