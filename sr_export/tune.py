"""``sr-export tune``: time a model and its variants on this machine, store ``model.tune.json``.

For each candidate tile (LR core cells) the engine runs on a window of ``tile + 2 * halo`` cells,
as the halo tiler feeds it, and the useful throughput is the core's HR pixels per second. The
best tile and each variant's speed at its best tile land in ``model.tune.json`` (format in
:mod:`sr_runtime.engines.tuning`), which ``sr-run`` reads through
:func:`sr_runtime.engines.tuning.tuned_tile` and :func:`sr_runtime.engines.choice.choose_engine`.

Candidates are every gated way to run the model here (:mod:`sr_runtime.engines.choice`): ONNX
Runtime on the FP32 model and its variants, OpenVINO FP32 and, on a BF16 CPU, OpenVINO BF16.
OpenVINO is gated before it is timed (FP32: parity with ONNX Runtime; BF16: the accuracy gate of
:mod:`sr_export.gate`), its LATENCY and THROUGHPUT configurations are both timed, and the gate
and the configuration chosen land in its entry, which the engine reads back.

:func:`profile_nodes` reports where ONNX Runtime spends its time, node by node (ONNX Runtime's
own profiler), which is how the rewrites in :mod:`sr_export.rewrites` were chosen.
"""

from __future__ import annotations

import collections
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sr_export.calibration import GateData
from sr_runtime.description import LR_INPUT, ModelDescription
from sr_runtime.engines.tuning import TUNE_FORMAT, candidate_key, machine_fingerprint
from sr_runtime.engines.variants import (
    MIN_SPEEDUP,
    PRECISION_BF16,
    PRECISION_FP32,
    Variant,
    discover_variants,
)
from sr_runtime.errors import UsageError

DEFAULT_TILES = (32, 64, 96, 128, 192, 256)
#: Interleaved rounds per tile, and idle seconds before each timed call: ONNX Runtime's threads
#: spin after a run, and a loaded machine must not pick a candidate by noise (an earlier tune
#: chose INT8 at 1.12x from three noisy repeats).
DEFAULT_REPEATS = 7
DEFAULT_PAUSE = 0.2
#: Stop growing the tile once one run of a window takes longer than this (seconds).
MAX_SECONDS_PER_RUN = 20.0


@dataclass(frozen=True)
class TileTiming:
    tile: int
    window: int
    ms: float
    hr_mpix_s: float

    def to_dict(self) -> dict[str, float]:
        return {"tile": self.tile, "window": self.window, "ms": round(self.ms, 2),
                "hr_mpix_s": round(self.hr_mpix_s, 4)}


def _session(path: Path, threads: int | None):

    from sr_runtime.engines.onnxruntime import open_session

    return open_session(Path(path), threads=threads)


#: A timed call: the LR window and the model's other named inputs (static HR fields), if any.
Runner = Callable[..., np.ndarray]


def _field(description: ModelDescription, size: int, seed: int = 0
           ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A synthetic ``size`` x ``size`` LR window (clock channels included) and the model's
    other named inputs (its static HR fields, if any)."""
    from sr_runtime.synthetic import sample_feed

    feed = sample_feed(description, shape=(size, size), batch=1, seed=seed)
    return feed.pop(LR_INPUT), feed


def parse_tiles(text: str | None) -> list[int] | None:
    """``"32,64,128"`` -> [32, 64, 128]; None or empty -> None (the defaults)."""
    if not text:
        return None
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError as exc:
        raise UsageError(f"--tiles must be comma-separated integers such as 32,64,128, not "
                         f"{text!r}") from exc


def candidate_tiles(description: ModelDescription, tiles: Sequence[int] | None,
                    max_memory_mb: float | None) -> list[int]:
    """The tiles to time: the given ones, or the defaults that fit the memory budget."""
    if tiles:
        chosen = sorted({int(t) for t in tiles})
        if chosen[0] < 1:
            raise UsageError(f"tile sizes must be positive, not {chosen[0]}")
        return chosen
    from sr_runtime.tiling import MIN_TILE, tile_for_budget

    try:
        limit = tile_for_budget(description, max_memory_mb)
    except UsageError:
        limit = MIN_TILE
    return [t for t in DEFAULT_TILES if t <= limit] or [max(MIN_TILE, min(limit, 32))]


@dataclass
class _Timed:
    """One thing ``tune`` times: a candidate (tune record key) in one engine configuration."""

    key: str
    variant: Variant
    run: Runner  # run(lr, **named inputs)
    config: str = ""  # OpenVINO "HINT/streams"; "" for ONNX Runtime
    hint: str = ""
    streams: int = 0


def _openvino_configs(threads: int) -> list[tuple[str, int]]:
    """LATENCY with one stream (the default), and THROUGHPUT with a stream per thread."""
    configs = [("LATENCY", 1)]
    if threads > 1:
        configs.append(("THROUGHPUT", threads))
    return configs


def gate_openvino(model: Path, variant: Variant, gate_data: GateData, reference: np.ndarray,
                  threads: int | None) -> tuple[dict[str, object], object | None]:
    """OpenVINO at ``variant.precision`` against ONNX Runtime FP32 on the gate fields: FP32 by
    the parity tolerance, BF16 by the reduced-precision accuracy gate (and HR truth)."""
    from sr_export.gate import accuracy_gate
    from sr_runtime.compare import PARITY_TOLERANCE_K, GateRule, compare
    from sr_runtime.engines.openvino import OpenVinoEngine
    from sr_runtime.errors import SrEdgeError

    try:
        engine = OpenVinoEngine(model, threads=threads, precision=variant.precision,
                                hint="LATENCY", streams=1)
    except SrEdgeError as exc:
        return {"passed": False, "summary": str(exc)}, None
    output = np.concatenate([engine.infer(lr, **inputs) for lr, inputs in
                             (gate_data.inputs(i) for i in range(gate_data.lr.shape[0]))])
    if variant.precision == PRECISION_FP32:
        result = compare(reference, output, with_ssim=False)
        failures = GateRule(max_abs=PARITY_TOLERANCE_K).failures(result)
        gate: dict[str, object] = {"passed": not failures, "rmse_vs_fp32": result.rmse,
                                   "max_abs_vs_fp32": result.max_abs,
                                   "max_abs_limit": PARITY_TOLERANCE_K,
                                   "summary": f"parity vs ONNX Runtime FP32: {result.line()}"
                                   + (f": FAILED ({failures[0]})" if failures else ": PASSED")}
    else:
        found = accuracy_gate(reference, output, gate_data.truth, truth_label=gate_data.label,
                              note=gate_data.note)
        gate = {**found.to_dict(), "summary": found.summary()}
    return gate, engine if gate["passed"] else None


def _time_rounds(timed: list[_Timed], window: tuple[np.ndarray, dict[str, np.ndarray]],
                 rounds: int, pause: float) -> dict[str, list[float]]:
    """Seconds per call of each, interleaved round by round (the order rotates each round, and
    each call follows an idle ``pause``), so load on the machine hits all alike."""
    lr, inputs = window
    samples: dict[str, list[float]] = {t.key + t.config: [] for t in timed}
    for each in timed:
        each.run(lr, **inputs)  # warm-up: plans this shape's memory, compiles OpenVINO for it
    for round_ in range(max(1, rounds)):
        shift = round_ % len(timed)
        for each in timed[shift:] + timed[:shift]:
            if pause:
                time.sleep(pause)
            start = time.perf_counter()
            each.run(lr, **inputs)
            samples[each.key + each.config].append(time.perf_counter() - start)
    return samples


def tune_model(model: Path, *, tiles: Sequence[int] | None = None, repeats: int = DEFAULT_REPEATS,
               max_memory_mb: float | None = None, threads: int | None = None,
               progress: Callable[[str], None] | None = None, pause: float = DEFAULT_PAUSE,
               gate_data: GateData | None = None,
               openvino: bool = True) -> dict[str, object]:
    """Time every gated candidate of ``model`` at each tile; the ``model.tune.json`` record.

    Candidates: ONNX Runtime on the FP32 model and its gated variants, and (``openvino`` and
    the extra installed) OpenVINO FP32 and, on a CPU with native BF16, OpenVINO BF16, each in
    its LATENCY and THROUGHPUT configuration. OpenVINO is gated first on ``gate_data`` (default:
    synthetic fields, no HR truth): FP32 by the parity tolerance, BF16 by the accuracy gate;
    what fails is recorded, not timed. ``repeats`` interleaved rounds with ``pause`` seconds of
    idle before each call; medians. A model with static HR inputs or clock inputs is timed
    and gated with them (synthetic windows, ``gate_data``'s static fields); it has no INT8
    variants (``sr-export quantize`` refuses it), so its candidates are ONNX Runtime FP32 and
    OpenVINO.
    """
    from sr_export.calibration import synthetic_gate_data
    from sr_runtime.engines.onnxruntime import physical_cores, read_description
    from sr_runtime.engines.openvino import available, bf16_unavailable_reason

    model = Path(model)
    description = read_description(model)
    say = progress or (lambda _: None)
    variants = [v for v in discover_variants(model) if v.usable]
    timed = [_Timed(candidate_key(v.path.name, v.engine_name), v, _engine_runner(v.path, threads))
             for v in variants]
    gates: dict[str, dict[str, object]] = {}
    precisions: dict[str, str] = {}
    skipped: dict[str, str] = {}
    if openvino:
        if gate_data is None:
            gate_data = synthetic_gate_data(description)
        if description.static_inputs and gate_data.static is None:
            raise UsageError(f"{model.name} takes static HR fields: the gate data must hold "
                             "them (GateData.static)")
        reference = _ort_runner(_session(model, threads))
        expected = np.concatenate([reference(lr, **inputs) for lr, inputs in
                                   (gate_data.inputs(i) for i in range(gate_data.lr.shape[0]))])
        if gate_data.truth is not None and gate_data.truth.shape != expected.shape:
            gate_data = GateData(gate_data.lr, None, "", f"HR truth {gate_data.label} is not on "
                                 "this model's output grid: gated against FP32 only",
                                 gate_data.static)
        for precision in (PRECISION_FP32, PRECISION_BF16):
            variant = Variant(model, precision, True, "", backend="openvino")
            key = candidate_key(model.name, variant.engine_name)
            missing = available() or (bf16_unavailable_reason()
                                      if precision == PRECISION_BF16 else None)
            if missing:
                skipped[key] = missing
                say(f"{variant.label}: not measured ({missing})")
                continue
            gate, engine = gate_openvino(model, variant, gate_data, expected, threads)
            gates[key] = gate
            precisions[key] = precision
            say(f"{variant.label}: {gate['summary']}")
            if engine is None:
                continue
            from sr_runtime.engines.openvino import OpenVinoEngine

            for hint, streams in _openvino_configs(threads or physical_cores()):
                runner = engine if (hint, streams) == ("LATENCY", 1) else OpenVinoEngine(
                    model, threads=threads, precision=precision, hint=hint, streams=streams)
                timed.append(_Timed(key, variant, runner.infer, f"{hint}/{streams}", hint,
                                    streams))
    halo, scale = description.halo_lr, description.scale
    results: dict[str, list[TileTiming]] = {t.key + t.config: [] for t in timed}
    for tile in candidate_tiles(description, tiles, max_memory_mb):
        window = tile + 2 * halo
        samples = _time_rounds(timed, _field(description, window), repeats, pause)
        slowest = 0.0
        for each in timed:
            seconds = float(np.median(samples[each.key + each.config]))
            slowest = max(slowest, seconds)
            timing = TileTiming(tile, window, seconds * 1e3, (tile * scale) ** 2 / seconds / 1e6)
            results[each.key + each.config].append(timing)
            say(f"{each.variant.label}{' ' + each.config if each.config else ''}: tile {tile} "
                f"(window {window}): {timing.ms:.0f} ms, {timing.hr_mpix_s:.3f} HR Mpix/s")
        if slowest > MAX_SECONDS_PER_RUN:
            break

    entries: dict[str, dict[str, object]] = {}
    for each in timed:
        timings = results[each.key + each.config]
        best = max(timings, key=lambda t: t.hr_mpix_s)
        entry: dict[str, object] = {
            "backend": each.variant.backend, "precision": each.variant.precision,
            "file": each.variant.path.name, "best_tile": best.tile,
            "hr_mpix_s": round(best.hr_mpix_s, 4), "tiles": [t.to_dict() for t in timings]}
        if not each.config:
            entries[each.key] = {**entry, "gate": each.variant.why}
            continue
        entry.update(hint=each.hint, streams=each.streams, gate=gates[each.key])
        configs = {**(entries.get(each.key, {}).get("configs") or {}),  # type: ignore[dict-item]
                   each.config: entry["hr_mpix_s"]}
        held = entries.get(each.key)
        # another configuration replaces LATENCY/1 only by the same margin a variant needs
        if held is None or float(entry["hr_mpix_s"]) >= MIN_SPEEDUP * float(  # type: ignore[arg-type]
                held["hr_mpix_s"]):  # type: ignore[arg-type]
            held = entry
        entries[each.key] = {**held, "configs": configs}
    for key, gate in gates.items():
        if key not in entries:
            entries[key] = {"backend": "openvino", "file": model.name,
                            "precision": precisions[key], "gate": gate}
    base = entries[model.name]
    base_speed = float(base["hr_mpix_s"])  # type: ignore[arg-type]
    best_name = max((k for k, e in entries.items() if "hr_mpix_s" in e and (
                     k == model.name or float(e["hr_mpix_s"]) >= MIN_SPEEDUP * base_speed)),
                    key=lambda k: float(entries[k]["hr_mpix_s"]))  # type: ignore[arg-type]
    return {
        "sr_edge_tune": TUNE_FORMAT,
        "model": model.name,
        "machine": machine_fingerprint(),
        "threads": threads or physical_cores(),
        "halo_lr": halo,
        "scale": scale,
        "repeats": repeats,
        "pause_s": pause,
        "best_variant": best_name,
        "best_tile": entries[best_name]["best_tile"],
        "variants": entries,
        "not_measured": skipped,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _ort_runner(session) -> Runner:
    return lambda lr, **inputs: session.run(None, {LR_INPUT: lr, **inputs})[0]


def _engine_runner(path: Path, threads: int | None) -> Runner:
    """ONNX Runtime as ``sr-run`` runs it: a static model's static part once per set of static
    fields (every round feeds the same window), when its parts lie beside it."""
    from sr_runtime.engines.onnxruntime import OnnxRuntimeEngine

    return OnnxRuntimeEngine(Path(path), threads=threads).infer


def write_tune(record: dict[str, object], model: Path) -> Path:
    """Write ``model.tune.json`` beside ``model`` (the runtime's one writer of the record)."""
    from sr_runtime.engines.tuning import write_tune_record

    return write_tune_record(record, Path(model))


def summary(record: dict[str, object]) -> str:
    lines = [f"best: {record['best_variant']} with tile {record['best_tile']} LR cells "
             f"(halo {record['halo_lr']}, {record['threads']} threads)",
             "| variant | tile | window | ms | HR Mpix/s |", "| --- | ---: | ---: | ---: | ---: |"]
    for name, entry in record["variants"].items():  # type: ignore[union-attr]
        if "hr_mpix_s" not in entry:
            lines.append(f"| {name}: not timed ({entry['gate'].get('summary', '')}) | | | | |")
        for t in entry.get("tiles", []):
            mark = " *" if t["tile"] == entry["best_tile"] else ""
            lines.append(f"| {name}{mark} | {t['tile']} | {t['window']} | {t['ms']:.0f} | "
                         f"{t['hr_mpix_s']:.3f} |")
    return "\n".join(lines)


@dataclass(frozen=True)
class NodeProfile:
    """ONNX Runtime's per-node kernel times (ms per run), by node and by op type."""

    run_ms: float
    by_op: dict[str, float]
    by_node: list[tuple[str, str, str, float]]  # name, op type, output shape, ms

    def table(self, top: int = 8) -> str:
        total = sum(self.by_op.values()) or 1.0
        lines = [f"run {self.run_ms:.1f} ms (median); kernels {total:.1f} ms", "",
                 "| op type | ms | share |", "| --- | ---: | ---: |"]
        for op, ms in sorted(self.by_op.items(), key=lambda kv: -kv[1]):
            lines.append(f"| {op} | {ms:.2f} | {100 * ms / total:.1f} % |")
        lines += ["", "| node | op | output | ms | share |", "| --- | --- | --- | ---: | ---: |"]
        for name, op, shape, ms in self.by_node[:top]:
            lines.append(f"| {name} | {op} | {shape} | {ms:.2f} | {100 * ms / total:.1f} % |")
        return "\n".join(lines)


def profile_nodes(model: str | Path | bytes, lr: np.ndarray, *, runs: int = 3,
                  threads: int | None = None, inputs: dict[str, np.ndarray] | None = None
                  ) -> NodeProfile:
    """Per-node time split of ``runs`` inferences on ``lr`` and the model's other named
    ``inputs`` (static HR fields), after one warm-up."""

    from sr_runtime.engines.onnxruntime import open_session, session_options

    options = session_options(threads)
    options.enable_profiling = True
    with tempfile.TemporaryDirectory(prefix="sr-edge-profile-") as scratch:
        options.profile_file_prefix = os.path.join(scratch, "ort")
        session = open_session(model if isinstance(model, bytes) else Path(model),
                               options=options)
        for _ in range(runs + 1):
            session.run(None, {LR_INPUT: lr, **(inputs or {})})
        events = json.loads(Path(session.end_profiling()).read_text())
    run_times = [e["dur"] for e in events if e.get("name") == "model_run"][1:]
    nodes = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    # drop the warm-up run's nodes: the first len(nodes) / (runs + 1) events
    per_run = len(nodes) // (runs + 1) if nodes else 0
    nodes = nodes[per_run:]
    by_op: dict[str, float] = collections.defaultdict(float)
    by_node: dict[tuple[str, str, str], float] = collections.defaultdict(float)
    for event in nodes:
        args = event.get("args", {})
        op = args.get("op_name", "?")
        shapes = args.get("output_type_shape") or [{}]
        shape = "x".join(str(d) for d in next(iter(shapes[0].values()), [])) if shapes else ""
        by_op[op] += event["dur"] / 1e3 / runs
        by_node[(event["name"].removesuffix("_kernel_time"), op, shape)] += \
            event["dur"] / 1e3 / runs
    ranked = sorted(((n, o, s, ms) for (n, o, s), ms in by_node.items()), key=lambda r: -r[3])
    run_ms = float(np.median(run_times)) / 1e3 if run_times else math.nan
    return NodeProfile(run_ms, dict(by_op), ranked)
