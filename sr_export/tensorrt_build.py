"""ONNX -> TensorRT FP16 engine for TensorRT 10 and 11, accepted only if it passes an accuracy gate.

Precision recipes (chosen from the TensorRT version):

- TensorRT 10: ``BuilderFlag.FP16`` with ``OBEY_PRECISION_CONSTRAINTS`` pinning the input
  normalization (Sub, Div) and output denormalization (Mul, Add) to FP32: the graph takes physical
  kelvin (~280 K), where FP16 values are 0.25 K apart.
- TensorRT 11 (strongly typed only; the FP16 flag is gone): the ONNX graph is converted to FP16
  first, keeping the same nodes in FP32 (:mod:`sr_export.fp16`), and built strongly typed.

If the gate fails on RMSE, the build is retried with the final convolution in FP32 as well.
Every build is checked against PyTorch FP32 (from a checkpoint) or the validated FP32 ONNX model
run by ONNX Runtime CPU: RMSE <= 0.02 K, no NaN/Inf; max abs error, PSNR and SSIM are reported.
An engine that fails is never written. Each engine gets a fingerprint sidecar
(:mod:`sr_runtime.engines.fingerprint`). This module imports torch, onnx and tensorrt lazily.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sr_export.samples import sample_input as sample_tiles
from sr_runtime.description import LR_INPUT, ModelDescription
from sr_runtime.engines.fingerprint import (
    BuildEnvironment,
    EngineFingerprint,
    EngineRecord,
    Shape,
    ShapeProfile,
    runtime_profile,
    sha256_bytes,
    sidecar_path,
)
from sr_runtime.errors import AccuracyGateError, EngineUnavailableError, SrEdgeError, UsageError
from sr_runtime.paths import sha256_file, write_atomically

RMSE_LIMIT_K = 0.02
MIN_TENSORRT_MAJOR = 10

Reference = Callable[[np.ndarray], np.ndarray]
Report = Callable[[str], None]


class EngineBuildError(SrEdgeError):
    """TensorRT could not parse the model or build an engine for it."""


# --------------------------------------------------------------------------- profiles


_DIMS = re.compile(r"\s*(\d+)(?:\s*[x,]\s*(\d+))*\s*")


def _dims(text: str) -> list[int] | None:
    """``"128,128"`` / ``"1x1x128x128"`` -> integers; None when malformed."""
    if not _DIMS.fullmatch(text.lower()):
        return None
    return [int(part) for part in re.split(r"\s*[x,]\s*", text.strip().lower())]


def parse_tile(text: str) -> tuple[int, int]:
    """``"128,128"``, ``"128x128"`` or ``"128"`` -> (H, W) in LR pixels."""
    dims = _dims(text)
    if dims is not None and len(dims) == 1:
        dims = dims * 2
    if dims is None or len(dims) != 2 or min(dims) < 1:
        raise UsageError(f"--tile {text!r} is not H,W (two positive integers, e.g. 128,128)")
    return dims[0], dims[1]


def parse_shape(text: str, channels: int, batch: int, label: str) -> Shape:
    """``"H,W"`` / ``"HxW"`` (batch from --batch, channels from the model) or ``"NxCxHxW"``."""
    dims = _dims(text) or []
    if len(dims) == 2:
        dims = [batch, channels, *dims]
    if len(dims) != 4:
        raise UsageError(f"--{label} {text!r} is not a shape: give H,W (e.g. 128,128) or "
                         f"NxCxHxW (e.g. 1x{channels}x128x128)")
    if dims[1] != channels:
        raise UsageError(f"--{label} {text!r} has {dims[1]} channels, the model takes "
                         f"{channels}; give H,W to take the model's channel count")
    return (dims[0], dims[1], dims[2], dims[3])


def resolve_profile(channels: int, tile: str | tuple[int, int] | None = None,
                    min_shape: str | None = None, opt_shape: str | None = None,
                    max_shape: str | None = None, batch: int = 1) -> ShapeProfile:
    """The optimization profile: ``--tile`` (static), ``--min/--opt/--max``, or the default
    dynamic profile (any tile up to 256 x 256, tuned for 128 x 128; see ``runtime_profile``)."""
    if batch < 1:
        raise UsageError(f"--batch must be at least 1, not {batch}")
    explicit = [s is not None for s in (min_shape, opt_shape, max_shape)]
    if any(explicit):
        if tile is not None:
            raise UsageError("give either --tile (a static engine) or --min/--opt/--max "
                             "(a dynamic one), not both")
        if not all(explicit):
            raise UsageError("give --min, --opt and --max together (e.g. --min 32,32 --opt "
                             "128,128 --max 256,256)")
        return ShapeProfile(parse_shape(min_shape, channels, 1, "min"),  # type: ignore[arg-type]
                            parse_shape(opt_shape, channels, batch, "opt"),  # type: ignore[arg-type]
                            parse_shape(max_shape, channels, batch, "max"))  # type: ignore[arg-type]
    if tile is None:
        return runtime_profile(channels, None, batch)
    return runtime_profile(channels, parse_tile(tile) if isinstance(tile, str) else tile, batch)


# --------------------------------------------------------------------------- precision recipes


@dataclass(frozen=True)
class PrecisionRecipe:
    """How precision is obtained on a given TensorRT: the string lands in the fingerprint."""

    precision: str
    tensorrt_major: int
    builder_fp16_flag: bool = False  # TensorRT 10: BuilderFlag.FP16 + pinned FP32 layers
    onnx_fp16: bool = False  # TensorRT 11: convert the ONNX graph to FP16 with FP32 islands
    strongly_typed: bool = False
    keep_final_conv: bool = False


def tensorrt_major(version: str) -> int:
    """Major version from ``tensorrt.__version__`` ("10.11.0.33" -> 10); < 10 is refused."""
    match = re.match(r"\s*(\d+)", str(version))
    if not match:
        raise EngineUnavailableError(f"cannot read the TensorRT version {version!r}")
    major = int(match.group(1))
    if major < MIN_TENSORRT_MAJOR:
        raise EngineUnavailableError(f"TensorRT {version} is too old: sr-edge builds with "
                                     "TensorRT 10 or 11 (pip install -U 'tensorrt>=10')")
    return major


def choose_recipes(tensorrt_version: str, precision: str = "fp16") -> list[PrecisionRecipe]:
    """Recipes to try in order: FP16 with FP32 normalization, then also the final conv FP32."""
    major = tensorrt_major(tensorrt_version)
    if precision == "fp32":
        return [PrecisionRecipe("fp32", major, strongly_typed=major >= 11)]
    if precision != "fp16":
        raise UsageError(f"precision must be fp16 or fp32, not {precision!r}")
    if major >= 11:
        from sr_export.fp16 import CONVERTER_VERSION

        base = f"fp16:trt{major}-strongly-typed:{CONVERTER_VERSION}:fp32-io-normalization"
        return [PrecisionRecipe(base, major, onnx_fp16=True, strongly_typed=True),
                PrecisionRecipe(base + "+final-conv", major, onnx_fp16=True, strongly_typed=True,
                                keep_final_conv=True)]
    base = f"fp16:trt{major}-builder-flag:obey-precision-constraints:fp32-io-normalization"
    return [PrecisionRecipe(base, major, builder_fp16_flag=True),
            PrecisionRecipe(base + "+final-conv", major, builder_fp16_flag=True,
                            keep_final_conv=True)]


# --------------------------------------------------------------------------- accuracy gate


@dataclass(frozen=True)
class GateMetrics:
    """Candidate vs reference over all sample tiles, in the variable's units (K)."""

    rmse: float
    max_abs: float
    psnr_db: float
    ssim: float | None
    nonfinite: int  # NaN/Inf values in the candidate
    reference_nonfinite: int
    values: int


@dataclass(frozen=True)
class GateReport:
    metrics: GateMetrics
    rmse_limit: float
    passed: bool
    reason: str
    reference: str

    def summary(self, units: str = "K") -> str:
        m = self.metrics
        ssim = f"{m.ssim:.5f}" if m.ssim is not None else "n/a"
        verdict = "OK" if self.passed else f"FAILED ({self.reason})"
        return (f"accuracy vs {self.reference}: RMSE {m.rmse:.2e} {units} (limit "
                f"{self.rmse_limit:g} {units}), max abs {m.max_abs:.2e} {units}, PSNR "
                f"{m.psnr_db:.1f} dB, SSIM {ssim}: {verdict}")

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self.metrics), "rmse_limit": self.rmse_limit, "passed": self.passed,
                "reason": self.reason, "reference": self.reference}


def _ssim(reference: np.ndarray, candidate: np.ndarray, data_range: float) -> float | None:
    """Mean SSIM (``sr_runtime.metrics``); None for fields smaller than its window."""
    from sr_runtime.metrics import SSIM_WINDOW, ssim

    if min(reference.shape[-2:]) < SSIM_WINDOW:
        return None
    return ssim(candidate, reference, data_range)


def compare_outputs(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> GateMetrics:
    """Pure numpy: (reference, candidate) pairs of any shapes -> aggregated metrics."""
    squared = 0.0
    count = 0
    max_abs = 0.0
    nonfinite = reference_nonfinite = 0
    low, high = math.inf, -math.inf
    ssims = []
    for reference, candidate in pairs:
        ref = np.asarray(reference, dtype=np.float64)
        cand = np.asarray(candidate, dtype=np.float64)
        if ref.shape != cand.shape:
            raise ValueError(f"shapes differ: reference {ref.shape}, candidate {cand.shape}")
        bad = ~np.isfinite(cand)
        nonfinite += int(bad.sum())
        reference_nonfinite += int((~np.isfinite(ref)).sum())
        count += ref.size
        if bad.any() or not np.isfinite(ref).all():
            continue
        diff = cand - ref
        squared += float(np.sum(diff**2))
        max_abs = max(max_abs, float(np.max(np.abs(diff))))
        low, high = min(low, float(ref.min())), max(high, float(ref.max()))
        ssims.append(_ssim(ref, cand, max(high - low, 1e-12)))
    if nonfinite or reference_nonfinite or count == 0:
        return GateMetrics(math.inf, math.inf, -math.inf, None, nonfinite, reference_nonfinite,
                           count)
    rmse = math.sqrt(squared / count)
    data_range = max(high - low, 1e-12)
    psnr = math.inf if rmse == 0 else 20 * math.log10(data_range / rmse)
    known = [s for s in ssims if s is not None]
    return GateMetrics(rmse, max_abs, psnr, float(np.mean(known)) if known else None, 0, 0,
                       count)


def gate_decision(metrics: GateMetrics, rmse_limit: float = RMSE_LIMIT_K) -> tuple[bool, str]:
    """The gate's rule, free of any GPU: finite values and RMSE within the limit."""
    if metrics.reference_nonfinite:
        return False, (f"the reference produced {metrics.reference_nonfinite} non-finite values; "
                       "check the sample input")
    if metrics.nonfinite:
        return False, (f"{metrics.nonfinite} of {metrics.values} values are NaN/Inf (FP16 "
                       "overflow?)")
    if metrics.values == 0:
        return False, "no values were compared"
    if not metrics.rmse <= rmse_limit:
        return False, f"RMSE {metrics.rmse:.3g} K exceeds {rmse_limit:g} K"
    return True, "within limits"


def evaluate_gate(pairs: Sequence[tuple[np.ndarray, np.ndarray]], reference_name: str,
                  rmse_limit: float = RMSE_LIMIT_K) -> GateReport:
    metrics = compare_outputs(pairs)
    passed, reason = gate_decision(metrics, rmse_limit)
    return GateReport(metrics, rmse_limit, passed, reason, reference_name)


def gate_inputs(description: ModelDescription, profile: ShapeProfile) -> list[np.ndarray]:
    """Sample batches at the profile's opt shape and, if larger, its max shape."""
    inputs = [sample_tiles(description, profile.opt[2:], min(profile.opt[0], 2), seed=1)]
    if profile.max[2:] != profile.opt[2:]:
        inputs.append(sample_tiles(description, profile.max[2:], 1, seed=2))
    return inputs


def onnxruntime_reference(onnx_path: Path) -> Reference:
    """The validated FP32 ONNX model on ONNX Runtime CPU."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return lambda lr: session.run(None, {LR_INPUT: np.ascontiguousarray(lr, np.float32)})[0]


def torch_reference(loaded: object) -> Reference:
    """PyTorch FP32 on CPU, the un-folded network (needs the export extra)."""
    from sr_export.onnx_export import physical_model, torch_predict

    model = physical_model(loaded)  # type: ignore[arg-type]
    return lambda lr: torch_predict(model, lr)


# --------------------------------------------------------------------------- TensorRT build


def _make_progress_monitor(trt, report: Report, cancel: threading.Event):
    class _Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._phases: dict[str, tuple[int, int]] = {}

        def phase_start(self, phase_name, parent_phase, num_steps) -> None:
            self._phases[phase_name] = (0, int(num_steps))
            self._show(phase_name)

        def step_complete(self, phase_name, step) -> bool:
            total = self._phases.get(phase_name, (0, 0))[1]
            self._phases[phase_name] = (int(step) + 1, total)
            self._show(phase_name)
            return not cancel.is_set()

        def phase_finish(self, phase_name) -> None:
            self._phases.pop(phase_name, None)

        def _show(self, phase: str) -> None:
            done, total = self._phases.get(phase, (0, 0))
            report(f"building TensorRT engine: {phase} {done}/{total}")

    return _Monitor()


def _fp32_tensor_names(onnx_path: Path, keep_final_conv: bool) -> set[str]:
    """Output tensor names of the nodes to pin to FP32 (TensorRT keeps ONNX tensor names)."""
    import onnx

    from sr_export.fp16 import find_fp32_islands

    model = onnx.load(str(onnx_path), load_external_data=False)
    islands = find_fp32_islands(model, keep_final_conv)
    return {out for node in model.graph.node if node.name in islands.nodes for out in node.output}


def _pin_fp32_layers(trt, network, names: set[str], report: Report) -> None:
    found: set[str] = set()
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        outputs = [layer.get_output(j) for j in range(layer.num_outputs)]
        if any(out.name in names for out in outputs):
            layer.precision = trt.float32
            for j in range(layer.num_outputs):
                layer.set_output_type(j, trt.float32)
            found.update(out.name for out in outputs)
    if not found:
        raise EngineBuildError("found none of the normalization layers "
                               f"({', '.join(sorted(names))}) in the TensorRT network; this is "
                               "a bug in sr-edge, please report it with your TensorRT version")
    missing = names - found
    if missing:
        report(f"warning: no TensorRT layer produces {', '.join(sorted(missing))}; the "
               "accuracy gate decides")


def _write_fp16_onnx(onnx_path: Path, folder: Path, keep_final_conv: bool) -> Path:
    import onnx

    from sr_export.fp16 import convert_to_fp16

    converted, _ = convert_to_fp16(onnx.load(str(onnx_path)), keep_final_conv=keep_final_conv)
    out = folder / "model.fp16.onnx"
    large = converted.ByteSize() > 1_500_000_000
    onnx.save(converted, str(out), save_as_external_data=large)
    return out


def build_plan(trt, onnx_path: Path, recipe: PrecisionRecipe, profile: ShapeProfile, *,
               workspace_mb: int | None = None, timing_cache: Path | None = None,
               report: Report = lambda _: None, notice: Report | None = None) -> bytes:
    """One TensorRT build (no accuracy check). Parses from the file path (external data).

    ``report`` gets transient progress lines, ``notice`` the warnings worth keeping.
    """
    notice = notice or report
    from sr_runtime.engines.tensorrt import make_logger

    logger = make_logger(trt)
    cancel = threading.Event()
    with tempfile.TemporaryDirectory(prefix="sr-edge-trt-") as scratch:
        source = (_write_fp16_onnx(onnx_path, Path(scratch), recipe.keep_final_conv)
                  if recipe.onnx_fp16 else Path(onnx_path))
        builder = trt.Builder(logger)
        flags = 0
        strongly = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
        if recipe.strongly_typed and strongly is not None:
            flags |= 1 << int(strongly)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(source)):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)] or logger.errors
            raise EngineBuildError(f"TensorRT {trt.__version__} cannot parse {onnx_path}: "
                                   + "; ".join(errors[:3]))
        config = builder.create_builder_config()
        if workspace_mb:
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
        if recipe.builder_fp16_flag:
            config.set_flag(trt.BuilderFlag.FP16)
            config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
            _pin_fp32_layers(trt, network, _fp32_tensor_names(onnx_path, recipe.keep_final_conv),
                             notice)
        optimization = builder.create_optimization_profile()
        optimization.set_shape(LR_INPUT, profile.min, profile.opt, profile.max)
        config.add_optimization_profile(optimization)

        cache = None
        if timing_cache is not None:
            data = timing_cache.read_bytes() if timing_cache.is_file() else b""
            cache = config.create_timing_cache(data)
            if not config.set_timing_cache(cache, False):
                notice(f"warning: timing cache {timing_cache} is from another TensorRT or GPU; "
                       "starting a new one")
                cache = config.create_timing_cache(b"")
                config.set_timing_cache(cache, False)
        monitor = None  # referenced here so it lives as long as the build
        if hasattr(trt, "IProgressMonitor"):
            monitor = _make_progress_monitor(trt, report, cancel)
            config.progress_monitor = monitor
        else:
            report("building TensorRT engine (this TensorRT reports no progress)")
        try:
            plan = builder.build_serialized_network(network, config)
            del monitor
        except KeyboardInterrupt:
            cancel.set()
            raise
        if plan is None:
            detail = "; ".join(logger.errors[-3:]) or "no details from TensorRT"
            raise EngineBuildError(f"TensorRT could not build an engine for {onnx_path} with "
                                   f"profile {profile.describe()} ({detail}); try a smaller "
                                   "--max shape or a larger --workspace")
        if timing_cache is not None:
            serialized = config.get_timing_cache().serialize()
            timing_cache.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(bytes(serialized), timing_cache)
        return bytes(plan)


@dataclass(frozen=True)
class VerifiedBuild:
    plan: bytes
    fingerprint: EngineFingerprint
    recipe: PrecisionRecipe
    report: GateReport
    build_seconds: float


def build_verified(onnx_path: Path, description: ModelDescription, profile: ShapeProfile, *,
                   reference: Reference, reference_name: str, environment: BuildEnvironment,
                   recipes: Sequence[PrecisionRecipe], workspace_mb: int | None = None,
                   timing_cache: Path | None = None, rmse_limit: float = RMSE_LIMIT_K,
                   report: Report = lambda _: None,
                   notice: Report | None = None) -> VerifiedBuild:
    """Build with each recipe in turn until one passes the gate; raise if none does."""
    notice = notice or report
    from sr_runtime.engines.gpu_backends import require_tensorrt
    from sr_runtime.engines.tensorrt import TensorRTEngine

    trt = require_tensorrt()
    onnx_sha = sha256_file(onnx_path)
    inputs = gate_inputs(description, profile)
    expected = [reference(lr) for lr in inputs]
    failures = []
    for attempt, recipe in enumerate(recipes, 1):
        start = time.perf_counter()
        plan = build_plan(trt, onnx_path, recipe, profile, workspace_mb=workspace_mb,
                          timing_cache=timing_cache, report=report, notice=notice)
        seconds = time.perf_counter() - start
        report(f"checking the engine ({recipe.precision}) against {reference_name}")
        engine = TensorRTEngine(plan, description, origin="the new engine")
        try:
            pairs = [(ref, engine.infer(lr)) for ref, lr in zip(expected, inputs, strict=True)]
        finally:
            engine.close()
        gate = evaluate_gate(pairs, reference_name, rmse_limit)
        if gate.passed:
            fingerprint = EngineFingerprint.create(onnx_sha, environment, profile,
                                                   recipe.precision)
            return VerifiedBuild(plan, fingerprint, recipe, gate, seconds)
        failures.append(f"{recipe.precision}: {gate.summary(description.variables[0].units)}")
        if gate.metrics.nonfinite:
            break
        if attempt < len(recipes):
            notice(f"{recipe.precision} failed the accuracy gate ({gate.reason}); trying "
                   f"{recipes[attempt].precision}")
    raise AccuracyGateError("no TensorRT engine passed the accuracy gate, nothing was written: "
                            + " | ".join(failures))


def write_engine(out: Path, build: VerifiedBuild, description: ModelDescription,
                 onnx_path: Path | None) -> EngineRecord:
    """Plan and sidecar, each through a temporary file and a rename."""
    from sr_runtime import __version__

    out = Path(out)
    source = None
    if onnx_path is not None:
        onnx_path = Path(onnx_path)
        same_folder = onnx_path.resolve().parent == out.resolve().parent
        source = onnx_path.name if same_folder else str(onnx_path.resolve())
    record = EngineRecord(
        fingerprint=build.fingerprint, plan_sha256=sha256_bytes(build.plan),
        plan_bytes=len(build.plan), description=description, onnx_path=source,
        accuracy={**build.report.to_dict(), "build_seconds": round(build.build_seconds, 2)},
        tool=f"sr-edge {__version__}",
        built_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    write_atomically(build.plan, out)
    write_atomically(record.to_json().encode(), sidecar_path(out))
    return record


# --------------------------------------------------------------------------- sr-export to-trt


def onnx_description(onnx_path: Path) -> ModelDescription:
    """The model's description, checked against its graph (scale, input, halo >= receptive
    field), so that the engine's sidecar carries the halo the graph really needs."""
    from sr_runtime.engines.graph_check import check_onnx_file

    if not Path(onnx_path).is_file():
        raise UsageError(f"model not found: {onnx_path}")
    return check_onnx_file(Path(onnx_path))[0]


def build_environment() -> BuildEnvironment:
    """TensorRT and GPU of this machine, or one error naming everything that is missing."""
    from sr_runtime.engines.fingerprint import current_environment
    from sr_runtime.engines.gpu_backends import tensorrt_reason

    reason = tensorrt_reason()
    if reason:
        raise EngineUnavailableError(reason)
    return current_environment()


@dataclass(frozen=True)
class TrtResult:
    engine: Path
    onnx: Path
    record: EngineRecord
    recipe: PrecisionRecipe
    report: GateReport
    build_seconds: float
    exported: bool  # the ONNX model was exported by this call


PRECISIONS = ("fp16", "fp32")


def _export_beside(loaded: object, source: Path, onnx_out: Path, overwrite: bool,
                   info: Report) -> bool:
    """Export and validate the checkpoint's ONNX model, or reuse one exported from it before."""
    from sr_export.onnx_export import export_onnx
    from sr_runtime.paths import check_output

    if onnx_out.exists() and not overwrite:
        try:
            existing = onnx_description(onnx_out).checkpoint_sha256
        except SrEdgeError:
            existing = None
        if existing != sha256_file(source):
            check_output(onnx_out, overwrite)  # raises: another model is in the way
        info(f"reusing {onnx_out} (exported from this checkpoint)")
        return False
    check_output(onnx_out, True)
    parity = export_onnx(loaded, onnx_out)  # type: ignore[arg-type]
    info(parity.summary(loaded.description.variables[0].units))  # type: ignore[attr-defined]
    info(f"wrote {onnx_out}")
    return True


def to_trt(source: Path, *, config: Path | None = None, out: Path | None = None,
           tile: str | None = None, min_shape: str | None = None, opt_shape: str | None = None,
           max_shape: str | None = None, batch: int = 1, workspace_mb: int | None = None,
           timing_cache: Path | None = None, precision: str = "fp16", overwrite: bool = False,
           rmse_limit: float = RMSE_LIMIT_K, info: Report = lambda _: None,
           progress: Report = lambda _: None) -> TrtResult:
    """Checkpoint or ONNX -> verified TensorRT engine + fingerprint sidecar.

    TensorRT and a GPU are checked first: without them nothing is exported or written. From a
    checkpoint, the ONNX model is exported and validated first and written beside the engine.
    The accuracy reference is PyTorch FP32 from a checkpoint, else the ONNX model on ORT CPU.
    """
    from sr_runtime.engines.fingerprint import EngineCache, default_cache_dir
    from sr_runtime.paths import check_output

    source = Path(source)
    if not source.is_file():
        raise UsageError(f"model not found: {source}")
    if source.suffix not in (".onnx", ".ckpt", ".pt", ".pth"):
        raise UsageError(f"{source.name}: pass a checkpoint (.ckpt/.pt) or an sr-edge .onnx model")
    if precision not in PRECISIONS:
        raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if workspace_mb is not None and workspace_mb < 1:
        raise UsageError(f"--workspace must be a positive number of MB, not {workspace_mb}")
    out = Path(out) if out is not None else source.with_suffix(".engine")
    if out.suffix == ".onnx":
        raise UsageError(f"--out {out} would replace an ONNX model; name the engine *.engine")
    check_output(out, overwrite)
    check_output(sidecar_path(out), overwrite)
    try:
        environment = build_environment()  # before any export: a failed call leaves no file
    except EngineUnavailableError as exc:
        options = f" --config {config}" if config else ""
        later = (f"run `sr-export to-trt {source}` there" if source.suffix == ".onnx" else
                 f"export here with `sr-export to-onnx {source}{options}`, then run `sr-export "
                 f"to-trt {source.with_suffix('.onnx').name}` there")
        raise EngineUnavailableError(f"{exc}; nothing was written. To build the engine on a "
                                     f"machine with an NVIDIA GPU and TensorRT, {later}") from exc

    exported = False
    if source.suffix == ".onnx":
        onnx_path, description = source, onnx_description(source)
        profile = resolve_profile(len(description.variables), tile, min_shape, opt_shape,
                                  max_shape, batch)
        reference = onnxruntime_reference(onnx_path)
        reference_name = "the FP32 ONNX model on ONNX Runtime CPU"
    else:
        from sr_export.checkpoints import load_checkpoint

        loaded = load_checkpoint(source, config)
        profile = resolve_profile(len(loaded.description.variables), tile, min_shape,
                                  opt_shape, max_shape, batch)
        onnx_path = out.with_suffix(".onnx")
        exported = _export_beside(loaded, source, onnx_path, overwrite, info)
        description = onnx_description(onnx_path)
        reference, reference_name = torch_reference(loaded), "PyTorch FP32"
    recipes = choose_recipes(environment.tensorrt_version, precision)
    if timing_cache is None:
        cache = EngineCache(default_cache_dir())
        cache.ensure()
        timing_cache = cache.timing_cache_path(environment)
    info(f"building for {environment.describe()}, profile {profile.describe()}, timing cache "
         f"{timing_cache}")
    build = build_verified(onnx_path, description, profile, reference=reference,
                           reference_name=reference_name, environment=environment,
                           recipes=recipes, workspace_mb=workspace_mb, timing_cache=timing_cache,
                           rmse_limit=rmse_limit, report=progress, notice=info)
    record = write_engine(out, build, description, onnx_path)
    return TrtResult(out, onnx_path, record, build.recipe, build.report, build.build_seconds,
                     exported)


def build_cached_engine(onnx_path: Path, profile: ShapeProfile, cache_root: Path,
                        report: Report = lambda _: None) -> Path:
    """The runtime's path: find or build (and gate against ONNX Runtime CPU) a cached engine."""
    from sr_runtime.engines.fingerprint import EngineCache

    environment = build_environment()
    cache = EngineCache(cache_root)
    recipes = choose_recipes(environment.tensorrt_version)
    onnx_sha = sha256_file(onnx_path)
    for recipe in recipes:
        hit = cache.lookup(EngineFingerprint.create(onnx_sha, environment, profile,
                                                    recipe.precision))
        if hit is not None:
            return hit
    cache.ensure()
    description = onnx_description(onnx_path)
    report(f"no cached TensorRT engine for {onnx_path} ({profile.describe()}); building one in "
           f"{cache.root}")
    build = build_verified(onnx_path, description, profile,
                           reference=onnxruntime_reference(onnx_path),
                           reference_name="the FP32 ONNX model on ONNX Runtime CPU",
                           environment=environment, recipes=recipes,
                           timing_cache=cache.timing_cache_path(environment), report=report)
    out = cache.engine_path(build.fingerprint)
    write_engine(out, build, description, onnx_path)
    return out


__all__ = [
    "RMSE_LIMIT_K", "EngineBuildError", "GateMetrics", "GateReport",
    "PrecisionRecipe", "TrtResult", "build_cached_engine", "build_plan", "build_verified",
    "choose_recipes", "compare_outputs", "evaluate_gate", "gate_decision",
    "parse_shape", "parse_tile", "resolve_profile", "sample_tiles", "tensorrt_major", "to_trt",
    "write_engine",
]
