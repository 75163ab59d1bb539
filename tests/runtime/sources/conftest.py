"""A local Earth Data Hub: EDH-layout stores over HTTP on 127.0.0.1 with Basic auth, no folder
listings, and faults injected on demand (5xx, slow answers, dropped connections, 401/403/429,
404 for chosen keys, damaged or truncated bodies served with status 200)."""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sr_runtime.sources import http
from sr_runtime.sources.http import RetryPolicy
from tests.conftest import write_edh_store
from tests.runtime.sources.stores import damage

API_KEY = "edh_key_TESTSECRET0123456789"
LR_NAME = "IFS-NEMO-SSP3-7.0-sfc-hourly-standard-v0.zarr"
FAST_RETRY = RetryPolicy(attempts=4, base_s=0.01, max_wait_s=0.05, deadline_s=20.0,
                         timeout_s=0.5)


@dataclass
class Faults:
    errors: int = 0        # answer 503 to the next N requests
    slow: int = 0          # answer the next N requests after `delay` s (beyond the timeout)
    drop: int = 0          # cut the next N responses in the middle of the body
    status: int | None = None  # answer every request with this status (401, 403, 429...)
    delay: float = 1.5
    missing: set[str] = field(default_factory=set)  # 404 for paths ending in /KEY, every time
    # paths ending in /KEY answered 200 with a damaged body: KEY -> "garbage" or "truncate"
    # (the truncated body is sent whole, with a matching Content-Length)
    corrupt: dict[str, str] = field(default_factory=dict)

    def chosen(self, path: str, keys) -> str | None:  # type: ignore[no-untyped-def]
        return next((key for key in keys if path.endswith("/" + key)), None)


class EdhServer:
    def __init__(self, root: Path, key: str = API_KEY) -> None:
        self.root, self.key = root, key
        self.faults = Faults()
        self.lock = threading.Lock()
        self.served: list[tuple[str, int]] = []
        self.auth_headers: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self.answer(body=False)

            def do_GET(self) -> None:
                self.answer(body=True)

            def send_status(self, status: int) -> None:
                server.served.append((self.path, status))  # before the client can see it
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def answer(self, body: bool) -> None:
                faults = server.faults
                with server.lock:
                    server.auth_headers.append(self.headers.get("Authorization", ""))
                    action = None
                    if faults.status:
                        action = faults.status
                    elif faults.errors > 0:
                        faults.errors -= 1
                        action = 503
                    elif faults.drop > 0:
                        faults.drop -= 1
                        action = "drop"
                    elif faults.slow > 0:
                        faults.slow -= 1
                        action = "slow"
                if isinstance(action, int):
                    return self.send_status(action)
                expected = "Basic " + base64.b64encode(f"edh:{server.key}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    return self.send_status(401)
                request = self.path.split("?")[0]
                if faults.chosen(request, faults.missing):
                    return self.send_status(404)
                path = (server.root / request.lstrip("/")).resolve()
                found = server.root.resolve() in path.parents and path.is_file()
                data = path.read_bytes() if found else b"not found"
                spoiled = faults.chosen(request, faults.corrupt)
                if found and spoiled:
                    data = damage(data, faults.corrupt[spoiled])
                if action == "slow":
                    time.sleep(faults.delay)
                if action == "drop":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data) + 100))
                    server.served.append((self.path, -1))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return None
                if not found:
                    return self.send_status(404)  # no folder listings, ever
                server.served.append((self.path, 200))
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                if body:
                    self.wfile.write(data)
                return None

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # clients hanging up early (timeouts, cancelled reads) are expected

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/climate-dt-2"

    def __enter__(self) -> EdhServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="session")
def edh_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("edh")
    folder = root / "climate-dt-2"
    folder.mkdir()
    write_edh_store(folder / LR_NAME)
    write_edh_store(folder / "IFS-NEMO-hist-sfc-hourly-standard-v0.zarr", zarr_format=2)
    write_edh_store(folder / "unconsolidated.zarr", consolidated=False)
    return root


def _client_environment(monkeypatch, tmp_path) -> None:
    """A fast retry policy, the key in $EDH_API_KEY and no ~/.netrc."""
    monkeypatch.setattr(http, "DEFAULT_RETRY", FAST_RETRY)
    monkeypatch.setenv("EDH_API_KEY", API_KEY)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.delenv("SR_EDGE_EDH_URL", raising=False)


@pytest.fixture
def edh_server(edh_root, monkeypatch, tmp_path):
    """The server over the session's stores, with the client environment set."""
    _client_environment(monkeypatch, tmp_path)
    with EdhServer(edh_root) as server:
        yield server


@pytest.fixture
def serve(monkeypatch, tmp_path):
    """``serve(root)``: a server over any folder (``root/climate-dt-2/NAME.zarr`` is
    ``{server.base_url}/NAME.zarr``), with the client environment set; stopped at the end."""
    _client_environment(monkeypatch, tmp_path)
    servers: list[EdhServer] = []

    def start(root: Path) -> EdhServer:
        servers.append(EdhServer(root).__enter__())
        return servers[-1]

    yield start
    for server in servers:
        server.__exit__()
