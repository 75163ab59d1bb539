"""Earth Data Hub-layout stores, whole or broken in one chosen way, for the tests of what sr-run
does with real-world inputs (tests/runtime/sources/test_broken_stores.py, test_fuzz_stores.py).

The whole store is the EDH "standard" layout (/work/shared/reference/edh-climate-dt.md): Zarr v3
with consolidated metadata, float64 ascending latitude from np.linspace(-90, 90, 512) and
longitude from np.linspace(-180, 180, 1025), t2m float32 in K with its CF names, dims (time,
latitude, longitude), chunks (1440, 64, 64) on the global grid and NaN as fill value. The window
is two latitude chunks by one longitude chunk, so one chunk can go missing while the other stays.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from tests.conftest import EDH_LR_LAT, EDH_LR_LON, analytic_t2m

LAT_SLICE, LON_SLICE = slice(320, 448), slice(512, 576)  # chunk-aligned: 2 x 1 chunks of 64
HOURS = 2
START = np.datetime64("2024-10-11T00", "ns")
WHEN = "2024-10-11T01:00"
EDH_CHUNKS = (1440, 64, 64)
# chunk keys of the whole store (Zarr v3 default encoding)
T2M_SOUTH, T2M_NORTH = "t2m/c/0/0/0", "t2m/c/0/1/0"
LATITUDE, LONGITUDE, TIME = "latitude/c/0", "longitude/c/0", "time/c/0"


def edh_dataset(hours: int = HOURS) -> xr.Dataset:
    lat, lon = EDH_LR_LAT[LAT_SLICE], EDH_LR_LON[LON_SLICE]
    times = START + np.arange(hours) * np.timedelta64(1, "h")
    values = analytic_t2m(np.arange(hours, dtype=np.float64), lat, lon)
    attrs = {"units": "K", "standard_name": "air_temperature",
             "long_name": "2 metre temperature", "GRIB_paramId": 167, "GRIB_shortName": "2t"}
    return xr.Dataset({"t2m": (("time", "latitude", "longitude"), values, attrs)},
                      coords={"time": times, "latitude": lat, "longitude": lon})


def write_store(path: Path, ds: xr.Dataset | None = None, *, fill: float = float("nan"),
                chunks: dict[str, int] | None = None) -> Path:
    """``ds`` (default: the whole EDH window) as a consolidated Zarr v3 store with EDH chunks."""
    ds = edh_dataset() if ds is None else ds
    sizes = {"time": EDH_CHUNKS[0], "latitude": EDH_CHUNKS[1], "longitude": EDH_CHUNKS[2],
             **(chunks or {})}
    encoding = {}
    for name, var in ds.data_vars.items():
        encoding[name] = {"chunks": tuple(min(sizes.get(str(d), n), n)
                                          for d, n in zip(var.dims, var.shape, strict=True))}
        if np.issubdtype(var.dtype, np.floating) or "scale_factor" in var.encoding:
            encoding[name]["fill_value"] = fill
    ds.to_zarr(path, zarr_format=3, consolidated=True, mode="w", encoding=encoding)
    return path


def garbage(data: bytes) -> bytes:
    """Bytes of the same length that no codec accepts (no zstd frame header)."""
    noise = hashlib.sha256(data).digest() * (len(data) // 32 + 1)
    return bytes(b ^ 0xA5 for b in noise[: len(data)])


def damage(data: bytes, how: str) -> bytes:
    return garbage(data) if how == "garbage" else data[: len(data) // 2]


@dataclass(frozen=True)
class Case:
    """One broken store: how the dataset is changed before it is written (``change``), which
    chunk keys are then absent (``delete``) or damaged (``damage``: key -> garbage|truncate),
    and what a correct run must give: ``ok`` (exit 0, the whole store's result within
    ``atol`` K) or a refusal (exit code ``code``)."""

    name: str
    change: Callable[[xr.Dataset], xr.Dataset] | None = None
    fill: float = float("nan")
    delete: tuple[str, ...] = ()
    damage: dict[str, str] = field(default_factory=dict)
    ok: bool = False
    code: int = 1
    atol: float = 1e-3

    def write(self, path: Path, *, apply_faults: bool = True) -> Path:
        """The store on disk; ``apply_faults=False`` leaves absent/damaged chunks to a server."""
        ds = edh_dataset()
        if self.change is not None:
            ds = self.change(ds)
        write_store(path, ds, fill=self.fill)
        if apply_faults:
            for key in self.delete:
                (path / key).unlink()
            for key, how in self.damage.items():
                (path / key).write_bytes(damage((path / key).read_bytes(), how))
        return path
