"""Read the ESA demo's ``config.json``: architecture, variable names and normalization.

The demo's training dumps its YAML config with ``json.dump`` plus ``dataset.lr_mean/lr_std/
hr_mean/hr_std`` (deg C). ``data_variable`` (input) and ``data_target`` (output) are plain
strings there (``"t2m"``); a list of names is accepted too. Every value is checked, so a wrong
file ends in one line naming the key, never in a rebuilt model with the wrong channels.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from sr_runtime.errors import ModelMismatchError, UsageError

CELSIUS_OFFSET = 273.15
DEMO_STAT_KEYS = ("lr_mean", "lr_std", "hr_mean", "hr_std")
DEMO_MODEL_KEYS = ("large_kernel_size", "small_kernel_size", "n_channels", "n_blocks",
                   "scaling_factor")
DEFAULT_UNIT = "Temperature (C)"  # the demo converts kelvin to Celsius before normalizing
_CELSIUS = ("c", "degc", "deg c", "celsius", "°c")
_KELVIN = ("k", "kelvin")


@dataclass(frozen=True)
class DemoConfig:
    """What ``config.json`` says about the network and its data, stats converted to kelvin."""

    model: dict[str, int]
    inputs: tuple[str, ...]
    targets: tuple[str, ...]
    stats_k: dict[str, float]  # lr_mean, lr_std, hr_mean, hr_std (means in K)


def _section(config: dict, name: str, path: Path) -> dict:
    section = config.get(name, {})
    if not isinstance(section, dict):
        raise UsageError(f"{path}: '{name}' must be an object, not {json.dumps(section)[:40]}")
    return section


def variable_names(value: object, key: str, path: Path) -> tuple[str, ...]:
    """``"t2m"`` or ``["t2m", ...]`` -> names; anything else is refused."""
    names = [value] if isinstance(value, str) else value
    if (not isinstance(names, list) or not names
            or not all(isinstance(n, str) and n.strip() for n in names)):
        raise UsageError(f"{path}: dataset.{key} must be a variable name such as \"t2m\" or a "
                         f"list of names, not {json.dumps(value)[:40]}")
    return tuple(n.strip() for n in names)


def _celsius_offset(unit: object, path: Path) -> float:
    if not isinstance(unit, str):
        raise UsageError(f"{path}: dataset.unit must be a string such as \"Temperature (C)\"")
    text = unit.strip().lower()
    inner = text[text.rfind("(") + 1:text.rfind(")")].strip() if "(" in text else text
    if inner in _CELSIUS:
        return CELSIUS_OFFSET
    if inner in _KELVIN:
        return 0.0
    raise UsageError(f"{path}: dataset.unit {unit!r} is neither Celsius nor kelvin; the demo "
                     "writes \"Temperature (C)\"")


def _stat(dataset: dict, key: str, path: Path) -> float:
    value = dataset[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UsageError(f"{path}: dataset.{key} must be a finite number, not "
                         f"{json.dumps(value)[:40]}")
    if key.endswith("_std") and value <= 0:
        raise UsageError(f"{path}: dataset.{key} is {value:g}; a standard deviation must be "
                         "positive")
    return float(value)


def _model_value(section: dict, key: str, path: Path) -> int:
    value = section[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{path}: model.{key} must be a positive integer, not "
                         f"{json.dumps(value)[:40]}")
    return value


def read_demo_config(path: Path) -> DemoConfig:
    """Parse and check the demo's ``config.json`` (the exact shape is in esa-demo.md)."""
    if not path.is_file():
        raise UsageError(f"config file not found: {path}")
    try:
        config = json.loads(path.read_text())
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not a text JSON file ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(config, dict):
        raise UsageError(f"{path} holds a JSON {type(config).__name__}, not the demo's config "
                         "object")
    model, dataset = _section(config, "model", path), _section(config, "dataset", path)
    missing = [f"model.{k}" for k in DEMO_MODEL_KEYS if k not in model]
    missing += [f"dataset.{k}" for k in DEMO_STAT_KEYS if k not in dataset]
    if missing:
        raise UsageError(f"{path} lacks values needed to rebuild the model: "
                         f"{', '.join(missing)}; add them (the demo writes them after training)")
    arch = model.get("architecture", "SRResNet")
    if arch != "SRResNet":
        raise ModelMismatchError(f"{path} describes a {arch!r} model; sr-edge exports "
                                 "SRResNet only")
    default = dataset.get("data_target", dataset.get("data_variable", "t2m"))
    inputs = variable_names(dataset.get("data_variable", default), "data_variable", path)
    targets = variable_names(dataset.get("data_target", default), "data_target", path)
    if inputs != targets:
        raise ModelMismatchError(f"{path}: the model reads {', '.join(inputs)} and predicts "
                                 f"{', '.join(targets)}; sr-edge runs models that super-resolve "
                                 "the variables they read")
    offset = _celsius_offset(dataset.get("unit", DEFAULT_UNIT), path)
    stats = {k: _stat(dataset, k, path) for k in DEMO_STAT_KEYS}
    stats["lr_mean"] += offset
    stats["hr_mean"] += offset
    return DemoConfig({k: _model_value(model, k, path) for k in DEMO_MODEL_KEYS}, inputs,
                      targets, stats)
