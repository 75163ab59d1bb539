"""Exact simplifications of the exported ONNX graph, after tracing.

``unshuffle_of_shuffle_dropped``
    a one-hot PixelUnshuffle conv (:class:`sr_export.rewrites.UnshuffleAsConv`) that reads the
    output of a one-hot PixelShuffle ConvTranspose of the same factor
    (:class:`sr_export.rewrites.ShuffleAsTransposedConv`) gives back that ConvTranspose's input:
    its readers read the input instead. The static model's tail reads the last shuffle's output
    one level down (:class:`sr_export.rewrites.UnshuffledConv`), and the pair cost ONNX Runtime
    about 5 % of that model's time; in PyTorch the two are separate modules, in the graph they
    meet. Checked, like every rewrite, by the export's parity with PyTorch.
"""

from __future__ import annotations

import onnx
from onnx import numpy_helper

from sr_runtime.engines.one_hot import shuffle_factor

UNSHUFFLE_OF_SHUFFLE_DROPPED = "unshuffle_of_shuffle_dropped"


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
