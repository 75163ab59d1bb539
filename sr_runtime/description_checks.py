"""Validate a model description read from a file before anything trusts it.

The description travels inside an ONNX file anyone can edit or corrupt. Every value the runtime
uses (scale, variables and units, halo, normalization) is checked for type and range here, so
that a broken file ends in one line naming the bad key, never in a ``KeyError`` deep inside a
run or, worse, in output computed with a wrong scale or unit.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from sr_runtime.errors import ModelMismatchError

if TYPE_CHECKING:
    from sr_runtime.description import ModelDescription, StaticSpec, VariableSpec

#: Units a model may declare, with the physically possible range of the variable. The graph
#: takes and returns physical fields and the sources deliver kelvin, so kelvin is the only unit.
PHYSICAL_RANGE = {"K": (150.0, 350.0)}
MAX_SCALE = 64
#: Larger than the whole LR globe (1025 columns): a bigger halo is a corrupt value.
MAX_HALO_LR = 4096
MAX_CHANNELS = 65536
_SHA256 = re.compile(r"[0-9a-f]{64}")
_D = TypeVar("_D", bound="ModelDescription")


class _Invalid(ValueError):
    """One problem with the description, named by its key."""


def _int(raw: Mapping[str, Any], key: str, low: int, high: int, default: int | None = None) -> int:
    value = raw.get(key, default)
    if value is None:
        raise _Invalid(f"'{key}' is missing")
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(f"'{key}' must be an integer, not {json.dumps(value)[:40]}")
    if not low <= value <= high:
        raise _Invalid(f"'{key}' is {value}, outside {low}..{high}")
    return value


def _number(raw: Mapping[str, Any], key: str, *, positive: bool = False,
            minimum: float | None = None, default: float | None = None) -> float:
    value = raw.get(key, default)
    if value is None:
        raise _Invalid(f"'{key}' is missing")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Invalid(f"'{key}' must be a number, not {json.dumps(value)[:40]}")
    if not math.isfinite(value):
        raise _Invalid(f"'{key}' is {value}, not a finite number")
    if positive and value <= 0:
        raise _Invalid(f"'{key}' is {value:g}, it must be positive")
    if minimum is not None and value < minimum:
        raise _Invalid(f"'{key}' is {value:g}, less than {minimum:g}")
    return float(value)


def _text(raw: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = raw.get(key, default)
    if value is None:
        raise _Invalid(f"'{key}' is missing")
    if not isinstance(value, str):
        raise _Invalid(f"'{key}' must be a string, not {json.dumps(value)[:40]}")
    return value


def _objects(raw: Mapping[str, Any], key: str, required: bool) -> list[Mapping[str, Any]]:
    value = raw.get(key, None if required else [])
    if value is None:
        raise _Invalid(f"'{key}' is missing")
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise _Invalid(f"'{key}' must be a list of objects, not {json.dumps(value)[:40]}")
    return value


def _variable(raw: Mapping[str, Any], index: int) -> VariableSpec:
    from sr_runtime.description import VariableSpec

    where = f"variables[{index}]"
    try:
        name = _text(raw, "name")
        if not name.strip():
            raise _Invalid("'name' is empty")
        units = _text(raw, "units")
        if units not in PHYSICAL_RANGE:
            raise _Invalid(f"'units' is {units!r}; sr-edge models take and return "
                           f"{' or '.join(PHYSICAL_RANGE)}")
        return VariableSpec(name=name, units=units, lr_mean=_number(raw, "lr_mean"),
                            lr_std=_number(raw, "lr_std", positive=True),
                            hr_mean=_number(raw, "hr_mean"),
                            hr_std=_number(raw, "hr_std", positive=True))
    except _Invalid as exc:
        raise _Invalid(f"{where}: {exc}") from None


def _static(raw: Mapping[str, Any], index: int) -> StaticSpec:
    from sr_runtime.description import StaticSpec

    try:
        name, units = _text(raw, "name"), _text(raw, "units")
        if not name.strip():
            raise _Invalid("'name' is empty")
        if not units.strip():
            raise _Invalid("'units' is empty")
        return StaticSpec(name=name, units=units, mean=_number(raw, "mean"),
                          std=_number(raw, "std", positive=True))
    except _Invalid as exc:
        raise _Invalid(f"static_inputs[{index}]: {exc}") from None


def _arch_params(raw: Mapping[str, Any]) -> dict[str, object]:
    params = raw.get("arch_params", {})
    if not isinstance(params, dict):
        raise _Invalid(f"'arch_params' must be an object, not {json.dumps(params)[:40]}")
    for key in ("n_channels", "n_blocks", "in_channels", "out_channels", "scaling_factor",
                "large_kernel_size", "small_kernel_size"):
        if key in params:
            _int(params, key, 0, MAX_CHANNELS)
    return dict(params)


def _validated(cls: type[_D], raw: object, origin: str) -> _D:
    from sr_runtime.description import FORMAT_VERSION

    if not isinstance(raw, dict):
        kind = {list: "array", str: "string", type(None): "null", bool: "boolean"}.get(
            type(raw), "number")
        raise _Invalid(f"it is a JSON {kind}, not an object")
    version = _int(raw, "format_version", 0, 10**6, default=0)
    if version > FORMAT_VERSION:
        raise ModelMismatchError(
            f"{origin}: model description format {version} is newer than this sr-edge "
            f"understands ({FORMAT_VERSION}); upgrade sr-edge: pip install -U sr-edge")
    variables = tuple(_variable(v, i) for i, v in enumerate(_objects(raw, "variables", True)))
    if not variables:
        raise _Invalid("'variables' is empty: the model predicts nothing")
    names = [v.name for v in variables]
    if len(set(names)) != len(names):
        raise _Invalid(f"'variables' names a variable twice ({', '.join(names)})")
    checkpoint = _text(raw, "checkpoint_sha256", "")
    if checkpoint and not _SHA256.fullmatch(checkpoint):
        raise _Invalid("'checkpoint_sha256' is not a hex sha256")
    producer = raw.get("producer", {})
    if not isinstance(producer, dict):
        raise _Invalid(f"'producer' must be an object, not {json.dumps(producer)[:40]}")
    provenance = raw.get("provenance", {})
    if not isinstance(provenance, dict) or not all(isinstance(v, str)
                                                   for v in provenance.values()):
        raise _Invalid("'provenance' must be an object of strings")
    rewrites = raw.get("graph_rewrites", [])
    if not isinstance(rewrites, list) or not all(isinstance(r, str) for r in rewrites):
        raise _Invalid("'graph_rewrites' must be a list of strings")
    statics = tuple(_static(s, i) for i, s in enumerate(_objects(raw, "static_inputs", False)))
    static_names = [s.name for s in statics]
    if len(set(static_names)) != len(static_names):
        raise _Invalid(f"'static_inputs' names a field twice ({', '.join(static_names)})")
    clock = _clock_inputs(raw)
    return cls(
        scale=_int(raw, "scale", 1, MAX_SCALE),
        variables=variables,
        architecture=_text(raw, "architecture", "SRResNet"),
        arch_params=_arch_params(raw),
        halo_lr=_int(raw, "halo_lr", 0, MAX_HALO_LR, default=0),
        static_inputs=statics,
        checkpoint_sha256=checkpoint,
        producer={str(k): str(v) for k, v in producer.items()},
        graph_rewrites=tuple(rewrites),
        lr_step_deg=_number(raw, "lr_step_deg", minimum=0.0, default=0.0),
        format_version=version,
        provenance={str(k): v for k, v in provenance.items()},
        clock_inputs=clock,
    )


def _clock_inputs(raw: Mapping[str, Any]) -> tuple[str, ...]:
    from sr_runtime.clock import CLOCK_FEATURES

    value = raw.get("clock_inputs", [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Invalid(f"'clock_inputs' must be a list of strings, not {json.dumps(value)[:40]}")
    if value and tuple(value) != CLOCK_FEATURES:
        raise _Invalid(f"'clock_inputs' is {value}; this sr-edge computes "
                       f"{list(CLOCK_FEATURES)}, in that order")
    return tuple(value)


def parse_description(cls: type[_D], text: str, origin: str = "model") -> _D:
    """``cls`` (:class:`ModelDescription`) from its JSON text, or one line saying what is wrong."""
    fix = "re-export the model with `sr-export to-onnx CHECKPOINT`"
    try:
        raw = json.loads(text)
    except (TypeError, ValueError) as exc:
        detail = f"{exc.msg} at character {exc.pos}" if isinstance(exc, json.JSONDecodeError) \
            else type(exc).__name__
        raise ModelMismatchError(f"{origin}: its sr-edge description is not valid JSON "
                                 f"({detail}); {fix}") from None
    try:
        return _validated(cls, raw, origin)
    except _Invalid as exc:
        raise ModelMismatchError(f"{origin}: its sr-edge description is invalid ({exc}); "
                                 f"{fix}") from None
