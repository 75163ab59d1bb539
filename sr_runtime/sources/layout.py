"""Bring any Climate-DT-like Dataset into the canonical layout (see sources/base.py)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from sr_runtime.errors import SourceError

COORD_ALIASES = {"lat": "latitude", "lon": "longitude", "valid_time": "time"}


def canonicalize(ds: xr.Dataset, label: str) -> xr.Dataset:
    """Rename lat/lon, make latitude ascending, longitude -180..180 without duplicates."""
    renames = {k: v for k, v in COORD_ALIASES.items() if k in ds.dims or k in ds.coords}
    renames = {k: v for k, v in renames.items() if v not in ds.dims and v not in ds.coords}
    ds = ds.rename(renames)
    for needed in ("latitude", "longitude"):
        if needed not in ds.coords:
            raise SourceError(f"{label} has no {needed} coordinate (found: "
                              f"{', '.join(map(str, ds.coords)) or 'none'}); is it a lat/lon "
                              "DataCube?")
    if ds.latitude.size > 1 and float(ds.latitude[0]) > float(ds.latitude[-1]):
        ds = ds.isel(latitude=slice(None, None, -1))
    lon = ds.longitude.values.astype(np.float64)
    wrapped = ((lon + 180.0) % 360.0) - 180.0
    if not np.array_equal(wrapped, lon) or np.any(np.diff(lon) <= 0):
        _, first = np.unique(wrapped, return_index=True)  # drops the duplicate 180/-180 column
        ds = ds.assign_coords(longitude=wrapped).isel(longitude=np.sort(first))
        ds = ds.sortby("longitude")
    if "time" in ds.coords and ds.time.size > 1 and bool((ds.time.diff("time") < 0).any()):
        ds = ds.sortby("time")
    return ds
