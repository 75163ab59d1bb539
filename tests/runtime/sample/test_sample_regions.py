"""The sample over any box of the terrain tile, and the physics that vary by place and time."""

from __future__ import annotations

import numpy as np
import pytest

from sr_runtime.sample import grids as g
from sr_runtime.sample import synthesize
from sr_runtime.sample.grids import region_grids, sample_grids
from sr_runtime.sample.weather import LAPSE_RANGE


def at(stamp: str, n: int = 1, step: int = 1) -> np.ndarray:
    return np.datetime64(stamp, "ns") + np.arange(n) * np.timedelta64(step, "h")


def land_slope(ds, index: int = 0) -> float:
    """t2m against elevation over land cells (K/m), least squares."""
    land = ds.lsm.values > 0.9
    return float(np.polyfit(ds.orog.values[land], ds.t2m.values[index][land], 1)[0])


def test_region_grids_cover_the_same_area_on_both_grids():
    box = region_grids(360, 570, 20, 24)  # Dinaric Alps
    assert box.hr_lat.size == 20 * 8 and box.hr_lon.size == 24 * 8
    lr_edges = g.cell_edges(box.lr_lat), g.cell_edges(box.lr_lon)
    hr_edges = g.cell_edges(box.hr_lat), g.cell_edges(box.hr_lon)
    hr_step = box.hr_lat[1] - box.hr_lat[0]
    for lr_e, hr_e in zip(lr_edges, hr_edges, strict=True):
        assert abs(hr_e[0] - lr_e[0]) <= hr_step and abs(hr_e[-1] - lr_e[-1]) <= hr_step
    np.testing.assert_array_equal(box.hr_lat, g.global_hr_latitude()[box.hr_lat_slice])
    assert sample_grids().key == (g.LR_LAT_START, g.LR_LON_START, 32, 32)
    assert sample_grids().hr_lat_slice.start == g.HR_LAT_START


@pytest.mark.parametrize("box", [(350, 530, 8, 8), (390, 530, 10, 8), (380, 505, 8, 10),
                                 (380, 590, 8, 10)])
def test_boxes_off_the_terrain_tile_are_refused(box):
    with pytest.raises(ValueError, match="terrain tile"):
        region_grids(*box)


@pytest.mark.parametrize("resolution", ["standard", "high"])
def test_a_cell_has_the_same_values_whichever_box_holds_it(resolution):
    times = at("2024-03-02T05", 2, 9)
    big = synthesize(times, resolution, grids=region_grids(370, 560, 20, 20))
    small = synthesize(times, resolution, grids=region_grids(375, 566, 6, 8))
    s = 1 if resolution == "standard" else 8
    rows = np.searchsorted(big.latitude.values, small.latitude.values)
    cols = np.searchsorted(big.longitude.values, small.longitude.values)
    assert np.allclose(big.latitude.values[rows], small.latitude.values)
    for name in ("t2m", "d2m", "orog", "lsm"):
        values = big[name].values[..., rows, :][..., cols]
        np.testing.assert_array_equal(values, small[name].values)
    assert small.t2m.shape[-2:] == (6 * s, 8 * s)


def test_lapse_rate_is_steeper_on_summer_afternoons_than_on_winter_nights():
    summer = synthesize(at("2024-07-20T13"), "high")
    winter = synthesize(at("2024-01-15T04"), "high")
    steep, shallow = -land_slope(summer), -land_slope(winter)
    assert steep > shallow + 0.0015
    assert shallow > 0.003 and steep < 0.009
    assert LAPSE_RANGE == (0.003, 0.0075)


def test_valley_and_basin_air_is_colder_than_the_lapse_rate_says_on_winter_nights():
    """Night inversions: lowland cells in the Po basin sit below the elevation fit."""
    night = synthesize(at("2024-01-10T05", 6, 24), "high")
    day = synthesize(at("2024-01-10T14", 6, 24), "high")
    land = night.lsm.values > 0.9
    low = land & (night.orog.values < 200)
    mid = land & (night.orog.values > 600) & (night.orog.values < 1200)
    night_contrast = night.t2m.values[:, mid].mean() - night.t2m.values[:, low].mean()
    day_contrast = day.t2m.values[:, mid].mean() - day.t2m.values[:, low].mean()
    assert night_contrast > day_contrast + 1.0  # the lowlands lose far more at night


def test_coast_is_cooler_than_inland_on_summer_afternoons_only():
    box = region_grids(356, 559, 20, 30)  # the Adriatic and Balkan coasts
    times_day, times_night = at("2024-07-05T13", 5, 24), at("2024-07-05T02", 5, 24)
    day, night = synthesize(times_day, "high", grids=box), synthesize(times_night, "high",
                                                                        grids=box)
    land = (day.lsm.values > 0.95) & (day.orog.values < 150)
    from sr_runtime.sample.weather import _grid

    coast = _grid("high", 20241001, box.key).coast > 0.5
    inland = land & ~coast
    coastal = land & coast
    assert coastal.sum() > 50 and inland.sum() > 50

    def gap(ds):
        return ds.t2m.values[:, inland].mean() - ds.t2m.values[:, coastal].mean()

    assert gap(day) > gap(night) + 0.5


def test_dew_point_stays_below_temperature_and_falls_with_height():
    ds = synthesize(at("2024-10-27T09", 4, 6), "high")
    depression = ds.t2m.values - ds.d2m.values
    assert depression.min() > 0.25 and depression.max() < 25
    assert ds.d2m.attrs["units"] == "K" and ds.d2m.attrs["GRIB_paramId"] == 168
    land = ds.lsm.values > 0.9
    slope = np.polyfit(ds.orog.values[land], ds.d2m.values[0][land], 1)[0]
    assert -0.005 < slope < -0.001  # about 3 K/km
    sea = ds.lsm.values < 0.05
    assert depression[:, sea].mean() < depression[:, land].mean()  # moister near the sea
