"""Model.get_layer as in Keras 3: Python indexing (negative indices count from the end), a ValueError
for an index past the end, an IndexError for one before the start, name and index not both."""
import os

import numpy as np
import pytest

import engine


def two_dense(lib):
    inp = lib.Input((3,))
    return lib.Model(inp, lib.layers.Dense(2, name="d2")(lib.layers.Dense(4, name="d1")(inp)))


def test_negative_indices_count_from_the_end():
    model = two_dense(engine)
    assert [model.get_layer(index=i).name for i in (-1, -2)] == ["d2", "d1"]
    assert model.get_layer(index=-3) is model.layers[0]
    seq = engine.Sequential([engine.Input((3,)), engine.layers.Dense(2, name="a"), engine.layers.Dense(1, name="b")])
    assert seq.get_layer(index=-1).name == "b" and seq.get_layer(index=0).name == "a"


def test_errors():
    model = two_dense(engine)
    with pytest.raises(ValueError, match="index 3.*only 3 layers"):
        model.get_layer(index=3)
    with pytest.raises(IndexError, match="-4"):
        model.get_layer(index=-4)
    with pytest.raises(ValueError, match="not both"):
        model.get_layer(name="d1", index=0)
    with pytest.raises(ValueError, match="either a layer name or a layer index"):
        model.get_layer()
    with pytest.raises(ValueError, match="No such layer: zz"):
        model.get_layer("zz")
    assert model.get_layer("d1") is model.layers[1]


def test_matches_keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    ours, theirs = two_dense(engine), two_dense(keras)
    for kwargs in ({"index": 0}, {"index": 2}, {"index": -1}, {"index": -3}, {"name": "d1"}, {"index": 3},
                   {"index": -4}, {}, {"name": "zz"}, {"name": "d1", "index": 0}, {"index": np.int64(-2)}):
        outcomes = []
        for model in (ours, theirs):
            try:
                outcomes.append(model.layers.index(model.get_layer(**kwargs)))
            except Exception as e:  # noqa: BLE001 - the exception types are compared
                outcomes.append(type(e))
        assert outcomes[0] == outcomes[1], kwargs
