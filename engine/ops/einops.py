"""keras.ops.rearrange: einops-style axis rearrangement ("b (h w) c -> b h w c"), a reshape,
transpose, reshape of recorded ops."""
import re

import numpy as np

from engine.ops import math as m
from engine.ops.arrays import operand_tensor

_TOKEN = re.compile(r"\(|\)|\.\.\.|[A-Za-z_][A-Za-z0-9_]*|1|\S")


def _parse(side, pattern):
    """A side of the pattern as a list of groups, each a list of axis names ('...' included;
    '1' or '()' is an empty group)."""
    groups, current = [], None
    for tok in _TOKEN.findall(side):
        if tok == "(":
            if current is not None:
                raise ValueError(f"rearrange: nested parentheses in {pattern!r}")
            current = []
        elif tok == ")":
            if current is None:
                raise ValueError(f"rearrange: unbalanced parentheses in {pattern!r}")
            groups.append(current)
            current = None
        elif tok == "1":
            if current is None:          # a unit axis; inside a group it multiplies by 1
                groups.append([])
        elif tok == "..." or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", tok):
            if current is not None:
                current.append(tok)
            else:
                groups.append([tok])
        else:
            raise ValueError(f"rearrange: unexpected {tok!r} in {pattern!r}")
    if current is not None:
        raise ValueError(f"rearrange: unbalanced parentheses in {pattern!r}")
    return groups


def rearrange(tensor, pattern, **axes_lengths):
    """Reorder, split and merge axes as an einops pattern says.

    Args:
        tensor: input tensor.
        pattern: "left -> right": axis names, parenthesised groups (merged axes), "..." for the
            axes not named, "1" for a unit axis, e.g. "b (h w) c -> b h w c".
        **axes_lengths: sizes of axes a group on the left splits into (all but one needed).
    """
    x = operand_tensor(tensor)
    if pattern.count("->") != 1:
        raise ValueError(f"rearrange: the pattern needs one '->', got {pattern!r}")
    left_s, right_s = pattern.split("->")
    left, right = _parse(left_s, pattern), _parse(right_s, pattern)
    names_l = [n for g in left for n in g]
    names_r = [n for g in right for n in g]
    for side, names in (("left", names_l), ("right", names_r)):
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"rearrange: axes {sorted(dup)} repeat on the {side} of {pattern!r}")
    if set(names_l) != set(names_r):
        raise ValueError(f"rearrange: both sides of {pattern!r} must name the same axes; differing: "
                         f"{sorted(set(names_l) ^ set(names_r))}")
    ellipsis_rank = x.ndim - (len(left) - 1) if any("..." in g for g in left) else 0
    if ellipsis_rank < 0 or (not ellipsis_rank and "..." not in names_l and len(left) != x.ndim):
        raise ValueError(f"rearrange: the left of {pattern!r} has {len(left)} axes, the tensor has shape {x.shape}")
    sizes = {}
    atoms = []          # the left's axes one by one ('...' expanded)
    dim = 0
    for g in left:
        if g == ["..."]:
            for k in range(ellipsis_rank):
                name = f"...{k}"
                sizes[name] = x.shape[dim + k]
                atoms.append(name)
            dim += ellipsis_rank
            continue
        if "..." in g:
            raise ValueError(f"rearrange: '...' cannot be inside a group on the left of {pattern!r}")
        n = x.shape[dim]
        known = [axes_lengths[a] for a in g if a in axes_lengths]
        unknown = [a for a in g if a not in axes_lengths]
        prod = int(np.prod(known)) if known else 1
        if len(unknown) > 1:
            raise ValueError(f"rearrange: give the sizes of all but one of {g} in {pattern!r}")
        if unknown:
            if prod == 0 or n % prod:
                raise ValueError(f"rearrange: axis of size {n} cannot be split into {g} with {axes_lengths}")
            sizes[unknown[0]] = n // prod
        elif prod != n:
            raise ValueError(f"rearrange: group {g} has size {prod}, the axis has {n}")
        for a in g:
            sizes.setdefault(a, axes_lengths.get(a))
            atoms.append(a)
        dim += 1
    out = m.reshape(x, tuple(sizes[a] for a in atoms)) if len(atoms) != x.ndim else x
    order = []
    for g in right:
        for a in g:
            if a == "...":
                order.extend(f"...{k}" for k in range(ellipsis_rank))
            else:
                order.append(a)
    perm = [atoms.index(a) for a in order]
    if perm != list(range(len(perm))):
        out = m.transpose(out, perm)
    final = []
    for g in right:
        if g == ["..."]:
            final.extend(sizes[f"...{k}"] for k in range(ellipsis_rank))
            continue
        size = 1
        for a in g:
            size *= int(np.prod([sizes[f"...{k}"] for k in range(ellipsis_rank)])) if a == "..." else sizes[a]
        final.append(size)
    return m.reshape(out, tuple(final))


__all__ = ["rearrange"]
