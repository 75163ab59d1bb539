"""The sample box: real EDH coordinate values, sizes, and HR covering the LR cells' area."""

from __future__ import annotations

import numpy as np

from sr_runtime.sample import sample_grids
from sr_runtime.sample.grids import cell_edges
from sr_runtime.sample.terrain import grid_terrain, load_terrain

HR_DLAT = 180 / 4095
HR_DLON = 360 / 8192


def test_grids_are_slices_of_the_global_edh_axes():
    g = sample_grids()
    pairs = [(g.lr_lat, np.linspace(-90, 90, 512), g.lr_lat_slice, 32),
             (g.lr_lon, np.linspace(-180, 180, 1025), g.lr_lon_slice, 32),
             (g.hr_lat, np.linspace(-90, 90, 4096), g.hr_lat_slice, 256),
             (g.hr_lon, np.linspace(-180, 180, 8193), g.hr_lon_slice, 256)]
    for values, global_axis, sl, size in pairs:
        assert values.dtype == np.float64 and values.ndim == 1 and values.size == size
        assert np.all(np.diff(values) > 0)
        np.testing.assert_array_equal(values, global_axis[sl])


def test_box_lies_in_the_alpine_region_and_below_the_globe_tile_edge():
    g = sample_grids()
    for lat, lon in ((g.lr_lat, g.lr_lon), (g.hr_lat, g.hr_lon)):
        lat_e, lon_e = cell_edges(lat), cell_edges(lon)
        assert lat_e[0] >= 35.0 and lat_e[-1] <= 50.0
        assert lon_e[0] >= 0.0 and lon_e[-1] <= 30.0


def test_hr_window_covers_the_area_of_the_lr_cells():
    g = sample_grids()
    for lr, hr, step in ((g.lr_lat, g.hr_lat, HR_DLAT), (g.lr_lon, g.hr_lon, HR_DLON)):
        lr_e, hr_e = cell_edges(lr), cell_edges(hr)
        centre_offset = ((hr_e[0] + hr_e[-1]) - (lr_e[0] + lr_e[-1])) / 2 / step
        size_diff = ((hr_e[-1] - hr_e[0]) - (lr_e[-1] - lr_e[0])) / step
        assert abs(centre_offset) <= 0.5 + 1e-9
        assert abs(size_diff) < 0.5  # grids are not nested: 0.44 HR px short in latitude
        # naive equal coordinate bounds would be far worse (~4 HR pixels at the south edge)
        assert abs(hr_e[0] - lr_e[0]) / step < 0.51


def test_each_grid_sees_its_own_cell_mean_terrain():
    g = sample_grids()
    lr = grid_terrain(cell_edges(g.lr_lat), cell_edges(g.lr_lon))
    hr = grid_terrain(cell_edges(g.hr_lat), cell_edges(g.hr_lon))
    raw = load_terrain()
    assert raw.elevation.max() > 4000  # the real Alps
    assert 3000 < hr.orog.max() < raw.elevation.max()
    assert lr.orog.max() < hr.orog.max() - 500  # a coarse model sees smoother mountains
    for t in (lr, hr):
        assert t.lsm.min() >= 0.0 and t.lsm.max() <= 1.0
        assert 0.4 < t.lsm.mean() < 0.8  # Alps, Po valley, Tyrrhenian and Adriatic seas
    assert abs(lr.orog.mean() - hr.orog.mean()) < 5.0  # same area, same mean height
