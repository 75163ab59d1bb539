"""`sr-run` without --model runs the default model (t2m and d2m with static orog/lsm and clock
inputs): on the embedded sample it writes both variables; on a source it cannot run on (no d2m,
no high-resolution store beside it) it refuses in one line that names the LR-only model, which
then runs there."""

from __future__ import annotations

import rasterio
from rio_cogeo.cogeo import cog_validate
from typer.testing import CliRunner

from sr_runtime.cli import app
from sr_runtime.defaults import DEFAULT_MODEL, LR_ONLY_MODEL
from tests.conftest import assert_one_line_error, write_edh_store

runner = CliRunner()
WHEN = "2024-10-11T02:00"


def sr(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def test_default_run_on_the_sample_writes_both_variables(tmp_path):
    out = tmp_path / "sr.tif"
    result = sr("--time", "2024-10-11T12:00", "--out", out)
    assert result.exit_code == 0, result.output
    assert f"using the default model {DEFAULT_MODEL.name}" in result.output
    assert "static HR fields orog, lsm from the embedded sample's high-maps store" in (
        result.output)
    assert cog_validate(str(out))[0]
    with rasterio.open(out) as written:
        assert written.count == 2 and written.descriptions == ("t2m", "d2m")
        assert written.units == ("K", "K")
        t2m, d2m = written.read()
    assert t2m.min() > 230 and t2m.max() < 320
    assert (d2m <= t2m).all()  # the graph caps the dew point at the temperature


def test_a_t2m_only_source_names_the_lr_only_model(tmp_path):
    cube = write_edh_store(tmp_path / "cube.zarr")  # t2m only
    out = tmp_path / "sr.tif"
    message = assert_one_line_error(sr("--source", cube, "--time", WHEN, "--out", out,
                                       "--quiet"), 2)
    assert "has no variable d2m" in message
    assert f"or run the LR-only t2m model, which needs neither d2m nor static fields: --model " \
           f"{LR_ONLY_MODEL}" in message
    assert not out.exists() and list(tmp_path.iterdir()) == [cube]

    ran = sr("--source", cube, "--time", WHEN, "--out", out, "--model", LR_ONLY_MODEL, "--quiet")
    assert ran.exit_code == 0, ran.output
    with rasterio.open(out) as written:
        assert written.count == 1 and written.descriptions == ("t2m",)


def test_a_source_without_a_high_resolution_store_names_the_lr_only_model(tmp_path):
    cube = write_edh_store(tmp_path / "cube.zarr", variables=("t2m", "d2m"))
    message = assert_one_line_error(sr("--source", cube, "--time", WHEN, "--out",
                                       tmp_path / "sr.tif", "--quiet"), 2)
    assert "has no companion high-resolution store" in message
    assert "pass --static STORE" in message and f"--model {LR_ONLY_MODEL}" in message


def test_an_explicit_model_gets_no_hint_about_another(tmp_path):
    cube = write_edh_store(tmp_path / "cube.zarr")
    message = assert_one_line_error(sr("--source", cube, "--time", WHEN, "--out",
                                       tmp_path / "sr.tif", "--model", DEFAULT_MODEL,
                                       "--quiet"), 2)
    assert "has no variable d2m" in message and "LR-only" not in message


def test_the_service_and_the_app_give_the_same_hint(tmp_path):
    """open_results (sr-serve, sr-app) without a model on a t2m-only source."""
    import pytest

    from sr_runtime.errors import UsageError
    from sr_runtime.results import open_results

    cube = write_edh_store(tmp_path / "cube.zarr")
    with pytest.raises(UsageError, match=f"or run the LR-only t2m model.*--model {LR_ONLY_MODEL}"):
        open_results(str(cube))
    results = open_results(str(cube), LR_ONLY_MODEL)
    try:
        assert list(results.variables) == ["t2m"]
    finally:
        results.model.close()
