"""The output boundary: where super-resolved fields go (COG files, Zarr stores...)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from sr_runtime.fields import GeoField


@runtime_checkable
class Sink(Protocol):
    """Writes one field per call. Implementations write to a temporary name and rename it when
    complete, so that a failed or interrupted run never leaves a half-written output."""

    def write(self, field: GeoField) -> str: ...
