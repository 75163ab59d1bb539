"""``--source`` values by name: ``sample``, ``edh[:MODEL/EXP/VARIANT]``, a Zarr path, or a URL.

The HTTP stack (aiohttp, the EDH source) is imported only for a source that needs it: a run
over a local store does not pay for it at start-up.
"""

from __future__ import annotations

from collections.abc import Callable

from sr_runtime.defaults import sample_lr_store
from sr_runtime.errors import SourceError
from sr_runtime.sources.base import DataSource
from sr_runtime.sources.zarr_store import ZarrSource


def _sample(**_: object) -> DataSource:
    store = sample_lr_store()
    if not store.exists():
        raise SourceError(f"the embedded sample is missing from this installation ({store}); "
                          "reinstall sr-edge or rebuild it: python -m sr_runtime.sample.builder")
    return ZarrSource(store, label="sample (embedded DataCube derived from real terrain)")


def _edh(spec: str = "edh", edh_url: str | None = None, **_: object) -> DataSource:
    from sr_runtime.sources.edh import EdhSource, parse_edh_spec

    model, experiment, variant = parse_edh_spec(spec)
    return EdhSource(model, experiment, variant, base_url=edh_url)


# A factory gets the full ``--source`` text as ``spec`` and the other source options
NAMED_SOURCES: dict[str, Callable[..., DataSource]] = {"sample": _sample, "edh": _edh}


def source_names() -> list[str]:
    return list(NAMED_SOURCES)


def resolve_source(spec: str, *, edh_url: str | None = None) -> DataSource:
    """A named source (``name`` or ``name:details``), else a Zarr path or HTTP(S) URL."""
    name = spec.split(":", 1)[0] if not spec.startswith(("http://", "https://")) else ""
    if name in NAMED_SOURCES and (spec == name or spec.startswith(f"{name}:")):
        return NAMED_SOURCES[name](spec=spec, edh_url=edh_url)
    if spec.startswith(("http://", "https://")):
        from sr_runtime.sources.edh import HttpZarrSource

        return HttpZarrSource(spec)
    return ZarrSource(spec)
