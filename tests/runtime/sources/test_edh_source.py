"""`--source edh` against a local Earth Data Hub: exact results through transient faults, clear
errors on permanent ones, and the API key never in messages, tags or outputs."""

from __future__ import annotations

import time

import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from sr_runtime.cli import app
from sr_runtime.errors import AuthError, SourceError, UsageError
from sr_runtime.sources.edh import EdhSource, HttpZarrSource, parse_edh_spec
from sr_runtime.sources.registry import resolve_source
from tests.runtime.sources.conftest import API_KEY, LR_NAME

runner = CliRunner()
WHEN = "2024-10-11T03:00"


def run_cli(tmp_path, *args: str, name: str = "sr.tif"):
    out = tmp_path / name
    result = runner.invoke(app, ["--time", WHEN, "--out", str(out), *args])
    return result, out


def read_cog(path):
    with rasterio.open(path) as cog:
        return cog.read(1), cog.tags(), cog.transform


@pytest.fixture(scope="module")
def local_result(edh_root, tmp_path_factory):
    """The same step run from the store on disk: what every HTTP run must reproduce."""
    from tests.conftest import resize_model

    folder = tmp_path_factory.mktemp("local")
    model = resize_model(folder / "nearest.onnx")
    out = folder / "local.tif"
    result = runner.invoke(app, ["--time", WHEN, "--out", str(out), "--model", str(model),
                                 "--source", str(edh_root / "climate-dt-2" / LR_NAME)])
    assert result.exit_code == 0, result.output
    return model, read_cog(out)


def assert_no_secret(*texts: object) -> None:
    for text in texts:
        assert API_KEY not in str(text)
        assert "TESTSECRET" not in str(text)


def edh_args(server, model):
    return ["--source", "edh", "--edh-url", server.base_url, "--model", str(model)]


@pytest.mark.parametrize("fault", [{}, {"errors": 3}, {"drop": 2}, {"slow": 1},
                                   {"errors": 1, "drop": 1, "slow": 1}])
def test_exact_result_through_transient_faults(tmp_path, edh_server, local_result, fault):
    model, (expected, _, expected_transform) = local_result
    for key, value in fault.items():
        setattr(edh_server.faults, key, value)
    result, out = run_cli(tmp_path, *edh_args(edh_server, model))
    assert result.exit_code == 0, result.output
    data, tags, transform = read_cog(out)
    np.testing.assert_array_equal(data, expected)
    assert transform == expected_transform
    assert "Earth Data Hub IFS-NEMO/SSP3-7.0/standard" in tags["source"]
    assert edh_server.faults.errors == edh_server.faults.drop == edh_server.faults.slow == 0
    statuses = [status for _, status in edh_server.served]
    assert statuses.count(503) == fault.get("errors", 0)
    assert statuses.count(-1) == fault.get("drop", 0)
    assert_no_secret(result.output, tags, out.read_bytes())
    assert any(h.startswith("Basic ") for h in edh_server.auth_headers)


@pytest.mark.parametrize(("status", "needle"), [
    (401, "API key was refused (401)"),
    (403, "lacks Climate DT access"),
    (429, "quota for this key is used up"),
])
def test_permanent_auth_errors(tmp_path, edh_server, local_result, status, needle):
    edh_server.faults.status = status
    result, out = run_cli(tmp_path, *edh_args(edh_server, local_result[0]))
    assert result.exit_code == 1, result.output
    message = " ".join(result.output.split())
    assert needle in message and "Traceback" not in message
    refused = [path for path, s in edh_server.served if s == status]
    assert refused and len(refused) == len(set(refused)), "auth errors are not retried"
    assert not out.exists()
    assert_no_secret(result.output)


def test_wrong_key_is_refused(tmp_path, edh_server, local_result, monkeypatch):
    monkeypatch.setenv("EDH_API_KEY", "edh_key_wrong")
    result, _ = run_cli(tmp_path, *edh_args(edh_server, local_result[0]))
    assert result.exit_code == 1
    assert "API key was refused (401)" in " ".join(result.output.split())
    assert "edh_key_wrong" not in result.output


def test_server_down_gives_up_in_bounded_time(tmp_path, edh_server, local_result):
    edh_server.faults.errors = 10_000
    started = time.monotonic()
    result, out = run_cli(tmp_path, *edh_args(edh_server, local_result[0]))
    assert time.monotonic() - started < 20
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "failed after 4 attempts" in message and "HTTP 503" in message
    assert not out.exists()


def test_missing_key_says_how_to_set_it(edh_server, monkeypatch):
    monkeypatch.delenv("EDH_API_KEY")
    with pytest.raises(AuthError, match=r"set EDH_API_KEY=.*~/.netrc"):
        EdhSource(base_url=edh_server.base_url).open()


def test_key_from_netrc(tmp_path, edh_server, local_result, monkeypatch):
    monkeypatch.delenv("EDH_API_KEY")
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1\n  login edh\n  password {API_KEY}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    result, out = run_cli(tmp_path, *edh_args(edh_server, local_result[0]))
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(read_cog(out)[0], local_result[1][0])


def test_credentials_in_url_are_stripped(tmp_path, edh_server, local_result, monkeypatch):
    monkeypatch.delenv("EDH_API_KEY")
    host = edh_server.base_url.replace("http://", f"http://edh:{API_KEY}@")
    result, out = run_cli(tmp_path, "--source", f"{host}/{LR_NAME}", "--model",
                          str(local_result[0]))
    assert result.exit_code == 0, result.output
    data, tags, _ = read_cog(out)
    np.testing.assert_array_equal(data, local_result[1][0])
    assert tags["source"] == f"{edh_server.base_url}/{LR_NAME}"
    assert_no_secret(result.output, tags, repr(resolve_source(f"{host}/{LR_NAME}")))


def test_zarr_v2_store_over_http(edh_server):
    ds = EdhSource("IFS-NEMO", "hist", "standard", base_url=edh_server.base_url).open()
    assert "t2m" in ds and ds.t2m.shape == (6, 16, 24)


def test_unconsolidated_store_is_a_clear_error(edh_server):
    source = HttpZarrSource(f"{edh_server.base_url}/unconsolidated.zarr")
    with pytest.raises(SourceError, match="no consolidated metadata"):
        source.open()


def test_not_a_store(edh_server):
    with pytest.raises(SourceError, match="not a Zarr store"):
        HttpZarrSource(f"{edh_server.base_url}/nothing-here.zarr").open()


def test_edh_spec_and_url(monkeypatch):
    monkeypatch.setenv("SR_EDGE_EDH_URL", "https://example.org/base/")
    assert parse_edh_spec("edh") == ("IFS-NEMO", "SSP3-7.0", "standard")
    assert parse_edh_spec("edh:ICON/hist") == ("ICON", "hist", "standard")
    source = resolve_source("edh:IFS-FESOM/SSP3-7.0/high-maps")
    assert source.url == ("https://example.org/base/"
                          "IFS-FESOM-SSP3-7.0-sfc-hourly-high-maps-v0.zarr")
    monkeypatch.delenv("SR_EDGE_EDH_URL")
    assert resolve_source("edh").url.startswith(
        "https://api.earthdatahub.destine.eu/climate-dt-2/IFS-NEMO-SSP3-7.0")
    with pytest.raises(UsageError, match="unknown model 'GFS'; choose one of IFS-NEMO"):
        parse_edh_spec("edh:GFS/hist/standard")
