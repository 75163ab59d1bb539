"""What the page offers, without a browser: the cube's times (HR truth marked), region presets
on the grid, one opened choice shared, session folders removed at the end."""

from __future__ import annotations

import pytest

from sr_runtime.app.workbench import WHOLE_GRID, Choice, Workbench
from sr_runtime.errors import RegionError, UsageError
from sr_runtime.grid import BBox


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    bench = Workbench(Choice(), folder=tmp_path_factory.mktemp("app"))
    yield bench
    bench.close()


def test_times_are_the_cubes_steps_with_truth_marked(bench):
    results = bench.results()
    dates = bench.dates(results)
    assert dates[0] == "2024-10-01" and dates[-1] == "2024-10-31" and len(dates) == 31
    hours = bench.hours(results, "2024-10-25")
    assert len(hours) == 24 and hours[12] == ("12:00 UTC (HR truth)", "2024-10-25T12:00")
    assert hours[13] == ("13:00 UTC", "2024-10-25T13:00")  # truth every 2nd hour
    assert bench.first_time(results) == "2024-10-11T12:00"


def test_presets_are_those_inside_the_grid(bench):
    names = bench.presets(bench.results())
    assert names[0] == WHOLE_GRID and "Alps" in names and "Po Valley" in names
    assert "Europe" not in names  # holds the whole sample grid: the same as the first entry


def test_region_typed_box_wins_over_preset(bench):
    assert bench.region(WHOLE_GRID, "") is None
    assert bench.region("Alps", "  ") == BBox(5.5, 43.5, 16.0, 48.5)
    assert bench.region("Alps", "8,44,12,47") == BBox(8, 44, 12, 47)
    with pytest.raises(RegionError):
        bench.region(WHOLE_GRID, "8,44")
    with pytest.raises(UsageError):
        bench.region("Atlantis", "")


def test_one_choice_is_opened_once(bench):
    assert bench.results(Choice()) is bench.results()


def test_session_folders_are_private_and_removed(bench):
    first, second = bench.session_folder("abc"), bench.session_folder("../../etc")
    assert first != second and second.parent == bench.folder  # no way out of the folder
    (first / "x.tif").write_bytes(b"1")
    bench.end_session("abc")
    assert not first.exists() and second.exists()
