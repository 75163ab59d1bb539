"""``--source`` values by name: ``sample``, a Zarr path, or a URL."""

from __future__ import annotations

from collections.abc import Callable

from sr_runtime.defaults import sample_lr_store
from sr_runtime.errors import SourceError
from sr_runtime.sources.base import DataSource
from sr_runtime.sources.zarr_store import ZarrSource


def _sample() -> DataSource:
    store = sample_lr_store()
    if not store.exists():
        raise SourceError(f"the embedded sample is missing from this installation ({store}); "
                          "reinstall sr-edge or rebuild it: python -m sr_runtime.sample.builder")
    return ZarrSource(store, label="sample (embedded DataCube derived from real terrain)")


NAMED_SOURCES: dict[str, Callable[[], DataSource]] = {"sample": _sample}


def register_source(name: str, factory: Callable[[], DataSource]) -> None:
    NAMED_SOURCES[name] = factory


def resolve_source(spec: str) -> DataSource:
    """A named source, else a Zarr path or URL."""
    if spec in NAMED_SOURCES:
        return NAMED_SOURCES[spec]()
    return ZarrSource(spec)
