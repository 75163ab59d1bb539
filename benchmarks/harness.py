"""The benchmark harness: interleaved throughput, accuracy and end-to-end timings -> one JSON.

Speed is measured interleaved: in every round each backend runs ``repeats`` times per tile size,
the order of the backends rotating from round to round, so that a burst of load from another
process on this shared machine hits all backends alike. A backend's speed figure is the median
over rounds of (its throughput / PyTorch eager FP32 NCHW throughput in the same round); absolute
times are reported but never gated. PyTorch and ONNX Runtime both run in this one process with
the same number of intra-op threads (the physical cores) and one inter-op thread.

Accuracy is measured in physical units (K): every backend against PyTorch FP32 (parity) and,
when the embedded sample is installed, against the HR truth on its held-out times (skill), with
nearest and bicubic as references (:func:`sr_export.evaluate.evaluate`).

    python -m benchmarks.harness --profile quick   # -> benchmarks/results/latest/quick.json

Test-only switches, read here and never by shipped code: ``SR_EDGE_TEST_SLOW_BACKEND=NAME``
runs that backend's inference twice per call (a deliberately slowed path: half the throughput),
``--perturb-weights SIGMA`` perturbs the exported ONNX weights (parity degrades), and
``--ort-graph-opt LEVEL`` opens ONNX Runtime sessions at another optimization level. Note that
``--ort-graph-opt disable`` is no reliable slowdown: on 32 x 32 tiles, one thread, ONNX Runtime
runs faster without its graph optimizations (its NCHWc layout costs more than it saves there),
on 128 x 128 tiles about 25 % slower.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from benchmarks.models import (
    CI,
    DEMO,
    SHIPPED,
    TINY,
    ModelFiles,
    ModelSpec,
    prepare,
    shipped_missing_reason,
    spec_dict,
)
from sr_runtime.engines.base import EngineBase

SCHEMA = 1
BASELINE_BACKEND = "torch"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
#: Where runs write their results by default: ignored by git, so CI never changes a tracked file.
LATEST_DIR = RESULTS_DIR / "latest"
SLOW_BACKEND_ENV = "SR_EDGE_TEST_SLOW_BACKEND"
ORT_OPT_LEVELS = ("all", "extended", "basic", "disable")
MODEL_SPECS = {spec.name: spec for spec in (DEMO, CI, TINY, SHIPPED)}


@dataclass(frozen=True)
class ModelRun:
    spec: ModelSpec
    speed: bool = True
    accuracy: bool = True
    backends: tuple[str, ...] = ()  # empty: the profile's


#: The in-run reference: the last accepted ONNX artefact of a model, run by a pinned plain
#: ONNX Runtime session (see :class:`ReferenceEngine`). The candidate ``onnxruntime`` backend
#: is a fresh export by the current code run through the shipped engine; their ratio is ~1 on
#: any CPU while nothing changed, so it gates speed where no baseline of the CPU class exists.
REFERENCE_BACKEND = "reference"
REFERENCE_TWIN = "onnxruntime"
REFERENCE_DIR = Path(__file__).resolve().parent / "reference"


@dataclass(frozen=True)
class Profile:
    """What one run measures. ``quick`` is the CI gate; ``full`` feeds the README."""

    name: str
    models: tuple[ModelRun, ...]
    tiles: tuple[int, ...] = (32, 128)
    rounds: int = 7
    repeats: int = 3
    warmup: int = 2
    backends: tuple[str, ...] = ()  # empty: every backend discovered
    threads: int = 0  # intra-op threads of every backend; 0: the physical cores
    clock: str = "wall"  # what speed ratios use: "wall" or "cpu" (process CPU time)
    skill: bool = True
    skill_step_hours: int = 3
    endtoend: bool = False
    endtoend_repeats: int = 3


# The gate profiles run one thread per backend and compare process CPU time: on a shared
# 2-core machine, multi-threaded kernels lose a varying share of their time to preempted threads
# (PyTorch's 2-thread time doubled under load while its 1-thread time held), and wall time
# counts the time a process waits for a core (ONNX Runtime's 1-thread wall time varied 4.5x
# between two runs at load 6 on 2 cores, PyTorch's not), so single-thread CPU-time ratios are
# the stable ones. The full profile (README figures) uses the physical cores and wall time.
PROFILES = {
    "quick": Profile("quick", (ModelRun(CI), ModelRun(SHIPPED)),
                     tiles=(32, 64), rounds=5, repeats=2, warmup=1, threads=1, clock="cpu"),
    "full": Profile("full", (ModelRun(DEMO), ModelRun(SHIPPED)), rounds=5, repeats=2,
                    endtoend=True),
    "selftest": Profile("selftest", (ModelRun(TINY),), tiles=(32,), rounds=5, repeats=2,
                        warmup=1, backends=("torch", "onnxruntime", "reference"), skill=False,
                        threads=1, clock="cpu"),
}


# ---------------------------------------------------------------------------------- backends


@dataclass
class Backend:
    name: str
    label: str
    precision: str
    engine: object  # sr_runtime.engines.base.Engine


class TwiceEngine(EngineBase):
    """Test-only slowed path: runs the wrapped engine twice per call."""

    def __init__(self, engine) -> None:
        self.engine, self.name, self.description = engine, engine.name, engine.description
        self.model_file_sha256 = getattr(engine, "model_file_sha256", "")

    def infer(self, lr: np.ndarray) -> np.ndarray:
        self.engine.infer(lr)
        return self.engine.infer(lr)


def ort_engine(path: Path, name: str, threads: int, opt_level: str = "all"):
    """The shipped ONNX Runtime engine; ``opt_level`` other than 'all' is a test-only slowdown."""
    from sr_runtime.engines.onnxruntime import OnnxRuntimeEngine

    engine = OnnxRuntimeEngine(path, name=name, threads=threads)
    if opt_level != "all":
        import onnxruntime as ort

        levels = {"extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                  "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                  "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL}
        options = ort.SessionOptions()
        options.graph_optimization_level = levels[opt_level]
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        engine.session = ort.InferenceSession(str(path), sess_options=options,
                                              providers=["CPUExecutionProvider"])
    return engine


class ReferenceEngine(EngineBase):
    """The pinned reference: a plain ONNX Runtime CPU session on the last accepted artefact.

    Its options are fixed here (those accepted with the artefact: every graph optimization,
    ``threads`` intra-op threads, sequential, memory arena and patterns), independent of
    :func:`sr_runtime.engines.onnxruntime.session_options`, so that a change there shows up as
    the candidate moving away from this engine.
    """

    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        from sr_runtime.description import ModelDescription

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.enable_cpu_mem_arena = True
        options.enable_mem_pattern = True
        self.path, self.name = Path(path), REFERENCE_BACKEND
        self.model_file_sha256 = ""
        self.session = ort.InferenceSession(str(path), sess_options=options,
                                            providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.description = ModelDescription.from_metadata(
            self.session.get_modelmeta().custom_metadata_map, str(path))

    def infer(self, lr: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: np.ascontiguousarray(lr, np.float32)})[0]


def discover_backends(files: ModelFiles, threads: int, opt_level: str = "all",
                      wanted: tuple[str, ...] = ()) -> tuple[list[Backend], dict[str, str]]:
    """Every backend and precision variant usable here, from the engine registry.

    ``torch`` gives PyTorch eager FP32 NCHW (the baseline) and channels_last; ``onnxruntime``
    gives ONNX Runtime CPU FP32 and the FP16 graph of :mod:`sr_runtime.engines.tensorrt.fp16`;
    any other registered backend (GPU) is loaded through the registry when usable.
    """
    from sr_export.torch_engine import TorchEngine
    from sr_runtime.engines.registry import ENGINES, load_engine

    found: list[Backend] = []
    skipped: dict[str, str] = {}

    def add(name: str, label: str, precision: str, make: Callable[[], object]) -> None:
        if wanted and name not in wanted:
            return
        try:
            found.append(Backend(name, label, precision, make()))
        except Exception as exc:
            skipped[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"

    for registered, spec in ENGINES.items():
        reason = spec.available()
        if registered == "torch":
            if reason:
                skipped["torch"] = reason
                continue
            add("torch", "PyTorch eager FP32, NCHW (baseline)", "fp32",
                lambda: TorchEngine(files.checkpoint))
            add("torch-channels-last", "PyTorch eager FP32, channels_last", "fp32",
                lambda: TorchEngine(files.checkpoint, channels_last=True))
        elif registered == "onnxruntime":
            if reason:
                skipped["onnxruntime"] = reason
                continue
            add("onnxruntime", "ONNX Runtime CPU FP32", "fp32",
                lambda: ort_engine(files.onnx, "onnxruntime", threads, opt_level))
            if wanted and REFERENCE_BACKEND not in wanted:
                pass
            elif files.reference is None:
                skipped[REFERENCE_BACKEND] = files.reference_skip_reason
            else:
                add(REFERENCE_BACKEND, f"reference: {files.reference.name}, pinned plain ONNX "
                    "Runtime session", "fp32",
                    lambda: ReferenceEngine(files.reference, threads))
            if files.fp16 is None:
                skipped["onnxruntime-fp16"] = files.fp16_skip_reason
            else:
                add("onnxruntime-fp16", "ONNX Runtime CPU, FP16 graph (FP32 islands)", "fp16",
                    lambda fp16=files.fp16: ort_engine(fp16, "onnxruntime-fp16", threads,
                                                       opt_level))
        elif wanted and registered not in wanted:
            continue
        elif reason:
            skipped[registered] = reason
        else:
            add(registered, f"{registered} (registry)", "see engine",
                lambda name=registered: load_engine(name, files.onnx).engine)
    if not any(b.name == BASELINE_BACKEND for b in found):
        raise SystemExit(f"the baseline backend {BASELINE_BACKEND!r} is not usable "
                         f"({skipped.get(BASELINE_BACKEND, 'not requested')}); speed ratios "
                         "need it: pip install 'sr-edge[export]'")
    return found, skipped


# ------------------------------------------------------------------------------------ speed


def lr_input(description, tile: int, batch: int = 1, seed: int = 0) -> np.ndarray:
    from sr_export.onnx_export import sample_input

    return sample_input(description, shape=(tile, tile), batch=batch, seed=seed)


def measure_speed(backends: list[Backend], tiles: tuple[int, ...], rounds: int, repeats: int,
                  warmup: int, scale: int, flops_per_lr_pixel: int, clock: str = "wall",
                  log: Callable[[str], None] = print) -> dict[str, dict[str, object]]:
    """Interleaved rounds; per backend and tile: median ms, HR Mpix/s, GFLOP/s, ratio.

    Both the wall time and the process CPU time of every call are recorded; ``clock`` says
    which one the ratio (and the gate) uses. Mpix/s and GFLOP/s are always from wall time.
    """
    description = backends[0].engine.description
    inputs = {tile: lr_input(description, tile) for tile in tiles}
    wall: dict[tuple[str, int], list[float]] = {}
    cpu: dict[tuple[str, int], list[float]] = {}
    for tile in tiles:
        for backend in backends:
            for _ in range(warmup):
                backend.engine.infer(inputs[tile])
    for r in range(rounds):
        for tile in tiles:
            order = backends[r % len(backends):] + backends[:r % len(backends)]
            for backend in order:
                walls, cpus = [], []
                for _ in range(repeats):
                    cpu0, wall0 = time.process_time(), time.perf_counter()
                    backend.engine.infer(inputs[tile])
                    walls.append(time.perf_counter() - wall0)
                    cpus.append(time.process_time() - cpu0)
                # the fastest repeat is the one least disturbed by other processes
                wall.setdefault((backend.name, tile), []).append(min(walls))
                cpu.setdefault((backend.name, tile), []).append(min(cpus))
        log(f"  round {r + 1}/{rounds} done")

    gated = cpu if clock == "cpu" else wall
    names = {b.name for b in backends}
    speed: dict[str, dict[str, object]] = {}
    for tile in tiles:
        base = gated[(BASELINE_BACKEND, tile)]
        hr_pixels = (tile * scale) ** 2
        for backend in backends:
            seconds = wall[(backend.name, tile)]
            ratios = [b / s for b, s in zip(base, gated[(backend.name, tile)], strict=True)]
            median_s = statistics.median(seconds)
            row: dict[str, object] = {
                "backend": backend.name, "tile": tile, "precision": backend.precision,
                "median_ms": 1e3 * median_s,
                "round_ms": [round(1e3 * s, 3) for s in seconds],
                "cpu_ms": 1e3 * statistics.median(cpu[(backend.name, tile)]),
                "hr_mpix_s": hr_pixels / median_s / 1e6,
                "gflop_s": flops_per_lr_pixel * tile * tile / median_s / 1e9,
                "ratio_clock": clock,
                "ratio_vs_torch": statistics.median(ratios),
                "ratio_spread": [min(ratios), max(ratios)],
            }
            if backend.name == REFERENCE_TWIN and REFERENCE_BACKEND in names:
                # the same round's reference call: candidate vs last accepted artefact
                reference = gated[(REFERENCE_BACKEND, tile)]
                ab = [r / s for r, s in zip(reference, gated[(backend.name, tile)], strict=True)]
                row["ratio_vs_reference"] = statistics.median(ab)
                row["ratio_vs_reference_spread"] = [min(ab), max(ab)]
            speed[f"{backend.name}@{tile}"] = row
    return speed


# --------------------------------------------------------------------------------- accuracy


class RecordingEngine(EngineBase):
    """Wraps an engine and keeps every output, so one pass serves skill and parity."""

    def __init__(self, engine) -> None:
        self.engine, self.name, self.description = engine, engine.name, engine.description
        self.model_file_sha256 = getattr(engine, "model_file_sha256", "")
        self.outputs: list[np.ndarray] = []

    def infer(self, lr: np.ndarray) -> np.ndarray:
        out = self.engine.infer(lr)
        self.outputs.append(out)
        return out


def sample_missing_reason() -> str | None:
    from sr_runtime.defaults import sample_hr_store, sample_lr_store

    missing = [p.name for p in (sample_lr_store(), sample_hr_store()) if not p.exists()]
    if missing:
        return f"sample stores absent ({', '.join(missing)} under sr_runtime/data/sample/)"
    try:
        from sr_runtime.sample.times import held_out_times  # noqa: F401
    except ImportError as exc:
        return f"sr_runtime.sample.times.held_out_times unavailable ({exc})"
    return None


def open_sample(step_hours: int):
    """(lr_ds, hr_ds, held-out times with HR truth) of the embedded sample."""
    import xarray as xr

    from sr_runtime.defaults import sample_hr_store, sample_lr_store
    from sr_runtime.sample.times import held_out_times

    lr_ds = xr.open_zarr(sample_lr_store())
    hr_ds = xr.open_zarr(sample_hr_store())
    wanted = held_out_times(step_hours)
    times = np.intersect1d(wanted, hr_ds.time.values.astype("datetime64[ns]"))
    times = np.intersect1d(times, lr_ds.time.values.astype("datetime64[ns]"))
    return lr_ds, hr_ds, times


def parity_scores(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """Candidate vs PyTorch FP32 through the one comparator (:mod:`sr_runtime.compare`)."""
    from sr_runtime.compare import compare

    result = compare(reference, candidate)
    return {"rmse": result.rmse, "max_abs": result.max_abs, "psnr": result.psnr,
            "ssim": result.ssim if result.ssim is not None else float("nan"),
            "data_range": float(reference.max() - reference.min()),
            "nonfinite": result.nonfinite}


def measure_accuracy(backends: list[Backend], skill: bool, step_hours: int,
                     log: Callable[[str], None] = print) -> dict[str, object]:
    """Parity against PyTorch FP32 and skill against HR truth, in K."""
    reason = sample_missing_reason() if skill else "skill not measured in this profile"
    outputs: dict[str, np.ndarray] = {}
    result: dict[str, object] = {"parity": {}, "skill": {}, "skill_skipped": reason}
    if reason is None:
        from sr_export.evaluate import evaluate

        lr_ds, hr_ds, times = open_sample(step_hours)
        first = np.datetime_as_string(times[0], "h")
        last = np.datetime_as_string(times[-1], "h")
        result["input"] = (f"sample held-out times: {times.size} steps every {step_hours} h, "
                           f"{first} .. {last}")
        from sr_runtime.metrics import score

        skill: dict[str, dict[str, float]] = {}
        evaluation = None
        truth = hr_ds["t2m"].sel(time=times).values.astype(np.float32)[:, None]
        for backend in backends:
            recorder = RecordingEngine(backend.engine)
            if evaluation is None:  # references and the first backend, as sr-export reports
                evaluation = evaluate(recorder, lr_ds, hr_ds, times)
                for name, scores in evaluation.scores.items():
                    key = backend.name if name.startswith("sr-edge model") else name
                    skill[key] = scores.as_dict()
            else:  # the same metrics on the other backends' predictions
                lr = lr_ds["t2m"].sel(time=times).values.astype(np.float32)[:, None]
                for i in range(lr.shape[0]):
                    recorder.infer(lr[i:i + 1])
                skill[backend.name] = score(np.concatenate(recorder.outputs), truth,
                                            evaluation.data_range).as_dict()
            outputs[backend.name] = np.concatenate(recorder.outputs)
            log(f"  skill {backend.name}: RMSE {skill[backend.name]['rmse']:.3f} K")
        result["skill"] = skill
        result["skill_data_range"] = evaluation.data_range
    else:
        description = backends[0].engine.description
        lr = lr_input(description, 64, batch=4, seed=1)
        result["input"] = "synthetic smooth fields, 4 x 64 x 64 LR (sample absent)"
        for backend in backends:
            outputs[backend.name] = np.concatenate(
                [backend.engine.infer(lr[i:i + 1]) for i in range(lr.shape[0])])
    reference = outputs[BASELINE_BACKEND]
    result["parity"] = {name: parity_scores(reference, out) for name, out in outputs.items()
                        if name != BASELINE_BACKEND}
    return result


# ------------------------------------------------------------------------------- end to end


def _median_wall(command: list[str], repeats: int, env: dict[str, str]) -> dict[str, object]:
    walls = []
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        walls.append(time.perf_counter() - started)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return {"error": f"exit {done.returncode}: {' | '.join(tail)}"}
    return {"median_ms": 1e3 * statistics.median(walls), "runs_ms": [1e3 * w for w in walls]}


def measure_endtoend(files: ModelFiles, workdir: Path, repeats: int) -> dict[str, object]:
    """`sr-run` wall time for one time step (subprocess) and CLI start-up (`sr-run --help`)."""
    sr_run = shutil.which("sr-run") or str(Path(sys.executable).with_name("sr-run"))
    if not Path(sr_run).exists():
        return {"skipped": "sr-run is not installed (pip install -e .)"}
    if sample_missing_reason() is None:
        source, when, source_label = "sample", "2024-10-25T00:00", "embedded sample (32x32 LR)"
    else:
        source = str(write_synthetic_store(workdir / "lr.zarr"))
        when, source_label = "2024-10-11T00:00", "synthetic EDH-layout store, 32x32 LR"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = workdir / "sr.tif"
    result: dict[str, object] = {"source": source_label, "model": files.spec.name}
    result["startup (sr-run --help)"] = _median_wall([sr_run, "--help"], repeats, env)
    common = ["--time", when, "--out", str(out), "--source", source, "--overwrite"]
    result["sr-run onnxruntime"] = _median_wall(
        [sr_run, *common, "--model", str(files.onnx), "--backend", "onnxruntime"], repeats, env)
    result["sr-run torch"] = _median_wall(
        [sr_run, *common, "--model", str(files.checkpoint), "--backend", "torch"], repeats, env)
    return result


def write_synthetic_store(path: Path) -> Path:
    """A 32 x 32 LR Earth Data Hub-layout store (real EDH coordinates) for `sr-run`."""
    import xarray as xr

    lat = np.linspace(-90, 90, 512)[365:397]
    lon = np.linspace(-180, 180, 1025)[527:559]
    times = np.datetime64("2024-10-11T00", "ns") + np.arange(2) * np.timedelta64(1, "h")
    yy, xx = np.meshgrid(lat, lon, indexing="ij")
    values = (283.0 + 3 * np.sin(xx / 2) + 2 * np.cos(yy / 3))[None].repeat(2, 0)
    ds = xr.Dataset({"t2m": (("time", "latitude", "longitude"), values.astype(np.float32),
                             {"units": "K", "standard_name": "air_temperature"})},
                    coords={"time": times, "latitude": lat, "longitude": lon})
    ds.to_zarr(path, mode="w", consolidated=True)
    return path


# ------------------------------------------------------------------------------------- run


@dataclass
class RunSettings:
    profile: Profile
    ort_graph_opt: str = "all"
    perturb_weights: float = 0.0
    slow_backend: str = ""
    threads: int = 0
    notes: list[str] = field(default_factory=list)
    workdir: Path | None = None  # keeps exported models between runs; default: a temporary one
    reference_dir: Path = REFERENCE_DIR
    drop_rewrite: str = ""  # test-only: export the candidate without this graph rewrite
    adopt_reference: bool = False  # make each fresh export the reference (baseline update)


def machine_info(threads: int) -> dict[str, object]:
    """The machine (CPU model, ISA flags, cores, CPU class, library versions) and threads."""
    from sr_runtime.machine import machine_info as describe

    info = describe()
    return {**info.to_dict(), "cpu": info.cpu_model, "threads": threads, **info.libraries}


def adopt_reference(files: ModelFiles, reference_dir: Path,
                    log: Callable[[str], None]) -> ModelFiles:
    """Accept ``files.onnx`` (the fresh export) as the model's reference artefact."""
    if files.spec.shipped:
        raise ValueError("the shipped model's reference is the committed model itself")
    reference_dir.mkdir(parents=True, exist_ok=True)
    target = reference_dir / f"{files.spec.name}.onnx"
    from sr_runtime.paths import write_atomically

    write_atomically(files.onnx.read_bytes(), target)
    log(f"  reference artefact {target} <- this run's export")
    return replace(files, reference=target, reference_skip_reason="")


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


@contextlib.contextmanager
def _workdir(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="sr-edge-bench-") as tmp:
        yield Path(tmp)


def run(settings: RunSettings, log: Callable[[str], None] = print) -> dict[str, object]:
    """Run a profile and return the results dictionary (see ``benchmarks/README.md``)."""
    import torch

    previous_threads = torch.get_num_threads()
    try:
        return _run(settings, log)
    finally:
        torch.set_num_threads(previous_threads)


def _run(settings: RunSettings, log: Callable[[str], None]) -> dict[str, object]:
    import torch

    from sr_runtime.engines.onnxruntime import physical_cores

    profile = settings.profile
    threads = settings.threads or profile.threads or physical_cores()
    torch.set_num_threads(threads)
    results: dict[str, object] = {
        "schema": SCHEMA, "profile": profile.name,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(threads),
        "load_average_start": load_average(),
        "settings": {"tiles": list(profile.tiles), "rounds": profile.rounds,
                     "repeats": profile.repeats, "warmup": profile.warmup, "threads": threads,
                     "ratio_clock": profile.clock,
                     "ort_graph_opt": settings.ort_graph_opt,
                     "perturb_weights": settings.perturb_weights,
                     "slow_backend": settings.slow_backend,
                     "drop_rewrite": settings.drop_rewrite,
                     "reference_dir": str(settings.reference_dir)},
        "models": {}, "skipped_models": {}, "notes": list(settings.notes),
    }
    started = time.perf_counter()
    with _workdir(settings.workdir) as work:
        for model_run in profile.models:
            spec = model_run.spec
            if spec.shipped and (reason := shipped_missing_reason()):
                results["skipped_models"][spec.name] = reason
                log(f"skip {spec.name}: {reason}")
                continue
            log(f"model {spec.label()}")
            files = prepare(spec, work / spec.name, settings.perturb_weights,
                            settings.reference_dir, settings.drop_rewrite)
            if settings.adopt_reference and not spec.shipped:
                files = adopt_reference(files, settings.reference_dir, log)
            backends, skipped = discover_backends(files, threads, settings.ort_graph_opt,
                                                  model_run.backends or profile.backends)
            if settings.slow_backend:
                names = [b.name for b in backends]
                if settings.slow_backend not in names:
                    raise SystemExit(f"{SLOW_BACKEND_ENV}={settings.slow_backend!r} names no "
                                     f"backend of this run ({', '.join(names)})")
                for b in backends:
                    if b.name == settings.slow_backend:
                        b.engine = TwiceEngine(b.engine)
            scale = backends[0].engine.description.scale
            entry: dict[str, object] = {
                **spec_dict(spec), "flops_per_lr_pixel": files.flops_per_lr_pixel,
                "scale": scale,
                "backends": {b.name: {"label": b.label, "precision": b.precision}
                             for b in backends},
                "skipped_backends": skipped,
            }
            if model_run.speed:
                log(f"  speed: {', '.join(b.name for b in backends)} at tiles {profile.tiles}")
                entry["speed"] = measure_speed(
                    backends, profile.tiles, profile.rounds, profile.repeats, profile.warmup,
                    scale, files.flops_per_lr_pixel, profile.clock, log)
            if model_run.accuracy:
                log("  accuracy")
                entry["accuracy"] = measure_accuracy(backends, profile.skill,
                                                     profile.skill_step_hours, log)
            if profile.endtoend and not spec.shipped:
                log("  end to end (sr-run subprocess)")
                entry["endtoend"] = measure_endtoend(files, work, profile.endtoend_repeats)
            results["models"][spec.name] = entry
    results["load_average_end"] = load_average()
    results["wall_s"] = round(time.perf_counter() - started, 1)
    return results


def settings_from_args(args: argparse.Namespace) -> RunSettings:
    profile = PROFILES[args.profile]
    if getattr(args, "models", None):
        unknown = [m for m in args.models.split(",") if m not in MODEL_SPECS]
        if unknown:
            raise SystemExit(f"unknown model {unknown[0]!r}; choose from "
                             f"{', '.join(MODEL_SPECS)}")
        profile = replace(profile, models=tuple(ModelRun(MODEL_SPECS[m])
                                                for m in args.models.split(",")))
    if getattr(args, "rounds", None):
        profile = replace(profile, rounds=args.rounds)
    notes = []
    slow = os.environ.get(SLOW_BACKEND_ENV, "")
    if slow:
        notes.append(f"{SLOW_BACKEND_ENV}={slow}: that backend runs twice per call "
                     "(test-only slowdown)")
    if args.ort_graph_opt != "all":
        notes.append(f"ONNX Runtime graph optimization level {args.ort_graph_opt} (test-only)")
    if args.perturb_weights:
        notes.append(f"ONNX weights perturbed by {args.perturb_weights} x std (test-only)")
    if args.drop_rewrite:
        notes.append(f"candidate exported without the {args.drop_rewrite} rewrite (test-only)")
    return RunSettings(profile, args.ort_graph_opt, args.perturb_weights, slow, args.threads,
                       notes, args.workdir, args.reference_dir or REFERENCE_DIR,
                       args.drop_rewrite)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick",
                        help="quick: the CI gate (32 ch / 4 blocks model, 1 thread); full: the "
                             "demo model, the shipped model and sr-run end to end")
    parser.add_argument("--models", help="comma-separated model names overriding the "
                                         f"profile's ({', '.join(MODEL_SPECS)})")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (median taken over them)")
    parser.add_argument("--threads", type=int, default=0,
                        help="intra-op threads for every backend [the profile's]")
    parser.add_argument("--ort-graph-opt", choices=ORT_OPT_LEVELS, default="all",
                        help=argparse.SUPPRESS)  # test-only
    parser.add_argument("--perturb-weights", type=float, default=0.0,
                        help=argparse.SUPPRESS)  # test-only accuracy regression
    parser.add_argument("--workdir", type=Path, help="keep exported models here between runs "
                        "[a temporary folder]")
    parser.add_argument("--reference-dir", type=Path, help="the last accepted ONNX artefacts "
                        "the candidate export is timed against [benchmarks/reference]")
    parser.add_argument("--drop-rewrite", default="", help=argparse.SUPPRESS)  # test-only


def write_results(results: dict[str, object], out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, allow_nan=True) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.harness",
                                     description=__doc__.split("\n\n")[0])
    add_run_arguments(parser)
    parser.add_argument("--out", type=Path, help="results JSON "
                        "[benchmarks/results/latest/<profile>.json]")
    args = parser.parse_args(argv)
    settings = settings_from_args(args)
    results = run(settings)
    out = args.out or LATEST_DIR / f"{settings.profile.name}.json"
    print(f"wrote {write_results(results, out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
