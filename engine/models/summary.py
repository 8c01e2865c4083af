"""model.summary(): Keras 3's table of layers, output shapes and parameter counts."""
import numpy as np

from engine.layers.input_layer import InputLayer


def _format_shape(shape):
    if isinstance(shape, list):
        return ", ".join(_format_shape(s) for s in shape)
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _format_bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024.0


def _count(weights):
    return int(sum(int(np.prod(w.shape)) for w in weights))


def _weight_bytes(weights):
    return int(sum(int(np.prod(w.shape)) * np.dtype(w.dtype).itemsize for w in weights))


def _output_shape_of(layer, model):
    shapes = []
    for node in layer._inbound_nodes:
        if _node_in_model(node, model):
            shapes.extend(t.shape for t in node.output_tensors)
    if not shapes:
        return "?"
    return _format_shape(shapes[0] if len(shapes) == 1 else list(shapes))


def _node_in_model(node, model):
    nodes = getattr(model, "_nodes", None)
    if nodes is None:
        return True
    if isinstance(node.layer, InputLayer):
        return any(t is node.output_tensors[0] for t in model.inputs)
    return any(node is n for n in nodes)


def _connections(layer, model):
    lines = []
    for node in layer._inbound_nodes:
        if not _node_in_model(node, model) or isinstance(layer, InputLayer):
            continue
        for t in node.input_tensors:
            src, node_index, tensor_index = t._keras_history
            lines.append(f"{src.name}[{node_index}][{tensor_index}]")
    return lines or ["-"]


def _is_sequential_like(model):
    from engine.models.sequential import Sequential
    if isinstance(model, Sequential):
        return True
    nodes = getattr(model, "_nodes", None)
    if nodes is None:
        return True
    for layer in model.layers:
        used = [n for n in layer._inbound_nodes if _node_in_model(n, model)]
        if len(used) > 1:
            return False
        for n in used:
            if len(n.input_tensors) > 1:
                return False
    return len(model.inputs) == 1 and len(model.outputs) == 1


def _fit(text, width):
    return text if len(text) <= width else text[:max(width - 1, 0)] + "\u2026"


def print_summary(model, line_length=None, positions=None, print_fn=None):
    print_fn = print_fn or print
    sequential_like = _is_sequential_like(model)
    if sequential_like:
        line_length = line_length or 88
        positions = positions or [0.45, 0.80, 1.0]
        headers = ["Layer (type)", "Output Shape", "Param #"]
        align = ["<", "<", ">"]
    else:
        line_length = line_length or 108
        positions = positions or [0.33, 0.55, 0.67, 1.0]
        headers = ["Layer (type)", "Output Shape", "Param #", "Connected to"]
        align = ["<", "<", ">", "<"]
    if positions[-1] <= 1:
        positions = [int(line_length * p) for p in positions]
    widths = [positions[0]] + [positions[i] - positions[i - 1] for i in range(1, len(positions))]
    widths = [w - 3 for w in widths]  # borders and padding

    def row(cells, left="\u2502", mid="\u2502", right="\u2502"):
        parts = [f" {_fit(c, w):{a}{w}} " for c, w, a in zip(cells, widths, align)]
        return left + mid.join(parts) + right

    def rule(left, mid, right, fill):
        return left + mid.join(fill * (w + 2) for w in widths) + right

    print_fn(f'Model: "{model.name}"')
    print_fn(rule("\u250f", "\u2533", "\u2513", "\u2501"))
    print_fn("\u2503" + "\u2503".join(f" {h:{a}{w}} " for h, w, a in zip(headers, widths, align)) + "\u2503")
    print_fn(rule("\u2521", "\u2547", "\u2529", "\u2501"))
    layers = model.layers  # a functional model's include its InputLayers, a Sequential's do not
    for i, layer in enumerate(layers):
        name = f"{layer.name} ({type(layer).__name__})"
        params = f"{layer.count_params():,}" if layer.built else "0 (unbuilt)"
        shape = _output_shape_of(layer, model)
        if sequential_like:
            lines = [[name, shape, params]]
        else:
            conns = _connections(layer, model)
            lines = [[name if j == 0 else "", shape if j == 0 else "", params if j == 0 else "", c]
                     for j, c in enumerate(conns)]
        for cells in lines:
            print_fn(row(cells))
        if i != len(layers) - 1:
            print_fn(rule("\u251c", "\u253c", "\u2524", "\u2500"))
    print_fn(rule("\u2514", "\u2534", "\u2518", "\u2500"))
    weights = model.weights
    trainable = model.trainable_weights
    trainable_ids = {id(w) for w in trainable}
    non_trainable = [w for w in weights if id(w) not in trainable_ids]
    print_fn(f" Total params: {_count(weights):,} ({_format_bytes(_weight_bytes(weights))})")
    print_fn(f" Trainable params: {_count(trainable):,} ({_format_bytes(_weight_bytes(trainable))})")
    print_fn(f" Non-trainable params: {_count(non_trainable):,} ({_format_bytes(_weight_bytes(non_trainable))})")
