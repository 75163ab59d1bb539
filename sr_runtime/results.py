"""Results on demand for the web app and the HTTP service: one model over one DataCube.

A request names a time, a region and units; :meth:`Results.resolve` checks them against the
cube (cheap, before any inference) and turns them into a :class:`ResultKey`: the model file's
sha256, the valid time, the grid cells of the region and the units, so two boxes that select
the same cells share one result. :meth:`Results.get` runs the model once per key: a repeat is
served from a memory-bounded LRU cache, and concurrent requests for a key that is being computed
wait for that one run instead of starting their own. A failed run is not cached.
"""

from __future__ import annotations

import dataclasses
import threading
import time as clock
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np
import pandas as pd
import xarray as xr

from sr_runtime.api import Model, super_resolve
from sr_runtime.errors import (
    RegionError,
    SrEdgeError,
    TimeSelectionError,
    UsageError,
)
from sr_runtime.grid import BBox, parse_bbox, region_slices, truth_cells
from sr_runtime.metrics import Scores, psnr, rmse, ssim
from sr_runtime.paths import sha256_file
from sr_runtime.pipeline import UNITS, check_compatible, to_units
from sr_runtime.sources.base import DataSource
from sr_runtime.times import parse_time, select_time

#: Values outside these bounds (kelvin) are not a temperature near the surface: an error.
PHYSICAL_RANGE_K = {"t2m": (150.0, 350.0)}
TIME_FORMAT = "%Y-%m-%dT%H:%M"
DEFAULT_CACHE_MB = 1024.0
STATIC_REGIONS = 8  # regions whose static HR fields are kept


class NotInCubeError(UsageError):
    """The time or region asked for is well formed but not in the DataCube (HTTP 404)."""


class RunFailedError(SrEdgeError):
    """Inference ran and failed, or its output is not physical (HTTP 500)."""


@dataclass(frozen=True)
class ResultKey:
    """What identifies one result: same key, same values."""

    model_sha256: str
    time: str  # valid time, TIME_FORMAT
    rows: tuple[int, int]  # LR latitude index range [start, stop)
    cols: tuple[int, int]  # LR longitude index range [start, stop)
    units: str
    variable: str  # which of the model's variables the result shows

    @property
    def stamp(self) -> str:
        return pd.Timestamp(self.time).strftime("%Y%m%dT%H%M")


@dataclass
class Result:
    """The LR input, the SR output and (when the cube has it) HR truth, in ``key.units``."""

    key: ResultKey
    lr: xr.DataArray
    sr: xr.DataArray
    truth: xr.DataArray | None
    land_sea: np.ndarray | None  # on the SR grid, 1 = land
    scores: Scores | None
    infer_seconds: float
    backend: str
    precision: str
    extras: dict[str, object] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        arrays = [self.lr, self.sr, self.truth]
        return sum(int(a.nbytes) for a in arrays if a is not None) + (
            int(self.land_sea.nbytes) if self.land_sea is not None else 0)

    def summary(self) -> dict[str, object]:
        data: dict[str, object] = {
            "time": self.key.time, "units": self.key.units, "backend": self.backend,
            "precision": self.precision, "inference_s": round(self.infer_seconds, 4),
            "lr_shape": list(self.lr.shape), "sr_shape": list(self.sr.shape),
            "truth": self.truth is not None}
        if self.scores is not None:
            data.update({k: round(v, 4) for k, v in self.scores.as_dict().items()})
        return data


K = TypeVar("K")
V = TypeVar("V")


class SingleFlightCache(Generic[K, V]):
    """LRU cache bounded in bytes whose misses are computed once however many callers wait."""

    def __init__(self, budget_bytes: float, size: Callable[[V], int]) -> None:
        self.budget, self.size = budget_bytes, size
        self.lock = threading.Lock()
        self.done: OrderedDict[K, V] = OrderedDict()
        self.pending: dict[K, Future[V]] = {}
        self.used = 0
        self.hits = self.misses = self.computed = 0

    def get(self, key: K, compute: Callable[[], V]) -> tuple[V, bool]:
        """(value, True if no computation was started for this call)."""
        with self.lock:
            if key in self.done:
                self.done.move_to_end(key)
                self.hits += 1
                return self.done[key], True
            waiting = self.pending.get(key)
            if waiting is None:
                future: Future[V] = Future()
                self.pending[key] = future
                self.misses += 1
            else:
                self.hits += 1
        if waiting is not None:
            return waiting.result(), True
        try:
            value = compute()
        except BaseException as exc:
            with self.lock:
                del self.pending[key]
            future.set_exception(exc)
            raise
        with self.lock:
            del self.pending[key]
            self.computed += 1
            self._store(key, value)
        future.set_result(value)
        return value, False

    def put(self, key: K, value: V) -> None:
        """Keep ``value`` for ``key`` unless it is there or being computed (a by-product of
        another key's computation)."""
        with self.lock:
            if key not in self.done and key not in self.pending:
                self._store(key, value)

    def _store(self, key: K, value: V) -> None:
        cost = self.size(value)
        if cost > self.budget:
            return  # larger than the whole budget: served once, not kept
        self.done[key] = value
        self.used += cost
        while self.used > self.budget and self.done:
            _, old = self.done.popitem(last=False)
            self.used -= self.size(old)

    def stats(self) -> dict[str, int]:
        with self.lock:
            return {"entries": len(self.done), "hits": self.hits, "misses": self.misses,
                    "computed": self.computed, "bytes": self.used}


class Results:
    """One model over one DataCube (and its HR truth, if any), with cached results.

    A model of several variables runs on all of them; a result shows the one its request
    names (default: the first), and the other variables of the same inference are cached
    beside it, so asking for them runs nothing. A model with static HR inputs needs
    ``static``, the store they come from (see :mod:`sr_runtime.statics`):
    they are read once per region and kept for the last few regions."""

    def __init__(self, model: Model, source: DataSource, truth: DataSource | None = None, *,
                 cache_mb: float = DEFAULT_CACHE_MB, static: DataSource | None = None) -> None:
        self.model, self.source = model, source
        self.dataset = source.open()
        self.variables = {spec.name: spec for spec in model.description.variables}
        self.variable = model.description.variables[0]  # the default one
        check_compatible(self.dataset, model.description, source.label)
        self.static = static if model.description.static_inputs else None
        if model.description.static_inputs and static is None:
            names = ", ".join(s.name for s in model.description.static_inputs)
            raise UsageError(f"the model takes static HR fields ({names}); pass --static STORE "
                             "(a Zarr store in the Earth Data Hub high-maps layout)")
        self.static_dataset = self.static.open() if self.static is not None else None
        self._statics: OrderedDict[tuple[tuple[int, int], tuple[int, int]], np.ndarray] = (
            OrderedDict())
        self.static_lock = threading.Lock()
        self.truth = truth.open() if truth is not None else None
        self.model_sha256 = sha256_file(model.path)
        self.precision = str(getattr(model.engine, "precision", "fp32"))
        self.times = np.asarray(self.dataset.time.values, dtype="datetime64[ns]")
        self.truth_times = self._truth_times()
        lat, lon = self.dataset.latitude.values, self.dataset.longitude.values
        self.latitude, self.longitude = lat.astype(np.float64), lon.astype(np.float64)
        self.cache: SingleFlightCache[ResultKey, Result] = SingleFlightCache(
            cache_mb * 2**20, lambda r: r.nbytes)
        self.infer_lock = threading.Lock()
        self.inferences = 0

    # -- what the cube offers -------------------------------------------------------------
    def _truth_times(self) -> set[str]:
        if self.truth is None or not all(name in self.truth for name in self.variables):
            return set()
        times = pd.DatetimeIndex(self.truth.time.values)
        return {t.strftime(TIME_FORMAT) for t in times}

    def time_labels(self) -> list[str]:
        return [pd.Timestamp(t).strftime(TIME_FORMAT) for t in self.times]

    def grid_box(self) -> BBox:
        """The source's box: the LR cells' outer edges."""
        dlat = float(np.diff(self.latitude).mean()) if self.latitude.size > 1 else 0.0
        dlon = float(np.diff(self.longitude).mean()) if self.longitude.size > 1 else 0.0
        return BBox(round(self.longitude[0] - dlon / 2, 4), round(self.latitude[0] - dlat / 2, 4),
                    round(self.longitude[-1] + dlon / 2, 4),
                    round(self.latitude[-1] + dlat / 2, 4))

    # -- requests -------------------------------------------------------------------------
    def resolve(self, time: str, bbox: str | BBox | None = None, units: str = "K",
                variable: str | None = None) -> ResultKey:
        """Check a request against the cube (no inference) and name its result; ``variable``:
        one of the model's (default: its first)."""
        if units not in UNITS:
            raise UsageError(f"units must be one of {', '.join(UNITS)}, not {units!r}")
        variable = variable or self.variable.name
        if variable not in self.variables:
            raise UsageError(f"variable must be one of the model's ({', '.join(self.variables)})"
                             f", not {variable!r}")
        wanted = parse_time(time) if isinstance(time, str) else np.datetime64(time, "ns")
        try:
            index = select_time(self.times, wanted)
        except TimeSelectionError as exc:
            raise NotInCubeError(str(exc).replace("pass --nearest to snap to the closest step",
                                                  "pick one of the listed times")) from None
        box = parse_bbox(bbox) if isinstance(bbox, str) and bbox.strip() else (
            bbox if isinstance(bbox, BBox) else None)
        try:
            rows, cols = region_slices(self.latitude, self.longitude, box)
        except RegionError as exc:
            raise NotInCubeError(str(exc).replace("--bbox ", "region ")) from None
        if rows.stop - rows.start < 2 or cols.stop - cols.start < 2:
            raise UsageError(f"region {box} holds {rows.stop - rows.start} x "
                             f"{cols.stop - cols.start} LR cells; choose a box of at least 2 x 2 "
                             "cells")
        stamp = pd.Timestamp(self.times[index]).strftime(TIME_FORMAT)
        return ResultKey(self.model_sha256, stamp, (rows.start, rows.stop),
                         (cols.start, cols.stop), units, variable)

    def get(self, key: ResultKey) -> tuple[Result, bool]:
        """(result, served from the cache)."""
        return self.cache.get(key, lambda: self._compute_and_keep(key))

    def _compute_and_keep(self, key: ResultKey) -> Result:
        """``key``'s result; the model's other variables, from the same inference, go into the
        cache beside it (a request for them runs nothing)."""
        results = self._compute(key)
        for name, other in results.items():
            if name != key.variable:
                self.cache.put(dataclasses.replace(key, variable=name), other)
        return results[key.variable]

    def stats(self) -> dict[str, object]:
        return {"inferences": self.inferences, "cache": self.cache.stats()}

    # -- computing a result ---------------------------------------------------------------
    def _region_statics(self, key: ResultKey) -> np.ndarray | None:
        """The static HR fields on the SR grid of the key's region (read once per region)."""
        if self.static_dataset is None or self.static is None:
            return None
        from sr_runtime.grid import sr_axes
        from sr_runtime.statics import read_statics

        region = (key.rows, key.cols)
        with self.static_lock:
            if region not in self._statics:
                lat = self.latitude[slice(*key.rows)]
                lon = self.longitude[slice(*key.cols)]
                self._statics[region] = read_statics(
                    self.static_dataset, self.model.description.static_inputs,
                    *sr_axes(lat, lon, self.model.description.scale), self.static.label)
                while len(self._statics) > STATIC_REGIONS:
                    self._statics.popitem(last=False)
            self._statics.move_to_end(region)
            return self._statics[region]

    def _compute(self, key: ResultKey) -> dict[str, Result]:
        """The result of every variable of the model for ``key``'s time, region and units."""
        names = self.model.description.variable_names
        frame = self.dataset[names].sel(time=np.datetime64(key.time, "ns")).isel(
            latitude=slice(*key.rows), longitude=slice(*key.cols)).load()
        for spec in self.model.description.variables:
            frame[spec.name].attrs.setdefault("units", spec.units)
        started = clock.perf_counter()
        try:
            with self.infer_lock:
                self.inferences += 1
            statics = self._region_statics(key)
            if len(names) == 1:
                fields = {names[0]: super_resolve(frame[names[0]], self.model,
                                                  units=self.variable.units, static=statics)}
            else:  # every variable runs at once (in the first one's units: all temperatures)
                both = super_resolve(frame, self.model, units=self.variable.units,
                                     static=statics)
                fields = {name: both[name] for name in names}
        except SrEdgeError as exc:
            raise RunFailedError(f"inference at {key.time} failed: {exc}") from None
        except Exception as exc:  # a backend's own error: say which, keep it one line
            raise RunFailedError(f"inference at {key.time} failed in backend "
                                 f"{self.model.backend}: {type(exc).__name__}: {exc}") from None
        seconds = clock.perf_counter() - started
        results = {}
        for name, sr in fields.items():
            each = dataclasses.replace(key, variable=name)
            self._check_physical(sr, each)
            sr = self._in_units(sr, key.units, name)
            lr = self._in_units(frame[name], key.units, name)
            truth, land_sea = self._truth(sr, each)
            scores = _scores(sr.values, truth.values) if truth is not None else None
            results[name] = Result(each, lr, sr, truth, land_sea, scores, seconds,
                                   self.model.backend, self.precision)
        return results

    def _check_physical(self, sr: xr.DataArray, key: ResultKey) -> None:
        spec = self.variables[key.variable]
        bounds = PHYSICAL_RANGE_K.get(spec.name)
        if bounds is None or spec.units != "K":
            return
        low, high = float(np.nanmin(sr.values)), float(np.nanmax(sr.values))
        if low < bounds[0] or high > bounds[1]:
            raise RunFailedError(f"the model produced {spec.name} from {low:.1f} to "
                                 f"{high:.1f} K at {key.time}, outside {bounds[0]:g}.."
                                 f"{bounds[1]:g} K; the model does not fit this data")

    def _in_units(self, field: xr.DataArray, units: str, variable: str) -> xr.DataArray:
        have = str(field.attrs.get("units", self.variables[variable].units))
        values, out_units = to_units(np.asarray(field.values, np.float32), have, units)
        converted = field.copy(data=values)
        converted.attrs["units"] = out_units
        return converted

    def _truth(self, sr: xr.DataArray, key: ResultKey) -> tuple[xr.DataArray | None,
                                                                np.ndarray | None]:
        """HR truth on the SR cells (as ``sr-run --report`` aligns it) and the land-sea mask."""
        if self.truth is None:
            return None, self._lr_land_sea(sr, key)
        rows = truth_cells(self.truth.latitude.values, sr.latitude.values, "latitude")
        cols = truth_cells(self.truth.longitude.values, sr.longitude.values, "longitude")
        if rows is None or cols is None:
            return None, self._lr_land_sea(sr, key)
        window = self.truth.isel(latitude=rows, longitude=cols)
        land_sea = np.asarray(window["lsm"].values, np.float32) if "lsm" in window else \
            self._lr_land_sea(sr, key)
        truth = None
        if key.time in self.truth_times:
            spec = self.variables[key.variable]
            hr = window[spec.name].sel(time=np.datetime64(key.time, "ns"))
            values, units = to_units(np.asarray(hr.values, np.float32), spec.units, key.units)
            truth = xr.DataArray(values, coords={"latitude": sr.latitude,
                                                 "longitude": sr.longitude},
                                 dims=("latitude", "longitude"), name=spec.name,
                                 attrs={"units": units, "long_name": "HR truth"})
        return truth, land_sea

    def _lr_land_sea(self, sr: xr.DataArray, key: ResultKey) -> np.ndarray | None:
        """The source's own (LR) land-sea mask repeated onto the SR grid, if it has one."""
        if "lsm" not in self.dataset:
            return None
        lsm = self.dataset["lsm"]
        if "time" in lsm.dims:
            lsm = lsm.isel(time=0)
        lr = np.asarray(lsm.isel(latitude=slice(*key.rows), longitude=slice(*key.cols)).values,
                        np.float32)
        scale = self.model.description.scale
        return np.kron(lr, np.ones((scale, scale), np.float32))[:sr.shape[0], :sr.shape[1]]

    def time_label(self, key: ResultKey) -> str:
        return pd.Timestamp(key.time).strftime("%Y-%m-%d %H:%M UTC")


def _scores(prediction: np.ndarray, truth: np.ndarray) -> Scores | None:
    """RMSE/PSNR (and SSIM when the field is at least 11 x 11) with data range truth max-min."""
    if not np.all(np.isfinite(truth)):
        return None
    data_range = float(truth.max() - truth.min())
    try:
        structural = ssim(prediction, truth, data_range)
    except ValueError:
        structural = float("nan")
    return Scores(rmse(prediction, truth), psnr(prediction, truth, data_range), structural,
                  data_range)


def default_truth(source_spec: str, truth_spec: str | None) -> DataSource | None:
    """``truth_spec`` if given, else the sample's HR store for the sample (as ``sr-run``)."""
    from sr_runtime.defaults import sample_hr_store
    from sr_runtime.sources.registry import resolve_source

    if truth_spec:
        return resolve_source(truth_spec)
    if source_spec == "sample" and sample_hr_store().exists():
        return resolve_source(str(sample_hr_store()))
    return None


def open_results(source: str = "sample", model: str | Path | None = None,
                 backend: str = "auto", *, config: str | Path | None = None,
                 edh_url: str | None = None, truth: str | None = None,
                 cache_mb: float = DEFAULT_CACHE_MB,
                 say: Callable[[str], object] | None = None,
                 static: str | None = None) -> Results:
    """Open the model and the cube the way ``sr-run`` does (same names, same defaults;
    ``static``: ``--static``, for models with static HR inputs)."""
    from sr_runtime.api import open_model, open_source
    from sr_runtime.defaults import default_model_hint

    opened = open_model(model, backend, config=config)
    try:
        cube = open_source(source, edh_url=edh_url)
        statics = None
        with default_model_hint(model is not None):
            if opened.description.static_inputs:
                from sr_runtime.statics import static_source

                statics = static_source(static, source, edh_url,
                                        [s.name for s in opened.description.static_inputs])
            results = Results(opened, cube, default_truth(source, truth), cache_mb=cache_mb,
                              static=statics)
    except BaseException:
        opened.close()
        raise
    if say is not None:
        for line in opened.notes:
            say(line)
    return results
