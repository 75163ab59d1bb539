"""Real inputs as a new user meets them: every broken store is one clear line (no traceback) and
leaves no file; nothing wrong is ever written with exit 0. Stores are real Zarr v3 stores in the
Earth Data Hub layout (tests/runtime/sources/stores.py), read from disk or through the local HTTP
server with faults injected (404 for chosen keys, damaged bodies with status 200)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import xarray as xr
from typer.testing import CliRunner

from sr_runtime.cli import app
from sr_runtime.errors import AuthError, TimeSelectionError
from sr_runtime.sources.edh import EdhSource
from sr_runtime.times import parse_time
from tests.conftest import EDH_LR_LAT, EDH_LR_LON, analytic_t2m, resize_model
from tests.runtime.sources.conftest import LR_NAME
from tests.runtime.sources.stores import (
    LAT_SLICE,
    LATITUDE,
    LON_SLICE,
    LONGITUDE,
    T2M_NORTH,
    TIME,
    WHEN,
    edh_dataset,
    write_store,
)

runner = CliRunner()
LAT, LON = EDH_LR_LAT[LAT_SLICE], EDH_LR_LON[LON_SLICE]
DLAT, DLON = 180 / 511, 360 / 1024
CELLS = LAT.size * LON.size  # 128 x 64 LR cells in the window, 64 x 64 in a chunk


def expected_cog(lat: np.ndarray = LAT, lon: np.ndarray = LON) -> np.ndarray:
    """What the nearest-Resize model must give at WHEN (hour 1), north-up as in a COG."""
    lr = analytic_t2m(np.array([1.0]), lat, lon)[0]
    return np.repeat(np.repeat(lr, 8, axis=0), 8, axis=1)[::-1]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return resize_model(tmp_path_factory.mktemp("model") / "nearest.onnx")


def sr_run(model, source, out, *extra: str, when: str | None = WHEN):
    args = ["--model", str(model), "--source", str(source), "--out", str(out),
            "--backend", "onnxruntime"]
    return runner.invoke(app, [*args, *(["--time", when] if when else []), *extra])


def refused(result, out, code: int, *needles: str) -> str:
    """Exit ``code``, one last line ``error: ...`` holding every needle (and no other error
    line), no traceback, and nothing at ``out`` nor any temporary beside it."""
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert "Traceback" not in result.output
    assert [line for line in lines if "error" in line.lower()] == lines[-1:], result.output
    assert lines[-1].startswith("error: "), result.output
    for needle in needles:
        assert needle in lines[-1], lines[-1]
    assert result.exit_code == code, result.output
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if ".part" in p.name]
    return lines[-1]


def written(result, out) -> tuple[np.ndarray, object]:
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as cog:
        return cog.read(1), cog.transform


def assert_whole_result(result, out, atol: float = 1e-3) -> None:
    data, transform = written(result, out)
    np.testing.assert_allclose(data, expected_cog(), rtol=0, atol=atol)
    assert np.allclose([transform.c, transform.f, transform.a, transform.e],
                       [LON[0] - DLON / 2, LAT[-1] + DLAT / 2, DLON / 8, -DLAT / 8])


def with_t2m(ds: xr.Dataset, da: xr.DataArray) -> xr.Dataset:
    return ds.drop_vars("t2m").assign(t2m=da)


# ---------------------------------------------------------------- no traceback
@pytest.mark.parametrize(("dim", "size"), [("level", 2), ("number", 1)])
def test_extra_dimension_is_one_clear_line(tmp_path, model, dim, size):
    ds = edh_dataset()
    t2m = ds.t2m.expand_dims({dim: size}, axis=1)
    store = write_store(tmp_path / "s.zarr", with_t2m(ds, t2m))
    result = sr_run(model, store, tmp_path / "sr.tif")
    refused(result, tmp_path / "sr.tif", 2, f"t2m has dims (time, {dim}, latitude, longitude)",
            f"select one {dim} ({dim}={size})")


@pytest.mark.parametrize("how", ["garbage", "truncate"])
def test_damaged_chunk_on_the_server(tmp_path, model, serve, how):
    write_store(tmp_path / "edh" / "climate-dt-2" / "s.zarr")
    server = serve(tmp_path / "edh")
    server.faults.corrupt[T2M_NORTH] = how
    result = sr_run(model, f"{server.base_url}/s.zarr", tmp_path / "sr.tif")
    refused(result, tmp_path / "sr.tif", 1, f"chunk {T2M_NORTH} of t2m at {WHEN}",
            "cannot be decoded", "the data on the server is damaged")
    assert (f"/climate-dt-2/s.zarr/{T2M_NORTH}", 200) in server.served


@pytest.mark.parametrize("how", ["garbage", "truncate"])
def test_damaged_chunk_on_disk(tmp_path, model, how):
    from tests.runtime.sources.stores import damage

    store = write_store(tmp_path / "s.zarr")
    (store / T2M_NORTH).write_bytes(damage((store / T2M_NORTH).read_bytes(), how))
    result = sr_run(model, store, tmp_path / "sr.tif")
    refused(result, tmp_path / "sr.tif", 1, f"chunk {T2M_NORTH} of t2m",
            "the data in the store is damaged")


def test_damaged_coordinate_chunk_on_the_server(tmp_path, model, serve):
    write_store(tmp_path / "edh" / "climate-dt-2" / "s.zarr")
    server = serve(tmp_path / "edh")
    server.faults.corrupt[LATITUDE] = "garbage"
    result = sr_run(model, f"{server.base_url}/s.zarr", tmp_path / "sr.tif")
    refused(result, tmp_path / "sr.tif", 1, "the store's latitude could not be read",
            f"chunk {LATITUDE} cannot be decoded", "the data on the server is damaged")


# ---------------------------------------------------------------- missing coordinates
@pytest.mark.parametrize("out_name", ["sr.tif", "sr.zarr"])
@pytest.mark.parametrize(("key", "name"), [(LATITUDE, "latitude"), (LONGITUDE, "longitude"),
                                           (TIME, "time")])
def test_coordinate_404_names_the_key(tmp_path, model, serve, key, name, out_name):
    """A 404 on a coordinate chunk used to give NaN georeferencing (latitude), 'a single
    longitude cell' (longitude) or 'outside the DataCube' (time)."""
    write_store(tmp_path / "edh" / "climate-dt-2" / LR_NAME)
    server = serve(tmp_path / "edh")
    server.faults.missing.add(key)
    out = tmp_path / out_name
    result = runner.invoke(app, ["--source", "edh", "--edh-url", server.base_url, "--model",
                                 str(model), "--time", WHEN, "--out", str(out)])
    line = refused(result, out, 1,
                   f"the store's {name} coordinate could not be read (HTTP 404 on {key})")
    assert "outside the DataCube" not in line and "single" not in line
    assert (f"/climate-dt-2/{LR_NAME}/{key}", 404) in server.served


@pytest.mark.parametrize(("key", "name"), [(LATITUDE, "latitude"), (LONGITUDE, "longitude"),
                                           (TIME, "time")])
def test_deleted_coordinate_chunk(tmp_path, model, key, name):
    store = write_store(tmp_path / "s.zarr")
    (store / key).unlink()
    result = sr_run(model, store, tmp_path / "sr.tif")
    refused(result, tmp_path / "sr.tif", 1, f"the store's {name} coordinate could not be read "
            f"(no file {key} in the store)")


@pytest.mark.parametrize(("values", "needle"), [
    ([np.nan], "1 of 128 latitude values are not finite"),
    ([LAT[5] + 0.3 * DLAT], "the latitude coordinate is not a regular grid"),
    ([LAT[6]], "the latitude coordinate is not strictly monotonic"),
])
def test_bad_latitude_values(tmp_path, model, values, needle):
    ds = edh_dataset()
    lat = ds.latitude.values.copy()
    lat[5] = values[0]
    store = write_store(tmp_path / "s.zarr", ds.assign_coords(latitude=lat))
    refused(sr_run(model, store, tmp_path / "sr.tif"), tmp_path / "sr.tif", 1, needle)


def test_float32_latitude_of_the_real_grid_is_regular(tmp_path, model):
    ds = edh_dataset()
    store = write_store(tmp_path / "s.zarr",
                        ds.assign_coords(latitude=ds.latitude.values.astype(np.float32)))
    data, _ = written(sr_run(model, store, tmp_path / "sr.tif"), tmp_path / "sr.tif")
    np.testing.assert_allclose(data, expected_cog(), atol=1e-3)


def test_descending_latitude_is_flipped(tmp_path, model):
    store = write_store(tmp_path / "s.zarr", edh_dataset().isel(latitude=slice(None, None, -1)))
    assert_whole_result(sr_run(model, store, tmp_path / "sr.tif"), tmp_path / "sr.tif")


# ---------------------------------------------------------------- missing data
@pytest.mark.parametrize("over_http", [True, False])
def test_fill_value_zero_and_a_missing_chunk(tmp_path, model, serve, over_http):
    """Used to write 0 K over half the map (exit 0)."""
    store = write_store(tmp_path / "edh" / "climate-dt-2" / "s.zarr", fill=0.0)
    if over_http:
        server = serve(tmp_path / "edh")
        server.faults.missing.add(T2M_NORTH)
        source, why = f"{server.base_url}/s.zarr", f"HTTP 404 on {T2M_NORTH}"
    else:
        (store / T2M_NORTH).unlink()
        source, why = store, f"no file {T2M_NORTH} in the store"
    refused(sr_run(model, source, tmp_path / "sr.tif"), tmp_path / "sr.tif", 1,
            f"{CELLS // 2} of {CELLS} t2m values at {WHEN} are outside the plausible range "
            "150..350 K", f"t2m has missing chunks ({why}), read back as the fill value 0")


def test_missing_chunk_with_nan_fill_cites_the_404(tmp_path, model, serve):
    write_store(tmp_path / "edh" / "climate-dt-2" / "s.zarr")
    server = serve(tmp_path / "edh")
    server.faults.missing.add(T2M_NORTH)
    refused(sr_run(model, f"{server.base_url}/s.zarr", tmp_path / "sr.tif"),
            tmp_path / "sr.tif", 1, f"{CELLS // 2} of {CELLS} t2m values at {WHEN} are missing "
            f"(NaN)", f"missing chunks (HTTP 404 on {T2M_NORTH})")


def test_missing_chunk_with_a_plausible_fill_value_is_refused(tmp_path, model):
    """A fill value of 280 K would look like data: the absent chunk itself is the reason."""
    store = write_store(tmp_path / "s.zarr", fill=280.0)
    (store / T2M_NORTH).unlink()
    refused(sr_run(model, store, tmp_path / "sr.tif"), tmp_path / "sr.tif", 1,
            f"t2m has missing chunks (no file {T2M_NORTH} in the store)", "fill value 280")


def test_missing_chunk_outside_the_region_is_not_needed(tmp_path, model):
    store = write_store(tmp_path / "s.zarr")
    (store / T2M_NORTH).unlink()  # latitude rows 64..127 of the window: north of 44.9 N
    out = tmp_path / "sr.tif"
    south = f"{LON[0]},{LAT[0]},{LON[-1]},{LAT[63]}"
    data, _ = written(sr_run(model, store, out, "--bbox", south), out)
    np.testing.assert_array_equal(data, expected_cog(LAT[:64], LON))


def test_values_outside_the_physical_range(tmp_path, model):
    """Celsius numbers labelled K: every cell is refused, with the count."""
    ds = edh_dataset()
    store = write_store(tmp_path / "s.zarr", ds.assign(t2m=ds.t2m - 273.15))
    refused(sr_run(model, store, tmp_path / "sr.tif"), tmp_path / "sr.tif", 1,
            f"{CELLS} of {CELLS} t2m values at {WHEN} are outside the plausible range 150..350 K",
            "check the units attribute of t2m")


def test_failed_run_leaves_an_existing_output_unchanged(tmp_path, model):
    out = tmp_path / "sr.tif"
    good = write_store(tmp_path / "good.zarr")
    assert sr_run(model, good, out).exit_code == 0
    before = out.read_bytes()
    broken = write_store(tmp_path / "s.zarr", fill=0.0)
    (broken / T2M_NORTH).unlink()
    result = sr_run(model, broken, out, "--overwrite")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert out.read_bytes() == before


# ---------------------------------------------------------------- units
@pytest.mark.parametrize(("units", "to_source"), [
    ("degC", lambda k: k - 273.15), ("deg_C", lambda k: k - 273.15),
    ("°C", lambda k: k - 273.15), ("Celsius", lambda k: k - 273.15),
    ("degF", lambda k: (k - 273.15) * 9 / 5 + 32), ("kelvin", lambda k: k),
])
def test_source_units_are_converted(tmp_path, model, units, to_source):
    """A degC store used to give values 273 K too low (exit 0)."""
    ds = edh_dataset()
    t2m = to_source(ds.t2m.astype(np.float64)).astype(np.float32)
    store = write_store(tmp_path / "s.zarr", ds.assign(t2m=t2m.assign_attrs(units=units)))
    assert_whole_result(sr_run(model, store, tmp_path / "sr.tif"), tmp_path / "sr.tif",
                        atol=2e-3)


def test_unknown_units_are_refused_with_the_known_ones(tmp_path, model):
    ds = edh_dataset()
    store = write_store(tmp_path / "s.zarr", ds.assign(t2m=ds.t2m.assign_attrs(units="degR")))
    refused(sr_run(model, store, tmp_path / "sr.tif"), tmp_path / "sr.tif", 2,
            "t2m is in 'degR'", "known units: K, kelvin, degC, deg_C")


def test_missing_units_are_refused(tmp_path, model):
    ds = edh_dataset()
    t2m = ds.t2m.copy()
    del t2m.attrs["units"]
    store = write_store(tmp_path / "s.zarr", ds.assign(t2m=t2m))
    refused(sr_run(model, store, tmp_path / "sr.tif"), tmp_path / "sr.tif", 2,
            "t2m has no units attribute", "units'] = 'K'")


# ---------------------------------------------------------------- dimension order
@pytest.mark.parametrize("order", [("time", "longitude", "latitude"),
                                   ("latitude", "longitude", "time")])
def test_dimensions_are_ordered_by_name(tmp_path, model, order):
    """(time, longitude, latitude) used to be read transposed (exit 0, 33 K off)."""
    ds = edh_dataset()
    store = write_store(tmp_path / "s.zarr", with_t2m(ds, ds.t2m.transpose(*order)))
    assert_whole_result(sr_run(model, store, tmp_path / "sr.tif"), tmp_path / "sr.tif")


def test_lat_lon_aliases(tmp_path, model):
    store = write_store(tmp_path / "s.zarr", edh_dataset().rename(latitude="lat",
                                                                  longitude="lon"),
                        chunks={"lat": 64, "lon": 64})
    assert_whole_result(sr_run(model, store, tmp_path / "sr.tif"), tmp_path / "sr.tif")


def test_unknown_dimensions_are_refused(tmp_path, model):
    ds = edh_dataset()
    t2m = xr.DataArray(ds.t2m.values, dims=("time", "y", "x"), attrs=ds.t2m.attrs)
    store = write_store(tmp_path / "s.zarr", ds.assign(t2m=t2m))
    refused(sr_run(model, store, tmp_path / "sr.tif"), tmp_path / "sr.tif", 2,
            "t2m has dims (time, y, x)", "rename the dimensions")


# ---------------------------------------------------------------- times
@pytest.mark.parametrize("text", ["11/10/2024", "10/11/2024 01:00", "11.10.2024", "20241011T01",
                                  "Oct 11 2024"])
def test_only_iso_times(tmp_path, model, text):
    """'11/10/2024' used to be read as 10 November."""
    store = write_store(tmp_path / "s.zarr")
    refused(sr_run(model, store, tmp_path / "sr.tif", when=text), tmp_path / "sr.tif", 2,
            f"cannot parse time {text!r}", "ISO 8601 only", "2024-10-11T12:00")


@pytest.mark.parametrize("text", ["2024-10-11T01", "2024-10-11T01:00", "2024-10-11T01:00Z",
                                  "2024-10-11T01:00:00", "2024-10-11 01:00",
                                  "2024-10-11T03:00+02:00"])
def test_iso_forms(text):
    assert parse_time(text) == np.datetime64("2024-10-11T01:00", "ns")


def test_iso_date_alone_is_midnight():
    assert parse_time("2024-10-11") == np.datetime64("2024-10-11T00:00", "ns")
    with pytest.raises(TimeSelectionError, match="no such date"):
        parse_time("2024-02-30T00")


# ---------------------------------------------------------------- what was used
def test_nearest_says_which_time(tmp_path, model):
    store = write_store(tmp_path / "s.zarr")
    result = sr_run(model, store, tmp_path / "sr.tif", "--nearest", when="2024-10-11T00:40")
    assert result.exit_code == 0, result.output
    assert "time 2024-10-11T01:00 (nearest to 2024-10-11T00:40)" in result.output
    with rasterio.open(tmp_path / "sr.tif") as cog:
        np.testing.assert_array_equal(cog.read(1), expected_cog())
    quiet = sr_run(model, store, tmp_path / "q.tif", "--nearest", "--quiet",
                   when="2024-10-11T00:40")
    assert quiet.exit_code == 0 and quiet.output == ""


def test_nearest_range_says_how_many_were_snapped(tmp_path, model):
    store = write_store(tmp_path / "s.zarr")
    result = sr_run(model, store, tmp_path / "sr.zarr", "--nearest", "--start",
                    "2024-10-11T00:10", "--end", "2024-10-11T00:50", "--every", "40min",
                    when=None)
    assert result.exit_code == 0, result.output
    assert ("times 2024-10-11T00:00 .. 2024-10-11T01:00 (2 steps; 2 of 2 requested times "
            "snapped to the nearest step)") in result.output


def _bounds(path) -> str:
    with rasterio.open(path) as cog:
        b = cog.bounds
    return ",".join(f"{round(v, 4):g}" for v in (b.left, b.bottom, b.right, b.top))


@pytest.mark.parametrize(("bbox", "why"), [
    ("5,30,16.3,50", "snapped to the cells whose centres lie in --bbox 5,30,16.3,50"),
    ("-10,10,10,80", "clipped to the grid"),
])
def test_bbox_says_which_region(tmp_path, model, bbox, why):
    store = write_store(tmp_path / "s.zarr")
    out = tmp_path / "sr.tif"
    result = sr_run(model, store, out, "--bbox", bbox)
    assert result.exit_code == 0, result.output
    assert f"region {_bounds(out)} ({why})" in result.output, result.output


def test_bbox_on_cell_edges_needs_no_note(tmp_path, model):
    store = write_store(tmp_path / "s.zarr")
    out = tmp_path / "sr.tif"
    edges = [LON[2] - DLON / 2, LAT[3] - DLAT / 2, LON[40] + DLON / 2, LAT[90] + DLAT / 2]
    result = sr_run(model, store, out, "--bbox", ",".join(f"{v:.10f}" for v in edges))
    assert result.exit_code == 0, result.output
    assert "region" not in result.output
    assert np.allclose([float(v) for v in _bounds(out).split(",")], edges, atol=1e-4)


# ---------------------------------------------------------------- messages that mislead
def test_netrc_hint_names_the_host_the_lookup_uses(serve, tmp_path, monkeypatch, model):
    server = serve(tmp_path / "edh")
    monkeypatch.delenv("EDH_API_KEY")
    port = server.httpd.server_address[1]
    with pytest.raises(AuthError) as error:
        EdhSource(base_url=server.base_url).open()
    assert "'machine 127.0.0.1 password edh_key_...'" in str(error.value)
    assert f"machine 127.0.0.1:{port}" not in str(error.value)
    out = tmp_path / "sr.tif"
    result = runner.invoke(app, ["--source", "edh", "--edh-url", server.base_url, "--model",
                                 str(model), "--time", WHEN, "--out", str(out)])
    refused(result, out, 1, "no Earth Data Hub API key", "'machine 127.0.0.1 password")


def test_unreadable_store_metadata_on_disk(tmp_path, model):
    store = write_store(tmp_path / "s.zarr")
    (store / "zarr.json").write_bytes(b"\x00\x01 not json")
    refused(sr_run(model, store, tmp_path / "sr.tif"), tmp_path / "sr.tif", 1,
            f"cannot read {store} as a Zarr store", "its metadata is damaged")


def test_unreadable_store_metadata_on_the_server(tmp_path, model, serve):
    write_store(tmp_path / "edh" / "climate-dt-2" / "s.zarr")
    server = serve(tmp_path / "edh")
    server.faults.corrupt["s.zarr/zarr.json"] = "garbage"
    refused(sr_run(model, f"{server.base_url}/s.zarr", tmp_path / "sr.tif"),
            tmp_path / "sr.tif", 1, "as a Zarr store", "its metadata is damaged")


def test_a_file_is_not_a_store(tmp_path, model):
    path = tmp_path / "t2m.nc"
    path.write_bytes(b"CDF\x01")
    refused(sr_run(model, path, tmp_path / "sr.tif"), tmp_path / "sr.tif", 1,
            "is a file, not a Zarr store")
