"""Run the service with uvicorn: in the foreground (``sr-serve``) or in a thread (tests, benchmark).

Both bind 127.0.0.1 unless told otherwise; port 0 takes a free port, which :func:`serving` reports.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def config(app: FastAPI, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
           log_level: str = "info", access_log: bool = True) -> uvicorn.Config:
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=access_log,
                          server_header=False, proxy_headers=False, lifespan="on")


@contextmanager
def serving(app: FastAPI, host: str = DEFAULT_HOST, port: int = 0,
            log_level: str = "warning", start_timeout: float = 30.0) -> Iterator[str]:
    """Serve ``app`` from a background thread; yields its base URL, stops it on exit."""
    server = uvicorn.Server(config(app, host, port, log_level, access_log=False))
    thread = threading.Thread(target=server.run, name="sr-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the server did not start on {host}:{port}")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()
    try:
        yield f"http://{bound[0]}:{bound[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
