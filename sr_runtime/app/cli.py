"""`sr-app`: parses the command line, opens the model and the cube, serves the web page."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Annotated

import typer

from sr_runtime.clikit import console, friendly_errors

app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
@friendly_errors
def serve_app(
    host: Annotated[str, typer.Option("--host", help="Address to bind; 0.0.0.0 exposes the "
                                      "page to the network")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port")] = 7860,
    model: Annotated[Path | None, typer.Option(
        "--model", help="sr-edge .onnx model, TensorRT .engine, or a checkpoint for --backend "
        "torch [default: the embedded default model]")] = None,
    source: Annotated[str, typer.Option(
        "--source", help="'sample', 'edh[:MODEL/EXP/VARIANT]', or a Zarr path/URL in the "
        "Earth Data Hub layout")] = "sample",
    edh_url: Annotated[str | None, typer.Option("--edh-url", envvar="SR_EDGE_EDH_URL",
                                                help="Earth Data Hub base URL")] = None,
    backend: Annotated[str, typer.Option("--backend", help="auto, onnxruntime, torch, or a "
                                         "GPU backend")] = "auto",
    config: Annotated[Path | None, typer.Option("--config", help="The demo's config.json, "
                                                "for --backend torch")] = None,
    truth: Annotated[str | None, typer.Option(
        "--truth", help="HR truth DataCube for the third map and the scores [default: the "
        "sample's, with --source sample]")] = None,
    cache_mb: Annotated[float, typer.Option("--cache-mb", help="Memory for cached results "
                                            "(MB)")] = 1024.0,
) -> None:
    """Serve the web app: maps of LR | SR | HR truth, scores, and COG downloads."""
    import tempfile

    from sr_runtime.extras import require

    folder = Path(tempfile.mkdtemp(prefix="sr-app-"))
    # Gradio's own copies of the files go under the same folder, removed at exit.
    os.environ["GRADIO_TEMP_DIR"] = str(folder / "gradio")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        require("app", ("gradio",))
    except BaseException:
        folder.rmdir()
        raise
    from sr_runtime.app.workbench import Choice, Workbench

    workbench = Workbench(Choice(source, str(model) if model else None, backend,
                                 str(config) if config else None, truth, edh_url),
                          cache_mb, folder / "sessions")
    try:
        for line in workbench.results().model.notes:
            console.print(line)
        from sr_runtime.app.ui import build_app, launch

        console.print(f"serving the app on http://{host}:{port}")
        signal.signal(signal.SIGTERM, _stop)  # a stop request cleans up as Ctrl-C does
        launch(build_app(workbench), host, port)
    finally:
        workbench.close()
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def _stop(*_: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    app()


if __name__ == "__main__":
    main()
