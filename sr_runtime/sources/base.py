"""The DataCube boundary: anything that yields an xarray Dataset in the canonical layout.

Canonical layout (what every source returns, whatever the store looks like):
dims ``(time, latitude, longitude)``, latitude ascending, longitude in [-180, 180) ascending
without the duplicate 180 column, ``time`` as datetime64. Selection of times and regions is
done once, in :mod:`sr_runtime.grid`, on that layout.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import xarray as xr


@runtime_checkable
class DataSource(Protocol):
    """A DataCube. ``label`` is safe to log and to write into output tags (no credentials)."""

    label: str

    def open(self) -> xr.Dataset: ...
