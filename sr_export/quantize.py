"""INT8 variant of an exported model for CPUs, accepted only behind an accuracy gate.

``model.onnx`` (FP32, from :func:`sr_export.onnx_export.export_onnx`) -> ``model.int8.onnx``:
ONNX Runtime static quantization in QDQ form (activations uint8 asymmetric per tensor, weights
int8 symmetric per output channel), calibrated with MinMax on real LR fields in kelvin from a
DataCube (``--source sample``: the embedded sample's training period).

Kept in FP32 (:func:`fp32_nodes`): the input normalization (``Sub``/``Div``) and the first conv
(so the kelvin input is never rounded to 256 levels), and the tail after its wide 1x1 conv: the
one-hot shifts, the tap sum, the last ``DepthToSpace`` and the output ``Mul``/``Add`` (so the
output is never rounded to 256 levels either). All 3x3 convs but the first and the tail's 1x1
conv, over 97 % of the FLOPs, run in INT8.

On CPUs without VNNI (AVX2 only) the u8 x s8 multiply-add instruction saturates at 16 bits, so
weights are quantized to 7 bits there (ONNX Runtime's ``reduce_range``); the variant records it.

Mixed precision (:mod:`sr_export.mixed_precision`): when quantizing every conv fails the gate (the
shipped 32-channel model: RMSE 0.107 K, the error of some 20 INT8 layers adding up), each big conv
is quantized alone, its error measured on the calibration fields, and only the convs that give
the most FLOPs per unit of error within the RMSE limit run in INT8 (for the shipped model: the
largest upsampling conv and the one-hot shuffle feeding it); the result faces the same gate.

The gate (:func:`accuracy_gate`) refuses the variant unless its RMSE against the FP32 model is
at most 0.05 K and, where HR truth is available, its PSNR against the truth is at most 0.1 dB
below the FP32 model's. The precision, calibration, gate and measured speed are recorded in the
variant's metadata under :data:`sr_runtime.engines.variants.VARIANT_KEY`.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from sr_export.calibration import (  # noqa: F401 - part of this module's interface
    DEFAULT_CALIBRATION_STEPS,
    DEFAULT_GATE_STEPS,
    SYNTHETIC,
    GateData,
    default_calibration_times,
    load_calibration,
    load_gate_data,
    parse_times,
)
from sr_export.gate import (  # noqa: F401 - part of this module's interface
    MAX_PSNR_DROP_DB,
    MAX_RMSE_K,
    GateResult,
    accuracy_gate,
    refuse_static,
)
from sr_runtime.description import LR_INPUT, ModelDescription
from sr_runtime.engines.onnxruntime import open_session
from sr_runtime.engines.tuning import machine_fingerprint
from sr_runtime.engines.variants import PRECISION_INT8, VARIANT_FORMAT, VARIANT_KEY
from sr_runtime.errors import AccuracyGateError, UsageError

#: Mixed precision: a conv with a smaller share of the FLOPs stays FP32.
MIN_FLOP_SHARE = 0.05
#: Mixed precision: the share of the gate's RMSE limit the calibration-set error may use (the
#: gate, on held-out data, still has the last word).
CALIBRATION_BUDGET = 1.0


@dataclass(frozen=True)
class QuantizeReport:
    out: Path
    gate: GateResult
    record: dict[str, object] = field(default_factory=dict)

    @property
    def speedup(self) -> float | None:
        speed = self.record.get("speed") or {}
        return speed.get("speedup") if isinstance(speed, dict) else None  # type: ignore[return-value]


def _description(proto: onnx.ModelProto, origin: str) -> ModelDescription:
    return ModelDescription.from_metadata({p.key: p.value for p in proto.metadata_props}, origin)


def fp32_nodes(proto: onnx.ModelProto) -> list[str]:
    """Names of the nodes kept in FP32; only the network's trunk between them is quantized.

    The INT8 region is every node the tail's first conv depends on (the conv after the last
    LeakyRelu/PRelu/Relu; in an optimized export the tail's wide 1x1 or 1 x k conv), that conv
    included, except the head: nodes computed from the input without a Conv (the normalization
    ``Sub``/``Div``) and the convs that read those directly (the first 9x9 conv), so the kelvin
    input is never rounded to 256 levels. Everything else stays FP32: the one-hot shifts and the
    tap sum after the tail's 1x1 conv (the output is a sum of 25 dequantized products, not one
    8-bit value), the last DepthToSpace, a bicubic upsampling skip wherever the exporter puts
    it, and the denormalization ``Mul``/``Add``.
    """
    nodes = list(proto.graph.node)
    convs = [i for i, n in enumerate(nodes) if n.op_type == "Conv"]
    activations = [i for i, n in enumerate(nodes) if n.op_type in ("LeakyRelu", "PRelu", "Relu")]
    after = [i for i in convs if activations and i > activations[-1]]
    if not after:
        raise UsageError("the model has no conv after an activation; only sr-edge SRResNet "
                         "exports can be quantized")
    producer = {t: i for i, n in enumerate(nodes) for t in n.output}
    head_tensors = {i.name for i in proto.graph.input} | {i.name for i in proto.graph.initializer}
    head: set[int] = set()
    for i, node in enumerate(nodes):  # topological order: inputs come first
        if node.op_type != "Conv" and all(t in head_tensors or not t for t in node.input):
            head.add(i)
            head_tensors.update(node.output)
    first_layer = {i for i in convs if nodes[i].input[0] in head_tensors}
    trunk: set[int] = set()
    stack = [after[0]]
    while stack:  # ancestors of the tail's first conv
        i = stack.pop()
        if i in trunk or i in head or i in first_layer:
            continue
        trunk.add(i)
        stack.extend(producer[t] for t in nodes[i].input if t in producer)
    keep = [n for i, n in enumerate(nodes) if i not in trunk]
    if any(not n.name for n in keep) or any(not nodes[i].name for i in trunk):
        raise UsageError("the model has unnamed nodes; re-export it with `sr-export to-onnx`")
    return [n.name for n in keep]


def has_vnni() -> bool:
    isa = set(machine_fingerprint()["isa"])
    return bool(isa & {"avx512_vnni", "avx_vnni", "amx_int8"})


class _Reader:
    """ONNX Runtime's CalibrationDataReader protocol over a list of (1, C, h, w) fields, or of
    whole feeds (input name -> array) for a model that takes more than the LR field."""

    def __init__(self, fields: Sequence[np.ndarray | Mapping[str, np.ndarray]]) -> None:
        self._items = iter([
            dict(f) if isinstance(f, Mapping) else
            {LR_INPUT: np.ascontiguousarray(f[None] if f.ndim == 3 else f, dtype=np.float32)}
            for f in fields])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)

    def rewind(self) -> None:  # pragma: no cover - not used by MinMax
        pass


def quantize_to_proto(model: Path, calibration: Sequence[np.ndarray | Mapping[str, np.ndarray]],
                      reduce_range: bool | None = None,
                      keep_fp32: Sequence[str] | None = None,
                      int8_nodes: Sequence[str] | None = None) -> tuple[onnx.ModelProto, dict]:
    """QDQ INT8 graph of ``model`` calibrated on ``calibration`` fields (or whole feeds); and the
    recipe used.

    ``int8_nodes``: quantize only these nodes (mixed precision, see :func:`mixed_precision_convs`);
    by default every node but :func:`fp32_nodes` (or ``keep_fp32``).
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    if not len(calibration):
        raise UsageError("no calibration fields: give --calib-times that exist in the source")
    proto = onnx.load(str(model))
    excluded = list(fp32_nodes(proto) if keep_fp32 is None else keep_fp32)
    reduce_range = (not has_vnni()) if reduce_range is None else reduce_range
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer warns about pre-processing on the root logger
    try:
        with tempfile.TemporaryDirectory(prefix="sr-edge-quantize-") as scratch:
            out = Path(scratch) / "model.int8.onnx"
            quantize_static(
                str(model), str(out), _Reader(calibration), quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                per_channel=True, reduce_range=reduce_range, nodes_to_exclude=excluded,
                nodes_to_quantize=list(int8_nodes) if int8_nodes is not None else None,
                calibrate_method=CalibrationMethod.MinMax,
                extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
            )
            quantized = onnx.load(str(out))
    finally:
        root.setLevel(level)
    recipe = {"format": "QDQ", "activations": "uint8 asymmetric per tensor",
              "weights": f"int8 symmetric per channel, {7 if reduce_range else 8} bits"
                         + (" (reduce_range: this CPU has no VNNI)" if reduce_range else ""),
              "calibration_method": "MinMax", "fp32_nodes": excluded}
    if int8_nodes is not None:
        recipe["int8_nodes"] = list(int8_nodes)
    return quantized, recipe


def _predict(session, lr: np.ndarray, batch: int = 8) -> np.ndarray:
    parts = [session.run(None, {LR_INPUT: np.ascontiguousarray(lr[i:i + batch])})[0]
             for i in range(0, lr.shape[0], batch)]
    return np.concatenate(parts)


def _session(path_or_bytes: str | bytes):

    return open_session(path_or_bytes if isinstance(path_or_bytes, bytes)
                        else Path(path_or_bytes))


def _time_session(session, lr: np.ndarray, repeats: int = 3) -> float:
    session.run(None, {LR_INPUT: lr})
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, {LR_INPUT: lr})
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def measure_speed(reference, candidate, lr: np.ndarray, rounds: int = 7,
                  pause: float = 0.2) -> dict[str, object]:
    """Median ms per call of both sessions on ``lr``, alternating them to share any noise.

    Each call follows a short idle ``pause``: ONNX Runtime's worker threads spin for a while
    after a run and would otherwise steal the cores from the other session's next call.
    """
    fp32, variant = [], []
    for _ in range(rounds):
        time.sleep(pause)
        fp32.append(_time_session(reference, lr, 1))
        time.sleep(pause)
        variant.append(_time_session(candidate, lr, 1))
    a, b = float(np.median(fp32)), float(np.median(variant))
    return {"input_shape": list(lr.shape), "fp32_ms": round(a * 1e3, 2),
            "variant_ms": round(b * 1e3, 2), "speedup": round(a / b, 3),
            "machine": machine_fingerprint(), "measured_at": _now()}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def quantize_int8(model: Path, out: Path, calibration: Sequence[np.ndarray], gate_data: GateData,
                  *, max_rmse: float = MAX_RMSE_K, max_psnr_drop: float = MAX_PSNR_DROP_DB,
                  calibration_label: str = "", reduce_range: bool | None = None,
                  keep_fp32: Sequence[str] | None = None, mixed: bool = True) -> QuantizeReport:
    """Quantize, gate and write ``out`` only if the gate passes (else AccuracyGateError).

    If quantizing every conv of the INT8 region fails the gate and ``mixed`` is on (and no
    ``keep_fp32`` was given), only the convs :func:`mixed_precision_convs` picks on the
    calibration fields are quantized, and that variant faces the same gate.
    """
    from sr_export.checkpoints import sha256_file
    from sr_export.onnx_export import set_metadata, write_atomically

    model, out = Path(model), Path(out)
    if not model.is_file():
        raise UsageError(f"model not found: {model}")
    if not out.parent.is_dir():
        raise UsageError(f"output folder {out.parent} does not exist; create it first")
    source_proto = onnx.load(str(model))
    description = _description(source_proto, str(model))
    refuse_static(description, model, "quantize")
    variant_record = {p.key for p in source_proto.metadata_props if p.key == VARIANT_KEY}
    if variant_record:
        raise UsageError(f"{model} is already a reduced-precision variant; quantize the FP32 "
                         "model it came from")
    reference = _session(str(model))
    expected = _predict(reference, gate_data.lr)
    units = description.variables[0].units

    def gated(proto: onnx.ModelProto):
        set_metadata(proto, description)
        session = _session(proto.SerializeToString())
        return session, accuracy_gate(expected, _predict(session, gate_data.lr),
                                      gate_data.truth, max_rmse=max_rmse,
                                      max_psnr_drop=max_psnr_drop,
                                      truth_label=gate_data.label, note=gate_data.note)

    quantized, recipe = quantize_to_proto(model, calibration, reduce_range, keep_fp32)
    candidate, gate = gated(quantized)
    mixed_note = ""
    if not gate.passed and mixed and keep_fp32 is None:
        from sr_export.mixed_precision import mixed_precision_convs

        chosen, search = mixed_precision_convs(model, calibration, max_rmse, reduce_range)
        search["full_int8_gate"] = gate.summary(units)
        mixed_note = (f" Quantizing every conv failed it ({gate.summary(units)}), and so did "
                      f"mixed precision") if chosen else (
                      f" Quantizing every conv failed it, and no conv of at least "
                      f"{MIN_FLOP_SHARE:.0%} of the FLOPs stays within the error budget alone")
        if chosen:
            quantized, recipe = quantize_to_proto(model, calibration, reduce_range,
                                                  int8_nodes=search["int8_nodes"])
            recipe["mixed_precision"] = search
            candidate, gate = gated(quantized)
    if not gate.passed:
        raise AccuracyGateError(f"INT8 variant refused: {gate.summary(units)}; {out} was not "
                                f"written, so {model.name} (FP32) stays in use.{mixed_note}. "
                                "Calibrating on other times (--calib-times) may help if the "
                                "gate failed only narrowly; loosening --max-rmse/--max-psnr-drop "
                                "trades accuracy for speed")
    speed = measure_speed(reference, candidate, np.ascontiguousarray(gate_data.lr[:1]))
    record = {
        "format": VARIANT_FORMAT,
        "precision": PRECISION_INT8,
        "source": model.name,
        "source_sha256": sha256_file(model),
        "quantization": recipe,
        "calibration": {"source": calibration_label, "fields": len(calibration),
                        "shape": list(np.asarray(calibration[0]).shape),
                        # inputs far outside this range saturate the INT8 activations
                        "lr_range": [round(float(min(np.min(f) for f in calibration)), 3),
                                     round(float(max(np.max(f) for f in calibration)), 3)]},
        "gate": gate.to_dict(),
        "speed": speed,
        "created": _now(),
    }
    entry = quantized.metadata_props.add()
    entry.key, entry.value = VARIANT_KEY, json.dumps(record, sort_keys=True)
    entry = quantized.metadata_props.add()
    entry.key, entry.value = "precision", PRECISION_INT8
    onnx.checker.check_model(quantized)
    write_atomically(quantized.SerializeToString(), out)
    return QuantizeReport(out, gate, record)


def default_output(model: Path) -> Path:
    model = Path(model)
    return model.with_name(model.name.removesuffix(".onnx") + ".int8.onnx")
