"""The sr-edge graph as OpenVINO runs it best: one-hot shuffles back to plain data moves.

sr-edge's exact rewrites (:mod:`sr_export.rewrites`) write PixelShuffle as a grouped
ConvTranspose and PixelUnshuffle as a grouped strided Conv whose kernels are one-hot, because
ONNX Runtime runs those in its blocked layout about 4x faster than its DepthToSpace or a
Reshape/Transpose. OpenVINO's CPU plugin runs them as real convolutions instead: on the default
model in BF16 they took a third of the time (18 of 53 ms per 32 x 32 tile on ``amx/2c``). Here
each such node becomes OpenVINO's DepthToSpace / SpaceToDepth (``depth_first``, PixelShuffle's
channel order), which moves the same values, and a SpaceToDepth that undoes the DepthToSpace
before it reads that one's input: bit-identical, and checked again at engine load against ONNX
Runtime.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sr_runtime.engines.one_hot import shuffle_factor

#: Node types of the one-hot shuffles (OpenVINO's names after reading the ONNX).
_SHUFFLE = "GroupConvolutionBackpropData"  # ConvTranspose(groups C, kernel f, stride f)
_UNSHUFFLE = "GroupConvolution"  # Conv(groups C, kernel f, stride f)


def _constant(output: Any) -> np.ndarray | None:
    """The value of a weight input (a Constant, possibly behind Reshape/Convert), else None."""
    node = output.get_node()
    shape = tuple(output.get_shape()) if output.get_partial_shape().is_static else None
    while node.get_type_name() in ("Reshape", "Convert") and shape is not None:
        node = node.input_value(0).get_node()
    if node.get_type_name() != "Constant" or shape is None:
        return None
    return np.asarray(node.get_data(), dtype=np.float64).reshape(shape)


def one_hot_factor(node: Any) -> int | None:
    """``f`` when ``node`` is a grouped (transposed) conv that only moves values as
    PixelShuffle(f) / PixelUnshuffle(f) do, else None: weights exactly
    :func:`~sr_runtime.engines.one_hot.one_hot_shuffle_kernel` (OpenVINO holds them as
    (C, f*f, 1, f, f)), stride f, no padding, dilation, output padding or bias."""
    if node.get_type_name() not in (_SHUFFLE, _UNSHUFFLE) or node.get_input_size() != 2:
        return None
    weights = _constant(node.input_value(1))
    if weights is None or weights.ndim != 5 or weights.shape[2] != 1:
        return None
    f = shuffle_factor(weights)
    attributes = node.get_attributes()
    if (f is None or weights.shape[1] != f * f
            or list(attributes.get("strides", [])) != [f, f]
            or any(list(attributes.get(k, [0, 0])) != [0, 0] for k in ("pads_begin", "pads_end"))
            or list(attributes.get("dilations", [1, 1])) != [1, 1]
            or list(attributes.get("output_padding", [0, 0])) != [0, 0]):
        return None
    return f


def shuffles_as_moves(model: Any) -> int:
    """Replace, in place, every one-hot shuffle of ``model`` (an ``openvino.Model``) by
    DepthToSpace / SpaceToDepth; returns how many were replaced."""
    from openvino import opset1

    replaced = 0
    for node in list(model.get_ordered_ops()):
        f = one_hot_factor(node)
        if f is None:
            continue
        data = node.input_value(0)
        move = (opset1.depth_to_space(data, "depth_first", f) if node.get_type_name() == _SHUFFLE
                else opset1.space_to_depth(data, "depth_first", f))
        move.set_friendly_name(node.get_friendly_name())
        node.output(0).replace(move.output(0))
        replaced += 1
    for node in list(model.get_ordered_ops()):
        if _undoes(node):  # PixelUnshuffle of a PixelShuffle output: the tensor before it
            node.output(0).replace(node.input_value(0).get_node().input_value(0))
    if replaced:
        model.validate_nodes_and_infer_types()
    return replaced


def _undoes(node: Any) -> bool:
    """Whether ``node`` is a SpaceToDepth that undoes the DepthToSpace feeding it (same block
    size and mode): the static model's tail reads the last shuffle's output one level down."""
    if node.get_type_name() != "SpaceToDepth":
        return False
    source = node.input_value(0).get_node()
    if source.get_type_name() != "DepthToSpace":
        return False
    mine, theirs = node.get_attributes(), source.get_attributes()
    return (mine.get("block_size") == theirs.get("block_size")
            and str(mine.get("mode")) == str(theirs.get("mode")))
