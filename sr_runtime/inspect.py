"""Human-readable view of a model's self-description, and whether its graph agrees with it."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from sr_runtime.engines.onnxruntime import read_description
from sr_runtime.errors import SrEdgeError


def graph_line(path: Path) -> str:
    """What the load-time graph check says: the runtime would refuse or correct what it finds."""
    from sr_runtime.engines.graph_check import check_onnx_file

    try:
        _, check = check_onnx_file(path)
    except SrEdgeError as exc:
        return f"graph check: FAILED, sr-run refuses this model: {exc}"
    text = (f"graph check: x{check.scale} confirmed, receptive field {check.receptive_field_lr} "
            "LR pixels")
    if check.halo_lr > check.claimed_halo_lr:
        text += (f" (more than the {check.claimed_halo_lr} claimed: sr-run tiles with "
                 f"{check.halo_lr})")
    return text


def describe_model(path: Path) -> str:
    description = read_description(path)
    lines = [f"model: {path}",
             f"architecture: {description.architecture} x{description.scale}",
             f"halo (receptive field): {description.halo_lr} LR pixels"]
    for var in description.variables:
        lines.append(f"variable {var.name} [{var.units}]: LR mean {var.lr_mean:.4f} std "
                     f"{var.lr_std:.4f}, HR mean {var.hr_mean:.4f} std {var.hr_std:.4f}")
    for static in description.static_inputs:
        lines.append(f"static input {static.name} [{static.units}]")
    if description.clock_inputs:
        lines.append(f"clock inputs (from each step's time and longitudes): "
                     f"{', '.join(description.clock_inputs)}")
    lines.append(f"checkpoint sha256: {description.checkpoint_sha256 or '-'}")
    lines.append(f"graph rewrites: {', '.join(description.graph_rewrites) or '-'}")
    lines.append("producer: " + ", ".join(f"{k}={v}" for k, v in description.producer.items()))
    if description.provenance:
        lines.append("provenance: " + ", ".join(f"{k}={v}"
                                                for k, v in description.provenance.items()))
    lines.append("architecture parameters: " + json.dumps(dict(description.arch_params)))
    lines.append(graph_line(path))
    lines.append("description (JSON): " + json.dumps(asdict(description), default=str))
    return "\n".join(lines)
