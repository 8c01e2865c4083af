"""The ops namespaces hold documented functions, and the family namespaces (numpy, nn, linalg)
name the same objects as engine.ops (no Keras needed: the signature comparison with Keras is in
test_keras_ops_parity.py)."""
import inspect

import numpy as np
import pytest

import engine.ops as ops
from engine.tensor import Tensor

NAMESPACES = {"ops": ops, "ops.numpy": ops.numpy, "ops.nn": ops.nn, "ops.linalg": ops.linalg, "ops.image": ops.image}


def _public_functions(mod):
    return {n: f for n, f in vars(mod).items()
            if not n.startswith("_") and inspect.isfunction(f) and f.__module__.startswith("engine.ops")}


@pytest.mark.parametrize("path", sorted(NAMESPACES))
def test_every_public_op_has_a_docstring(path):
    undocumented = sorted(n for n, f in _public_functions(NAMESPACES[path]).items() if not (f.__doc__ or "").strip())
    assert not undocumented, f"engine.{path} functions without a docstring: {undocumented}"


@pytest.mark.parametrize("family", ["numpy", "nn", "linalg"])
def test_family_names_are_the_top_level_ops(family):
    mod = NAMESPACES["ops." + family]
    for name, fn in _public_functions(mod).items():
        if hasattr(ops, name):
            assert getattr(ops, name) is fn, f"engine.ops.{family}.{name} is not engine.ops.{name}"


@pytest.mark.parametrize("name,args", [
    ("arange", (3,)), ("cumsum", (np.ones(3),)), ("top_k", (np.ones((2, 3)), 1)), ("norm", (np.ones(3),)),
    ("einsum", ("i,i->", np.ones(3), np.ones(3))), ("split", (np.ones(4), 2)), ("segment_sum", (np.ones(3), np.array([0, 0, 1]))),
    ("moments", (np.ones((2, 3)), 0)), ("nonzero", (np.ones(2),)), ("unique", (np.array([1, 1, 2]),)),
])
def test_ops_return_tensors(name, args):
    out = getattr(ops, name)(*args)
    for leaf in (out if isinstance(out, (list, tuple)) else [out]):
        assert isinstance(leaf, Tensor), f"engine.ops.{name} returned {type(leaf).__name__}"
