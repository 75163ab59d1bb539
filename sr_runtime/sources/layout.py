"""Bring any Climate-DT-like Dataset into the canonical layout (see sources/base.py), or say why
it cannot be: coordinates that could not be read, are not finite, or are not a regular grid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from sr_runtime.errors import SourceError
from sr_runtime.sources.chunks import chunk_log, describe_absent

COORD_ALIASES = {"lat": "latitude", "lon": "longitude", "valid_time": "time"}
CANONICAL_DIMS = ("time", "latitude", "longitude")
# a coordinate may stray from its regular grid by this fraction of a cell (float32 grids pass)
REGULAR_TOLERANCE = 0.01


class CoordinateError(SourceError):
    """The ``coordinate`` of a store is not a usable axis."""

    def __init__(self, coordinate: str, message: str) -> None:
        super().__init__(message)
        self.coordinate = coordinate


def canonicalize(ds: xr.Dataset, label: str, require_time: bool = True) -> xr.Dataset:
    """Rename lat/lon, make latitude ascending, longitude -180..180 without duplicates, time
    ascending, and variables (time, latitude, longitude) by dimension name. A store of static
    fields (``require_time=False``) may have no time coordinate."""
    renames = {k: v for k, v in COORD_ALIASES.items() if k in ds.dims or k in ds.coords}
    renames = {k: v for k, v in renames.items() if v not in ds.dims and v not in ds.coords}
    ds = ds.rename(renames)
    for needed in CANONICAL_DIMS:
        if needed == "time" and not require_time and needed not in ds.coords:
            continue
        if needed not in ds.coords:
            raise SourceError(f"{label} has no {needed} coordinate (found: "
                              f"{', '.join(map(str, ds.coords)) or 'none'}); is it a lat/lon "
                              "DataCube?")
    try:
        grid = canonical_grid(ds, label)
        return _transposed(sorted_time(grid, label) if "time" in grid.coords else grid)
    except CoordinateError as exc:
        raise unread(ds, exc, label) from None


def unread(ds: xr.Dataset, exc: CoordinateError, label: str) -> SourceError:
    """A coordinate chunk that was absent (a 404, a deleted file) reads back as the fill value,
    which is what failed the checks: say so, naming the key. (An absent chunk alone is no
    error: zarr does not write a chunk that equals the fill value, such as a single time 0.)"""
    log = chunk_log(ds)
    absent = log.absent_since(0, exc.coordinate) if log is not None else []
    if not absent:
        return exc
    return SourceError(f"{label}: the store's {exc.coordinate} coordinate could not be read "
                       f"({describe_absent(absent)}); the store is incomplete: ask its provider "
                       "to repair it or use another copy")


def canonical_grid(ds: xr.Dataset, label: str) -> xr.Dataset:
    latitude = axis_values(ds, "latitude", label)
    if np.any(np.abs(latitude) > 90 + 1e-6):
        raise CoordinateError("latitude", f"{label}: latitude values {latitude.min():g}.."
                              f"{latitude.max():g} are outside -90..90; the store's latitude "
                              "coordinate is wrong")
    if latitude.size > 1 and latitude[0] > latitude[-1]:
        ds = ds.isel(latitude=slice(None, None, -1))
    lon = axis_values(ds, "longitude", label)
    if lon.size > 1 and lon[0] > lon[-1]:
        ds, lon = ds.isel(longitude=slice(None, None, -1)), lon[::-1]
    if lon.size > 1 and lon[-1] - lon[0] > 360 + 1e-6:
        raise CoordinateError("longitude", f"{label}: longitude spans {lon[0]:g}..{lon[-1]:g}, "
                              "more than 360 degrees; the store's longitude coordinate is wrong")
    wrapped = ((lon + 180.0) % 360.0) - 180.0
    if not np.array_equal(wrapped, lon):
        _, first = np.unique(wrapped, return_index=True)  # drops the duplicate 180/-180 column
        ds = ds.assign_coords(longitude=wrapped).isel(longitude=np.sort(first))
        ds = ds.sortby("longitude")
    for name in ("latitude", "longitude"):
        check_regular(ds[name].values.astype(np.float64), name, label)
    return ds


def axis_values(ds: xr.Dataset | xr.DataArray, name: str, label: str) -> np.ndarray:
    """A latitude/longitude axis: one dimension, numbers, all finite, strictly monotonic."""
    coord = ds[name]
    if coord.ndim != 1 or coord.dims[0] != name:
        raise CoordinateError(name, f"{label}: {name} has dims ({', '.join(map(str, coord.dims))})"
                              "; sr-run needs a regular latitude/longitude grid (1-D axes)")
    if not np.issubdtype(coord.dtype, np.number):
        raise CoordinateError(name, f"{label}: the {name} coordinate holds {coord.dtype} "
                              "values, not degrees; the store's coordinate is wrong")
    values = coord.values.astype(np.float64)
    if values.size == 0:
        raise CoordinateError(name, f"{label}: the {name} coordinate is empty; the store holds "
                              "no grid")
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        raise CoordinateError(name, f"{label}: {bad} of {values.size} {name} values are not "
                              f"finite (NaN or inf); the store's {name} coordinate is damaged")
    steps = np.diff(values)
    if steps.size and not (np.all(steps > 0) or np.all(steps < 0)):
        raise CoordinateError(name, f"{label}: the {name} coordinate is not strictly monotonic "
                              "(repeated or unordered values); sr-run needs a regular grid")
    return values


def check_regular(values: np.ndarray, name: str, label: str) -> None:
    """Each centre within :data:`REGULAR_TOLERANCE` of a cell of the straight line through the
    ends: a regular grid, which a GeoTIFF transform can describe."""
    if values.size < 3:
        return
    step = (values[-1] - values[0]) / (values.size - 1)
    line = values[0] + np.arange(values.size) * step
    if np.max(np.abs(values - line)) > REGULAR_TOLERANCE * abs(step):
        steps = np.diff(values)
        raise CoordinateError(name, f"{label}: the {name} coordinate is not a regular grid "
                              f"(spacing {steps.min():.6g}..{steps.max():.6g} deg); regrid the "
                              "data to a regular latitude/longitude grid first")


def sorted_time(ds: xr.Dataset, label: str) -> xr.Dataset:
    """Time as datetime64, every value set and distinct, ascending."""
    time = ds["time"]

    def bad(text: str) -> CoordinateError:
        return CoordinateError("time", f"{label}: {text}")

    if time.ndim != 1 or time.dims[0] != "time":
        raise bad(f"time has dims ({', '.join(map(str, time.dims))}); sr-run needs a 1-D time "
                  "coordinate")
    if not np.issubdtype(time.dtype, np.datetime64):
        raise bad(f"the time coordinate holds {time.dtype} values, not dates (its units could "
                  "not be decoded); the store's time is wrong")
    values = time.values
    if values.size == 0:
        raise bad("the time coordinate is empty; the store holds no steps")
    if np.any(np.isnat(values)):
        raise bad(f"{int(np.isnat(values).sum())} of {values.size} time values are not set "
                  "(NaT); the store's time coordinate is damaged")
    if np.unique(values).size != values.size:
        when = pd.Timestamp(values[np.argmax(pd.Index(values).duplicated())])
        raise bad(f"the time coordinate repeats {when:%Y-%m-%dT%H:%M}; the store's time "
                  "coordinate is damaged")
    if values.size > 1 and np.any(np.diff(values) < np.timedelta64(0)):
        ds = ds.sortby("time")
    return ds


def _transposed(ds: xr.Dataset) -> xr.Dataset:
    """Variables whose dims are all canonical, in canonical order (others are left as they are
    and refused by the reader if a model needs them)."""
    out = ds
    for name, var in ds.data_vars.items():
        if set(var.dims) <= set(CANONICAL_DIMS):
            order = tuple(d for d in CANONICAL_DIMS if d in var.dims)
            if var.dims != order:
                out = out.assign({name: var.transpose(*order)})
    return out
