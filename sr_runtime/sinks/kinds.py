"""Which writer an output name asks for, by its suffix; anything else is refused up front.

``.tif``/``.tiff``: Cloud-Optimized GeoTIFF; ``.zarr``: one Zarr store for all steps; ``.nc``:
NetCDF (one file per step). Without this, ``--out x.png`` would hold a GeoTIFF.
"""

from __future__ import annotations

from pathlib import Path

from sr_runtime.errors import UsageError

COG, ZARR, NETCDF = "cog", "zarr", "netcdf"
SUFFIXES: dict[str, tuple[str, ...]] = {COG: (".tif", ".tiff"), ZARR: (".zarr",),
                                       NETCDF: (".nc",)}
DESCRIBED = {COG: "a Cloud-Optimized GeoTIFF", ZARR: "a Zarr store", NETCDF: "NetCDF"}
PREVIEW_SUFFIXES = (".png",)


def _suffix(out: str | Path) -> str:
    return Path(str(out).rstrip("/")).suffix.lower()


def output_kind(out: str | Path, option: str = "--out",
                accepted: tuple[str, ...] = (COG, ZARR, NETCDF)) -> str:
    """The kind of output ``out`` names, or a UsageError listing the suffixes ``option`` takes."""
    suffix = _suffix(out)
    for kind in accepted:
        if suffix in SUFFIXES[kind]:
            return kind
    listing = "; ".join(f"{'/'.join(SUFFIXES[k])} for {DESCRIBED[k]}" for k in accepted)
    found = f"suffix {suffix!r}" if suffix else "no suffix"
    raise UsageError(f"{option} {str(out)!r} has {found}; {option} takes {listing}")


def check_preview_name(path: str | Path) -> None:
    if _suffix(path) not in PREVIEW_SUFFIXES:
        raise UsageError(f"--preview {str(path)!r} must end in .png (the quick-look is a PNG "
                         "picture)")
