"""What `sr-run` does, as a library call: validate, load, run, write, report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from sr_runtime.defaults import DEFAULT_MODEL
from sr_runtime.engines.registry import load_engine
from sr_runtime.errors import UsageError
from sr_runtime.grid import parse_bbox, parse_time
from sr_runtime.paths import check_output
from sr_runtime.pipeline import UNITS, StepResult, super_resolve_step
from sr_runtime.sinks.cog import write_cog
from sr_runtime.sources.registry import resolve_source


@dataclass
class RunOptions:
    time: str
    out: Path
    model: Path | None = None
    source: str = "sample"
    bbox: str | None = None
    backend: str = "auto"
    config: Path | None = None
    lr_out: Path | None = None
    units: str = "K"
    nearest: bool = False
    overwrite: bool = False


def resolve_model(model: Path | None, console: Console) -> Path:
    if model is not None:
        return model
    if not DEFAULT_MODEL.is_file():
        raise UsageError("no --model given and this installation has no default model; "
                         "pass --model model.onnx")
    console.print(f"using the default model {DEFAULT_MODEL.name} (pass --model to choose)")
    return DEFAULT_MODEL


def run_single(options: RunOptions, console: Console) -> StepResult:
    """Validate everything cheap first, then read, infer and write one step."""
    wanted = parse_time(options.time)
    bbox = parse_bbox(options.bbox) if options.bbox else None
    if options.units not in UNITS:
        raise UsageError(f"--units must be one of {', '.join(UNITS)}, not {options.units!r}")
    outputs = [options.out] + ([options.lr_out] if options.lr_out else [])
    for path in outputs:
        check_output(path, options.overwrite)

    source = resolve_source(options.source)
    if options.source == "sample":
        console.print(f"using the embedded sample DataCube (pass --source to choose): "
                      f"{source.label}")
    model = resolve_model(options.model, console)
    selection = load_engine(options.backend, model, config=options.config)
    for name, reason in selection.skipped:
        console.print(f"backend {name} skipped: {reason}")
    console.print(f"backend: {selection.engine.name}")

    dataset = source.open()
    result = super_resolve_step(dataset, selection.engine, wanted, bbox=bbox,
                                units=options.units, nearest=options.nearest,
                                source_label=source.label)
    write_cog(result.sr, options.out)
    console.print(f"wrote {options.out}: SR {result.sr.data.shape[0]}x{result.sr.data.shape[1]} "
                  f"{result.sr.variable} [{result.sr.units}] at "
                  f"{result.sr.tags.get('resolution')}")
    if options.lr_out:
        write_cog(result.lr, options.lr_out)
        console.print(f"wrote {options.lr_out}: LR input {result.lr.data.shape[0]}x"
                      f"{result.lr.data.shape[1]}")
    return result
