"""`sr-run`: parses the command line and calls the runtime; no logic lives here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from sr_runtime.clikit import (
    DebugOption,
    OneLineCommand,
    console,
    exit_quickly,
    friendly_errors,
)

app = typer.Typer(add_completion=False, help=__doc__)


@app.command(cls=OneLineCommand)
@friendly_errors
def run(
    out: Annotated[str, typer.Option(
        "--out", help="Output: a COG path (.tif/.tiff), a name template such as "
        "'sr_{time:%Y%m%dT%H}.tif', one Zarr store ending in .zarr, or NetCDF (.nc, one file "
        "per step)")],
    time: Annotated[str | None, typer.Option(
        "--time", help="Valid time, ISO 8601 (e.g. 2024-10-11T12:00)")] = None,
    start: Annotated[str | None, typer.Option(
        "--start", help="First time of a range (with --end and --every)")] = None,
    end: Annotated[str | None, typer.Option("--end", help="Last time of a range "
                                            "(included)")] = None,
    every: Annotated[str, typer.Option("--every", help="Step of the range (1h, 6h, 1D)")] = "1h",
    model: Annotated[Path | None, typer.Option(
        "--model", help="sr-edge .onnx model, or a checkpoint for --backend torch "
        "[default: the embedded default model]")] = None,
    source: Annotated[str, typer.Option(
        "--source", help="'sample' (embedded DataCube), 'edh' or "
        "'edh:MODEL/EXPERIMENT/VARIANT' (Climate DT on the Earth Data Hub), or a Zarr path/URL "
        "in the Earth Data Hub layout")] = "sample",
    edh_url: Annotated[str | None, typer.Option(
        "--edh-url", envvar="SR_EDGE_EDH_URL", help="Earth Data Hub base URL "
        "[default: https://api.earthdatahub.destine.eu/climate-dt-2]")] = None,
    static: Annotated[str | None, typer.Option(
        "--static", help="Static HR fields (orog, lsm) for models that take them: a Zarr "
        "path/URL in the Earth Data Hub high-maps layout [default: the source's companion "
        "high-resolution store]")] = None,
    bbox: Annotated[str | None, typer.Option(
        "--bbox", help="W,S,E,N in degrees [default: the whole source grid]")] = None,
    whole_globe: Annotated[bool, typer.Option(
        "--global", help="The whole source grid (excludes --bbox)")] = False,
    backend: Annotated[str, typer.Option(
        "--backend", help="auto, onnxruntime, openvino, torch, or a GPU backend")] = "auto",
    precision: Annotated[str, typer.Option(
        "--precision", help="auto (fastest gated path measured here), fp32 (the exact path: no "
        "variant, no BF16), bf16 (OpenVINO) or int8 (ONNX Runtime variant)")] = "auto",
    config: Annotated[Path | None, typer.Option(
        "--config", help="The demo's config.json, for --backend torch with a demo checkpoint")
    ] = None,
    lr_out: Annotated[Path | None, typer.Option("--lr-out", help="Also write the LR input "
                                                "as a COG (path or template)")] = None,
    units: Annotated[str, typer.Option("--units", help="K or degC")] = "K",
    nearest: Annotated[bool, typer.Option("--nearest", help="Snap --time (or each step of a "
                                          "range) to the closest step")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing "
                                            "outputs")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Keep completed steps of existing "
                                         "outputs and write the rest")] = False,
    max_memory: Annotated[float | None, typer.Option(
        "--max-memory", help="Engine working-set budget in MB; larger fields run in halo "
        "tiles [default: 1024]")] = None,
    workers: Annotated[int | None, typer.Option(
        "--workers", help="Run steps on N local Dask workers")] = None,
    scheduler: Annotated[str | None, typer.Option(
        "--scheduler", help="Run steps on a Dask cluster (tcp://HOST:PORT)")] = None,
    preview: Annotated[Path | None, typer.Option(
        "--preview", help="Write a quick-look PNG: LR | SR | HR truth (when the source has it)")
    ] = None,
    report: Annotated[bool, typer.Option(
        "--report", help="Print RMSE/PSNR/SSIM against HR truth (needs HR truth at --time)")
    ] = False,
    truth: Annotated[str | None, typer.Option(
        "--truth", help="HR truth DataCube for --preview/--report [default: the sample's, with "
        "--source sample]")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress or messages")] = False,
    json_summary: Annotated[bool, typer.Option(
        "--json", help="Print a JSON summary on stdout (steps, time, throughput, backend, "
        "outputs)")] = False,
    debug: DebugOption = False,
) -> None:
    """Super-resolve time steps of a DataCube into Cloud-Optimized GeoTIFFs or a Zarr store."""
    from sr_runtime.progress import Reporter
    from sr_runtime.request import RunRequest
    from sr_runtime.runner import run as run_steps

    request = RunRequest.from_text(
        out=out, time=time, start=start, end=end, every=every, bbox=bbox,
        whole_globe=whole_globe, model=model, source=source, edh_url=edh_url, static=static,
        backend=backend,
        precision=precision, config=config, lr_out=lr_out, units=units, nearest=nearest,
        overwrite=overwrite, resume=resume, max_memory=max_memory, workers=workers,
        scheduler=scheduler, quiet=quiet, preview=preview, report=report, truth=truth)
    summary = run_steps(request, say=lambda text: console.print(text, soft_wrap=True),
                        progress=lambda total: Reporter(console, total, quiet))
    several = len(summary.skills) > 1
    for name, skill in summary.skills.items():
        console.print(f"{name + ' ' if several else ''}skill at {skill['time']} vs HR truth: "
                      f"RMSE {skill['rmse']:.3f} {skill['units']}, PSNR {skill['psnr']:.2f} dB, "
                      f"SSIM {skill['ssim']:.4f} (data range {skill['data_range']:.2f} "
                      f"{skill['units']})", soft_wrap=True)
    if json_summary:
        typer.echo(json.dumps(summary.to_dict()))


def main() -> None:
    app()


def script() -> None:
    """The ``sr-run`` console script: :func:`main`, then a quick exit
    (:func:`sr_runtime.clikit.exit_quickly`)."""
    exit_quickly(main)


if __name__ == "__main__":
    script()
