"""`sr-serve`: parses the command line, opens the model and the cube, serves them over HTTP."""

from __future__ import annotations

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
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind; 0.0.0.0 exposes the "
                                      "service to the network")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port (0: any free port)")] = 8000,
    model: ModelOption = None,
    source: SourceOption = "sample",
    edh_url: EdhUrlOption = None,
    static: StaticOption = None,
    backend: BackendOption = "auto",
    config: ConfigOption = None,
    truth: Annotated[str | None, typer.Option(
        "--truth", help="HR truth DataCube for scores [default: the sample's, with --source "
        "sample]")] = None,
    cache_mb: CacheOption = 1024.0,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level")] = "info",
) -> None:
    """Serve super-resolved COGs and map tiles over HTTP (OpenAPI docs at /docs)."""
    from sr_runtime.extras import require

    require("serve", ("fastapi", "uvicorn", "rio_tiler"))
    from sr_runtime.results import open_results

    results = open_results(source, model, backend, config=config, edh_url=edh_url,
                           truth=truth, cache_mb=cache_mb, say=console.print, static=static)
    import uvicorn

    from sr_runtime.serve.http import create_app
    from sr_runtime.serve.server import config as server_config

    console.print(f"serving {results.source.label} on http://{host}:{port} (docs: /docs)")
    uvicorn.Server(server_config(create_app(results), host, port, log_level)).run()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
