"""source -> LR window -> engine -> HR field: one time step, physical units throughout."""

from __future__ import annotations

import time as clock
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from sr_runtime.description import ModelDescription
from sr_runtime.engines.base import Engine
from sr_runtime.errors import ModelMismatchError, SourceError, UsageError, VariableError
from sr_runtime.fields import GeoField
from sr_runtime.grid import BBox, grid_step, hr_axis, region_slices, select_time
from sr_runtime.tiling import infer_tiled

KELVIN_OFFSET = 273.15
UNITS = ("K", "degC")
STEP_TOLERANCE = 0.05  # relative difference of grid spacing tolerated against training data


@dataclass
class StepResult:
    """The LR input and SR output of one time step, with where the time went."""

    lr: GeoField
    sr: GeoField
    seconds: dict[str, float] = field(default_factory=dict)


def check_compatible(ds: xr.Dataset, description: ModelDescription, label: str) -> None:
    """Fail early when the model's variables or training resolution do not fit the source."""
    missing = [v for v in description.variable_names if v not in ds.data_vars]
    if missing:
        found = ", ".join(map(str, ds.data_vars)) or "none (is the store consolidated?)"
        raise VariableError(f"{label} has no variable {', '.join(missing)} which the model needs "
                            f"(variables found: {found}); pick a source that has it")
    if description.lr_step_deg and ds.latitude.size > 1:
        step = grid_step(ds.latitude.values, "latitude")
        if abs(step - description.lr_step_deg) > STEP_TOLERANCE * description.lr_step_deg:
            raise ModelMismatchError(
                f"the model upsamples x{description.scale} from a {description.lr_step_deg:.4f}"
                f" deg grid but {label} has a {step:.4f} deg grid; use the matching "
                "low-resolution ('standard') store or a model trained for this grid")


def read_lr(ds: xr.Dataset, description: ModelDescription, time_index: int,
            bbox: BBox | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(C, h, w) float32 LR window with its latitude and longitude centres."""
    lat_slice, lon_slice = region_slices(ds.latitude.values, ds.longitude.values, bbox)
    window = ds.isel(time=time_index, latitude=lat_slice, longitude=lon_slice)
    data = np.stack([np.asarray(window[name].values, dtype=np.float32)
                     for name in description.variable_names])
    return data, window.latitude.values.astype(np.float64), window.longitude.values.astype(
        np.float64)


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
    native = description.variables[0].units
    return units if native in UNITS else native


def build_fields(lr: np.ndarray, hr: np.ndarray, lat: np.ndarray, lon: np.ndarray,
                 valid_time: np.datetime64, description: ModelDescription, backend: str,
                 units: str, source_label: str) -> tuple[GeoField, GeoField]:
    """The LR input and SR output of a step as georeferenced fields in ``units``."""
    dlat, dlon = grid_step(lat, "latitude"), grid_step(lon, "longitude")
    var = description.variables[0]
    hr_values, out_units = to_units(hr[0], var.units, units)
    lr_values, _ = to_units(lr[0], var.units, units)
    tags = {"source": source_label, "model_sha256": description.checkpoint_sha256,
            "backend": backend, "scale": str(description.scale)}
    lr_field = GeoField(lr_values, lat, lon, valid_time, var.name, out_units,
                        {**tags, "resolution": "LR input"})
    sr_field = GeoField(hr_values, hr_axis(lat, description.scale, dlat),
                        hr_axis(lon, description.scale, dlon), valid_time, var.name, out_units,
                        {**tags, "resolution": f"SR x{description.scale}"})
    return lr_field, sr_field


def super_resolve_step(ds: xr.Dataset, engine: Engine, time: np.datetime64, *,
                       bbox: BBox | None = None, units: str = "K", nearest: bool = False,
                       source_label: str = "", tile: int | None = None) -> StepResult:
    """Run one time step of ``ds`` (canonical layout) through ``engine`` (in halo tiles of
    ``tile`` LR cells when given, see :mod:`sr_runtime.tiling`)."""
    description = engine.description
    check_compatible(ds, description, source_label or "the source")
    index = select_time(ds.time.values, np.datetime64(time, "ns"), nearest)
    valid_time = np.datetime64(ds.time.values[index], "ns")

    started = clock.perf_counter()
    lr, lat, lon = read_lr(ds, description, index, bbox)
    read_s = clock.perf_counter() - started
    check_missing(lr, valid_time, source_label)
    for coords, name in ((lat, "latitude"), (lon, "longitude")):
        grid_step(coords, name)  # a single-cell region fails here, before inference

    started = clock.perf_counter()
    hr = infer_tiled(engine, lr, tile)
    infer_s = clock.perf_counter() - started
    lr_field, sr_field = build_fields(lr, hr, lat, lon, valid_time, description, engine.name,
                                      units, source_label)
    return StepResult(lr_field, sr_field, {"read": read_s, "infer": infer_s})
