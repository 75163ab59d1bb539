"""The Earth Data Hub key never reaches an answer, a file or a log of the service, also when
the hub refuses it mid-way (against the local EDH of tests/runtime/sources, with Basic auth)."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install "
                    "'sr-edge[serve]'")
pytest.importorskip("rio_tiler", reason="the serve extra is not installed: pip install "
                    "'sr-edge[serve]'")

import base64
import logging

import httpx

from sr_runtime.results import open_results
from sr_runtime.serve.http import create_app
from sr_runtime.serve.server import serving
from sr_runtime.sources import http
from tests.conftest import resize_model, write_edh_store
from tests.runtime.sources.conftest import API_KEY, FAST_RETRY, LR_NAME, EdhServer


@pytest.fixture
def edh(tmp_path, monkeypatch):
    folder = tmp_path / "edh" / "climate-dt-2"
    folder.mkdir(parents=True)
    write_edh_store(folder / LR_NAME)
    monkeypatch.setattr(http, "DEFAULT_RETRY", FAST_RETRY)
    monkeypatch.setenv("EDH_API_KEY", API_KEY)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    with EdhServer(tmp_path / "edh") as server:
        yield server


def test_the_key_is_in_no_answer_and_no_log(edh, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    results = open_results("edh", resize_model(tmp_path / "nearest.onnx"),
                           edh_url=edh.base_url)
    secrets = (API_KEY, base64.b64encode(f"edh:{API_KEY}".encode()).decode())
    seen: list[bytes] = []
    with serving(create_app(results), log_level="debug") as url:
        def fetch(path: str, **params: str) -> httpx.Response:
            response = httpx.get(url + path, params=params, timeout=60)
            seen.append(response.content + str(response.headers).encode())
            return response

        assert fetch("/health").status_code == 200
        times = fetch("/times").json()["times"]
        assert fetch("/cog/sr", time=times[0]).status_code == 200
        assert fetch("/cog/rgb", time=times[0]).status_code == 200
        edh.faults.status = 401  # the hub now refuses the key
        refused = fetch("/cog/sr", time=times[1])
        assert refused.status_code == 502 and "401" in refused.json()["error"]
    assert any(header.startswith("Basic ") for header in edh.auth_headers)  # it was sent
    for secret in secrets:
        assert all(secret.encode() not in body for body in seen)
        assert secret not in caplog.text
