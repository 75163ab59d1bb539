"""A Zarr DataCube on disk or over HTTP(S), in the Earth Data Hub layout."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import xarray as xr
from zarr.abc.store import Store

from sr_runtime.errors import SourceError, SrEdgeError
from sr_runtime.sources.chunks import (
    LOG_KEY,
    ChunkLog,
    RecordingStore,
    array_of,
    damaged_chunks,
    first_line,
)
from sr_runtime.sources.layout import canonicalize

if TYPE_CHECKING:
    from sr_runtime.sources.cache import ReadCounter
    from sr_runtime.sources.edh import HttpZarrSource


class ZarrSource:
    """Opens a store lazily (no data read until a time and region are selected)."""

    def __init__(self, location: str | Path, storage_options: Mapping[str, object] | None = None,
                 label: str | None = None) -> None:
        self.location = str(location)
        self.storage_options = dict(storage_options or {})
        self.label = label or self.location
        self.require_time = True  # False for a store of static fields
        self.chunk_cache_mb: float | None = None  # see sr_runtime.sources.cache
        self.read_counter: ReadCounter | None = None

    def open(self) -> xr.Dataset:
        from zarr.storage import FsspecStore, LocalStore

        is_remote = "://" in self.location
        if not is_remote and not Path(self.location).exists():
            raise SourceError(f"DataCube not found: {self.location}; pass a Zarr folder or URL "
                              "with --source")
        if not is_remote and not Path(self.location).is_dir():
            raise SourceError(f"{self.label} is a file, not a Zarr store (a folder with "
                              "zarr.json or .zmetadata); check the path")
        try:
            store: Store = (FsspecStore.from_url(self.location, read_only=True,
                                                 storage_options=self.storage_options)
                            if is_remote else LocalStore(self.location, read_only=True))
        except Exception as exc:
            raise SourceError(f"cannot read {self.label}: {first_line(exc)}") from None
        store = with_cache(store, self)
        return open_recorded(ChunkLog(store, self.label), self.label,
                             require_time=self.require_time)


def with_cache(store: Store, source: ZarrSource | HttpZarrSource) -> Store:
    """``store`` behind the source's chunk cache and read counter, when it asks for them."""
    if source.chunk_cache_mb is None and source.read_counter is None:
        return store
    from sr_runtime.sources.cache import caching

    return caching(store, source.chunk_cache_mb or 0.0, source.read_counter)


def open_recorded(log: ChunkLog, label: str, secret: str | None = None,
                  require_time: bool = True) -> xr.Dataset:
    """``log.store`` as a canonical Dataset, read through a :class:`RecordingStore`; every
    failure to read it is a :class:`SourceError` saying what could not be read (``secret``
    never appears in it)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # consolidated-metadata fallback
            # xarray types the argument narrower than it accepts: engine="zarr" takes a Store
            ds = xr.open_dataset(RecordingStore(log.store, log),  # type: ignore[arg-type]
                                 engine="zarr", chunks=None)
    except SrEdgeError:
        raise
    except FileNotFoundError:
        raise SourceError(f"{label} is not a Zarr store (no zarr.json/.zmetadata); check the "
                          "path or URL") from None
    except Exception as exc:  # a damaged coordinate chunk, unreadable metadata, ...
        error = unreadable(log, label, exc)
        raise (SourceError(str(error).replace(secret, "***")) if secret else error) from None
    ds.encoding[LOG_KEY] = log
    if not ds.data_vars:
        raise SourceError(
            f"{label} opened with no variables: the store is empty, or has no consolidated "
            "metadata and its folders cannot be listed (over HTTP); consolidate it "
            "(zarr.consolidate_metadata) or use a local copy")
    return canonicalize(ds, label, require_time)


def unreadable(log: ChunkLog, label: str, exc: BaseException) -> SourceError:
    """What to say when opening failed: the damaged coordinate chunk if one is to blame."""
    read = log.read_since(0)
    for array in dict.fromkeys(array_of(key) for key in read):
        damaged = damaged_chunks(log, array, [k for k in read if array_of(k) == array])
        if damaged:
            return SourceError(
                f"{label}: the store's {array} could not be read: chunk "
                f"{damaged[0]} cannot be decoded ({first_line(exc)}); the data {log.where} is "
                "damaged: ask its provider to repair it or use another copy")
    return SourceError(f"cannot read {label} as a Zarr store ({first_line(exc)}): its metadata "
                       "is damaged or it is not a Zarr store; check the path or URL")
