"""FP16 ONNX graphs with FP32 islands, for strongly typed TensorRT builds (TensorRT 11).

The exported graph takes physical kelvin (about 280 K), where FP16's spacing is 0.25 K: the input
normalization (``Sub``, ``Div`` at the graph start) and the output denormalization (``Mul``,
``Add`` at the end) must stay FP32, and so, optionally, must the final convolution. Everything else
(convolutions, PReLU, PixelShuffle, residual adds) becomes FP16, with ``Cast`` nodes inserted where
the two precisions meet. The graph's input and output stay FP32, so callers see no difference.

This is a plain ONNX pass (no ModelOpt, no onnxconverter-common) so that exactly these nodes are
kept and the result is deterministic; ONNX Runtime CPU can run the converted graph.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CONVERTER_VERSION = "sr-edge-fp16-islands/1"
# Ops that carry the network's arithmetic: the FP32 head stops before the first of them.
COMPUTE_OPS = frozenset({"Conv", "ConvTranspose", "MatMul", "Gemm"})
# Element-wise affine ops of the input normalization.
HEAD_OPS = frozenset({"Sub", "Div", "Mul", "Add", "Identity"})
# Cheap element-wise ops that may follow the last compute op (denormalization, output ReLU).
TAIL_OPS = frozenset({"Mul", "Add", "Sub", "Div", "Relu", "Clip", "Identity"})
# Ops that may sit between the final conv and the tail (PixelShuffle after a rewritten conv,
# activations); kept FP32 with the final conv when it is.
BRIDGE_OPS = frozenset({"DepthToSpace", "Reshape", "Transpose", "Relu", "LeakyRelu", "PRelu",
                        "Clip", "Identity"})
# Inputs that ONNX types as FP32 whatever the data type (Resize's roi and scales).
FLOAT32_ONLY_INPUTS = {"Resize": {1, 2}, "Upsample": {1}}
FLOAT = TensorProto.FLOAT
FLOAT16 = TensorProto.FLOAT16


@dataclass(frozen=True)
class Fp32Islands:
    """Names of the nodes kept in FP32, by role, and their op types in graph order."""

    head: tuple[str, ...]
    tail: tuple[str, ...]
    final_conv: tuple[str, ...] = ()
    op_types: tuple[str, ...] = ()

    @property
    def nodes(self) -> frozenset[str]:
        return frozenset(self.head + self.tail + self.final_conv)

    def describe(self) -> str:
        """Short, stable text for fingerprints: which ops stay FP32 (e.g. ``Sub,Div,Mul,Add``)."""
        return ",".join(self.op_types) if self.op_types else "none"


def _ensure_names(model: onnx.ModelProto) -> None:
    used = {node.name for node in model.graph.node if node.name}
    for i, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_{i}"
            while name in used:
                name += "_"
            node.name = name
            used.add(name)


def find_fp32_islands(model: onnx.ModelProto, keep_final_conv: bool = False) -> Fp32Islands:
    """The normalization head, the denormalization tail and optionally the final convolution."""
    _ensure_names(model)
    graph = model.graph
    constants = {init.name for init in graph.initializer}
    constants |= {out for node in graph.node if node.op_type == "Constant" for out in node.output}
    graph_inputs = {value.name for value in graph.input} - constants
    producer = {out: node for node in graph.node for out in node.output}

    head: list[str] = []
    head_tensors = set(graph_inputs)
    for node in graph.node:  # ONNX nodes are topologically sorted
        if node.op_type not in HEAD_OPS:
            continue
        dynamic = [name for name in node.input if name and name not in constants]
        if dynamic and all(name in head_tensors for name in dynamic):
            head.append(node.name)
            head_tensors.update(node.output)

    tail: list[str] = []
    final_conv: list[str] = []
    for output in graph.output:
        node = producer.get(output.name)
        while node is not None and node.op_type in TAIL_OPS and node.name not in tail:
            dynamic = [name for name in node.input if name and name not in constants]
            tail.append(node.name)
            node = producer.get(dynamic[0]) if len(dynamic) == 1 else None
        bridge = []
        while keep_final_conv and node is not None and node.op_type in BRIDGE_OPS:
            bridge.append(node.name)
            dynamic = [name for name in node.input if name and name not in constants]
            node = producer.get(dynamic[0]) if len(dynamic) == 1 else None
        if keep_final_conv and node is not None and node.op_type in COMPUTE_OPS:
            final_conv.extend([node.name, *reversed(bridge)])

    by_name = {node.name: node for node in graph.node}
    ops = [by_name[name].op_type for name in head] + [by_name[name].op_type for name in
                                                       reversed(tail)]
    ops += ["final-" + by_name[name].op_type for name in final_conv]
    return Fp32Islands(tuple(head), tuple(reversed(tail)), tuple(final_conv), tuple(ops))


def _float_tensors(model: onnx.ModelProto) -> set[str]:
    """Every tensor name whose element type is FP32 (inputs, initializers, inferred values)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    names = {init.name for init in graph.initializer if init.data_type == FLOAT}
    for value in [*graph.input, *graph.output, *graph.value_info]:
        if value.type.tensor_type.elem_type == FLOAT:
            names.add(value.name)
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.t.data_type == FLOAT:
                    names.update(node.output)
    return names


def convert_to_fp16(model: onnx.ModelProto, keep_fp32: Iterable[str] | None = None,
                    keep_final_conv: bool = False) -> tuple[onnx.ModelProto, Fp32Islands]:
    """A copy of ``model`` computing in FP16 except the FP32 islands; I/O types are unchanged.

    ``keep_fp32`` adds node names to keep in FP32 (beyond the detected head and tail).
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    islands = find_fp32_islands(model, keep_final_conv)
    fp32_nodes = set(islands.nodes) | set(keep_fp32 or ())
    floats = _float_tensors(model)
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    constant_nodes = {node.output[0]: node for node in graph.node if node.op_type == "Constant"}
    graph_inputs = {value.name for value in graph.input}
    graph_outputs = {value.name for value in graph.output}

    # Which precision produces each float tensor: graph inputs and FP32 nodes give FP32.
    produced_fp16: set[str] = set()
    for node in graph.node:
        if node.op_type != "Constant" and node.name not in fp32_nodes:
            produced_fp16.update(name for name in node.output if name in floats)

    fp16_copies: dict[str, str] = {}  # FP32 initializer/constant -> its FP16 twin
    casts: dict[tuple[str, int], str] = {}  # (tensor, target type) -> cast output
    new_nodes: list[onnx.NodeProto] = []
    new_initializers: list[onnx.TensorProto] = []

    def cast(tensor: str, to: int) -> str:
        key = (tensor, to)
        if key not in casts:
            suffix = "fp16" if to == FLOAT16 else "fp32"
            out = f"{tensor}__{suffix}"
            casts[key] = out
            new_nodes.append(helper.make_node("Cast", [tensor], [out], to=to,
                                              name=f"cast_{suffix}__{tensor}"))
        return casts[key]

    def fp16_constant(name: str) -> str:
        if name not in fp16_copies:
            twin = f"{name}__fp16"
            if name in initializers:
                values = numpy_helper.to_array(initializers[name]).astype(np.float16)
                new_initializers.append(numpy_helper.from_array(values, twin))
            else:
                attr = next(a for a in constant_nodes[name].attribute if a.name == "value")
                values = numpy_helper.to_array(attr.t).astype(np.float16)
                new_nodes.append(helper.make_node(
                    "Constant", [], [twin], value=numpy_helper.from_array(values, twin),
                    name=f"const_fp16__{name}"))
            fp16_copies[name] = twin
        return fp16_copies[name]

    for node in graph.node:
        if node.op_type == "Constant":
            new_nodes.append(node)
            continue
        wants_fp16 = node.name not in fp32_nodes
        pinned = FLOAT32_ONLY_INPUTS.get(node.op_type, set())
        for i, name in enumerate(node.input):
            if not name or name not in floats:
                continue
            is_constant = name in initializers or name in constant_nodes
            if i in pinned:
                if name in produced_fp16:
                    node.input[i] = cast(name, FLOAT)
            elif wants_fp16 and is_constant:
                node.input[i] = fp16_constant(name)
            elif wants_fp16 and name not in produced_fp16:
                node.input[i] = cast(name, FLOAT16)
            elif not wants_fp16 and name in produced_fp16:
                node.input[i] = cast(name, FLOAT)
        if wants_fp16 and node.op_type == "Cast":
            raise ValueError(f"node {node.name} is a Cast; the graph is already mixed precision")
        new_nodes.append(node)

    # Graph outputs produced in FP16 are renamed and cast back, so the interface stays FP32.
    for name in graph_outputs & produced_fp16:
        internal = f"{name}__fp16_out"
        for node in new_nodes:
            node.output[:] = [internal if out == name else out for out in node.output]
            node.input[:] = [internal if inp == name else inp for inp in node.input]
        new_nodes.append(helper.make_node("Cast", [internal], [name], to=FLOAT,
                                          name=f"cast_fp32__{name}"))
    if graph_inputs & produced_fp16:  # impossible: inputs are not produced by nodes
        raise ValueError("a graph input is produced by a node")

    used = {name for node in new_nodes for name in node.input}
    kept_initializers = [init for init in graph.initializer if init.name in used]
    del graph.node[:]
    graph.node.extend(_toposort(new_nodes, graph_inputs | {i.name for i in kept_initializers}
                                | {i.name for i in new_initializers}))
    del graph.initializer[:]
    graph.initializer.extend(kept_initializers + new_initializers)
    del graph.value_info[:]
    onnx.checker.check_model(model)
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    return model, islands


def _toposort(nodes: list[onnx.NodeProto], available: set[str]) -> list[onnx.NodeProto]:
    """Order nodes so every input is produced first (Cast nodes were appended out of order)."""
    ready = set(available) | {""}
    pending = list(nodes)
    ordered: list[onnx.NodeProto] = []
    while pending:
        progressed = False
        rest = []
        for node in pending:
            if all(name in ready for name in node.input):
                ordered.append(node)
                ready.update(node.output)
                progressed = True
            else:
                rest.append(node)
        if not progressed:
            missing = sorted({n for node in rest for n in node.input if n not in ready})
            raise ValueError(f"graph has unresolved inputs after FP16 conversion: {missing[:5]}")
        pending = rest
    return ordered


def node_precisions(model: onnx.ModelProto) -> dict[str, int]:
    """For each non-Cast node, the element type of its first float output (FP32 or FP16)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {value.name: value.type.tensor_type.elem_type
             for value in [*inferred.graph.value_info, *inferred.graph.output,
                           *inferred.graph.input]}
    return {node.name: types.get(node.output[0], 0) for node in inferred.graph.node
            if node.op_type not in ("Cast", "Constant")}
