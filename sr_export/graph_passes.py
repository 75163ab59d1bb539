"""Exact simplifications of the exported ONNX graph, after tracing.

``unshuffle_of_shuffle_dropped``
    a one-hot PixelUnshuffle conv (:class:`sr_export.rewrites.UnshuffleAsConv`) that reads the
    output of a one-hot PixelShuffle ConvTranspose of the same factor
    (:class:`sr_export.rewrites.ShuffleAsTransposedConv`) gives back that ConvTranspose's input:
    its readers read the input instead. The static model's tail reads the last shuffle's output
    one level down (:class:`sr_export.rewrites.UnshuffledConv`), and the pair cost ONNX Runtime
    about 5 % of that model's time; in PyTorch the two are separate modules, in the graph they
    meet. Checked, like every rewrite, by the export's parity with PyTorch.

``conv_split_at_static_inputs``
    a conv that reads a channel Concat of values from the LR step and values derived from the
    static fields alone (the static model's head conv reads the LR variables beside the static
    encoder's features) is the sum of one conv over each group of channels, the bias on the
    step's: the static group's conv then belongs to the static part, which ``sr-run`` computes
    once per tile (:mod:`sr_export.static_split`), and ONNX Runtime fuses the sum into the
    step's conv. Only the summation order changes.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from sr_export.static_split import static_inputs_of, static_nodes
from sr_runtime.engines.one_hot import shuffle_factor

UNSHUFFLE_OF_SHUFFLE_DROPPED = "unshuffle_of_shuffle_dropped"
CONV_SPLIT_AT_STATIC_INPUTS = "conv_split_at_static_inputs"


def _one_hot(node: onnx.NodeProto, weights: dict[str, onnx.TensorProto]) -> int | None:
    """``f`` when ``node`` (Conv or ConvTranspose) is a bias-free one-hot shuffle of factor f."""
    if len(node.input) != 2 or node.input[1] not in weights:
        return None
    kernel = numpy_helper.to_array(weights[node.input[1]])
    f = shuffle_factor(kernel)
    if f is None:
        return None
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    channels = kernel.shape[0] // (f * f)
    if (list(attrs.get("strides", [])) != [f, f] or attrs.get("group") != channels
            or any(p != 0 for p in attrs.get("pads", [0] * 4))
            or list(attrs.get("dilations", [1, 1])) != [1, 1]
            or list(attrs.get("output_padding", [0, 0])) != [0, 0]
            or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")):
        return None
    return f


def drop_unshuffle_of_shuffle(proto: onnx.ModelProto) -> int:
    """Apply ``unshuffle_of_shuffle_dropped`` to ``proto`` in place; returns how many pairs."""
    graph = proto.graph
    weights = {t.name: t for t in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    outputs = {o.name for o in graph.output}
    dropped: dict[str, str] = {}  # unshuffle output -> the shuffle's input
    for node in graph.node:
        if node.op_type != "Conv" or node.output[0] in outputs:
            continue
        source = producer.get(node.input[0])
        if source is None or source.op_type != "ConvTranspose":
            continue
        f = _one_hot(node, weights)
        if f is not None and _one_hot(source, weights) == f:
            dropped[node.output[0]] = source.input[0]
    if not dropped:
        return 0
    kept = [n for n in graph.node if n.output[0] not in dropped]
    for node in kept:
        for i, name in enumerate(node.input):
            if name in dropped:
                node.input[i] = dropped[name]
    del graph.node[:]
    graph.node.extend(kept)
    return len(dropped)


def _channels(proto: onnx.ModelProto) -> dict[str, int]:
    """Channel count (dimension 1) of every value whose shape inference knows it."""
    inferred = onnx.shape_inference.infer_shapes(proto).graph
    counts = {}
    for info in (*inferred.input, *inferred.value_info, *inferred.output):
        dims = info.type.tensor_type.shape.dim
        if len(dims) > 1 and dims[1].HasField("dim_value"):
            counts[info.name] = dims[1].dim_value
    return counts


def _split_parts(conv: onnx.NodeProto, operands: list[str], static: set[str],
                 channels: dict[str, int], kernel: np.ndarray,
                 graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """The nodes that replace ``conv``: a conv per group of operands (step, then static, each
    behind a Concat if it has several) and their sum; their weights go into ``graph``."""
    starts = np.cumsum([0, *(channels[name] for name in operands)])
    infos = {info.name: info for info in graph.value_info}
    label = conv.name or conv.output[0]
    nodes, sums = [], []
    for role in ("step", "static"):  # the step's conv first: it carries the bias
        names = [name for name in operands if (name in static) == (role == "static")]
        tag, source = f"{label}_{role}", names[0]
        if len(names) > 1:
            source = f"{tag}_input"
            nodes.append(onnx.helper.make_node("Concat", names, [source], axis=1,
                                               name=f"{tag}_concat"))
        index = [c for name in names
                 for c in range(starts[operands.index(name)], starts[operands.index(name) + 1])]
        graph.initializer.append(numpy_helper.from_array(
            np.ascontiguousarray(kernel[:, index]), f"{tag}_weight"))
        bias = list(conv.input[2:]) if role == "step" else []
        part = onnx.helper.make_node("Conv", [source, f"{tag}_weight", *bias],
                                     [f"{tag}_output"], name=tag)
        part.attribute.extend(conv.attribute)
        nodes.append(part)
        sums.append(part.output[0])
        info = onnx.ValueInfoProto()  # the static split cuts here: it needs the value's type
        if conv.output[0] in infos:
            info.CopyFrom(infos[conv.output[0]])
        else:
            info.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
        info.name = part.output[0]
        graph.value_info.append(info)
    # the static term first: ONNX Runtime then fuses it into the step's conv in the whole
    # graph as in the step part, so the parts give the whole model's output bit for bit
    nodes.append(onnx.helper.make_node("Add", sums[::-1], list(conv.output),
                                       name=f"{label}_sum"))
    return nodes


def split_conv_at_static_inputs(proto: onnx.ModelProto) -> int:
    """Apply ``conv_split_at_static_inputs`` to ``proto`` in place; returns how many convs."""
    graph = proto.graph
    statics = static_inputs_of(graph)
    if not statics:
        return 0
    static = set(statics) | {out for node in static_nodes(graph, statics) for out in node.output}
    weights = {t.name: t for t in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    channels: dict[str, int] | None = None
    replaced: dict[int, list[onnx.NodeProto]] = {}
    for conv in graph.node:
        concat = producer.get(conv.input[0]) if conv.op_type == "Conv" else None
        if (concat is None or concat.op_type != "Concat" or len(conv.input) < 2
                or conv.input[1] not in weights
                or any(a.name == "group" and a.i != 1 for a in conv.attribute)
                or any(a.name == "axis" and a.i != 1 for a in concat.attribute)):
            continue
        operands = list(concat.input)
        if (len(set(operands)) != len(operands) or all(name in static for name in operands)
                or not any(name in static for name in operands)):
            continue
        channels = channels if channels is not None else _channels(proto)
        kernel = numpy_helper.to_array(weights[conv.input[1]])
        if (any(name not in channels for name in operands)
                or sum(channels[name] for name in operands) != kernel.shape[1]):
            continue
        replaced[id(conv)] = _split_parts(conv, operands, static, channels, kernel, graph)
    if not replaced:
        return 0
    nodes = [new for node in graph.node for new in replaced.get(id(node), [node])]
    kernels = {node.input[1] for node in graph.node if id(node) in replaced}
    concats = {id(producer[node.input[0]]) for node in graph.node if id(node) in replaced}
    read = {name for node in nodes for name in node.input} | {o.name for o in graph.output}
    # the split convs' Concats and whole kernels, unless something else still reads them
    nodes = [node for node in nodes if id(node) not in concats or node.output[0] in read]
    del graph.node[:]
    graph.node.extend(nodes)
    for init in [init for init in graph.initializer
                 if init.name in kernels and init.name not in read]:
        graph.initializer.remove(init)
    return len(replaced)
