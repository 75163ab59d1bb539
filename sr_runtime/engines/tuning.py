"""Per-machine tuning results stored beside a model, read without torch.

``sr-export tune MODEL.onnx`` times the model (and its variants, ``model.int8.onnx`` ...) at
several tile sizes and writes ``model.tune.json`` next to it::

    {"sr_edge_tune": 1,
     "machine": {"cpu_model": ..., "physical_cores": 2, "onnxruntime": "1.32.0", "isa": [...]},
     "threads": 2, "halo_lr": 40, "best_variant": "model.int8.onnx", "best_tile": 96,
     "variants": {"model.onnx": {"precision": "fp32", "best_tile": 96, "hr_mpix_s": 1.2,
                                 "tiles": [{"tile": 32, "window": 112, "ms": ..., ...}, ...]},
                  "openvino-bf16:model.onnx": {"backend": "openvino", "precision": "bf16",
                                 "hint": "LATENCY", "streams": 1, "gate": {"passed": true, ...},
                                 ...},
                  ...}}

Each entry is one candidate: a file run by an engine at a precision. ONNX Runtime's entries are
keyed by the file's name (``model.onnx``, ``model.int8.onnx``); other engines' by
``<engine name>:<file>`` (:func:`candidate_key`), because one file runs on several engines and,
for BF16, at a precision that is a runtime hint rather than a file.

Timings only hold for the machine class they were measured on: :func:`tuned_tile` returns None
when the CPU class (ISA level and core count, :mod:`sr_runtime.machine`) or the ONNX Runtime
version differ (re-run ``sr-export tune``); an OpenVINO entry also needs the same OpenVINO
version (:data:`BACKEND_MATCH_FIELDS`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sr_runtime.machine import machine_info
from sr_runtime.paths import write_atomically

TUNE_FORMAT = 1
TUNE_SUFFIX = ".tune.json"
#: ``model.<tag>.onnx`` files are variants of ``model.onnx`` (see :mod:`.variants`).
VARIANT_TAGS = ("int8", "bf16", "fp16")
#: Machine fields that must match for timings to apply (ISA flags are informative).
MATCH_FIELDS = ("cpu_class", "onnxruntime")
#: Further fields an entry of another engine needs to match (its own library's version).
BACKEND_MATCH_FIELDS = {"openvino": ("openvino",)}


def machine_fingerprint() -> dict[str, Any]:
    """What the timings depend on (:mod:`sr_runtime.machine`): the CPU class (ISA level and
    physical cores) and the ONNX Runtime version must match for a record to apply; the CPU
    model and flags are kept to say what it was measured on."""
    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = ""
    info = machine_info()
    return {"cpu_model": info.cpu_model, "cpu_class": info.cpu_class,
            "physical_cores": info.physical_cores, "logical_cpus": info.logical_cpus,
            "onnxruntime": ort_version, "openvino": info.libraries.get("openvino", ""),
            "isa": list(info.isa_flags)}


def candidate_key(file_name: str, engine: str = "onnxruntime") -> str:
    """The tune record's key of ``file_name`` run by the engine named ``engine`` (an engine's
    ``name``, e.g. ``openvino-bf16``): the bare file name for ONNX Runtime."""
    if engine.startswith("onnxruntime"):
        return file_name
    return f"{engine}:{file_name}"


def family_base(model: Path) -> Path:
    """``model.int8.onnx`` -> ``model.onnx``; ``model.onnx`` -> itself."""
    model = Path(model)
    parts = model.name.split(".")
    if len(parts) >= 3 and parts[-1] == "onnx" and parts[-2] in VARIANT_TAGS:
        return model.with_name(".".join(parts[:-2]) + ".onnx")
    return model


def tune_path(model: Path) -> Path:
    """Where the tuning results of ``model``'s family live: ``model.tune.json``."""
    base = family_base(model)
    return base.with_name(base.name.removesuffix(".onnx") + TUNE_SUFFIX)


@dataclass(frozen=True)
class TuneRecord:
    """A parsed ``model.tune.json`` and whether it was measured on this machine."""

    path: Path
    raw: dict[str, Any]
    mismatch: tuple[str, ...]  # machine fields that differ from this machine; empty: it applies

    @property
    def applies(self) -> bool:
        return not self.mismatch

    @property
    def cpu_class(self) -> str:
        return str((self.raw.get("machine") or {}).get("cpu_class", "unknown"))

    def variant(self, name: str) -> dict[str, Any] | None:
        entry = (self.raw.get("variants") or {}).get(name)
        return entry if isinstance(entry, dict) else None

    def entry_mismatch(self, name: str) -> tuple[str, ...]:
        """Machine fields that keep entry ``name`` from applying here (its engine's too)."""
        entry = self.variant(name) or {}
        extra = BACKEND_MATCH_FIELDS.get(str(entry.get("backend", "onnxruntime")), ())
        here = machine_fingerprint()
        built = self.raw.get("machine") or {}
        return self.mismatch + tuple(k for k in extra if built.get(k) != here.get(k))

    def applies_to(self, name: str) -> bool:
        """Whether entry ``name`` was measured on this CPU class with these library versions."""
        return self.variant(name) is not None and not self.entry_mismatch(name)

    def describe_mismatch(self, name: str | None = None) -> str:
        here = machine_fingerprint()
        built = self.raw.get("machine") or {}
        fields = self.entry_mismatch(name) if name else self.mismatch
        return ", ".join(f"{k} {built.get(k)!r} -> {here.get(k)!r}" for k in fields)


def write_tune_record(record: dict[str, Any], model: Path) -> Path:
    """Write ``model.tune.json`` beside ``model`` (atomically): the one writer of the record
    :func:`read_tune_record` reads."""
    if int(record.get("sr_edge_tune", 0)) != TUNE_FORMAT or "machine" not in record:
        raise ValueError("not a tune record of this format (see sr_export.tune.tune_model)")
    out = tune_path(Path(model))
    write_atomically((json.dumps(record, indent=2, sort_keys=True) + "\n").encode(), out)
    return out


def read_tune_record(model: Path) -> TuneRecord | None:
    """The tuning record of ``model``'s family, or None when absent or unreadable."""
    path = tune_path(model)
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
        if int(raw.get("sr_edge_tune", 0)) != TUNE_FORMAT:
            return None
    except (OSError, ValueError, TypeError):
        return None
    here = machine_fingerprint()
    built = raw.get("machine") or {}
    mismatch = tuple(k for k in MATCH_FIELDS if built.get(k) != here.get(k))
    return TuneRecord(path, raw, mismatch)


def tuned_tile(model_path: str | Path, engine: str = "onnxruntime") -> int | None:
    """The best LR tile (core size, cells) measured for this model on this machine, or None.

    ``engine``: the name of the engine that runs it (``openvino-bf16``...; see
    :func:`candidate_key`). None when ``sr-export tune`` has not been run for the model, or was
    run on another machine (CPU class or library versions differ). Callers keep their own
    default then, and should still cap the tile by their memory budget.
    """
    record = read_tune_record(Path(model_path))
    if record is None or not record.applies:
        return None
    key = candidate_key(Path(model_path).name, engine)
    if record.variant(key) is not None and not record.applies_to(key):
        return None
    entry = record.variant(key)
    tile = entry.get("best_tile") if entry else record.raw.get("best_tile")
    try:
        return int(tile) if tile else None
    except (TypeError, ValueError):
        return None


def tuned_setting(model_path: str | Path, engine: str, field: str) -> Any:
    """A setting ``sr-export tune`` chose for ``engine`` running ``model_path`` on this machine
    (an OpenVINO performance ``hint`` or its ``streams``), or None when none applies here."""
    record = read_tune_record(Path(model_path))
    key = candidate_key(Path(model_path).name, engine)
    if record is None or not record.applies_to(key):
        return None
    return (record.variant(key) or {}).get(field)
