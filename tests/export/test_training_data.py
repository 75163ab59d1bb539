"""Training fields: regions around the held-out Alpine box, aligned crops, the training period."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sr_export.evaluate import block_means_kept
from sr_export.training_data import (
    RegionCrops,
    RegionFields,
    TrainingData,
    period_times,
    training_regions,
)
from sr_runtime.errors import UsageError
from sr_runtime.sample import grids as g


def test_training_regions_never_touch_the_alpine_box_and_stay_on_the_terrain_tile():
    lr_lat, lr_lon = g.global_lr_latitude(), g.global_lr_longitude()
    alpine_rows = set(range(g.LR_LAT_START, g.LR_LAT_START + g.LR_SIZE))
    alpine_cols = set(range(g.LR_LON_START, g.LR_LON_START + g.LR_SIZE))
    regions = training_regions()
    assert len(regions) >= 2
    for region in regions:
        rows = set(range(region.lat_start, region.lat_start + region.rows))
        cols = set(range(region.lon_start, region.lon_start + region.cols))
        assert not (rows & alpine_rows and cols & alpine_cols), region.name
        half_lat, half_lon = 0.35225 / 2, 0.3515625 / 2
        assert lr_lat[min(rows)] - half_lat >= 35.0 and lr_lat[max(rows)] + half_lat <= 50.0
        assert lr_lon[min(cols)] - half_lon >= 0.0 and lr_lon[max(cols)] + half_lon <= 30.0
    # together with the box they use most of the tile's LR cells
    cells = sum(r.rows * r.cols for r in regions) + g.LR_SIZE ** 2
    assert cells > 0.9 * 41 * 84


def test_year_period_leaves_out_the_held_out_week():
    times = period_times("year")
    held_out = (times >= np.datetime64("2024-10-25")) & (times < np.datetime64("2024-11-01"))
    assert not held_out.any()
    assert times.size == 366 * 24 - 7 * 24
    assert period_times("year", every=7).size == int(np.ceil(times.size / 7))
    assert period_times("october").max() < np.datetime64("2024-10-25")
    with pytest.raises(UsageError, match="--period"):
        period_times("winter")


def _fields(h: int, w: int, t: int, offset: float) -> RegionFields:
    """LR cells numbered, HR cells carrying the number of the LR cell they refine, static cells
    their own HR position (row * 10000 + col)."""
    lr = offset + torch.arange(t * h * w, dtype=torch.float32).reshape(t, 1, h, w)
    hr = lr.repeat_interleave(8, dim=-2).repeat_interleave(8, dim=-1)
    rows, cols = torch.meshgrid(torch.arange(h * 8.0), torch.arange(w * 8.0), indexing="ij")
    return RegionFields("r", lr, hr, (rows * 10000 + cols)[None])


def test_crops_keep_lr_hr_and_static_aligned_and_cover_every_region():
    shapes = {0.0: (12, 14), 1e5: (20, 16)}
    data = TrainingData([_fields(12, 14, 3, 0.0), _fields(20, 16, 3, 1e5)], [], [], 1.0, 0.35,
                        "area")
    crops = RegionCrops(data, torch.tensor([0, 2]), crop_lr=6, length=200)
    seen = set()
    for i in range(200):
        lr, static, hr = crops[i]
        assert lr.shape == (1, 6, 6) and hr.shape == static.shape == (1, 48, 48)
        expanded = lr.repeat_interleave(8, dim=-2).repeat_interleave(8, dim=-1)
        assert torch.equal(hr, expanded)
        offset = 1e5 if float(lr[0, 0, 0]) >= 1e5 else 0.0
        h, w = shapes[offset]
        t, index = divmod(int(lr[0, 0, 0] - offset), h * w)
        assert t in (0, 2)  # only the times asked for
        top, left = divmod(index, w)
        assert float(static[0, 0, 0]) == top * 8 * 10000 + left * 8
        assert float(static[0, -1, -1]) == (top * 8 + 47) * 10000 + left * 8 + 47
        seen.add(offset)
    assert seen == {0.0, 1e5}
    fixed = RegionCrops(data, torch.tensor([1]), crop_lr=6, length=4, fixed_seed=3)
    assert all(torch.equal(a, b) for a, b in zip(fixed[2], fixed[2], strict=True))
    with pytest.raises(UsageError, match="--crop"):
        RegionCrops(data, torch.tensor([0]), crop_lr=13, length=1)


@pytest.mark.parametrize(("augment", "symmetries"), [("flips", 4), ("dihedral", 8)])
def test_augmented_crops_move_lr_static_and_hr_together(augment, symmetries):
    data = TrainingData([_fields(12, 14, 2, 0.0)], [], [], 1.0, 0.35, "area")
    plain = RegionCrops(data, torch.tensor([0, 1]), crop_lr=6, length=96, fixed_seed=5)
    augmented = RegionCrops(data, torch.tensor([0, 1]), crop_lr=6, length=96, fixed_seed=5,
                            augment=augment)

    def moved(item, axes, swap):
        item = item.flip(axes) if axes else item
        return item.transpose(-2, -1) if swap else item

    seen = set()
    for i in range(96):
        original, changed = plain[i], augmented[i]
        # the same crop (same seed), moved by the same symmetry in all three tensors
        matches = {(tuple(axes), swap) for axes in ([], [-2], [-1], [-2, -1])
                   for swap in (False, True)
                   if all(torch.equal(moved(o, axes, swap), m)
                          for o, m in zip(original, changed, strict=True))}
        assert len(matches) == 1, i  # crops are not symmetric, so one symmetry explains it
        seen |= matches
        lr, _, hr = changed  # HR still refines the LR cell above it
        assert torch.equal(hr, lr.repeat_interleave(8, dim=-2).repeat_interleave(8, dim=-1))
    assert len(seen) == symmetries
    assert all(torch.equal(a, b) for a, b in zip(plain[3], RegionCrops(
        data, torch.tensor([0, 1]), crop_lr=6, length=96, fixed_seed=5)[3], strict=True))
    with pytest.raises(UsageError, match="--augment"):
        RegionCrops(data, torch.tensor([0]), crop_lr=6, length=1, augment="rotate")


def test_block_means_kept_counts_blocks_within_the_tolerance():
    lr = np.array([[[280.0, 281.0], [282.0, 283.0]]])
    hr = np.repeat(np.repeat(lr, 8, axis=1), 8, axis=2)
    assert block_means_kept(hr, lr, 8) == 1.0
    shifted = hr.copy()
    shifted[0, :8, :8] += 0.2  # one block of four off by 0.2 K
    assert block_means_kept(shifted, lr, 8) == 0.75
    detail = hr + np.tile(np.array([[1.0, -1.0], [-1.0, 1.0]]), (1, 8, 8))  # zero-mean detail
    assert block_means_kept(detail, lr, 8) == 1.0
