"""ONNX -> gated TensorRT engine with its fingerprint sidecar: what ``sr-export to-trt`` and the
runtime's rebuild both call.

Options and the output path are checked first, then TensorRT and the GPU: without them nothing
is written. The accuracy reference is the validated FP32 ONNX model on ONNX Runtime CPU unless
the caller gives another (``sr-export to-trt`` from a checkpoint passes PyTorch FP32). An engine
that fails the gate is never written; plan and sidecar are each written through a temporary file
and a rename. No torch is needed here.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path

from sr_runtime.description import ModelDescription
from sr_runtime.engines.tensorrt.builder import (
    PrecisionRecipe,
    Report,
    VerifiedBuild,
    build_verified,
    choose_recipes,
)
from sr_runtime.engines.tensorrt.cache import EngineCache, default_cache_dir
from sr_runtime.engines.tensorrt.fingerprint import (
    BuildEnvironment,
    EngineFingerprint,
    EngineRecord,
    current_environment,
    sha256_bytes,
    sidecar_path,
)
from sr_runtime.engines.tensorrt.gate import (
    RMSE_LIMIT_K,
    GateReport,
    Reference,
    onnxruntime_reference,
)
from sr_runtime.engines.tensorrt.profiles import ShapeProfile, resolve_profile
from sr_runtime.errors import EngineUnavailableError, UsageError
from sr_runtime.paths import check_output, sha256_file, write_atomically

PRECISIONS = ("fp16", "fp32")
ONNX_REFERENCE = "the FP32 ONNX model on ONNX Runtime CPU"


@dataclass(frozen=True)
class TrtResult:
    engine: Path
    onnx: Path
    record: EngineRecord
    recipe: PrecisionRecipe
    report: GateReport
    build_seconds: float
    exported: bool  # the ONNX model was exported by this call


def onnx_description(onnx_path: Path) -> ModelDescription:
    """The model's description, checked against its graph (scale, input, halo >= receptive
    field), so that the engine's sidecar carries the halo the graph really needs."""
    from sr_runtime.engines.graph_check import check_onnx_file

    if not Path(onnx_path).is_file():
        raise UsageError(f"model not found: {onnx_path}")
    return check_onnx_file(Path(onnx_path))[0]


def build_environment() -> BuildEnvironment:
    """TensorRT and GPU of this machine, or one error naming everything that is missing."""
    from sr_runtime.engines.gpu_backends import require_onnx, tensorrt_reason

    reason = tensorrt_reason()
    if reason:
        raise EngineUnavailableError(reason)
    require_onnx()
    return current_environment()


def engine_output(source: Path, out: Path | None, *, precision: str = "fp16",
                  workspace_mb: int | None = None, overwrite: bool = False) -> Path:
    """The engine path for ``source``, after checking the options and that nothing is in the
    way (engine and sidecar)."""
    if precision not in PRECISIONS:
        raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if workspace_mb is not None and workspace_mb < 1:
        raise UsageError(f"--workspace must be a positive number of MB, not {workspace_mb}")
    out = Path(out) if out is not None else Path(source).with_suffix(".engine")
    if out.suffix == ".onnx":
        raise UsageError(f"--out {out} would replace an ONNX model; name the engine *.engine")
    check_output(out, overwrite)
    check_output(sidecar_path(out), overwrite)
    return out


def environment_or_advice(later: str) -> BuildEnvironment:
    """:func:`build_environment`, or one error saying nothing was written and ``later``: what
    to run on a machine with an NVIDIA GPU and TensorRT."""
    try:
        return build_environment()
    except EngineUnavailableError as exc:
        raise EngineUnavailableError(f"{exc}; nothing was written. To build the engine on a "
                                     f"machine with an NVIDIA GPU and TensorRT, {later}") from exc


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


def build_engine(onnx_path: Path, out: Path, profile: ShapeProfile,
                 environment: BuildEnvironment, *, description: ModelDescription | None = None,
                 reference: Reference | None = None,
                 reference_name: str = ONNX_REFERENCE, precision: str = "fp16",
                 workspace_mb: int | None = None, timing_cache: Path | None = None,
                 rmse_limit: float = RMSE_LIMIT_K, exported: bool = False,
                 info: Report = lambda _: None, progress: Report = lambda _: None) -> TrtResult:
    """Build, gate and write the engine for an sr-edge ONNX model (``description``: its
    :func:`onnx_description`, when the caller has it already)."""
    if description is None:
        description = onnx_description(onnx_path)
    if reference is None:
        reference = onnxruntime_reference(onnx_path)
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
    return TrtResult(out, Path(onnx_path), record, build.recipe, build.report,
                     build.build_seconds, exported)


def to_trt(source: Path, *, out: Path | None = None, tile: str | None = None,
           min_shape: str | None = None, opt_shape: str | None = None,
           max_shape: str | None = None, batch: int = 1, workspace_mb: int | None = None,
           timing_cache: Path | None = None, precision: str = "fp16", overwrite: bool = False,
           rmse_limit: float = RMSE_LIMIT_K, info: Report = lambda _: None,
           progress: Report = lambda _: None) -> TrtResult:
    """sr-edge ONNX model -> verified TensorRT engine + fingerprint sidecar.

    Checkpoints are exported first by ``sr-export to-trt`` (:mod:`sr_export.tensorrt_export`).
    """
    source = Path(source)
    if not source.is_file():
        raise UsageError(f"model not found: {source}")
    if source.suffix != ".onnx":
        raise UsageError(f"{source.name}: TensorRT engines are built from an sr-edge .onnx "
                         "model; for a checkpoint use `sr-export to-trt` (pip install "
                         "'sr-edge[export]')")
    out = engine_output(source, out, precision=precision, workspace_mb=workspace_mb,
                        overwrite=overwrite)
    environment = environment_or_advice(f"run `sr-export to-trt {source}` there")
    description = onnx_description(source)
    profile = resolve_profile(description.input_channels, tile, min_shape, opt_shape, max_shape,
                              batch)
    return build_engine(source, out, profile, environment, description=description,
                        precision=precision,
                        workspace_mb=workspace_mb, timing_cache=timing_cache,
                        rmse_limit=rmse_limit, info=info, progress=progress)


def build_cached_engine(onnx_path: Path, profile: ShapeProfile, cache_root: Path,
                        report: Report = lambda _: None) -> Path:
    """The runtime's path: find or build (and gate against ONNX Runtime CPU) a cached engine."""
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
                           reference_name=ONNX_REFERENCE,
                           environment=environment, recipes=recipes,
                           timing_cache=cache.timing_cache_path(environment), report=report)
    out = cache.engine_path(build.fingerprint)
    write_engine(out, build, description, onnx_path)
    return out
