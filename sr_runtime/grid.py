"""Region selection on the canonical layout, and the HR grid an LR window maps to.

Time selection lives in :mod:`sr_runtime.times`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sr_runtime.errors import RegionError


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


def sr_axes(lat: np.ndarray, lon: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """The SR grid (latitude, longitude centres) of an LR window ``lat`` x ``lon`` at
    ``scale``: :func:`hr_axis` of each, with the window's own grid step."""
    return (hr_axis(lat, scale, grid_step(lat, "latitude")),
            hr_axis(lon, scale, grid_step(lon, "longitude")))


def _deg(value: float) -> str:
    return f"{round(float(value), 4):g}"


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


def truth_cells(truth: np.ndarray, wanted: np.ndarray, name: str) -> np.ndarray | None:
    """For each SR cell centre ``wanted``, the nearest HR truth cell, or None when the truth does
    not cover them (any further than :data:`sr_runtime.statics.ALIGN_TOLERANCE` SR cells).

    The EDH high-resolution grid is not nested in the standard one (spacing ratio 8.0137): its
    centres drift from the SR centres and, over a box of more than about 35 LR cells, an HR row
    or column is skipped now and then; per-cell nearest matching pairs them all, as
    ``sr-run --static`` aligns static fields.
    """
    from sr_runtime.errors import RegionError
    from sr_runtime.statics import nearest_cells

    if truth.size < 2 or wanted.size < 2:
        return None
    try:
        return nearest_cells(truth, wanted, name, "the HR truth")
    except RegionError:
        return None
