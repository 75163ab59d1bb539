"""The sr-edge graph as OpenVINO runs it best: one-hot shuffles back to plain data moves, and
a static model's terrain terms back to one product per field.

sr-edge's exact rewrites (:mod:`sr_export.rewrites`) write PixelShuffle as a grouped
ConvTranspose and PixelUnshuffle as a grouped strided Conv whose kernels are one-hot, because
ONNX Runtime runs those in its blocked layout about 4x faster than its DepthToSpace or a
Reshape/Transpose. OpenVINO's CPU plugin runs them as real convolutions instead. Here each such
node becomes OpenVINO's DepthToSpace / SpaceToDepth (``depth_first``, PixelShuffle's channel
order), which moves the same values: bit-identical, and checked again at engine load against
ONNX Runtime. OpenVINO BF16 on the LR-only model, LR 32, one thread, ``amx/2c``: 17.9 ms before,
12.0 ms after (``benchmarks/results/cpu-engines-peers-amx-2026-12-0{2,3}.md``).

Likewise ``terrain_terms_at_once`` (one broadcast product of the terrain head's coefficients,
viewed as (N, K, O, H, W), with the K terrain fields, then a ReduceSum over K) helps ONNX
Runtime by 1-4 % and slowed OpenVINO BF16 by 4-10 % on the default model: here it becomes one
product per field and a chain of sums again (the training form's terms, summed before they
meet the output instead of after), checked at load like the rest.
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
    if replaced:
        model.validate_nodes_and_infer_types()
    return replaced


def _terms_at_once(node: Any) -> tuple[Any, Any, int] | None:
    """(coefficients, terrain, K) when ``node`` is the ReduceSum of ``terrain_terms_at_once``:
    ReduceSum over axis 1, without keep_dims, of Reshape(coefficients (N, K * O, H, W)) to
    (N, K, O, H, W) times Unsqueeze(terrain (N, K, H, W)) at axis 2."""
    if node.get_type_name() != "ReduceSum" or node.get_attributes().get("keep_dims", True):
        return None
    axes = _constant(node.input_value(1))
    product = node.input_value(0).get_node()
    if axes is None or axes.reshape(-1).tolist() != [1] or product.get_type_name() != "Multiply":
        return None
    reshape, unsqueeze = (product.input_value(i).get_node() for i in (0, 1))
    if reshape.get_type_name() != "Reshape" or unsqueeze.get_type_name() != "Unsqueeze":
        return None
    coefficients, terrain = reshape.input_value(0), unsqueeze.input_value(0)
    grouped = reshape.get_output_partial_shape(0)
    fields, channels = terrain.get_partial_shape(), coefficients.get_partial_shape()
    if (grouped.rank.is_dynamic or grouped.rank.get_length() != 5 or fields.rank.is_dynamic
            or fields.rank.get_length() != 4 or channels.rank.is_dynamic
            or not grouped[1].is_static or not fields[1].is_static or not channels[1].is_static):
        return None
    k = fields[1].get_length()
    if grouped[1].get_length() != k or channels[1].get_length() % k:
        return None
    return coefficients, terrain, k


def terrain_terms_one_by_one(model: Any) -> int:
    """Replace, in place, every ``terrain_terms_at_once`` of ``model`` (an ``openvino.Model``)
    by a product per terrain field and a chain of sums; returns how many were replaced."""
    from openvino import opset8

    replaced = 0
    for node in list(model.get_ordered_ops()):
        found = _terms_at_once(node)
        if found is None:
            continue
        coefficients, terrain, k = found
        per_field = opset8.split(coefficients, opset8.constant(np.int64(1)), k)
        fields = opset8.split(terrain, opset8.constant(np.int64(1)), k)
        readers = list(node.output(0).get_target_inputs())
        target = readers[0].get_node() if len(readers) == 1 else None
        if target is not None and target.get_type_name() == "Add":  # out + terms: the training
            total = target.input_value(1 - readers[0].get_index())  # form, out + t_0 + t_1 ...
            start, replace = 0, target
        else:
            total = opset8.multiply(per_field.output(0), fields.output(0)).output(0)
            start, replace = 1, node
        for i in range(start, k):
            total = opset8.add(total, opset8.multiply(per_field.output(i),
                                                      fields.output(i))).output(0)
        total.get_node().set_friendly_name(replace.get_friendly_name())
        replace.output(0).replace(total)
        replaced += 1
    if replaced:
        model.validate_nodes_and_infer_types()
    return replaced
