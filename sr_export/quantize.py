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

Mixed precision (:func:`mixed_precision_convs`): when quantizing every conv fails the gate (the
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
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx

from sr_runtime.description import LR_INPUT, ModelDescription
from sr_runtime.engines.tuning import machine_fingerprint
from sr_runtime.engines.variants import PRECISION_INT8, VARIANT_FORMAT, VARIANT_KEY
from sr_runtime.errors import AccuracyGateError, SourceError, UsageError

MAX_RMSE_K = 0.05
MAX_PSNR_DROP_DB = 0.1
DEFAULT_CALIBRATION_STEPS = 24
DEFAULT_GATE_STEPS = 16
#: Mixed precision: a conv with a smaller share of the FLOPs stays FP32.
MIN_FLOP_SHARE = 0.05
#: Mixed precision: the share of the gate's RMSE limit the calibration-set error may use (the
#: gate, on held-out data, still has the last word).
CALIBRATION_BUDGET = 1.0
SYNTHETIC = "synthetic"


@dataclass(frozen=True)
class GateResult:
    """The variant against the FP32 model and, when available, against HR truth."""

    rmse_vs_fp32: float
    max_abs_vs_fp32: float
    max_rmse: float
    samples: int
    input_shape: tuple[int, ...]
    psnr_fp32: float | None = None
    psnr_variant: float | None = None
    max_psnr_drop: float = MAX_PSNR_DROP_DB
    truth: str = ""
    note: str = ""

    @property
    def psnr_drop(self) -> float | None:
        if self.psnr_fp32 is None or self.psnr_variant is None:
            return None
        return self.psnr_fp32 - self.psnr_variant

    failures: tuple[str, ...] = ()  # from :class:`sr_runtime.compare.GateRule`

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self, units: str = "K") -> str:
        text = (f"RMSE vs FP32 {self.rmse_vs_fp32:.4f} {units} (limit {self.max_rmse} {units}), "
                f"max abs {self.max_abs_vs_fp32:.3f} {units}")
        drop = self.psnr_drop
        if drop is not None:
            text += (f"; PSNR vs HR truth {self.psnr_variant:.2f} dB, FP32 {self.psnr_fp32:.2f} "
                     f"dB, drop {drop:.3f} dB (limit {self.max_psnr_drop} dB)")
        if self.note:
            text += f"; {self.note}"
        return f"{text}: {'PASSED' if self.passed else 'FAILED'}"

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data.update(psnr_drop=self.psnr_drop, passed=self.passed)
        return data


@dataclass(frozen=True)
class QuantizeReport:
    out: Path
    gate: GateResult
    record: dict[str, object] = field(default_factory=dict)

    @property
    def speedup(self) -> float | None:
        speed = self.record.get("speed") or {}
        return speed.get("speedup") if isinstance(speed, dict) else None  # type: ignore[return-value]


@dataclass(frozen=True)
class GateData:
    """LR inputs for the gate and, optionally, the matching HR truth (both physical units)."""

    lr: np.ndarray
    truth: np.ndarray | None = None
    label: str = ""
    note: str = ""


def _description(proto: onnx.ModelProto, origin: str) -> ModelDescription:
    return ModelDescription.from_metadata({p.key: p.value for p in proto.metadata_props}, origin)


def fp32_nodes(proto: onnx.ModelProto) -> list[str]:
    """Names of the nodes kept in FP32; only the network's trunk between them is quantized.

    The INT8 region is every node the tail's first conv depends on (the conv after the last
    LeakyRelu/PRelu/Relu; in an optimized export the tail's wide 1x1 conv), that conv included,
    except the head: nodes computed from the input without a Conv (the normalization
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
    """ONNX Runtime's CalibrationDataReader protocol over a list of (1, C, h, w) fields."""

    def __init__(self, fields: Sequence[np.ndarray]) -> None:
        self._items = iter([{LR_INPUT: np.ascontiguousarray(f[None] if f.ndim == 3 else f,
                                                            dtype=np.float32)}
                            for f in fields])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)

    def rewind(self) -> None:  # pragma: no cover - not used by MinMax
        pass


def quantize_to_proto(model: Path, calibration: Sequence[np.ndarray],
                      reduce_range: bool | None = None,
                      keep_fp32: Sequence[str] | None = None,
                      int8_nodes: Sequence[str] | None = None) -> tuple[onnx.ModelProto, dict]:
    """QDQ INT8 graph of ``model`` calibrated on ``calibration`` fields; and the recipe used.

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


def conv_flops(proto: onnx.ModelProto, lr: np.ndarray) -> dict[str, float]:
    """FLOPs of every Conv/ConvTranspose node of ``proto`` on input ``lr`` (one run, FP32)."""
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(proto)
    convs = [n for n in probe.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    known = {o.name for o in probe.graph.output}
    for node in convs:
        if node.output[0] not in known:
            probe.graph.output.append(onnx.ValueInfoProto(name=node.output[0]))
    weights = {i.name: tuple(i.dims) for i in probe.graph.initializer}
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
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


def _predict(session, lr: np.ndarray, batch: int = 8) -> np.ndarray:
    parts = [session.run(None, {LR_INPUT: np.ascontiguousarray(lr[i:i + batch])})[0]
             for i in range(0, lr.shape[0], batch)]
    return np.concatenate(parts)


def _session(path_or_bytes: str | bytes):
    import onnxruntime as ort

    from sr_runtime.engines.onnxruntime import session_options

    return ort.InferenceSession(path_or_bytes, session_options(),
                                providers=["CPUExecutionProvider"])


def accuracy_gate(reference: np.ndarray, candidate: np.ndarray, truth: np.ndarray | None = None,
                  *, max_rmse: float = MAX_RMSE_K, max_psnr_drop: float = MAX_PSNR_DROP_DB,
                  truth_label: str = "", note: str = "") -> GateResult:
    """Compare a reduced-precision output with the FP32 output (and both with HR truth)."""
    from sr_runtime.compare import GateRule, compare

    vs_fp32 = compare(reference, candidate, with_ssim=False)
    truth_reference = truth_candidate = None
    if truth is not None:
        if truth.shape != reference.shape:
            raise UsageError(f"HR truth {truth.shape} does not match the model output "
                             f"{reference.shape}; use the HR store that matches the LR source")
        truth_reference = compare(truth, reference, with_ssim=False)
        truth_candidate = compare(truth, candidate, with_ssim=False)
    elif not note:
        note = "no HR truth: gated against FP32 only"
    failures = GateRule(rmse=max_rmse, psnr_drop=max_psnr_drop).failures(
        vs_fp32, truth_reference=truth_reference, truth_candidate=truth_candidate)
    return GateResult(vs_fp32.rmse, vs_fp32.max_abs, max_rmse, int(reference.shape[0]),
                      tuple(reference.shape),
                      truth_reference.psnr if truth_reference else None,
                      truth_candidate.psnr if truth_candidate else None, max_psnr_drop,
                      truth_label, note, tuple(failures))


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


def default_calibration_times(count: int = DEFAULT_CALIBRATION_STEPS) -> np.ndarray:
    """``count`` hours spread over the sample's training period (all hours of day covered)."""
    from sr_runtime.sample.times import training_times

    times = training_times()
    index = np.linspace(0, times.size - 1, count).round().astype(int)
    return times[index]


def parse_times(text: str | None) -> np.ndarray | None:
    """Comma-separated ISO times (``2024-10-02T06,2024-10-05T18``), or None for the default."""
    if not text:
        return None
    try:
        return np.array([np.datetime64(t.strip(), "ns") for t in text.split(",") if t.strip()])
    except ValueError as exc:
        raise UsageError(f"--calib-times must be comma-separated ISO times such as "
                         f"2024-10-02T06,2024-10-05T18 ({exc})") from exc


def _fields(ds, description: ModelDescription, times: np.ndarray, label: str) -> np.ndarray:
    missing = [v for v in description.variable_names if v not in ds.data_vars]
    if missing:
        raise UsageError(f"{label} has no variable {', '.join(missing)} which the model needs")
    absent = np.setdiff1d(times, ds.time.values)
    if absent.size:
        raise UsageError(f"{label} has no data at {np.datetime_as_string(absent[0], 'h')} "
                         f"({absent.size} of {times.size} times missing); pick times inside "
                         f"{np.datetime_as_string(ds.time.values[0], 'h')} .. "
                         f"{np.datetime_as_string(ds.time.values[-1], 'h')}")
    data = np.stack([ds[v].sel(time=times).values.astype(np.float32)
                     for v in description.variable_names], axis=1)
    if not np.all(np.isfinite(data)):
        raise SourceError(f"{label} has missing values at the requested times; pick others")
    return data


def load_calibration(source: str, description: ModelDescription, times: np.ndarray | None = None,
                     ) -> tuple[list[np.ndarray], str]:
    """LR fields (1, C, h, w) in physical units from a DataCube, or synthetic fields."""
    if source == SYNTHETIC:
        from sr_export.onnx_export import sample_input

        lr = sample_input(description, shape=(32, 32), batch=DEFAULT_CALIBRATION_STEPS, seed=11)
        return [lr[i:i + 1] for i in range(lr.shape[0])], "synthetic smooth fields"
    from sr_runtime.sources.registry import resolve_source

    resolved = resolve_source(source)
    ds = resolved.open()
    times = default_calibration_times() if times is None else times
    data = _fields(ds, description, times, resolved.label)
    first, last = np.datetime_as_string(times[0], "h"), np.datetime_as_string(times[-1], "h")
    return [data[i:i + 1] for i in range(data.shape[0])], \
        f"{resolved.label}: {times.size} times {first} .. {last}"


def load_gate_data(source: str, description: ModelDescription, truth: str | None,
                   steps: int = DEFAULT_GATE_STEPS) -> GateData:
    """Held-out LR fields and their HR truth where a truth store exists; else FP32-only."""
    from sr_export.onnx_export import sample_input

    if source == SYNTHETIC:
        return GateData(sample_input(description, shape=(32, 32), batch=4, seed=23),
                        note="synthetic inputs, no HR truth: gated against FP32 only")
    from sr_runtime.defaults import sample_hr_store
    from sr_runtime.sample.times import held_out_times
    from sr_runtime.sources.registry import resolve_source

    resolved = resolve_source(source)
    ds = resolved.open()
    truth_spec = truth or (str(sample_hr_store()) if source == "sample" else None)
    hr = None
    if truth_spec is not None:
        try:
            hr = resolve_source(truth_spec).open()
        except SourceError:
            hr = None
    candidates = np.intersect1d(held_out_times(), ds.time.values)
    if hr is not None:
        candidates = np.intersect1d(candidates, hr.time.values)
    if candidates.size == 0:
        candidates = ds.time.values[-steps:]
    times = candidates[np.linspace(0, candidates.size - 1, min(steps, candidates.size))
                       .round().astype(int)]
    lr = _fields(ds, description, times, resolved.label)
    if hr is None:
        return GateData(lr, None, "", "no HR truth store found: gated against FP32 only")
    hr_fields = _fields(hr, description, times, truth_spec)
    return GateData(lr, hr_fields, truth_spec)
