"""Mixed precision for a model that full INT8 would spoil: which convs may run in INT8.

Each large conv's INT8 error is measured alone, on the calibration fields only (never on the
gate's data), and convs are chosen greedily by FLOPs saved per unit of squared error within the
RMSE budget; the chosen set then faces the same accuracy gate as full INT8
(:func:`sr_export.quantize.quantize_int8`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx

from sr_export.quantize import (
    CALIBRATION_BUDGET,
    MIN_FLOP_SHARE,
    _predict,
    _session,
    fp32_nodes,
    quantize_to_proto,
)
from sr_runtime.description import LR_INPUT
from sr_runtime.engines.onnxruntime import open_session


def conv_flops(proto: onnx.ModelProto, lr: np.ndarray) -> dict[str, float]:
    """FLOPs of every Conv/ConvTranspose node of ``proto`` on input ``lr`` (one run, FP32)."""

    probe = onnx.ModelProto()
    probe.CopyFrom(proto)
    convs = [n for n in probe.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    known = {o.name for o in probe.graph.output}
    for node in convs:
        if node.output[0] not in known:
            probe.graph.output.append(onnx.ValueInfoProto(name=node.output[0]))
    weights = {i.name: tuple(i.dims) for i in probe.graph.initializer}
    session = open_session(probe.SerializeToString(), options=None)
    outputs = session.run([n.output[0] for n in convs], {LR_INPUT: lr[:1]})
    flops = {}
    for node, out in zip(convs, outputs, strict=True):
        w = weights.get(node.input[1], ())
        if node.op_type == "Conv":  # W: (out, in / groups, kh, kw), per output pixel
            macs = float(np.prod(w)) * out.shape[-2] * out.shape[-1]
        else:  # ConvTranspose W: (in, out / groups, kh, kw), per input pixel (stride = kernel)
            macs = float(np.prod(w)) * out.shape[-2] * out.shape[-1] / float(np.prod(w[2:]))
        flops[node.name] = 2.0 * macs
    return flops


def with_shuffles(proto: onnx.ModelProto, convs: Sequence[str]) -> list[str]:
    """``convs`` and the ConvTranspose nodes (one-hot PixelShuffles, see
    :mod:`sr_export.rewrites`) that feed them: those only move values, so in INT8 they add no
    error and spare a dequantize/quantize pair."""
    producer = {o: n for n in proto.graph.node for o in n.output}
    chosen = set(convs)
    extra = {producer[n.input[0]].name for n in proto.graph.node if n.name in chosen
             and n.input[0] in producer and producer[n.input[0]].op_type == "ConvTranspose"}
    return [n.name for n in proto.graph.node if n.name in chosen | extra]


def mixed_precision_convs(model: Path, calibration: Sequence[np.ndarray], max_rmse: float,
                          reduce_range: bool | None = None) -> tuple[list[str], dict]:
    """The convs to run in INT8 when quantizing every one of them costs too much accuracy.

    Candidates are the convs of the INT8 region (see :func:`fp32_nodes`) carrying at least
    :data:`MIN_FLOP_SHARE` of the model's FLOPs (a smaller conv saves less time than its
    quantize/dequantize passes cost). Each is quantized alone and its error against the FP32
    model measured on the *calibration* fields (never on the gate's held-out data); convs are
    then taken greedily by FLOPs saved per unit of squared error while the predicted total
    (errors add in quadrature: independent rounding noise) stays within
    :data:`CALIBRATION_BUDGET` x ``max_rmse``; the chosen set is checked as a whole on the
    calibration fields and shrunk from its last pick while it exceeds the budget.
    Returns the chosen convs (possibly none) and a record of the search.
    """
    from sr_runtime.metrics import rmse

    proto = onnx.load(str(model))
    lr = np.concatenate([np.asarray(f, np.float32).reshape(1, *np.shape(f)[-3:])
                         for f in calibration])
    flops = conv_flops(proto, lr[:1])
    total = sum(flops.values()) or 1.0
    excluded = set(fp32_nodes(proto))
    candidates = [n.name for n in proto.graph.node if n.op_type == "Conv"
                  and n.name not in excluded and flops.get(n.name, 0) / total >= MIN_FLOP_SHARE]
    reference = _predict(_session(str(model)), lr)

    def error(nodes: Sequence[str]) -> float:
        quantized, _ = quantize_to_proto(model, calibration, reduce_range,
                                         int8_nodes=with_shuffles(proto, nodes))
        return rmse(_predict(_session(quantized.SerializeToString()), lr), reference)

    alone = {name: error([name]) for name in candidates}
    budget = CALIBRATION_BUDGET * max_rmse
    order = sorted(candidates, key=lambda n: flops[n] / max(alone[n], 1e-12) ** 2, reverse=True)
    chosen: list[str] = []
    predicted = 0.0
    for name in order:
        if predicted + alone[name] ** 2 <= budget ** 2:
            chosen.append(name)
            predicted += alone[name] ** 2
    combined = error(chosen) if chosen else 0.0
    while chosen and combined > budget:
        chosen.pop()
        combined = error(chosen) if chosen else 0.0
    record = {
        "why": "quantizing every conv failed the accuracy gate",
        "selection": f"per-conv error on the calibration fields, budget {budget:.4g} "
                     f"({CALIBRATION_BUDGET:g} x the gate's RMSE limit), convs with >= "
                     f"{MIN_FLOP_SHARE:.0%} of the FLOPs",
        "candidates": {n: {"flop_share": round(flops[n] / total, 4),
                           "rmse_alone": round(alone[n], 5)} for n in candidates},
        "int8_convs": list(chosen),
        "int8_nodes": with_shuffles(proto, chosen),
        "int8_flop_share": round(sum(flops[n] for n in chosen) / total, 4),
        "calibration_rmse": round(combined, 5),
    }
    return chosen, record
