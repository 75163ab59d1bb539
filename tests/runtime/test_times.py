"""--start/--end/--every: exact steps by default, --nearest to snap, errors show the range."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from sr_runtime.cli import app
from sr_runtime.errors import TimeSelectionError, UsageError
from sr_runtime.times import parse_every, select_range

runner = CliRunner()
TIMES = np.datetime64("2024-10-11T00", "ns") + np.arange(6) * np.timedelta64(1, "h")


def t(text: str) -> np.datetime64:
    return np.datetime64(text, "ns")


def test_exact_range():
    assert select_range(TIMES, t("2024-10-11T01"), t("2024-10-11T05"), parse_every("2h")) == [
        1, 3, 5]
    assert select_range(TIMES, t("2024-10-11T00"), t("2024-10-11T05"), parse_every("1h")) == list(
        range(6))


def test_off_grid_needs_nearest():
    with pytest.raises(TimeSelectionError, match="pass --nearest"):
        select_range(TIMES, t("2024-10-11T00:30"), t("2024-10-11T03"), parse_every("1h"))
    assert select_range(TIMES, t("2024-10-11T00:20"), t("2024-10-11T03"), parse_every("40min"),
                        nearest=True) == [0, 1, 2, 3]


@pytest.mark.parametrize(("start", "end"), [("2024-10-10T22", "2024-10-11T02"),
                                            ("2024-10-11T02", "2024-10-12T00")])
def test_outside_the_cube_shows_the_range(start, end):
    with pytest.raises(TimeSelectionError, match=r"covers 2024-10-11T00:00 \.\. "
                                                 r"2024-10-11T05:00 every 0 days 01:00:00"):
        select_range(TIMES, t(start), t(end), parse_every("1h"))


def test_bad_every_and_reversed_range():
    with pytest.raises(TimeSelectionError, match="cannot parse --every"):
        parse_every("often")
    with pytest.raises(TimeSelectionError, match="must be positive"):
        parse_every("-1h")
    with pytest.raises(TimeSelectionError, match="is before --start"):
        select_range(TIMES, t("2024-10-11T03"), t("2024-10-11T01"), parse_every("1h"))


def test_cli_range_to_templated_cogs(tmp_path, edh_store, nearest_model):
    template = str(tmp_path / "sr_{time:%Y%m%dT%H}.tif")
    result = runner.invoke(app, ["--start", "2024-10-11T01:00", "--end", "2024-10-11T04:00",
                                 "--every", "3h", "--out", template, "--model",
                                 str(nearest_model), "--source", str(edh_store)])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in tmp_path.glob("sr_*.tif"))
    assert names == ["sr_20241011T01.tif", "sr_20241011T04.tif"]
    with rasterio.open(tmp_path / "sr_20241011T04.tif") as cog:
        assert cog.tags()["valid_time"] == "2024-10-11T04:00:00Z"


@pytest.mark.parametrize(("args", "needle"), [
    (["--start", "2024-10-11T01:00"], "give --time for one step, or --start and --end"),
    (["--time", "2024-10-11T01:00", "--start", "2024-10-11T01:00", "--end", "2024-10-11T02:00"],
     "either --time or --start/--end"),
    (["--start", "2024-10-11T01:00", "--end", "2024-10-11T09:00"], "outside the DataCube"),
])
def test_cli_range_errors(tmp_path, edh_store, nearest_model, args, needle):
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "sr_{time:%H}.tif"),
                                 "--model", str(nearest_model), "--source", str(edh_store)])
    assert result.exit_code == 2, result.output
    assert needle in " ".join(result.output.split())
    assert list(tmp_path.glob("*.tif")) == []


def test_one_name_for_many_steps_is_refused(tmp_path, edh_store, nearest_model):
    result = runner.invoke(app, ["--start", "2024-10-11T01:00", "--end", "2024-10-11T02:00",
                                 "--out", str(tmp_path / "sr.tif"), "--model",
                                 str(nearest_model), "--source", str(edh_store)])
    assert result.exit_code == 2
    assert "need one output each" in " ".join(result.output.split())
    with pytest.raises(UsageError, match="same file name"):
        from sr_runtime.sinks.templates import render_all

        render_all("sr_{time:%Y}.tif", TIMES)
