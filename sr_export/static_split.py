"""Split a model with static inputs into its static part and its step part.

The static part is every node whose inputs are, transitively, the static HR fields and
constants alone (terrain features, block anomalies); the step part is the rest, reading the
static part's outputs as inputs. ``sr-run`` computes the static part once per tile of a run
(:mod:`sr_runtime.engines.static_part`). The parts are checked against the whole model on ONNX
Runtime before they are written: their composition must give its output to
:data:`SPLIT_TOLERANCE_K` (bit for bit in practice: the same kernels on the same values).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnx.utils

from sr_runtime.description import LR_INPUT
from sr_runtime.engines.onnxruntime import open_cpu_session, read_description
from sr_runtime.engines.static_part import (
    ROLE_STATIC,
    ROLE_STEP,
    SPLIT_KEY,
    find_parts,
    part_paths,
    split_record,
)
from sr_runtime.errors import AccuracyGateError, UsageError
from sr_runtime.paths import sha256_file, write_atomically
from sr_runtime.synthetic import sample_feed

SPLIT_TOLERANCE_K = 1e-5
#: Not hoisted: their outputs are shapes, which the step part works out itself in no time.
_SHAPE_OPS = frozenset({"Shape", "Size"})
#: Worth a split only if the static part does real work.
_COMPUTE_OPS = frozenset({"Conv", "ConvTranspose", "AveragePool", "MatMul", "Gemm", "Resize"})


def static_nodes(graph: onnx.GraphProto, static_inputs: list[str]) -> list[onnx.NodeProto]:
    """Nodes computable from ``static_inputs`` and constants alone, each reading at least one
    value derived from a static input (graph nodes are in topological order).

    Shape arithmetic on such values (Shape, then Concat or Reshape targets built from it, as a
    traced PixelUnshuffle has) is known too, but not hoisted: a Reshape of a static value that
    reads it is, and the part that needs the shapes computes them itself."""
    constant = {init.name for init in graph.initializer}
    derived = set(static_inputs)
    shapes: set[str] = set()  # shape arithmetic on derived values and constants
    hoisted = []
    for node in graph.node:
        inputs = [name for name in node.input if name]
        if node.op_type == "Constant":
            constant.update(node.output)
            continue
        known = bool(inputs) and all(name in derived or name in constant or name in shapes
                                     for name in inputs)
        if not known:
            continue
        reads_static = any(name in derived for name in inputs)
        if node.op_type in _SHAPE_OPS or not reads_static:
            if node.op_type in _SHAPE_OPS or any(name in shapes for name in inputs):
                shapes.update(node.output)  # a shape, or arithmetic on shapes
            continue
        hoisted.append(node)
        derived.update(node.output)
    return hoisted


def _needed(nodes: list[onnx.NodeProto], outputs: list[str], given: set[str]
            ) -> list[onnx.NodeProto]:
    """The ``nodes`` that computing ``outputs`` runs, stopping at the ``given`` values."""
    producer = {out: node for node in nodes for out in node.output}
    seen: set[int] = set()
    stack = [name for name in outputs if name not in given]
    while stack:
        node = producer.get(stack.pop())
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(name for name in node.input if name and name not in given)
    return [node for node in nodes if id(node) in seen]


def static_inputs_of(graph: onnx.GraphProto) -> list[str]:
    """The graph's inputs other than the LR step (and initializers some exporters list)."""
    initializers = {init.name for init in graph.initializer}
    return [i.name for i in graph.input if i.name != LR_INPUT and i.name not in initializers]


def split_model(model: onnx.ModelProto, whole_sha256: str
                ) -> tuple[onnx.ModelProto, onnx.ModelProto] | None:
    """(static part, step part) of ``model``, or None where no real work depends on static
    fields alone (a model without static inputs)."""
    graph = model.graph
    static_inputs = static_inputs_of(graph)
    if not static_inputs:
        return None
    hoisted = static_nodes(graph, static_inputs)
    if not any(node.op_type in _COMPUTE_OPS for node in hoisted):
        return None
    hoisted_ids = {id(node) for node in hoisted}
    produced = {name for node in hoisted for name in node.output}
    outputs = [o.name for o in graph.output]
    # what the step part runs: shape arithmetic that only hoisted nodes read stays behind
    rest = _needed([node for node in graph.node if id(node) not in hoisted_ids], outputs,
                   produced)
    cuts: list[str] = []
    for name in [*(i for node in rest for i in node.input), *outputs]:
        if name in produced and name not in cuts:
            cuts.append(name)
    still_read = [name for name in static_inputs
                  if any(name in node.input for node in rest) or name in outputs]
    extractor = onnx.utils.Extractor(model)
    static_part = extractor.extract_model(static_inputs, cuts)
    step_part = extractor.extract_model([LR_INPUT, *still_read, *cuts], outputs)
    for role, part in ((ROLE_STATIC, static_part), (ROLE_STEP, step_part)):
        del part.metadata_props[:]
        part.producer_name, part.producer_version = model.producer_name, model.producer_version
        entry = part.metadata_props.add()
        entry.key = SPLIT_KEY
        entry.value = split_record(role, whole_sha256, static_inputs, cuts, still_read)
        onnx.checker.check_model(part)
    return static_part, step_part


def check_split(model_bytes: bytes, static_bytes: bytes, step_bytes: bytes,
                feed: dict[str, np.ndarray]) -> float:
    """Max abs difference (K) between the whole model and its parts run in turn on ``feed``."""
    whole = open_cpu_session(model_bytes).run(None, feed)[0]
    static_session, step_session = open_cpu_session(static_bytes), open_cpu_session(step_bytes)
    static_names = [i.name for i in static_session.get_inputs()]
    cut_names = [o.name for o in static_session.get_outputs()]
    cuts = dict(zip(cut_names, static_session.run(cut_names, {n: feed[n] for n in static_names}),
                    strict=True))
    step_feed = {i.name: cuts[i.name] if i.name in cuts else feed[i.name]
                 for i in step_session.get_inputs()}
    parts = step_session.run(None, step_feed)[0]
    if parts.shape != whole.shape or not np.isfinite(parts).all():
        return float("inf")
    return float(np.abs(parts.astype(np.float64) - whole).max())


def write_split(model: Path) -> tuple[Path, Path] | None:
    """Write ``model``'s static and step parts beside it, checked against it; None (and any
    stale parts removed) where it has none. Atomic: a failed check writes nothing."""
    model = Path(model)
    if not model.is_file():
        raise UsageError(f"model not found: {model}")
    data = model.read_bytes()
    paths = part_paths(model)
    parts = split_model(onnx.load_from_string(data), sha256_file(model))
    if parts is None:
        for stale in paths:
            stale.unlink(missing_ok=True)
        return None
    static_bytes, step_bytes = (part.SerializeToString() for part in parts)
    feed = sample_feed(read_description(model), (12, 12), batch=1)
    error = check_split(data, static_bytes, step_bytes, feed)
    if not error <= SPLIT_TOLERANCE_K:
        raise AccuracyGateError(f"the static and step parts of {model.name} differ from it by "
                                f"{error:.2e} K (limit {SPLIT_TOLERANCE_K:.0e} K); not written. "
                                "This is a bug in sr-edge, please report it")
    write_atomically(static_bytes, paths[0])
    write_atomically(step_bytes, paths[1])
    found, why = find_parts(model, sha256_file(model))
    if found is None:  # the model changed while we split it
        raise UsageError(f"the parts of {model.name} could not be checked back: {why}")
    return paths
