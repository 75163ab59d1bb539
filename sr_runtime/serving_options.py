"""Command-line options `sr-app` and `sr-serve` share: which model, cube and backend they open."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ModelOption = Annotated[Path | None, typer.Option(
    "--model", help="sr-edge .onnx model, TensorRT .engine, or a checkpoint for --backend "
    "torch [default: the embedded default model]")]
SourceOption = Annotated[str, typer.Option(
    "--source", help="'sample', 'edh[:MODEL/EXP/VARIANT]', or a Zarr path/URL in the Earth "
    "Data Hub layout")]
EdhUrlOption = Annotated[str | None, typer.Option("--edh-url", envvar="SR_EDGE_EDH_URL",
                                                  help="Earth Data Hub base URL")]
BackendOption = Annotated[str, typer.Option("--backend", help="auto, onnxruntime, torch, or a "
                                            "GPU backend")]
ConfigOption = Annotated[Path | None, typer.Option("--config", help="The demo's config.json, "
                                                   "for --backend torch")]
CacheOption = Annotated[float, typer.Option("--cache-mb", help="Memory for cached results "
                                            "(MB)")]
StaticOption = Annotated[str | None, typer.Option(
    "--static", help="Static HR fields (orog, lsm) for models that take them: a Zarr path/URL "
    "in the Earth Data Hub high-maps layout [default: the source's companion high-resolution "
    "store]")]
