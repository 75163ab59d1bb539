"""Every user mistake: one clear line, exit code 2, and no output file left behind."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sr_runtime.cli import app
from tests.conftest import resize_model, write_edh_store

runner = CliRunner()


def invoke(tmp_path, store, model, *extra: str, out_name: str = "sr.tif"):
    out = tmp_path / out_name
    args = ["--out", str(out), "--model", str(model), "--source", str(store), *extra]
    if "--time" not in extra:
        args += ["--time", "2024-10-11T02:00"]
    return runner.invoke(app, args), out


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.suffix in (".tif", ".part"))


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (("--time", "yesterday-ish"), "cannot parse time 'yesterday-ish'"),
        (("--time", "2024-12-01T00:00"), "outside the DataCube, which covers 2024-10-11T00:00 .."
                                         " 2024-10-11T05:00"),
        (("--time", "2024-10-11T02:30"), "pass --nearest"),
        (("--bbox", "100,10,110,20"), "contains no grid cell"),
        (("--bbox", "5,40"), "give W,S,E,N"),
        (("--bbox", "170,10,-170,20"), "antimeridian"),
        (("--units", "F"), "--units must be one of K, degC"),
        (("--backend", "warp-drive"), "unknown backend 'warp-drive'"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, edh_store, nearest_model, extra, needle):
    result, out = invoke(tmp_path, edh_store, nearest_model, *extra)
    assert result.exit_code == 2, result.output
    assert needle in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not out.exists() and leftovers(tmp_path) == []


def test_nearest_snaps_to_closest_step(tmp_path, edh_store, nearest_model):
    result, out = invoke(tmp_path, edh_store, nearest_model, "--time", "2024-10-11T02:40",
                         "--nearest")
    assert result.exit_code == 0, result.output
    import rasterio

    with rasterio.open(out) as cog:
        assert cog.tags()["valid_time"] == "2024-10-11T03:00:00Z"


def test_missing_variable(tmp_path, nearest_model):
    store = write_edh_store(tmp_path / "d2m.zarr", variables=("d2m",))
    result, out = invoke(tmp_path, store, nearest_model)
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "has no variable t2m" in message and "d2m" in message
    assert not out.exists()


def test_model_variables_not_in_source(tmp_path, edh_store):
    model = resize_model(tmp_path / "two.onnx", variables=("t2m", "u10"))
    result, out = invoke(tmp_path, edh_store, model)
    assert result.exit_code == 2
    assert "has no variable u10" in " ".join(result.output.split())
    assert not out.exists()


def test_model_trained_for_another_grid(tmp_path, edh_store):
    model = resize_model(tmp_path / "hr.onnx", lr_step_deg=0.043956)
    result, out = invoke(tmp_path, edh_store, model)
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "from a 0.0440 deg grid" in message and "0.3523 deg grid" in message
    assert not out.exists()


def test_existing_output_needs_overwrite(tmp_path, edh_store, nearest_model):
    out = tmp_path / "sr.tif"
    out.write_bytes(b"precious")
    result, _ = invoke(tmp_path, edh_store, nearest_model)
    assert result.exit_code == 2
    assert "already exists; pass --overwrite" in " ".join(result.output.split())
    assert out.read_bytes() == b"precious"
    result, _ = invoke(tmp_path, edh_store, nearest_model, "--overwrite")
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:4] in (b"II*\x00", b"MM\x00*")


def test_output_folder_missing(tmp_path, edh_store, nearest_model):
    result, out = invoke(tmp_path, edh_store, nearest_model, out_name="nowhere/sr.tif")
    assert result.exit_code == 2
    assert "does not exist; create it first" in " ".join(result.output.split())
    assert not (tmp_path / "nowhere").exists()


def test_source_not_found(tmp_path, nearest_model):
    result, out = invoke(tmp_path, tmp_path / "missing.zarr", nearest_model)
    assert result.exit_code == 1
    assert "DataCube not found" in " ".join(result.output.split())
    assert not out.exists()


def test_model_not_found(tmp_path, edh_store):
    result, out = invoke(tmp_path, edh_store, tmp_path / "nope.onnx")
    assert result.exit_code == 2
    assert "model not found" in " ".join(result.output.split())
    assert not out.exists()


def test_output_is_a_folder(tmp_path, edh_store, nearest_model):
    (tmp_path / "lr.tif").mkdir()
    result, out = invoke(tmp_path, edh_store, nearest_model, "--lr-out",
                         str(tmp_path / "lr.tif"), "--overwrite")
    assert result.exit_code == 2
    assert "is a folder" in " ".join(result.output.split())
    assert not out.exists()
