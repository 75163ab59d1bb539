"""Training pairs streamed from two DataCubes: an LR store and its HR truth (and static fields).

The stores are opened through the runtime's source layer, exactly as ``sr-run`` opens them
(``edh[:MODEL/EXP/VARIANT]``, a Zarr path or an HTTP(S) URL; the API key, retries and the grid
conventions come with it), and nothing is downloaded beforehand:

- :func:`open_pair` aligns the two grids once (the Hub's HR grid is not nested in the LR one; each
  SR cell takes the nearest HR cell, as ``sr-run --static`` does), picks the hours both stores
  have in ``--start``..``--end`` and sets the held-out hours aside.
- :func:`stream_statistics` computes the normalization in one streaming pass over the training
  hours, one block at a time (never the whole range in memory).
- :class:`BlockCrops` is what the DataLoader's worker processes read: each takes a block of hours
  (``block_hours``, the HR store's time chunk), reads the region once through a bounded chunk
  cache and yields random crops of it (LR crop plus its halo, the HR truth under the crop). The
  order depends only on the seed and the number of workers, not on the store or the network:
  the same seed gives the same samples from a local copy and from the Hub.
"""

from __future__ import annotations

import multiprocessing
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import xarray as xr
from torch.utils.data import IterableDataset, get_worker_info

from sr_runtime import units
from sr_runtime.description import StaticSpec, VariableSpec
from sr_runtime.errors import SrEdgeError, UsageError
from sr_runtime.grid import BBox, grid_step, hr_axis, region_slices
from sr_runtime.sources.base import DataSource
from sr_runtime.sources.cache import ReadCounter

DEFAULT_CACHE_MB = 512.0
DEFAULT_BLOCK_HOURS = 24  # the Hub's high-maps time chunk
DEFAULT_HOLDOUT_FRACTION = 0.1


@dataclass
class StreamPair:
    """Where the pairs come from and which cells and hours: picklable, so each DataLoader worker
    reopens the stores itself (with its own cache and connection pool)."""

    lr_source: DataSource
    hr_source: DataSource
    variables: tuple[str, ...]
    units: tuple[str, ...]          # the units training uses, per variable (K for temperatures)
    lr_rows: slice
    lr_cols: slice
    hr_rows: np.ndarray             # the HR store's row (column) under each SR row (column)
    hr_cols: np.ndarray
    lr_time: np.ndarray             # store indices of the training hours, LR store
    hr_time: np.ndarray             # the same hours in the HR store
    val_lr_time: np.ndarray
    val_hr_time: np.ndarray
    times: np.ndarray               # datetime64 of the training hours
    val_times: np.ndarray
    lr_step_deg: float
    scale: int
    static: np.ndarray | None = None  # (S, H, W) on the SR grid, physical units
    statics: tuple[StaticSpec, ...] = ()
    cache_mb: float = DEFAULT_CACHE_MB
    description: dict[str, str] = field(default_factory=dict)

    @property
    def lr_shape(self) -> tuple[int, int]:
        return (self.lr_rows.stop - self.lr_rows.start, self.lr_cols.stop - self.lr_cols.start)

    def open(self, counter: ReadCounter | None = None) -> tuple[xr.Dataset, xr.Dataset]:
        """Both stores, cut to the region (the HR one onto the SR grid, by orthogonal indexing:
        only the chunks under it are read), each through a chunk cache of ``cache_mb``."""
        opened = []
        for source in (self.lr_source, self.hr_source):
            if hasattr(source, "chunk_cache_mb"):  # Zarr sources (local or HTTP)
                source.chunk_cache_mb = self.cache_mb
                setattr(source, "read_counter", counter)  # noqa: B010 (not on the Protocol)
            opened.append(source.open())
        lr, hr = opened
        return (lr.isel(latitude=self.lr_rows, longitude=self.lr_cols),
                hr.isel(latitude=self.hr_rows, longitude=self.hr_cols))


def _hours(values: object) -> np.ndarray:
    return np.asarray(values).astype("datetime64[ns]")


def _store_index(store_times: object, wanted: np.ndarray) -> np.ndarray:
    """Positions of ``wanted`` (all present: chosen from both stores) on a store's time axis."""
    return np.searchsorted(_hours(store_times), wanted)


def _training_units(lr: xr.Dataset, hr: xr.Dataset, name: str, lr_label: str,
                    hr_label: str) -> str:
    lr_units = units.source_units(lr[name].attrs, name, lr_label)
    hr_units = units.source_units(hr[name].attrs, name, hr_label)
    wanted = "K" if units.is_temperature(lr_units) else lr_units
    units.check_convertible(lr_units, wanted, name, lr_label)
    units.check_convertible(hr_units, wanted, name, hr_label)
    return wanted


@dataclass
class Region:
    """The LR cells of ``--bbox`` and the HR cells under them (one HR cell per SR cell)."""

    lr_rows: slice
    lr_cols: slice
    hr_rows: np.ndarray  # the HR store's row of each SR row
    hr_cols: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    hr_lat: np.ndarray
    hr_lon: np.ndarray
    lat_step: float


def align_region(lr: xr.Dataset, hr: xr.Dataset, bbox: BBox | None, scale: int,
                 hr_label: str) -> Region:
    """The LR cells in ``bbox`` and, for each SR cell over them, the nearest HR cell: the Hub's
    HR grid is not nested in the LR one (spacing ratio 8.0137), so over a large region an HR
    row is now and then skipped, exactly as ``sr-run --static`` aligns static fields."""
    from sr_runtime.statics import nearest_cells

    lr_rows, lr_cols = region_slices(lr.latitude.values, lr.longitude.values, bbox)
    lat, lon = lr.latitude.values[lr_rows], lr.longitude.values[lr_cols]
    lat_step, lon_step = grid_step(lat, "latitude"), grid_step(lon, "longitude")
    hr_lat, hr_lon = hr_axis(lat, scale, lat_step), hr_axis(lon, scale, lon_step)
    hr_rows = nearest_cells(hr.latitude.values, hr_lat, "latitude", hr_label)
    hr_cols = nearest_cells(hr.longitude.values, hr_lon, "longitude", hr_label)
    return Region(lr_rows, lr_cols, hr_rows, hr_cols, lat, lon, hr_lat, hr_lon, lat_step)


def open_pair(lr_source: DataSource, hr_source: DataSource, variables: Sequence[str], *,
              bbox: BBox | None, start: np.datetime64 | None, end: np.datetime64 | None,
              holdout: tuple[np.datetime64, np.datetime64] | None = None,
              static_source: DataSource | None = None, statics: Sequence[str] = (),
              scale: int = 8, cache_mb: float = DEFAULT_CACHE_MB,
              evaluation_only: bool = False) -> StreamPair:
    """The pairs of ``variables`` over ``bbox`` and ``start``..``end`` (inclusive), with
    ``holdout`` (inclusive; default: the last tenth of the hours) kept for validation and
    evaluation only (``evaluation_only``: no training hours needed). Reads only coordinates,
    metadata and the static fields."""
    lr, hr = lr_source.open(), hr_source.open()
    for ds, label, role in ((lr, lr_source.label, "--source"), (hr, hr_source.label, "--truth")):
        missing = [v for v in variables if v not in ds.data_vars]
        if missing:
            raise UsageError(f"{label} (the {role} store) has no {', '.join(missing)} (it has "
                             f"{', '.join(map(str, ds.data_vars))}); choose --variables it has")
    chosen = tuple(_training_units(lr, hr, v, lr_source.label, hr_source.label)
                   for v in variables)
    region = align_region(lr, hr, bbox, scale, hr_source.label)

    lr_times = _hours(lr.time.values)
    chosen_times = lr_times[((start is None) | (lr_times >= _hours(start or lr_times[0])))
                            & ((end is None) | (lr_times <= _hours(end or lr_times[-1])))]
    if chosen_times.size < 2:
        raise UsageError(f"{lr_source.label} has {chosen_times.size} hour(s) in --start/--end "
                         f"(it spans {np.datetime_as_string(lr_times[0], 'm')} .. "
                         f"{np.datetime_as_string(lr_times[-1], 'm')}); choose a longer range "
                         "inside it")
    with_truth = np.isin(chosen_times, _hours(hr.time.values))
    if not with_truth.any():
        raise UsageError(f"{hr_source.label} has none of the {chosen_times.size} hours of "
                         f"--source in --start/--end ({np.datetime_as_string(chosen_times[0], 'm')}"
                         f" .. {np.datetime_as_string(chosen_times[-1], 'm')}); choose a range "
                         "both stores hold")
    without_truth = int((~with_truth).sum())  # trained on what has a truth, and said so
    chosen_times = chosen_times[with_truth]
    if holdout is None:
        n_val = max(1, int(round(chosen_times.size * DEFAULT_HOLDOUT_FRACTION)))
        held = np.zeros(chosen_times.size, bool)
        held[-n_val:] = True
    else:
        held = (chosen_times >= _hours(holdout[0])) & (chosen_times <= _hours(holdout[1]))
    if not held.any() or (held.all() and not evaluation_only):
        raise UsageError(f"the held-out range leaves {int((~held).sum())} training and "
                         f"{int(held.sum())} held-out hours in --start/--end; give --val-start/"
                         "--val-end inside the range and shorter than it")
    train_t, val_t = chosen_times[~held], chosen_times[held]
    static_fields: np.ndarray | None = None
    static_specs: tuple[StaticSpec, ...] = ()
    if statics:
        from sr_runtime.statics import as_static_store, read_statics

        location = as_static_store(static_source or hr_source)
        ds = location.open()
        absent = [s for s in statics if s not in ds.data_vars]
        if absent:
            raise UsageError(f"{location.label} has no static field {', '.join(absent)}; pass "
                             "--static STORE with orog and lsm for this region")
        named = [StaticSpec(s, str(ds[s].attrs.get("units", "")), 0.0, 1.0) for s in statics]
        static_fields = read_statics(ds, named, region.hr_lat, region.hr_lon,
                                     location.label)
        static_specs = tuple(replace(spec, mean=float(static_fields[k].mean()),
                                     std=float(static_fields[k].std()) or 1.0)
                             for k, spec in enumerate(named))
    return StreamPair(
        lr_source, hr_source, tuple(variables), chosen, region.lr_rows, region.lr_cols,
        region.hr_rows, region.hr_cols,
        _store_index(lr.time.values, train_t),
        _store_index(hr.time.values, train_t),
        _store_index(lr.time.values, val_t),
        _store_index(hr.time.values, val_t),
        train_t, val_t, region.lat_step, scale, static_fields, static_specs, cache_mb,
        {"source": lr_source.label, "truth": hr_source.label,
         "bbox": str(bbox) if bbox else "the whole grid",
         "lr_cells": f"{region.lat.size}x{region.lon.size}", "without_truth": str(without_truth)})


def blocks(store_index: np.ndarray, block_hours: int) -> list[np.ndarray]:
    """Positions into ``store_index`` grouped by the store's time chunks of ``block_hours``."""
    keys = store_index // block_hours
    cuts = np.flatnonzero(np.diff(keys)) + 1
    return [part for part in np.split(np.arange(store_index.size), cuts) if part.size]


def _time_selection(index: np.ndarray) -> slice | np.ndarray:
    if index.size and np.all(np.diff(index) == 1):
        return slice(int(index[0]), int(index[-1]) + 1)
    return index


def read_block(ds: xr.Dataset, name: str, index: np.ndarray, wanted_units: str,
               label: str) -> np.ndarray:
    """(T, h, w) float32 of ``name`` at the store's time ``index``, in ``wanted_units``;
    refused with the runtime's one-line message when chunks are absent, damaged, or values
    missing or implausible."""
    from sr_runtime.pipeline import check_values, damaged
    from sr_runtime.sources.chunks import chunk_log

    var = ds[name]
    log = chunk_log(ds)
    mark = log.mark() if log is not None else 0
    when = np.datetime64(ds.time.values[index[0]], "ns")
    try:
        raw = np.asarray(var.isel(time=_time_selection(index)).values)
    except SrEdgeError:  # the server's or the store's own one-line error (403, retries...)
        raise
    except Exception as exc:  # a codec failed: the bytes of a chunk are not what was written
        raise damaged(log, name, mark, when, exc) from None
    values = units.convert(raw, units.source_units(var.attrs, name, label), wanted_units)
    absent = log.absent_since(mark, name) if log is not None else []
    check_values(values, name, wanted_units, when, absent,
                 var.encoding.get("fill_value", var.encoding.get("_FillValue")), label)
    return values.astype(np.float32, copy=False)


class Moments:
    """Mean and variance merged block by block (Chan et al.), in float64."""

    def __init__(self) -> None:
        self.n, self.mean, self.m2 = 0, 0.0, 0.0
        self.low, self.high = np.inf, -np.inf

    def add(self, values: np.ndarray) -> None:
        values = values.astype(np.float64, copy=False).ravel()
        n, mean = values.size, float(values.mean())
        m2 = float(((values - mean) ** 2).sum())
        delta, total = mean - self.mean, self.n + n
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.n * n / total
        self.n = total
        self.low, self.high = min(self.low, float(values.min())), max(self.high,
                                                                      float(values.max()))

    @property
    def std(self) -> float:
        return float(np.sqrt(self.m2 / self.n)) if self.n else 1.0


@dataclass
class Statistics:
    variables: list[VariableSpec]
    data_range: float  # HR max - min of the first variable, for PSNR/SSIM


def stream_statistics(pair: StreamPair, block_hours: int = DEFAULT_BLOCK_HOURS,
                      progress: Callable[[int, int, int], None] | None = None) -> Statistics:
    """Normalization of every variable over the training hours, in one pass of blocks.
    ``progress(done, total, bytes_read)`` after each block."""
    counter = ReadCounter()
    lr, hr = pair.open(counter)
    lr_moments = [Moments() for _ in pair.variables]
    hr_moments = [Moments() for _ in pair.variables]
    parts = blocks(pair.hr_time, block_hours)
    for done, part in enumerate(parts, start=1):
        for c, name in enumerate(pair.variables):
            lr_moments[c].add(read_block(lr, name, pair.lr_time[part], pair.units[c],
                                         pair.lr_source.label))
            hr_moments[c].add(read_block(hr, name, pair.hr_time[part], pair.units[c],
                                         pair.hr_source.label))
        if progress:
            progress(done, len(parts), counter.bytes_read)
    specs = [VariableSpec(name, pair.units[c], lr_moments[c].mean, lr_moments[c].std or 1.0,
                          hr_moments[c].mean, hr_moments[c].std or 1.0)
             for c, name in enumerate(pair.variables)]
    return Statistics(specs, hr_moments[0].high - hr_moments[0].low)


def check_crop(pair: StreamPair, crop: int, halo: int) -> int:
    """The LR size of a crop with its halo, refused when the region is smaller."""
    size = crop + 2 * halo
    h, w = pair.lr_shape
    if crop < 1 or size > min(h, w):
        fits = min(h, w) - 2 * halo
        fix = (f"a --crop of {fits} or less" if fits >= 1 else
               f"a --halo of {max(0, (min(h, w) - 1) // 2)} or less")
        raise UsageError(f"--crop {crop} with a halo of {halo} needs {size}x{size} LR cells "
                         f"but the region has {h}x{w}; give a larger --bbox or {fix}")
    return size


@dataclass
class StreamSettings:
    """How ``sr-export train --source/--truth`` streams: the pair, loader workers and crops."""

    pair: StreamPair
    workers: int = 2           # DataLoader worker processes (0: read in the training process)
    prefetch: int = 4          # batches each worker keeps ready
    halo: int = 2              # LR cells of context around each crop, not in the loss
    crops_per_block: int = 64  # crops drawn from each block of hours read
    val_crops_per_block: int = 16
    block_hours: int = DEFAULT_BLOCK_HOURS


class BlockCrops(IterableDataset):
    """Random crops, block after block of hours, read by each DataLoader worker in turn.

    Worker ``k`` of ``n`` takes the blocks ``k, k + n, ...`` of each pass's seeded order, reads
    each once and yields ``crops_per_block`` crops from it: ``(lr, hr)`` or ``(lr, static, hr)``,
    normalized; ``lr`` is ``crop + 2 * halo`` cells a side (static: that times the scale) and
    ``hr`` the truth under the central ``crop`` cells, so no loss is taken at a crop's edge.
    ``passes``: None repeats forever (training), else that many passes (validation: 1, with
    ``shuffle`` off, the same crops every time).
    """

    def __init__(self, pair: StreamPair, stats: Statistics, *, crop: int, halo: int,
                 crops_per_block: int, seed: int, block_hours: int = DEFAULT_BLOCK_HOURS,
                 held_out: bool = False, passes: int | None = None, shuffle: bool = True,
                 first_pass: int = 0) -> None:
        super().__init__()
        size = check_crop(pair, crop, halo)
        self.pair, self.stats = pair, stats
        self.crop, self.halo, self.size = crop, halo, size
        self.crops_per_block, self.seed, self.block_hours = crops_per_block, seed, block_hours
        self.lr_time = pair.val_lr_time if held_out else pair.lr_time
        self.hr_time = pair.val_hr_time if held_out else pair.hr_time
        self.parts = blocks(self.hr_time, block_hours)
        self.passes, self.shuffle, self.first_pass = passes, shuffle, first_pass
        self.bytes_read = multiprocessing.Value("d", 0.0)  # shared with the workers
        self.read_seconds = multiprocessing.Value("d", 0.0)
        self.opened: tuple[xr.Dataset, xr.Dataset, ReadCounter] | None = None  # per process
        self.static = None
        if pair.static is not None:
            mean = np.array([s.mean for s in pair.statics], np.float32)[:, None, None]
            std = np.array([s.std for s in pair.statics], np.float32)[:, None, None]
            self.static = torch.from_numpy((pair.static - mean) / std)

    def order(self, number: int) -> list[int]:
        if not self.shuffle:
            return list(range(len(self.parts)))
        rng = np.random.default_rng([self.seed, number])
        return [int(k) for k in rng.permutation(len(self.parts))]

    def _normalized(self, block: np.ndarray, c: int, lr: bool) -> np.ndarray:
        spec = self.stats.variables[c]
        mean, std = (spec.lr_mean, spec.lr_std) if lr else (spec.hr_mean, spec.hr_std)
        return (block - np.float32(mean)) / np.float32(std)

    def read(self, lr_ds: xr.Dataset, hr_ds: xr.Dataset, part: np.ndarray
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """(T, C, h, w) LR and (T, C, s*h, s*w) HR of one block, normalized."""
        pair = self.pair
        lr = np.stack([self._normalized(read_block(lr_ds, v, self.lr_time[part], pair.units[c],
                                                   pair.lr_source.label), c, True)
                       for c, v in enumerate(pair.variables)], axis=1)
        hr = np.stack([self._normalized(read_block(hr_ds, v, self.hr_time[part], pair.units[c],
                                                   pair.hr_source.label), c, False)
                       for c, v in enumerate(pair.variables)], axis=1)
        return torch.from_numpy(lr), torch.from_numpy(hr)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        import time

        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        if info is not None:  # a worker process: the CLI's warning filters are not here
            from sr_runtime.clikit import BENIGN_WARNINGS

            for text in BENIGN_WARNINGS:
                warnings.filterwarnings("ignore", message=text)
        if self.opened is None:  # once per worker process: its cache outlives one pass
            counter = ReadCounter()
            self.opened = (*self.pair.open(counter), counter)
        lr_ds, hr_ds, counter = self.opened
        number = self.first_pass
        s, size, halo, crop = self.pair.scale, self.size, self.halo, self.crop
        while self.passes is None or number < self.first_pass + self.passes:
            for position, k in enumerate(self.order(number)):
                if position % workers != worker:
                    continue
                before, started = counter.bytes_read, time.perf_counter()
                lr, hr = self.read(lr_ds, hr_ds, self.parts[k])
                with self.bytes_read.get_lock():
                    self.bytes_read.value += counter.bytes_read - before
                with self.read_seconds.get_lock():
                    self.read_seconds.value += time.perf_counter() - started
                rng = np.random.default_rng([self.seed, number, k])
                hours, h, w = lr.shape[0], lr.shape[-2], lr.shape[-1]
                for _ in range(self.crops_per_block):
                    t = int(rng.integers(hours))
                    top, left = int(rng.integers(h - size + 1)), int(rng.integers(w - size + 1))
                    lr_crop = lr[t, :, top:top + size, left:left + size]
                    rows = slice((top + halo) * s, (top + halo + crop) * s)
                    cols = slice((left + halo) * s, (left + halo + crop) * s)
                    hr_crop = hr[t, :, rows, cols]
                    if self.static is None:
                        yield lr_crop, hr_crop
                    else:
                        yield (lr_crop, self.static[:, top * s:(top + size) * s,
                                                    left * s:(left + size) * s], hr_crop)
            number += 1


class HeldOutCrops(BlockCrops):
    """The same crops of the held-out hours on every pass: what validation scores. (No
    ``__len__``: Lightning runs a finite stream to its end, and warns about a length.)"""

    def __init__(self, pair: StreamPair, stats: Statistics, *, crop: int, halo: int,
                 crops_per_block: int, seed: int, block_hours: int = DEFAULT_BLOCK_HOURS
                 ) -> None:
        super().__init__(pair, stats, crop=crop, halo=halo, crops_per_block=crops_per_block,
                         seed=seed, block_hours=block_hours, held_out=True, passes=1,
                         shuffle=False)
