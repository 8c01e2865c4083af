"""engine/_malloc.py: the process-wide allocator settings are applied by the first training call
(fit, train_on_batch, a GradientTape's gradient), not by importing engine or predicting."""
import os
import subprocess
import sys

import pytest

_SCRIPT = """
import numpy as np
from engine import Input, layers, _malloc
from engine.models import Model
print(_malloc.TUNED)
inputs = Input(shape=(3,))
model = Model(inputs, layers.Dense(2)(inputs))
model.predict(np.ones((2, 3), np.float32), verbose=0)
print(_malloc.TUNED)
model.compile(optimizer="sgd", loss="mse")
model.train_on_batch(np.ones((2, 3), np.float32), np.ones((2, 2), np.float32))
print(_malloc.TUNED is not None)
"""


def _run(env_extra):
    env = dict(os.environ, **env_extra)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split()


def test_import_and_predict_leave_the_allocator_alone_and_training_tunes_it():
    assert _run({}) == ["None", "None", "True"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the settings are glibc's")
def test_a_custom_training_loop_tunes_it_at_its_first_gradient():
    script = """
import numpy as np
import engine
from engine import _malloc, ops
x = engine.Variable(np.ones((3,), np.float32))
print(_malloc.TUNED)
with engine.GradientTape() as tape:
    y = ops.sum(x * x)
tape.gradient(y, x)
print(_malloc.TUNED is not None)
"""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["None", "True"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the settings are glibc's")
def test_engine_malloc_tuning_0_turns_it_off():
    from engine import _malloc
    old = os.environ.get("ENGINE_MALLOC_TUNING")
    os.environ["ENGINE_MALLOC_TUNING"] = "0"
    try:
        assert _malloc.tune() is False
    finally:
        if old is None:
            del os.environ["ENGINE_MALLOC_TUNING"]
        else:
            os.environ["ENGINE_MALLOC_TUNING"] = old
