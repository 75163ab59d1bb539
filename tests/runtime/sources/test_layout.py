"""Whatever the store looks like, sources return the canonical layout."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from sr_runtime.errors import SourceError
from sr_runtime.sources.layout import canonicalize
from sr_runtime.sources.zarr_store import ZarrSource
from tests.conftest import EDH_LR_LAT, EDH_LR_LON, analytic_t2m, write_edh_store


def reference(tmp_path) -> xr.Dataset:
    return ZarrSource(write_edh_store(tmp_path / "ref.zarr")).open()


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_v2_and_v3(tmp_path, zarr_format):
    ds = ZarrSource(write_edh_store(tmp_path / "s.zarr", zarr_format=zarr_format)).open()
    xr.testing.assert_identical(ds.t2m.load(), reference(tmp_path).t2m.load())


def test_descending_latitude_and_short_names(tmp_path):
    ref = reference(tmp_path)
    flipped = ref.isel(latitude=slice(None, None, -1)).rename(latitude="lat", longitude="lon")
    flipped.to_zarr(tmp_path / "flip.zarr", zarr_format=3, consolidated=True)
    ds = ZarrSource(tmp_path / "flip.zarr").open()
    assert np.all(np.diff(ds.latitude.values) > 0)
    np.testing.assert_array_equal(ds.t2m.values, ref.t2m.values)


def test_global_0_360_with_duplicate_column():
    """A global grid on 0..360 with both 0 and 360: one column each, -180..180 ascending."""
    lat = EDH_LR_LAT[::64]
    lon360 = np.linspace(0, 360, 1025)
    values = analytic_t2m(np.zeros(1), lat, ((lon360 + 180) % 360) - 180)
    ds = xr.Dataset({"t2m": (("time", "latitude", "longitude"), values)},
                    coords={"time": [np.datetime64("2024-10-11T00", "ns")], "latitude": lat,
                            "longitude": lon360})
    out = canonicalize(ds, "test")
    assert out.longitude.size == 1024
    assert out.longitude.values[0] == -180 and out.longitude.values[-1] < 180
    assert np.all(np.diff(out.longitude.values) > 0)
    expected = analytic_t2m(np.zeros(1), lat, EDH_LR_LON[:-1])
    np.testing.assert_allclose(out.t2m.values, expected, atol=1e-4)


def test_edh_duplicate_180_column_dropped():
    lat = EDH_LR_LAT[:4]
    values = analytic_t2m(np.zeros(1), lat, EDH_LR_LON)
    ds = xr.Dataset({"t2m": (("time", "latitude", "longitude"), values)},
                    coords={"time": [np.datetime64("2024-10-11T00", "ns")], "latitude": lat,
                            "longitude": EDH_LR_LON})
    out = canonicalize(ds, "test")
    assert out.longitude.size == 1024 and out.longitude.values[0] == -180.0


@pytest.mark.parametrize(("n_lat", "n_lon"), [(512, 1025), (4096, 8193)])
def test_real_edh_grids_pass_the_regular_grid_check(n_lat, n_lon):
    """The Climate DT standard and high-maps grids (reference: edh-climate-dt.md), whole."""
    lat, lon = np.linspace(-90, 90, n_lat), np.linspace(-180, 180, n_lon)
    ds = xr.Dataset(coords={"time": [np.datetime64("2024-10-11T00", "ns")], "latitude": lat,
                            "longitude": lon})
    out = canonicalize(ds, "test")
    assert out.latitude.size == n_lat and out.longitude.size == n_lon - 1
    np.testing.assert_allclose(np.diff(out.longitude.values), 360 / (n_lon - 1))


def test_grid_off_by_more_than_a_hundredth_of_a_cell_is_refused():
    lat = EDH_LR_LAT[:40].copy()
    lat[20] += 0.02 * (lat[1] - lat[0])
    ds = xr.Dataset(coords={"time": [np.datetime64("2024-10-11T00", "ns")], "latitude": lat,
                            "longitude": EDH_LR_LON[:8]})
    with pytest.raises(SourceError, match="latitude coordinate is not a regular grid"):
        canonicalize(ds, "test")
    lat[20] -= 0.015 * (lat[1] - lat[0])  # 0.005 of a cell: float32-level noise passes
    canonicalize(ds.assign_coords(latitude=lat), "test")
