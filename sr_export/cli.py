"""`sr-export`: parses the command line and calls the library; no logic lives here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sr_export.extras import needs_export_extra, require_extra
from sr_export.tracking import HELP as TRACKING_HELP
from sr_runtime.clikit import console, friendly_errors
from sr_runtime.errors import UsageError

app = typer.Typer(help="Turn trained SR checkpoints into verified, deployable engines.",
                  no_args_is_help=True, add_completion=False)

CheckpointSource = Annotated[str, typer.Argument(
    help="Lightning .ckpt (sr-edge or the demo's), the demo's state-dict .pt, or one in MLflow: "
         "models:/NAME/VERSION, models:/NAME@ALIAS, runs:/RUN_ID/path (with --mlflow)")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="The demo's config.json "
                                                "(architecture and normalization)")]
MlflowOpt = Annotated[str | None, typer.Option("--mlflow", metavar="URI", help=TRACKING_HELP)]


@app.command("to-onnx")
@friendly_errors
@needs_export_extra("torch", "onnx", "onnxscript")
def to_onnx(
    checkpoint: CheckpointSource,
    config: ConfigOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output .onnx (default: next to the "
                                             "checkpoint; NAME-vVERSION.onnx here for "
                                             "models:/)")] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset")] = 18,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output")] = False,
    optimize: Annotated[bool, typer.Option(help="Apply the exact graph rewrites (checked "
                                           "against the original network)")] = True,
    conservation: Annotated[str | None, typer.Option(help="Switch the block-mean conservation "
                                                     "layer: none or block_mean [default: as "
                                                     "trained]")] = None,
    mlflow: MlflowOpt = None,
) -> None:
    """Export a checkpoint to a self-describing ONNX model, checked against PyTorch."""
    from sr_export.checkpoints import load_checkpoint
    from sr_export.onnx_export import export_onnx
    from sr_export.registry import checkpoint_source
    from sr_export.run_figures import log_export
    from sr_export.tracking import tracking
    from sr_runtime.paths import check_output

    with checkpoint_source(checkpoint, config, mlflow) as source:
        out = out or source.default_out
        check_output(out, overwrite)
        with console.status(f"loading {source.label}"):
            loaded = load_checkpoint(source.checkpoint, source.config)
        if conservation is not None:
            loaded = loaded.with_conservation(conservation)
        console.print(f"loaded {loaded.source_format} checkpoint {source.label} "
                      f"(x{loaded.description.scale}, {dict(loaded.description.arch_params)})")
        with tracking(mlflow, command="to-onnx", run_name=f"to-onnx {out.name}") as tracker:
            provenance = dict(source.provenance)
            if tracker.run_id:
                provenance["mlflow_export_run_id"] = tracker.run_id
            with console.status("exporting to ONNX and checking against PyTorch"):
                report = export_onnx(loaded, out, opset=opset, optimize=optimize,
                                     provenance=provenance)
            console.print(report.summary(loaded.description.variables[0].units))
            log_export(tracker, loaded, report, out, opset=opset, optimize=optimize,
                       source=source.label)
    console.print(f"wrote {out}")
    _print_parts(out)
    _tracked(tracker)


def _print_parts(model: Path) -> None:
    from sr_runtime.engines.static_part import part_paths

    static_part, step_part = part_paths(model)
    if static_part.is_file() and step_part.is_file():
        console.print(f"wrote {static_part.name} and {step_part.name} (checked against the "
                      "model): sr-run computes the static part once per tile of a run")


def _tracked(tracker) -> None:
    if tracker.enabled:
        console.print(f"tracked as MLflow run {tracker.run_id} in {tracker.uri}")


@app.command()
@friendly_errors
def inspect(model: Annotated[Path, typer.Argument(help="An sr-edge .onnx model")]) -> None:
    """Print the description stored in an ONNX model."""
    from sr_runtime.inspect import describe_model

    typer.echo(describe_model(model))


@app.command()
@friendly_errors
@needs_export_extra("torch", "lightning", "torchmetrics")
def train(
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Run folder (logs, model.ckpt, "
                                          "last.ckpt)")] = Path("runs/train"),
    cpu_minutes: Annotated[float, typer.Option(help="Training budget in CPU-minutes (process "
                                               "CPU time, all threads; a resumed run counts "
                                               "the time spent before)")] = 40.0,
    max_steps: Annotated[int | None, typer.Option(help="Also stop after this many optimizer "
                                                  "steps in all")] = None,
    channels: Annotated[int, typer.Option(help="SRResNet n_channels")] = 32,
    blocks: Annotated[int, typer.Option(help="SRResNet n_blocks")] = 8,
    batch_size: Annotated[int, typer.Option(help="Batch size")] = 16,
    learning_rate: Annotated[float, typer.Option(help="Adam learning rate (cosine decay over "
                                                 "the budget)")] = 1e-3,
    threads: Annotated[int | None, typer.Option(help="torch threads [default: all]")] = None,
    seed: Annotated[int, typer.Option(help="Random seed")] = 42,
    crop: Annotated[int, typer.Option(help="LR crop size of training samples")] = 16,
    every: Annotated[int, typer.Option(help="Train on every N-th hour of the period (fewer "
                                       "fields, for quick trials)")] = 1,
    skip: Annotated[str, typer.Option(help="Upsampling skip added to the output: none (the "
                                      "demo's) or bicubic")] = "none",
    variables: Annotated[str, typer.Option(help="Predicted variables, comma-separated, t2m "
                                           "first (the sample has t2m, d2m)")] = "t2m",
    static: Annotated[str, typer.Option("--static", help="Static HR fields the network takes, "
                                        "comma-separated (orog,lsm); empty: LR only")] = "",
    area: Annotated[str, typer.Option(help="Where to train: sample (the Alpine box) or area "
                                      "(35-50 N, 0-30 E with the Alpine box held out)")] =
    "sample",
    period: Annotated[str, typer.Option(help="Training hours: october (Oct 1-24 2024) or year "
                                        "(2024 without the held-out week Oct 25-31)")] =
    "october",
    conservation: Annotated[str, typer.Option(help="none, or block_mean: every 8x8 block "
                                              "mean of the output equals its LR cell")] =
    "none",
    terrain_features: Annotated[int, typer.Option(help="Terrain features a small HR network "
                                                  "derives from the --static fields (valleys, "
                                                  "ridges, coasts), 0: block anomalies only")] =
    0,
    terrain_scales: Annotated[str, typer.Option(help="Gaussian sigmas in HR cells of a terrain "
                                                "pyramid for the terrain network (each "
                                                "--static field minus its smoothing), "
                                                "comma-separated, e.g. 2,4,8,16")] = "",
    relative_static: Annotated[str, typer.Option(help="--static fields the network sees relative "
                                                 "to their surroundings (e.g. orog: heights "
                                                 "above the local mean), comma-separated")] =
    "",
    augment: Annotated[str, typer.Option(help="Random symmetries of sample crops: none, flips "
                                         "(mirrored N-S/E-W) or dihedral (also transposed): "
                                         "more terrain shapes for a --static model")] = "none",
    clock_inputs: Annotated[bool, typer.Option(help="Also feed each step's local solar hour "
                                               "and season (sin/cos, from its time and the "
                                               "cells' longitudes) as LR input channels")] =
    False,
    resume: Annotated[bool, typer.Option(help="Continue from OUT_DIR/last.ckpt (weights, "
                                         "optimizer, step and budget spent)")] = False,
    resume_from: Annotated[Path | None, typer.Option(help="Continue from this last.ckpt")] =
    None,
    val_every: Annotated[int, typer.Option(help="Validate about every N optimizer steps (at "
                                           "the end of an epoch)")] = 200,
    evaluate_held_out: Annotated[bool, typer.Option("--evaluate/--no-evaluate", help="Score the "
                                                    "result on the held-out week")] = True,
    heldout_every: Annotated[int, typer.Option(help="Score every N-th held-out step (1: all "
                                               "84)")] = 1,
    source: Annotated[str | None, typer.Option(help="Stream LR fields from this DataCube "
                                               "(edh[:MODEL/EXP/standard], a Zarr path or "
                                               "URL) instead of the sample")] = None,
    truth: Annotated[str | None, typer.Option(help="HR truth DataCube for --source [default: "
                                              "its high-maps companion]")] = None,
    static_store: Annotated[str | None, typer.Option(help="Store of the --static fields "
                                                     "[default: --truth]")] = None,
    edh_url: Annotated[str | None, typer.Option(help="Earth Data Hub base URL (or "
                                                "$SR_EDGE_EDH_URL)")] = None,
    bbox: Annotated[str | None, typer.Option(help="Training region W,S,E,N in degrees "
                                             "[default: the whole store]")] = None,
    start: Annotated[str | None, typer.Option(help="First training hour (with --source) "
                                              "[default: the store's first]")] = None,
    end: Annotated[str | None, typer.Option(help="Last hour, inclusive [default: the store's "
                                            "last]")] = None,
    val_start: Annotated[str | None, typer.Option(help="Held-out range start (validation and "
                                                  "evaluation only) [default: the last tenth "
                                                  "of the hours]")] = None,
    val_end: Annotated[str | None, typer.Option(help="Held-out range end, inclusive")] = None,
    workers: Annotated[int, typer.Option(help="Loader worker processes reading ahead (0: read "
                                         "in the training process)")] = 2,
    cache_mb: Annotated[float, typer.Option(help="Chunk cache per worker in MB (0: off)")] =
    512.0,
    halo: Annotated[int, typer.Option(help="LR cells of context around each streamed crop, "
                                      "outside the loss")] = 2,
    crops_per_block: Annotated[int, typer.Option(help="Crops drawn from each block of hours "
                                                 "read")] = 64,
    mlflow: MlflowOpt = None,
) -> None:
    """Train SRResNet on the embedded sample (by default its training period, Oct 1-24 2024),
    or on fields streamed from an LR store and its HR truth (--source, --truth)."""
    from sr_export.model import SRResNetConfig
    from sr_export.run_figures import log_training
    from sr_export.tracking import tracking
    from sr_export.training import check_clock_source, resume_path
    from sr_export.training import train as train_model
    from sr_export.training_data import period_times
    from sr_runtime.clock import CLOCK_FEATURES

    names = tuple(v.strip() for v in variables.split(",") if v.strip())
    statics = tuple(v.strip() for v in static.split(",") if v.strip())
    if not names:
        raise UsageError("--variables is empty; give at least t2m")
    relative = tuple(v.strip() for v in relative_static.split(",") if v.strip())
    if unknown := [v for v in relative if v not in statics]:
        raise UsageError(f"--relative-static {','.join(unknown)} is not among --static "
                         f"{','.join(statics) or '(none)'}")
    try:
        config = SRResNetConfig(n_channels=channels, n_blocks=blocks, upsample_skip=skip,
                                in_channels=len(names), out_channels=len(names),
                                static_channels=len(statics), conservation=conservation,
                                terrain_features=terrain_features,
                                terrain_scales=parse_scales(terrain_scales),
                                relative_static=tuple(statics.index(v) for v in relative),
                                clock_channels=len(CLOCK_FEATURES) if clock_inputs else 0)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    for option, value in (("--every", every), ("--val-every", val_every),
                          ("--heldout-every", heldout_every)):
        if value < 1:
            raise UsageError(f"{option} must be a positive number, not {value}")
    from sr_export.training_data import check_augmentation

    check_augmentation(augment)  # before the run folder exists
    stream = None
    if source is not None and augment != "none":
        raise UsageError("--augment applies to crops of the embedded sample; streamed training "
                         "(--source) reads its crops as they are: drop --augment")
    check_clock_source(config, streamed=source is not None)  # before opening the stores
    if source is not None:
        with console.status(f"opening {source} and its HR truth"):
            stream = stream_settings(source, truth, static_store, edh_url, names, statics,
                                     bbox, start, end, val_start, val_end, workers=workers,
                                     cache_mb=cache_mb, halo=halo,
                                     crops_per_block=crops_per_block)
        pair = stream.pair
        console.print(f"streaming {', '.join(names)} from {pair.description['source']}, truth "
                      f"{pair.description['truth']}: {pair.description['lr_cells']} LR cells "
                      f"({pair.description['bbox']}), {pair.times.size} training and "
                      f"{pair.val_times.size} held-out hours")
        if pair.description["without_truth"] != "0":
            console.print(f"note: {pair.description['without_truth']} hours of --source in "
                          "--start/--end have no HR truth and are left out")
    else:
        for option, given in (("--truth", truth), ("--static-store", static_store),
                              ("--bbox", bbox), ("--start", start), ("--end", end),
                              ("--val-start", val_start), ("--val-end", val_end)):
            if given is not None:
                raise UsageError(f"{option} needs --source: it chooses what to stream; the "
                                 "embedded sample takes --area and --period")
    resumed = resume_path(out_dir, resume, resume_from)
    with tracking(mlflow, command="train", run_name=f"train {channels}ch/{blocks}b") as tracker:
        result = train_model(config, out_dir, cpu_minutes=cpu_minutes,
                             times=period_times(period, every), variables=names,
                             statics=statics, area=area, stream=stream,
                             batch_size=batch_size, learning_rate=learning_rate,
                             seed=seed, threads=threads, crop_lr=crop, max_steps=max_steps,
                             resume_from=resumed, tracker=tracker, console=console,
                             val_every_steps=val_every, augment=augment)
        console.print(f"trained steps {result.start_step}..{result.global_step} "
                      f"({result.cpu_minutes:.1f} CPU-min in all)")
        if result.throughput and stream is not None:
            t = result.throughput
            console.print(f"loader: {t['samples_per_s']:.0f} samples/s, {t['read_MB']:.1f} MB "
                          f"read ({t['read_MB_per_s']:.1f} MB/s), the step waited for data "
                          f"{100 * t['data_wait_fraction']:.1f} % of the time")
        evaluation = None
        if evaluate_held_out and stream is not None:
            from sr_export.evaluate import evaluate_stream

            with console.status("evaluating on the held-out hours"):
                evaluation = evaluate_stream(result.checkpoint, stream.pair, every=heldout_every)
            typer.echo(evaluation.table())
        elif evaluate_held_out:
            from sr_export.evaluate import evaluate_held_out as score

            with console.status("evaluating on the held-out week"):
                evaluation = score(result.checkpoint, every=heldout_every)
            typer.echo(evaluation.table())
        log_training(tracker, evaluation, result.checkpoint)
    console.print(f"wrote {result.checkpoint} (resume with --resume: {result.last.name}); "
                  f"export it with: sr-export to-onnx {result.checkpoint}")
    if tracker.enabled:
        _tracked(tracker)
        console.print(f"register it with: sr-export register runs:/{tracker.run_id}/checkpoint "
                      "--name NAME --mlflow URI")
    if stream is not None:
        _close_streams()


def _close_streams() -> None:
    """Close the HTTP sessions of streamed stores now: their finalizers need zarr's event loop,
    which no longer runs at interpreter exit (aiohttp would print "Unclosed client session")."""
    import gc

    gc.collect()


def parse_scales(text: str) -> tuple[float, ...]:
    """``--terrain-scales 2,4,8``: positive sigmas in HR cells, or a one-line refusal."""
    try:
        scales = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UsageError(f"--terrain-scales {text!r} is not a comma-separated list of numbers "
                         "(sigmas in HR cells, e.g. 2,4,8,16)") from None
    return scales


def stream_settings(source: str, truth: str | None, static_store: str | None,
                    edh_url: str | None, variables: tuple[str, ...], statics: tuple[str, ...],
                    bbox: str | None, start: str | None, end: str | None, val_start: str | None,
                    val_end: str | None, *, workers: int, cache_mb: float, halo: int,
                    crops_per_block: int, evaluation_only: bool = False):
    """The pair to stream for ``train --source``, from the options as typed."""
    from sr_export.stream_data import StreamSettings, open_pair
    from sr_runtime.grid import parse_bbox
    from sr_runtime.sources.registry import resolve_source
    from sr_runtime.statics import companion_source
    from sr_runtime.times import parse_time

    for option, value in (("--workers", workers), ("--cache-mb", cache_mb), ("--halo", halo)):
        if not value >= 0:
            raise UsageError(f"{option} must be 0 or more, not {value}")
    if crops_per_block < 1:
        raise UsageError(f"--crops-per-block must be a positive number, not {crops_per_block}")
    if (val_start is None) != (val_end is None):
        raise UsageError("give --val-start and --val-end together (or neither: the last tenth "
                         "of the hours is held out)")
    lr_source = resolve_source(source, edh_url=edh_url)
    hr_source = resolve_source(truth, edh_url=edh_url) if truth else companion_source(source,
                                                                                      edh_url)
    if hr_source is None:
        raise UsageError(f"--source {source} has no companion high-resolution store; pass "
                         "--truth STORE with the HR fields of the same hours")
    holdout = (parse_time(val_start), parse_time(val_end)) if val_start and val_end else None
    pair = open_pair(lr_source, hr_source, variables, bbox=parse_bbox(bbox) if bbox else None,
                     start=parse_time(start) if start else None,
                     end=parse_time(end) if end else None, holdout=holdout,
                     static_source=resolve_source(static_store, edh_url=edh_url)
                     if static_store else None, statics=statics,
                     cache_mb=cache_mb, evaluation_only=evaluation_only)
    return StreamSettings(pair, workers=workers, halo=halo, crops_per_block=crops_per_block)


@app.command()
@friendly_errors
@needs_export_extra("torch")
def evaluate(
    model: Annotated[Path | None, typer.Option(help="Model (.onnx, or a checkpoint with "
                                               "--backend torch) [default: shipped]")] = None,
    source: Annotated[str, typer.Option(help="LR DataCube")] = "sample",
    truth: Annotated[str | None, typer.Option(help="HR truth DataCube [default: the "
                                              "sample's]")] = None,
    backend: Annotated[str, typer.Option(help="Engine backend")] = "onnxruntime",
    config: ConfigOpt = None,
    markdown: Annotated[Path | None, typer.Option(help="Also write the table here")] = None,
    training_area: Annotated[bool, typer.Option(help="Also score the held-out week on the "
                                                "training regions (sr-export train --area "
                                                "area)")] = False,
    bbox: Annotated[str | None, typer.Option(help="Region W,S,E,N to score (with --start) "
                                             "[default: the whole store]")] = None,
    start: Annotated[str | None, typer.Option(help="Score the hours from here (the held-out "
                                              "range of train --source) [default: the "
                                              "sample's held-out week]")] = None,
    end: Annotated[str | None, typer.Option(help="... to here, inclusive [default: --start]")]
    = None,
    static_store: Annotated[str | None, typer.Option(help="Store of the model's static fields "
                                                     "[default: --truth]")] = None,
    edh_url: Annotated[str | None, typer.Option(help="Earth Data Hub base URL")] = None,
    every: Annotated[int, typer.Option(help="Score every N-th hour")] = 1,
) -> None:
    """Score the model, nearest, bicubic and a lapse-rate reference on held-out times."""
    from sr_export.evaluate import evaluate_held_out, evaluate_pair, evaluate_training_area
    from sr_runtime.defaults import DEFAULT_MODEL

    if every < 1:
        raise UsageError(f"--every must be a positive number, not {every}")
    if start is not None:
        from sr_runtime.engines.registry import load_engine

        engine = load_engine(backend, model or DEFAULT_MODEL, config=config).engine
        names = tuple(engine.description.variable_names)
        statics = tuple(s.name for s in engine.description.static_inputs)
        with console.status(f"opening {source} and its HR truth"):
            pair = stream_settings(source, truth, static_store, edh_url, names, statics, bbox,
                                   None, None, start, end or start, workers=0, cache_mb=0.0,
                                   halo=0, crops_per_block=1, evaluation_only=True).pair
        with console.status(f"evaluating {pair.val_times[::every].size} hours"):
            results = [evaluate_pair(engine, pair, pair.val_times[::every])]
        del pair
        _close_streams()
    elif bbox or end or static_store:
        raise UsageError("--bbox, --end and --static-store choose the hours of --start; give "
                         "--start too")
    else:
        with console.status("evaluating the held-out steps"):
            results = [evaluate_held_out(model or DEFAULT_MODEL, backend=backend, config=config,
                                         source=source, truth=truth, every=every)]
    if training_area:
        with console.status("evaluating the held-out week on the training regions"):
            results += evaluate_training_area(model or DEFAULT_MODEL, backend=backend,
                                              config=config)
    text = "\n\n".join(r.table() for r in results)
    typer.echo(text)
    if markdown:
        markdown.write_text(text + "\n")
        console.print(f"wrote {markdown}")


@app.command("to-trt")
@friendly_errors
@needs_export_extra("onnx")
def to_trt(
    source: Annotated[Path, typer.Argument(help="Checkpoint (.ckpt/.pt, exported to ONNX first) "
                                                "or an sr-edge .onnx model")],
    config: ConfigOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output .engine (default: next to "
                                             "SOURCE); the fingerprint goes to OUT.json")] = None,
    tile: Annotated[str | None, typer.Option(help="Static LR tile H,W: fastest, only that "
                                             "shape (default: any tile up to 256,256, tuned "
                                             "for 128,128)")] = None,
    min_shape: Annotated[str | None, typer.Option("--min", help="Dynamic profile: smallest "
                                                  "tile H,W or NxCxHxW")] = None,
    opt_shape: Annotated[str | None, typer.Option("--opt", help="Dynamic profile: tile to tune "
                                                  "for")] = None,
    max_shape: Annotated[str | None, typer.Option("--max", help="Dynamic profile: largest "
                                                  "tile")] = None,
    batch: Annotated[int, typer.Option(help="Tiles per inference (profile batch)")] = 1,
    workspace: Annotated[int | None, typer.Option(help="Builder workspace limit in MB")] = None,
    timing_cache: Annotated[Path | None, typer.Option(help="Timing cache file, reused across "
                                                      "builds (default: in the engine "
                                                      "cache)")] = None,
    precision: Annotated[str, typer.Option(help="fp16 (FP32 normalization kept) or "
                                           "fp32")] = "fp16",
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs")] = False,
    mlflow: MlflowOpt = None,
) -> None:
    """Build a TensorRT engine (FP16 by default), checked against PyTorch / ONNX Runtime FP32."""
    if source.suffix != ".onnx":  # a checkpoint is exported first
        require_extra("to-trt", "torch", "onnxscript")
    from sr_export.run_figures import log_trt
    from sr_export.tensorrt_export import to_trt as build_trt
    from sr_export.tracking import tracking

    with tracking(mlflow, command="to-trt", run_name=f"to-trt {source.name}") as tracker, \
            console.status("preparing") as status:
        result = build_trt(source, config=config, out=out, tile=tile, min_shape=min_shape,
                           opt_shape=opt_shape, max_shape=max_shape, batch=batch,
                           workspace_mb=workspace, timing_cache=timing_cache,
                           precision=precision, overwrite=overwrite, info=console.print,
                           progress=status.update)
        log_trt(tracker, result)
    units = result.record.description.variables[0].units
    console.print(result.report.summary(units))
    console.print(f"precision: {result.recipe.precision}; built in {result.build_seconds:.0f} s; "
                  f"profile {result.record.fingerprint.profile.describe()}")
    console.print(f"wrote {result.engine} (fingerprint {result.record.fingerprint.key()[:12]} "
                  f"in {result.engine.name}.json)")
    _tracked(tracker)



@app.command()
@friendly_errors
@needs_export_extra("onnx")
def split(model: Annotated[Path, typer.Argument(help="A model exported by `sr-export to-onnx`")]
          ) -> None:
    """Write a model's static and step parts beside it (to-onnx does this for models with
    static inputs): sr-run then computes what depends on the static fields alone once per
    tile, not once per step."""
    from sr_export.static_split import write_split

    if write_split(model) is None:
        console.print(f"{model.name} has no part that depends on static fields alone; "
                      "nothing to split")
        return
    _print_parts(model)


@app.command()
@friendly_errors
@needs_export_extra("onnx")
def quantize(
    model: Annotated[Path, typer.Argument(help="FP32 model exported by `sr-export to-onnx`")],
    source: Annotated[str, typer.Option(help="LR DataCube to calibrate on ('sample', a Zarr "
                                        "path or URL, or 'synthetic')")] = "sample",
    calib_times: Annotated[str | None, typer.Option(
        "--calib-times", help="Comma-separated ISO times to calibrate on [default: 24 hours "
        "spread over the sample's training period]")] = None,
    truth: Annotated[str | None, typer.Option(help="HR truth DataCube for the PSNR gate "
                                              "[default: the sample's, with --source "
                                              "sample]")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output [default: "
                                             "MODEL.int8.onnx]")] = None,
    max_rmse: Annotated[float, typer.Option(help="Gate: RMSE vs FP32 limit (K)")] = 0.05,
    max_psnr_drop: Annotated[float, typer.Option(help="Gate: PSNR drop vs HR truth limit "
                                                 "(dB)")] = 0.1,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output")] = False,
    mlflow: MlflowOpt = None,
) -> None:
    """Make an INT8 variant for CPUs, written only if it passes the accuracy gate."""
    from sr_export.quantize import (
        default_output,
        load_calibration,
        load_gate_data,
        parse_times,
        quantize_int8,
    )
    from sr_export.run_figures import log_quantize
    from sr_export.tracking import tracking
    from sr_runtime.engines.onnxruntime import read_description
    from sr_runtime.paths import check_output

    out = out or default_output(model)
    check_output(out, overwrite)
    description = read_description(model)
    from sr_export.gate import refuse_static

    refuse_static(description, model, "quantize")  # before reading any data
    fields, label = load_calibration(source, description, parse_times(calib_times))
    gate_data = load_gate_data(source, description, truth)
    with tracking(mlflow, command="quantize", run_name=f"quantize {model.name}") as tracker:
        with console.status(f"quantizing {model.name} on {len(fields)} calibration fields"):
            report = quantize_int8(model, out, fields, gate_data, max_rmse=max_rmse,
                                   max_psnr_drop=max_psnr_drop, calibration_label=label)
        log_quantize(tracker, report, description, calibration=label, max_rmse=max_rmse,
                     max_psnr_drop=max_psnr_drop)
    console.print(f"calibrated on {label}")
    console.print(f"accuracy gate: {report.gate.summary(description.variables[0].units)}")
    if report.speedup:
        console.print(f"speed: {report.speedup:.2f}x the FP32 model on this machine")
    console.print(f"wrote {out}")
    _tracked(tracker)


@app.command()
@friendly_errors
@needs_export_extra()  # ONNX Runtime only: works in a runtime install
def tune(
    model: Annotated[Path, typer.Argument(help="An sr-edge .onnx model (its variants beside "
                                            "it are timed too)")],
    tiles: Annotated[str | None, typer.Option(help="Comma-separated LR tile sizes [default: "
                                              "32..256 within the memory budget]")] = None,
    repeats: Annotated[int, typer.Option(help="Interleaved timed rounds per tile (median)")
                       ] = 7,
    pause: Annotated[float, typer.Option(help="Idle seconds before each timed call")] = 0.2,
    max_memory: Annotated[float | None, typer.Option(help="Memory budget in MB for the tile "
                                                     "candidates")] = None,
    source: Annotated[str, typer.Option(help="LR DataCube for OpenVINO's accuracy gates "
                                        "('sample', a Zarr path or URL, or 'synthetic')")
                      ] = "sample",
    truth: Annotated[str | None, typer.Option(help="HR truth DataCube for the BF16 PSNR gate "
                                              "[default: the sample's, with --source "
                                              "sample]")] = None,
    openvino: Annotated[bool, typer.Option(help="Also gate and time OpenVINO (FP32, and BF16 "
                                           "where the CPU has it) when installed")] = True,
    profile: Annotated[bool, typer.Option(help="Also print the per-node time split")] = False,
    mlflow: MlflowOpt = None,
) -> None:
    """Find the fastest tile, engine and precision on this machine; store MODEL.tune.json."""
    from sr_export.calibration import load_gate_data
    from sr_export.run_figures import log_tune
    from sr_export.tracking import tracking
    from sr_export.tune import parse_tiles, profile_nodes, summary, tune_model, write_tune
    from sr_runtime.engines.onnxruntime import read_description
    from sr_runtime.errors import UsageError

    if repeats < 1 or not pause >= 0:
        raise UsageError("--repeats must be at least 1 and --pause at least 0")
    with tracking(mlflow, command="tune", run_name=f"tune {model.name}") as tracker:
        gate_data = load_gate_data(source, read_description(model), truth) if openvino else None
        record = tune_model(model, tiles=parse_tiles(tiles), repeats=repeats,
                            max_memory_mb=max_memory, progress=console.print, pause=pause,
                            gate_data=gate_data, openvino=openvino)
        typer.echo(summary(record))
        if profile:
            from sr_runtime.description import LR_INPUT
            from sr_runtime.synthetic import sample_feed

            feed = sample_feed(read_description(model), shape=(32, 32), batch=1)
            typer.echo(profile_nodes(model, feed.pop(LR_INPUT), inputs=feed).table())
        written = write_tune(record, model)
        log_tune(tracker, record, written, read_description(model))
    console.print(f"wrote {written}")
    _tracked(tracker)


@app.command()
@friendly_errors
def register(
    model: Annotated[str, typer.Argument(help="An sr-edge .onnx model, a checkpoint "
                                         "(.ckpt/.pt), or runs:/RUN_ID/path of one")],
    name: Annotated[str, typer.Option("--name", help="Registered model name")],
    config: ConfigOpt = None,
    mlflow: MlflowOpt = None,
) -> None:
    """Register a model or checkpoint in an MLflow model registry, its description as tags."""
    import tempfile

    from sr_export.registry import register as register_model
    from sr_export.tracking import redact, resolve_uri

    uri = resolve_uri(mlflow)
    with tempfile.TemporaryDirectory(prefix="sr-edge-register-") as scratch:
        done = register_model(model, name, uri, config=config, dst=Path(scratch))
    console.print(f"registered {done.name} version {done.version} (run {done.run_id}, "
                  f"{done.description.architecture} x{done.description.scale}) in "
                  f"{redact(uri or '')}")
    console.print(f"export it with: sr-export to-onnx models:/{done.name}/{done.version} "
                  "--mlflow URI")


@app.command("log-benchmark")
@friendly_errors
def log_benchmark(
    results: Annotated[Path, typer.Argument(help="A benchmark results JSON "
                                            "(benchmarks/results/latest/<profile>.json)")],
    mlflow: MlflowOpt = None,
) -> None:
    """Log a benchmark run (speed ratios, parity, skill, machine) as an MLflow run."""
    from sr_export.tracking import log_benchmark as log_results
    from sr_export.tracking import redact, resolve_uri

    run_id = log_results(results, mlflow)
    console.print(f"logged {results.name} as MLflow run {run_id} in "
                  f"{redact(resolve_uri(mlflow) or '')}")


def bare_mlflow(argv: list[str]) -> list[str]:
    """``--mlflow`` with no value (last, or before another option) means ``--mlflow local``."""
    out: list[str] = []
    for i, word in enumerate(argv):
        out.append(word)
        if word == "--mlflow" and (i + 1 == len(argv) or argv[i + 1].startswith("-")):
            out.append("local")
    return out


def main() -> None:
    import sys

    app(args=bare_mlflow(sys.argv[1:]), prog_name="sr-export")
