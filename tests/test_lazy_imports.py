"""`import engine` stays cheap: the rarely used families load on first attribute access (PEP 562),
and every name still works at its Keras path, in `dir()` and through `from ... import`."""
import importlib
import inspect
import os
import subprocess
import sys

import pytest

import engine

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Modules `import engine` must not import (each is loaded by the first use of one of its names).
LAZY_MODULES = ["engine.layers.preprocessing", "engine.layers.attention", "engine.layers.recurrent",
                "engine.layers.convolutional", "engine.datasets", "engine.applications", "engine.preprocessing",
                "engine.utils.dataset_utils", "engine.utils.image_utils", "engine.utils.timeseries_dataset",
                "engine.ops.image", "engine.ops.linalg", "engine.ops.spectral", "engine.ops.ctc",
                "engine.ops.convolution", "engine.ops.core", "engine.metrics.confusion", "engine.metrics.iou",
                "engine.optimizers.adaptive", "engine.optimizers.wrappers", "engine.saving.archive",
                "engine.saving.serialization"]


def _run(code):
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_import_engine_does_not_import_the_rare_families_and_they_load_on_access():
    out = _run(f"""
import sys
import engine
print(sorted(m for m in {LAZY_MODULES!r} if m in sys.modules))
from engine import layers
from engine.layers import RandomFlip, TextVectorization
print(RandomFlip.__module__, TextVectorization.__name__, layers.LSTM.__name__, layers.Conv2D.__name__)
print(engine.ops.fft.__name__, engine.ops.linalg.qr.__name__, engine.ops.image.resize.__name__,
      engine.ops.nn.ctc_loss.__name__, engine.ops.numpy.slogdet.__name__)
print(engine.datasets.mnist.__name__, engine.applications.Xception.__name__, engine.utils.pad_sequences.__name__,
      engine.preprocessing.sequence.pad_sequences.__name__, engine.metrics.AUC.__name__,
      engine.optimizers.Nadam.__name__, engine.saving.load_model.__name__)
""")
    lines = out.strip().splitlines()
    assert lines[0] == "[]"
    assert lines[1] == "engine.layers.preprocessing.image_augmentation TextVectorization LSTM Conv2D"
    assert lines[2] == "fft qr resize ctc_loss slogdet"
    assert lines[3] == "engine.datasets.mnist Xception pad_sequences pad_sequences AUC Nadam load_model"


def test_dir_lists_lazy_names_before_they_load():
    out = _run("""
import engine
from engine import layers
names = set(dir(layers))
print("RandomFlip" in names, "MultiHeadAttention" in names, "Dense" in names, "fft" in dir(engine.ops),
      "datasets" in dir(engine), "AUC" in dir(engine.metrics), "Adafactor" in dir(engine.optimizers))
""")
    assert out.split() == ["True"] * 7


def test_unknown_names_raise_attribute_errors():
    for module in (engine, engine.ops, engine.layers, engine.metrics, engine.optimizers, engine.utils, engine.saving):
        with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
            getattr(module, "no_such_name")


def _tables():
    for package in ("engine", "engine.ops", "engine.ops.nn", "engine.layers", "engine.layers.preprocessing",
                    "engine.metrics", "engine.optimizers", "engine.utils", "engine.saving"):
        module = importlib.import_module(package)
        yield module, module._LAZY


def test_every_lazy_entry_resolves_to_what_its_module_defines():
    for module, table in _tables():
        for name, target in table.items():
            value = getattr(module, name)
            source, _, attribute = target.partition(":")
            expected = importlib.import_module(source)
            if attribute:
                expected = getattr(expected, attribute)
            assert value is expected, f"{module.__name__}.{name}"


def test_lazy_layer_tables_list_every_layer_their_modules_define():
    """A new layer class in a lazily loaded module must be listed (else engine.layers.X and
    loading it from a config by name would miss it); shared base classes are exempt."""
    from engine.layers import _LAZY
    from engine.layers.preprocessing import _LAZY as preprocessing
    modules = {target.split(":")[0] for target in list(_LAZY.values()) + list(preprocessing.values())
               if ":" in target}
    for name in modules:
        module = importlib.import_module(name)
        classes = [obj for attr, obj in vars(module).items() if inspect.isclass(obj) and obj.__module__ == name
                   and issubclass(obj, engine.layers.Layer) and not attr.startswith("_")]
        for cls in classes:
            if not any(other is not cls and issubclass(other, cls) for other in classes):
                exported = getattr(cls, "_keras_api_name", cls.__name__)   # Keras's public name for it
                assert exported in _LAZY, f"{name}.{cls.__name__} is not in engine.layers' lazy table"
                assert getattr(engine.layers, exported) is cls


def test_star_imports_bind_the_lazy_names_but_not_submodules():
    out = _run("""
import numpy
from engine.layers import *
from engine.ops import *
print(RandomFlip.__name__, Dense.__name__, concatenate.__name__, fft.__name__, conv.__name__, numpy.__name__)
""")
    assert out.split() == ["RandomFlip", "Dense", "concatenate", "fft", "conv", "numpy"]
