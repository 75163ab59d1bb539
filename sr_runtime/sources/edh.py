"""Zarr DataCubes over HTTP(S), and Climate DT on the Earth Data Hub by model/experiment/variant.

``edh`` (or ``edh:IFS-NEMO/SSP3-7.0/standard``) becomes
``{base}/{MODEL}-{EXP}-sfc-hourly-{VARIANT}-v0.zarr`` with the base from ``--edh-url``,
``$SR_EDGE_EDH_URL`` or :data:`DEFAULT_EDH_URL`. The API key comes from ``$EDH_API_KEY`` or
``~/.netrc`` (machine = the URL host, without the port) and is sent as HTTP Basic auth (user
``edh``); it never appears in the label, messages or outputs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import xarray as xr

from sr_runtime.errors import AuthError, SourceError, UsageError
from sr_runtime.sources.chunks import ChunkLog
from sr_runtime.sources.http import (
    RetryPolicy,
    find_api_key,
    http_filesystem,
    netrc_host,
    strip_credentials,
)
from sr_runtime.sources.zarr_store import open_recorded, with_cache

if TYPE_CHECKING:
    from sr_runtime.sources.cache import ReadCounter

DEFAULT_EDH_URL = "https://api.earthdatahub.destine.eu/climate-dt-2"
EDH_URL_ENV = "SR_EDGE_EDH_URL"
MODELS = ("IFS-NEMO", "IFS-FESOM", "ICON")
EXPERIMENTS = ("hist", "cont", "SSP3-7.0")
VARIANTS = ("standard", "high-maps", "high-timeseries")
DEFAULT_SPEC = ("IFS-NEMO", "SSP3-7.0", "standard")


def edh_base_url(base: str | None = None) -> tuple[str, str | None]:
    """The base URL (``--edh-url``, ``$SR_EDGE_EDH_URL`` or the default) without credentials,
    and the password if the user put one in it."""
    return strip_credentials((base or os.environ.get(EDH_URL_ENV) or DEFAULT_EDH_URL).rstrip("/"))


def edh_store_url(base: str, model: str, experiment: str, variant: str) -> str:
    return f"{base.rstrip('/')}/{model}-{experiment}-sfc-hourly-{variant}-v0.zarr"


def parse_edh_spec(spec: str) -> tuple[str, str, str]:
    """``edh`` or ``edh:MODEL/EXPERIMENT/VARIANT`` (the latter two optional)."""
    if spec == "edh":
        return DEFAULT_SPEC
    body = spec.split(":", 1)[1] if ":" in spec else ""
    parts = [p for p in body.split("/") if p]
    if not parts or len(parts) > 3:
        raise UsageError(f"--source {spec!r}: use edh or edh:MODEL/EXPERIMENT/VARIANT, e.g. "
                         "edh:IFS-NEMO/SSP3-7.0/standard")
    model, experiment, variant = (*parts, *DEFAULT_SPEC[len(parts):])
    for value, allowed, what in ((model, MODELS, "model"), (experiment, EXPERIMENTS, "experiment"),
                                 (variant, VARIANTS, "variant")):
        if value not in allowed:
            raise UsageError(f"--source {spec!r}: unknown {what} {value!r}; choose one of "
                             f"{', '.join(allowed)}")
    return model, experiment, variant


class HttpZarrSource:
    """A Zarr store (v2 or v3) over HTTP(S), read with retries; opened lazily."""

    def __init__(self, url: str, *, api_key: str | None = None, require_key: bool = False,
                 retry: RetryPolicy | None = None, label: str | None = None,
                 variables: Sequence[str] = ()) -> None:
        self.url, url_key = strip_credentials(url)
        self.api_key = api_key or url_key or find_api_key(self.url)
        self.require_key = require_key
        self.retry = retry
        self.label = label or self.url
        self.variables = tuple(variables)
        self.require_time = True  # False for a store of static fields
        self.chunk_cache_mb: float | None = None  # see sr_runtime.sources.cache
        self.read_counter: ReadCounter | None = None

    def __repr__(self) -> str:  # never show the key
        return f"{type(self).__name__}({self.label!r})"

    def open(self) -> xr.Dataset:
        import zarr

        if self.require_key and not self.api_key:
            raise AuthError(f"no Earth Data Hub API key for {self.label}: set EDH_API_KEY="
                            f"edh_key_... or add 'machine {netrc_host(self.url)} password "
                            "edh_key_...' to ~/.netrc")
        fs = http_filesystem(self.url, self.api_key, label=self.label, retry=self.retry)
        store = with_cache(zarr.storage.FsspecStore(fs, path=self.url, read_only=True), self)
        base = self.url.rstrip("/")

        def why_absent(key: str) -> str:
            return f"HTTP 404 on {key}" if f"{base}/{key}" in fs.not_found else f"no {key}"

        log = ChunkLog(store, self.label, where="on the server", why_absent=why_absent)
        ds = open_recorded(log, self.label, secret=self.api_key,
                           require_time=self.require_time)
        missing = [v for v in self.variables if v not in ds.data_vars]
        if missing:
            raise SourceError(f"{self.label} has no variable {', '.join(missing)} (found: "
                              f"{', '.join(map(str, ds.data_vars))})")
        return ds


class EdhSource(HttpZarrSource):
    """Climate DT on the Earth Data Hub, e.g. ``EdhSource('IFS-NEMO', 'SSP3-7.0', 'standard')``."""

    def __init__(self, model: str = DEFAULT_SPEC[0], experiment: str = DEFAULT_SPEC[1],
                 variant: str = DEFAULT_SPEC[2], *, base_url: str | None = None,
                 api_key: str | None = None, retry: RetryPolicy | None = None) -> None:
        base, url_key = edh_base_url(base_url)
        url = edh_store_url(base, model, experiment, variant)
        super().__init__(url, api_key=api_key or url_key, require_key=True, retry=retry,
                         label=f"Earth Data Hub {model}/{experiment}/{variant} ({url})")
