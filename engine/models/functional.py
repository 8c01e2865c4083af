"""Functional models: a fixed graph of layer calls from Input tensors to outputs."""
import numpy as np

from engine import autodiff
from engine.layers.base import Layer, unique_name, training_scope
from engine.layers.input_layer import InputLayer
from engine.layers.keras_tensor import KerasTensor, flatten, map_structure, pack_like
from engine.models import data as data_utils
from engine.models import plan as plan_module
from engine.models.model import Model


def _producer_node(tensor):
    if not isinstance(tensor, KerasTensor) or tensor._keras_history is None:
        raise ValueError(f"Model outputs must be tensors produced by layers called on Input tensors; "
                         f"got {tensor!r}")
    layer, node_index, _ = tensor._keras_history
    return layer._inbound_nodes[node_index]


def map_graph(inputs, outputs):
    """Walk back from the outputs: the nodes in execution order and the layers in Keras's order.

    Fails, naming the missing input and the layer that needs it, when an output
    depends on an Input that is not among `inputs`.
    """
    input_ids = {id(t) for t in inputs}
    order = []          # nodes, parents before children
    state = {}          # node id -> 1 visiting, 2 done
    stack = [(_producer_node(t), None) for t in reversed(outputs)]
    while stack:
        node, consumer = stack.pop()
        key = id(node)
        if state.get(key) == 2:
            continue
        if isinstance(node.layer, InputLayer):
            tensor = node.output_tensors[0]
            if id(tensor) not in input_ids:
                needed_by = f"layer \"{consumer.layer.name}\" ({type(consumer.layer).__name__})" if consumer \
                    else "the model's outputs"
                given = ", ".join(f"\"{t.name}\" {t.shape}" for t in inputs) or "none"
                raise ValueError(
                    f"Graph disconnected: cannot reach input \"{tensor.name}\" (shape {tensor.shape}), which "
                    f"{needed_by} needs, from the model's inputs ({given}). Add it to Model(inputs=...) "
                    f"or build the outputs from the inputs you pass.")
            state[key] = 2
            order.append(node)
            continue
        if state.get(key) == 1:
            state[key] = 2
            order.append(node)
            continue
        state[key] = 1
        stack.append((node, consumer))
        for parent in reversed(node.parent_nodes):
            if state.get(id(parent)) != 2:
                if state.get(id(parent)) == 1:
                    raise ValueError(f"The graph has a cycle through layer \"{parent.layer.name}\"")
                stack.append((parent, node))
    # Keras orders layers by depth from the outputs, deepest (closest to the inputs) first.
    depth = {id(n): 0 for n in order}
    for node in reversed(order):
        for parent in node.parent_nodes:
            depth[id(parent)] = max(depth[id(parent)], depth[id(node)] + 1)
    layers, seen = [], set()
    for t in inputs:
        layer = t._keras_history[0]
        if id(layer) not in seen:
            seen.add(id(layer))
            layers.append(layer)
    ranked = sorted(range(len(order)), key=lambda i: (-depth[id(order[i])], i))
    for i in ranked:
        layer = order[i].layer
        if id(layer) not in seen:
            seen.add(id(layer))
            layers.append(layer)
    return order, layers


class Functional(Model):
    """A model defined by a graph of layers, from symbolic `Input` tensors to output tensors.

    Usually created as `Model(inputs, outputs)`: calling layers on the results of `Input(...)`
    records the graph, and the model runs that graph on real data.

    Args:
        inputs: the model's input tensor(s), each returned by `Input(...)`: a single tensor, or a
            list or dict of them.
        outputs: the model's output tensor(s), computed from `inputs` by layer calls: a single
            tensor, or a list or dict of them.
        name: optional name of the model (default: a unique `"functional"` name).
        trainable: whether the model's weights are updated by training (default `True`).
        **kwargs: other base layer keyword arguments.
    """
    _plan_traceable = True   # audited for step plans (models/plan.py): differentiable ops only

    def __init__(self, inputs, outputs, name=None, trainable=True, **kwargs):
        Layer.__init__(self, name=name or unique_name("functional"), trainable=trainable, **kwargs)
        self._init_trainer()
        self._init_graph(inputs, outputs)

    def _init_graph(self, inputs, outputs):
        self._input_structure = inputs
        self._output_structure = outputs
        self.inputs = flatten(inputs)
        self.outputs = flatten(outputs)
        for t in self.inputs:
            if not isinstance(t, KerasTensor) or not isinstance(t._keras_history[0], InputLayer):
                raise ValueError(f"Model inputs must be tensors returned by Input(...); got {t!r}")
        nodes, layers = map_graph(self.inputs, self.outputs)
        self._nodes = [n for n in nodes if not isinstance(n.layer, InputLayer)]
        object.__setattr__(self, "_layers", layers)
        self.built = True
        self.output_names = self._unique_output_names()
        self.input_names = [t.name for t in self.inputs]
        plan_module.clear(self)   # plans follow the graph they were traced from

    def plan_summary(self, kind="train", print_fn=None):
        """Print the execution plan the model replays for its steps (see engine/models/plan.py):
        the forward ops, what the backward keeps, the backward ops and the update.

        Args:
            kind: "train" (the training step, made by the first fit / train_on_batch) or
                "forward" (predict, evaluate, model(x)).
            print_fn: function that prints one line (default: print).
        """
        plan_module.plan_summary(self, kind, print_fn or print)

    def _unique_output_names(self):
        names = []
        for t in self.outputs:
            layer, node_index, tensor_index = t._keras_history
            name = layer.name
            if name in names or len(layer._inbound_nodes[node_index].output_tensors) > 1:
                name = f"{name}_{tensor_index}" if name in names else name
            names.append(name)
        return names

    @property
    def layers(self):
        return list(self._layers)

    # A model's own inputs and outputs, whether or not it was ever called as a layer.
    @property
    def input(self):
        return self.inputs[0] if len(self.inputs) == 1 else list(self.inputs)

    @property
    def output(self):
        return self.outputs[0] if len(self.outputs) == 1 else list(self.outputs)

    @property
    def input_shape(self):
        shapes = [t.shape for t in self.inputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def output_shape(self):
        shapes = [t.shape for t in self.outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    # -- running the graph -------------------------------------------------------------------
    def _run_graph(self, input_arrays):
        """The flat list of output tensors for the inputs: through the plan of their signature
        (engine/models/plan.py) when no tape is recording, else by interpreting the graph."""
        tracers = autodiff._tracers
        if tracers:
            tracer = tracers[-1]
            return self._interpret(input_arrays, tracer if tracer.owns(self) else None)
        if not autodiff._active_tapes and plan_module.enabled(self):
            return plan_module.run_forward(self, input_arrays)
        return self._interpret(input_arrays, None)

    def _interpret(self, input_arrays, tracer):
        """Run every node in order; returns the flat list of output tensors. Masks travel on the
        tensors themselves (Layer._call_eager attaches each layer's output mask). A tracer
        (a plan being made) is told where each node's ops begin and end."""
        values = {id(t): a for t, a in zip(self.inputs, input_arrays)}
        for node in self._nodes:
            # Most calls are layer(tensor) or layer([tensors]): fetch those directly, without
            # rebuilding the call's argument structure (this loop runs every training step).
            single = node.single_input
            if single is not None:
                args, kwargs = (values[single],), {}
            elif node.list_input is not None:
                args, kwargs = ([values[i] for i in node.list_input],), {}
            else:
                args, kwargs = node.substitute(lambda t: values[id(t)])
            if tracer is None:
                outputs = node.layer._call_eager(args, kwargs)
            else:
                tracer.begin_node(node)
                outputs = node.layer._call_eager(args, kwargs)
                tracer.end_node(node, outputs)
            out_tensors = node.output_tensors
            if len(out_tensors) == 1 and not isinstance(outputs, (list, tuple, dict)):
                values[id(out_tensors[0])] = outputs
            else:
                for t, v in zip(out_tensors, flatten(outputs)):
                    values[id(t)] = v
        return [values[id(t)] for t in self.outputs]

    def _input_names_for_errors(self):
        return [t.name for t in self.inputs]

    def _prepare_x(self, x):
        return data_utils.standardize_inputs(self, x)

    def _forward(self, xs):
        return self._run_graph(xs)

    def _pack_outputs(self, outs):
        return pack_like(self._output_structure, iter(outs))

    def call(self, inputs, training=None, mask=None):
        arrays = data_utils.standardize_inputs(self, inputs) if not _already_flat(self, inputs) else inputs
        with training_scope(bool(training)):
            outs = self._run_graph(arrays)
        return pack_like(self._output_structure, iter(outs))

    def compute_output_spec(self, *args, **kwargs):
        shapes = self._propagate_shapes(flatten(args[0]) if args else [])
        return pack_like(self._output_structure,
                         iter(KerasTensor(s, t.dtype) for s, t in zip(shapes, self.outputs)))

    def _propagate_shapes(self, new_inputs):
        """Output shapes for inputs of other (more specific) shapes, e.g. a base model built for
        (None, None, 3) images called on 250x250 ones; falls back to the built shapes."""
        if len(new_inputs) != len(self.inputs):
            return [t.shape for t in self.outputs]
        shapes = {id(t): tuple(getattr(x, "shape", t.shape)) for t, x in zip(self.inputs, new_inputs)}
        try:
            for node in self._nodes:
                inputs = node.args[0] if node.args else None
                in_shapes = map_structure(lambda t: shapes[id(t)] if isinstance(t, KerasTensor) else t, inputs)
                out = node.layer.compute_output_shape(in_shapes)
                outs = out if isinstance(out, list) else [out]
                if len(outs) != len(node.output_tensors):
                    raise NotImplementedError
                for t, shape in zip(node.output_tensors, outs):
                    shapes[id(t)] = tuple(shape)
            return [shapes[id(t)] for t in self.outputs]
        except (NotImplementedError, KeyError, TypeError, ValueError):
            return [t.shape for t in self.outputs]

    def _check_input(self, shapes):
        flat = flatten(shapes) if isinstance(shapes, dict) else shapes
        if len(self.inputs) > 1:
            if not isinstance(flat, (list, tuple)) or len(flat) != len(self.inputs):
                raise ValueError(f"Model \"{self.name}\" expects {len(self.inputs)} inputs "
                                 f"({', '.join(t.name for t in self.inputs)}), got {shapes}")
            pairs = zip(self.inputs, flat)
        else:
            pairs = [(self.inputs[0], flat[0] if isinstance(flat, list) else flat)]
        for t, s in pairs:
            if len(s) != len(t.shape) or any(a is not None and b is not None and a != b
                                             for a, b in zip(t.shape[1:], s[1:])):
                raise ValueError(f"Input \"{t.name}\" of model \"{self.name}\" is incompatible: expected "
                                 f"shape {t.shape}, got {tuple(s)}")

    def get_config(self):
        from engine.saving.model_config import functional_config
        return functional_config(self)

    @classmethod
    def from_config(cls, config, custom_objects=None, safe_mode=None):
        from engine.saving.model_config import functional_from_config
        return functional_from_config(cls, config, custom_objects, safe_mode)


def _already_flat(model, inputs):
    """True when `inputs` is already a list of arrays in model.inputs order with the right dtypes."""
    if not isinstance(inputs, list) or len(inputs) != len(model.inputs):
        return False
    return all(isinstance(a, np.ndarray) and t.dtype != "string" and a.dtype == np.dtype(t.dtype)
               for a, t in zip(inputs, model.inputs))
