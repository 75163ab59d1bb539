"""``sr-export to-trt``: checkpoint -> validated ONNX -> the runtime's gated TensorRT build.

The build itself (profiles, TensorRT 10/11 recipes, accuracy gate, fingerprint, cache) is the
runtime's (:mod:`sr_runtime.engines.tensorrt.build`), which needs no torch; this module adds
what needs it: exporting the checkpoint and PyTorch FP32 as the gate's reference. TensorRT and a
GPU are checked before anything is exported, so without them nothing is written.
"""

from __future__ import annotations

from pathlib import Path

from sr_export.torch_engine import CHECKPOINT_SUFFIXES
from sr_runtime.engines.tensorrt import build
from sr_runtime.engines.tensorrt.builder import Report
from sr_runtime.engines.tensorrt.gate import RMSE_LIMIT_K, Reference
from sr_runtime.engines.tensorrt.profiles import resolve_profile
from sr_runtime.errors import SrEdgeError, UsageError
from sr_runtime.paths import check_output, sha256_file

TORCH_REFERENCE = "PyTorch FP32"


def torch_reference(loaded: object) -> Reference:
    """PyTorch FP32 on CPU, the un-folded network."""
    from sr_export.onnx_export import physical_model, torch_predict

    model = physical_model(loaded)  # type: ignore[arg-type]
    return lambda lr: torch_predict(model, lr)


def _export_beside(loaded: object, source: Path, onnx_out: Path, overwrite: bool,
                   info: Report) -> bool:
    """Export and validate the checkpoint's ONNX model, or reuse one exported from it before."""
    from sr_export.onnx_export import export_onnx

    if onnx_out.exists() and not overwrite:
        try:
            existing = build.onnx_description(onnx_out).checkpoint_sha256
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
           progress: Report = lambda _: None) -> build.TrtResult:
    """Checkpoint or ONNX -> verified TensorRT engine + fingerprint sidecar.

    From a checkpoint, the ONNX model is exported and validated first and written beside the
    engine, and the gate's reference is PyTorch FP32; an ONNX model goes straight to
    :func:`sr_runtime.engines.tensorrt.build.to_trt` (reference: ONNX Runtime CPU).
    """
    source = Path(source)
    options = dict(out=out, tile=tile, min_shape=min_shape, opt_shape=opt_shape,
                   max_shape=max_shape, batch=batch, workspace_mb=workspace_mb,
                   timing_cache=timing_cache, precision=precision, overwrite=overwrite,
                   rmse_limit=rmse_limit, info=info, progress=progress)
    if not source.is_file():
        raise UsageError(f"model not found: {source}")
    if source.suffix == ".onnx":
        return build.to_trt(source, **options)  # type: ignore[arg-type]
    if source.suffix not in CHECKPOINT_SUFFIXES:
        raise UsageError(f"{source.name}: pass a checkpoint (.ckpt/.pt) or an sr-edge .onnx model")
    out = build.engine_output(source, out, precision=precision, workspace_mb=workspace_mb,
                              overwrite=overwrite)
    config_option = f" --config {config}" if config else ""
    environment = build.environment_or_advice(
        f"export here with `sr-export to-onnx {source}{config_option}`, then run `sr-export "
        f"to-trt {source.with_suffix('.onnx').name}` there")

    from sr_export.checkpoints import load_checkpoint

    loaded = load_checkpoint(source, config)
    profile = resolve_profile(loaded.description.input_channels, tile, min_shape, opt_shape,
                              max_shape, batch)
    onnx_path = out.with_suffix(".onnx")
    exported = _export_beside(loaded, source, onnx_path, overwrite, info)
    return build.build_engine(onnx_path, out, profile, environment,
                              reference=torch_reference(loaded), reference_name=TORCH_REFERENCE,
                              precision=precision, workspace_mb=workspace_mb,
                              timing_cache=timing_cache, rmse_limit=rmse_limit,
                              exported=exported, info=info, progress=progress)
