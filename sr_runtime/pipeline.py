"""source -> LR window -> engine -> HR field: one time step, physical units throughout."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import xarray as xr

from sr_runtime import units
from sr_runtime.description import ModelDescription
from sr_runtime.errors import (
    ModelMismatchError,
    SourceError,
    SrEdgeError,
    UsageError,
    VariableError,
)
from sr_runtime.fields import GeoField
from sr_runtime.grid import BBox, grid_step, hr_axis, region_slices
from sr_runtime.sources.chunks import (
    ChunkLog,
    chunk_log,
    damaged_chunks,
    describe_absent,
    first_line,
)
from sr_runtime.sources.layout import CANONICAL_DIMS
from sr_runtime.times import at_time

KELVIN_OFFSET = 273.15
UNITS = ("K", "degC")
STEP_TOLERANCE = 0.05  # relative difference of grid spacing tolerated against training data


def check_compatible(ds: xr.Dataset, description: ModelDescription, label: str) -> None:
    """Fail early when the model's variables, their dims and units, or the training resolution
    do not fit the source (before any output exists)."""
    missing = [v for v in description.variable_names if v not in ds.data_vars]
    if missing:
        found = ", ".join(map(str, ds.data_vars)) or "none (is the store consolidated?)"
        raise VariableError(f"{label} has no variable {', '.join(missing)} which the model needs "
                            f"(variables found: {found}); pick a source that has it")
    for spec in description.variables:
        check_dims(ds[spec.name], label)
        units.check_convertible(units.source_units(ds[spec.name].attrs, spec.name, label),
                                spec.units, spec.name, label)
    if description.lr_step_deg and ds.latitude.size > 1:
        step = grid_step(ds.latitude.values, "latitude")
        if abs(step - description.lr_step_deg) > STEP_TOLERANCE * description.lr_step_deg:
            raise ModelMismatchError(
                f"the model upsamples x{description.scale} from a {description.lr_step_deg:.4f}"
                f" deg grid but {label} has a {step:.4f} deg grid; use the matching "
                "low-resolution ('standard') store or a model trained for this grid")


def check_dims(var: xr.DataArray, label: str) -> None:
    """Exactly (time, latitude, longitude), which sources put in that order by name."""
    if var.dims == CANONICAL_DIMS:
        return
    dims = ", ".join(map(str, var.dims))
    extra = [str(d) for d in var.dims if d not in CANONICAL_DIMS]
    if extra and set(CANONICAL_DIMS) <= set(var.dims):
        sizes = ", ".join(f"{d}={var.sizes[d]}" for d in extra)
        raise VariableError(f"{label}: {var.name} has dims ({dims}); sr-run reads one field per "
                            f"time: select one {' and one '.join(extra)} ({sizes}) first, e.g. "
                            f"ds.isel({extra[0]}=0), and store that")
    raise VariableError(f"{label}: {var.name} has dims ({dims}); sr-run needs (time, latitude, "
                        "longitude) (lat and lon are accepted): rename the dimensions")


def read_lr(ds: xr.Dataset, description: ModelDescription, time_index: int,
            bbox: BBox | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(C, h, w) float32 LR window in the model's units, with its latitude and longitude
    centres; refused when any chunk of it is absent or damaged, or any value is missing or
    outside the variable's physical range."""
    return next(read_lr_steps(ds, description, [time_index], bbox))


def read_lr_steps(ds: xr.Dataset, description: ModelDescription,
                  time_indices: Sequence[int],
                  bbox: BBox | None) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """:func:`read_lr` of each of ``time_indices``, in order, from one read of the store.

    Steps that share a time chunk (see :func:`time_blocks`) cost one decode of that chunk
    instead of one per step. Each step is checked only when it is yielded, so the steps before
    a bad one are still handed on, as when they are read one by one."""
    indices = [int(i) for i in time_indices]
    lat_slice, lon_slice = region_slices(ds.latitude.values, ds.longitude.values, bbox)
    window = ds.isel(time=_time_selection(indices), latitude=lat_slice, longitude=lon_slice)
    times = ds.time.values[indices].astype("datetime64[ns]")
    log = chunk_log(ds)
    label = log.label if log is not None else "the source"
    blocks = [read_variable_block(window, spec.name, spec.units, times[0], label)
              for spec in description.variables]
    lat = window.latitude.values.astype(np.float64)
    lon = window.longitude.values.astype(np.float64)
    for k, valid_time in enumerate(times):
        for (values, absent, fill), spec in zip(blocks, description.variables, strict=True):
            check_values(values[k], spec.name, spec.units, valid_time, absent, fill, label)
        yield np.stack([values[k] for values, _, _ in blocks]), lat, lon


def time_blocks(ds: xr.Dataset, description: ModelDescription, time_indices: Sequence[int],
                bbox: BBox | None, max_bytes: int = 32 * 2**20) -> list[list[int]]:
    """``time_indices`` cut, in order, into runs that lie in one time chunk of the store (the
    unit a Zarr store is decoded in) and whose LR windows fit ``max_bytes`` together: what
    :func:`read_lr_steps` reads at once. A store without chunks on time is read step by step."""
    chunk = _time_chunk(ds, description.variable_names[0])
    lat_slice, lon_slice = region_slices(ds.latitude.values, ds.longitude.values, bbox)
    cells = (len(range(ds.latitude.size)[lat_slice]) * len(range(ds.longitude.size)[lon_slice])
             * len(description.variables))
    most = max(1, min(chunk, max_bytes // max(1, 4 * cells)))
    blocks: list[list[int]] = []
    for index in (int(i) for i in time_indices):
        last = blocks[-1] if blocks else None
        if last is not None and len(last) < most and last[-1] // chunk == index // chunk:
            last.append(index)
        else:
            blocks.append([index])
    return blocks


def _time_chunk(ds: xr.Dataset, name: str) -> int:
    """Steps per time chunk of ``name`` in the store; 1 when it is not known."""
    encoding = ds[name].encoding
    preferred = encoding.get("preferred_chunks", {}).get("time")
    chunks = encoding.get("chunks")
    size = preferred or (chunks[ds[name].dims.index("time")] if chunks else 1)
    return max(1, int(size))


def _time_selection(indices: list[int]) -> slice | list[int]:
    """A slice where the steps are evenly spaced (what a --every range gives), else the list."""
    if len(indices) == 1:
        return slice(indices[0], indices[0] + 1)
    step = indices[1] - indices[0]
    if step > 0 and all(b - a == step for a, b in zip(indices, indices[1:], strict=False)):
        return slice(indices[0], indices[-1] + 1, step)
    return indices


def read_variable_block(window: xr.Dataset, name: str, wanted_units: str,
                        valid_time: np.datetime64,
                        label: str) -> tuple[np.ndarray, list[tuple[str, str]], object]:
    """One variable of the window in ``wanted_units``, with the chunks that were absent and the
    fill value they read back as, for :func:`check_values`; ``valid_time`` (the first step)
    names a damaged chunk."""
    log = chunk_log(window)
    mark = log.mark() if log is not None else 0
    var = window[name]
    try:
        raw = np.asarray(var.values)
    except SrEdgeError:
        raise
    except Exception as exc:  # a codec failed: the bytes of a chunk are not what was written
        raise damaged(log, name, mark, valid_time, exc) from None
    if not (np.issubdtype(raw.dtype, np.floating) or np.issubdtype(raw.dtype, np.integer)):
        raise VariableError(f"{label}: {name} holds {raw.dtype} values, not numbers; pick a "
                            "source whose variable is numeric")
    source = units.source_units(var.attrs, name, label)
    units.check_convertible(source, wanted_units, name, label)
    values = units.convert(raw, source, wanted_units)
    absent = log.absent_since(mark, name) if log is not None else []
    return values, absent, var.encoding.get("fill_value", var.encoding.get("_FillValue"))


def damaged(log: ChunkLog | None, name: str, mark: int, valid_time: np.datetime64,
            exc: BaseException) -> SourceError:
    keys = damaged_chunks(log, name, log.read_since(mark, name)) if log is not None else []
    which = f"chunk {keys[0]} of {name}" if keys else f"a chunk of {name}"
    where, label = (log.where, log.label) if log is not None else ("in the store", "the source")
    return SourceError(f"{label}: {which}{at_time(valid_time)} cannot be decoded "
                       f"({first_line(exc)}): "
                       f"the data {where} is damaged or truncated; choose another time or "
                       "region, or ask the store's provider to repair it")


def check_values(values: np.ndarray, name: str, value_units: str, valid_time: np.datetime64,
                 absent: list[tuple[str, str]], fill: object,
                 label: str = "the source") -> None:
    """Refuse a window with absent chunks, missing (NaN) values or implausible values, saying
    how many cells and why."""
    at = at_time(valid_time)
    problems = []
    finite = np.isfinite(values)
    missing = int(values.size - np.count_nonzero(finite))
    if missing:
        problems.append(f"{missing} of {values.size} {name} values{at} are missing (NaN)")
    bounds = units.plausible_range(name, value_units)
    if bounds is not None:
        outside = finite & ((values < bounds[0]) | (values > bounds[1]))
        bad = int(np.count_nonzero(outside))
        if bad:
            problems.append(
                f"{bad} of {values.size} {name} values{at} are outside the plausible range"
                f" {bounds[0]:g}..{bounds[1]:g} {value_units} (they span "
                f"{values[outside].min():.6g}..{values[outside].max():.6g})")
    if absent:
        problems.append(f"{name} has missing chunks ({describe_absent(absent)}), read back as "
                        f"the fill value {fill}")
    if not problems:
        return
    if absent:
        fix = ("the store is incomplete: choose another time or region, or ask its provider to "
               "complete it")
    elif missing and len(problems) == 1:
        fix = "the store holds no data there: choose another time or region"
    else:
        fix = (f"check the units attribute of {name} and the data: sr-run does not write "
               "values it cannot believe")
    raise SourceError(f"{label}: " + "; ".join(problems) + f"; {fix}")


def to_units(values: np.ndarray, units: str, wanted: str) -> tuple[np.ndarray, str]:
    if wanted not in UNITS:
        raise UsageError(f"--units must be one of {', '.join(UNITS)}, not {wanted!r}")
    if wanted == units or units not in UNITS:
        return values, units
    offset = -KELVIN_OFFSET if wanted == "degC" else KELVIN_OFFSET
    return values + np.float32(offset), wanted


def check_missing(lr: np.ndarray, valid_time: np.datetime64, source_label: str) -> None:
    missing = int(np.count_nonzero(~np.isfinite(lr)))
    if missing:
        raise SourceError(f"{source_label}: {missing} of {lr.size} input values are missing "
                          f"(NaN) at {np.datetime_as_string(valid_time, 'm')}; choose another "
                          "time or region")


def output_units(description: ModelDescription, units: str) -> str:
    """The units a run records: ``--units`` for temperature models (every variable is
    converted), else the model's own."""
    native = description.variables[0].units
    return units if native in UNITS else native


def output_units_of(native: str, units: str) -> str:
    """The units one variable is written in: ``--units`` for a temperature, else its own."""
    return units if native in UNITS else native


def build_fields(lr: np.ndarray, hr: np.ndarray, lat: np.ndarray, lon: np.ndarray,
                 valid_time: np.datetime64, description: ModelDescription, backend: str,
                 units: str, source_label: str) -> tuple[list[GeoField], list[GeoField]]:
    """The LR input and SR output of a step as georeferenced fields in ``units``, one per
    variable of the model (in its order; temperatures converted to ``units``); ``hr`` has
    passed :func:`sr_runtime.steps.check_model_output`. The run adds the settings that shaped
    the values (``model_sha256`` of the file that ran...) to the tags."""
    dlat, dlon = grid_step(lat, "latitude"), grid_step(lon, "longitude")
    hr_lat = hr_axis(lat, description.scale, dlat)
    hr_lon = hr_axis(lon, description.scale, dlon)
    tags = {"source": source_label, "checkpoint_sha256": description.checkpoint_sha256,
            "backend": backend, "scale": str(description.scale)}
    lr_fields, sr_fields = [], []
    for c, var in enumerate(description.variables):
        hr_values, out_units = to_units(hr[c], var.units, units)
        lr_values, _ = to_units(lr[c], var.units, units)
        lr_fields.append(GeoField(lr_values, lat, lon, valid_time, var.name, out_units,
                                  {**tags, "resolution": "LR input"}))
        sr_fields.append(GeoField(hr_values, hr_lat, hr_lon, valid_time, var.name, out_units,
                                  {**tags, "resolution": f"SR x{description.scale}"}))
    return lr_fields, sr_fields
