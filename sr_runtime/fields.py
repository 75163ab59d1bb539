"""A georeferenced 2-D field on a regular latitude/longitude grid (cell centres, ascending)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class GeoField:
    """One variable at one time. ``data`` is (latitude, longitude) with latitude ascending."""

    data: np.ndarray
    latitude: np.ndarray
    longitude: np.ndarray
    time: np.datetime64
    variable: str
    units: str
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.data.shape != (self.latitude.size, self.longitude.size):
            raise ValueError(
                f"data shape {self.data.shape} does not match coordinates "
                f"({self.latitude.size}, {self.longitude.size})"
            )

    @property
    def resolution(self) -> tuple[float, float]:
        """(dlat, dlon) cell size in degrees, from the centre spacing."""
        return (float(np.diff(self.latitude).mean()) if self.latitude.size > 1 else 0.0,
                float(np.diff(self.longitude).mean()) if self.longitude.size > 1 else 0.0)
