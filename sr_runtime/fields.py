"""A georeferenced 2-D field on a regular latitude/longitude grid (cell centres, ascending)."""

from __future__ import annotations

from collections.abc import Sequence
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


def as_fields(fields: GeoField | Sequence[GeoField]) -> list[GeoField]:
    """The variables of one step (one field, or several on one grid at one time) as a list,
    checked to share that grid and time: sinks write them as bands or variables of one output."""
    found = [fields] if isinstance(fields, GeoField) else list(fields)
    if not found:
        raise ValueError("no field to write")
    first = found[0]
    for other in found[1:]:
        if (other.data.shape != first.data.shape
                or not np.array_equal(other.latitude, first.latitude)
                or not np.array_equal(other.longitude, first.longitude)
                or other.time != first.time):
            raise ValueError(f"{other.variable} is not on the grid and time of {first.variable}")
    names = [f.variable for f in found]
    if len(set(names)) != len(names):
        raise ValueError(f"a variable appears twice ({', '.join(names)})")
    return found
