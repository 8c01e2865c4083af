"""`model.save("m.keras")` / `load_model`: Keras 3's zip of config.json, metadata.json and
model.weights.h5.  Writes go to a temporary file in the same folder and are renamed over the
target, so an interrupted save never destroys the previous file.  Loading reads the members
from the zip in memory (nothing is extracted, nothing is executed) and checks the whole file
before any weight is assigned."""
import datetime
import io
import json
import os
import tempfile
import zipfile

from engine.distribution.training import is_chief
from engine.saving.serialization import deserialize_keras_object, serialize_keras_object, to_jsonable
from engine.saving import weights as weights_io

KERAS_VERSION = "3.15.1"  # the Keras release whose layout these files follow


def _file_mode(path):
    """The permissions the saved file should get: the old file's, else what open() would give."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


_TMP_PREFIX = ".tmp-"
# Leftovers without a process id (from before they carried one) count as abandoned at this age.
_STALE_SECONDS = 3600


def _tmp_prefix():
    """.tmp-<pid>-: the process id in the name tells a later save whether the writer still lives."""
    return f"{_TMP_PREFIX}{os.getpid()}-"


def _alive(pid):
    if pid == os.getpid():
        return True         # maybe another thread of this process saving the same path
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True         # exists (another user's) or cannot tell: leave it
    return True


def _abandoned(folder, entry, base):
    """True for a temporary file of a save to base whose process is gone (killed mid-save)."""
    middle = entry[len(_TMP_PREFIX):len(entry) - len(base)]
    pid, dash, rand = middle.partition("-")
    if dash and pid.isdigit() and len(rand) == 8:
        return not _alive(int(pid))
    if not dash and len(middle) == 8:   # the older name, .tmp-<8 random characters><name>
        import time
        try:
            return time.time() - os.path.getmtime(os.path.join(folder, entry)) > _STALE_SECONDS
        except OSError:
            return False
    return False


def remove_leftovers(path):
    """Delete the temporary files that killed saves to path left in its folder.

    Only names atomic_write makes are touched, and only when the process that made them is gone,
    so saves running side by side in other processes are safe."""
    folder = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for entry in names:
        if not (entry.startswith(_TMP_PREFIX) and entry.endswith(base) and len(entry) > len(_TMP_PREFIX) + len(base)):
            continue
        tmp = os.path.join(folder, entry)
        try:
            if os.path.isfile(tmp) and not os.path.islink(tmp) and _abandoned(folder, entry, base):
                os.remove(tmp)
        except OSError:
            pass    # removed by another process first, or a read-only folder: the save goes on


def atomic_write(path, write):
    """Call write(tmp_path), then rename tmp_path over path (same folder, so the rename is atomic).
    The data reaches the disk before the rename, so even a crash leaves the old file or the new one.
    Temporary files that killed saves to path left behind are removed first. In data-parallel
    training only rank 0 writes (every rank holds the same weights)."""
    if not is_chief():
        return
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    remove_leftovers(path)
    fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(), suffix=os.path.basename(path), dir=folder)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, _file_mode(path))  # mkstemp makes owner-only files
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _compile_config(model):
    if not getattr(model, "compiled", False):
        return None
    return {"optimizer": serialize_keras_object(model.optimizer), "loss": to_jsonable(model.loss),
            "loss_weights": to_jsonable(getattr(model, "_loss_weights_spec", None)),
            "metrics": to_jsonable(getattr(model, "_metrics_spec", None)),
            "weighted_metrics": to_jsonable(getattr(model, "_weighted_metrics_spec", None)),
            "run_eagerly": bool(getattr(model, "run_eagerly", False)),
            "steps_per_execution": int(getattr(model, "steps_per_execution", 1)),
            "jit_compile": bool(getattr(model, "jit_compile", True))}


def _build_config(model):
    shape = model.__dict__.get("_build_input_shape")
    if hasattr(model, "_nodes") or shape is None:
        return None  # functional and Sequential models rebuild from their layer graph
    if isinstance(shape, tuple) and shape:
        shape = (None,) + shape[1:]  # the batch size of the first call is not part of the model
    return {"input_shape": to_jsonable(shape)}


def model_config(model):
    """The config.json content: the model's config, plus how to build and compile it."""
    config = serialize_keras_object(model)
    build_config = _build_config(model)
    if build_config:
        config["build_config"] = build_config
    compile_config = _compile_config(model)
    if compile_config:
        config["compile_config"] = compile_config
    return config


def save_model(model, filepath, overwrite=True, zipped=None, **kwargs):
    """Saves a model to a Keras 3 `.keras` archive.

    The archive (a zip file) holds the model's config (`config.json`), its weights
    (`model.weights.h5`, including the optimizer's state if the model is compiled), metadata and any
    layer assets. The file is written atomically; the config is checked first, so a model that cannot
    be serialized raises before any file is touched.

    Args:
        model: the model to save.
        filepath: the path of the archive; it must end in `.keras`.
        overwrite: whether to replace an existing file at `filepath` (default `True`); if `False`
            and the file exists, a `ValueError` is raised.
        zipped: whether to write a zip archive (None or True; engine writes only zipped files).
    """
    if zipped is False:
        raise ValueError("save_model: zipped=False (an unzipped folder) is not supported; engine writes "
                         ".keras zip archives only, so leave zipped at None or True")
    if kwargs:
        raise ValueError(f"save_model: unsupported argument(s) {sorted(kwargs)}")
    filepath = os.fspath(filepath)
    if not filepath.endswith(".keras"):
        raise ValueError(f"save: the file name must end in .keras, got {filepath!r} "
                         "(use save_weights for .weights.h5 files)")
    if os.path.exists(filepath) and not overwrite:
        raise ValueError(f"save: {filepath} exists and overwrite=False")
    config = model_config(model)  # before any file is touched: a model that cannot be saved fails here
    from engine import __version__
    metadata = {"keras_version": KERAS_VERSION, "engine_version": __version__,
                "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}

    def write(tmp):
        weights = io.BytesIO()
        weights_io.save_weights_to_h5(model, weights, include_optimizer="compile_config" in config)
        with zipfile.ZipFile(tmp, "w") as z:
            z.writestr("metadata.json", json.dumps(metadata))
            z.writestr("config.json", json.dumps(config))
            z.writestr("model.weights.h5", weights.getvalue())
            _write_assets(model, z)
    atomic_write(filepath, write)


# -- assets: files layers keep beside their weights (a lookup layer's vocabulary.txt) --------------
def _write_assets(model, z):
    """Each layer with save_assets writes into a folder that becomes assets/<layer path>/ in the zip."""
    for path, layer in weights_io.layer_paths(model):
        if not hasattr(layer, "save_assets"):
            continue
        with tempfile.TemporaryDirectory() as folder:
            layer.save_assets(folder)
            for root, _, files in os.walk(folder):
                for name in sorted(files):
                    full = os.path.join(root, name)
                    z.write(full, f"assets/{path}/{os.path.relpath(full, folder)}".replace(os.sep, "/"))


def _load_assets(model, filepath):
    """Give each layer with load_assets the files saved under assets/<its path>/ (in a temporary
    folder; member names are checked so nothing lands outside it)."""
    layers = [(path, layer) for path, layer in weights_io.layer_paths(model) if hasattr(layer, "load_assets")]
    if not layers:
        return
    with _open_archive(filepath) as z:
        names = z.namelist()
        for path, layer in layers:
            prefix = f"assets/{path}/"
            members = [n for n in names if n.startswith(prefix) and not n.endswith("/")]
            with tempfile.TemporaryDirectory() as folder:
                for member in members:
                    rel = member[len(prefix):]
                    parts = rel.split("/")
                    if ".." in parts or rel.startswith("/"):
                        raise ValueError(f"{filepath}: asset {member} points outside its folder")
                    target = os.path.join(folder, *parts)
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    with open(target, "wb") as f:
                        f.write(read_member(z, member, filepath, CONFIG_MAX_BYTES))
                try:
                    layer.load_assets(folder)
                except FileNotFoundError as e:
                    raise ValueError(f"{filepath}: layer {layer.name!r} needs {prefix}{os.path.basename(e.filename)}, "
                                     f"which the file lacks") from None


# config.json is a few KB (Xception's is ~100 KB): a member that inflates past this is refused.
CONFIG_MAX_BYTES = 64 << 20
_CHUNK = 1 << 20


def read_member(z, member, filepath, cap):
    """The bytes of one member, refused (naming the file and the member) when it declares or
    inflates to more than cap bytes: a small zip can inflate to gigabytes."""
    try:
        info = z.getinfo(member)
    except KeyError:
        raise ValueError(f"{filepath} lacks {member}; it is not a complete .keras file "
                         f"(it holds: {', '.join(z.namelist()) or 'nothing'})") from None
    too_big = (f"{filepath}: {member} is too large for this model (it declares {info.file_size} bytes "
               f"uncompressed; at most {cap} are expected), so it is not read")
    if info.file_size > cap:
        raise ValueError(too_big)
    parts, total = [], 0
    try:
        with z.open(info) as stream:
            while True:             # streamed with the cap, in case the declared size lies
                chunk = stream.read(_CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                if total > cap:
                    raise ValueError(too_big)
                parts.append(chunk)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError) as e:
        raise ValueError(f"{filepath}: {member} is corrupt ({e})") from None
    return b"".join(parts)


def _open_archive(filepath):
    try:
        return zipfile.ZipFile(filepath)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ValueError(f"load_model: {filepath} is not a .keras file ({e})") from None


def read_config(filepath):
    """The config dict of a .keras file, with clear errors for anything malformed."""
    filepath = os.fspath(filepath)
    with _open_archive(filepath) as z:
        raw_config = read_member(z, "config.json", filepath, CONFIG_MAX_BYTES)
    try:
        config = json.loads(raw_config)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{filepath}: config.json is not valid JSON ({e})") from None
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"{filepath}: config.json does not describe a model (no class_name)")
    return config


def read_weights(filepath, model):
    """The bytes of a .keras file's model.weights.h5, capped by what this model can hold."""
    filepath = os.fspath(filepath)
    with _open_archive(filepath) as z:
        return read_member(z, "model.weights.h5", filepath, weights_io.weights_bytes_bound(model))


def _deserialize_compile_value(value, custom_objects):
    """Losses and metrics as compile() takes them: names stay names, configs become objects."""
    if isinstance(value, dict) and "class_name" in value:
        return deserialize_keras_object(value, custom_objects)
    if isinstance(value, list):
        return [_deserialize_compile_value(v, custom_objects) for v in value]
    if isinstance(value, dict):
        return {k: _deserialize_compile_value(v, custom_objects) for k, v in value.items()}
    return value


def _compile_from_config(model, compile_config, custom_objects):
    optimizer = deserialize_keras_object(compile_config["optimizer"], custom_objects)
    model.compile(optimizer=optimizer,
                  loss=_deserialize_compile_value(compile_config.get("loss"), custom_objects),
                  loss_weights=compile_config.get("loss_weights"),
                  metrics=_deserialize_compile_value(compile_config.get("metrics"), custom_objects),
                  weighted_metrics=_deserialize_compile_value(compile_config.get("weighted_metrics"),
                                                              custom_objects),
                  run_eagerly=bool(compile_config.get("run_eagerly", False)),
                  steps_per_execution=int(compile_config.get("steps_per_execution") or 1),
                  jit_compile=compile_config.get("jit_compile", "auto") if
                  compile_config.get("jit_compile", "auto") in ("auto", True, False) else "auto")


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """A model from a .keras file written by engine or Keras 3 (config, weights, compile settings and
    optimizer state).  Only engine's own and registered or given custom classes can be built;
    Lambda layers need safe_mode=False."""
    filepath = os.fspath(filepath)
    config = read_config(filepath)
    try:
        model = deserialize_keras_object(config, custom_objects, safe_mode)
        compile_config = config.get("compile_config")
        if compile and compile_config:
            _compile_from_config(model, compile_config, custom_objects)
    except (KeyError, IndexError, TypeError, AttributeError) as e:
        raise ValueError(f"{filepath}: config.json is malformed ({type(e).__name__}: {e})") from None
    weights = read_weights(filepath, model)
    weights_io.load_weights_from_h5(model, io.BytesIO(weights), include_optimizer=bool(compile and compile_config),
                                    name=f"{filepath} (model.weights.h5)")
    _load_assets(model, filepath)
    return model


def load_weights_from_archive(model, filepath, skip_mismatch=False):
    """model.load_weights("m.keras"): the archive's weights into this model (same checks as .weights.h5)."""
    weights = read_weights(filepath, model)
    weights_io.load_weights_from_h5(model, io.BytesIO(weights), skip_mismatch=skip_mismatch,
                                    name=f"{os.fspath(filepath)} (model.weights.h5)")
    _load_assets(model, filepath)


def save_weights(model, filepath, overwrite=True, max_shard_size=None, **kwargs):
    """Save a model's weights to a `.weights.h5` file (`model.save_weights`).

    Args:
        model: the model.
        filepath: the path; it must end in `.weights.h5`.
        overwrite: whether to replace an existing file.
        max_shard_size: must be None: engine writes one file, never shards.
    """
    if max_shard_size is not None:
        raise ValueError(f"save_weights: max_shard_size={max_shard_size!r} is not supported (engine writes a "
                         "single .weights.h5 file); leave it at None")
    if kwargs:
        raise ValueError(f"save_weights: unsupported argument(s) {sorted(kwargs)}")
    model.save_weights(filepath, overwrite=overwrite)


def load_weights(model, filepath, skip_mismatch=False, **kwargs):
    """Load weights from a `.weights.h5` or `.keras` file into a model (`model.load_weights`).

    Args:
        model: the model.
        filepath: the file.
        skip_mismatch: skip layers whose weights do not match instead of raising.
    """
    if kwargs:
        raise ValueError(f"load_weights: unsupported argument(s) {sorted(kwargs)}")
    model.load_weights(filepath, skip_mismatch=skip_mismatch)
