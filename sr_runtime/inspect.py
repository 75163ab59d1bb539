"""Human-readable view of a model's self-description."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from sr_runtime.engines.onnxruntime import read_description


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
    lines.append(f"checkpoint sha256: {description.checkpoint_sha256 or '-'}")
    lines.append(f"graph rewrites: {', '.join(description.graph_rewrites) or '-'}")
    lines.append("producer: " + ", ".join(f"{k}={v}" for k, v in description.producer.items()))
    lines.append("architecture parameters: " + json.dumps(dict(description.arch_params)))
    lines.append("description (JSON): " + json.dumps(asdict(description), default=str))
    return "\n".join(lines)
