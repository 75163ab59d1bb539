"""A run reads the steps that share a time chunk of the store with one decode of that chunk, and
still hands on every step before a bad one, and says which step is bad."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from zarr.storage import LocalStore, WrapperStore

from sr_runtime.description import ModelDescription, VariableSpec
from sr_runtime.errors import SourceError
from sr_runtime.pipeline import read_lr, read_lr_steps, time_blocks
from sr_runtime.sources.chunks import ChunkLog
from sr_runtime.sources.zarr_store import open_recorded
from tests.conftest import EDH_LR_LAT, EDH_LR_LON, analytic_t2m

HOURS, TIME_CHUNK = 30, 12
DESCRIPTION = ModelDescription(scale=8, architecture="Test", variables=(
    VariableSpec("t2m", "K", 280.0, 10.0, 280.0, 10.0),
    VariableSpec("d2m", "K", 275.0, 10.0, 275.0, 10.0)))


class CountingStore(WrapperStore):
    """A real local store that counts the chunk reads of each array (a test's eyes)."""

    def __init__(self, store, counts: dict[str, int]) -> None:
        super().__init__(store)
        self.counts = counts

    def _with_store(self, store):  # zarr derives read-only views: keep counting
        return type(self)(store, self.counts)

    async def get(self, key, prototype, byte_range=None):
        name, _, rest = key.partition("/")
        if rest.startswith("c/"):
            self.counts[name] = self.counts.get(name, 0) + 1
        return await super().get(key, prototype, byte_range)


def write_store(path: Path, values: np.ndarray | None = None) -> Path:
    lat, lon = EDH_LR_LAT[100:110], EDH_LR_LON[200:212]
    times = np.datetime64("2024-10-11T00", "ns") + np.arange(HOURS) * np.timedelta64(1, "h")
    t2m = (analytic_t2m(np.arange(HOURS, dtype=np.float64), lat, lon) if values is None
           else values).astype(np.float32)
    attrs = {"units": "K"}
    ds = xr.Dataset({"t2m": (("time", "latitude", "longitude"), t2m, attrs),
                     "d2m": (("time", "latitude", "longitude"), t2m - 4, attrs)},
                    coords={"time": times, "latitude": lat, "longitude": lon})
    chunks = {"chunks": (TIME_CHUNK, 5, 12)}  # 2 spatial chunks per time chunk
    ds.to_zarr(path, zarr_format=3, consolidated=True, mode="w",
               encoding={"t2m": chunks, "d2m": chunks})
    return path


def open_counting(path: Path) -> tuple[xr.Dataset, dict[str, int]]:
    counts: dict[str, int] = {}
    store = CountingStore(LocalStore(str(path), read_only=True), counts)
    return open_recorded(ChunkLog(store, "test store"), "test store"), counts


def test_steps_of_one_time_chunk_decode_it_once(tmp_path):
    ds, counts = open_counting(write_store(tmp_path / "lr.zarr"))
    blocks = time_blocks(ds, DESCRIPTION, range(HOURS), None)
    assert blocks == [list(range(0, 12)), list(range(12, 24)), list(range(24, 30))]

    counts.clear()
    steps = list(read_lr_steps(ds, DESCRIPTION, blocks[0], None))
    assert counts == {"t2m": 2, "d2m": 2}  # its two spatial chunks, once each
    expected = xr.open_zarr(tmp_path / "lr.zarr")
    for index, (lr, lat, lon) in zip(blocks[0], steps, strict=True):
        assert lr.shape == (2, 10, 12) and lr.dtype == np.float32
        np.testing.assert_array_equal(lr[0], expected.t2m.isel(time=index).values)
        np.testing.assert_array_equal(lr[1], expected.d2m.isel(time=index).values)
        np.testing.assert_array_equal(lat, expected.latitude.values)
        np.testing.assert_array_equal(lon, expected.longitude.values)

    counts.clear()
    for index in blocks[0]:  # the same steps one by one: a decode of the chunk each
        read_lr(ds, DESCRIPTION, index, None)
    assert counts == {"t2m": 2 * 12, "d2m": 2 * 12}


def test_blocks_keep_the_order_stride_and_memory_cap(tmp_path):
    ds, _ = open_counting(write_store(tmp_path / "lr.zarr"))
    every_5h = list(range(0, HOURS, 5))
    assert time_blocks(ds, DESCRIPTION, every_5h, None) == [[0, 5, 10], [15, 20], [25]]
    one_step = 2 * 10 * 12 * 4  # bytes of one step's window: 2 variables, float32
    assert time_blocks(ds, DESCRIPTION, range(8), None, max_bytes=3 * one_step) == [
        [0, 1, 2], [3, 4, 5], [6, 7]]
    resumed = [0, 1, 5, 13, 14]  # a --resume skips written steps: order is kept
    assert time_blocks(ds, DESCRIPTION, resumed, None) == [[0, 1, 5], [13, 14]]

    steps = list(read_lr_steps(ds, DESCRIPTION, [0, 5, 10], None))
    expected = xr.open_zarr(tmp_path / "lr.zarr").t2m
    for index, (lr, _, _) in zip([0, 5, 10], steps, strict=True):
        np.testing.assert_array_equal(lr[0], expected.isel(time=index).values)

    in_memory = xr.open_zarr(tmp_path / "lr.zarr").load()
    for name in in_memory.data_vars:
        in_memory[name].encoding = {}
    assert time_blocks(in_memory, DESCRIPTION, range(3), None) == [[0], [1], [2]]


def test_a_bad_step_in_a_block_comes_after_the_good_ones(tmp_path):
    lat, lon = EDH_LR_LAT[100:110], EDH_LR_LON[200:212]
    values = analytic_t2m(np.arange(HOURS, dtype=np.float64), lat, lon)
    values[4, 2, 3] = np.nan
    ds, _ = open_counting(write_store(tmp_path / "lr.zarr", values))
    steps = read_lr_steps(ds, DESCRIPTION, list(range(12)), None)
    for _ in range(4):
        lr, _, _ = next(steps)
        assert np.isfinite(lr).all()
    with pytest.raises(SourceError, match=r"1 of 120 t2m values at 2024-10-11T04:00 .*missing"):
        next(steps)
