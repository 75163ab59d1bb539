"""Model variants beside a model, and the choice ``--backend auto`` makes among them.

A model ``model.onnx`` (FP32, exact) may have variants next to it: ``model.int8.onnx`` ... (see
:data:`sr_runtime.engines.tuning.VARIANT_TAGS`). Each variant carries a JSON record in its ONNX
metadata under :data:`VARIANT_KEY`: precision, the FP32 model it came from (sha256), the accuracy
gate's result and a speed measurement. :func:`select_variant` picks the fastest variant that
passed its gate and still matches its FP32 model, using this machine's timings from
``model.tune.json`` (``sr-export tune``) or, failing that, the speed measured when the variant
was made on this same machine; a variant never timed here is not chosen.

Metadata is read by :func:`sr_runtime.engines.onnxruntime.read_metadata`, the one reader.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sr_runtime.description import DESCRIPTION_KEY
from sr_runtime.engines.tuning import (
    MATCH_FIELDS,
    VARIANT_TAGS,
    family_base,
    machine_fingerprint,
    read_tune_record,
)
from sr_runtime.errors import UsageError
from sr_runtime.paths import sha256_file

VARIANT_KEY = "sr_edge.variant"
VARIANT_FORMAT = 1
#: A reduced-precision variant replaces the exact FP32 model only if at least this much faster:
#: a gain within timing noise is not worth its (gated, but real) loss of accuracy.
MIN_SPEEDUP = 1.05
PRECISION_FP32 = "fp32"
PRECISION_INT8 = "int8"
PRECISION_BF16 = "bf16"

def read_metadata_props(path: Path) -> dict[str, str]:
    """``metadata_props`` of an ONNX file (:func:`sr_runtime.engines.onnxruntime.read_metadata`)."""
    from sr_runtime.engines.onnxruntime import read_metadata

    return read_metadata(path)


@dataclass(frozen=True)
class Variant:
    """One candidate of a model family: a file run by a backend at a precision, and what is
    known about it on this machine (the FP32 model on ONNX Runtime is the reference)."""

    path: Path
    precision: str
    usable: bool  # exact, or gate passed and built from the current FP32 model
    why: str  # gate summary when usable, else why not
    speed: float | None = None  # relative to the FP32 model on this machine (1.0 for it)
    speed_origin: str = ""
    backend: str = "onnxruntime"  # the registered backend that runs it

    @property
    def engine_name(self) -> str:
        """The name its engine reports (``openvino-bf16``...): the tune record's key part."""
        if self.precision == PRECISION_FP32:
            return self.backend
        return f"{self.backend}-{self.precision}"

    @property
    def label(self) -> str:
        """``openvino bf16 (model.onnx)``: engine, precision and file."""
        return f"{self.backend} {self.precision} ({self.path.name})"

    def describe(self) -> str:
        text = (f"{self.path.name} ({self.precision})" if self.backend == "onnxruntime"
                else f"{self.path.name} on {self.backend} ({self.precision})")
        if self.speed is not None and (self.precision != PRECISION_FP32
                                       or self.backend != "onnxruntime"):
            text += f", {self.speed:.2f}x the FP32 model's speed ({self.speed_origin})"
        return text


def _record(props: dict[str, str]) -> dict[str, Any] | None:
    raw = props.get(VARIANT_KEY)
    if raw is None:
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def _gate_text(gate: dict[str, Any]) -> str:
    parts = []
    if gate.get("rmse_vs_fp32") is not None:
        parts.append(f"RMSE vs FP32 {float(gate['rmse_vs_fp32']):.4f} K")
    if gate.get("psnr_drop") is not None:
        parts.append(f"PSNR drop {float(gate['psnr_drop']):.3f} dB")
    return "accuracy gate passed" + (f" ({', '.join(parts)})" if parts else "")


def _same_machine(machine: dict[str, Any] | None) -> bool:
    here = machine_fingerprint()
    return machine is not None and bool(machine) and all(
        machine.get(k) == here.get(k) for k in MATCH_FIELDS)


def family(model_path: Path) -> list[Path]:
    """The FP32 model of ``model_path``'s family first, then its variant files that exist."""
    base = family_base(Path(model_path))
    stem = base.name.removesuffix(".onnx")
    variants = [base.with_name(f"{stem}.{tag}.onnx") for tag in VARIANT_TAGS]
    return [base] + [p for p in variants if p.is_file()]


def discover_variants(model_path: str | Path) -> list[Variant]:
    """Every file of the family with its precision, gate status and speed on this machine."""
    files = family(Path(model_path))
    base = files[0]
    if not base.is_file():
        raise UsageError(f"model not found: {base}")
    tune = read_tune_record(base)
    tuned: dict[str, float] = {}
    if tune is not None and tune.applies:
        for name, entry in (tune.raw.get("variants") or {}).items():
            speed = entry.get("hr_mpix_s") if isinstance(entry, dict) else None
            if isinstance(speed, (int, float)) and speed > 0:
                tuned[name] = float(speed)
    base_speed = tuned.get(base.name)
    found = [Variant(base, PRECISION_FP32, True, "exact (checked against PyTorch at export)",
                     1.0, "reference")]
    base_sha: str | None = None
    for path in files[1:]:
        record = _record(read_metadata_props(path))
        precision = str((record or {}).get("precision", path.name.split(".")[-2]))
        if record is None:
            found.append(Variant(path, precision, False, "no sr-edge variant record (not made "
                                 "by `sr-export quantize`); not used by auto"))
            continue
        gate = record.get("gate") or {}
        if not gate.get("passed"):
            found.append(Variant(path, precision, False, "its accuracy gate did not pass"))
            continue
        base_sha = base_sha or sha256_file(base)
        if record.get("source_sha256") != base_sha:
            found.append(Variant(path, precision, False, f"made from another version of "
                                 f"{base.name}; re-run `sr-export quantize {base.name}`"))
            continue
        speed, origin = None, ""
        if base_speed and path.name in tuned and tune is not None:
            speed, origin = tuned[path.name] / base_speed, f"timed by {tune.path.name}"
        else:
            measured = record.get("speed") or {}
            if _same_machine(measured.get("machine")) and measured.get("speedup"):
                speed, origin = float(measured["speedup"]), "timed when it was made, here"
        found.append(Variant(path, precision, True, _gate_text(gate), speed, origin))
    return found


def select_variant(model_path: str | Path) -> tuple[Path, str]:
    """The fastest usable file of ``model_path``'s family on this machine, and why.

    A variant named explicitly (``model.int8.onnx``) is returned as it is. Otherwise the FP32
    model is the default, replaced by a variant only if that passed its accuracy gate, was made
    from this very FP32 model and was measured at least :data:`MIN_SPEEDUP` times as fast on
    this machine.
    """
    model_path = Path(model_path)
    if family_base(model_path) != model_path:
        return model_path, f"{model_path.name}: variant named explicitly"
    if not model_path.is_file():
        raise UsageError(f"model not found: {model_path}")
    props = read_metadata_props(model_path)
    if DESCRIPTION_KEY not in props:
        return model_path, f"{model_path.name}: not an sr-edge model, no variants considered"
    variants = discover_variants(model_path)
    best = variants[0]
    notes = []
    for variant in variants[1:]:
        if not variant.usable:
            notes.append(f"{variant.path.name} skipped: {variant.why}")
        elif variant.speed is None:
            notes.append(f"{variant.path.name} skipped: not timed on this machine (run "
                         f"`sr-export tune {model_path.name}`)")
        elif variant.speed >= MIN_SPEEDUP and variant.speed > (best.speed or 1.0):
            best = variant
        else:
            notes.append(f"{variant.path.name} not faster here ({variant.speed:.2f}x; a variant "
                         f"must reach {MIN_SPEEDUP:.2f}x the FP32 model to replace it)")
    reason = f"model variant {best.describe()}: {best.why}"
    if notes:
        reason += "; " + "; ".join(notes)
    return best.path, reason
