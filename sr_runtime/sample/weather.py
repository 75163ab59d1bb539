"""Hourly 2 m temperature and dew point for the sample, synthesized over real terrain.

THIS IS A SAMPLE DERIVED FROM REAL TERRAIN, NOT CLIMATE DT OUTPUT. The terrain (GLOBE 30"
elevation and land mask, 35-50 N, 0-30 E) is real; the weather is a seeded, physically motivated
model of what a climate model would show, so that super-resolution has the same things to learn
(terrain, coasts, the diurnal cycle, inversions, moving weather) without shipping gigabytes of
real data.

Every grid (LR "standard" or HR "high") of any box is computed on its OWN cells, the same way::

    t2m = climatology(latitude, day of year, land fraction)   seasonal cycle, sea lags land
        - lapse(season, hour, cloud) * cell-mean elevation    3-7.5 K/km, see lapse_rate()
        + diurnal cycle(local solar time) * amplitude         large over land, damped by cloud
        - valley cold pools at night                          valleys the grid resolves
        - basin cold pools at night and on winter days        Po plain, Pannonian basin
        - sea breeze on clear warm afternoons                 land within ~15 km of the sea
        + synoptic anomalies                                   moving, growing, decaying
        + small-scale variability                              travelling waves, cell-averaged
    d2m = t2m - depression                                    >= 0.3 K; d2m falls ~3 K/km

The lapse rate is LAPSE_MEAN (5.5 K/km) + 0.8 K/km x season (+1 in July, -1 in January)
+ 1.2 K/km x clear-sky fraction x diurnal shape (+1 mid-afternoon, -1 at dawn) + 0.5 K/km x
(cloud - 0.5), clipped to 3-7.5 K/km: steep on clear summer afternoons, shallow on clear winter
nights, where valley and basin pools then make temperature RISE with height. Cloud cover comes
from slow 300-1500 km waves drifting with the westerlies through a logistic (cloudier in winter).
The dew-point depression is 1.5 K over sea and 3.5 K over land (less under cloud and near the
coast), +4 K on clear afternoons, plus 40-400 km moist waves; it shrinks with height at (lapse
rate - 3 K/km), so high ground saturates.

Coarse cells see smoother mountains (elevation, land fraction, valley and basin depth, sea
proximity are averaged over the cell) and smoother anomalies (each wave is averaged exactly
over the cell, each blob to within a fraction of a percent), and the nonlinear terms (pools,
cloud-damped cycles, saturation) make LR differ from a block average of HR, as a coarser model
would. A fixed 6.5 K/km correction of bicubic interpolation therefore no longer reproduces the
truth: on the Alpine held-out week it gains ~15 % RMSE over bicubic, as a plain lapse-rate
reference did on a real regional-climate field.

Magnitudes for October over the Alpine box: 1-99 % range ~269-297 K; daily range ~7-9 K over
land, ~1-2 K over sea; synoptic swings of a few K over 3-8 days.

Determinism: each time step is a pure function of (time, grid, seed) computed with fixed array
shapes, so any split of a time list into calls gives bitwise-identical maps; the map frame,
waves and events are global, so a cell has the same values whichever box holds it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import xarray as xr

from sr_runtime.sample import grids as g
from sr_runtime.sample.metadata import (
    Resolution,
    coord_attrs,
    d2m_attrs,
    lsm_attrs,
    orog_attrs,
    t2m_attrs,
)
from sr_runtime.sample.terrain import grid_terrain

DEFAULT_SEED = 20241001

#: Hours are counted from here; the annual cycle's phase is days since this instant.
EPOCH = np.datetime64("2024-01-01T00", "ns")

# A flat local map in km east/north of the box centre (east distances ~10 % off at the box's
# north and south edges: harmless for a synthetic field, and the same for both grids).
LAT_REF, LON_REF = 44.0, 10.7
KM_PER_DEG_LAT = 111.2
KM_PER_DEG_LON = KM_PER_DEG_LAT * math.cos(math.radians(LAT_REF))

# Climatology (K): annual-mean sea-level temperature by latitude, and the seasonal cycle,
# larger and earlier over land (minimum ~Jan 18) than over sea (minimum ~Feb 19), so that in
# October the sea is ~2-3 K warmer than the land.
T_ANNUAL_45N = 287.5
T_ANNUAL_GRADIENT = -0.65  # K per degree of latitude
SEASON_AMPLITUDE_LAND, SEASON_MIN_DAY_LAND = 10.0, 18.0
SEASON_AMPLITUDE_SEA, SEASON_MIN_DAY_SEA = 6.0, 50.0
DAYS_PER_YEAR = 365.25

#: Lapse rate applied to the cell-mean elevation (K/m): it varies in space and time,
#: LAPSE_MEAN + season + hour + cloud terms, clipped to LAPSE_RANGE (about 3-7.5 K/km).
LAPSE_RATE = 0.0065  # K/m, the classic environmental value (the mean of the range below)
LAPSE_MEAN = 0.0055
LAPSE_SEASON = 0.0008  # steeper in summer (+), shallower in winter (-)
LAPSE_HOUR = 0.0012  # steeper in the afternoon, shallower at night (times the diurnal shape)
LAPSE_CLOUD = 0.0005  # cloudy air mixes towards a moist-adiabatic ~5 K/km: less hour effect
LAPSE_RANGE = (0.003, 0.0075)
# Cloud cover: large slow waves through a logistic, 0 (clear) .. 1 (overcast).
N_CLOUD_MODES = 12
CLOUD_RMS = 1.2
# Inversions: valley pools (VALLEY) at night and basin pools (BASIN) at night and through
# winter days, strongest on clear nights; depth saturates at *_DEPTH_M.
BASIN_POOL_MAX_K, BASIN_DEPTH_M = 2.0, 250.0
WINTER_BASIN_K = 1.0
# Sea breeze: clear warm-season afternoons cool land near the sea by up to this.
SEA_BREEZE_K = 3.0
# Dew point: t2m minus a depression (K) >= DEPRESSION_MIN: small over sea, larger over land and
# on clear afternoons; it shrinks with height at (lapse rate - DEW_LAPSE), so d2m falls with
# height at about DEW_LAPSE whatever t2m does, until high ground saturates.
DEW_LAPSE = 0.003  # K/m
DEPRESSION_SEA, DEPRESSION_LAND, DEPRESSION_AFTERNOON = 1.5, 3.5, 4.0
DEPRESSION_MIN = 0.3
N_MOIST_MODES = 24
MOIST_RMS_K = 0.8

# Diurnal cycle: half the daily range, by surface type; land amplitude grows in valleys and
# shrinks on ridges. Warming follows a half cosine from sunrise to the afternoon maximum,
# cooling decays exponentially through the night (Goettsche-Olesen-like shape).
DIURNAL_AMPLITUDE_LAND, DIURNAL_AMPLITUDE_SEA = 4.0, 0.6
SUNRISE_LST, TMAX_LST, NIGHT_DECAY_H = 6.5, 14.5, 4.0
# Cold-air pooling: up to this many K at dawn in valleys, saturating with valley depth.
POOL_MAX_K, POOL_DEPTH_M = 2.0, 300.0

# Synoptic anomalies: air masses as Gaussian blobs born at random through each block of hours,
# drifting east with the westerlies, growing and decaying over 3-8 days; plus a few slow
# planetary waves.
EVENT_BLOCK_H = 120
EVENTS_PER_BLOCK = 5
EVENT_LIFE_H = (72.0, 192.0)
EVENT_AMPLITUDE_K = (3.0, 7.0)
N_PLANETARY_WAVES = 3

# Small-scale variability: travelling waves of 10-250 km, advected by a mean westerly.
N_SMALL_MODES = 96
SMALL_RMS_K = 0.7
WIND_KMH = (6.0 * 3.6, 1.5 * 3.6)  # (east, north) steering wind

_RNG_STREAM_EVENTS, _RNG_STREAM_SMALL, _RNG_STREAM_PLANETARY = 1, 2, 3
_RNG_STREAM_CLOUD, _RNG_STREAM_MOIST = 4, 5
_BLOCK_OFFSET = 1_000_000  # keeps block numbers non-negative for SeedSequence


@dataclass(frozen=True)
class _Modes:
    """Travelling cosine waves already evaluated (and cell-averaged) on one grid."""

    ey: np.ndarray  # (ny, m) complex: exp(i ky y) * cell-average factor
    ex: np.ndarray  # (m, nx) complex
    amplitude: np.ndarray  # (m,) K
    phase: np.ndarray  # (m,) rad at t = 0
    omega: np.ndarray  # (m,) rad/h phase speed
    mod_freq: np.ndarray  # (m,) rad/h amplitude modulation
    mod_phase: np.ndarray  # (m,)

    def at(self, t: float) -> np.ndarray:
        """Sum of the waves at hour ``t`` on the grid."""
        coef = self.amplitude * np.cos(self.mod_freq * t + self.mod_phase) \
            * np.exp(1j * (self.phase - self.omega * t))
        return ((self.ey * coef[None, :]) @ self.ex).real


@dataclass(frozen=True)
class _Grid:
    """Everything about one grid that does not change with time."""

    resolution: str
    lat: np.ndarray
    lon: np.ndarray
    y_km: np.ndarray
    x_km: np.ndarray
    dy_km: float
    dx_km: float
    orog: np.ndarray
    lsm: np.ndarray
    base: np.ndarray  # annual-mean sea-level climatology (the lapse term is added per hour)
    season_land: np.ndarray  # multiplies -cos(land seasonal phase)
    season_sea: np.ndarray
    diurnal_amp: np.ndarray
    pool_amp: np.ndarray
    synoptic_weight: np.ndarray
    small_weight: np.ndarray
    planetary: _Modes
    small: _Modes
    cloud: _Modes
    moist: _Modes
    basin_pool: np.ndarray  # 0..1 basin exposure (land, by basin depth)
    coast: np.ndarray  # 0..1 sea-breeze exposure: land cells near the sea


def _cell_average_factor(k: np.ndarray, width: float) -> np.ndarray:
    """Mean of cos(k x) over a cell of ``width`` relative to its centre value: sinc."""
    return np.sinc(k * width / (2 * np.pi))


def _modes_on_grid(kx: np.ndarray, ky: np.ndarray, amplitude: np.ndarray, phase: np.ndarray,
                   omega: np.ndarray, mod_freq: np.ndarray, mod_phase: np.ndarray,
                   y_km: np.ndarray, x_km: np.ndarray, dy_km: float, dx_km: float) -> _Modes:
    """Evaluate waves (wavenumbers in rad/km) on a grid, averaged exactly over its cells."""
    ey = np.exp(1j * np.outer(y_km, ky)) * _cell_average_factor(ky, dy_km)[None, :]
    ex = np.exp(1j * np.outer(kx, x_km)) * _cell_average_factor(kx, dx_km)[:, None]
    return _Modes(ey=ey, ex=ex, amplitude=amplitude, phase=phase, omega=omega,
                  mod_freq=mod_freq, mod_phase=mod_phase)


def _small_modes(seed: int, y_km: np.ndarray, x_km: np.ndarray, dy_km: float,
                 dx_km: float) -> _Modes:
    """Small-scale variability: red-spectrum waves of 10-250 km drifting with the wind."""
    rng = np.random.default_rng([seed, _RNG_STREAM_SMALL])
    wavelength = np.exp(rng.uniform(np.log(10.0), np.log(250.0), N_SMALL_MODES))
    direction = rng.uniform(0, 2 * np.pi, N_SMALL_MODES)
    k = 2 * np.pi / wavelength
    kx, ky = k * np.cos(direction), k * np.sin(direction)
    weight = np.sqrt(wavelength)
    amplitude = weight / np.sqrt(np.sum(weight**2) / 2) * SMALL_RMS_K * np.sqrt(2)
    omega = kx * WIND_KMH[0] + ky * WIND_KMH[1] + rng.normal(0, 0.02, N_SMALL_MODES)
    mod_freq = 2 * np.pi / rng.uniform(24.0, 96.0, N_SMALL_MODES)
    return _modes_on_grid(kx, ky, amplitude, rng.uniform(0, 2 * np.pi, N_SMALL_MODES), omega,
                          mod_freq, rng.uniform(0, 2 * np.pi, N_SMALL_MODES),
                          y_km, x_km, dy_km, dx_km)


def _planetary_modes(seed: int, y_km: np.ndarray, x_km: np.ndarray, dy_km: float,
                     dx_km: float) -> _Modes:
    """A few slow planetary waves (2500-5000 km) drifting east at 2-8 m/s."""
    rng = np.random.default_rng([seed, _RNG_STREAM_PLANETARY])
    n = N_PLANETARY_WAVES
    wavelength = rng.uniform(2500.0, 5000.0, n)
    direction = rng.uniform(-np.pi / 7, np.pi / 7, n)
    k = 2 * np.pi / wavelength
    kx, ky = k * np.cos(direction), k * np.sin(direction)
    omega = kx * rng.uniform(2.0, 8.0, n) * 3.6
    mod_freq = 2 * np.pi / rng.uniform(144.0, 288.0, n)
    return _modes_on_grid(kx, ky, rng.uniform(1.5, 3.0, n), rng.uniform(0, 2 * np.pi, n),
                          omega, mod_freq, rng.uniform(0, 2 * np.pi, n),
                          y_km, x_km, dy_km, dx_km)


def _slow_modes(seed: int, stream: int, n: int, wavelengths: tuple[float, float], rms: float,
                y_km: np.ndarray, x_km: np.ndarray, dy_km: float, dx_km: float) -> _Modes:
    """Waves of ``wavelengths`` km drifting with the steering wind, evolving over 1-4 days."""
    rng = np.random.default_rng([seed, stream])
    wavelength = rng.uniform(*wavelengths, n)
    direction = rng.uniform(0, 2 * np.pi, n)
    k = 2 * np.pi / wavelength
    kx, ky = k * np.cos(direction), k * np.sin(direction)
    amplitude = np.full(n, rms * np.sqrt(2.0 / n) * np.sqrt(2))
    omega = kx * WIND_KMH[0] + ky * WIND_KMH[1]
    mod_freq = 2 * np.pi / rng.uniform(24.0, 96.0, n)
    return _modes_on_grid(kx, ky, amplitude, rng.uniform(0, 2 * np.pi, n), omega, mod_freq,
                          rng.uniform(0, 2 * np.pi, n), y_km, x_km, dy_km, dx_km)


@dataclass(frozen=True)
class _Event:
    """One moving air mass: Gaussian blob with a sin^2 life cycle."""

    t0: float
    life: float
    amplitude: float
    x0: float
    y0: float
    u: float  # km/h
    v: float
    sx: float  # km
    sy: float


@lru_cache(maxsize=256)
def _block_events(seed: int, block: int) -> tuple[_Event, ...]:
    """Events born in one block of hours; depends only on (seed, block), never on the call."""
    rng = np.random.default_rng([seed, _RNG_STREAM_EVENTS, block + _BLOCK_OFFSET])
    events = []
    for _ in range(EVENTS_PER_BLOCK):
        sign = 1.0 if rng.uniform() < 0.5 else -1.0
        events.append(_Event(
            t0=block * EVENT_BLOCK_H + rng.uniform(0, EVENT_BLOCK_H),
            life=rng.uniform(*EVENT_LIFE_H),
            amplitude=sign * rng.uniform(*EVENT_AMPLITUDE_K),
            x0=rng.uniform(-2000.0, 800.0),
            y0=rng.uniform(-900.0, 900.0),
            u=rng.uniform(4.0, 14.0) * 3.6,
            v=rng.uniform(-3.0, 3.0) * 3.6,
            sx=rng.uniform(400.0, 900.0),
            sy=rng.uniform(300.0, 700.0),
        ))
    return tuple(events)


def _active_events(seed: int, t: float) -> list[_Event]:
    """Events alive at hour ``t``, in a fixed order."""
    last = math.floor(t / EVENT_BLOCK_H)
    first = math.floor((t - EVENT_LIFE_H[1]) / EVENT_BLOCK_H)
    return [e for b in range(first, last + 1) for e in _block_events(seed, b)
            if e.t0 <= t <= e.t0 + e.life]


def _gaussian_cell_mean(coord: np.ndarray, centre: float, sigma: float,
                        width: float) -> np.ndarray:
    """A 1-D Gaussian averaged over cells of ``width`` (variance grows by width^2 / 12)."""
    s_eff = math.sqrt(sigma * sigma + width * width / 12.0)
    return (sigma / s_eff) * np.exp(-0.5 * ((coord - centre) / s_eff) ** 2)


def _synoptic_at(grid: _Grid, seed: int, t: float) -> np.ndarray:
    """Large-scale anomaly (K) at hour ``t``: moving air masses plus planetary waves."""
    out = grid.planetary.at(t)
    for e in _active_events(seed, t):
        age = (t - e.t0) / e.life
        strength = e.amplitude * math.sin(math.pi * age) ** 2
        dt = t - e.t0
        gy = _gaussian_cell_mean(grid.y_km, e.y0 + e.v * dt, e.sy, grid.dy_km)
        gx = _gaussian_cell_mean(grid.x_km, e.x0 + e.u * dt, e.sx, grid.dx_km)
        out = out + strength * np.outer(gy, gx)
    return out


def _diurnal_shape(local_hour: np.ndarray) -> np.ndarray:
    """-1 at sunrise, +1 at the afternoon maximum: half-cosine warming, exponential cooling."""
    since_sunrise = np.mod(local_hour - SUNRISE_LST, 24.0)
    day_len = TMAX_LST - SUNRISE_LST
    warming = -np.cos(np.pi * np.minimum(since_sunrise, day_len) / day_len)
    night = np.maximum(since_sunrise - day_len, 0.0)
    decay = (1 - np.exp(-night / NIGHT_DECAY_H)) / (1 - np.exp(-(24.0 - day_len) / NIGHT_DECAY_H))
    return np.where(since_sunrise < day_len, warming, 1.0 - 2.0 * decay)


@lru_cache(maxsize=16)
def _grid(resolution: str, seed: int, box: tuple[int, int, int, int] | None = None) -> _Grid:
    """Static fields of one grid of one box (terrain, climatology weights, waves), built once.
    ``box``: :attr:`sample.grids.SampleGrids.key`; None is the Alpine sample box."""
    grids = g.sample_grids() if box is None else g.region_grids(*box)
    if resolution == "standard":
        lat, lon = grids.lr_lat, grids.lr_lon
    elif resolution == "high":
        lat, lon = grids.hr_lat, grids.hr_lon
    else:
        raise ValueError(f"resolution must be 'standard' or 'high', not {resolution!r}")
    lat_edges, lon_edges = g.cell_edges(lat), g.cell_edges(lon)
    terrain = grid_terrain(lat_edges, lon_edges)
    f, z, v = terrain.lsm, terrain.orog, terrain.valley_depth
    y_km = (lat - LAT_REF) * KM_PER_DEG_LAT
    x_km = (lon - LON_REF) * KM_PER_DEG_LON
    dy_km = float(np.diff(lat_edges).mean()) * KM_PER_DEG_LAT
    dx_km = float(np.diff(lon_edges).mean()) * KM_PER_DEG_LON
    lat2 = np.broadcast_to(lat[:, None], f.shape)
    season_scale = 1.0 + 0.02 * (lat2 - 45.0)  # seasons grow poleward
    valley_factor = np.clip(1.0 + v / 1000.0, 0.6, 1.4)
    return _Grid(
        resolution=resolution, lat=lat, lon=lon, y_km=y_km, x_km=x_km, dy_km=dy_km,
        dx_km=dx_km, orog=z, lsm=f,
        base=T_ANNUAL_45N + T_ANNUAL_GRADIENT * (lat2 - 45.0),
        season_land=f * SEASON_AMPLITUDE_LAND * season_scale,
        season_sea=(1.0 - f) * SEASON_AMPLITUDE_SEA * season_scale,
        diurnal_amp=DIURNAL_AMPLITUDE_SEA
        + (DIURNAL_AMPLITUDE_LAND - DIURNAL_AMPLITUDE_SEA) * f * valley_factor,
        pool_amp=POOL_MAX_K * f * np.tanh(np.maximum(v, 0.0) / POOL_DEPTH_M),
        synoptic_weight=0.7 + 0.3 * f,  # the sea damps air-mass anomalies
        small_weight=0.25 + 0.75 * f,  # land surfaces vary more on small scales
        planetary=_planetary_modes(seed, y_km, x_km, dy_km, dx_km),
        small=_small_modes(seed, y_km, x_km, dy_km, dx_km),
        cloud=_slow_modes(seed, _RNG_STREAM_CLOUD, N_CLOUD_MODES, (300.0, 1500.0), CLOUD_RMS,
                          y_km, x_km, dy_km, dx_km),
        moist=_slow_modes(seed, _RNG_STREAM_MOIST, N_MOIST_MODES, (40.0, 400.0), MOIST_RMS_K,
                          y_km, x_km, dy_km, dx_km),
        basin_pool=f * np.tanh(np.maximum(terrain.basin_depth, 0.0) / BASIN_DEPTH_M),
        coast=f * np.clip(2.0 * terrain.sea_near, 0.0, 1.0),
    )


@dataclass(frozen=True)
class _State:
    """What one hour on one grid shares between t2m and d2m."""

    t2m: np.ndarray
    cloud: np.ndarray
    lapse: np.ndarray  # K/m
    shape: np.ndarray  # diurnal shape, -1 at sunrise .. +1 in the afternoon


def season_factor(day: float) -> float:
    """+1 at the height of summer (~Jul 19), -1 in winter (~Jan 18): land's seasonal phase."""
    return -math.cos(2 * math.pi / DAYS_PER_YEAR * (day - SEASON_MIN_DAY_LAND))


def cloud_cover(grid: _Grid, t: float) -> np.ndarray:
    """0 (clear) .. 1 (overcast), from slow waves through a logistic; cloudier in winter."""
    day = t / 24.0
    return 1.0 / (1.0 + np.exp(-(grid.cloud.at(t) - 0.4 * season_factor(day))))


def lapse_rate(grid: _Grid, t: float, cloud: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """K/m, positive when temperature falls with height; see the module docstring."""
    summer = season_factor(t / 24.0)
    rate = (LAPSE_MEAN + LAPSE_SEASON * summer
            + LAPSE_HOUR * (1.0 - cloud) * shape[None, :] + LAPSE_CLOUD * (cloud - 0.5))
    return np.clip(rate, *LAPSE_RANGE)


def _state_at(grid: _Grid, seed: int, t: float) -> _State:
    """t2m (K, float64) at hour ``t`` since :data:`EPOCH` on one grid, and what d2m needs."""
    day = t / 24.0
    year_phase = 2 * math.pi / DAYS_PER_YEAR
    summer = season_factor(day)
    winter = max(-summer, 0.0)
    warm = max(summer, 0.0)
    field = (grid.base
             - grid.season_land * math.cos(year_phase * (day - SEASON_MIN_DAY_LAND))
             - grid.season_sea * math.cos(year_phase * (day - SEASON_MIN_DAY_SEA)))
    local_hour = np.mod(t + grid.lon / 15.0, 24.0)
    shape = _diurnal_shape(local_hour)
    cloud = cloud_cover(grid, t)
    clear = 1.0 - cloud
    lapse = lapse_rate(grid, t, cloud, shape)
    field = field - lapse * grid.orog
    field = field + grid.diurnal_amp * (0.4 + 0.6 * clear) * shape[None, :]
    night = np.maximum(-shape, 0.0)[None, :]
    field = field - grid.pool_amp * night * (0.3 + 0.7 * clear) * (1.0 + 0.5 * winter)
    field = field - grid.basin_pool * (BASIN_POOL_MAX_K * night * clear
                                       + WINTER_BASIN_K * winter * (0.3 + 0.7 * clear))
    day_heat = np.maximum(shape, 0.0)[None, :]
    field = field - SEA_BREEZE_K * grid.coast * warm * day_heat * clear
    field = field + grid.synoptic_weight * _synoptic_at(grid, seed, t)
    field = field + grid.small_weight * grid.small.at(t)
    return _State(field, cloud, lapse, shape)


def _t2m_at(grid: _Grid, seed: int, t: float) -> np.ndarray:
    return _state_at(grid, seed, t).t2m


def _d2m_at(grid: _Grid, state: _State, t: float) -> np.ndarray:
    """Dew point (K): t2m minus a depression of at least :data:`DEPRESSION_MIN`, always.

    The depression shrinks with height at (lapse rate - DEW_LAPSE), so d2m falls with height at
    DEW_LAPSE (about 3 K/km) until the air saturates on high ground (clouded peaks)."""
    afternoon = np.maximum(state.shape, 0.0)[None, :]
    depression = (DEPRESSION_SEA + (DEPRESSION_LAND - DEPRESSION_SEA) * grid.lsm
                  * (1.0 - 0.6 * state.cloud) * (1.0 - 0.5 * grid.coast)
                  + DEPRESSION_AFTERNOON * grid.lsm * afternoon * (1.0 - state.cloud)
                  + grid.moist.at(t))
    depression = depression - (state.lapse - DEW_LAPSE) * np.maximum(grid.orog, 0.0)
    return state.t2m - np.maximum(depression, DEPRESSION_MIN)


def synoptic_anomaly(times: np.ndarray, resolution: Resolution, seed: int = DEFAULT_SEED,
                     grids: g.SampleGrids | None = None) -> np.ndarray:
    """The synoptic term alone (time, latitude, longitude), K, before land-sea weighting.

    Exposed so tests and docs can show the weather moving and evolving over days.
    """
    grid = _grid(resolution, seed, None if grids is None else grids.key)
    return np.stack([_synoptic_at(grid, seed, t) for t in hours_since_epoch(times)])


def hours_since_epoch(times: np.ndarray) -> list[float]:
    """Hours since :data:`EPOCH`, per element and exactly (integer nanoseconds first)."""
    ns = (np.atleast_1d(np.asarray(times)).astype("datetime64[ns]") - EPOCH).astype(np.int64)
    return [int(n) / 3.6e12 for n in ns]


def synthesize(times: np.ndarray, resolution: Resolution, seed: int = DEFAULT_SEED,
               grids: g.SampleGrids | None = None) -> xr.Dataset:
    """``t2m`` and ``d2m`` (time, latitude, longitude) float32 K plus static ``lsm``, ``orog``.

    ``grids``: any box of :func:`sample.grids.region_grids`; None is the Alpine sample box.
    The same time gives bitwise-identical values whatever else is in ``times``, and the same
    global cell the same values whichever box holds it, so training can regenerate any batch
    of hours anywhere on the fly.
    """
    grid = _grid(resolution, seed, None if grids is None else grids.key)
    times = np.atleast_1d(np.asarray(times)).astype("datetime64[ns]")
    t2m = np.empty((times.size, grid.lat.size, grid.lon.size), dtype=np.float32)
    d2m = np.empty_like(t2m)
    for i, t in enumerate(hours_since_epoch(times)):
        state = _state_at(grid, seed, t)
        t2m[i] = state.t2m
        d2m[i] = _d2m_at(grid, state, t)
    if resolution == "standard":
        glat, glon = g.global_lr_latitude(), g.global_lr_longitude()
    else:
        glat, glon = g.global_hr_latitude(), g.global_hr_longitude()
    cattrs = coord_attrs()
    ds = xr.Dataset(
        {
            "t2m": (("time", "latitude", "longitude"), t2m, t2m_attrs(glat, glon)),
            "d2m": (("time", "latitude", "longitude"), d2m, d2m_attrs(glat, glon)),
            "lsm": (("latitude", "longitude"), grid.lsm.astype(np.float32),
                    lsm_attrs(glat, glon)),
            "orog": (("latitude", "longitude"), grid.orog.astype(np.float32),
                     orog_attrs(glat, glon)),
        },
        coords={
            "time": ("time", times, cattrs["time"]),
            "latitude": ("latitude", grid.lat.copy(), cattrs["latitude"]),
            "longitude": ("longitude", grid.lon.copy(), cattrs["longitude"]),
        },
    )
    return ds
