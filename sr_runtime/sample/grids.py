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


def sample_grids() -> SampleGrids:
    """The 32 x 32 LR and 256 x 256 HR box, as float64 ascending global coordinate values."""
    lr_lat_s = slice(LR_LAT_START, LR_LAT_START + LR_SIZE)
    lr_lon_s = slice(LR_LON_START, LR_LON_START + LR_SIZE)
    hr_lat_s = slice(HR_LAT_START, HR_LAT_START + HR_SIZE)
    hr_lon_s = slice(HR_LON_START, HR_LON_START + HR_SIZE)
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


def cell_edges(centres: np.ndarray) -> np.ndarray:
    """Edges of cells of a regular ascending axis: half a step beyond the outer centres."""
    step = (centres[-1] - centres[0]) / (centres.size - 1)
    return centres[0] + (np.arange(centres.size + 1) - 0.5) * step
