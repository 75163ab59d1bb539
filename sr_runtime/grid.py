"""Time and region selection on the canonical layout, and the HR grid an LR window maps to."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sr_runtime.errors import RegionError, TimeSelectionError

ISO_8601 = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?)?"
                      r"(Z|[+-]\d{2}(:?\d{2})?)?")
TIME_FORMS = ("ISO 8601 only (YYYY-MM-DD[THH[:MM[:SS]]], optional Z or +HH:MM), e.g. "
              "2024-10-11T12:00")


def parse_time(text: str) -> np.datetime64:
    """ISO 8601 date-time (``2024-10-11``, ``2024-10-11T12``, ``2024-10-11T12:00Z``) as UTC
    datetime64[ns]. Nothing else: ``11/10/2024`` is 11 October to some and 10 November to
    others, so it is refused rather than guessed."""
    text = text.strip()
    if not ISO_8601.fullmatch(text):
        raise TimeSelectionError(f"cannot parse time {text!r}; use {TIME_FORMS}")
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError):
        raise TimeSelectionError(f"cannot parse time {text!r} (no such date or hour); use "
                                 f"{TIME_FORMS}") from None
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return np.datetime64(stamp.to_datetime64(), "ns")


def describe_times(times: np.ndarray) -> str:
    if times.size == 0:
        return "no time steps"
    step = ""
    if times.size > 1:
        delta = pd.Timedelta(np.diff(times).min())
        step = f" every {delta}" if delta > pd.Timedelta(0) else ""
    fmt = "%Y-%m-%dT%H:%M"
    return (f"{pd.Timestamp(times[0]).strftime(fmt)} .. {pd.Timestamp(times[-1]).strftime(fmt)}"
            f"{step} ({times.size} steps)")


def select_time(times: np.ndarray, wanted: np.datetime64, nearest: bool = False) -> int:
    """Index of ``wanted`` in ``times``; outside the cube is an error that shows the range."""
    times = np.asarray(times, dtype="datetime64[ns]")
    label = pd.Timestamp(wanted).strftime("%Y-%m-%dT%H:%M")
    if times.size == 0 or wanted < times[0] or wanted > times[-1]:
        raise TimeSelectionError(f"time {label} is outside the DataCube, which covers "
                                 f"{describe_times(times)}; pick a time in that range")
    index = int(np.searchsorted(times, wanted))
    if index < times.size and times[index] == wanted:
        return index
    if nearest:
        candidates = [i for i in (index - 1, index) if 0 <= i < times.size]
        return min(candidates, key=lambda i: abs(times[i] - wanted))
    raise TimeSelectionError(f"time {label} is not a step of the DataCube "
                             f"({describe_times(times)}); pass --nearest to snap to the "
                             "closest step")


@dataclass(frozen=True)
class BBox:
    """West, south, east, north in degrees (longitudes in [-180, 180])."""

    west: float
    south: float
    east: float
    north: float

    def __str__(self) -> str:
        return f"{self.west:g},{self.south:g},{self.east:g},{self.north:g}"


def parse_bbox(text: str) -> BBox:
    parts = text.replace(" ", "").split(",")
    try:
        west, south, east, north = (float(p) for p in parts)
    except ValueError as exc:
        raise RegionError(f"cannot parse --bbox {text!r}; give W,S,E,N in degrees, e.g. "
                          "5,38.7,16.3,50") from exc
    if not (-90 <= south < north <= 90):
        raise RegionError(f"--bbox {text}: need -90 <= S < N <= 90")
    if west > 180 or east > 180 or west < -180 or east < -180:
        raise RegionError(f"--bbox {text}: longitudes must be within -180..180")
    if west >= east:
        raise RegionError(f"--bbox {text} crosses the antimeridian or has W >= E; split it into "
                          "two boxes on either side of 180 degrees")
    return BBox(west, south, east, north)


def region_slices(latitude: np.ndarray, longitude: np.ndarray,
                  bbox: BBox | None) -> tuple[slice, slice]:
    """Index slices of the cells whose centres lie in ``bbox`` (ascending coordinates)."""
    if bbox is None:
        return slice(0, latitude.size), slice(0, longitude.size)
    lat0, lat1 = np.searchsorted(latitude, [bbox.south, bbox.north], side="left")
    lat1 = np.searchsorted(latitude, bbox.north, side="right")
    lon0 = np.searchsorted(longitude, bbox.west, side="left")
    lon1 = np.searchsorted(longitude, bbox.east, side="right")
    if lat1 <= lat0 or lon1 <= lon0:
        raise RegionError(
            f"--bbox {bbox} contains no grid cell: the grid spans latitude "
            f"{latitude[0]:.3f}..{latitude[-1]:.3f} and longitude {longitude[0]:.3f}.."
            f"{longitude[-1]:.3f}; choose a box inside it")
    return slice(int(lat0), int(lat1)), slice(int(lon0), int(lon1))


def grid_step(coords: np.ndarray, name: str) -> float:
    if coords.size < 2:
        raise RegionError(f"the region has a single {name} cell; the grid step is unknown, "
                          "choose a larger box")
    steps = np.diff(coords)
    return float(steps.mean())


def hr_axis(lr_centres: np.ndarray, scale: int, step: float) -> np.ndarray:
    """HR cell centres covering exactly the LR cells' extent (half a cell beyond the centres)."""
    start = lr_centres[0] - step / 2
    return start + (np.arange(lr_centres.size * scale) + 0.5) * (step / scale)


def _stamp(value: np.datetime64) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%dT%H:%M")


def _deg(value: float) -> str:
    return f"{round(float(value), 4):g}"


def time_note(times: np.ndarray, indices: list[int], wanted: np.datetime64 | None,
              span: tuple[np.datetime64, np.datetime64, np.timedelta64] | None) -> str | None:
    """One line saying which times were used, when ``--nearest`` moved any of them."""
    used = np.asarray(times, dtype="datetime64[ns]")[indices]
    if wanted is not None:
        if used[0] == wanted:
            return None
        return f"time {_stamp(used[0])} (nearest to {_stamp(wanted)})"
    if span is None:
        return None
    start, end, every = span
    asked = start + np.arange(int((end - start) // every) + 1) * every
    moved = int(np.count_nonzero(~np.isin(asked, used)))
    if not moved and used.size == asked.size:
        return None
    return (f"times {_stamp(used[0])} .. {_stamp(used[-1])} ({used.size} steps; {moved} of "
            f"{asked.size} requested times snapped to the nearest step)")


def region_note(latitude: np.ndarray, longitude: np.ndarray, bbox: BBox | None) -> str | None:
    """One line saying which region the output covers (whole cells), when it is not ``bbox``:
    clipped to the grid where the box reaches beyond it, snapped to the cells whose centres
    lie inside it otherwise."""
    if bbox is None:
        return None
    lat_slice, lon_slice = region_slices(latitude, longitude, bbox)
    half_lat = abs(grid_step(latitude, "latitude")) / 2 if latitude.size > 1 else 0.0
    half_lon = abs(grid_step(longitude, "longitude")) / 2 if longitude.size > 1 else 0.0
    lat, lon = latitude[lat_slice], longitude[lon_slice]
    used = (lon[0] - half_lon, lat[0] - half_lat, lon[-1] + half_lon, lat[-1] + half_lat)
    grid = (longitude[0] - half_lon, latitude[0] - half_lat, longitude[-1] + half_lon,
            latitude[-1] + half_lat)
    asked = (bbox.west, bbox.south, bbox.east, bbox.north)
    if all(abs(u - a) < 1e-6 for u, a in zip(used, asked, strict=True)):
        return None
    clipped = (asked[0] < grid[0] or asked[1] < grid[1] or asked[2] > grid[2]
               or asked[3] > grid[3])
    why = ("clipped to the grid" if clipped else "snapped to the cells whose centres lie in "
           f"--bbox {bbox}")
    return f"region {','.join(_deg(v) for v in used)} ({why})"
