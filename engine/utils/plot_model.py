"""plot_model: a model's graph as Graphviz DOT text, rendered to PNG/SVG when `dot` is installed."""
import os
import shutil
import subprocess


def model_to_dot(model, show_shapes=False, show_layer_names=True, rankdir="TB"):
    """The DOT source of the model's layer graph (one box per layer, one arrow per connection)."""
    lines = [f'digraph "{model.name}" {{', f"  rankdir={rankdir};", '  node [shape=record, fontname="Helvetica"];']
    index = {id(layer): i for i, layer in enumerate(model.layers)}
    for i, layer in enumerate(model.layers):
        label = f"{layer.name}|{type(layer).__name__}" if show_layer_names else type(layer).__name__
        if show_shapes:
            try:
                label += f"|{layer.output_shape}".replace("None", "?")
            except AttributeError:
                pass
        label = label.replace('"', "'").replace("{", "(").replace("}", ")")
        lines.append(f'  layer{i} [label="{label}"];')
    edges = set()
    for node in getattr(model, "_nodes", []):
        for t in node.input_tensors:
            src = t._keras_history[0]
            if id(src) in index and id(node.layer) in index:
                edges.add((index[id(src)], index[id(node.layer)]))
    lines += [f"  layer{a} -> layer{b};" for a, b in sorted(edges)]
    lines.append("}")
    return "\n".join(lines) + "\n"


def plot_model(model, to_file="model.png", show_shapes=False, show_layer_names=True, rankdir="TB", **kwargs):
    """Write the graph to `to_file`: .dot as text; .png, .svg or .pdf through Graphviz's `dot` program."""
    dot = model_to_dot(model, show_shapes=show_shapes, show_layer_names=show_layer_names, rankdir=rankdir)
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
