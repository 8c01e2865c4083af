"""Files from the web into Keras's cache folder: `get_file` (keras.utils.get_file).

The cache layout is Keras's own (`$KERAS_HOME/<cache_subdir>/<fname>`, `~/.keras` without
KERAS_HOME, `/tmp/.keras` when that is not writable), so a file Keras downloaded is found here
and the other way round. Downloads use the standard library only; archives are unpacked with
every member checked to land inside the extraction folder (no absolute paths, no `..`, no links
pointing out).
"""
import hashlib
import os
import shutil
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile

from engine.utils.io_utils import print_msg
from engine.utils.traceback_utils import warn_user

_CHUNK = 1 << 16


def keras_home():
    """The folder Keras keeps its files in: $KERAS_HOME, else ~/.keras (or /tmp/.keras when the
    home folder is not writable)."""
    if "KERAS_HOME" in os.environ:
        return os.environ["KERAS_HOME"]
    base = os.path.expanduser("~")
    return os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")


def _writable(folder):
    """A folder that exists and is writable, or that can be made (its nearest existing parent is writable)."""
    while not os.path.exists(folder):
        parent = os.path.dirname(folder)
        if parent == folder:
            return False
        folder = parent
    return os.access(folder, os.W_OK)


def _hasher(algorithm, file_hash=None):
    # "auto" means sha256 for a 64-hex-digit hash and md5 otherwise, as Keras decides.
    if algorithm == "sha256" or (algorithm == "auto" and file_hash is not None and len(file_hash) == 64):
        return hashlib.sha256()
    if algorithm in ("md5", "auto"):
        return hashlib.md5()
    raise ValueError(f"get_file: hash_algorithm must be 'auto', 'sha256' or 'md5', got {algorithm!r}")


def _file_hash(path, algorithm, file_hash=None):
    hasher = _hasher(algorithm, file_hash)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            hasher.update(block)
    return hasher.hexdigest()


def _matches(path, file_hash, algorithm):
    return _file_hash(path, algorithm, file_hash) == str(file_hash)


def _download(origin, target):
    """Fetch `origin` into `target` (through a temporary file, so an interrupted download never
    leaves a partial file under the final name), with a byte-count progress line."""
    from engine.utils.progbar import Progbar
    print_msg(f"Downloading data from {origin}")
    partial = target + ".part"
    try:
        with urllib.request.urlopen(origin) as response, open(partial, "wb") as out:
            length = response.headers.get("Content-Length")
            bar = Progbar(int(length) if length and length.isdigit() else None)
            done = 0
            for block in iter(lambda: response.read(_CHUNK), b""):
                out.write(block)
                done += len(block)
                bar.update(done)
        os.replace(partial, target)
    except urllib.error.HTTPError as e:
        raise OSError(f"get_file: fetching {origin} failed: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise OSError(f"get_file: fetching {origin} failed: {e.reason}. Check the URL and the network, or "
                      f"place the file at {target} yourself") from None
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def _inside(base, name):
    base = os.path.realpath(base)
    path = os.path.realpath(os.path.join(base, name))
    return os.path.commonpath([base, path]) == base


def _safe_members(archive, base):
    """The members of an open tar or zip that stay inside `base`; others are skipped with a warning."""
    if isinstance(archive, zipfile.ZipFile):
        members = [(m, m.filename) for m in archive.infolist()]
    else:
        members = [(m, m.name) for m in archive.getmembers()]
    for member, name in members:
        ok = _inside(base, name)
        if ok and isinstance(member, tarfile.TarInfo):
            if member.issym():
                ok = _inside(base, os.path.join(os.path.dirname(name), member.linkname))
            elif member.islnk():
                ok = _inside(base, member.linkname)
            ok = ok and not (member.ischr() or member.isblk() or member.isfifo())
        if ok:
            yield member
        else:
            warn_user(f"get_file: skipping archive member {name!r}, which would land outside {base}")


def _extract(path, folder, archive_format):
    """Unpack `path` into `folder`; False when it is none of the formats asked for."""
    if archive_format is None:
        return False
    formats = ["tar", "zip"] if archive_format == "auto" else \
        [archive_format] if isinstance(archive_format, str) else list(archive_format)
    for kind in formats:
        if kind not in ("tar", "zip"):
            raise ValueError(f"get_file: archive_format must be 'auto', 'tar', 'zip', a list of those or None; "
                             f"got {archive_format!r}")
        is_kind = tarfile.is_tarfile if kind == "tar" else zipfile.is_zipfile
        if not is_kind(path):
            continue
        opener = tarfile.open if kind == "tar" else zipfile.ZipFile
        try:
            with opener(path) as archive:
                members = list(_safe_members(archive, folder))
                if kind == "tar" and sys.version_info >= (3, 11, 4):
                    archive.extractall(folder, members=members, filter="data")
                else:
                    archive.extractall(folder, members=members)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return True
    return False


def get_file(fname=None, origin=None, untar=False, md5_hash=None, file_hash=None, cache_subdir="datasets",
             hash_algorithm="auto", extract=False, archive_format="auto", cache_dir=None, force_download=False):
    """Download a file from a URL into Keras's cache folder unless it is there already.

    Args:
        fname: the file's name in the cache (default: the last part of `origin`'s path); with
            `extract`, a name without an extension names the extraction folder.
        origin: the file's URL (http, https, ftp or file).
        untar: deprecated: `extract=True` with `archive_format="tar"`.
        md5_hash: deprecated: `file_hash` with `hash_algorithm="md5"`.
        file_hash: the expected sha256 or md5 hex digest: a cached file that does not match is
            downloaded again, and a download that does not match is an error.
        cache_subdir: the folder under the cache folder (an absolute path is used as it is).
        hash_algorithm: "auto" (sha256 for a 64-digit hash, else md5), "sha256" or "md5".
        extract: unpack the file (tar, tar.gz, tar.bz2 or zip) and return the folder.
        archive_format: "auto" (tar then zip), "tar", "zip", a list of them, or None.
        cache_dir: the cache folder (default: $KERAS_HOME, else ~/.keras).
        force_download: download even when the file is cached.

    Returns:
        The path of the file, or of the extraction folder with `extract`.
    """
    if origin is None:
        raise ValueError("get_file: give the URL of the file to download as `origin`")
    if md5_hash is not None and file_hash is None:
        file_hash, hash_algorithm = md5_hash, "md5"
    _hasher(hash_algorithm, file_hash)          # an unknown algorithm fails before any download
    base = os.path.expanduser(cache_dir if cache_dir is not None else keras_home())
    if not _writable(base):                     # where Keras falls back to
        base = os.path.join("/tmp", ".keras")
    folder = os.path.join(base, cache_subdir)
    os.makedirs(folder, exist_ok=True)

    given = os.fspath(fname) if fname is not None else None
    name = given or os.path.basename(urllib.parse.urlsplit(origin).path)
    if not name:
        raise ValueError(f"get_file: no file name in the URL {origin!r}; pass `fname`")
    if os.sep in name:
        raise ValueError(f"get_file: fname must be a file name, not a path (got {name!r}); put the folder in "
                         "`cache_dir` or `cache_subdir`")
    unpack = extract or untar
    if unpack and given and "." in name:
        target = os.path.join(folder, name)
        extraction = os.path.join(folder, name[:name.index(".")] + "_extracted")
    elif unpack:
        target = os.path.join(folder, name + "_archive")
        extraction = os.path.join(folder, name)
    else:
        target, extraction = os.path.join(folder, name), None

    fetch = force_download or not os.path.exists(target)
    if not fetch and file_hash is not None and not _matches(target, file_hash, hash_algorithm):
        print_msg(f"A local file was found, but its {hash_algorithm} hash does not match {file_hash}: "
                  "downloading it again.")
        fetch = True
    if fetch:
        _download(origin, target)
        if file_hash is not None and not _matches(target, file_hash, hash_algorithm):
            os.remove(target)
            raise ValueError(f"get_file: the file downloaded from {origin} is incomplete or corrupted: its "
                             f"{hash_algorithm} hash does not match {file_hash}")
    if not unpack:
        return target
    if not _extract(target, extraction, "tar" if untar else archive_format):
        warn_user(f"get_file: could not extract {target}: it is not a {archive_format} archive")
    return extraction
