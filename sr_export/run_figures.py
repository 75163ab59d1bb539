"""What each tracked `sr-export` command records: its settings, figures and files.

The commands call these with whatever tracker they have (:mod:`sr_export.tracking`); with the
no-op tracker nothing is computed that the command would not compute anyway.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sr_export.tracking import Tracker, flatten

if TYPE_CHECKING:
    from sr_export.checkpoints import LoadedCheckpoint
    from sr_export.evaluate import Evaluation
    from sr_export.onnx_export import ParityReport
    from sr_export.quantize import QuantizeReport
    from sr_runtime.description import ModelDescription


def description_params(description: ModelDescription, prefix: str = "model") -> dict[str, Any]:
    """Architecture, scale, variables and the checkpoint a model came from."""
    params: dict[str, Any] = {f"{prefix}.{k}": v for k, v in description.arch_params.items()}
    params.update({f"{prefix}.architecture": description.architecture,
                   f"{prefix}.scale": description.scale,
                   f"{prefix}.variables": ",".join(f"{v.name}[{v.units}]"
                                                   for v in description.variables),
                   f"{prefix}.halo_lr": description.halo_lr,
                   f"{prefix}.checkpoint_sha256": description.checkpoint_sha256 or None})
    params.update({f"{prefix}.provenance.{k}": v for k, v in description.provenance.items()})
    return params


def model_card(path: Path) -> str:
    """The exported model's description as people read it (`sr-export inspect`)."""
    from sr_runtime.inspect import describe_model

    return describe_model(path) + "\n"


def log_export(tracker: Tracker, loaded: LoadedCheckpoint, report: ParityReport, out: Path,
               *, opset: int, optimize: bool, source: str) -> None:
    """`to-onnx`: checkpoint and export settings, the parity figures, the ONNX and its card."""
    if not tracker.enabled:
        return
    tracker.log_params({**description_params(loaded.description),
                        "export.checkpoint_format": loaded.source_format,
                        "export.source": source, "export.opset": opset,
                        "export.optimize": optimize, "export.rewrites": ",".join(report.rewrites)})
    tracker.log_metrics({"parity.max_abs_K": report.max_abs, "parity.rmse_K": report.rmse,
                         "parity.tolerance_K": report.tolerance,
                         "parity.rewrite_max_abs_K": report.rewrite_max_abs,
                         "parity.passed": report.passed})
    tracker.log_artifact(out, "onnx")
    tracker.log_text(model_card(out), "onnx/model_card.txt")


def log_training(tracker: Tracker, evaluation: Evaluation | None, checkpoint: Path) -> None:
    """`train`: the held-out week's skill of the model and of the references, the checkpoint."""
    if not tracker.enabled:
        return
    if evaluation is not None:
        for name, scores in evaluation.scores.items():
            key = "heldout.model" if name.startswith("sr-edge model") else f"heldout.{name}"
            tracker.log_metrics({f"{key}.rmse_K": scores.rmse, f"{key}.psnr_dB": scores.psnr,
                                 f"{key}.ssim": scores.ssim})
        tracker.log_params({"heldout.steps": int(evaluation.times.size),
                            "heldout.data_range_K": round(evaluation.data_range, 4)})
        tracker.log_text(evaluation.table() + "\n", "evaluation/heldout.md")
    tracker.log_artifact(checkpoint, "checkpoint")


def log_quantize(tracker: Tracker, report: QuantizeReport, description: ModelDescription,
                 *, calibration: str, max_rmse: float, max_psnr_drop: float) -> None:
    """`quantize`: calibration and gate settings, the gate's figures, speed, the variant."""
    if not tracker.enabled:
        return
    tracker.log_params({**description_params(description), "quantize.calibration": calibration,
                        "quantize.max_rmse_K": max_rmse,
                        "quantize.max_psnr_drop_dB": max_psnr_drop})
    gate = report.gate.to_dict()
    tracker.log_metrics({f"gate.{k}": v for k, v in gate.items()
                         if k not in ("input_shape", "failures")})
    speed = report.record.get("speed")
    if isinstance(speed, Mapping):
        tracker.log_metrics({f"speed.{k}": v for k, v in speed.items()})
    recipe = report.record.get("quantization")
    if isinstance(recipe, Mapping):
        tracker.log_text(json.dumps(recipe, indent=1, default=str) + "\n",
                         "quantize/recipe.json")
    tracker.log_artifact(report.out, "onnx")


def log_tune(tracker: Tracker, record: Mapping[str, Any], written: Path,
             description: ModelDescription) -> None:
    """`tune`: the best tile and variant, every variant's throughput by tile, the record."""
    if not tracker.enabled:
        return
    params: dict[str, Any] = {**description_params(description),
                              "tune.model": record.get("model"),
                              "tune.best_variant": record.get("best_variant"),
                              "tune.best_tile": record.get("best_tile"),
                              "tune.threads": record.get("threads")}
    tracker.log_params(params)
    metrics: dict[str, Any] = {}
    for name, entry in (record.get("variants") or {}).items():
        metrics[f"tune.{name}.hr_mpix_s"] = entry.get("hr_mpix_s")
        metrics[f"tune.{name}.best_tile"] = entry.get("best_tile")
        for timing in entry.get("tiles", []):
            metrics[f"tune.{name}.tile_{timing['tile']}.hr_mpix_s"] = timing["hr_mpix_s"]
            metrics[f"tune.{name}.tile_{timing['tile']}.ms"] = timing["ms"]
    tracker.log_metrics(metrics)
    tracker.log_artifact(written, "tune")


def log_trt(tracker: Tracker, result: Any) -> None:
    """`to-trt`: precision and profile, the gate's figures and build time, the fingerprint."""
    if not tracker.enabled:
        return
    record = result.record
    tracker.log_params({**description_params(record.description),
                        "trt.precision": result.recipe.precision,
                        "trt.profile": record.fingerprint.profile.describe(),
                        "trt.fingerprint": record.fingerprint.key()})
    gate = flatten(result.report.to_dict(), "gate.")
    tracker.log_metrics({**gate, "trt.build_seconds": result.build_seconds})
    from sr_runtime.engines.tensorrt.fingerprint import sidecar_path

    sidecar = sidecar_path(result.engine)
    if sidecar.is_file():
        tracker.log_artifact(sidecar, "tensorrt")
    if result.exported:
        tracker.log_artifact(result.onnx, "onnx")
