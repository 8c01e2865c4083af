"""`model.save("m.keras")` / `load_model`: Keras 3's zip of config.json, metadata.json and
model.weights.h5.  Writes go to a temporary file in the same folder and are renamed over the
target, so an interrupted save never destroys the previous file."""
import datetime
import json
import os
import tempfile
import zipfile

from engine.saving.serialization import deserialize_keras_object, serialize_keras_object, to_jsonable
from engine.saving import weights as weights_io

_MEMBERS = ("config.json", "metadata.json", "model.weights.h5")


def atomic_write(path, write):
    """Call write(tmp_path), then rename tmp_path over path (same folder, so the rename is atomic)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=folder)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _compile_config(model):
    if not getattr(model, "compiled", False):
        return None
    loss = model.loss
    if hasattr(loss, "get_config") and not isinstance(loss, (str, list, dict)):
        loss = serialize_keras_object(loss)
    return {"optimizer": serialize_keras_object(model.optimizer), "loss": to_jsonable(loss),
            "loss_weights": to_jsonable(getattr(model, "_loss_weights_spec", None)),
            "metrics": to_jsonable(getattr(model, "_metrics_spec", None))}


def save_model(model, filepath, overwrite=True):
    if not str(filepath).endswith(".keras"):
        raise ValueError(f"save: the file name must end in .keras, got {filepath!r} "
                         "(use save_weights for .weights.h5 files)")
    if os.path.exists(filepath) and not overwrite:
        raise ValueError(f"save: {filepath} exists and overwrite=False")
    config = serialize_keras_object(model)
    compile_config = _compile_config(model)
    if compile_config:
        config["compile_config"] = compile_config
    from engine import __version__
    metadata = {"keras_version": "3.15.1", "engine_version": __version__,
                "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}

    def write(tmp):
        with tempfile.TemporaryDirectory() as work:
            weights_path = os.path.join(work, "model.weights.h5")
            weights_io.save_weights_to_h5(model, weights_path, include_optimizer=compile_config is not None)
            with zipfile.ZipFile(tmp, "w") as z:
                z.writestr("metadata.json", json.dumps(metadata))
                z.writestr("config.json", json.dumps(config))
                z.write(weights_path, "model.weights.h5")
    atomic_write(filepath, write)


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    try:
        z = zipfile.ZipFile(filepath)
    except (zipfile.BadZipFile, OSError) as e:
        raise ValueError(f"load_model: {filepath} is not a .keras file ({e})") from None
    with z:
        missing = [m for m in ("config.json", "model.weights.h5") if m not in z.namelist()]
        if missing:
            raise ValueError(f"load_model: {filepath} lacks {', '.join(missing)}; it is not a complete .keras file")
        try:
            config = json.loads(z.read("config.json"))
        except (ValueError, zipfile.BadZipFile) as e:
            raise ValueError(f"load_model: the config in {filepath} is unreadable ({e})") from None
        model = deserialize_keras_object(config, custom_objects, safe_mode)
        compile_config = config.get("compile_config")
        if compile and compile_config:
            optimizer = deserialize_keras_object(compile_config["optimizer"], custom_objects, safe_mode)
            loss = compile_config.get("loss")
            if isinstance(loss, dict) and "class_name" in loss:
                loss = deserialize_keras_object(loss, custom_objects, safe_mode)
            model.compile(optimizer=optimizer, loss=loss, loss_weights=compile_config.get("loss_weights"),
                          metrics=compile_config.get("metrics"))
        with tempfile.TemporaryDirectory() as work:
            try:
                z.extract("model.weights.h5", work)
            except zipfile.BadZipFile as e:
                raise ValueError(f"load_model: the weights in {filepath} are corrupt ({e})") from None
            weights_io.load_weights_from_h5(model, os.path.join(work, "model.weights.h5"),
                                            include_optimizer=bool(compile and compile_config))
    return model
