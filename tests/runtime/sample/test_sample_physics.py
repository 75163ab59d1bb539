"""The synthetic t2m: deterministic, and carrying the physics super-resolution must learn."""

from __future__ import annotations

import numpy as np
import pytest

from sr_runtime.sample import sample_grids, synoptic_anomaly, synthesize
from sr_runtime.sample.grids import cell_edges


def hours(start: str, n: int, step: int = 1) -> np.ndarray:
    return (np.datetime64(start, "ns") + np.arange(n) * np.timedelta64(step, "h"))


@pytest.mark.parametrize("resolution", ["standard", "high"])
def test_bitwise_deterministic_whatever_the_split(resolution):
    times = hours("2024-10-03T05", 6, 7)
    whole = synthesize(times, resolution).t2m.values
    again = synthesize(times, resolution).t2m.values
    split = np.concatenate([synthesize(times[:1], resolution).t2m.values,
                            synthesize(times[1:4], resolution).t2m.values,
                            synthesize(times[4:], resolution).t2m.values])
    reverse = synthesize(times[::-1], resolution).t2m.values[::-1]
    assert whole.dtype == np.float32
    for other in (again, split, reverse):
        assert whole.tobytes() == other.tobytes()
    assert not np.array_equal(whole, synthesize(times, resolution, seed=7).t2m.values)


def test_dataset_layout_and_attributes():
    ds = synthesize(hours("2024-10-11T12", 2), "standard")
    assert ds.t2m.dims == ("time", "latitude", "longitude")
    assert ds.t2m.shape == (2, 32, 32)
    assert ds.lsm.dims == ds.orog.dims == ("latitude", "longitude")
    assert ds.t2m.attrs["units"] == "K"
    assert ds.t2m.attrs["standard_name"] == "air_temperature"
    assert ds.t2m.attrs["long_name"] == "2 metre temperature"
    assert ds.t2m.attrs["GRIB_paramId"] == 167
    assert ds.time.dtype == np.dtype("datetime64[ns]")


def test_realistic_october_magnitudes():
    t2m = synthesize(hours("2024-10-01T00", 31, 24 + 5), "high").t2m.values
    assert t2m.min() > 250 and t2m.max() < 305
    assert np.percentile(t2m, 5) > 270 and np.percentile(t2m, 95) < 300


def test_t2m_falls_with_elevation():
    ds = synthesize(hours("2024-10-27T09", 1), "high")
    land = ds.lsm.values > 0.9
    r = np.corrcoef(ds.orog.values[land], ds.t2m.values[0][land])[0, 1]
    assert r < -0.8
    slope = np.polyfit(ds.orog.values[land], ds.t2m.values[0][land], 1)[0]
    assert -0.009 < slope < -0.004  # about the 6.5 K/km lapse rate


def test_diurnal_range_is_larger_over_land_than_over_sea():
    ds = synthesize(hours("2024-10-26T00", 24), "high")
    daily_range = ds.t2m.values.max(axis=0) - ds.t2m.values.min(axis=0)
    lsm = ds.lsm.values
    land, sea = daily_range[lsm > 0.95].mean(), daily_range[lsm < 0.05].mean()
    assert land > 5.0 and land > 2.0 * sea  # the range includes a day of synoptic change


def test_local_solar_time_makes_the_east_warm_up_first():
    ds = synthesize(hours("2024-10-26T04", 4), "standard")  # morning warming, 04-07 UTC
    warming = ds.t2m.values[-1] - ds.t2m.values[0]
    land = ds.lsm.values > 0.95
    cols = np.where(land, warming, np.nan)
    east, west = np.nanmean(cols[:, 24:]), np.nanmean(cols[:, :8])
    assert east > west


def test_october_sea_is_warmer_than_lowland_at_the_same_latitude():
    ds = synthesize(hours("2024-10-20T00", 24), "standard")
    mean = ds.t2m.values.mean(axis=0)
    band = (ds.latitude.values > 41) & (ds.latitude.values < 44.5)
    lsm, orog = ds.lsm.values[band], ds.orog.values[band]
    sea = mean[band][lsm < 0.05].mean()
    lowland = mean[band][(lsm > 0.95) & (orog < 200)].mean()
    assert sea > lowland + 1.0


def test_lr_is_computed_on_its_own_grid_not_a_block_average_of_hr():
    times = hours("2024-10-27T05", 1)  # dawn: HR valleys hold cold pools LR cannot resolve
    hr = synthesize(times, "high").t2m.values[0].astype(np.float64)
    lr = synthesize(times, "standard").t2m.values[0].astype(np.float64)
    g = sample_grids()

    def area_weights(fine: np.ndarray, coarse: np.ndarray) -> np.ndarray:
        fe, ce = cell_edges(fine), cell_edges(coarse)
        w = np.clip(np.minimum(ce[1:, None], fe[None, 1:])
                    - np.maximum(ce[:-1, None], fe[None, :-1]), 0, None)
        return w / w.sum(axis=1, keepdims=True)

    hr_on_lr = area_weights(g.hr_lat, g.lr_lat) @ hr @ area_weights(g.hr_lon, g.lr_lon).T
    diff = lr - hr_on_lr
    assert np.sqrt(np.mean(diff**2)) > 0.15  # not a block average ...
    assert np.corrcoef(lr.ravel(), hr_on_lr.ravel())[0, 1] > 0.99  # ... but the same weather
    # the coarse grid misses the valley cold pools: LR is warmer than the HR cells it covers
    assert diff.mean() > 0.05


def test_synoptic_anomalies_move_and_evolve_over_days():
    starts = hours("2024-10-02T00", 4, 24 * 6)
    short, long = [], []
    for t0 in starts:
        a = synoptic_anomaly(np.array([t0, t0 + np.timedelta64(3, "h"),
                                       t0 + np.timedelta64(72, "h")]), "standard")
        assert a.std() > 0.3
        short.append(np.corrcoef(a[0].ravel(), a[1].ravel())[0, 1])
        long.append(np.corrcoef(a[0].ravel(), a[2].ravel())[0, 1])
    assert min(short) > 0.9  # coherent from hour to hour
    assert np.mean(long) < 0.6  # a different situation three days later
    month = synoptic_anomaly(hours("2024-10-01T00", 31, 24), "standard")
    assert month.mean(axis=(1, 2)).std() > 1.0  # regional warm and cold spells
