"""utils.get_file: downloads (from file:// URLs and a loopback HTTP server), Keras's cache layout,
hash checks, extraction of tar and zip archives with unsafe members refused."""
import hashlib
import http.server
import io
import os
import tarfile
import threading
import zipfile

import pytest

from engine import utils


@pytest.fixture
def origin(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    path = src / "data.txt"
    path.write_bytes(b"hello engine\n" * 100)
    return path


def test_downloads_into_keras_cache_layout_and_reuses_the_cache(origin, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    got = utils.get_file(origin=origin.as_uri())
    assert got == str(tmp_path / "home" / "datasets" / "data.txt")
    assert open(got, "rb").read() == origin.read_bytes()
    origin.write_bytes(b"changed")                     # cached: not fetched again
    assert open(utils.get_file(origin=origin.as_uri()), "rb").read().startswith(b"hello")
    assert open(utils.get_file(origin=origin.as_uri(), force_download=True), "rb").read() == b"changed"
    named = utils.get_file("renamed.txt", origin.as_uri(), cache_dir=str(tmp_path / "c"), cache_subdir="sub")
    assert named == str(tmp_path / "c" / "sub" / "renamed.txt")


def test_hashes_are_checked(origin, tmp_path):
    sha = hashlib.sha256(origin.read_bytes()).hexdigest()
    md5 = hashlib.md5(origin.read_bytes()).hexdigest()
    cache = str(tmp_path / "cache")
    assert os.path.exists(utils.get_file(origin=origin.as_uri(), file_hash=sha, cache_dir=cache))
    assert os.path.exists(utils.get_file("b.txt", origin.as_uri(), md5_hash=md5, cache_dir=cache))
    with pytest.raises(ValueError, match="corrupted"):
        utils.get_file("c.txt", origin.as_uri(), file_hash="0" * 64, cache_dir=cache)
    assert not os.path.exists(os.path.join(cache, "datasets", "c.txt"))
    # A cached file with the wrong contents is downloaded again.
    stale = os.path.join(cache, "datasets", "d.txt")
    open(stale, "wb").write(b"stale")
    utils.get_file("d.txt", origin.as_uri(), file_hash=sha, cache_dir=cache)
    assert open(stale, "rb").read() == origin.read_bytes()


def test_extracts_tar_and_zip_and_skips_members_outside(tmp_path):
    tar_path = tmp_path / "pack.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tar:
        for name, data in (("pack/a.txt", b"a"), ("../evil.txt", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    cache = str(tmp_path / "cache")
    with pytest.warns(UserWarning, match="outside"):
        folder = utils.get_file(origin=tar_path.as_uri(), extract=True, cache_dir=cache)
    assert folder == os.path.join(cache, "datasets", "pack.tar.gz")
    assert open(os.path.join(folder, "pack", "a.txt")).read() == "a"
    assert not os.path.exists(os.path.join(cache, "datasets", "evil.txt"))
    zip_path = tmp_path / "z.zip"
    with zipfile.ZipFile(zip_path, "w") as z:
        z.writestr("inner/b.txt", "b")
    folder = utils.get_file("images.zip", zip_path.as_uri(), extract=True, cache_dir=cache)
    assert folder == os.path.join(cache, "datasets", "images_extracted")
    assert open(os.path.join(folder, "inner", "b.txt")).read() == "b"


def test_http_download_and_errors(origin, tmp_path):
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(origin.parent), **k)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.RequestHandlerClass.log_message = lambda *a: None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/data.txt"
        got = utils.get_file(origin=url, cache_dir=str(tmp_path / "h"))
        assert open(got, "rb").read() == origin.read_bytes()
        with pytest.raises(OSError, match="HTTP 404"):
            utils.get_file(origin=url.replace("data", "missing"), cache_dir=str(tmp_path / "h"))
        assert not os.path.exists(tmp_path / "h" / "datasets" / "missing.txt")
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(ValueError, match="origin"):
        utils.get_file("x.txt")
    with pytest.raises(ValueError, match="not a path"):
        utils.get_file("a/b.txt", origin.as_uri())
    with pytest.raises(ValueError, match="hash_algorithm"):
        utils.get_file(origin=origin.as_uri(), file_hash="ab", hash_algorithm="sha1")
