"""`sr-run` with a two-variable (t2m, d2m) model that takes static HR fields (orog, lsm): COG
bands, Zarr and NetCDF variables, --units degC, --report per variable, the static fields from
the source's companion high-maps store, from --static, from the embedded sample and over HTTP,
and one-line refusals that leave no file behind."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from rio_cogeo.cogeo import cog_validate
from typer.testing import CliRunner

from sr_runtime.cli import app
from sr_runtime.description import HR_STATIC_INPUT, LR_INPUT
from sr_runtime.engines.onnxruntime import open_cpu_session
from sr_runtime.grid import hr_axis
from tests.conftest import (
    EDH_LR_LAT,
    EDH_LR_LON,
    assert_one_line_error,
    resize_model,
    write_edh_high_store,
    write_edh_store,
)

pytest.importorskip("torch")

runner = CliRunner()
WHEN = "2024-10-11T02:00"
# an LR box whose SR grid pairs one to one with the EDH high grid (for HR truth, --report)
SLICES = (slice(384, 400), slice(526, 550))
LR_NAME = "IFS-NEMO-SSP3-7.0-sfc-hourly-standard-v0.zarr"
HR_NAME = "IFS-NEMO-SSP3-7.0-sfc-hourly-high-maps-v0.zarr"


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Path:
    """``climate-dt-2/`` with the standard store (t2m, d2m) and its high-maps store (t2m, d2m,
    orog, lsm) beside it, as the Earth Data Hub names them."""
    root = tmp_path_factory.mktemp("hub")
    folder = root / "climate-dt-2"
    folder.mkdir()
    write_edh_store(folder / LR_NAME, lat_slice=SLICES[0], lon_slice=SLICES[1],
                    variables=("t2m", "d2m"))
    write_edh_high_store(folder / HR_NAME, lr_slices=SLICES)
    return root


def stores(hub: Path) -> tuple[Path, Path]:
    return hub / "climate-dt-2" / LR_NAME, hub / "climate-dt-2" / HR_NAME


def sr(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def expected_sr(model: Path, lr_store: Path, hr_store: Path, when: str = WHEN) -> np.ndarray:
    """(2, H, W) the model's output computed here, independently of sr-run: the LR window of
    both variables, and each SR cell's nearest HR cell of the high-maps store (brute force)."""
    lr = xr.open_zarr(lr_store).sel(time=np.datetime64(when, "ns"))
    window = np.stack([lr.t2m.values, lr.d2m.values])[None].astype(np.float32)
    lat, lon = EDH_LR_LAT[SLICES[0]], EDH_LR_LON[SLICES[1]]
    hr_lat = hr_axis(lat, 8, float(lat[1] - lat[0]))
    hr_lon = hr_axis(lon, 8, float(lon[1] - lon[0]))
    hr = xr.open_zarr(hr_store)
    rows = np.abs(hr.latitude.values[None] - hr_lat[:, None]).argmin(axis=1)
    cols = np.abs(hr.longitude.values[None] - hr_lon[:, None]).argmin(axis=1)
    statics = np.stack([hr[name].values[np.ix_(rows, cols)] for name in ("orog", "lsm")])
    return open_cpu_session(model).run(None, {LR_INPUT: window,
                                              HR_STATIC_INPUT: statics[None]})[0][0]


def read_bands(path: Path) -> tuple[np.ndarray, tuple, tuple, dict]:
    with rasterio.open(path) as cog:
        return cog.read()[:, ::-1], cog.descriptions, cog.units, cog.tags()


def test_cog_has_one_band_per_variable_with_static_fields_from_the_companion(
        static_models, hub, tmp_path):
    lr_store, hr_store = stores(hub)
    out, lr_out = tmp_path / "sr.tif", tmp_path / "lr.tif"
    result = sr("--model", static_models["two"], "--source", lr_store, "--time", WHEN,
                "--out", out, "--lr-out", lr_out, "--report", "--truth", hr_store,
                "--max-memory", 12)  # small tiles: the statics are sliced per tile
    assert result.exit_code == 0, result.output
    assert f"static HR fields orog, lsm from {hr_store} (the high-maps store beside --source)" \
        in result.output
    assert "SR 128x192 t2m, d2m [K]" in result.output
    for name in ("t2m", "d2m"):
        assert f"{name} skill at {WHEN} vs HR truth: RMSE" in result.output
    assert cog_validate(str(out))[0] and cog_validate(str(lr_out))[0]
    data, names, units, tags = read_bands(out)
    assert names == ("t2m", "d2m") and units == ("K", "K") and tags["variable"] == "t2m,d2m"
    np.testing.assert_allclose(data, expected_sr(static_models["two"], lr_store, hr_store),
                               atol=1e-4)
    assert np.all(data[1] < data[0])  # the dew point below the temperature, as in the input
    lr_data, lr_names, _, _ = read_bands(lr_out)
    assert lr_names == ("t2m", "d2m") and lr_data.shape == (2, 16, 24)


def test_zarr_has_one_variable_each_and_degc_converts_both(static_models, hub, tmp_path):
    lr_store, hr_store = stores(hub)
    out = tmp_path / "sr.zarr"
    result = sr("--model", static_models["two"], "--source", lr_store, "--start", WHEN,
                "--end", "2024-10-11T04:00", "--out", out, "--units", "degC", "--workers", 2)
    assert result.exit_code == 0, result.output
    ds = xr.open_zarr(out)
    assert {"t2m", "d2m", "step_complete"} <= set(ds.data_vars)
    assert ds.t2m.attrs["units"] == ds.d2m.attrs["units"] == "degC"
    assert ds.step_complete.values.tolist() == [1, 1, 1]
    kelvin = expected_sr(static_models["two"], lr_store, hr_store)
    np.testing.assert_allclose(ds.t2m.sel(time=np.datetime64(WHEN, "ns")).values,
                               kelvin[0] - 273.15, atol=1e-3)
    np.testing.assert_allclose(ds.d2m.sel(time=np.datetime64(WHEN, "ns")).values,
                               kelvin[1] - 273.15, atol=1e-3)


def test_netcdf_has_both_variables_and_the_template_names_them(static_models, hub, tmp_path):
    lr_store, _ = stores(hub)
    result = sr("--model", static_models["two"], "--source", lr_store, "--time", WHEN,
                "--out", tmp_path / "sr_{time:%H}_{variable}.nc")
    assert result.exit_code == 0, result.output
    (written,) = tmp_path.glob("*.nc")
    assert written.name == "sr_02_t2m-d2m.nc"
    with xr.open_dataset(written, engine="scipy") as ds:
        assert ds.t2m.attrs["standard_name"] == "air_temperature"
        assert ds.d2m.attrs["standard_name"] == "dew_point_temperature"
        assert ds.t2m.shape == ds.d2m.shape == (1, 128, 192)


def test_static_option_names_the_store_when_the_source_has_no_companion(static_models, hub,
                                                                        tmp_path):
    lr_store, hr_store = stores(hub)
    lonely = tmp_path / "cube.zarr"  # not named as the Hub names its stores: no companion
    write_edh_store(lonely, lat_slice=SLICES[0], lon_slice=SLICES[1], variables=("t2m", "d2m"))
    before = snapshot(tmp_path)
    refused = sr("--model", static_models["two"], "--source", lonely, "--time", WHEN,
                 "--out", tmp_path / "sr.tif", "--quiet")
    message = assert_one_line_error(refused, 2)
    assert "takes static HR fields (orog, lsm)" in message and "pass --static STORE" in message
    assert snapshot(tmp_path) == before
    result = sr("--model", static_models["two"], "--source", lonely, "--time", WHEN,
                "--out", tmp_path / "sr.tif", "--static", hr_store)
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(read_bands(tmp_path / "sr.tif")[0],
                               expected_sr(static_models["two"], lr_store, hr_store), atol=1e-4)


@pytest.mark.parametrize(("store", "code", "expected"), [
    (dict(margin=-3), 2, "does not cover this region on the SR grid"),
    (dict(change=lambda ds: ds.assign(orog=ds.orog.assign_attrs(units="hPa"))), 2,
     "orog is in 'hPa', which sr-run cannot convert to the model's 'm'"),
    (dict(change=lambda ds: ds.assign(orog=ds.orog.where(ds.latitude < 47.0))), 1,
     "orog values are missing (NaN)"),
    (dict(change=lambda ds: ds.assign(lsm=ds.lsm + 2.0)), 1,
     "lsm values are outside the plausible range 0..1"),
    (dict(statics=("orog",)), 2, "has no static field lsm which the model needs"),
])
def test_a_static_store_that_cannot_serve_is_refused_before_any_output(static_models, hub,
                                                                       tmp_path, store, code,
                                                                       expected):
    lr_store, _ = stores(hub)
    bad = write_edh_high_store(tmp_path / "bad.zarr", lr_slices=SLICES, **store)
    before = snapshot(tmp_path)
    result = sr("--model", static_models["two"], "--source", lr_store, "--time", WHEN,
                "--out", tmp_path / "sr.tif", "--static", bad, "--quiet")
    message = assert_one_line_error(result, code)
    assert expected in message, message
    assert snapshot(tmp_path) == before  # no output, not even a temporary


def test_the_embedded_sample_serves_its_own_static_fields(static_models, tmp_path):
    result = sr("--model", static_models["one"], "--time", "2024-10-11T12:00",
                "--out", tmp_path / "sr.tif")
    assert result.exit_code == 0, result.output
    assert "static HR fields orog, lsm from the embedded sample's high-maps store" in \
        result.output
    data, names, _, _ = read_bands(tmp_path / "sr.tif")
    assert names == ("t2m",) and data.shape == (1, 256, 256)


def test_a_model_without_static_inputs_never_opens_a_static_store(tmp_path, hub):
    lr_store, _ = stores(hub)
    result = sr("--model", resize_model(tmp_path / "plain.onnx"), "--source", lr_store,
                "--time", WHEN, "--out", tmp_path / "sr.tif", "--static",
                tmp_path / "does-not-exist.zarr")
    assert result.exit_code == 0, result.output
    assert "not used: the model takes no static HR fields" in result.output
    with rasterio.open(tmp_path / "sr.tif") as cog:
        assert cog.count == 1 and cog.descriptions == ("t2m",)


def test_static_fields_over_http_from_the_hub(static_models, hub, tmp_path, serve):
    from tests.runtime.sources.conftest import API_KEY

    server = serve(hub)
    lr_store, hr_store = stores(hub)
    out = tmp_path / "sr.tif"
    result = sr("--model", static_models["two"], "--source", "edh", "--edh-url",
                server.base_url, "--time", WHEN, "--out", out)
    assert result.exit_code == 0, result.output
    assert f"from Earth Data Hub IFS-NEMO/SSP3-7.0/high-maps ({server.base_url}/{HR_NAME})" \
        in result.output
    assert any(path.endswith("/orog/c/0/0") and status == 200
               for path, status in server.served)
    np.testing.assert_allclose(read_bands(out)[0],
                               expected_sr(static_models["two"], lr_store, hr_store), atol=1e-4)
    assert API_KEY not in result.output

    # --static as a URL, with the source on disk
    url = f"{server.base_url}/{HR_NAME}"
    again = sr("--model", static_models["two"], "--source", lr_store, "--time", WHEN,
               "--out", tmp_path / "again.tif", "--static", url)
    assert again.exit_code == 0, again.output
    np.testing.assert_array_equal(read_bands(tmp_path / "again.tif")[0], read_bands(out)[0])

    # a static chunk the server does not have (404): refused, naming it, nothing written
    server.faults.missing = {"orog/c/0/0"}
    before = snapshot(tmp_path)
    missing = sr("--model", static_models["two"], "--source", lr_store, "--time", WHEN,
                 "--out", tmp_path / "missing.tif", "--static", url, "--quiet")
    message = assert_one_line_error(missing, 1)
    assert "HTTP 404 on orog/c/0/0" in message and "orog has missing chunks" in message
    assert snapshot(tmp_path) == before


def test_resume_refuses_another_static_store(static_models, hub, tmp_path):
    lr_store, hr_store = stores(hub)
    copy = write_edh_high_store(tmp_path / "copy.zarr", lr_slices=SLICES)
    out = tmp_path / "sr.zarr"
    args = ["--model", static_models["two"], "--source", lr_store, "--start", WHEN,
            "--end", "2024-10-11T03:00", "--out", out]
    assert sr(*args).exit_code == 0
    assert xr.open_zarr(out).attrs["static"].startswith(str(hr_store))
    again = sr(*args, "--resume", "--static", copy, "--quiet")
    message = assert_one_line_error(again, 2)
    assert "--static (the store of the static HR fields)" in message
    assert sr(*args, "--resume").exit_code == 0
