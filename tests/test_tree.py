"""engine.tree against Keras 3's keras.tree on the same structures."""
import collections
import os

import pytest

from engine import tree

Point = collections.namedtuple("Point", ["x", "y"])
S = {"b": 1, "a": [2, (3, None)], "c": Point(4, {"z": 5, "y": 6})}


def test_flatten_pack_and_paths():
    assert tree.flatten(S) == [2, 3, None, 1, 4, 6, 5]
    assert tree.flatten_with_path({"b": 1, "a": [2]}) == [(("a", 0), 2), (("b",), 1)]
    assert tree.flatten(collections.OrderedDict([("b", 1), ("a", 2)])) == [1, 2]
    packed = tree.pack_sequence_as(S, list(range(7)))
    assert packed == {"b": 3, "a": [0, (1, 2)], "c": Point(4, {"z": 6, "y": 5})}
    assert type(packed["c"]) is Point
    assert tree.is_nested([1]) and not tree.is_nested(None) and not tree.is_nested("ab")
    with pytest.raises(ValueError):
        tree.pack_sequence_as(S, [1, 2])


def test_maps_and_traversal():
    assert tree.map_structure(lambda a, b: (a or 0) + b, [1, None], [10, 20]) == [11, 20]
    assert tree.map_structure(lambda a: a * 2, [1, None], none_is_leaf=False) == [2, None]
    assert tree.map_structure_up_to([1, [2]], lambda a, b: (a, b), [1, [2]], [[5, 6], [7]]) == [(1, [5, 6]), [(2, 7)]]
    assert tree.map_shape_structure(lambda s: len(s), {"a": (1, 2), "b": [(3,), (None, 4)]}) == {"a": 2, "b": [1, 2]}
    assert tree.lists_to_tuples([1, [2, {"a": [3]}]]) == (1, (2, {"a": (3,)}))
    assert tree.traverse(lambda x: 0 if isinstance(x, list) and len(x) == 2 else None, [1, [2, 3]]) == 0
    assert tree.traverse(lambda x: tree.MAP_TO_NONE if x == 2 else None, [1, [2, 3]], top_down=False) == [1, [None, 3]]
    tree.assert_same_structure([1, {"a": 2}], [3, {"a": 4}])
    with pytest.raises(ValueError):
        tree.assert_same_structure([1, 2], [1, [2]])
    with pytest.raises(ValueError):
        tree.assert_same_paths({"a": 1}, {"b": 1})


def test_matches_keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    for s in (S, [1, [2, (3,)]], {"k": {"b": 1, "a": 2}}, (None, [None])):
        assert tree.flatten(s) == keras.tree.flatten(s)
        assert tree.flatten_with_path(s) == keras.tree.flatten_with_path(s)
        n = len(tree.flatten(s))
        assert tree.pack_sequence_as(s, list(range(n))) == keras.tree.pack_sequence_as(s, list(range(n)))
        assert tree.lists_to_tuples(s) == keras.tree.lists_to_tuples(s)
