"""Halo tiles and stitching: run a field too large for memory in pieces, with the same result.

Each tile's core is read with ``halo`` extra LR cells on every side (the model's receptive-field
radius, ``ModelDescription.halo_lr``), inferred, and only the core's HR cells are kept, so every
kept cell saw exactly what it sees in whole-field inference. At the field's edges the halo is
clipped, not padded: the network's own zero padding then applies there exactly as it does on the
whole field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sr_runtime.description import HR_STATIC_INPUT, ModelDescription
from sr_runtime.engines.base import Engine
from sr_runtime.errors import UsageError

MIN_TILE = 16
DEFAULT_MAX_MEMORY_MB = 1024.0
BYTES = 4  # float32


@dataclass(frozen=True)
class Tile:
    """``core``: LR rows/cols this tile produces; ``window``: LR rows/cols it reads."""

    core: tuple[slice, slice]
    window: tuple[slice, slice]

    def crop(self, scale: int) -> tuple[slice, slice]:
        """The core, in the HR cells of the window's output."""
        (row, col), (row_in, col_in) = self.core, self.window
        return (slice((row.start - row_in.start) * scale, (row.stop - row_in.start) * scale),
                slice((col.start - col_in.start) * scale, (col.stop - col_in.start) * scale))

    def hr_core(self, scale: int) -> tuple[slice, slice]:
        row, col = self.core
        return (slice(row.start * scale, row.stop * scale),
                slice(col.start * scale, col.stop * scale))


def _axis(size: int, tile: int, halo: int) -> list[tuple[slice, slice]]:
    count = max(1, math.ceil(size / tile))
    edges = np.linspace(0, size, count + 1).round().astype(int)  # near-equal cores
    return [(slice(int(a), int(b)), slice(max(0, int(a) - halo), min(size, int(b) + halo)))
            for a, b in zip(edges[:-1], edges[1:], strict=True)]


def plan_tiles(height: int, width: int, tile: int, halo: int) -> list[Tile]:
    """Tiles whose cores (at most ``tile`` x ``tile`` LR cells) cover the field exactly once."""
    if tile < 1:
        raise UsageError(f"tile size must be positive, not {tile}")
    return [Tile((rc, cc), (rw, cw)) for rc, rw in _axis(height, tile, halo)
            for cc, cw in _axis(width, tile, halo)]


def bytes_per_lr_pixel(description: ModelDescription) -> int:
    """Rough engine working set per LR input cell: the widest HR activations dominate."""
    s2 = description.scale ** 2
    channels = int(description.arch_params.get("n_channels", 0) or 0)
    outputs = len(description.variables)
    statics = len(description.static_inputs)
    return BYTES * (s2 * (3 * channels + 2 * outputs + statics) + 4 * channels + outputs)


def tile_for_budget(description: ModelDescription, max_memory_mb: float | None) -> int:
    """The largest square core (LR cells) whose window fits ``max_memory_mb`` of working set."""
    budget_mb = max_memory_mb or DEFAULT_MAX_MEMORY_MB
    halo = description.halo_lr
    side = int(math.sqrt(budget_mb * 2 ** 20 / bytes_per_lr_pixel(description))) - 2 * halo
    if side < MIN_TILE:
        need = (MIN_TILE + 2 * halo) ** 2 * bytes_per_lr_pixel(description)
        given = (f"--max-memory {budget_mb:g} MB" if max_memory_mb else
                 f"the default memory budget ({budget_mb:g} MB)")
        raise UsageError(f"{given} is too small for this model ({MIN_TILE}-cell tiles with a "
                         f"{halo}-cell halo need {math.ceil(need / 2 ** 20)} MB); give "
                         f"--max-memory {math.ceil(need / 2 ** 20)} or more")
    return side


def cap_tile_for_engine(tile: int, engine: Engine) -> int:
    """Shrink ``tile`` so that a tile plus its halo fits an engine with a shape limit
    (a TensorRT optimization profile exposes ``max_window_lr``)."""
    limit = engine.max_window_lr
    if limit is None:
        return tile
    halo = engine.description.halo_lr
    capped = min(tile, int(limit) - 2 * halo)
    if capped < MIN_TILE:
        raise UsageError(f"the {engine.name} engine takes windows of at most {limit} LR cells, "
                         f"too small for tiles with a {halo}-cell halo; rebuild it with a larger "
                         f"profile (sr-export to-trt --max 1x1x{limit + 256}x{limit + 256})")
    return capped


def _static_feed(statics: np.ndarray | None, rows: slice, cols: slice,
                 scale: int) -> dict[str, np.ndarray]:
    """The ``hr_static`` input of an LR window: HR rows/cols [r0*s, r1*s) of the aligned field."""
    if statics is None:
        return {}
    window = statics[None, :, rows.start * scale:rows.stop * scale,
                     cols.start * scale:cols.stop * scale]
    return {HR_STATIC_INPUT: np.ascontiguousarray(window)}


def check_statics(description: ModelDescription, lr: np.ndarray,
                  statics: np.ndarray | None) -> None:
    """The static fields a model takes, on the SR grid of ``lr``: (S, s*h, s*w)."""
    count = len(description.static_inputs)
    if not count:
        if statics is not None:
            raise UsageError("this model takes no static HR fields; give none")
        return
    s = description.scale
    wanted = (count, lr.shape[1] * s, lr.shape[2] * s)
    if statics is None:
        names = ", ".join(spec.name for spec in description.static_inputs)
        raise UsageError(f"the model takes static HR fields ({names}); give them on the SR "
                         "grid (sr-run: --static STORE)")
    if tuple(statics.shape) != wanted:
        raise UsageError(f"static HR fields of shape {'x'.join(map(str, statics.shape))} do not "
                         f"match the SR grid of this LR field ({'x'.join(map(str, wanted))})")


def infer_tiled(engine: Engine, lr: np.ndarray, tile: int | None = None,
                halo: int | None = None, statics: np.ndarray | None = None) -> np.ndarray:
    """(C, h, w) physical LR -> (C_out, s*h, s*w) HR, whole or in halo tiles of ``tile`` cells.

    ``statics``: (S, s*h, s*w) static HR fields on the SR grid, for models that take them; each
    tile gets the HR cells of its LR window (window rows/cols times s)."""
    description = engine.description
    scale = description.scale
    halo = description.halo_lr if halo is None else halo
    check_statics(description, lr, statics)
    _, height, width = lr.shape
    if tile is None or (tile >= height and tile >= width):
        whole = slice(0, height), slice(0, width)
        return engine.infer(lr[None], **_static_feed(statics, *whole, scale))[0]
    out: np.ndarray | None = None
    for piece in plan_tiles(height, width, tile, halo):
        rows, cols = piece.window
        hr = engine.infer(np.ascontiguousarray(lr[None, :, rows, cols]),
                          **_static_feed(statics, rows, cols, scale))[0]
        if out is None:
            out = np.empty((hr.shape[0], height * scale, width * scale), dtype=np.float32)
        crop_rows, crop_cols = piece.crop(scale)
        core_rows, core_cols = piece.hr_core(scale)
        out[:, core_rows, core_cols] = hr[:, crop_rows, crop_cols]
    assert out is not None
    return out
