"""Fuzz-style: many broken variants of an Earth Data Hub-layout store, each run through `sr-run`
(in process, on disk and, for absent or damaged chunks, through the local HTTP server).

The rule for every case: no traceback, and never exit 0 with a value that is not finite, not
within 150..350 K, or not the whole store's value (a finite transform too). Each case also says
whether it must be read (``ok``: degC, another dim order, a descending latitude...) or refused,
and with which exit code."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import xarray as xr
from typer.testing import CliRunner

from sr_runtime.cli import app
from tests.conftest import resize_model
from tests.runtime.sources.stores import (
    LATITUDE,
    LONGITUDE,
    T2M_NORTH,
    T2M_SOUTH,
    TIME,
    WHEN,
    Case,
)
from tests.runtime.sources.test_broken_stores import expected_cog

runner = CliRunner()
COORDS = {"latitude": LATITUDE, "longitude": LONGITUDE, "time": TIME}


def t2m(change):  # type: ignore[no-untyped-def]
    """A case change that replaces t2m by ``change(t2m)``, keeping its attributes."""
    def apply(ds: xr.Dataset) -> xr.Dataset:
        return ds.drop_vars("t2m").assign(t2m=change(ds.t2m))
    return apply


def coord(name: str, change):  # type: ignore[no-untyped-def]
    def apply(ds: xr.Dataset) -> xr.Dataset:
        values = np.array(ds[name].values)
        return ds.assign_coords({name: (name, change(values), ds[name].attrs)})
    return apply


def cell(value: float, where=(1, 5, 7)):  # type: ignore[no-untyped-def]
    def change(da: xr.DataArray) -> xr.DataArray:
        values = da.values.copy()
        values[where] = value
        return da.copy(data=values)
    return change


def pack_int16(da: xr.DataArray) -> xr.DataArray:
    out = da.astype(np.float64)
    out.encoding.update(dtype="int16", scale_factor=0.01, add_offset=273.15, _FillValue=-32768)
    return out


def with_attr(**attrs: object):  # type: ignore[no-untyped-def]
    def change(da: xr.DataArray) -> xr.DataArray:
        out = da.copy()
        out.attrs = {k: v for k, v in {**da.attrs, **attrs}.items() if v is not None}
        return out
    return change


def _nan_at(index: int):  # type: ignore[no-untyped-def]
    def change(values: np.ndarray) -> np.ndarray:
        values = values.astype(np.float64)
        values[index] = np.nan
        return values
    return change


def _set(index: int, value):  # type: ignore[no-untyped-def]
    def change(values: np.ndarray) -> np.ndarray:
        values = values.copy()
        values[index] = value if not callable(value) else value(values)
        return values
    return change


CASES = [
    Case("whole", ok=True),
    # absent chunks (a deleted file, or a 404 over HTTP), with NaN and other fill values
    *(Case(f"absent-{key.split('/')[0]}-{i}", delete=(key,))
      for i, key in enumerate((T2M_SOUTH, T2M_NORTH, LATITUDE, LONGITUDE, TIME))),
    *(Case(f"absent-t2m-fill-{fill:g}", fill=fill, delete=(T2M_NORTH,))
      for fill in (0.0, 280.0, -9999.0)),
    Case("absent-both-t2m", delete=(T2M_SOUTH, T2M_NORTH)),
    Case("fill-0-nothing-absent", fill=0.0, ok=True),
    # damaged chunks (garbage or cut short, served whole with status 200)
    *(Case(f"{how}-{key.replace('/', '.')}", damage={key: how})
      for key in (T2M_SOUTH, T2M_NORTH, LATITUDE, LONGITUDE, TIME)
      for how in ("garbage", "truncate")),
    Case("garbage-zarr.json", damage={"zarr.json": "garbage"}),
    Case("truncate-zarr.json", damage={"zarr.json": "truncate"}),
    Case("absent-zarr.json", delete=("zarr.json",)),
    Case("absent-t2m-array-metadata", delete=("t2m/zarr.json",), ok=True),  # consolidated
    Case("absent-t2m-array-metadata-garbage-chunk", delete=("t2m/zarr.json",),
         damage={T2M_NORTH: "garbage"}),
    # units
    Case("units-degC", change=t2m(lambda da: with_attr(units="degC")(da - 273.15)), ok=True,
         atol=2e-3),
    Case("units-degF", change=t2m(lambda da: with_attr(units="degF")(
        (da.astype(np.float64) - 273.15) * 1.8 + 32).astype(np.float32)), ok=True, atol=2e-3),
    Case("units-kelvin", change=t2m(with_attr(units="kelvin")), ok=True),
    Case("units-unknown", change=t2m(with_attr(units="furlong")), code=2),
    Case("units-empty", change=t2m(with_attr(units="")), code=2),
    Case("units-missing", change=t2m(with_attr(units=None)), code=2),
    Case("units-number", change=t2m(with_attr(units=1)), code=2),
    Case("units-K-but-celsius-values", change=t2m(lambda da: da - 273.15)),
    # dimension order and names
    *(Case(f"dims-{'-'.join(order)}", change=t2m(lambda da, o=order: da.transpose(*o)),
           ok=True)
      for order in (("time", "longitude", "latitude"), ("latitude", "longitude", "time"),
                    ("longitude", "time", "latitude"))),
    Case("dims-extra-level", change=t2m(lambda da: da.expand_dims(level=3, axis=1)), code=2),
    Case("dims-extra-number-1", change=t2m(lambda da: da.expand_dims(number=1)), code=2),
    Case("dims-unknown", change=t2m(lambda da: xr.DataArray(
        da.values, dims=("time", "y", "x"), attrs=da.attrs)), code=2),
    Case("dims-no-time", change=t2m(lambda da: da.isel(time=1, drop=True)), code=2),
    # dtypes
    Case("dtype-float64", change=t2m(lambda da: da.astype(np.float64)), ok=True),
    Case("dtype-float16", change=t2m(lambda da: da.astype(np.float16)), ok=True, atol=0.2),
    Case("dtype-int16-packed", change=t2m(pack_int16), ok=True, atol=6e-3),
    Case("dtype-int32", change=t2m(lambda da: da.round().astype(np.int32)), ok=True, atol=0.51),
    Case("dtype-latitude-float32", change=coord("latitude", lambda v: v.astype(np.float32)),
         ok=True),
    Case("dtype-latitude-text", change=coord("latitude", lambda v: v.astype(str))),
    # coordinates
    Case("latitude-nan", change=coord("latitude", _nan_at(3))),
    Case("longitude-inf", change=coord("longitude", _set(-1, np.inf))),
    Case("latitude-descending", change=lambda ds: ds.isel(latitude=slice(None, None, -1)),
         ok=True),
    Case("longitude-descending", change=lambda ds: ds.isel(longitude=slice(None, None, -1)),
         ok=True),
    Case("latitude-irregular", change=coord("latitude", _set(40, lambda v: v[40] + 0.1))),
    Case("longitude-irregular", change=coord("longitude", lambda v: v ** 1.01)),
    Case("latitude-shuffled", change=coord("latitude", _set(slice(10, 12),
                                                           lambda v: v[10:12][::-1]))),
    Case("latitude-beyond-pole", change=coord("latitude", lambda v: v + 60)),
    Case("time-duplicated", change=coord("time", _set(1, lambda v: v[0]))),
    Case("time-nat", change=coord("time", _set(0, np.datetime64("NaT")))),
    Case("time-one-step", change=lambda ds: ds.isel(time=slice(1, 2)), ok=True),  # chunk unwritten
    Case("time-descending", change=lambda ds: ds.isel(time=slice(None, None, -1)), ok=True),
    # values
    Case("value-nan", change=t2m(cell(np.nan))),
    Case("value-inf", change=t2m(cell(np.inf, (1, 100, 3)))),
    Case("value-huge", change=t2m(cell(1e30))),
    Case("value-zero-kelvin", change=t2m(cell(0.0))),
    Case("value-hot", change=t2m(cell(400.0))),
    Case("value-other-time-nan", change=t2m(cell(np.nan, (0, 5, 7))), ok=True),  # not read
    # empty stores
    Case("empty-no-variables", change=lambda ds: ds.drop_vars("t2m")),
    Case("empty-no-times", change=lambda ds: ds.isel(time=slice(0, 0))),
    Case("empty-no-latitudes", change=lambda ds: ds.isel(latitude=slice(0, 0))),
]
HTTP_CASES = [case for case in CASES if case.delete or case.damage]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return resize_model(tmp_path_factory.mktemp("model") / "nearest.onnx")


def obey_the_rule(case: Case, result, out) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{case.name}: {result.exception!r}")
    assert "Traceback" not in result.output
    if result.exit_code == 0:
        with rasterio.open(out) as cog:
            data, transform = cog.read(1), cog.transform
        assert np.all(np.isfinite(data)), case.name
        assert data.min() >= 150 and data.max() <= 350, case.name
        assert np.all(np.isfinite(list(transform))), case.name
        np.testing.assert_allclose(data, expected_cog(), rtol=0, atol=case.atol,
                                   err_msg=case.name)
    else:
        errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, result.output
        assert not out.exists()
    expected = 0 if case.ok else case.code
    assert result.exit_code == expected, f"{case.name}: {result.output}"


def run(model, source, out):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["--model", str(model), "--source", str(source), "--time", WHEN,
                               "--out", str(out), "--backend", "onnxruntime", "--quiet"])


@pytest.mark.filterwarnings("ignore:The data type")  # the text latitude case
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_store_on_disk(tmp_path, model, case):
    store = case.write(tmp_path / "s.zarr")
    obey_the_rule(case, run(model, store, tmp_path / "sr.tif"), tmp_path / "sr.tif")


@pytest.mark.parametrize("case", HTTP_CASES, ids=lambda c: c.name)
def test_store_over_http(tmp_path, model, serve, case):
    case.write(tmp_path / "edh" / "climate-dt-2" / "s.zarr", apply_faults=False)
    server = serve(tmp_path / "edh")
    server.faults.missing.update(f"s.zarr/{key}" for key in case.delete)
    server.faults.corrupt.update({f"s.zarr/{key}": how for key, how in case.damage.items()})
    result = run(model, f"{server.base_url}/s.zarr", tmp_path / "sr.tif")
    obey_the_rule(case, result, tmp_path / "sr.tif")
