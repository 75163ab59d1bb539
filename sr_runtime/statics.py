"""Static HR fields (orography, land-sea mask) for models that take them: where they come from,
and the fields of one region, read once, checked and aligned onto the SR output grid.

Where they come from (:func:`static_source`): ``--static STORE`` (a Zarr path or URL in the Earth
Data Hub "high-maps" layout, or ``edh:MODEL/EXP/high-maps``), else the source's companion
high-resolution store: the embedded sample's high-maps store; on the Earth Data Hub the
high-maps store of the same model and experiment; for a Zarr path or URL named as the Hub names
its stores (``...-standard-v0.zarr``), the ``...-high-maps-v0.zarr`` beside it. A model without
static inputs never opens a static store.

What is read (:func:`read_statics`): each static input of the model by name, 2-D (latitude,
longitude) or with a leading time dimension (the fields are static: time 0 is taken), in units
the model's can be converted from (:mod:`sr_runtime.units`), every value finite and plausible
(orog -500..9000 m, lsm 0..1), from the store's HR cell nearest each SR cell centre. The EDH
high grid is not nested in the standard one (spacing ratio 8.0137), so SR centres sit up to
about half an HR cell from the store's; a centre further than :data:`ALIGN_TOLERANCE` SR cells
from every store centre means the store does not cover the region (or is on a coarser grid),
and the run is refused, naming the centre.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from sr_runtime import units
from sr_runtime.description import StaticSpec
from sr_runtime.errors import RegionError, SrEdgeError, UsageError, VariableError
from sr_runtime.sources.base import DataSource
from sr_runtime.sources.chunks import chunk_log

STATIC_OPTION = "--static"
#: A wanted centre may lie this many SR cells from the nearest store centre: half a cell, plus
#: 2 % for the non-nested EDH grids (the SR grid of the sample box reaches 0.505 of a cell
#: beyond the store's outermost centres; quicklook pairs HR truth with the same slack).
ALIGN_TOLERANCE = 0.51
LR_SUFFIX, HR_SUFFIX = "-standard-v0.zarr", "-high-maps-v0.zarr"
_NO_TIME = np.datetime64("NaT", "ns")


def _fix() -> str:
    return (f"pass {STATIC_OPTION} STORE: a Zarr store in the Earth Data Hub high-maps layout "
            "with orog and lsm for this region")


def companion_source(source: str, edh_url: str | None = None) -> DataSource | None:
    """The high-resolution store that goes with ``--source source``, or None if it has none."""
    from sr_runtime.sources.zarr_store import ZarrSource

    if source == "sample":
        from sr_runtime.defaults import sample_hr_store

        store = sample_hr_store()
        return ZarrSource(store, label="the embedded sample's high-maps store") if (
            store.exists()) else None
    if source == "edh" or source.startswith("edh:"):
        from sr_runtime.sources.edh import EdhSource, parse_edh_spec

        model, experiment, _ = parse_edh_spec(source)
        return EdhSource(model, experiment, "high-maps", base_url=edh_url)
    name = source.rstrip("/")
    if not name.endswith(LR_SUFFIX):
        return None
    sibling = name[: -len(LR_SUFFIX)] + HR_SUFFIX
    if sibling.startswith(("http://", "https://")):
        from sr_runtime.sources.edh import HttpZarrSource

        return HttpZarrSource(sibling, label=f"{sibling} (the high-maps store beside --source)")
    if not Path(sibling).is_dir():
        return None
    return ZarrSource(sibling, label=f"{sibling} (the high-maps store beside --source)")


def as_static_store(location: DataSource) -> DataSource:
    """``location`` opened as a store of static fields: no time axis needed (sources that
    check for one, Zarr and the Earth Data Hub, are told not to)."""
    if hasattr(location, "require_time"):
        location.require_time = False
    return location


def static_source(static: str | None, source: str, edh_url: str | None,
                  names: Sequence[str]) -> DataSource:
    """``--static`` if given, else the companion of ``source``; a one-line UsageError saying to
    pass ``--static`` when there is neither. ``names``: the static fields the model takes."""
    from sr_runtime.sources.registry import resolve_source

    if static is not None and not static.strip():
        raise UsageError(f"{STATIC_OPTION} is empty; {_fix()}")
    found = resolve_source(static, edh_url=edh_url) if static else companion_source(source,
                                                                                      edh_url)
    if found is None:
        raise UsageError(f"the model takes static HR fields ({', '.join(names)}) and --source "
                         f"{source} has no companion high-resolution store; {_fix()}")
    return as_static_store(found)


def _two_d(var: xr.DataArray, label: str) -> xr.DataArray:
    """(latitude, longitude), taking time 0 of a leading time dimension."""
    if var.dims == ("time", "latitude", "longitude"):
        if var.sizes["time"] < 1:
            raise VariableError(f"{label}: {var.name} has no time step; store the static field "
                                "as (latitude, longitude)")
        var = var.isel(time=0)
    if var.dims != ("latitude", "longitude"):
        raise VariableError(f"{label}: the static field {var.name} has dims "
                            f"({', '.join(map(str, var.dims))}); sr-run needs (latitude, "
                            "longitude), optionally with a leading time")
    return var


def check_static_units(ds: xr.Dataset, specs: Sequence[StaticSpec], label: str) -> None:
    """Every static field the model takes is in ``ds``, with units convertible to the model's
    (cheap: no data is read)."""
    missing = [s.name for s in specs if s.name not in ds.data_vars]
    if missing:
        found = ", ".join(map(str, ds.data_vars)) or "none"
        raise VariableError(f"{label} has no static field {', '.join(missing)} which the model "
                            f"needs (variables found: {found}); {_fix()}")
    for spec in specs:
        _two_d(ds[spec.name], label)
        units.check_convertible(units.source_units(ds[spec.name].attrs, spec.name, label),
                                spec.units, spec.name, label)


def nearest_cells(store: np.ndarray, wanted: np.ndarray, name: str, label: str) -> np.ndarray:
    """Index of the store's cell nearest each ``wanted`` centre (ascending axes), refused when
    any lies more than :data:`ALIGN_TOLERANCE` cells of the ``wanted`` (SR) grid away: a store
    that does not cover the region, or one on a coarser grid.

    Longitudes are matched around the globe when the store spans it. Latitudes beyond the poles
    (the SR grid of the LR pole rows reaches past them) take the pole row.
    """
    store = np.asarray(store, dtype=np.float64)
    wanted = np.asarray(wanted, dtype=np.float64)
    if store.size < 2:
        raise RegionError(f"{label} has a single {name} cell, too few to align with the SR "
                          f"grid; {_fix()}")
    step = float(abs(store[-1] - store[0]) / (store.size - 1))
    cell = float(abs(wanted[-1] - wanted[0]) / (wanted.size - 1)) if wanted.size > 1 else step
    periodic = name == "longitude" and (store[-1] - store[0]) + 1.5 * step >= 360.0
    if name == "latitude":
        wanted = np.clip(wanted, -90.0, 90.0)
    if periodic:
        wanted = (wanted + 180.0) % 360.0 - 180.0
    after = np.searchsorted(store, wanted)  # 0..n: the first centre at or after each one
    if periodic:  # beyond the last centre, the nearest may be the first one, and vice versa
        left, right = (after - 1) % store.size, after % store.size
    else:
        left, right = np.clip(after - 1, 0, store.size - 1), np.clip(after, 0, store.size - 1)

    def distance(index: np.ndarray) -> np.ndarray:
        gap = np.abs(store[index] - wanted)
        return np.minimum(gap, 360.0 - gap) if periodic else gap

    chosen = np.where(distance(left) <= distance(right), left, right)
    gap = distance(chosen)
    worst = int(np.argmax(gap))
    if gap[worst] > ALIGN_TOLERANCE * cell:
        raise RegionError(
            f"{label} does not cover this region on the SR grid: the SR cell at {name} "
            f"{wanted[worst]:.4f} is {gap[worst]:.4f} deg from the nearest {name} of the store "
            f"({store[chosen[worst]]:.4f}), more than half an SR cell ({cell / 2:.4f} deg; the "
            f"store's cells are {step:.4f} deg, its {name} spans {store[0]:.4f}.."
            f"{store[-1]:.4f}); {_fix()}")
    return chosen


def _read_one(ds: xr.Dataset, spec: StaticSpec, rows: np.ndarray, cols: np.ndarray,
              label: str) -> np.ndarray:
    from sr_runtime.pipeline import check_values, damaged

    var = _two_d(ds[spec.name], label)
    source = units.source_units(var.attrs, spec.name, label)
    units.check_convertible(source, spec.units, spec.name, label)
    log = chunk_log(ds)
    mark = log.mark() if log is not None else 0
    try:
        raw = np.asarray(var.isel(latitude=rows, longitude=cols).values)  # orthogonal
    except SrEdgeError:
        raise
    except Exception as exc:  # a codec failed: the bytes of a chunk are not what was written
        raise damaged(log, spec.name, mark, _NO_TIME, exc) from None
    if not (np.issubdtype(raw.dtype, np.floating) or np.issubdtype(raw.dtype, np.integer)):
        raise VariableError(f"{label}: {spec.name} holds {raw.dtype} values, not numbers; "
                            f"{_fix()}")
    values = units.convert(raw, source, spec.units)
    absent = log.absent_since(mark, spec.name) if log is not None else []
    check_values(values, spec.name, spec.units, _NO_TIME, absent,
                 var.encoding.get("fill_value", var.encoding.get("_FillValue")), label)
    return values


def read_statics(ds: xr.Dataset, specs: Sequence[StaticSpec], hr_lat: np.ndarray,
                 hr_lon: np.ndarray, label: str) -> np.ndarray:
    """(S, H, W) float32: the static fields ``specs`` (in their order and units) on the SR grid
    whose cell centres are ``hr_lat`` x ``hr_lon`` (ascending), checked as the module says."""
    check_static_units(ds, specs, label)
    rows = nearest_cells(ds.latitude.values, hr_lat, "latitude", label)
    cols = nearest_cells(ds.longitude.values, hr_lon, "longitude", label)
    return np.stack([_read_one(ds, spec, rows, cols, label) for spec in specs]).astype(
        np.float32, copy=False)


def region_statics(location: DataSource, specs: Sequence[StaticSpec], hr_lat: np.ndarray,
                   hr_lon: np.ndarray) -> np.ndarray:
    """:func:`read_statics` from the store ``location`` (opened here)."""
    return read_statics(location.open(), specs, hr_lat, hr_lon, location.label)
