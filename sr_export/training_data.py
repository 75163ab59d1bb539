"""Training fields: LR/HR pairs (and static HR fields) regenerated from the sample builder.

Two areas. ``sample`` is the embedded Alpine box itself (the LR-only model's recipe). ``area``
is the whole real-terrain area of the shipped GLOBE tile (35-50 N, 0-30 E) with the Alpine box
held out entirely: the largest rectangles of LR cells west, east and south of it (Pyrenees and
the Gulf of Lion; the Dinaric Alps, Pannonian basin, Carpathians, Balkans and Aegean; Sicily,
Tunisia and the Ionian sea). No training crop holds an LR cell of the Alpine box, so scores
there measure a region the model never saw.

Every field is normalized with one mean and standard deviation per variable and resolution (and
per static field) over all regions and times, stored in the checkpoint and the ONNX metadata.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from sr_runtime.description import StaticSpec, VariableSpec
from sr_runtime.errors import UsageError

AREAS = ("sample", "area")
#: Random symmetries of training crops (:class:`RegionCrops`).
AUGMENTATIONS = ("none", "flips", "dihedral")
#: The GLOBE tile (degrees): training LR cells must lie inside it, edges included.
TILE_SOUTH, TILE_NORTH, TILE_WEST, TILE_EAST = 35.0, 50.0, 0.0, 30.0


def check_augmentation(augment: str) -> str:
    """``augment`` if it names one of :data:`AUGMENTATIONS`, else a one-line usage error."""
    if augment not in AUGMENTATIONS:
        raise UsageError(f"--augment must be one of {', '.join(AUGMENTATIONS)}, not {augment!r}")
    return augment


@dataclass(frozen=True)
class Region:
    """A rectangle of global LR indices on the EDH standard grid."""

    name: str
    lat_start: int
    lon_start: int
    rows: int
    cols: int


def _inside(centres: np.ndarray, low: float, high: float) -> np.ndarray:
    step = float(np.diff(centres).mean())
    return np.flatnonzero((centres - step / 2 >= low) & (centres + step / 2 <= high))


def training_regions(min_size: int = 12) -> list[Region]:
    """The largest LR rectangles of the GLOBE tile around the Alpine box (held out), each at
    least ``min_size`` cells on a side."""
    from sr_runtime.sample import grids as g

    rows = _inside(g.global_lr_latitude(), TILE_SOUTH, TILE_NORTH)
    cols = _inside(g.global_lr_longitude(), TILE_WEST, TILE_EAST)
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    a_r0, a_c0 = g.LR_LAT_START, g.LR_LON_START
    a_c1 = a_c0 + g.LR_SIZE  # the box reaches the tile's north edge: no region north
    candidates = [
        Region("west (Pyrenees, Gulf of Lion)", r0, c0, r1 - r0, a_c0 - c0),
        Region("east (Dinaric Alps, Pannonia, Carpathians, Balkans)", r0, a_c1, r1 - r0,
               c1 - a_c1),
        Region("south (Sicily, Tunisia, Ionian sea)", r0, a_c0, a_r0 - r0, a_c1 - a_c0),
    ]
    return [r for r in candidates if r.rows >= min_size and r.cols >= min_size]


@dataclass
class RegionFields:
    """One region's normalized fields: ``lr`` (T, C, h, w), ``hr`` (T, C, s*h, s*w), ``static``
    (S, s*h, s*w) or None."""

    name: str
    lr: torch.Tensor
    hr: torch.Tensor
    static: torch.Tensor | None


@dataclass
class TrainingData:
    """Normalized fields of every region and the statistics used to normalize them."""

    regions: list[RegionFields]
    variables: list[VariableSpec]
    statics: list[StaticSpec]
    data_range: float  # HR truth max - min of the first variable (K), for PSNR/SSIM
    lr_step_deg: float
    area: str


def _region_datasets(area: str, times: np.ndarray, seed: int | None):
    from sr_runtime.sample import DEFAULT_SEED, synthesize

    seed = DEFAULT_SEED if seed is None else seed
    if area == "sample":
        yield "Alpine sample box", synthesize(times, "standard", seed), synthesize(
            times, "high", seed)
        return
    from sr_runtime.sample.grids import region_grids

    for region in training_regions():
        grids = region_grids(region.lat_start, region.lon_start, region.rows, region.cols)
        yield (region.name, synthesize(times, "standard", seed, grids=grids),
               synthesize(times, "high", seed, grids=grids))


def build_training_data(times: np.ndarray, variables: tuple[str, ...] = ("t2m",),
                        statics: tuple[str, ...] = (), area: str = "sample",
                        sample_seed: int | None = None, clock: bool = False) -> TrainingData:
    """LR/HR pairs for ``times`` over ``area`` (regenerated, deterministic), normalized.

    ``clock``: each LR field also carries the clock channels of its time and cells
    (:func:`sr_runtime.clock.clock_fields`, not normalized), after the variables."""
    if area not in AREAS:
        raise UsageError(f"--area must be one of {', '.join(AREAS)}, not {area!r}")
    raw = []
    for name, lr_ds, hr_ds in _region_datasets(area, times, sample_seed):
        for wanted in (*variables, *statics):
            if wanted not in lr_ds or wanted not in hr_ds:
                raise UsageError(f"the sample has no variable {wanted!r}; choose from "
                                 f"{', '.join(map(str, hr_ds.data_vars))}")
        lr = np.stack([lr_ds[v].values for v in variables], axis=1).astype(np.float32)
        hr = np.stack([hr_ds[v].values for v in variables], axis=1).astype(np.float32)
        static = (np.stack([hr_ds[s].values for s in statics]).astype(np.float32)
                  if statics else None)
        units = {v: str(hr_ds[v].attrs.get("units", "")) for v in (*variables, *statics)}
        step = float(np.diff(lr_ds.latitude.values).mean())
        lon = lr_ds.longitude.values
        raw.append((name, lr, hr, static, units, step, lon))
    units = raw[0][4]

    def pooled(index: int, channel: int) -> tuple[float, float]:
        values = np.concatenate([r[index][:, channel].ravel() for r in raw])
        return float(values.mean()), float(values.std())

    specs = []
    for c, name in enumerate(variables):
        (lr_mean, lr_std), (hr_mean, hr_std) = pooled(1, c), pooled(2, c)
        specs.append(VariableSpec(name=name, units=units[name] or "K", lr_mean=lr_mean,
                                  lr_std=lr_std, hr_mean=hr_mean, hr_std=hr_std))
    static_specs = []
    for k, name in enumerate(statics):
        values = np.concatenate([r[3][k].ravel() for r in raw])  # type: ignore[index]
        static_specs.append(StaticSpec(name=name, units=units[name], mean=float(values.mean()),
                                       std=float(values.std()) or 1.0))

    def normalize(values: np.ndarray, means: list[float], stds: list[float]) -> torch.Tensor:
        shape = (1, -1, 1, 1) if values.ndim == 4 else (-1, 1, 1)
        mean = np.asarray(means, dtype=np.float32).reshape(shape)
        std = np.asarray(stds, dtype=np.float32).reshape(shape)
        return torch.from_numpy(((values - mean) / std).astype(np.float32))

    def lr_input(lr: np.ndarray, lon: np.ndarray) -> torch.Tensor:
        normalized = normalize(lr, [s.lr_mean for s in specs], [s.lr_std for s in specs])
        if not clock:
            return normalized
        from sr_runtime.clock import clock_fields

        channels = clock_fields(times, lon, lr.shape[-2])
        return torch.cat([normalized, torch.from_numpy(channels)], dim=1)

    regions = [RegionFields(
        name, lr_input(lr, lon),
        normalize(hr, [s.hr_mean for s in specs], [s.hr_std for s in specs]),
        None if static is None else normalize(static, [s.mean for s in static_specs],
                                              [s.std for s in static_specs]))
        for name, lr, hr, static, _, _, lon in raw]
    first = np.concatenate([r[2][:, 0].ravel() for r in raw])
    return TrainingData(regions, specs, static_specs, float(first.max() - first.min()),
                        raw[0][5], area)


def split_times(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(validation, training) time indices: a seeded random ``val_fraction`` of them."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = max(1, int(n * val_fraction))
    return order[:n_val], order[n_val:]


class RegionCrops(Dataset):
    """Random aligned LR/HR (and static) crops of random regions and times.

    Regions are drawn in proportion to their area, so every LR cell is about as likely to be
    seen. Items are ``(lr, hr)`` or, with static fields, ``(lr, static, hr)``.
    ``fixed_seed``: the same crops on every pass (validation). ``augment``: ``flips`` mirrors
    each crop north-south and/or east-west at random (LR, static and HR together), so that a
    model of terrain sees four times as many valley and coast shapes; ``dihedral`` also swaps
    rows and columns (all eight symmetries of the square). The sample's terrain physics is
    local and isotropic in km, so a mirrored crop is as physical as the original; a transposed
    one is stretched by the grid's cell aspect (~1.3 at 44 N).
    """

    def __init__(self, data: TrainingData, time_index: torch.Tensor, crop_lr: int,
                 length: int, fixed_seed: int | None = None, augment: str = "none") -> None:
        check_augmentation(augment)
        self.regions = data.regions
        self.time_index = time_index
        small = min(min(r.lr.shape[-2:]) for r in self.regions)
        if crop_lr > small:
            raise UsageError(f"--crop {crop_lr} is larger than the smallest training region "
                             f"({small} LR cells); give --crop {small} or less")
        self.crop = crop_lr
        self.length = length
        self.scale = self.regions[0].hr.shape[-1] // self.regions[0].lr.shape[-1]
        areas = torch.tensor([float(r.lr.shape[-1] * r.lr.shape[-2]) for r in self.regions])
        self.weights = areas / areas.sum()
        self.fixed_seed = fixed_seed
        self.augment = augment

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        generator = None
        if self.fixed_seed is not None:
            generator = torch.Generator().manual_seed(self.fixed_seed + index)
        region = self.regions[int(torch.multinomial(self.weights, 1, generator=generator))]
        t = int(self.time_index[int(torch.randint(0, self.time_index.numel(), (),
                                                  generator=generator))])
        h, w = region.lr.shape[-2:]
        top = int(torch.randint(0, h - self.crop + 1, (), generator=generator))
        left = int(torch.randint(0, w - self.crop + 1, (), generator=generator))
        s, c = self.scale, self.crop
        hr_rows, hr_cols = slice(top * s, (top + c) * s), slice(left * s, (left + c) * s)
        items = [region.lr[t, :, top:top + c, left:left + c]]
        if region.static is not None:
            items.append(region.static[:, hr_rows, hr_cols])
        items.append(region.hr[t, :, hr_rows, hr_cols])
        if self.augment != "none":
            flip_rows, flip_cols, swap = torch.randint(0, 2, (3,), generator=generator).tolist()
            axes = [axis for axis, flip in ((-2, flip_rows), (-1, flip_cols)) if flip]
            if axes:
                items = [item.flip(axes) for item in items]
            if swap and self.augment == "dihedral":
                items = [item.transpose(-2, -1) for item in items]
        return tuple(items)


PERIODS = ("october", "year")


def period_times(period: str, every: int = 1) -> np.ndarray:
    """Training hours: ``october`` is Oct 1-24 2024 (the sample's training period); ``year`` is
    all of 2024 except the held-out week (Oct 25-31), so lapse rates, inversions and sea
    breezes of every season are seen. ``every``: each n-th of those hours."""
    from sr_runtime.sample import MONTH_END, TRAIN_END, training_times

    if period == "october":
        return training_times()[::every]
    if period != "year":
        raise UsageError(f"--period must be one of {', '.join(PERIODS)}, not {period!r}")
    hours = np.arange(np.datetime64("2024-01-01T00", "ns"), np.datetime64("2025-01-01T00", "ns"),
                      np.timedelta64(1, "h")).astype("datetime64[ns]")
    kept = hours[(hours < TRAIN_END) | (hours >= MONTH_END)]
    return kept[::every]
