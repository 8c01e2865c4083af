"""Symbolic tensors and the nodes that connect layers into a graph.

A KerasTensor stands for a batch of values that does not exist yet: it has a
shape (batch dimension None) and a dtype, and remembers which layer call
produced it.  A Node records one call of a layer on symbolic tensors.
"""
import numpy as np

from engine.saving.registry import register_builtin


def _standard_dtype(dtype):
    from engine.dtypes import standardize_dtype
    return standardize_dtype(dtype)


class KerasTensor:
    def __init__(self, shape, dtype=None, name=None, producer=None):
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = _standard_dtype(dtype)
        self.name = name
        # (layer, node index in layer._inbound_nodes, tensor index in that node's outputs)
        self._keras_history = producer

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    def __len__(self):
        raise TypeError("A symbolic tensor has no length: its batch size is only known when data "
                        "flows through the model.")

    def __array__(self, *args, **kwargs):
        raise TypeError(f"{self!r} is symbolic: it has no value until a model runs. Build a Model from "
                        "it and call model.predict(...) or model(data).")

    # Arithmetic on symbolic tensors becomes merge layers, as in Keras.
    def __add__(self, other):
        from engine.layers.merging import symbolic_binary
        return symbolic_binary("add", self, other)

    def __radd__(self, other):
        from engine.layers.merging import symbolic_binary
        return symbolic_binary("add", other, self)

    def __sub__(self, other):
        from engine.layers.merging import symbolic_binary
        return symbolic_binary("subtract", self, other)

    def __rsub__(self, other):
        from engine.layers.merging import symbolic_binary
        return symbolic_binary("subtract", other, self)

    def __mul__(self, other):
        from engine.layers.merging import symbolic_binary
        return symbolic_binary("multiply", self, other)

    def __rmul__(self, other):
        from engine.layers.merging import symbolic_binary
        return symbolic_binary("multiply", other, self)


def flatten(structure):
    """The leaves of a nested list/tuple/dict, in a stable order."""
    if isinstance(structure, (list, tuple)):
        out = []
        for s in structure:
            out.extend(flatten(s))
        return out
    if isinstance(structure, dict):
        out = []
        for k in sorted(structure):
            out.extend(flatten(structure[k]))
        return out
    return [structure]


def pack_like(structure, flat_iter):
    """Rebuild `structure` taking its leaves from `flat_iter` (inverse of flatten)."""
    if isinstance(structure, (list, tuple)):
        return type(structure)(pack_like(s, flat_iter) for s in structure)
    if isinstance(structure, dict):
        return {k: pack_like(structure[k], flat_iter) for k in sorted(structure)}
    return next(flat_iter)


def map_structure(fn, structure):
    if isinstance(structure, (list, tuple)):
        return type(structure)(map_structure(fn, s) for s in structure)
    if isinstance(structure, dict):
        return {k: map_structure(fn, v) for k, v in structure.items()}
    return fn(structure)


def is_symbolic(structure):
    return any(isinstance(t, KerasTensor) for t in flatten(structure))


class Node:
    """One call of `layer` on symbolic inputs.

    `args`/`kwargs` keep the call's arguments with each KerasTensor in place, so
    the call can be replayed with arrays substituted for the tensors.
    """

    def __init__(self, layer, args, kwargs, outputs):
        self.layer = layer
        self.args = args
        self.kwargs = kwargs
        self.input_tensors = [t for t in flatten((args, kwargs)) if isinstance(t, KerasTensor)]
        self.outputs = outputs
        self.output_tensors = flatten(outputs)
        # Shortcuts for the graph runner: the id of the one input tensor of a layer(tensor) call, or
        # the ids of a layer([tensors]) call; None when the call has another shape.
        self.single_input = id(args[0]) if len(args) == 1 and not kwargs and isinstance(args[0], KerasTensor) \
            else None
        self.list_input = [id(t) for t in args[0]] if len(args) == 1 and not kwargs and \
            isinstance(args[0], list) and args[0] and all(isinstance(t, KerasTensor) for t in args[0]) else None
        self.index = len(layer._inbound_nodes)
        layer._inbound_nodes.append(self)
        for i, t in enumerate(self.output_tensors):
            t._keras_history = (layer, self.index, i)

    @property
    def parent_nodes(self):
        nodes = []
        for t in self.input_tensors:
            layer, node_index, _ = t._keras_history
            nodes.append(layer._inbound_nodes[node_index])
        return nodes

    def substitute(self, value_of):
        """The call's args and kwargs with each symbolic tensor replaced by value_of(tensor)."""
        def sub(x):
            return value_of(x) if isinstance(x, KerasTensor) else x
        return map_structure(sub, self.args), map_structure(sub, self.kwargs)


register_builtin(KerasTensor, "tensors", package="keras")  # model configs encode graph edges as these


def get_source_inputs(tensor):
    """The `Input` tensors a symbolic tensor is computed from, in the order its graph reaches
    them (each once).

    Args:
        tensor: a symbolic tensor (from `Input` or a layer called on symbolic tensors).

    Returns:
        A list of the `Input` tensors; `[tensor]` for an `Input` tensor itself.
    """
    if not isinstance(tensor, KerasTensor):
        raise ValueError(f"get_source_inputs: expected a symbolic tensor (from Input or a layer called on one), "
                         f"got {type(tensor).__name__}")
    sources, seen, stack = [], set(), [tensor]
    while stack:
        t = stack.pop(0)
        history = t._keras_history
        node = history[0]._inbound_nodes[history[1]] if history is not None else None
        if node is None or not node.input_tensors:
            if id(t) not in seen:
                seen.add(id(t))
                sources.append(t)
            continue
        stack[:0] = node.input_tensors
    return sources
