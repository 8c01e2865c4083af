"""plot_model: a model's graph as Graphviz DOT text, rendered to PNG/SVG when `dot` is installed."""
import itertools
import os
import shutil
import subprocess


def _escape(text):
    """Text safe inside a DOT record label: its field separators and brackets replaced."""
    return str(text).replace('"', "'").replace("{", "(").replace("}", ")").replace("|", "/") \
        .replace("<", "(").replace(">", ")")


def _layer_label(layer, show_shapes, show_dtype, show_layer_names, show_layer_activations, show_trainable):
    """The record label of one layer (fields separated by |): its name and class, then the asked-for
    details. Shapes show unknown sizes as ?."""
    fields = ([_escape(layer.name)] if show_layer_names else []) + [_escape(type(layer).__name__)]
    if show_layer_activations and getattr(layer, "activation", None) is not None:
        activation = layer.activation
        fields.append("Activation: " + _escape(getattr(activation, "__name__", activation)))
    if show_shapes:
        try:
            fields.append("Output shape: " + _escape(layer.output_shape).replace("None", "?"))
        except AttributeError:
            pass
    if show_dtype:
        try:
            output = layer.output
            dtype = [str(t.dtype) for t in output] if isinstance(output, (list, tuple)) else output.dtype
        except AttributeError:
            dtype = "?"
        fields.append(f"Output dtype: {_escape(dtype)}")
    if show_trainable:
        fields.append(f"Trainable: {'Y' if layer.trainable else 'N'}")
    return "|".join(fields)


def _is_graph_model(layer):
    from engine.models.functional import Functional
    return isinstance(layer, Functional)


def model_to_dot(model, show_shapes=False, show_dtype=False, show_layer_names=True, rankdir="TB",
                 expand_nested=False, dpi=200, subgraph=False, show_layer_activations=False,
                 show_trainable=False, splines="ortho", **kwargs):
    """The DOT source of the model's layer graph (one box per layer, one arrow per connection).

    Args:
        model: a functional or Sequential model (a subclassed one is drawn as one box).
        show_shapes: add each layer's output shape.
        show_dtype: add each layer's output dtype.
        show_layer_names: label boxes with the layer's name as well as its class.
        rankdir: Graphviz's direction, "TB" (top to bottom) or "LR" (left to right).
        expand_nested: draw nested functional / Sequential models as clusters of their layers.
        dpi: the image's resolution.
        subgraph: return a cluster (`subgraph cluster_<name> {...}`) to embed in another graph.
        show_layer_activations: add the activation of layers that have one.
        show_trainable: add whether each layer is trainable.
        splines: Graphviz's edge style ("ortho", "polyline", "spline", ...).
    """
    if kwargs.pop("layer_range", None) is not None:
        raise ValueError("model_to_dot: the layer_range argument is no longer supported (as in Keras 3)")
    if kwargs:
        raise ValueError(f"model_to_dot: unrecognized keyword arguments {sorted(kwargs)}")
    details = (show_shapes, show_dtype, show_layer_names, show_layer_activations, show_trainable)
    ids = itertools.count()
    body, first_of, last_of = _graph_body(model, details, expand_nested, ids, "  ")
    if subgraph:
        header = [f'subgraph "cluster_{model.name}" {{', f'  label="{model.name}";']
    else:
        header = [f'digraph "{model.name}" {{', f"  rankdir={rankdir};", "  concentrate=true;",
                  f"  dpi={dpi};", f"  splines={splines};", '  node [shape=record, fontname="Helvetica"];']
    return "\n".join(header + body + ["}"]) + "\n"


def _graph_body(model, details, expand_nested, ids, indent):
    """The node and edge lines of one model's graph, and for each of its layers the DOT node an
    edge into it (first_of) and out of it (last_of) attaches to (a cluster's first / last node)."""
    lines, first_of, last_of = [], {}, {}
    if not _is_graph_model(model):
        node = f"layer{next(ids)}"
        lines.append(f'{indent}{node} [label="{_layer_label(model, *details)}"];')
        return lines, {id(model): node}, {id(model): node}
    for layer in model.layers:
        if expand_nested and _is_graph_model(layer):
            inner, inner_first, inner_last = _graph_body(layer, details, expand_nested, ids, indent + "  ")
            lines += [f'{indent}subgraph "cluster_{layer.name}" {{', f'{indent}  label="{layer.name}";']
            lines += inner + [f"{indent}}}"]
            # edges into / out of the cluster attach to its first / last layer
            first_of[id(layer)] = inner_first[id(layer.layers[0])]
            last_of[id(layer)] = inner_last[id(layer.layers[-1])]
        else:
            node = f"layer{next(ids)}"
            lines.append(f'{indent}{node} [label="{_layer_label(layer, *details)}"];')
            first_of[id(layer)] = last_of[id(layer)] = node
    edges = []
    for node in getattr(model, "_nodes", []):
        for t in node.input_tensors:
            src = t._keras_history[0]
            if id(src) in last_of and id(node.layer) in first_of:
                edge = (last_of[id(src)], first_of[id(node.layer)])
                if edge not in edges:
                    edges.append(edge)
    lines += [f"{indent}{a} -> {b};" for a, b in edges]
    return lines, first_of, last_of


def plot_model(model, to_file="model.png", show_shapes=False, show_dtype=False, show_layer_names=False,
               rankdir="TB", expand_nested=False, dpi=200, show_layer_activations=False, show_trainable=False,
               splines="ortho", **kwargs):
    """Write the graph to `to_file`: .dot as text; .png, .svg or .pdf through Graphviz's `dot` program.

    Args:
        model: the model.
        to_file: the file to write; its extension chooses the format.
        show_shapes, show_dtype, show_layer_names, rankdir, expand_nested, dpi,
        show_layer_activations, show_trainable, splines: as `model_to_dot`'s (Keras's defaults:
            here layer names are off unless asked for).

    Returns:
        The DOT source.
    """
    dot = model_to_dot(model, show_shapes=show_shapes, show_dtype=show_dtype, show_layer_names=show_layer_names,
                       rankdir=rankdir, expand_nested=expand_nested, dpi=dpi,
                       show_layer_activations=show_layer_activations, show_trainable=show_trainable,
                       splines=splines, **kwargs)
    extension = os.path.splitext(str(to_file))[1].lower().lstrip(".") or "png"
    if extension in ("dot", "gv"):
        with open(to_file, "w") as f:
            f.write(dot)
        return dot
    program = shutil.which("dot")
    if program is None:
        raise RuntimeError(f"plot_model: writing .{extension} needs Graphviz's `dot` program (e.g. apt-get "
                           f"install graphviz); a .dot file needs nothing: plot_model(model, 'model.dot')")
    subprocess.run([program, f"-T{extension}", "-o", str(to_file)], input=dot.encode(), check=True)
    return dot
