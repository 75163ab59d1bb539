"""Region selection and the HR grid of an LR window (sr_runtime.grid), on the real EDH grid."""

from __future__ import annotations

import numpy as np
import pytest

from sr_runtime.errors import RegionError
from sr_runtime.grid import BBox, grid_step, hr_axis, parse_bbox, region_note, region_slices

LAT = np.linspace(-90, 90, 512)  # the Earth Data Hub "standard" grid
LON = np.linspace(-180, 180, 1025)[:-1]


def test_parse_bbox_accepts_spaces_and_refuses_what_it_cannot_mean():
    assert parse_bbox(" 5, 38.7 ,16.3,50") == BBox(5, 38.7, 16.3, 50)
    for text, why in (("5,38", "W,S,E,N"), ("5,50,16,40", "S < N"),
                      ("170,0,-170,10", "antimeridian"), ("5,0,190,10", "-180..180")):
        with pytest.raises(RegionError, match=why):
            parse_bbox(text)


def test_region_slices_keep_cells_whose_centres_are_inside():
    box = BBox(5, 47, 16.25, 58.22)  # the demo's Germany box: 32 x 32 LR cells
    lat_slice, lon_slice = region_slices(LAT, LON, box)
    lat, lon = LAT[lat_slice], LON[lon_slice]
    assert (lat.size, lon.size) == (32, 32)
    assert lat.min() >= 47 and lat.max() <= 58.22 and lon.min() >= 5 and lon.max() <= 16.25
    assert LAT[lat_slice.start - 1] < 47 and LON[lon_slice.stop] > 16.25


def test_a_box_between_cell_centres_is_refused():
    step = LAT[1] - LAT[0]
    tiny = BBox(LON[10] + 0.01, LAT[100] + 0.01, LON[10] + 0.02, LAT[100] + step / 4)
    with pytest.raises(RegionError, match="contains no grid cell"):
        region_slices(LAT, LON, tiny)


def test_hr_axis_tiles_the_lr_cells_exactly():
    lat = LAT[300:304]
    step = grid_step(lat, "latitude")
    hr = hr_axis(lat, 8, step)
    assert hr.size == 32
    np.testing.assert_allclose(np.diff(hr), step / 8)
    assert hr[0] == pytest.approx(lat[0] - step / 2 + step / 16)
    assert hr[-1] == pytest.approx(lat[-1] + step / 2 - step / 16)
    # each LR cell's 8 HR centres average to the LR centre
    np.testing.assert_allclose(hr.reshape(4, 8).mean(axis=1), lat)


def test_region_note_says_when_the_box_was_snapped_or_clipped():
    assert region_note(LAT, LON, None) is None
    snapped = region_note(LAT, LON, BBox(5, 47, 16.25, 58.22))
    assert snapped is not None and "snapped" in snapped and "\n" not in snapped
    clipped = region_note(LAT[400:420], LON[500:520], BBox(-170, -80, 170, 80))
    assert clipped is not None and "clipped to the grid" in clipped


def test_truth_cells_pair_every_sr_cell_over_a_large_box_of_the_hub_grids():
    """The Hub's HR grid is not nested in the LR one: over 48 LR rows the nearest HR row of the
    SR rows skips one now and then, and every SR row still gets its nearest HR row."""
    from sr_runtime.grid import hr_axis, truth_cells
    from tests.conftest import EDH_HR_LAT, EDH_LR_LAT

    lr = EDH_LR_LAT[330:378]
    sr = hr_axis(lr, 8, float(lr[1] - lr[0]))
    rows = truth_cells(EDH_HR_LAT, sr, "latitude")
    assert rows is not None and rows.size == sr.size
    assert 2 in set(np.diff(rows).tolist())  # a skipped HR row: no contiguous window pairs
    nearest = np.abs(EDH_HR_LAT[None, :] - sr[:, None]).argmin(axis=1)
    np.testing.assert_array_equal(rows, nearest)
    # a truth that does not reach the box pairs nothing
    assert truth_cells(EDH_HR_LAT[:1000], sr, "latitude") is None
