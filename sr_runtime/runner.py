"""What `sr-run` does, as a library call: check the request, load, run, write, report.

:func:`run` takes a typed :class:`sr_runtime.request.RunRequest` (the CLI parses its text into
one; scripts build their own) and returns the run's :class:`StreamSummary`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from sr_runtime.defaults import (
    DEFAULT_MODEL,
    default_model_hint,
    sample_hr_store,
    sample_lr_store,
)
from sr_runtime.description import ModelDescription
from sr_runtime.engines.base import Engine
from sr_runtime.engines.choice import check_engine_precision, choose_engine
from sr_runtime.engines.registry import load_engine
from sr_runtime.engines.tuning import tuned_tile
from sr_runtime.errors import SrEdgeError, UsageError
from sr_runtime.fields import GeoField
from sr_runtime.grid import BBox, region_slices, sr_axes
from sr_runtime.locks import output_lock
from sr_runtime.machine import physical_cores
from sr_runtime.paths import check_distinct, check_not_input, check_output, sha256_file
from sr_runtime.pipeline import (
    KELVIN_OFFSET,
    check_compatible,
    output_units,
    output_units_of,
    read_lr,
)
from sr_runtime.request import RunRequest
from sr_runtime.sinks.base import Sink
from sr_runtime.sinks.files import FileSteps
from sr_runtime.sinks.kinds import COG, ZARR, output_kind
from sr_runtime.sinks.templates import is_template, render_all
from sr_runtime.sinks.zarr_store import ZarrSink, check_store_path
from sr_runtime.sources.base import DataSource
from sr_runtime.sources.registry import resolve_source
from sr_runtime.steps import StepWorker
from sr_runtime.stream import run_stream
from sr_runtime.summary import Progress, StreamSummary
from sr_runtime.tiling import cap_tile_for_engine, tile_for_budget
from sr_runtime.times import select_range, select_time

if TYPE_CHECKING:
    from sr_runtime.quicklook import Truth


def resolve_model(model: Path | None, say: Callable[[str], object]) -> Path:
    if model is not None:
        return model
    if not DEFAULT_MODEL.is_file():
        raise UsageError("no --model given and this installation has no default model; "
                         "pass --model model.onnx")
    say(f"using the default model {DEFAULT_MODEL.name} (pass --model to choose)")
    return DEFAULT_MODEL


def _local_inputs(options: RunRequest, model: Path) -> list[tuple[str, Path]]:
    """Files and stores this run reads that are on this machine (outputs must not be them)."""
    inputs = [("--model", model)]
    if options.config:
        inputs.append(("--config", options.config))
    if options.source == "sample":
        inputs.append(("--source", sample_lr_store()))
    elif "://" not in options.source and not options.source.startswith("edh"):
        inputs.append(("--source", Path(options.source)))
    location = truth_location(options)
    if location and "://" not in location:
        inputs.append(("--truth", Path(location)))
    if options.static and "://" not in options.static and not options.static.startswith("edh"):
        inputs.append(("--static", Path(options.static)))
    return inputs


def _check_fixed_outputs(options: RunRequest, kind: str, model: Path) -> list[tuple[str, Path]]:
    """The outputs whose names need no time step: usable, distinct, none of them an input."""
    keep = options.overwrite or options.resume
    fixed: list[tuple[str, Path]] = []
    for option, path in (("--out", options.out), ("--lr-out", options.lr_out),
                         ("--preview", options.preview)):
        if path is None or is_template(path):
            continue
        path = Path(path)
        if option == "--out" and kind == ZARR:
            check_store_path(path, options.overwrite, options.resume)
        else:
            check_output(path, options.overwrite if option == "--preview" else keep, option)
        fixed.append((option, path))
    check_distinct(fixed)
    check_not_input(fixed, _local_inputs(options, model))
    return fixed


def _precision(model: Path, engine: Engine) -> str:
    """fp32 for an exact model, the variant's precision (int8...), a TensorRT plan's recipe."""
    if engine.precision != "fp32":
        return engine.precision
    try:
        if model.suffix == ".onnx":
            from sr_runtime.engines.variants import VARIANT_KEY, read_metadata_props

            record = json.loads(read_metadata_props(model).get(VARIANT_KEY, "{}") or "{}")
            return str(record.get("precision", "fp32")) if isinstance(record, dict) else "fp32"
        if model.suffix == ".engine":
            from sr_runtime.engines.tensorrt.fingerprint import read_record

            return str(read_record(model).fingerprint.precision)
    except (SrEdgeError, ValueError, OSError):
        return "unknown"
    return "fp32"


def region_text(lat: np.ndarray, lon: np.ndarray) -> str:
    """W,S,E,N of the LR window's cells (edges), as recorded in outputs."""
    from sr_runtime.grid import grid_step

    dlat, dlon = grid_step(lat, "latitude"), grid_step(lon, "longitude")
    return (f"{lon[0] - dlon / 2:.5f},{lat[0] - dlat / 2:.5f},"
            f"{lon[-1] + dlon / 2:.5f},{lat[-1] + dlat / 2:.5f}")


def run_settings(model: Path, engine: Engine, units: str, source_label: str,
                 lat: np.ndarray, lon: np.ndarray) -> dict[str, str]:
    """What shapes this run's values, recorded in every output and checked by --resume."""
    ran = Path(engine.path or model)
    return {"model_sha256": engine.model_file_sha256 or sha256_file(ran),
            "checkpoint_sha256": engine.description.checkpoint_sha256 or "unknown",
            "model_file": ran.name, "precision": _precision(ran, engine), "units": units,
            "region": region_text(lat, lon), "source": source_label}


def _truth_for_report(options: RunRequest, description: ModelDescription,
                      valid_time: np.datetime64, lat: np.ndarray, lon: np.ndarray,
                      units: str) -> dict[str, Truth]:
    """HR truth on the SR grid for each variable the truth has at that time, read before
    anything is written: --report without truth at that time fails before the COG exists."""
    if not (options.preview or options.report):
        return {}
    from sr_runtime.quicklook import align_truth_grid

    hr_lat, hr_lon = sr_axes(lat, lon, description.scale)
    location = truth_location(options)
    truths: dict[str, Truth] = {}
    if location is not None:
        dataset = resolve_source(location).open()
        for variable in description.variables:
            offset = -KELVIN_OFFSET if units == "degC" and variable.units == "K" else 0.0
            truth = align_truth_grid(dataset, variable.name, valid_time, hr_lat, hr_lon, offset)
            if truth is not None:
                truths[variable.name] = truth
    if options.report and not truths:
        when = pd.Timestamp(valid_time).strftime("%Y-%m-%dT%H:%M")
        raise UsageError(f"--report needs HR truth at {when}: "
                         + (f"{location} has none for that time" if location else
                            "pass --truth with the matching high-resolution store"))
    return truths


def _region_statics(options: RunRequest, description: ModelDescription, lat: np.ndarray,
                    lon: np.ndarray, say: Say) -> tuple[np.ndarray | None, str]:
    """The model's static HR fields on the SR grid of the region (read once per run), from
    --static or the source's companion store, and that store's label; (None, "") for a model
    that takes none."""
    if not description.static_inputs:
        if options.static:
            say(f"--static {options.static} not used: the model takes no static HR fields")
        return None, ""
    from sr_runtime.statics import region_statics, static_source

    names = [spec.name for spec in description.static_inputs]
    with default_model_hint(options.model is not None):
        location = static_source(options.static, options.source, options.edh_url, names)
    say(f"static HR fields {', '.join(names)} from {location.label}")
    return region_statics(location, description.static_inputs,
                          *sr_axes(lat, lon, description.scale)), location.label


Say = Callable[[str], object]
#: progress factory: total steps -> a context manager that is called once per finished step
ProgressFactory = Callable[[int], AbstractContextManager[Progress]]


def _silent(_: str) -> None:
    return None


@contextmanager
def _no_progress(_: int) -> Iterator[Progress]:
    yield lambda outcome, summary: None


def run(options: RunRequest, *, say: Say | None = None,
        progress: ProgressFactory | None = None) -> StreamSummary:
    """Validate everything cheap first, then stream the selected steps to the outputs.

    Before the first write: the request, every output name (usable, writable, distinct, not an
    input), the lock on each output, the engine, the times, the truth --report needs, and for
    --resume the settings recorded in the existing outputs. ``say`` gets one line per message
    (none when ``options.quiet``); ``progress`` is called with the number of steps and gives a
    context manager called after each step. Skill scores (``--report``) are in the summary.
    """
    kind = options.validate()
    say = _silent if options.quiet or say is None else say
    model = resolve_model(options.model, say)
    fixed = _check_fixed_outputs(options, kind, model)
    with ExitStack() as locks:
        for target in (options.out, options.lr_out, options.preview):
            if target is not None:
                locks.enter_context(output_lock(target))
        return _locked_run(options, say, progress or _no_progress, kind, model, fixed)


def _locked_run(options: RunRequest, say: Say, progress: ProgressFactory, kind: str,
                model: Path, fixed: list[tuple[str, Path]]) -> StreamSummary:
    wanted, span, bbox = options.time, options.span, options.bbox
    zarr_out, template = kind == ZARR, is_template(options.out)
    source = resolve_source(options.source, edh_url=options.edh_url)
    if options.source == "sample":
        say(f"using the embedded sample DataCube (pass --source to choose): {source.label}")
    choice = choose_engine(model, options.backend, options.precision)  # gated, measured here
    if choice.reason:
        say(choice.reason)
    model = choice.model
    # a range streams through reader and writer threads: the engine's idle threads must not
    # spin on the cores they need (see sr_runtime.engines.onnxruntime.session_options), and a
    # CPU engine that can keeps one step per core in flight (within --max-memory's budget
    # only one: the budget is one call's working set)
    streams = physical_cores() if span is not None and options.max_memory is None else 1
    selection = load_engine(choice.backend, model, config=options.config,
                            precision=choice.precision, cpu_backend=choice.cpu_backend,
                            spinning=span is None, streams=streams)
    for line in selection.summary():
        say(line)
    engine = selection.engine
    check_engine_precision(engine.precision, engine.name, options.precision)

    dataset = source.open()
    description = engine.description
    with default_model_hint(options.model is not None):
        check_compatible(dataset, description, source.label)
    times = dataset.time.values
    if wanted is not None:
        indices = [select_time(times, wanted, options.nearest)]
    elif span is not None:
        indices = select_range(times, *span, nearest=options.nearest)
    else:  # options.validate() refuses such a request first
        raise UsageError("give either --time for one step or --start/--end for a range")
    step_times = np.asarray(times[indices], dtype="datetime64[ns]")
    if len(indices) > 1 and not (zarr_out or template):
        raise UsageError(f"{len(indices)} time steps need one output each: use a name template "
                         "such as --out 'sr_{time:%Y%m%dT%H}.tif' or one store --out sr.zarr")

    lat_slice, lon_slice = region_slices(dataset.latitude.values, dataset.longitude.values, bbox)
    from sr_runtime.grid import region_note  # what --nearest and --bbox really chose
    from sr_runtime.times import time_note

    for note in (time_note(times, indices, wanted, span),
                 region_note(dataset.latitude.values, dataset.longitude.values, bbox)):
        if note:
            say(note)
    lat = dataset.latitude.values[lat_slice].astype(np.float64)
    lon = dataset.longitude.values[lon_slice].astype(np.float64)
    tile = tile_for_budget(description, options.max_memory)
    tuned = tuned_tile(model, engine.name) if options.max_memory is None else None
    tile = cap_tile_for_engine(min(tile, tuned) if tuned else tile, engine)
    tile_arg = None if tile >= max(lat.size, lon.size) else tile

    units = output_units(description, options.units)
    settings = run_settings(model, engine, units, source.label, lat, lon)
    variable = "-".join(description.variable_names)  # the {variable} of name templates
    statics, static_label = _region_statics(options, description, lat, lon, say)
    if static_label:  # the static fields shape the values: recorded, and checked by --resume
        settings["static"] = static_label
    lr_sink: FileSteps | None = None
    sink: Sink
    if zarr_out:
        scale = description.scale
        sink = ZarrSink(options.out, step_times, *sr_axes(lat, lon, scale),
                        description.variable_names,
                        [output_units_of(v.units, options.units) for v in description.variables],
                        {**settings, "backend": engine.name, "resolution": f"SR x{scale}"})
    else:
        paths = render_all(options.out, step_times, variable)
        for path in paths:
            output_kind(path)  # a template can render to another suffix
        sink = FileSteps(paths, kind, settings, "--out")
        named = [("--out", p) for p in paths]
        if options.lr_out:
            lr_paths = render_all(options.lr_out, step_times, variable)
            for path in lr_paths:
                output_kind(path, "--lr-out", (COG,))
            lr_sink = FileSteps(lr_paths, COG, settings, "--lr-out")
            named += [("--lr-out", p) for p in lr_paths]
        if options.preview:
            named.append(("--preview", Path(options.preview)))
        check_distinct(named)
        check_not_input(named, _local_inputs(options, model))
    for each in (sink, lr_sink):
        if each is not None:
            each.check(options.overwrite, options.resume)
    truth = _truth_for_report(options, description, step_times[0], lat, lon, units)
    skip = sink.done_steps(options.overwrite, options.resume)
    if lr_sink is not None:
        skip &= lr_sink.done_steps(options.overwrite, options.resume)
    if skip:
        say(f"--resume: {len(skip)} of {len(indices)} steps already written, skipping them")

    worker = StepWorker(bbox, options.units, tile_arg, source.label, sink, lr_sink,
                        tags=settings, statics=statics)
    try:
        with progress(len(indices)) as reporter:
            if options.workers or options.scheduler:
                if len(skip) < len(indices):
                    sink.create()
                summary = _run_on_dask(options, source, model, selection.backend or engine.name,
                                       engine.precision, worker, indices, skip, reporter)
            else:
                summary = run_stream(dataset, engine, worker, indices, skip=skip,
                                     progress=reporter, before_first_write=sink.create)
    except BaseException:
        sink.discard_if_empty()
        raise
    if len(indices) == 1 and not zarr_out and summary.steps == 1:
        hr_h, hr_w = lat.size * description.scale, lon.size * description.scale
        say(f"wrote {summary.outputs[0]}: SR {hr_h}x{hr_w} "
            f"{', '.join(description.variable_names)} [{units}] at SR x{description.scale}")
        if lr_sink is not None:
            say(f"wrote {summary.outputs[1]}: LR input {lat.size}x{lon.size}")
    else:
        say(f"done: {summary.steps} steps written, {summary.skipped} skipped, "
            f"{summary.seconds:.1f} s, {summary.hr_mpix_per_s:.1f} HR Mpix/s")
    if options.preview or options.report:
        summary.skills = look_at_result(options, dataset, description, indices[0], bbox, units,
                                        say, truth)
        summary.skill = next(iter(summary.skills.values()), None)
    return summary


def _run_on_dask(options: RunRequest, source: DataSource, model: Path, backend: str,
                 precision: str, worker: StepWorker, indices: list[int], skip: set[int],
                 reporter: Progress) -> StreamSummary:
    """The steps on Dask workers; a failed step is our one line, not Dask's logged traceback."""
    from sr_runtime.clikit import quiet_library_logs
    from sr_runtime.distributed import distributed_client, run_distributed
    from sr_runtime.engines.base import EngineRef

    todo = len(indices) - len(skip)
    workers = min(options.workers, max(1, todo)) if options.workers else None
    engine = EngineRef(backend, str(model), str(options.config) if options.config else None,
                       threads=1,  # one intra-op thread per worker: they share the cores
                       precision=precision)
    with quiet_library_logs():
        client = distributed_client(workers, options.scheduler)
        try:
            return run_distributed(client, source, engine, worker, indices, skip=skip,
                                   progress=reporter)
        finally:
            client.close()
            if not options.scheduler and client.cluster is not None:
                client.cluster.close()


def truth_location(options: RunRequest) -> str | None:
    """``--truth``, else the sample's HR store when the source is the sample."""
    if options.truth:
        return options.truth
    return str(sample_hr_store()) if options.source == "sample" else None


def look_at_result(options: RunRequest, dataset: xr.Dataset, description: ModelDescription,
                   index: int, bbox: BBox | None, units: str, say: Say,
                   truth: dict[str, Truth] | None = None) -> dict[str, dict[str, float | str]]:
    """--preview (LR | SR | HR PNG of the first variable) and --report (scores against HR
    truth of each variable the truth has) for one step; ``truth`` is the HR truth on the SR grid
    by variable (see :func:`_truth_for_report`). Returns the scores by variable for --report."""
    from sr_runtime.pipeline import to_units
    from sr_runtime.quicklook import read_cog_field, render_preview, report_scores

    truth = truth or {}
    valid_time = np.datetime64(dataset.time.values[index], "ns")
    skills: dict[str, dict[str, float | str]] = {}
    if options.report:
        for variable in description.variables:
            if variable.name not in truth:
                continue
            sr = read_cog_field(options.out, valid_time, variable.name)
            scores = report_scores(sr, truth[variable.name])
            skills[variable.name] = {
                **scores.as_dict(), "time": pd.Timestamp(valid_time).strftime("%Y-%m-%dT%H:%M"),
                "units": units, "variable": variable.name}
    if options.preview:
        variable = description.variables[0]
        sr = read_cog_field(options.out, valid_time, variable.name)
        lr_values, lat, lon = read_lr(dataset, description, index, bbox)
        lr = GeoField(to_units(lr_values[0], variable.units, units)[0], lat, lon, valid_time,
                      variable.name, units)
        shown = truth.get(variable.name)
        render_preview(options.preview, lr, sr, shown)
        panels = "LR | SR | HR" if shown is not None else "LR | SR (no HR truth at this time)"
        say(f"wrote {options.preview}: {panels}")
    return skills
