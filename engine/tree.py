"""Nested structures (keras.tree): lists, tuples, namedtuples and dicts of leaves.

As in Keras 3: dict entries are visited in sorted key order (an OrderedDict in its own order), None
is a leaf, and `pack_sequence_as` rebuilds a structure from leaves in that order.
"""
import collections

__all__ = ["MAP_TO_NONE", "assert_same_paths", "assert_same_structure", "flatten", "flatten_with_path",
           "is_nested", "lists_to_tuples", "map_shape_structure", "map_structure", "map_structure_up_to",
           "pack_sequence_as", "traverse"]


class MAP_TO_NONE:  # noqa: N801 - Keras's name
    """Returned by a `traverse` function to replace a node with None (a None return means "recurse")."""


def _is_namedtuple(x):
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def is_nested(structure):
    """Whether structure is a list, tuple, namedtuple or dict (not a leaf).

    Args:
        structure: any object.
    """
    return isinstance(structure, (list, tuple, dict))


def _keys(d):
    return list(d) if isinstance(d, collections.OrderedDict) else sorted(d)


def _children(structure):
    """(key, child) pairs of a nested node in visiting order."""
    if isinstance(structure, dict):
        return [(k, structure[k]) for k in _keys(structure)]
    return list(enumerate(structure))


def _rebuild(structure, values):
    """A node like `structure` with children `values` (in visiting order)."""
    if isinstance(structure, dict):
        by_key = dict(zip(_keys(structure), values))
        return type(structure)((k, by_key[k]) for k in structure) if not isinstance(structure, collections.defaultdict) \
            else _defaultdict_like(structure, by_key)
    if _is_namedtuple(structure):
        return type(structure)(*values)
    return type(structure)(values)


def _defaultdict_like(structure, by_key):
    out = collections.defaultdict(structure.default_factory)
    for k in structure:
        out[k] = by_key[k]
    return out


def flatten(structure):
    """The leaves of a structure, in Keras's order.

    Args:
        structure: a nested structure (or a single leaf).

    Returns:
        A list of leaves.
    """
    if not is_nested(structure):
        return [structure]
    return [leaf for _, child in _children(structure) for leaf in flatten(child)]


def flatten_with_path(structure):
    """(path, leaf) pairs, a path being the tuple of keys and indices leading to the leaf.

    Args:
        structure: a nested structure.
    """
    def walk(node, path):
        if not is_nested(node):
            return [(path, node)]
        return [item for key, child in _children(node) for item in walk(child, path + (key,))]
    return walk(structure, ())


def pack_sequence_as(structure, flat_sequence):
    """A structure like `structure` holding the leaves of `flat_sequence` (in flatten's order).

    Args:
        structure: the template structure.
        flat_sequence: the leaves, as many as `structure` has.
    """
    flat_sequence = list(flat_sequence)
    needed = len(flatten(structure))
    if len(flat_sequence) != needed:
        raise ValueError(f"pack_sequence_as: the structure has {needed} leaves, got {len(flat_sequence)} values")
    leaves = iter(flat_sequence)

    def build(node):
        if not is_nested(node):
            return next(leaves)
        return _rebuild(node, [build(child) for _, child in _children(node)])
    return build(structure)


def assert_same_structure(a, b, check_types=None):
    """Raise ValueError unless a and b have the same nesting (and, with check_types, the same
    container types).

    Args:
        a, b: nested structures.
        check_types: also compare the types of the containers (Keras 3 ignores it by default).
    """
    def check(x, y, path):
        if is_nested(x) != is_nested(y):
            raise ValueError(f"The two structures don't have the same nesting at {path or 'the top'}: "
                             f"{type(x).__name__} vs {type(y).__name__}")
        if not is_nested(x):
            return
        if check_types and type(x) is not type(y):
            raise ValueError(f"The two structures have different types at {path or 'the top'}: "
                             f"{type(x).__name__} vs {type(y).__name__}")
        kx, ky = [k for k, _ in _children(x)], [k for k, _ in _children(y)]
        if kx != ky:
            raise ValueError(f"The two structures don't have the same keys or lengths at {path or 'the top'}: "
                             f"{kx} vs {ky}")
        for (k, cx), (_, cy) in zip(_children(x), _children(y)):
            check(cx, cy, path + (k,))
    check(a, b, ())


def assert_same_paths(a, b):
    """Raise ValueError unless a and b have the same set of leaf paths.

    Args:
        a, b: nested structures.
    """
    pa, pb = {p for p, _ in flatten_with_path(a)}, {p for p, _ in flatten_with_path(b)}
    if pa != pb:
        raise ValueError(f"The structures have different paths: only in the first {sorted(pa - pb)}, "
                         f"only in the second {sorted(pb - pa)}")


def map_structure(func, *structures, none_is_leaf=True):
    """func applied to the corresponding leaves of one or more same-shaped structures.

    Args:
        func: called with one leaf from each structure.
        *structures: structures of the same nesting.
        none_is_leaf: pass None leaves to func (False: they stay None).
    """
    if not structures:
        raise ValueError("map_structure: pass at least one structure")
    for other in structures[1:]:
        assert_same_structure(structures[0], other)
    flats = [flatten(s) for s in structures]
    out = []
    for leaves in zip(*flats):
        if not none_is_leaf and all(leaf is None for leaf in leaves):
            out.append(None)
        else:
            out.append(func(*leaves))
    return pack_sequence_as(structures[0], out)


def map_structure_up_to(shallow_structure, func, *structures):
    """func applied to the sub-structures of `structures` found at the leaves of `shallow_structure`.

    Args:
        shallow_structure: the structure whose leaves mark where func is applied.
        func: called with one sub-structure from each structure.
        *structures: structures at least as deep as shallow_structure.
    """
    def walk(shallow, nodes):
        if not is_nested(shallow):
            return func(*nodes)
        keys = [k for k, _ in _children(shallow)]
        children = []
        for key in keys:
            try:
                children.append(walk(shallow[key], [n[key] for n in nodes]))
            except (KeyError, IndexError, TypeError):
                raise ValueError(f"map_structure_up_to: a structure lacks {key!r} present in the shallow "
                                 "structure") from None
        return _rebuild(shallow, children)
    return walk(shallow_structure, list(structures))


def _is_shape(x):
    return isinstance(x, (tuple, list)) and all(d is None or isinstance(d, int) for d in x) and \
        not any(isinstance(d, bool) for d in x)


def map_shape_structure(func, structure):
    """func applied to each shape (a tuple or list of ints and None) in a structure of shapes.

    Args:
        func: called with each shape.
        structure: a nested structure whose leaves are shapes.
    """
    if _is_shape(structure) or not is_nested(structure):
        return func(structure)
    return _rebuild(structure, [map_shape_structure(func, child) for _, child in _children(structure)])


def lists_to_tuples(structure):
    """The structure with every list turned into a tuple.

    Args:
        structure: a nested structure.
    """
    if not is_nested(structure):
        return structure
    children = [lists_to_tuples(child) for _, child in _children(structure)]
    return tuple(children) if isinstance(structure, list) else _rebuild(structure, children)


def traverse(func, structure, top_down=True):
    """Rebuild a structure by applying func to its nodes.

    Top-down, func sees each node first: None means "keep it and visit its children", MAP_TO_NONE
    replaces it with None, anything else replaces the whole node. Bottom-up, children are
    rebuilt first and func then sees the rebuilt node, with the same meaning of its return.

    Args:
        func: called with each node (nested or leaf).
        structure: the structure.
        top_down: the order described above.
    """
    def replace(value, node):
        if value is MAP_TO_NONE:
            return None
        return node if value is None else value

    def walk(node):
        if top_down:
            value = func(node)
            if value is not None:
                return replace(value, node)
            if not is_nested(node):
                return node
            return _rebuild(node, [walk(child) for _, child in _children(node)])
        rebuilt = _rebuild(node, [walk(child) for _, child in _children(node)]) if is_nested(node) else node
        return replace(func(rebuilt), rebuilt)
    return walk(structure)
