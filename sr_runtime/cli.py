"""`sr-run`: parses the command line and calls the runtime; no logic lives here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sr_runtime.clikit import console, friendly_errors

app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
@friendly_errors
def run(
    time: Annotated[str, typer.Option("--time", help="Valid time, ISO 8601 "
                                      "(e.g. 2024-10-11T12:00)")],
    out: Annotated[Path, typer.Option("--out", help="Output COG path")],
    model: Annotated[Path | None, typer.Option(
        "--model", help="sr-edge .onnx model, or a checkpoint for --backend torch "
        "[default: the embedded default model]")] = None,
    source: Annotated[str, typer.Option(
        "--source", help="'sample' (embedded DataCube) or a Zarr path/URL in the Earth Data "
        "Hub layout")] = "sample",
    bbox: Annotated[str | None, typer.Option(
        "--bbox", help="W,S,E,N in degrees [default: the whole source grid]")] = None,
    backend: Annotated[str, typer.Option(
        "--backend", help="auto, onnxruntime, torch, or a GPU backend")] = "auto",
    config: Annotated[Path | None, typer.Option(
        "--config", help="The demo's config.json, for --backend torch with a demo checkpoint")
    ] = None,
    lr_out: Annotated[Path | None, typer.Option("--lr-out", help="Also write the LR input "
                                                "as a COG")] = None,
    units: Annotated[str, typer.Option("--units", help="K or degC")] = "K",
    nearest: Annotated[bool, typer.Option("--nearest", help="Snap --time to the closest "
                                          "step")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing "
                                            "outputs")] = False,
) -> None:
    """Super-resolve one time step of a DataCube and write a Cloud-Optimized GeoTIFF."""
    from sr_runtime.runner import RunOptions, run_single

    run_single(RunOptions(time=time, out=out, model=model, source=source, bbox=bbox,
                          backend=backend, config=config, lr_out=lr_out, units=units,
                          nearest=nearest, overwrite=overwrite), console)


def main() -> None:
    app()
