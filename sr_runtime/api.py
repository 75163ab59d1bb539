"""The public Python API: open a model and a DataCube, super-resolve xarray fields.

    import sr_runtime as sr

    with sr.open_model() as model:                      # the default model, fastest backend
        lr = sr.read_field(sr.open_source("sample"), model.variables, time="2024-10-11T12:00")
        hr = sr.super_resolve(lr, model, static=sr.open_static("sample"))  # on the HR grid

A model of several variables (the default model: t2m and d2m) takes (and returns) an
``xarray.Dataset`` of them, a model of one a DataArray; a model with static HR inputs
(orography, land-sea mask) takes them as ``static=`` (a high-maps store).

Everything here works on physical values with their units and on named dimensions; what the
CLI does is built from these calls. Errors are :class:`sr_runtime.errors.SrEdgeError` subclasses
whose message says what to change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import numpy as np
import xarray as xr

from sr_runtime.clock import with_clock
from sr_runtime.defaults import DEFAULT_MODEL
from sr_runtime.description import ModelDescription
from sr_runtime.engines.base import Engine
from sr_runtime.errors import SourceError, UsageError
from sr_runtime.fields import GeoField
from sr_runtime.grid import BBox, grid_step, hr_axis, parse_bbox, region_slices
from sr_runtime.pipeline import check_values
from sr_runtime.sources.base import DataSource
from sr_runtime.sources.layout import axis_values, check_regular
from sr_runtime.steps import check_dew_points, check_model_output
from sr_runtime.tiling import cap_tile_for_engine, infer_tiled, tile_for_budget
from sr_runtime.times import as_datetime64, parse_time
from sr_runtime.times import select_time as _select_time
from sr_runtime.units import check_convertible, convert, source_units

#: CF attributes of the coordinates every field carries.
LATITUDE_ATTRS = {"standard_name": "latitude", "long_name": "latitude",
                  "units": "degrees_north", "axis": "Y"}
LONGITUDE_ATTRS = {"standard_name": "longitude", "long_name": "longitude",
                   "units": "degrees_east", "axis": "X"}
STANDARD_NAMES = {"t2m": ("air_temperature", "2 metre temperature"),
                  "d2m": ("dew_point_temperature", "2 metre dewpoint temperature")}


@dataclass
class Model:
    """An opened model: the engine that runs it and why that backend was chosen."""

    engine: Engine
    path: Path
    notes: list[str] = field(default_factory=list)

    @property
    def description(self) -> ModelDescription:
        return self.engine.description

    @property
    def backend(self) -> str:
        return self.engine.name

    @property
    def variables(self) -> tuple[str, ...]:
        """The variables the model takes and predicts, in order (pass them to read_field)."""
        return tuple(self.description.variable_names)

    @property
    def static_inputs(self) -> tuple[str, ...]:
        """The static HR fields the model takes (``static=`` of super_resolve); () if none."""
        return tuple(spec.name for spec in self.description.static_inputs)

    def close(self) -> None:
        close = getattr(self.engine, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_model(model: str | Path | None = None, backend: str = "auto", *,
               config: str | Path | None = None, precision: str = "auto") -> Model:
    """Load ``model`` (default: the shipped model) with ``backend`` (``auto``: the fastest
    usable one; ``Model.notes`` says which and why the others were skipped) at ``precision``
    (``auto``, ``fp32`` for the exact path, ``bf16``, ``int8``; as ``sr-run --precision``)."""
    from sr_runtime.engines.choice import check_engine_precision, choose_engine
    from sr_runtime.engines.registry import load_engine

    path = Path(model) if model is not None else DEFAULT_MODEL
    if model is None and not path.is_file():
        raise UsageError("this installation has no default model; pass a model.onnx")
    notes: list[str] = []
    choice = choose_engine(path, backend, precision)
    if choice.reason:
        notes.append(choice.reason)
    path = choice.model
    selection = load_engine(choice.backend, path, config=Path(config) if config else None,
                            precision=choice.precision, cpu_backend=choice.cpu_backend)
    notes.extend(selection.summary())
    check_engine_precision(selection.engine.precision, selection.engine.name, precision)
    return Model(selection.engine, path, notes)


def open_source(spec: str = "sample", *, edh_url: str | None = None) -> DataSource:
    """A DataCube by name (``sample``, ``edh[:MODEL/EXP/VARIANT]``) or Zarr path/URL."""
    from sr_runtime.sources.registry import resolve_source

    return resolve_source(spec, edh_url=edh_url)


def open_static(source: str = "sample", *, edh_url: str | None = None) -> DataSource:
    """The static HR fields (orog, lsm) that go with ``open_source(source)``: its companion
    high-resolution store, as ``sr-run`` finds it (the sample's high-maps store; on the Earth
    Data Hub the high-maps store of the same model and experiment; beside a
    ``...-standard-v0.zarr`` path or URL, its ``...-high-maps-v0.zarr``). Pass it as
    ``super_resolve(..., static=...)``; a source without one is a UsageError."""
    from sr_runtime.statics import as_static_store, companion_source

    found = companion_source(source, edh_url)
    if found is None:
        raise UsageError(f"{source!r} has no companion high-resolution store (a "
                         "...-high-maps-v0.zarr beside a ...-standard-v0.zarr); pass "
                         "static=STORE: a Zarr store in the Earth Data Hub high-maps layout "
                         "with orog and lsm for the region")
    return as_static_store(found)


def _as_bbox(bbox: BBox | str | tuple[float, float, float, float] | None) -> BBox | None:
    if bbox is None or isinstance(bbox, BBox):
        return bbox
    if isinstance(bbox, str):
        return parse_bbox(bbox)
    return parse_bbox(",".join(str(v) for v in bbox))


@overload
def read_field(source: DataSource | xr.Dataset, variable: str = "t2m", *,
               time: str | np.datetime64, bbox: BBox | str | tuple | None = None,
               nearest: bool = False) -> xr.DataArray: ...


@overload
def read_field(source: DataSource | xr.Dataset, variable: list[str] | tuple[str, ...], *,
               time: str | np.datetime64, bbox: BBox | str | tuple | None = None,
               nearest: bool = False) -> xr.Dataset: ...


def read_field(source: DataSource | xr.Dataset,
               variable: str | list[str] | tuple[str, ...] = "t2m", *,
               time: str | np.datetime64, bbox: BBox | str | tuple | None = None,
               nearest: bool = False) -> xr.DataArray | xr.Dataset:
    """The LR field (latitude, longitude) of ``source`` at ``time`` over ``bbox``: a DataArray
    for one variable name, a Dataset for a sequence of them (``model.variables``)."""
    dataset = source if isinstance(source, xr.Dataset) else source.open()
    names = [variable] if isinstance(variable, str) else list(variable)
    if not names:
        raise UsageError("read_field needs at least one variable name")
    missing = [name for name in names if name not in dataset.data_vars]
    if missing:
        raise SourceError(f"the DataCube has no variable {', '.join(map(repr, missing))} (it "
                          f"has: {', '.join(map(str, dataset.data_vars)) or 'none'})")
    wanted = parse_time(time) if isinstance(time, str) else as_datetime64(time)
    index = _select_time(dataset.time.values, wanted, nearest)
    lat_slice, lon_slice = region_slices(dataset.latitude.values, dataset.longitude.values,
                                         _as_bbox(bbox))
    window = dataset[names].isel(time=index, latitude=lat_slice, longitude=lon_slice).load()
    return window[variable] if isinstance(variable, str) else window


def _ordered(field: xr.DataArray) -> xr.DataArray:
    """(latitude, longitude), or (time, latitude, longitude), ascending, by dimension name."""
    dims = [d for d in ("time", "latitude", "longitude") if d in field.dims]
    extra = [d for d in field.dims if d not in dims]
    if extra or "latitude" not in dims or "longitude" not in dims:
        raise UsageError(f"super_resolve takes dims (latitude, longitude) with an optional time, "
                         f"not {field.dims}; select or rename the others first")
    field = field.transpose(*dims)
    for name in ("latitude", "longitude"):  # the checks every source's axes get
        coords = axis_values(field, name, "the field")
        if coords.size < 2:
            raise UsageError(f"{name} must hold at least two coordinates")
        check_regular(coords, name, "the field")
        if coords[0] > coords[-1]:
            field = field.isel({name: slice(None, None, -1)})
    return field


StaticInput = xr.Dataset | DataSource | str | Path | np.ndarray


def _static_fields(static: StaticInput | None, description: ModelDescription,
                   hr_lat: np.ndarray, hr_lon: np.ndarray) -> np.ndarray | None:
    """The model's static HR fields on the SR grid ``hr_lat`` x ``hr_lon``, from ``static``: a
    store (path, URL, :class:`DataSource` or Dataset in the EDH high-maps layout), or the
    fields already on that grid ((S, H, W) array). None for a model without static inputs."""
    specs = description.static_inputs
    if not specs:
        return None
    names = ", ".join(spec.name for spec in specs)
    if static is None:
        raise UsageError(f"the model takes static HR fields ({names}); pass static=STORE (a "
                         "Zarr path/URL in the Earth Data Hub high-maps layout, a DataSource or "
                         "an xarray.Dataset with them)")
    if isinstance(static, np.ndarray):
        wanted = (len(specs), hr_lat.size, hr_lon.size)
        if static.shape != wanted:
            raise UsageError(f"static= holds {'x'.join(map(str, static.shape))} values, the "
                             f"model needs {names} on the SR grid: {'x'.join(map(str, wanted))}")
        return np.asarray(static, dtype=np.float32)
    from sr_runtime.sources.layout import canonicalize
    from sr_runtime.statics import as_static_store, read_statics

    if isinstance(static, xr.Dataset):
        dataset, label = canonicalize(static, "static=", require_time=False), "static="
    else:
        if isinstance(static, (str, Path)):
            from sr_runtime.sources.registry import resolve_source

            static = resolve_source(str(static))
        static = as_static_store(static)
        dataset, label = static.open(), static.label
    return read_statics(dataset, specs, hr_lat, hr_lon, label)


@overload
def super_resolve(field: xr.DataArray, model: Model | Engine, *, units: str | None = None,
                  tile: int | None = None, max_memory: float | None = None,
                  static: StaticInput | None = None) -> xr.DataArray: ...


@overload
def super_resolve(field: xr.Dataset, model: Model | Engine, *, units: str | None = None,
                  tile: int | None = None, max_memory: float | None = None,
                  static: StaticInput | None = None) -> xr.Dataset: ...


def super_resolve(field: xr.DataArray | xr.Dataset, model: Model | Engine, *,
                  units: str | None = None, tile: int | None = None,
                  max_memory: float | None = None,
                  static: StaticInput | None = None) -> xr.DataArray | xr.Dataset:
    """``field`` on the model's HR grid, in ``units`` (default: the field's own units).

    ``field`` holds physical values with a CF ``units`` attribute (K, degC, degF...: converted;
    missing: an error, units are never guessed) and
    dims ``(latitude, longitude)`` (optionally ``time`` first), in any order: a DataArray for a
    model of one variable, or a Dataset holding every variable of the model (the result is then
    a Dataset of them). ``static``: the static HR fields of a model that takes them (orog,
    lsm): a Zarr path/URL, a :class:`DataSource` or a Dataset in the EDH high-maps layout
    (aligned onto the HR grid by nearest cell), or an (S, H, W) array already on it. Large
    fields run in halo tiles whose result equals whole-field inference; ``max_memory`` (MB)
    bounds the engine's working set, ``tile`` sets the LR tile size directly.
    """
    engine = model.engine if isinstance(model, Model) else model
    description = engine.description
    variables = description.variables
    if isinstance(field, xr.Dataset):
        missing = [v.name for v in variables if v.name not in field.data_vars]
        if missing:
            raise UsageError(f"the Dataset has no {', '.join(missing)}, which the model needs "
                             f"(it has: {', '.join(map(str, field.data_vars)) or 'none'})")
        fields = [_ordered(field[v.name]) for v in variables]
    elif len(variables) != 1:
        raise UsageError(f"this model predicts {', '.join(description.variable_names)}: pass "
                         "an xarray.Dataset holding each of them")
    else:
        fields = [_ordered(field)]
    first = fields[0]
    for other in fields[1:]:
        if other.shape != first.shape or not all(
                np.array_equal(other[d].values, first[d].values) for d in first.dims):
            raise UsageError(f"{other.name} is not on the grid and times of {first.name}")
    lat = np.asarray(first.latitude.values, dtype=np.float64)
    lon = np.asarray(first.longitude.values, dtype=np.float64)
    dlat, dlon = grid_step(lat, "latitude"), grid_step(lon, "longitude")
    times = (np.atleast_1d(first.time.values) if "time" in first.coords
             else np.full(1 if first.ndim == 2 else first.shape[0],
                          np.datetime64("NaT", "ns")))
    wanted_units, channels = [], []
    for variable, each in zip(variables, fields, strict=True):
        have = source_units(each.attrs, variable.name, "the field")
        want = units or have
        check_convertible(have, variable.units, variable.name, "the field")
        check_convertible(variable.units, want, variable.name, "units=")
        values = np.asarray(each.values, dtype=np.float32)
        frames = convert(values[None] if values.ndim == 2 else values, have, variable.units)
        for frame, when in zip(frames, times, strict=True):  # as sr-run checks each window
            check_values(frame, variable.name, variable.units, when, [], None, "the field")
        wanted_units.append(want)
        channels.append(frames)
    lr = np.stack(channels, axis=1)  # (T, C, h, w)
    scale = description.scale
    hr_lat, hr_lon = hr_axis(lat, scale, dlat), hr_axis(lon, scale, dlon)
    statics = _static_fields(static, description, hr_lat, hr_lon)
    if tile is None:
        tile = cap_tile_for_engine(tile_for_budget(description, max_memory), engine)
    whole = tile >= max(lat.size, lon.size)
    hr = np.stack([infer_tiled(engine, with_clock(frame, when, lon, description.clock_inputs),
                               None if whole else tile, statics=statics)
                   for frame, when in zip(lr, times, strict=True)])
    for out, when in zip(hr, times, strict=True):  # as sr-run checks each step's output
        for channel, variable in zip(out, variables, strict=True):
            check_model_output(channel, when, variable.units, variable.name)
        check_dew_points(out, variables, when)
    coords: dict[str, tuple[Any, ...]] = {
        "latitude": ("latitude", hr_lat, LATITUDE_ATTRS),
        "longitude": ("longitude", hr_lon, LONGITUDE_ATTRS)}
    dims: tuple[str, ...] = ("latitude", "longitude")
    if first.ndim == 3:
        coords["time"] = ("time", first.time.values, {"standard_name": "time"})
        dims = ("time", *dims)
    elif "time" in first.coords:
        coords["time"] = ((), first.time.values, {"standard_name": "time"})
    results = []
    for c, (variable, want) in enumerate(zip(variables, wanted_units, strict=True)):
        values = convert(hr[:, c], variable.units, want)
        standard, long_name = STANDARD_NAMES.get(variable.name, (None, variable.name))
        attrs = {"units": want, "long_name": f"{long_name}, super-resolved x{scale}",
                 "sr_edge_backend": engine.name,
                 "sr_edge_checkpoint_sha256": description.checkpoint_sha256 or "",
                 "sr_edge_scale": scale}
        if standard:
            attrs["standard_name"] = standard
        results.append(xr.DataArray(values if first.ndim == 3 else values[0], coords=coords,
                                    dims=dims, name=variable.name, attrs=attrs))
    if isinstance(field, xr.Dataset):
        return xr.Dataset({r.name: r for r in results})
    return results[0]


def to_geofield(field: xr.DataArray, tags: dict[str, str] | None = None) -> GeoField:
    """A 2-D DataArray (as :func:`super_resolve` or :func:`read_field` return) for the sinks."""
    field = _ordered(field)
    if field.ndim != 2:
        raise UsageError("to_geofield takes one time step (latitude, longitude)")
    time = np.datetime64(field.time.values, "ns") if "time" in field.coords \
        else np.datetime64("NaT", "ns")
    return GeoField(np.asarray(field.values, dtype=np.float32),
                    np.asarray(field.latitude.values, dtype=np.float64),
                    np.asarray(field.longitude.values, dtype=np.float64), time,
                    str(field.name or "field"), str(field.attrs.get("units", "")),
                    dict(tags or {}))


def write_cog(field: xr.DataArray | xr.Dataset, path: str | Path,
              tags: dict[str, str] | None = None) -> Path:
    """Write a 2-D field as a Cloud-Optimized GeoTIFF (float32 values, EPSG:4326, atomic); a
    Dataset (several variables on one grid) becomes one band per variable, as ``sr-run``
    writes them (band description = variable name, its unit)."""
    from sr_runtime.sinks.cog import write_cog as write

    if isinstance(field, xr.Dataset):
        if not field.data_vars:
            raise UsageError("write_cog got a Dataset without variables")
        return write([to_geofield(field[name], tags) for name in field.data_vars], Path(path))
    return write(to_geofield(field, tags), Path(path))


__all__ = ["Model", "open_model", "open_source", "open_static", "read_field", "super_resolve",
           "to_geofield", "write_cog"]
