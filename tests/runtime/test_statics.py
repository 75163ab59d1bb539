"""Static HR fields (sr_runtime.statics): where they come from, how they are checked, and how
they are aligned onto the SR grid, on real Zarr stores in the Earth Data Hub high-maps layout."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from sr_runtime import units
from sr_runtime.description import StaticSpec
from sr_runtime.errors import RegionError, SourceError, UsageError, VariableError
from sr_runtime.grid import hr_axis
from sr_runtime.sources.zarr_store import ZarrSource
from sr_runtime.statics import (
    companion_source,
    nearest_cells,
    read_statics,
    region_statics,
    static_source,
)
from tests.conftest import (
    EDH_HR_LAT,
    EDH_HR_LON,
    EDH_LR_LAT,
    EDH_LR_LON,
    LR_SLICES,
    STATIC_SPECS,
    analytic_lsm,
    analytic_orog,
    write_edh_high_store,
)

LR_NAME = "IFS-NEMO-SSP3-7.0-sfc-hourly-standard-v0.zarr"
HR_NAME = "IFS-NEMO-SSP3-7.0-sfc-hourly-high-maps-v0.zarr"


def sr_grid(lr_slices=LR_SLICES) -> tuple[np.ndarray, np.ndarray]:
    """The SR cell centres of an LR window of the EDH standard grid (as sr-run computes them)."""
    lat, lon = EDH_LR_LAT[lr_slices[0]], EDH_LR_LON[lr_slices[1]]
    return hr_axis(lat, 8, float(lat[1] - lat[0])), hr_axis(lon, 8, float(lon[1] - lon[0]))


def nearest_by_brute_force(store: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    return np.abs(store[None, :] - wanted[:, None]).argmin(axis=1)


def test_statics_are_the_nearest_hr_cells_of_each_sr_centre(tmp_path):
    store = write_edh_high_store(tmp_path / HR_NAME)
    hr_lat, hr_lon = sr_grid()
    values = region_statics(ZarrSource(store), STATIC_SPECS, hr_lat, hr_lon)
    assert values.shape == (2, hr_lat.size, hr_lon.size) and values.dtype == np.float32
    written = xr.open_zarr(store)
    rows = nearest_by_brute_force(written.latitude.values, hr_lat)
    cols = nearest_by_brute_force(written.longitude.values, hr_lon)
    lat, lon = written.latitude.values[rows], written.longitude.values[cols]
    np.testing.assert_array_equal(values[0], analytic_orog(lat, lon))
    np.testing.assert_array_equal(values[1], analytic_lsm(lat, lon))
    # the grids are not nested: the SR centres are off the store's, by at most half a cell
    offsets = np.abs(lat - hr_lat)
    assert offsets.max() > 1e-3 and offsets.max() <= 0.51 * (EDH_HR_LAT[1] - EDH_HR_LAT[0])


def test_a_leading_time_dimension_is_dropped_and_other_units_converted(tmp_path):
    def to_km_and_percent(ds: xr.Dataset) -> xr.Dataset:
        ds["orog"] = ds.orog / 1000.0
        ds["orog"].attrs = {"units": "km", "long_name": "Orography"}
        ds["lsm"] = ds.lsm * 100.0
        ds["lsm"].attrs = {"units": "%"}
        return ds

    plain = write_edh_high_store(tmp_path / "plain.zarr")
    changed = write_edh_high_store(tmp_path / "km.zarr", static_time=True,
                                   change=to_km_and_percent)
    assert xr.open_zarr(changed).orog.dims == ("time", "latitude", "longitude")
    hr_lat, hr_lon = sr_grid()
    expected = region_statics(ZarrSource(plain), STATIC_SPECS, hr_lat, hr_lon)
    found = region_statics(ZarrSource(changed), STATIC_SPECS, hr_lat, hr_lon)
    np.testing.assert_allclose(found, expected, rtol=1e-5, atol=1e-4)


def test_a_store_of_static_fields_alone_needs_no_time(tmp_path):
    store = write_edh_high_store(tmp_path / "full.zarr")
    static_only = xr.open_zarr(store)[["orog", "lsm"]].drop_vars("time", errors="ignore")
    assert "time" not in static_only.coords
    static_only.to_zarr(tmp_path / "static.zarr", zarr_format=3, consolidated=True)
    source = static_source(str(tmp_path / "static.zarr"), "sample", None, ["orog", "lsm"])
    hr_lat, hr_lon = sr_grid()
    np.testing.assert_array_equal(region_statics(source, STATIC_SPECS, hr_lat, hr_lon),
                                  region_statics(ZarrSource(store), STATIC_SPECS, hr_lat,
                                                 hr_lon))


@pytest.mark.parametrize("margin", [-2, -1])
def test_a_store_that_does_not_cover_the_region_is_refused(tmp_path, margin):
    store = write_edh_high_store(tmp_path / HR_NAME, margin=margin)
    hr_lat, hr_lon = sr_grid()
    with pytest.raises(RegionError, match="does not cover this region") as caught:
        region_statics(ZarrSource(store), STATIC_SPECS, hr_lat, hr_lon)
    assert "--static STORE" in str(caught.value) and "\n" not in str(caught.value)


def test_a_store_on_another_grid_is_refused(tmp_path):
    # an LR ("standard") store given where the HR one belongs: its centres are up to half an
    # LR cell (4 SR cells) from the SR centres
    lat, lon = EDH_LR_LAT[350:390], EDH_LR_LON[520:560]
    xr.Dataset({"orog": (("latitude", "longitude"), analytic_orog(lat, lon), {"units": "m"}),
                "lsm": (("latitude", "longitude"), analytic_lsm(lat, lon), {"units": "(0 - 1)"})},
               coords={"latitude": lat, "longitude": lon}).to_zarr(tmp_path / "lr.zarr")
    source = static_source(str(tmp_path / "lr.zarr"), "sample", None, ["orog", "lsm"])
    hr_lat, hr_lon = sr_grid()
    with pytest.raises(RegionError, match="more than half an SR cell"):
        region_statics(source, STATIC_SPECS, hr_lat, hr_lon)
    shifted = write_edh_high_store(tmp_path / "shifted.zarr",
                                   change=lambda ds: ds.assign_coords(
                                       latitude=ds.latitude + 2.0))
    with pytest.raises(RegionError, match="does not cover this region"):
        region_statics(ZarrSource(shifted), STATIC_SPECS, hr_lat, hr_lon)


@pytest.mark.parametrize(("change", "error", "message"), [
    (lambda ds: ds.drop_vars("lsm"), VariableError, "has no static field lsm"),
    (lambda ds: ds.assign(orog=ds.orog.assign_attrs(units="hPa")), VariableError,
     "orog is in 'hPa', which sr-run cannot convert to the model's 'm'"),
    (lambda ds: ds.assign(orog=ds.orog.assign_attrs(units="")), VariableError,
     "orog has no units attribute"),
    (lambda ds: ds.assign(orog=ds.orog.where(ds.orog.latitude < 45.5)), SourceError,
     "orog values are missing \\(NaN\\)"),
    (lambda ds: ds.assign(orog=ds.orog * 0 + 12000.0), SourceError,
     "outside the plausible range -500..9000 m"),
    (lambda ds: ds.assign(lsm=ds.lsm * 0 + 1.5), SourceError,
     "lsm values are outside the plausible range 0..1"),
    (lambda ds: ds.assign(orog=ds.orog.expand_dims(level=2).copy()), VariableError,
     "has dims \\(level, latitude, longitude\\)"),
])
def test_broken_static_fields_are_refused(tmp_path, change, error, message):
    lr_slices = (slice(384, 400), LR_SLICES[1])
    store = write_edh_high_store(tmp_path / "bad.zarr", lr_slices=lr_slices, change=change)
    hr_lat, hr_lon = sr_grid(lr_slices)
    with pytest.raises(error, match=message) as caught:
        region_statics(ZarrSource(store), STATIC_SPECS, hr_lat, hr_lon)
    assert "\n" not in str(caught.value)


def test_nearest_cells_wraps_longitude_and_takes_the_pole_rows():
    lon = EDH_HR_LON[:-1]  # a global store after canonicalize: -180..180 without the duplicate
    wanted = -180.154 + np.arange(8200) * (360.0 / 8192)  # a global SR row, past both ends
    cols = nearest_cells(lon, wanted, "longitude", "store")
    around = np.abs((lon[None, :] - wanted[:50, None] + 180.0) % 360.0 - 180.0).argmin(axis=1)
    np.testing.assert_array_equal(cols[:50], around)
    assert cols[0] > lon.size - 10 and cols[-1] < 10  # across the antimeridian, both ways
    rows = nearest_cells(EDH_HR_LAT, np.linspace(-90.154, 90.154, 4096), "latitude", "store")
    assert rows[0] == 0 and rows[-1] == EDH_HR_LAT.size - 1
    with pytest.raises(RegionError):  # a regional store does not wrap
        nearest_cells(lon[100:200], lon[90:120] + 0.001, "longitude", "store")


def test_where_the_static_fields_come_from(tmp_path, monkeypatch):
    names = ["orog", "lsm"]
    assert "sample" in companion_source("sample").label  # type: ignore[union-attr]
    edh = companion_source("edh:ICON/hist", "https://hub.example/climate-dt-2")
    assert edh is not None and edh.label.endswith(
        "https://hub.example/climate-dt-2/ICON-hist-sfc-hourly-high-maps-v0.zarr)")
    lr = tmp_path / LR_NAME
    lr.mkdir()
    assert companion_source(str(lr)) is None  # the high-maps store beside it does not exist
    with pytest.raises(UsageError, match="has no companion high-resolution store; pass "
                                         "--static STORE"):
        static_source(None, str(lr), None, names)
    (tmp_path / HR_NAME).mkdir()
    assert str(tmp_path / HR_NAME) in companion_source(str(lr)).label  # type: ignore[union-attr]
    url = "http://127.0.0.1:9/x/" + LR_NAME
    assert companion_source(url).url == url.replace("standard", "high-maps")  # type: ignore
    assert companion_source(str(tmp_path / "other.zarr")) is None
    chosen = static_source(str(tmp_path / "mine.zarr"), "sample", None, names)
    assert chosen.label == str(tmp_path / "mine.zarr")
    with pytest.raises(UsageError, match="--static is empty"):
        static_source(" ", "sample", None, names)


def test_units_families_convert_and_bound_static_fields():
    np.testing.assert_allclose(units.convert(np.array([1.5]), "km", "m"), [1500.0])
    np.testing.assert_allclose(units.convert(np.array([1000.0]), "ft", "m"), [304.8])
    np.testing.assert_allclose(units.convert(np.array([40.0]), "%", "(0 - 1)"), [0.4])
    assert units.plausible_range("orog", "m") == (-500.0, 9000.0)
    assert units.plausible_range("orog", "km") == (-0.5, 9.0)
    assert units.plausible_range("lsm", "(0 - 1)") == (0.0, 1.0)
    with pytest.raises(VariableError, match="known units: m, metres"):
        units.check_convertible("K", "m", "orog", "store")
    with pytest.raises(VariableError):
        units.check_convertible("m", "K", "t2m", "store")


def test_read_statics_keeps_the_model_order(tmp_path):
    store = write_edh_high_store(tmp_path / HR_NAME)
    hr_lat, hr_lon = sr_grid()
    reverse = tuple(reversed(STATIC_SPECS))
    dataset = ZarrSource(store).open()
    forward = read_statics(dataset, STATIC_SPECS, hr_lat, hr_lon, "store")
    backward = read_statics(dataset, reverse, hr_lat, hr_lon, "store")
    np.testing.assert_array_equal(forward[::-1], backward)
    assert read_statics(dataset, (StaticSpec("orog", "km", 0.7, 0.6),), hr_lat, hr_lon,
                        "store")[0].max() < 10
    assert EDH_HR_LON.size == 8193
