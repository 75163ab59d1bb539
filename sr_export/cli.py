"""`sr-export`: parses the command line and calls the library; no logic lives here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from sr_export.extras import needs_export_extra, require_extra
from sr_runtime.clikit import console, friendly_errors

app = typer.Typer(help="Turn trained SR checkpoints into verified, deployable engines.",
                  no_args_is_help=True, add_completion=False)

Checkpoint = Annotated[Path, typer.Argument(help="Lightning .ckpt (sr-edge or the demo's) or "
                                                 "the demo's state-dict .pt")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="The demo's config.json "
                                                "(architecture and normalization)")]


@app.command("to-onnx")
@friendly_errors
@needs_export_extra("torch", "onnx", "onnxscript")
def to_onnx(
    checkpoint: Checkpoint,
    config: ConfigOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output .onnx "
                                             "(default: next to the checkpoint)")] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset")] = 18,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output")] = False,
    optimize: Annotated[bool, typer.Option(help="Apply the exact graph rewrites (checked "
                                           "against the original network)")] = True,
) -> None:
    """Export a checkpoint to a self-describing ONNX model, checked against PyTorch."""
    from sr_export.checkpoints import load_checkpoint
    from sr_export.onnx_export import export_onnx
    from sr_runtime.paths import check_output

    out = out or checkpoint.with_suffix(".onnx")
    check_output(out, overwrite)
    with console.status(f"loading {checkpoint}"):
        loaded = load_checkpoint(checkpoint, config)
    console.print(f"loaded {loaded.source_format} checkpoint {checkpoint} "
                  f"(x{loaded.description.scale}, {dict(loaded.description.arch_params)})")
    with console.status("exporting to ONNX and checking against PyTorch"):
        report = export_onnx(loaded, out, opset=opset, optimize=optimize)
    console.print(report.summary(loaded.description.variables[0].units))
    console.print(f"wrote {out}")


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
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Run folder (logs, model.ckpt)")] =
    Path("runs/train"),
    cpu_minutes: Annotated[float, typer.Option(help="Training budget in CPU-minutes (process "
                                               "CPU time, all threads)")] = 40.0,
    channels: Annotated[int, typer.Option(help="SRResNet n_channels")] = 32,
    blocks: Annotated[int, typer.Option(help="SRResNet n_blocks")] = 8,
    batch_size: Annotated[int, typer.Option(help="Batch size")] = 16,
    learning_rate: Annotated[float, typer.Option(help="Adam learning rate (cosine decay over "
                                                 "the budget)")] = 1e-3,
    threads: Annotated[int | None, typer.Option(help="torch threads [default: all]")] = None,
    seed: Annotated[int, typer.Option(help="Random seed")] = 42,
    crop: Annotated[int, typer.Option(help="LR crop size of training samples")] = 16,
    skip: Annotated[str, typer.Option(help="Upsampling skip added to the output: none (the "
                                      "demo's) or bicubic")] = "none",
) -> None:
    """Train SRResNet on the embedded sample's training period (Oct 1-24 2024)."""
    from sr_export.model import SRResNetConfig
    from sr_export.training import train as train_model
    from sr_runtime.sample import training_times

    config = SRResNetConfig(n_channels=channels, n_blocks=blocks, upsample_skip=skip)
    checkpoint = train_model(config, out_dir, cpu_minutes=cpu_minutes, times=training_times(),
                             batch_size=batch_size, learning_rate=learning_rate,
                             seed=seed, threads=threads, crop_lr=crop)
    console.print(f"wrote {checkpoint}; export it with: sr-export to-onnx {checkpoint}")


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
) -> None:
    """Score the model, nearest, bicubic and a lapse-rate reference on held-out times."""
    from sr_export.evaluate import evaluate as run_evaluation
    from sr_runtime.defaults import DEFAULT_MODEL, sample_hr_store
    from sr_runtime.engines.registry import load_engine
    from sr_runtime.sample import held_out_times
    from sr_runtime.sources.registry import resolve_source

    lr_ds = resolve_source(source).open()
    hr_ds = resolve_source(truth or str(sample_hr_store())).open()
    times = np.intersect1d(held_out_times(), hr_ds.time.values)
    engine = load_engine(backend, model or DEFAULT_MODEL, config=config).engine
    with console.status(f"evaluating {times.size} held-out steps"):
        result = run_evaluation(engine, lr_ds, hr_ds, times)
    typer.echo(result.table())
    if markdown:
        markdown.write_text(result.table() + "\n")
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
) -> None:
    """Build a TensorRT engine (FP16 by default), checked against PyTorch / ONNX Runtime FP32."""
    if source.suffix != ".onnx":  # a checkpoint is exported first
        require_extra("to-trt", "torch", "onnxscript")
    from sr_export.tensorrt_export import to_trt as build_trt

    with console.status("preparing") as status:
        result = build_trt(source, config=config, out=out, tile=tile, min_shape=min_shape,
                           opt_shape=opt_shape, max_shape=max_shape, batch=batch,
                           workspace_mb=workspace, timing_cache=timing_cache,
                           precision=precision, overwrite=overwrite, info=console.print,
                           progress=status.update)
    units = result.record.description.variables[0].units
    console.print(result.report.summary(units))
    console.print(f"precision: {result.recipe.precision}; built in {result.build_seconds:.0f} s; "
                  f"profile {result.record.fingerprint.profile.describe()}")
    console.print(f"wrote {result.engine} (fingerprint {result.record.fingerprint.key()[:12]} "
                  f"in {result.engine.name}.json)")



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
) -> None:
    """Make an INT8 variant for CPUs, written only if it passes the accuracy gate."""
    from sr_export.quantize import (
        default_output,
        load_calibration,
        load_gate_data,
        parse_times,
        quantize_int8,
    )
    from sr_runtime.engines.onnxruntime import read_description
    from sr_runtime.paths import check_output

    out = out or default_output(model)
    check_output(out, overwrite)
    description = read_description(model)
    fields, label = load_calibration(source, description, parse_times(calib_times))
    gate_data = load_gate_data(source, description, truth)
    with console.status(f"quantizing {model.name} on {len(fields)} calibration fields"):
        report = quantize_int8(model, out, fields, gate_data, max_rmse=max_rmse,
                               max_psnr_drop=max_psnr_drop, calibration_label=label)
    console.print(f"calibrated on {label}")
    console.print(f"accuracy gate: {report.gate.summary(description.variables[0].units)}")
    if report.speedup:
        console.print(f"speed: {report.speedup:.2f}x the FP32 model on this machine")
    console.print(f"wrote {out}")


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
) -> None:
    """Find the fastest tile, engine and precision on this machine; store MODEL.tune.json."""
    from sr_export.calibration import load_gate_data
    from sr_export.tune import parse_tiles, profile_nodes, summary, tune_model, write_tune
    from sr_runtime.engines.onnxruntime import read_description
    from sr_runtime.errors import UsageError

    if repeats < 1 or not pause >= 0:
        raise UsageError("--repeats must be at least 1 and --pause at least 0")
    gate_data = load_gate_data(source, read_description(model), truth) if openvino else None
    record = tune_model(model, tiles=parse_tiles(tiles), repeats=repeats, max_memory_mb=max_memory,
                        progress=console.print, pause=pause, gate_data=gate_data,
                        openvino=openvino)
    typer.echo(summary(record))
    if profile:
        from sr_runtime.synthetic import sample_input

        lr = sample_input(read_description(model), shape=(32, 32), batch=1)
        typer.echo(profile_nodes(model, lr).table())
    console.print(f"wrote {write_tune(record, model)}")


def main() -> None:
    app()
