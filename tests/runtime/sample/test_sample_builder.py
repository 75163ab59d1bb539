"""The sample stores: Earth Data Hub layout, atomic writes, and the shipped copies up to date."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from sr_runtime.sample import (
    DEFAULT_HR_TIMES,
    HR_STORE_NAME,
    LR_STORE_NAME,
    SAMPLE_DIR,
    SHOWCASE_TIME,
    TRAIN_END,
    build_stores,
    builder,
    held_out_times,
    month_times,
    sample_grids,
    synthesize,
    training_times,
)
from sr_runtime.sample.builder import KEEP_MANTISSA_BITS, bitround, tree_size

LR_TIMES = np.datetime64("2024-10-24T22", "ns") + np.arange(3) * np.timedelta64(1, "h")
HR_TIMES = np.array([SHOWCASE_TIME, TRAIN_END + np.timedelta64(3, "h")])


@pytest.fixture(scope="module")
def tiny_stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("sample")
    return build_stores(out, HR_TIMES, lr_times=LR_TIMES)


def check_edh_layout(path: Path, resolution: str, n_times: int) -> xr.Dataset:
    root = json.loads((path / "zarr.json").read_text())
    assert root["zarr_format"] == 3
    assert {"t2m", "lsm", "orog", "time", "latitude", "longitude"} <= set(
        root["consolidated_metadata"]["metadata"])
    ds = xr.open_zarr(path, consolidated=True)
    g = sample_grids()
    if resolution == "standard":
        size, lat, lon = 32, np.linspace(-90, 90, 512)[g.lr_lat_slice], \
            np.linspace(-180, 180, 1025)[g.lr_lon_slice]
    else:
        size, lat, lon = 256, np.linspace(-90, 90, 4096)[g.hr_lat_slice], \
            np.linspace(-180, 180, 8193)[g.hr_lon_slice]
    assert ds.t2m.dims == ("time", "latitude", "longitude")
    assert ds.t2m.shape == (n_times, size, size)
    assert ds.t2m.dtype == np.float32
    assert ds.latitude.dtype == ds.longitude.dtype == np.float64
    assert np.all(np.diff(ds.latitude.values) > 0)
    np.testing.assert_array_equal(ds.latitude.values, lat)
    np.testing.assert_array_equal(ds.longitude.values, lon)
    assert ds.t2m.attrs["units"] == "K"
    assert ds.t2m.attrs["standard_name"] == "air_temperature"
    assert ds.t2m.attrs["long_name"] == "2 metre temperature"
    assert ds.orog.attrs["units"] == "m" and ds.lsm.dims == ("latitude", "longitude")
    assert ds.attrs["sample"] == "true" and "NOT Climate DT" in ds.attrs["summary"]
    assert ds.time.dtype == np.dtype("datetime64[ns]")
    return ds


def test_tiny_stores_have_the_edh_layout(tiny_stores):
    lr_path, hr_path = tiny_stores
    assert lr_path.name == LR_STORE_NAME and hr_path.name == HR_STORE_NAME
    assert sorted(p.name for p in lr_path.parent.iterdir()) == sorted(
        [LR_STORE_NAME, HR_STORE_NAME])  # no temporary folders left behind
    lr = check_edh_layout(lr_path, "standard", LR_TIMES.size)
    hr = check_edh_layout(hr_path, "high", HR_TIMES.size)
    np.testing.assert_array_equal(lr.time.values, LR_TIMES)
    np.testing.assert_array_equal(hr.time.values, HR_TIMES)


def test_stored_values_are_the_synthesized_ones_bit_rounded(tiny_stores):
    _, hr_path = tiny_stores
    stored = xr.open_zarr(hr_path).t2m.values
    fresh = synthesize(HR_TIMES, "high").t2m.values
    np.testing.assert_array_equal(stored, bitround(fresh))
    assert np.abs(stored.astype(np.float64) - fresh).max() <= 2.0 ** (8 - KEEP_MANTISSA_BITS) / 2


def test_rebuild_replaces_a_store_in_place(tmp_path):
    first = build_stores(tmp_path, HR_TIMES[:1], lr_times=LR_TIMES[:1])
    second = build_stores(tmp_path, HR_TIMES, lr_times=LR_TIMES[:2])
    assert first == second
    assert xr.open_zarr(second[1]).sizes["time"] == 2
    assert len(list(tmp_path.iterdir())) == 2


def test_bitround_error_and_idempotence():
    x = np.array([255.123456, 273.15, 287.4321, 299.99, 511.9], dtype=np.float32)
    r = bitround(x)
    assert np.all(np.abs(r.astype(np.float64) - x) <= 0.0078125)
    np.testing.assert_array_equal(bitround(r), r)


def test_calendar():
    assert month_times().size == 744 and training_times().size == 576
    held = held_out_times()
    assert held.size == 168 and held[0] == TRAIN_END
    assert SHOWCASE_TIME < TRAIN_END  # a showcase time, deliberately NOT held out
    assert DEFAULT_HR_TIMES[0] == SHOWCASE_TIME
    assert np.all(np.isin(DEFAULT_HR_TIMES[1:], held))
    assert np.all(np.diff(DEFAULT_HR_TIMES) > np.timedelta64(0, "h"))


def test_cli_prints_what_it_wrote(tmp_path, monkeypatch, capsys):
    def tiny(out_dir):
        return build_stores(out_dir, HR_TIMES[:1], lr_times=LR_TIMES[:1])

    monkeypatch.setattr(builder, "build_stores", tiny)
    builder.main(["--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert LR_STORE_NAME in printed and HR_STORE_NAME in printed and "MB" in printed


@pytest.mark.skipif(not (SAMPLE_DIR / HR_STORE_NAME).exists(), reason="sample not built")
def test_shipped_stores_are_up_to_date_and_small():
    lr = check_edh_layout(SAMPLE_DIR / LR_STORE_NAME, "standard", 744)
    hr = check_edh_layout(SAMPLE_DIR / HR_STORE_NAME, "high", DEFAULT_HR_TIMES.size)
    np.testing.assert_array_equal(lr.time.values, month_times())
    np.testing.assert_array_equal(hr.time.values, DEFAULT_HR_TIMES)
    probe = np.array([SHOWCASE_TIME, DEFAULT_HR_TIMES[-1]])
    # a changed weather model without a rebuild fails here: rebuild with the CLI
    np.testing.assert_array_equal(hr.t2m.sel(time=probe).values,
                                  bitround(synthesize(probe, "high").t2m.values))
    np.testing.assert_array_equal(lr.t2m.sel(time=probe).values,
                                  bitround(synthesize(probe, "standard").t2m.values))
    np.testing.assert_array_equal(hr.d2m.sel(time=probe).values,
                                  bitround(synthesize(probe, "high").d2m.values))
    # stores (t2m and d2m), the whole GLOBE tile (5.9 MB) and the shipped models
    assert tree_size(SAMPLE_DIR.parent) < 25e6
