"""The Python API with a two-variable model that takes static HR fields: super_resolve on a
Dataset with ``static=``, and the app/service results (they show the first variable)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import sr_runtime as sr
from sr_runtime.errors import UsageError
from sr_runtime.sources.zarr_store import ZarrSource
from tests.conftest import write_edh_high_store, write_edh_store

pytest.importorskip("torch")
SLICES = (slice(384, 400), slice(526, 550))
WHEN = "2024-10-11T02:00"


@pytest.fixture(scope="module")
def cube(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cube")
    lr = write_edh_store(folder / "lr.zarr", lat_slice=SLICES[0], lon_slice=SLICES[1],
                         variables=("t2m", "d2m"))
    hr = write_edh_high_store(folder / "hr.zarr", lr_slices=SLICES)
    return lr, hr


def test_super_resolve_takes_a_dataset_and_the_static_store(static_models, cube):
    lr_store, hr_store = cube
    with sr.open_model(static_models["two"], "onnxruntime") as model:
        frame = xr.open_zarr(lr_store)[["t2m", "d2m"]].sel(time=np.datetime64(WHEN, "ns")).load()
        hr = sr.super_resolve(frame, model, static=str(hr_store))
        assert isinstance(hr, xr.Dataset) and list(hr.data_vars) == ["t2m", "d2m"]
        assert hr.t2m.shape == (128, 192) and hr.d2m.attrs["units"] == "K"
        assert hr.d2m.attrs["standard_name"] == "dew_point_temperature"
        # the same static fields given as a Dataset or a source give the same values
        same = sr.super_resolve(frame, model, static=xr.open_zarr(hr_store), units="degC")
        np.testing.assert_allclose(same.t2m.values, hr.t2m.values - 273.15, atol=1e-3)
        # a region in the south of the store: the static fields are aligned per region
        tiled = sr.super_resolve(frame, model, static=ZarrSource(hr_store), tile=8)
        np.testing.assert_allclose(tiled.d2m.values, hr.d2m.values, atol=1e-4)
        with pytest.raises(UsageError, match="pass static=STORE"):
            sr.super_resolve(frame, model)
        with pytest.raises(UsageError, match="predicts t2m, d2m: pass an xarray.Dataset"):
            sr.super_resolve(frame.t2m, model, static=str(hr_store))
        with pytest.raises(UsageError, match="has no d2m"):
            sr.super_resolve(frame[["t2m"]], model, static=str(hr_store))


def test_the_service_results_show_the_first_variable_of_a_two_variable_model(static_models,
                                                                             cube, tmp_path):
    from sr_runtime.products import write_product
    from sr_runtime.results import Results

    lr_store, hr_store = cube
    with sr.open_model(static_models["two"], "onnxruntime") as model:
        with pytest.raises(UsageError, match="pass --static STORE"):
            Results(model, ZarrSource(lr_store))
        results = Results(model, ZarrSource(lr_store), ZarrSource(hr_store),
                          static=ZarrSource(hr_store))
        key = results.resolve(WHEN)
        result, cached = results.get(key)
        assert not cached and result.sr.name == "t2m" and result.sr.shape == (128, 192)
        assert result.scores is not None  # against the high-maps store's t2m
        frame = xr.open_zarr(lr_store)[["t2m", "d2m"]].sel(time=np.datetime64(WHEN, "ns"))
        direct = sr.super_resolve(frame.load(), model, static=str(hr_store))
        np.testing.assert_allclose(result.sr.values, direct.t2m.values, atol=1e-5)
        path = write_product(result, "sr", tmp_path, "test")
        import rasterio

        with rasterio.open(path) as cog:
            assert cog.count == 1 and cog.descriptions == ("t2m",)
        assert results.get(key)[1]  # cached, statics read once for the region
        assert len(results._statics) == 1


def test_sr_serve_takes_static_and_says_when_it_is_missing(static_models, cube, tmp_path):
    pytest.importorskip("fastapi")
    pytest.importorskip("rio_tiler")
    from typer.testing import CliRunner

    from sr_runtime.serve.cli import app
    from tests.conftest import assert_one_line_error

    lr_store, hr_store = cube
    missing = CliRunner().invoke(app, ["--model", str(static_models["two"]), "--source",
                                       str(lr_store), "--port", "0"])
    message = assert_one_line_error(missing, 2)
    assert "pass --static STORE" in message
    broken = CliRunner().invoke(app, ["--model", str(static_models["two"]), "--source",
                                      str(lr_store), "--static", str(tmp_path / "none.zarr"),
                                      "--port", "0"])
    assert "DataCube not found" in assert_one_line_error(broken, 1)
    assert hr_store.is_dir()
