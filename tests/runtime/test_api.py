"""The public Python API (sr_runtime.api): xarray in, xarray out, and the README's example."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from rio_cogeo.cogeo import cog_validate

import sr_runtime as sr
from sr_runtime.defaults import LR_ONLY_MODEL
from sr_runtime.errors import SourceError, UsageError, VariableError

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def model():
    """A model of one variable (t2m DataArray in, out): the API's mechanics."""
    with sr.open_model(LR_ONLY_MODEL) as opened:
        yield opened


@pytest.fixture(scope="module")
def default_model():
    """The default model: t2m and d2m (a Dataset), static orog/lsm, clock inputs."""
    with sr.open_model() as opened:
        yield opened


@pytest.fixture(scope="module")
def lr() -> xr.DataArray:
    return sr.read_field(sr.open_source("sample"), "t2m", time="2024-10-11T12:00")


def run_readme_block(marker: str, folder: Path) -> None:
    text = README.read_text()
    match = re.search(rf"<!-- {marker} .*?-->\s*```python\n(.*?)```", text, re.S)
    assert match, f"README has no code block after the {marker} marker"
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        exec(compile(match.group(1), "README.md", "exec"), {})  # noqa: S102
    finally:
        os.chdir(cwd)


def test_readme_run_request_example_runs(tmp_path, capsys):
    run_readme_block("api-run-example", tmp_path)
    steps = capsys.readouterr().out.strip().splitlines()[-1].split()[0]
    assert steps == "24"
    written = xr.open_zarr(tmp_path / "sr.zarr")
    assert written.sizes["time"] == 24 and bool(written.step_complete.all())
    assert np.isfinite(written.t2m.values).all()


def test_readme_example_runs(tmp_path, capsys):
    run_readme_block("api-example", tmp_path)
    out = capsys.readouterr().out
    assert "('latitude', 'longitude')" in out and "degC" in out
    assert "('t2m', 'd2m') ('orog', 'lsm')" in out
    assert cog_validate(str(tmp_path / "sr_api.tif"))[0]
    with rasterio.open(tmp_path / "sr_api.tif") as written:
        assert written.count == 2 and written.descriptions == ("t2m", "d2m")
        assert written.units == ("degC", "degC")


def test_default_model_matches_sr_run(default_model, tmp_path):
    """The API and sr-run give the same fields for the default (two-variable, static, clock)
    model: the same statics, the same clock, the same engine."""
    when = "2024-10-11T12:00"
    source = sr.open_source("sample")
    lr = sr.read_field(source, default_model.variables, time=when)
    assert isinstance(lr, xr.Dataset) and list(lr.data_vars) == ["t2m", "d2m"]
    hr = sr.super_resolve(lr, default_model, static=sr.open_static("sample"))
    assert list(hr.data_vars) == ["t2m", "d2m"]
    request = sr.RunRequest(out=str(tmp_path / "run.tif"),
                            times=sr.TimeRange(np.datetime64(when), np.datetime64(when),
                                               np.timedelta64(1, "h")))
    sr.run(request, say=lambda _: None)
    with rasterio.open(tmp_path / "run.tif") as written:
        bands = written.read()[:, ::-1]  # north-up rows -> latitude ascending
    np.testing.assert_allclose(bands[0], hr.t2m.values, atol=1e-4)
    np.testing.assert_allclose(bands[1], hr.d2m.values, atol=1e-4)
    # the graph caps the dew point at the temperature
    assert float((hr.d2m - hr.t2m).max()) <= 0.0
    with rasterio.open(sr.write_cog(hr, tmp_path / "api.tif")) as mine:
        np.testing.assert_allclose(mine.read(), bands[:, ::-1], atol=1e-4)
        assert mine.descriptions == ("t2m", "d2m")


def test_default_model_refuses_what_it_cannot_run(default_model):
    source = sr.open_source("sample")
    t2m = sr.read_field(source, "t2m", time="2024-10-11T12:00")
    with pytest.raises(UsageError, match="predicts t2m, d2m: pass an xarray.Dataset"):
        sr.super_resolve(t2m, default_model, static=sr.open_static())
    both = sr.read_field(source, default_model.variables, time="2024-10-11T12:00")
    with pytest.raises(UsageError, match=r"static HR fields \(orog, lsm\); pass static="):
        sr.super_resolve(both, default_model)
    with pytest.raises(UsageError, match="no d2m"):
        sr.super_resolve(both[["t2m"]], default_model, static=sr.open_static())


def test_read_field_names_what_the_cube_lacks():
    source = sr.open_source("sample")
    with pytest.raises(SourceError, match="no variable 'u10', 'v10'"):
        sr.read_field(source, ["t2m", "u10", "v10"], time="2024-10-11T12:00")
    with pytest.raises(UsageError, match="at least one variable"):
        sr.read_field(source, [], time="2024-10-11T12:00")


def test_open_static_without_a_companion_store_says_to_pass_one(tmp_path):
    lonely = tmp_path / "my-cube.zarr"
    lonely.mkdir()
    with pytest.raises(UsageError, match="no companion high-resolution store.*static=STORE"):
        sr.open_static(str(lonely))


def test_super_resolve_returns_the_hr_grid_with_cf_attributes(model, lr):
    hr = sr.super_resolve(lr, model)
    scale = model.description.scale
    assert hr.dims == ("latitude", "longitude")
    assert hr.shape == (lr.sizes["latitude"] * scale, lr.sizes["longitude"] * scale)
    assert hr.attrs["units"] == "K" and hr.attrs["standard_name"] == "air_temperature"
    assert hr.latitude.attrs["units"] == "degrees_north"
    # the HR cells tile the LR cells' extent exactly
    dlat = float(lr.latitude[1] - lr.latitude[0])
    assert float(hr.latitude[0]) == pytest.approx(float(lr.latitude[0]) - dlat / 2
                                                  + dlat / scale / 2)
    # 8x8 block means stay near the LR values (a model, not noise)
    blocks = hr.values.reshape(lr.shape[0], scale, lr.shape[1], scale).mean(axis=(1, 3))
    assert np.sqrt(np.mean((blocks - lr.values) ** 2)) < 1.0
    assert hr.time.values == lr.time.values


def test_dim_order_latitude_direction_and_units_do_not_change_the_result(model, lr):
    reference = sr.super_resolve(lr, model)
    flipped = lr.transpose("longitude", "latitude").isel(latitude=slice(None, None, -1))
    celsius = flipped - 273.15
    celsius.attrs["units"] = "degC"
    again = sr.super_resolve(celsius, model, units="K")
    np.testing.assert_allclose(again.transpose(*reference.dims).values, reference.values,
                               atol=1e-3)
    in_celsius = sr.super_resolve(lr, model, units="degC")
    np.testing.assert_allclose(in_celsius.values, reference.values - 273.15, atol=1e-3)


def test_tiled_equals_whole(model, lr):
    whole = sr.super_resolve(lr, model)
    tiled = sr.super_resolve(lr, model, tile=16)
    np.testing.assert_allclose(tiled.values, whole.values, atol=1e-4)


def test_time_dimension_runs_each_step(model):
    dataset = sr.open_source("sample").open()
    field = dataset["t2m"].isel(time=slice(0, 2)).load()
    hr = sr.super_resolve(field, model)
    assert hr.dims == ("time", "latitude", "longitude") and hr.sizes["time"] == 2
    first = sr.super_resolve(field.isel(time=0), model)
    np.testing.assert_allclose(hr.isel(time=0).values, first.values, atol=1e-5)


def test_bad_fields_are_refused_with_the_fix(model, lr):
    no_units = lr.copy()
    no_units.attrs = {}
    with pytest.raises(VariableError, match="no units attribute"):
        sr.super_resolve(no_units, model)
    holes = lr.copy()
    holes[3, 4] = np.nan
    with pytest.raises(SourceError, match="1 of 1024 t2m values at 2024-10-11T12:00 are "
                                          "missing"):
        sr.super_resolve(holes, model)
    zero = lr * 0
    zero.attrs["units"] = "K"
    with pytest.raises(SourceError, match="plausible range"):
        sr.super_resolve(zero, model)
    with pytest.raises(UsageError, match="dims"):
        sr.super_resolve(lr.expand_dims(level=[1]), model)
    shifted = lr.latitude.values.copy()
    shifted[10] += 0.3 * (shifted[1] - shifted[0])  # one centre 0.3 cells off the grid
    irregular = lr.assign_coords(latitude=shifted)
    with pytest.raises(SourceError, match="latitude coordinate is not a regular grid"):
        sr.super_resolve(irregular, model)
    holey_axis = lr.assign_coords(longitude=np.where(np.arange(32) == 5, np.nan,
                                                     lr.longitude.values))
    with pytest.raises(SourceError, match="1 of 32 longitude values are not finite"):
        sr.super_resolve(holey_axis, model)


def test_write_cog_holds_the_values(model, lr, tmp_path):
    hr = sr.super_resolve(lr, model)
    path = sr.write_cog(hr, tmp_path / "sr.tif")
    assert cog_validate(str(path))[0]
    with rasterio.open(path) as src:
        np.testing.assert_allclose(src.read(1)[::-1], hr.values, atol=1e-4)
        assert src.crs.to_epsg() == 4326
