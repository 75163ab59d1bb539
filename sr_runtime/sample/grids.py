"""The Earth Data Hub Climate DT grids and the Alpine sample box cut out of them.

The sample must look exactly like a window of the real stores, so every coordinate here is a
value of the real global ``np.linspace`` grids, never a re-derived one. The box is chosen so
that the LR cells (their extents, not only their centres) stay inside the GLOBE terrain tile
(35-50 N, 0-30 E): no ETOPO5 fill is needed anywhere.

LR and HR are not nested (latitude spacing ratio 8.0137, longitude exactly 8), so the HR window
is chosen to cover the same AREA as the 32 x 32 LR cells: the outer LR cell edges, half an LR
cell beyond the outer LR centres. Residual mismatch, in HR pixels (HR minus LR):

- latitude: south edge +0.507, north edge +0.068, centre +0.288 (the 256 HR rows span 0.44 HR
  pixel less than the 32 LR rows);
- longitude: both edges and the centre -0.5 exactly (LR cell edges fall on HR cell centres,
  so half a pixel is the best possible; the window starts on the western side).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Number of points of the global grids, as on the Earth Data Hub.
LR_NLAT, LR_NLON = 512, 1025
HR_NLAT, HR_NLON = 4096, 8193

#: Box size in pixels and the integer scale factor the models assume.
LR_SIZE = 32
SCALE = 8
HR_SIZE = LR_SIZE * SCALE

#: First global index of the box on each grid (see the module docstring for why these).
LR_LAT_START = 365  # centres 38.5714 .. 49.4912 N, cell edges 38.3953 .. 49.6673 N
LR_LON_START = 527  # centres 5.2734 .. 16.1719 E, cell edges 5.0977 .. 16.3477 E
HR_LAT_START = 2922  # centres 38.4396 .. 49.6484 N
HR_LON_START = SCALE * LR_LON_START - SCALE // 2  # 4212: centres 5.0977 .. 16.3037 E


def global_lr_latitude() -> np.ndarray:
    """The EDH "standard" latitude axis, ascending."""
    return np.linspace(-90.0, 90.0, LR_NLAT)


def global_lr_longitude() -> np.ndarray:
    """The EDH "standard" longitude axis (both -180 and 180 present)."""
    return np.linspace(-180.0, 180.0, LR_NLON)


def global_hr_latitude() -> np.ndarray:
    """The EDH "high" latitude axis, ascending."""
    return np.linspace(-90.0, 90.0, HR_NLAT)


def global_hr_longitude() -> np.ndarray:
    """The EDH "high" longitude axis (both -180 and 180 present)."""
    return np.linspace(-180.0, 180.0, HR_NLON)


@dataclass(frozen=True)
class SampleGrids:
    """Coordinates of the sample box on both grids, and where they sit in the global grids."""

    lr_lat: np.ndarray
    lr_lon: np.ndarray
    hr_lat: np.ndarray
    hr_lon: np.ndarray
    lr_lat_slice: slice
    lr_lon_slice: slice
    hr_lat_slice: slice
    hr_lon_slice: slice

    @property
    def key(self) -> tuple[int, int, int, int]:
        """(first LR row, first LR column, rows, columns): hashable, names the box."""
        return (int(self.lr_lat_slice.start), int(self.lr_lon_slice.start),
                int(self.lr_lat.size), int(self.lr_lon.size))


#: Cell-edge bounds of the shipped GLOBE tile (degrees): every LR cell of a box lies inside.
TILE_BOUNDS = (35.0, 50.0, 0.0, 30.0)  # south, north, west, east


def hr_lat_start(lr_lat_start: int, lr_rows: int) -> int:
    """First HR row covering the LR rows: the one whose window centre is nearest the LR
    window's (the grids are not nested; for the Alpine box this is :data:`HR_LAT_START`)."""
    lr_lat, hr_lat = global_lr_latitude(), global_hr_latitude()
    hr_step = hr_lat[1] - hr_lat[0]
    centre = 0.5 * (lr_lat[lr_lat_start] + lr_lat[lr_lat_start + lr_rows - 1])
    return int(round((centre - (lr_rows * SCALE - 1) / 2 * hr_step - hr_lat[0]) / hr_step))


def region_grids(lr_lat_start: int, lr_lon_start: int, lr_rows: int = LR_SIZE,
                 lr_cols: int = LR_SIZE) -> SampleGrids:
    """Any box of LR cells (global indices of the EDH standard grid) inside the GLOBE tile, and
    the HR window covering the same area (longitude: LR edges fall on HR centres, so the window
    starts half an LR cell west; latitude: centres matched, see :func:`hr_lat_start`)."""
    lr_lat, lr_lon = global_lr_latitude(), global_lr_longitude()
    if lr_rows < 1 or lr_cols < 1 or lr_lat_start < 0 or lr_lon_start < 0 or (
            lr_lat_start + lr_rows > lr_lat.size or lr_lon_start + lr_cols > lr_lon.size):
        raise ValueError(f"box rows {lr_lat_start}+{lr_rows}, cols {lr_lon_start}+{lr_cols} "
                         "is not on the EDH standard grid")
    lat_edges = cell_edges(lr_lat[lr_lat_start:lr_lat_start + max(lr_rows, 2)])
    lon_edges = cell_edges(lr_lon[lr_lon_start:lr_lon_start + max(lr_cols, 2)])
    south, north, west, east = TILE_BOUNDS
    if (lat_edges[0] < south or lat_edges[lr_rows] > north or lon_edges[0] < west
            or lon_edges[lr_cols] > east):
        raise ValueError(f"the box's LR cells ({lat_edges[0]:.2f}..{lat_edges[lr_rows]:.2f} N, "
                         f"{lon_edges[0]:.2f}..{lon_edges[lr_cols]:.2f} E) leave the terrain "
                         f"tile {south:g}-{north:g} N, {west:g}-{east:g} E; choose a box inside it")
    lr_lat_s = slice(lr_lat_start, lr_lat_start + lr_rows)
    lr_lon_s = slice(lr_lon_start, lr_lon_start + lr_cols)
    hr_row = hr_lat_start(lr_lat_start, lr_rows)
    hr_col = SCALE * lr_lon_start - SCALE // 2
    hr_lat_s = slice(hr_row, hr_row + lr_rows * SCALE)
    hr_lon_s = slice(hr_col, hr_col + lr_cols * SCALE)
    return SampleGrids(
        lr_lat=global_lr_latitude()[lr_lat_s].copy(),
        lr_lon=global_lr_longitude()[lr_lon_s].copy(),
        hr_lat=global_hr_latitude()[hr_lat_s].copy(),
        hr_lon=global_hr_longitude()[hr_lon_s].copy(),
        lr_lat_slice=lr_lat_s,
        lr_lon_slice=lr_lon_s,
        hr_lat_slice=hr_lat_s,
        hr_lon_slice=hr_lon_s,
    )


def sample_grids() -> SampleGrids:
    """The 32 x 32 LR and 256 x 256 HR Alpine box, as float64 ascending global coordinates."""
    return region_grids(LR_LAT_START, LR_LON_START)


def cell_edges(centres: np.ndarray) -> np.ndarray:
    """Edges of cells of a regular ascending axis: half a step beyond the outer centres."""
    step = (centres[-1] - centres[0]) / (centres.size - 1)
    return centres[0] + (np.arange(centres.size + 1) - 0.5) * step
