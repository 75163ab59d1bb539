"""What `sr-run` does, as a library call: validate, load, run, write, report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console

from sr_runtime.defaults import DEFAULT_MODEL, sample_hr_store
from sr_runtime.engines.registry import load_engine
from sr_runtime.engines.tuning import tuned_tile
from sr_runtime.engines.variants import select_variant
from sr_runtime.errors import UsageError
from sr_runtime.fields import GeoField
from sr_runtime.grid import hr_axis, parse_bbox, parse_time, region_slices, select_time
from sr_runtime.paths import check_output
from sr_runtime.pipeline import KELVIN_OFFSET, UNITS, check_compatible, output_units, read_lr
from sr_runtime.sinks.templates import is_template, render_all
from sr_runtime.sinks.zarr_store import ZarrSink, is_zarr_path
from sr_runtime.sources.registry import resolve_source
from sr_runtime.stream import (
    CogSteps,
    StepOutcome,
    StepWorker,
    StreamSummary,
    check_no_overlap,
    distributed_client,
    parse_every,
    run_distributed,
    run_stream,
    select_range,
)
from sr_runtime.tiling import cap_tile_for_engine, tile_for_budget


@dataclass
class RunOptions:
    out: Path
    time: str | None = None
    model: Path | None = None
    source: str = "sample"
    bbox: str | None = None
    backend: str = "auto"
    config: Path | None = None
    lr_out: Path | None = None
    units: str = "K"
    nearest: bool = False
    overwrite: bool = False
    start: str | None = None
    end: str | None = None
    every: str = "1h"
    whole_globe: bool = False
    max_memory: float | None = None
    resume: bool = False
    quiet: bool = False
    edh_url: str | None = None
    workers: int | None = None
    scheduler: str | None = None
    preview: Path | None = None
    report: bool = False
    truth: str | None = None


def resolve_model(model: Path | None, console: Console) -> Path:
    if model is not None:
        return model
    if not DEFAULT_MODEL.is_file():
        raise UsageError("no --model given and this installation has no default model; "
                         "pass --model model.onnx")
    console.print(f"using the default model {DEFAULT_MODEL.name} (pass --model to choose)")
    return DEFAULT_MODEL


class Reporter:
    """A rich progress bar (steps, HR Mpix/s, ETA) on a terminal, plain lines otherwise."""

    def __init__(self, console: Console, total: int, quiet: bool) -> None:
        self.console, self.total, self.quiet = console, total, quiet
        self.bar = None
        self.task = None

    def __enter__(self) -> Reporter:
        if not self.quiet and self.console.is_terminal and self.total > 1:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(TextColumn("super-resolving"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                                console=self.console, transient=False)
            self.bar.start()
            self.task = self.bar.add_task("steps", total=self.total, rate="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def __call__(self, outcome: StepOutcome, summary: StreamSummary) -> None:
        if self.quiet or self.total == 1:
            return
        rate = f"{summary.hr_mpix_per_s:.1f} HR Mpix/s"
        if self.bar is not None:
            self.bar.update(self.task, advance=1, rate=rate)
            return
        when = pd.Timestamp(outcome.time).strftime("%Y-%m-%dT%H:%M")
        done = summary.steps + summary.skipped
        self.console.print(f"[{done}/{self.total}] {when}: wrote {', '.join(outcome.outputs)} "
                           f"({rate})", soft_wrap=True)


def _validate(options: RunOptions):  # type: ignore[no-untyped-def]
    if options.time and (options.start or options.end):
        raise UsageError("give either --time or --start/--end, not both")
    if not options.time and not (options.start and options.end):
        raise UsageError("give --time for one step, or --start and --end for a range")
    wanted = parse_time(options.time) if options.time else None
    span = (parse_time(options.start), parse_time(options.end), parse_every(options.every)) if (
        not options.time) else None
    if options.whole_globe and options.bbox:
        raise UsageError("--global and --bbox exclude each other; give one")
    bbox = parse_bbox(options.bbox) if options.bbox else None
    if options.units not in UNITS:
        raise UsageError(f"--units must be one of {', '.join(UNITS)}, not {options.units!r}")
    if options.max_memory is not None and options.max_memory <= 0:
        raise UsageError(f"--max-memory must be positive (MB), not {options.max_memory:g}")
    if options.workers is not None and options.workers < 1:
        raise UsageError(f"--workers must be at least 1, not {options.workers}")
    if is_zarr_path(options.out) and options.lr_out:
        raise UsageError("--lr-out works with COG outputs only; drop it or write COGs")
    if options.overwrite and options.resume:
        raise UsageError("--overwrite and --resume exclude each other; give one")
    if (options.preview or options.report) and (
            not options.time or is_zarr_path(options.out) or is_template(options.out)):
        raise UsageError("--preview and --report look at one result: use them with --time and "
                         "a single COG --out")
    if options.preview:
        check_output(options.preview, options.overwrite)
    return wanted, span, bbox


def run(options: RunOptions, console: Console) -> StreamSummary:
    """Validate everything cheap first, then stream the selected steps to the outputs."""
    wanted, span, bbox = _validate(options)
    zarr_out, template = is_zarr_path(options.out), is_template(options.out)
    plain = [p for p in (options.out, options.lr_out) if p and not is_template(p)]
    if not zarr_out:
        for path in plain:
            check_output(Path(path), options.overwrite or options.resume)

    source = resolve_source(options.source, edh_url=options.edh_url)
    say = (lambda text: None) if options.quiet else console.print  # noqa: E731
    if options.source == "sample":
        say(f"using the embedded sample DataCube (pass --source to choose): {source.label}")
    model = resolve_model(options.model, console)
    if options.backend in ("auto", "onnxruntime") and model.suffix == ".onnx":
        model, why = select_variant(model)  # fastest variant that passed its accuracy gate
        say(why)
    selection = load_engine(options.backend, model, config=options.config)
    for line in selection.summary():
        say(line)
    engine = selection.engine

    dataset = source.open()
    description = engine.description
    check_compatible(dataset, description, source.label)
    times = dataset.time.values
    if wanted is not None:
        indices = [select_time(times, wanted, options.nearest)]
    else:
        indices = select_range(times, *span, nearest=options.nearest)
    step_times = np.asarray(times[indices], dtype="datetime64[ns]")
    if len(indices) > 1 and not (zarr_out or template):
        raise UsageError(f"{len(indices)} time steps need one output each: use a name template "
                         "such as --out 'sr_{time:%Y%m%dT%H}.tif' or one store --out sr.zarr")

    lat_slice, lon_slice = region_slices(dataset.latitude.values, dataset.longitude.values, bbox)
    from sr_runtime.grid import region_note, time_note  # what --nearest and --bbox really chose

    for note in (time_note(times, indices, wanted, span),
                 region_note(dataset.latitude.values, dataset.longitude.values, bbox)):
        if note and not options.quiet:
            console.print(note, soft_wrap=True)  # one line, to be found in logs
    lat = dataset.latitude.values[lat_slice].astype(np.float64)
    lon = dataset.longitude.values[lon_slice].astype(np.float64)
    tile = tile_for_budget(description, options.max_memory)
    tuned = tuned_tile(model) if options.max_memory is None else None
    tile = cap_tile_for_engine(min(tile, tuned) if tuned else tile, engine)
    tile_arg = None if tile >= max(lat.size, lon.size) else tile

    units = output_units(description, options.units)
    lr_sink = None
    if zarr_out:
        from sr_runtime.grid import grid_step

        scale = description.scale
        sink = ZarrSink(options.out, step_times,
                        hr_axis(lat, scale, grid_step(lat, "latitude")),
                        hr_axis(lon, scale, grid_step(lon, "longitude")),
                        description.variables[0].name, units,
                        {"source": source.label, "backend": engine.name,
                         "model_sha256": description.checkpoint_sha256,
                         "resolution": f"SR x{scale}"})
    else:
        paths = render_all(options.out, step_times, description.variables[0].name)
        sink = CogSteps(paths)
        if options.lr_out:
            lr_paths = render_all(options.lr_out, step_times, description.variables[0].name)
            check_no_overlap(paths, lr_paths)
            lr_sink = CogSteps(lr_paths)
    for each in (sink, lr_sink):
        if each is not None:
            each.check(options.overwrite, options.resume)
    skip = sink.prepare(options.overwrite, options.resume)
    if lr_sink is not None:
        skip &= lr_sink.prepare(options.overwrite, options.resume)
    if skip:
        say(f"--resume: {len(skip)} of {len(indices)} steps already written, skipping them")

    worker = StepWorker(bbox, options.units, tile_arg, source.label, sink, lr_sink)
    with Reporter(console, len(indices), options.quiet) as reporter:
        if options.workers or options.scheduler:
            client = distributed_client(options.workers, options.scheduler)
            try:
                summary = run_distributed(client, source, model, engine.name, options.config,
                                          worker, indices, skip=skip, progress=reporter)
            finally:
                client.close()
                if not options.scheduler and client.cluster is not None:
                    client.cluster.close()
        else:
            summary = run_stream(dataset, engine, worker, indices, skip=skip,
                                 progress=reporter)
    if len(indices) == 1 and not zarr_out and summary.steps == 1:
        hr_h, hr_w = lat.size * description.scale, lon.size * description.scale
        say(f"wrote {summary.outputs[0]}: SR {hr_h}x{hr_w} {description.variables[0].name} "
            f"[{units}] at SR x{description.scale}")
        if lr_sink is not None:
            say(f"wrote {summary.outputs[1]}: LR input {lat.size}x{lon.size}")
    else:
        say(f"done: {summary.steps} steps written, {summary.skipped} skipped, "
            f"{summary.seconds:.1f} s, {summary.hr_mpix_per_s:.1f} HR Mpix/s")
    if options.preview or options.report:
        look_at_result(options, dataset, engine.description, indices[0], bbox, units, console)
    return summary


def truth_location(options: RunOptions) -> str | None:
    """``--truth``, else the sample's HR store when the source is the sample."""
    if options.truth:
        return options.truth
    return str(sample_hr_store()) if options.source == "sample" else None


def look_at_result(options: RunOptions, dataset, description, index: int, bbox,  # type: ignore[no-untyped-def]
                   units: str, console: Console) -> None:
    """--preview (LR | SR | HR PNG) and --report (scores against HR truth) for one step."""
    from sr_runtime.pipeline import to_units
    from sr_runtime.quicklook import align_truth, read_cog_field, render_preview, report_scores

    variable = description.variables[0]
    valid_time = np.datetime64(dataset.time.values[index], "ns")
    sr = read_cog_field(options.out, valid_time, variable.name)
    lr_values, lat, lon = read_lr(dataset, description, index, bbox)
    lr = GeoField(to_units(lr_values[0], variable.units, units)[0], lat, lon, valid_time,
                  variable.name, units)
    location = truth_location(options)
    truth = None
    if location is not None:
        offset = -KELVIN_OFFSET if units == "degC" and variable.units == "K" else 0.0
        truth = align_truth(resolve_source(location).open(), sr, offset)
    when = pd.Timestamp(valid_time).strftime("%Y-%m-%dT%H:%M")
    if options.report:
        if truth is None:
            raise UsageError(f"--report needs HR truth at {when}: "
                             + (f"{location} has none for that time" if location else
                                "pass --truth with the matching high-resolution store"))
        scores = report_scores(sr, truth)
        console.print(f"skill at {when} vs HR truth: RMSE {scores.rmse:.3f} {units}, PSNR "
                      f"{scores.psnr:.2f} dB, SSIM {scores.ssim:.4f} (data range "
                      f"{scores.data_range:.2f} {units})")
    if options.preview:
        render_preview(options.preview, lr, sr, truth)
        panels = "LR | SR | HR" if truth is not None else "LR | SR (no HR truth at this time)"
        console.print(f"wrote {options.preview}: {panels}")


def run_single(options: RunOptions, console: Console) -> StreamSummary:
    """One step (``options.time``): kept for callers of the first API."""
    return run(options, console)
