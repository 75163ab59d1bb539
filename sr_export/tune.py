"""``sr-export tune``: time a model and its variants on this machine, store ``model.tune.json``.

For each candidate tile (LR core cells) the engine runs on a window of ``tile + 2 * halo`` cells,
as the halo tiler feeds it, and the useful throughput is the core's HR pixels per second. The
best tile and each variant's speed at its best tile land in ``model.tune.json`` (format in
:mod:`sr_runtime.engines.tuning`), which ``sr-run`` reads through
:func:`sr_runtime.engines.tuning.tuned_tile` and :func:`sr_runtime.engines.variants.select_variant`.

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

from sr_runtime.description import LR_INPUT, ModelDescription
from sr_runtime.engines.tuning import TUNE_FORMAT, machine_fingerprint
from sr_runtime.engines.variants import discover_variants
from sr_runtime.errors import UsageError

DEFAULT_TILES = (32, 64, 96, 128, 192, 256)
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


def _field(description: ModelDescription, size: int, seed: int = 0) -> np.ndarray:
    from sr_runtime.synthetic import sample_input

    return sample_input(description, shape=(size, size), batch=1, seed=seed)


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


def tune_model(model: Path, *, tiles: Sequence[int] | None = None, repeats: int = 3,
               max_memory_mb: float | None = None, threads: int | None = None,
               progress: Callable[[str], None] | None = None) -> dict[str, object]:
    """Time every usable variant of ``model`` at each tile; the ``model.tune.json`` record."""
    from sr_runtime.engines.onnxruntime import physical_cores, read_description

    model = Path(model)
    description = read_description(model)
    variants = [v for v in discover_variants(model) if v.usable]
    sessions = {v.path.name: _session(v.path, threads) for v in variants}
    halo, scale = description.halo_lr, description.scale
    results: dict[str, list[TileTiming]] = {name: [] for name in sessions}
    for tile in candidate_tiles(description, tiles, max_memory_mb):
        window = tile + 2 * halo
        lr = _field(description, window)
        slowest = 0.0
        for session in sessions.values():
            session.run(None, {LR_INPUT: lr})  # warm-up: plans this shape's memory
        samples: dict[str, list[float]] = {name: [] for name in sessions}
        for _ in range(max(1, repeats)):
            for name, session in sessions.items():  # interleaved: noise hits all alike
                start = time.perf_counter()
                session.run(None, {LR_INPUT: lr})
                samples[name].append(time.perf_counter() - start)
        for name, values in samples.items():
            seconds = float(np.median(values))
            slowest = max(slowest, seconds)
            timing = TileTiming(tile, window, seconds * 1e3, (tile * scale) ** 2 / seconds / 1e6)
            results[name].append(timing)
            if progress:
                progress(f"{name}: tile {tile} (window {window}): {timing.ms:.0f} ms, "
                         f"{timing.hr_mpix_s:.3f} HR Mpix/s")
        if slowest > MAX_SECONDS_PER_RUN:
            break

    entries = {}
    for variant in variants:
        timings = results[variant.path.name]
        best = max(timings, key=lambda t: t.hr_mpix_s)
        entries[variant.path.name] = {
            "precision": variant.precision, "gate": variant.why, "best_tile": best.tile,
            "hr_mpix_s": round(best.hr_mpix_s, 4), "tiles": [t.to_dict() for t in timings]}
    best_name = max(entries, key=lambda n: entries[n]["hr_mpix_s"])  # type: ignore[arg-type, return-value]
    return {
        "sr_edge_tune": TUNE_FORMAT,
        "model": model.name,
        "machine": machine_fingerprint(),
        "threads": threads or physical_cores(),
        "halo_lr": halo,
        "scale": scale,
        "best_variant": best_name,
        "best_tile": entries[best_name]["best_tile"],
        "variants": entries,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_tune(record: dict[str, object], model: Path) -> Path:
    """Write ``model.tune.json`` beside ``model`` (the runtime's one writer of the record)."""
    from sr_runtime.engines.tuning import write_tune_record

    return write_tune_record(record, Path(model))


def summary(record: dict[str, object]) -> str:
    lines = [f"best: {record['best_variant']} with tile {record['best_tile']} LR cells "
             f"(halo {record['halo_lr']}, {record['threads']} threads)",
             "| variant | tile | window | ms | HR Mpix/s |", "| --- | ---: | ---: | ---: | ---: |"]
    for name, entry in record["variants"].items():  # type: ignore[union-attr]
        for t in entry["tiles"]:
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
                  threads: int | None = None) -> NodeProfile:
    """Per-node time split of ``runs`` inferences on ``lr`` (after one warm-up)."""

    from sr_runtime.engines.onnxruntime import open_session, session_options

    options = session_options(threads)
    options.enable_profiling = True
    with tempfile.TemporaryDirectory(prefix="sr-edge-profile-") as scratch:
        options.profile_file_prefix = os.path.join(scratch, "ort")
        session = open_session(model if isinstance(model, bytes) else Path(model),
                               options=options)
        for _ in range(runs + 1):
            session.run(None, {LR_INPUT: lr})
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
