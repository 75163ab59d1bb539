"""The maps: one colour scale over LR | SR | HR, units on the colour bar, degrees on the axes
with the latitude's aspect, a coastline from the land-sea mask, the time in the title."""

from __future__ import annotations

import numpy as np
import pytest

from sr_runtime.api import open_model, open_source, open_static
from sr_runtime.app.maps import figure_for
from sr_runtime.results import Results, default_truth


@pytest.fixture(scope="module")
def results():
    with open_model() as model:
        yield Results(model, open_source("sample"), default_truth("sample", None),
                      static=open_static("sample"))


def test_three_panels_on_one_scale_with_truth(results):
    result, _ = results.get(results.resolve("2024-10-25T12:00", units="degC"))
    figure = figure_for(result, "2024-10-25 12:00 UTC")
    *panels, colourbar = figure.axes
    assert [a.get_title().split()[0] for a in panels] == ["LR", "SR", "HR"]
    limits = {a.images[0].get_clim() for a in panels}
    assert len(limits) == 1  # one colour scale
    assert "(degC)" in colourbar.get_ylabel()
    assert "2024-10-25 12:00 UTC" in figure._suptitle.get_text()
    for axis in panels:
        assert "longitude" in axis.get_xlabel() and "latitude" in axis.get_ylabel()
        mid = np.mean(axis.get_ylim())
        assert axis.get_aspect() == pytest.approx(1 / np.cos(np.radians(mid)), rel=0.02)
        assert axis.collections, "no coastline drawn"
        west, east = axis.get_xlim()
        assert 5.0 < west < 5.2 and 16.2 < east < 16.4  # degrees of the sample's box


def test_two_panels_and_a_note_without_truth(results):
    result, _ = results.get(results.resolve("2024-10-03T07:00", "8,44,12,47"))
    figure = figure_for(result, "2024-10-03 07:00 UTC")
    assert len(figure.axes) == 3  # LR, SR and the colour bar
    assert "no HR truth" in figure._suptitle.get_text()
