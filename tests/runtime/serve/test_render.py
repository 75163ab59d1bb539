"""The colour scale of the RGBA COG and the tiles: named map, clipped ends, NaN transparent."""

from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib import colormaps

from sr_runtime.errors import UsageError
from sr_runtime.render import ColourScale, colourize, scale_for


def test_colourize_follows_the_named_map_and_clips():
    scale = ColourScale(270.0, 290.0, "K", "viridis")
    data = np.array([[260.0, 270.0, 280.0, 290.0, 300.0, np.nan]])
    rgba = colourize(data, scale)
    viridis = np.round(colormaps["viridis"]([0.0, 0.0, 0.5, 1.0, 1.0]) * 255)
    np.testing.assert_allclose(rgba[:3, 0, :5].T, viridis[:, :3], atol=2)
    assert rgba[3].tolist() == [[255, 255, 255, 255, 255, 0]]


def test_the_scale_travels_in_tags():
    tags = ColourScale(270.0, 290.0, "degC").tags()
    legend = json.loads(tags["colour_legend"])
    assert legend[0][0] == 270.0 and legend[-1][0] == 290.0 and len(legend) == 11
    assert all(colour.startswith("#") and len(colour) == 7 for _, colour in legend)
    assert tags["colour_units"] == "degC" and tags["colour_map"] == "RdYlBu_r"


def test_scale_for_ignores_outliers_and_nan():
    values = np.concatenate([np.linspace(280, 290, 10_000), [1000.0], [np.nan]])
    scale = scale_for(values, units="K")
    assert 280 <= scale.vmin < 281 and 289 < scale.vmax <= 290


@pytest.mark.parametrize(("vmin", "vmax", "name"), [(1.0, 1.0, "viridis"),
                                                   (np.nan, 1.0, "viridis"),
                                                   (0.0, 1.0, "no-such-map")])
def test_bad_scales_are_refused(vmin, vmax, name):
    with pytest.raises(UsageError):
        ColourScale(vmin, vmax, "K", name)
