"""Crafted weights files and archives: bytes from outside the file, declared sizes far beyond
the model, archives that inflate to too much, and the temporary files of killed saves."""
import io
import json
import os
import zipfile

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from engine import Input, Model, layers                    # noqa: E402
from engine.models import load_model                      # noqa: E402
from engine.saving import archive                          # noqa: E402


def _model():
    inp = Input(shape=(3,))
    return Model(inp, layers.Dense(2, name="d")(inp))


def _saved(tmp_path):
    """A model and its .weights.h5 (Keras layout: layers/dense/vars/0 kernel, /1 bias)."""
    model = _model()
    path = str(tmp_path / "m.weights.h5")
    model.save_weights(path)
    return model, path


def _replace(path, key, make):
    with h5py.File(path, "a") as f:
        del f[key]
        make(f, key)


def _assert_refused(model, path, where, words):
    before = [w.numpy().copy() for w in model.weights]
    with pytest.raises(ValueError) as e:
        model.load_weights(path)
    msg = str(e.value)
    assert where in msg and all(w in msg for w in words), msg
    for w, old in zip(model.weights, before):       # nothing was assigned
        np.testing.assert_array_equal(w.numpy(), old)


def test_external_storage_is_refused(tmp_path):
    model, path = _saved(tmp_path)
    outside = tmp_path / "outside.bin"
    outside.write_bytes(np.arange(6, dtype=np.float32).tobytes())
    _replace(path, "layers/dense/vars/0", lambda f, k: f.create_dataset(
        k, shape=(3, 2), dtype="float32", external=[(str(outside), 0, 24)]))
    with h5py.File(path, "r") as f:          # the crafted file does read the other file's bytes
        assert f["layers/dense/vars/0"][0, 1] == 1.0
    _assert_refused(model, path, "layers/dense/vars/0", ["external file"])


def test_external_link_is_refused(tmp_path):
    model, path = _saved(tmp_path)
    other = str(tmp_path / "other.h5")
    with h5py.File(other, "w") as g:
        g["w"] = np.ones((3, 2), np.float32)
    _replace(path, "layers/dense/vars/0", lambda f, k: f.__setitem__(k, h5py.ExternalLink(other, "/w")))
    _assert_refused(model, path, "layers/dense/vars/0", ["external link", "other.h5"])


def test_external_link_on_a_group_is_refused(tmp_path):
    model, path = _saved(tmp_path)
    other = str(tmp_path / "other.h5")
    with h5py.File(path, "r") as f, h5py.File(other, "w") as g:
        f.copy("layers", g)
    _replace(path, "layers", lambda f, k: f.__setitem__(k, h5py.ExternalLink(other, "/layers")))
    _assert_refused(model, path, "layers", ["external link"])


def test_virtual_dataset_is_refused(tmp_path):
    model, path = _saved(tmp_path)
    other = str(tmp_path / "source.h5")
    with h5py.File(other, "w") as g:
        g["w"] = np.full((3, 2), 7, np.float32)

    def make(f, key):
        layout = h5py.VirtualLayout(shape=(3, 2), dtype="float32")
        layout[:] = h5py.VirtualSource(other, "w", shape=(3, 2))
        f.create_virtual_dataset(key, layout)
    _replace(path, "layers/dense/vars/0", make)
    _assert_refused(model, path, "layers/dense/vars/0", ["virtual dataset"])


def test_soft_link_inside_the_file_is_followed(tmp_path):
    model, path = _saved(tmp_path)
    value = np.random.default_rng(0).standard_normal((3, 2)).astype(np.float32)
    with h5py.File(path, "a") as f:
        f["elsewhere"] = value
        del f["layers/dense/vars/0"]
        f["layers/dense/vars/0"] = h5py.SoftLink("/elsewhere")
    model.load_weights(path)
    np.testing.assert_array_equal(model.get_layer("d").kernel.numpy(), value)


def test_huge_declared_dataset_is_refused_before_reading(tmp_path):
    model, path = _saved(tmp_path)
    # 4 TiB declared, a few KB on disk (chunked, never written)
    _replace(path, "layers/dense/vars/0", lambda f, k: f.create_dataset(
        k, shape=(1 << 40,), dtype="float32", chunks=(1024,)))
    assert os.path.getsize(path) < 100_000
    _assert_refused(model, path, "layers/dense/vars/0", ["shape"])


def test_huge_optimizer_dataset_is_refused(tmp_path):
    model = _model()
    model.compile("adam", "mse")
    rng = np.random.default_rng(0)
    model.fit(rng.standard_normal((8, 3)), rng.standard_normal((8, 2)), epochs=1, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    buf = io.BytesIO(members["model.weights.h5"])
    with h5py.File(buf, "a") as f:
        del f["optimizer/vars/2"]
        f.create_dataset("optimizer/vars/2", shape=(1 << 40,), dtype="float32", chunks=(1024,))
    members["model.weights.h5"] = buf.getvalue()
    with zipfile.ZipFile(path, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    with pytest.raises(ValueError, match=r"optimizer/vars/2 declares"):
        load_model(path)


def _archive(tmp_path, weights_member):
    """A .keras of the test model whose model.weights.h5 member is weights_member (bytes)."""
    model = _model()
    path = str(tmp_path / "m.keras")
    model.save(path)
    with zipfile.ZipFile(path) as z:
        config = z.read("config.json")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", config)
        z.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        z.writestr("model.weights.h5", weights_member)
    return path


def test_member_that_inflates_too_far_is_refused(tmp_path):
    path = _archive(tmp_path, b"\0" * (64 << 20))    # 64 MiB of zeros: ~64 KB compressed
    assert os.path.getsize(path) < (1 << 20)
    with pytest.raises(ValueError) as e:
        load_model(path)
    assert path in str(e.value) and "model.weights.h5" in str(e.value) and "too large" in str(e.value)


def test_oversized_member_is_refused_before_inflating(tmp_path, monkeypatch):
    path = _archive(tmp_path, b"\0" * (8 << 20))
    monkeypatch.setattr(archive.weights_io, "weights_bytes_bound", lambda model: 4 << 20)
    reads = []
    real_read = zipfile.ZipExtFile.read

    def counting_read(self, n=-1):
        data = real_read(self, n)
        if self.name == "model.weights.h5":
            reads.append(len(data))
        return data
    monkeypatch.setattr(zipfile.ZipExtFile, "read", counting_read)
    with pytest.raises(ValueError, match="declares 8388608 bytes"):
        load_model(path)
    assert reads == []      # the declared size alone refused it


def test_huge_config_member_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(archive, "CONFIG_MAX_BYTES", 1 << 16)
    path = str(tmp_path / "m.keras")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", b" " * (1 << 20))
        z.writestr("model.weights.h5", b"")
    with pytest.raises(ValueError, match="config.json is too large"):
        load_model(path)


def test_member_cap_is_exact(tmp_path):
    data = b"\0" * (3 << 20)
    path = str(tmp_path / "a.zip")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("x", data)
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("x")
        assert archive.read_member(z, "x", path, 3 << 20) == data
        with pytest.raises(ValueError, match="too large"):
            archive.read_member(z, "x", path, (3 << 20) - 1)
        assert info.file_size == len(data)


def test_normal_archive_still_loads(tmp_path):
    model = _model()
    model.compile("adam", "mse")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3)).astype(np.float32)
    model.fit(x, rng.standard_normal((8, 2)), epochs=1, verbose=0)
    path = str(tmp_path / "ok.keras")
    model.save(path)
    np.testing.assert_allclose(load_model(path).predict(x, verbose=0), model.predict(x, verbose=0))


# -- temporary files of killed saves ------------------------------------------------------------

def _dead_pid():
    """A process id no process has (a child that has exited and been reaped)."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_next_save_removes_leftovers_of_killed_saves(tmp_path):
    model = _model()
    target = tmp_path / "m.keras"
    dead = tmp_path / f".tmp-{_dead_pid()}-abcd1234m.keras"
    live = tmp_path / f".tmp-{os.getppid()}-abcd1234m.keras"      # a process that is running
    other = tmp_path / f".tmp-{_dead_pid()}-abcd1234n.keras"      # a save to another file
    unrelated = tmp_path / ".tmp-notes"
    for p in (dead, live, other, unrelated):
        p.write_bytes(b"partial")
    model.save(str(target))
    assert not dead.exists()
    assert live.exists() and other.exists() and unrelated.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")) == \
        sorted([live.name, other.name, unrelated.name])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_killed_weights_save_leaves_a_file_the_next_save_removes(tmp_path):
    import signal
    model = _model()
    path = str(tmp_path / "w.weights.h5")
    model.save_weights(path)
    pid = os.fork()
    if pid == 0:        # the child dies in the middle of writing its temporary file
        archive.atomic_write(path, lambda tmp: os.kill(os.getpid(), signal.SIGKILL))
        os._exit(1)
    os.waitpid(pid, 0)
    leftovers = [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]
    assert leftovers == [p for p in leftovers if p.startswith(f".tmp-{pid}-")] and len(leftovers) == 1
    model.save_weights(path)
    assert [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")] == []
    model.load_weights(path)
