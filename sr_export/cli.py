"""`sr-export`: parses the command line and calls the library; no logic lives here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sr_runtime.clikit import console, friendly_errors

app = typer.Typer(help="Turn trained SR checkpoints into verified, deployable engines.",
                  no_args_is_help=True, add_completion=False)

Checkpoint = Annotated[Path, typer.Argument(help="Lightning .ckpt (sr-edge or the demo's) or "
                                                 "the demo's state-dict .pt")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="The demo's config.json "
                                                "(architecture and normalization)")]


@app.command("to-onnx")
@friendly_errors
def to_onnx(
    checkpoint: Checkpoint,
    config: ConfigOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output .onnx "
                                             "(default: next to the checkpoint)")] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset")] = 18,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output")] = False,
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
        report = export_onnx(loaded, out, opset=opset)
    console.print(report.summary(loaded.description.variables[0].units))
    console.print(f"wrote {out}")


@app.command()
@friendly_errors
def inspect(model: Annotated[Path, typer.Argument(help="An sr-edge .onnx model")]) -> None:
    """Print the description stored in an ONNX model."""
    from sr_runtime.inspect import describe_model

    typer.echo(describe_model(model))


def main() -> None:
    app()
