"""The HTTP API through a real uvicorn server on 127.0.0.1: valid COGs and tiles, the cache,
one inference for concurrent requests of one key, and 4xx/5xx answers as JSON."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install "
                    "'sr-edge[serve]'")
pytest.importorskip("rio_tiler", reason="the serve extra is not installed: pip install "
                    "'sr-edge[serve]'")

import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import morecantile
import numpy as np
import rasterio
import xarray as xr
from matplotlib import colormaps
from PIL import Image
from rio_cogeo.cogeo import cog_validate

from sr_runtime.defaults import sample_hr_store, sample_lr_store
from sr_runtime.serve.http import create_app
from sr_runtime.serve.server import serving
from tests.runtime.serve.conftest import WHEN, BrokenEngine, CountingEngine, sample_results


def get(url: str, path: str, **params: object) -> httpx.Response:
    return httpx.get(url + path, params=params, timeout=60)


def saved(tmp_path: Path, response: httpx.Response, name: str) -> Path:
    assert response.status_code == 200, response.text
    path = tmp_path / name
    path.write_bytes(response.content)
    return path


def test_sr_cog_is_a_valid_cog_close_to_hr_truth(server, tmp_path):
    url, _ = server
    response = get(url, "/cog/sr", time=WHEN)
    assert response.headers["content-type"].startswith("image/tiff")
    assert "t2m_sr_20241025T1200_K.tif" in response.headers["content-disposition"]
    path = saved(tmp_path, response, "sr.tif")
    is_valid, errors, _ = cog_validate(str(path))
    assert is_valid, errors
    with rasterio.open(path) as cog:
        data, tags = cog.read(1)[::-1], cog.tags()
        assert cog.dtypes[0] == "float32" and cog.crs.to_epsg() == 4326
        assert cog.shape == (256, 256)
    assert tags["units"] == "K" and tags["valid_time"] == "2024-10-25T12:00:00Z"
    truth = xr.open_zarr(sample_hr_store())["t2m"].sel(time=np.datetime64(WHEN, "ns"))
    # the SR grid pairs one to one with the HR grid (up to half an HR cell): compare cell-wise
    rmse = float(np.sqrt(np.mean((data - truth.values) ** 2)))
    assert rmse < 1.0  # the README's figure for the shipped model is 0.44 K on average


def test_each_variable_of_the_model_is_served_from_one_inference(shipped_model, tmp_path):
    """The default model predicts t2m and d2m: ?variable=d2m gets the dew point (close to its
    HR truth, at or below the temperature), from the inference that served t2m."""
    engine = CountingEngine(shipped_model.engine)
    with serving(create_app(sample_results(shipped_model, engine))) as url:
        assert get(url, "/times").json()["variables"] == ["t2m", "d2m"]
        t2m = get(url, "/cog/sr", time=WHEN)
        d2m = get(url, "/cog/sr", time=WHEN, variable="d2m")
        assert d2m.headers["x-variable"] == "d2m" and d2m.headers["x-cache"] == "hit"
        assert "d2m_sr_20241025T1200_K.tif" in d2m.headers["content-disposition"]
        assert engine.calls == 1
        fields = {}
        for name, response in (("t2m", t2m), ("d2m", d2m)):
            path = saved(tmp_path, response, f"{name}.tif")
            assert cog_validate(str(path))[0]
            with rasterio.open(path) as cog:
                fields[name] = cog.read(1)[::-1]
        truth = xr.open_zarr(sample_hr_store())["d2m"].sel(time=np.datetime64(WHEN, "ns"))
        assert float(np.sqrt(np.mean((fields["d2m"] - truth.values) ** 2))) < 1.0
        assert (fields["d2m"] <= fields["t2m"]).all()
        lr = saved(tmp_path, get(url, "/cog/lr", time=WHEN, variable="d2m"), "lr.tif")
        with rasterio.open(lr) as cog:
            source = xr.open_zarr(sample_lr_store())["d2m"].sel(time=np.datetime64(WHEN, "ns"))
            np.testing.assert_allclose(cog.read(1)[::-1], source.values, atol=1e-4)
        tiles = get(url, "/tilejson.json", time=WHEN, variable="d2m").json()["tiles"][0]
        assert "variable=d2m" in tiles
        tile = httpx.get(tiles.format(z=6, x=33, y=23), timeout=60)
        assert tile.status_code == 200 and tile.headers["x-variable"] == "d2m"
        assert engine.calls == 1
        wrong = get(url, "/cog/sr", time=WHEN, variable="u10")
        assert wrong.status_code == 400
        assert "variable must be one of the model's (t2m, d2m), not 'u10'" in (
            wrong.json()["error"])


def test_lr_cog_holds_the_source_values(server, tmp_path):
    url, _ = server
    path = saved(tmp_path, get(url, "/cog/lr", time=WHEN, units="degC"), "lr.tif")
    assert cog_validate(str(path))[0]
    lr = xr.open_zarr(sample_lr_store())["t2m"].sel(time=np.datetime64(WHEN, "ns")).values
    with rasterio.open(path) as cog:
        np.testing.assert_allclose(cog.read(1)[::-1], lr - 273.15, atol=1e-4)
        assert cog.tags()["units"] == "degC"


def test_rgb_cog_has_alpha_overviews_and_its_colour_scale(server, tmp_path):
    url, _ = server
    path = saved(tmp_path, get(url, "/cog/rgb", time=WHEN, vmin=270, vmax=300), "rgb.tif")
    is_valid, errors, _ = cog_validate(str(path))
    assert is_valid, errors
    sr = saved(tmp_path, get(url, "/cog/sr", time=WHEN), "sr.tif")
    with rasterio.open(path) as cog, rasterio.open(sr) as values:
        rgba, tags = cog.read(), cog.tags()
        assert cog.count == 4 and cog.dtypes[0] == "uint8" and cog.overviews(1)
        assert cog.colorinterp[3].name == "alpha"
        field = values.read(1)
    assert (float(tags["colour_min"]), float(tags["colour_max"])) == (270.0, 300.0)
    legend = json.loads(tags["colour_legend"])
    assert legend[0][0] == 270.0 and legend[-1][0] == 300.0
    # colours are the named matplotlib map applied to the values on that scale
    expected = colormaps[tags["colour_map"]]((np.clip(field, 270, 300) - 270) / 30)
    diff = np.abs(rgba[:3].transpose(1, 2, 0).astype(int) - np.round(expected[..., :3] * 255))
    assert np.percentile(diff, 99) <= 3  # 256-entry lookup table
    assert (rgba[3] == 255).all()


def test_tiles_decode_as_png_and_outside_the_field_is_404(server):
    url, results = server
    tms = morecantile.tms.get("WebMercatorQuad")
    inside = tms.tile(10.7, 44.0, 6)
    response = get(url, f"/tiles/{inside.z}/{inside.x}/{inside.y}.png", time=WHEN)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    image = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGBA"))
    assert image.shape == (256, 256, 4) and (image[..., 3] == 255).mean() > 0.9
    # a tile across the field's west edge (5.1 E) is partly transparent
    edge = tms.tile(5.0, 44.0, 6)
    image = np.asarray(Image.open(io.BytesIO(get(
        url, f"/tiles/{edge.z}/{edge.x}/{edge.y}.png", time=WHEN).content)).convert("RGBA"))
    assert 0 < (image[..., 3] == 0).mean() < 1
    far = tms.tile(-60.0, -30.0, 6)
    response = get(url, f"/tiles/{far.z}/{far.x}/{far.y}.png", time=WHEN)
    assert response.status_code == 404 and "outside the field" in response.json()["error"]
    tilejson = get(url, "/tilejson.json", time=WHEN).json()
    assert tilejson["tiles"][0].startswith(url + "/tiles/{z}/{x}/{y}.png?")
    assert tilejson["bounds"][0] == pytest.approx(results.grid_box().west, abs=1e-3)


def test_a_repeat_request_is_served_from_the_cache(server):
    url, results = server
    assert get(url, "/health").json()["inferences"] == 0
    first = get(url, "/cog/sr", time=WHEN)
    again = get(url, "/cog/sr", time=WHEN)
    lr = get(url, "/cog/lr", time=WHEN)  # same result, other product
    assert (first.headers["x-cache"], again.headers["x-cache"], lr.headers["x-cache"]) == (
        "miss", "hit", "hit")
    assert first.content == again.content
    assert get(url, "/health").json()["inferences"] == 1
    # a box selecting the same cells is the same key; other units are another one
    box = results.grid_box()
    same = get(url, "/cog/sr", time=WHEN, bbox=f"{box.west - 0.1},{box.south - 0.1},"
               f"{box.east + 0.1},{box.north + 0.1}")
    assert same.headers["x-cache"] == "hit"
    assert get(url, "/cog/sr", time=WHEN, units="degC").headers["x-cache"] == "miss"
    assert get(url, "/health").json()["inferences"] == 2


def test_concurrent_requests_for_one_key_run_the_engine_once(shipped_model):
    engine = CountingEngine(shipped_model.engine, delay=0.5)
    with serving(create_app(sample_results(shipped_model, engine))) as url:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: get(url, "/cog/sr", time=WHEN), range(8)))
        assert [a.status_code for a in answers] == [200] * 8
        assert len({a.content for a in answers}) == 1
        assert engine.calls == 1
        assert sorted(a.headers["x-cache"] for a in answers) == ["hit"] * 7 + ["miss"]
        assert get(url, "/health").json()["inferences"] == 1


@pytest.mark.parametrize(("path", "params", "status", "needle"), [
    ("/cog/sr", {"time": "2025-01-01T00:00"}, 404, "outside the DataCube"),
    ("/cog/sr", {"time": "2024-10-11T12:30"}, 404, "not a step"),
    ("/cog/sr", {"time": "yesterday-ish"}, 400, "cannot parse time"),
    ("/cog/rgb", {"time": WHEN, "bbox": "100,10,110,20"}, 404, "contains no grid cell"),
    ("/cog/lr", {"time": WHEN, "bbox": "1,2,3"}, 400, "W,S,E,N"),
    ("/cog/sr", {"time": WHEN, "bbox": "10.0,45.0,10.3,45.3"}, 400, "at least 2 x 2"),
    ("/cog/sr", {"time": WHEN, "units": "F"}, 422, "units"),
    ("/cog/sr", {}, 422, "time"),
    ("/cog/rgb", {"time": WHEN, "vmin": 300, "vmax": 270}, 400, "vmin < vmax"),
    ("/cog/rgb", {"time": WHEN, "colour_map": "nope"}, 400, "unknown colour map"),
    ("/tiles/30/0/0.png", {"time": WHEN}, 400, "does not exist"),
    ("/tiles/a/b/c.png", {"time": WHEN}, 422, "path.z"),
    ("/no/such/route", {}, 404, "Not Found"),
])
def test_bad_requests_get_json_with_a_4xx_status(server, path, params, status, needle):
    url, _ = server
    response = get(url, path, **params)
    assert response.status_code == status, response.text
    body = response.json()
    assert needle in body["error"] and body["status"] == status
    assert "Traceback" not in response.text


@pytest.mark.parametrize(("mode", "needle"), [("nan", "non-finite"),
                                             ("raise", "RuntimeError: the accelerator")])
def test_a_failed_run_is_json_500_and_not_cached(shipped_model, mode, needle):
    engine = BrokenEngine(shipped_model.engine, mode)
    with serving(create_app(sample_results(shipped_model, engine))) as url:
        for attempt in (1, 2):
            response = get(url, "/cog/sr", time=WHEN)
            assert response.status_code == 500
            assert needle in response.json()["error"] and "Traceback" not in response.text
            assert engine.calls == attempt  # a failure is not served from the cache


def test_times_health_and_docs(server):
    url, results = server
    times = get(url, "/times").json()
    assert len(times["times"]) == 744 and times["times"][0] == "2024-10-01T00:00"
    assert WHEN in times["truth_times"] and "2024-10-01T00:00" not in times["truth_times"]
    box = results.grid_box()
    assert times["bbox"] == [box.west, box.south, box.east, box.north]
    health = get(url, "/health").json()
    assert health["status"] == "ok" and health["backend"] == "onnxruntime"
    assert len(health["model_sha256"]) == 64
    assert "swagger" in get(url, "/docs").text.lower()
    paths = get(url, "/openapi.json").json()["paths"]
    assert {"/cog/sr", "/cog/lr", "/cog/rgb", "/tiles/{z}/{x}/{y}.png", "/times",
            "/health"} <= set(paths)


def test_generated_files_are_deleted(results):
    app = create_app(results)
    with serving(app) as url:
        folder = app.state.service.folder
        assert folder is not None and folder.is_dir()
        for kind in ("sr", "lr", "rgb"):
            assert get(url, f"/cog/{kind}", time=WHEN).status_code == 200
        assert list(folder.rglob("*")) == []  # written, read into the answer, deleted
    assert not folder.exists()
