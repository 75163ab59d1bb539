"""Real terrain for the sample: GLOBE 30" elevation and land mask, averaged onto model grids.

Why real terrain: what super-resolution has to learn over the Alps is mostly how temperature
follows mountains and coasts that the coarse grid cannot see. Each grid sees the 30" terrain
averaged over its OWN cells, as a model of that resolution would: the HR cells (~4 km) keep the
valleys, the LR cells (~35 km) see smooth mountains.

The shipped tile (``sr_runtime/data/terrain/globe30s_35N50N_0E30E.npz``, attribution in the
README next to it) covers 35-50 N, 0-30 E, so a box anywhere in it can be built offline;
:func:`crop_globe` re-creates it (latitude ascending) from the source tile. Smoothed terrain
(valley and basin depth, distance to the sea) is computed once on the whole tile, so a cell
gets the same values whichever box it is built in.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

TERRAIN_DIR = Path(__file__).resolve().parent.parent / "data" / "terrain"
TERRAIN_FILE = TERRAIN_DIR / "globe30s_35N50N_0E30E.npz"

#: Cell-centre bounds of the shipped tile: all of the source tile.
CROP_BOUNDS = (35.0, 50.0, 0.0, 30.0)  # lat_min, lat_max, lon_min, lon_max

#: Width of a GLOBE cell in degrees (30 arc-seconds).
GLOBE_STEP = 1.0 / 120.0

#: Valley depth is measured against the terrain smoothed with this Gaussian sigma (km): the
#: scale of the ridges that enclose an Alpine valley and hold its cold air at night.
VALLEY_SIGMA_KM = 20.0
#: Basins (the Po plain, the Pannonian basin) are lowlands ringed by mountains on this scale.
BASIN_SIGMA_KM = 80.0
#: Sea-breeze reach: land within about this distance of the sea feels it.
COAST_SIGMA_KM = 15.0
KM_PER_DEG_LAT = 111.2
#: One east-west scale for the whole tile (cos 42.5 N), so smoothing never depends on the box.
COS_LAT_REF = 0.7373


@dataclass(frozen=True)
class Terrain:
    """30" terrain: ``elevation`` (m, sea = 0) and ``land`` on ascending cell centres."""

    elevation: np.ndarray
    land: np.ndarray
    latitude: np.ndarray
    longitude: np.ndarray


@dataclass(frozen=True)
class GridTerrain:
    """Terrain as one grid sees it: cell means of elevation, land fraction and valley depth."""

    orog: np.ndarray
    lsm: np.ndarray
    valley_depth: np.ndarray
    basin_depth: np.ndarray  # like valley_depth, on the basin scale (m, positive in basins)
    sea_near: np.ndarray  # 0..1: share of sea within COAST_SIGMA_KM (0 inland, ~0.5 on coasts)


def crop_globe(src: Path, dst: Path, bounds: tuple[float, float, float, float] = CROP_BOUNDS
               ) -> Path:
    """Copy the part of the GLOBE tile the sample needs, latitude flipped to ascending."""
    lat_min, lat_max, lon_min, lon_max = bounds
    with np.load(src) as data:
        lat, lon = data["latitude"], data["longitude"]
        rows = np.flatnonzero((lat >= lat_min) & (lat <= lat_max))[::-1]
        cols = np.flatnonzero((lon >= lon_min) & (lon <= lon_max))
        elevation = data["elevation_m"][np.ix_(rows, cols)]
        land = data["land"][np.ix_(rows, cols)]
        lat, lon = lat[rows], lon[cols]
    dst.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(dst, elevation_m=elevation.astype(np.int16), land=land.astype(bool),
                        latitude=lat, longitude=lon)
    return dst


@lru_cache(maxsize=2)
def load_terrain(path: Path = TERRAIN_FILE) -> Terrain:
    """The shipped 30" crop (cached: every synthesis call reuses it)."""
    with np.load(path) as data:
        return Terrain(elevation=data["elevation_m"].astype(np.float64),
                       land=data["land"].astype(bool),
                       latitude=data["latitude"].astype(np.float64),
                       longitude=data["longitude"].astype(np.float64))


def overlap_weights(fine_centres: np.ndarray, coarse_edges: np.ndarray) -> np.ndarray:
    """(n_coarse, n_fine) matrix whose rows average fine 30" cells over each coarse cell.

    Weights are the overlap length of each fine cell with the coarse cell, so partial cells
    count partially: the exact area mean on a regular grid (the cos-latitude change inside one
    0.35 degree cell is below 0.5 % and is ignored).
    """
    f_lo, f_hi = fine_centres - GLOBE_STEP / 2, fine_centres + GLOBE_STEP / 2
    if coarse_edges[0] < f_lo[0] - 1e-9 or coarse_edges[-1] > f_hi[-1] + 1e-9:
        raise ValueError("grid extends beyond the terrain crop")
    lo = np.maximum(coarse_edges[:-1, None], f_lo[None, :])
    hi = np.minimum(coarse_edges[1:, None], f_hi[None, :])
    w = np.clip(hi - lo, 0.0, None)
    return w / w.sum(axis=1, keepdims=True)


def smooth(field: np.ndarray, sigma_rows: float, sigma_cols: float) -> np.ndarray:
    """Gaussian smoothing (sigma in cells) with reflected edges, separable, via FFT."""
    out = field
    for axis, sigma in ((0, sigma_rows), (1, sigma_cols)):
        a = np.moveaxis(out, axis, -1)
        pad = min(int(np.ceil(4 * sigma)), a.shape[-1] - 1)
        padded = np.pad(a, [(0, 0), (pad, pad)], mode="reflect")
        n = padded.shape[-1]
        dist = np.minimum(np.arange(n), n - np.arange(n))
        kernel = np.exp(-0.5 * (dist / sigma) ** 2)
        kernel /= kernel.sum()
        conv = np.fft.irfft(np.fft.rfft(padded, axis=-1) * np.fft.rfft(kernel), n=n, axis=-1)
        out = np.moveaxis(conv[..., pad:n - pad], -1, axis)
    return out


def grid_terrain(lat_edges: np.ndarray, lon_edges: np.ndarray,
                 terrain: Terrain | None = None) -> GridTerrain:
    """Cell means of the 30" terrain over the cells bounded by ``lat_edges``/``lon_edges``.

    ``valley_depth`` (m, positive in valleys) is the cell mean of (terrain smoothed over
    :data:`VALLEY_SIGMA_KM`) minus the cell mean of the terrain. An HR cell on a valley floor
    sees the valley; an LR cell averages valley floors and ridges to nearly nothing, as a
    coarse model that does not resolve the valley would.
    """
    t = load_terrain() if terrain is None else terrain
    wy = overlap_weights(t.latitude, lat_edges)
    wx = overlap_weights(t.longitude, lon_edges)
    orog = wy @ t.elevation @ wx.T
    lsm = wy @ t.land.astype(np.float64) @ wx.T
    valley = wy @ smoothed(t, "elevation", VALLEY_SIGMA_KM) @ wx.T
    basin = wy @ smoothed(t, "elevation", BASIN_SIGMA_KM) @ wx.T
    sea_near = wy @ (1.0 - smoothed(t, "land", COAST_SIGMA_KM)) @ wx.T
    return GridTerrain(orog=orog, lsm=np.clip(lsm, 0.0, 1.0), valley_depth=valley - orog,
                       basin_depth=basin - orog, sea_near=np.clip(sea_near, 0.0, 1.0))


_SMOOTHED: dict[tuple[int, str, float], np.ndarray] = {}


def smoothed(terrain: Terrain, field: str, sigma_km: float) -> np.ndarray:
    """``terrain.<field>`` smoothed over ``sigma_km`` on the whole tile (cached)."""
    key = (id(terrain), field, sigma_km)
    if key not in _SMOOTHED:
        sigma_rows = sigma_km / KM_PER_DEG_LAT / GLOBE_STEP
        values = getattr(terrain, field).astype(np.float64)
        _SMOOTHED[key] = smooth(values, sigma_rows, sigma_rows / COS_LAT_REF)
    return _SMOOTHED[key]


def main(argv: list[str] | None = None) -> None:
    """``python -m sr_runtime.sample.terrain --globe PATH``: re-create the shipped tile."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--globe", type=Path, required=True,
                        help="globe30s_35N50N_0E30E.npz (GLOBE 30-arc-second tile)")
    parser.add_argument("--out", type=Path, default=TERRAIN_FILE)
    args = parser.parse_args(argv)
    path = crop_globe(args.globe, args.out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
