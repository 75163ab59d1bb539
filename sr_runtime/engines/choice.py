"""Which CPU engine and precision runs an sr-edge model here, and why.

The candidates of a model family (:func:`discover_candidates`) are each a file run by a backend
at a precision: ONNX Runtime on the FP32 model (the reference) and on its gated file variants
(``model.int8.onnx``), and OpenVINO on the FP32 model in FP32 (exact) and BF16 (a runtime hint,
not a file: its accuracy gate and timing live in ``model.tune.json``, measured by ``sr-export
tune`` on this CPU class). :func:`choose_engine` applies the request's ``--backend`` and
``--precision``:

- ``auto``: the fastest usable candidate measured on this CPU class, replacing the reference
  only when at least :data:`~sr_runtime.engines.variants.MIN_SPEEDUP` times as fast; without a
  tune record, ONNX Runtime FP32;
- ``fp32``: the exact path only (no variant, no BF16): ONNX Runtime FP32, or OpenVINO FP32 where
  it was measured faster;
- ``bf16`` / ``int8``: that precision, which must have passed its gate here (else an error that
  says what to run).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sr_runtime.description import DESCRIPTION_KEY
from sr_runtime.engines.tuning import candidate_key, family_base, read_tune_record
from sr_runtime.engines.variants import (
    MIN_SPEEDUP,
    PRECISION_BF16,
    PRECISION_FP32,
    PRECISION_INT8,
    Variant,
    _gate_text,
    discover_variants,
    read_metadata_props,
)
from sr_runtime.errors import AccuracyGateError, EngineUnavailableError, UsageError

#: What ``sr-run --precision`` takes.
PRECISION_CHOICES = ("auto", PRECISION_FP32, PRECISION_BF16, PRECISION_INT8)
#: Backends among whose candidates :func:`choose_engine` chooses (others run the file as given).
CPU_BACKENDS = ("onnxruntime", "openvino")


@dataclass(frozen=True)
class Choice:
    """What to load: ``model`` with ``backend`` (``auto`` keeps the GPU backends first, with
    ``cpu_backend`` in the CPU slot) at ``precision`` (a load option; None: the file's own);
    ``reason`` says why, in one line (empty when nothing was chosen)."""

    model: Path
    backend: str
    precision: str | None = None
    cpu_backend: str | None = None
    reason: str = ""
    wanted: str = "auto"  # the precision asked for


def check_precision_name(precision: str) -> None:
    if precision not in PRECISION_CHOICES:
        raise UsageError(f"--precision must be one of {', '.join(PRECISION_CHOICES)}, not "
                         f"{precision!r}")


def tune_hint(model: Path) -> str:
    """What to run to time or gate a candidate here."""
    return f"run `sr-export tune {model.name}`"


def _openvino_candidates(base: Path) -> list[Variant]:
    """OpenVINO FP32 and BF16 on the FP32 model, with their gate and speed on this CPU class."""
    from sr_runtime.engines.openvino import available, bf16_unavailable_reason

    missing = available()
    tune = read_tune_record(base)
    reference = tune.variant(base.name) if tune is not None and tune.applies else None
    base_speed = (reference or {}).get("hr_mpix_s")
    found = []
    for precision in (PRECISION_FP32, PRECISION_BF16):
        probe = Variant(base, precision, False, "", backend="openvino")
        key = candidate_key(base.name, probe.engine_name)
        entry = tune.variant(key) if tune is not None else None
        applies = tune is not None and tune.applies_to(key)
        speed, origin = None, ""
        if applies and entry and base_speed and entry.get("hr_mpix_s"):
            speed = float(entry["hr_mpix_s"]) / float(base_speed)
            origin = f"timed by {tune.path.name} on {tune.cpu_class}"  # type: ignore[union-attr]
        if missing:
            found.append(Variant(base, precision, False, missing, backend="openvino"))
            continue
        gate = (entry or {}).get("gate") if applies else None
        if precision == PRECISION_FP32:
            failed = isinstance(gate, dict) and not gate.get("passed")
            why = (f"its parity check failed here ({gate.get('summary', '')})"  # type: ignore[union-attr]
                   if failed else "exact (parity-checked against ONNX Runtime FP32 at load)")
            found.append(Variant(base, precision, not failed, why, speed, origin, "openvino"))
            continue
        reason = bf16_unavailable_reason()
        if reason:
            why, usable = reason, False
        elif not isinstance(gate, dict):
            why, usable = (f"no accuracy gate run on this CPU class ("
                           f"{tune_hint(base)})"), False
        elif not gate.get("passed"):
            why, usable = f"its accuracy gate did not pass here ({gate.get('summary', '')})", \
                False
        else:
            why, usable = _gate_text(gate), True
        found.append(Variant(base, precision, usable, why, speed, origin, "openvino"))
    return found


def discover_candidates(model: str | Path) -> list[Variant]:
    """Every candidate of the family of ``model``: ONNX Runtime's files first (the FP32 model,
    the reference, leads), then OpenVINO's."""
    base = family_base(Path(model))
    return [*discover_variants(base), *_openvino_candidates(base)]


def _allowed(candidate: Variant, backend: str, precision: str) -> bool:
    if backend != "auto" and candidate.backend != backend:
        return False
    return precision == "auto" or candidate.precision == precision


def _unavailable(precision: str, backend: str, model: Path, allowed: list[Variant]) -> Exception:
    where = f" on --backend {backend}" if backend != "auto" else ""
    if precision == PRECISION_INT8 and backend != "openvino" and not allowed:
        return UsageError(f"--precision int8: {model.name} has no INT8 variant beside it; make "
                          f"one with `sr-export quantize {model.name}`")
    if not allowed:
        runs = {PRECISION_BF16: "BF16 runs on OpenVINO (--backend openvino or auto)",
                PRECISION_INT8: "INT8 runs on ONNX Runtime (--backend onnxruntime or auto)"}
        return UsageError(f"--precision {precision}{where}: there is no such path for "
                          f"{model.name}; {runs.get(precision, 'use --precision auto')}")
    detail = "; ".join(f"{c.label}: {c.why}" for c in allowed)
    error = AccuracyGateError if any("gate" in c.why for c in allowed) else \
        EngineUnavailableError
    return error(f"--precision {precision}{where} is not usable for {model.name} here "
                 f"({detail})")


def choose_engine(model: Path, backend: str = "auto", precision: str = "auto") -> Choice:
    """The engine, file and precision to run ``model`` with (see the module's rules)."""
    check_precision_name(precision)
    model = Path(model)
    plain = Choice(model, backend, None if precision == "auto" else precision, wanted=precision)
    if backend not in ("auto", *CPU_BACKENDS) or model.suffix != ".onnx":
        return plain
    if not model.is_file():
        raise UsageError(f"model not found: {model}")
    if family_base(model) != model:
        return Choice(model, backend, None, None, f"{model.name}: variant named explicitly",
                      precision)
    props = read_metadata_props(model)
    if DESCRIPTION_KEY not in props:
        return Choice(model, backend, None, None,
                      f"{model.name}: not an sr-edge model, no variants considered", precision)
    candidates = discover_candidates(model)
    allowed = [c for c in candidates if _allowed(c, backend, precision)]
    usable = [c for c in allowed if c.usable]
    if not usable:
        if backend == "openvino" and precision in ("auto", PRECISION_FP32):
            return Choice(model, backend, PRECISION_FP32, wanted=precision)  # load says why
        raise _unavailable(precision, backend, model, allowed)
    exact = [c for c in usable if c.precision == PRECISION_FP32]
    reference = exact[0] if exact else usable[0]  # what a faster candidate must beat
    base = reference.speed

    def faster(c: Variant) -> bool:
        return c.speed is not None and base is not None and c.speed >= MIN_SPEEDUP * base

    best = max([reference, *(c for c in usable if c is not reference and faster(c))],
               key=lambda c: c.speed or 0.0)
    notes = []
    for candidate in usable:
        if candidate is best:
            continue
        if candidate.speed is None:
            notes.append(f"{candidate.label} skipped: not timed on this CPU class "
                         f"({tune_hint(model)})")
        elif base is None:
            notes.append(f"{candidate.label} skipped: {reference.label} was not timed here to "
                         "compare it with")
        elif candidate is reference or faster(candidate):
            notes.append(f"{candidate.label} slower ({candidate.speed:.2f}x)")
        else:
            notes.append(f"{candidate.label} not faster here ({candidate.speed:.2f}x; it must "
                         f"reach {MIN_SPEEDUP:.2f}x {reference.label} to replace it)")
    skipped: dict[str, list[str]] = {}  # one note per reason ("openvino is not installed")
    for c in allowed:
        if not c.usable:
            skipped.setdefault(c.why, []).append(c.label)
    notes += [f"{' and '.join(labels)} skipped: {why}" for why, labels in skipped.items()]
    speed = ""
    if best.speed is not None and best is not candidates[0]:
        speed = f", {best.speed:.2f}x ONNX Runtime FP32 ({best.speed_origin})"
    reason = (f"engine: {best.backend} {best.precision} running {best.path.name}{speed}: "
              f"{best.why}")
    if notes:
        reason += "; " + "; ".join(notes)
    load_precision = best.precision if best.backend == "openvino" else None
    if backend == "auto":
        return Choice(best.path, "auto", load_precision, best.backend, reason, precision)
    return Choice(best.path, best.backend, load_precision, None, reason, precision)


def check_engine_precision(engine_precision: str, engine_name: str, wanted: str) -> None:
    """After loading: a precision asked for must be the one that runs (a checkpoint, a
    TensorRT plan or a variant named explicitly has its own)."""
    if wanted not in ("auto", engine_precision):
        raise UsageError(f"--precision {wanted}: the engine that loaded ({engine_name}) runs "
                         f"{engine_precision}; choose --precision {engine_precision} or auto, or "
                         "another --model/--backend")
