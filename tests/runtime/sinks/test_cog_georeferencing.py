"""End to end: the COG value at a latitude/longitude equals the LR cell that contains it."""

from __future__ import annotations

import numpy as np
import rasterio
import xarray as xr
from rio_cogeo.cogeo import cog_validate
from typer.testing import CliRunner

from sr_runtime.cli import app

runner = CliRunner()


def lr_cell_value(store, time: str, lat: float, lon: float) -> float:
    ds = xr.open_dataset(store, engine="zarr")
    lr = ds.t2m.sel(time=np.datetime64(time, "ns"))
    dlat = float(np.diff(ds.latitude.values).mean())
    dlon = float(np.diff(ds.longitude.values).mean())
    i = np.flatnonzero(np.abs(ds.latitude.values - lat) <= dlat / 2)
    j = np.flatnonzero(np.abs(ds.longitude.values - lon) <= dlon / 2)
    assert i.size == 1 and j.size == 1, "choose points strictly inside one LR cell"
    return float(lr.values[i[0], j[0]])


def test_cog_values_match_containing_lr_cell(tmp_path, edh_store, nearest_model):
    out, lr_out = tmp_path / "sr.tif", tmp_path / "lr.tif"
    result = runner.invoke(app, ["--time", "2024-10-11T03:00", "--out", str(out), "--model",
                                 str(nearest_model), "--source", str(edh_store),
                                 "--lr-out", str(lr_out)])
    assert result.exit_code == 0, result.output

    for path in (out, lr_out):
        valid, errors, _warnings = cog_validate(str(path))
        assert valid and errors == [], errors
        with rasterio.open(path) as cog:
            assert cog.overviews(1), f"{path.name}: viewers need at least one overview"

    ds = xr.open_dataset(edh_store, engine="zarr")
    lats, lons = ds.latitude.values, ds.longitude.values
    rng = np.random.default_rng(1)
    # points strictly inside LR cells, away from their borders by 10 % of a cell
    points = [(rng.uniform(lats[1], lats[-2]), rng.uniform(lons[1], lons[-2])) for _ in range(40)]
    points = [(la, lo) for la, lo in points
              if min(abs((la - lats[0]) / 0.35225 % 1 - 0.5), abs((lo - lons[0]) / 0.3515625 % 1
                                                                  - 0.5)) < 0.4]
    assert len(points) > 10
    with rasterio.open(out) as cog:
        assert cog.crs.to_epsg() == 4326
        assert cog.transform.e < 0, "north-up"
        assert cog.dtypes[0] == "float32" and np.isnan(cog.nodata)
        assert cog.overviews(1), "internal overviews expected"
        assert cog.profile["tiled"]
        assert cog.descriptions == ("t2m",) and cog.units == ("K",)
        structure = cog.tags(ns="IMAGE_STRUCTURE")
        assert structure["COMPRESSION"] == "DEFLATE" and structure["PREDICTOR"] == "3"
        tags = cog.tags()
        assert tags["variable"] == "t2m" and tags["units"] == "K"
        assert tags["valid_time"] == "2024-10-11T03:00:00Z"
        assert tags["backend"] == "onnxruntime"
        band = cog.read(1)
        for lat, lon in points:
            row, col = cog.index(lon, lat)
            expected = lr_cell_value(edh_store, "2024-10-11T03:00", lat, lon)
            assert band[row, col] == np.float32(expected), (lat, lon)
        # the HR raster covers exactly the LR cells' extent
        assert np.isclose(cog.bounds.top, lats[-1] + 0.35225 / 2, atol=1e-4)
        assert np.isclose(cog.bounds.left, lons[0] - 0.3515625 / 2, atol=1e-4)
        assert cog.width == 8 * lons.size and cog.height == 8 * lats.size


def test_bbox_and_celsius(tmp_path, edh_store, nearest_model):
    out = tmp_path / "sr_c.tif"
    ds = xr.open_dataset(edh_store, engine="zarr")
    lats, lons = ds.latitude.values, ds.longitude.values
    bbox = f"{lons[2] - .01:.4f},{lats[3] - .01:.4f},{lons[9] + .01:.4f},{lats[7] + .01:.4f}"
    result = runner.invoke(app, ["--time", "2024-10-11T00:00", "--out", str(out), "--model",
                                 str(nearest_model), "--source", str(edh_store), "--bbox",
                                 bbox, "--units", "degC"])
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as cog:
        assert (cog.height, cog.width) == (5 * 8, 8 * 8)
        assert cog.tags()["units"] == "degC"
        row, col = cog.index(float(lons[4]), float(lats[5]))
        expected = lr_cell_value(edh_store, "2024-10-11T00:00", lats[5], lons[4]) - 273.15
        assert np.isclose(cog.read(1)[row, col], expected, atol=1e-4)
