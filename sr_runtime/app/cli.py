"""`sr-app`: parses the command line, opens the model and the cube, serves the web page."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Annotated

import typer

from sr_runtime.clikit import console, friendly_errors
from sr_runtime.serving_options import (
    BackendOption,
    CacheOption,
    ConfigOption,
    EdhUrlOption,
    ModelOption,
    SourceOption,
    StaticOption,
)

app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
@friendly_errors
def serve_app(
    host: Annotated[str, typer.Option("--host", help="Address to bind; 0.0.0.0 exposes the "
                                      "page to the network")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port")] = 7860,
    model: ModelOption = None,
    source: SourceOption = "sample",
    edh_url: EdhUrlOption = None,
    static: StaticOption = None,
    backend: BackendOption = "auto",
    config: ConfigOption = None,
    truth: Annotated[str | None, typer.Option(
        "--truth", help="HR truth DataCube for the third map and the scores [default: the "
        "sample's, with --source sample]")] = None,
    cache_mb: CacheOption = 1024.0,
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
                                 str(config) if config else None, truth, edh_url, static),
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
