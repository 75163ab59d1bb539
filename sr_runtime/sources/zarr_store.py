"""A Zarr DataCube on disk or over HTTP(S), in the Earth Data Hub layout."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import xarray as xr

from sr_runtime.errors import SourceError
from sr_runtime.sources.layout import canonicalize


class ZarrSource:
    """Opens a store lazily (no data read until a time and region are selected)."""

    def __init__(self, location: str | Path, storage_options: Mapping[str, object] | None = None,
                 label: str | None = None) -> None:
        self.location = str(location)
        self.storage_options = dict(storage_options or {})
        self.label = label or self.location

    def open(self) -> xr.Dataset:
        is_remote = "://" in self.location
        if not is_remote and not Path(self.location).exists():
            raise SourceError(f"DataCube not found: {self.location}; pass a Zarr folder or URL "
                              "with --source")
        try:
            ds = xr.open_dataset(
                self.location, engine="zarr", chunks=None,
                storage_options=self.storage_options if is_remote else None,
            )
        except FileNotFoundError as exc:
            raise SourceError(f"{self.label} is not a Zarr store (no zarr.json/.zmetadata); "
                              "check the path or URL") from exc
        except (ValueError, KeyError, OSError) as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            raise SourceError(f"cannot open {self.label} as Zarr: {first_line}") from exc
        return canonicalize(ds, self.label)
