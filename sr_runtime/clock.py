"""Clock inputs: the local solar hour and the season of a step, as LR input channels.

Temperature detail depends on the time of day and year: lapse rates are steep on summer
afternoons and shallow or inverted on clear winter nights, valleys pool cold air at dawn, sea
breezes blow in warm afternoons. A model that sees only the LR fields must guess the hour from
them; one trained with clock inputs is told. Each feature is a pure function of the step's UTC
time and the cell's longitude, so a tile cut with its halo gets the same values as the whole
field, and every source (sample, Zarr, Earth Data Hub) gives the runtime all it needs.

The channels, in this order (:data:`CLOCK_FEATURES`), follow the model's LR variables:

- ``solar_hour_sin``, ``solar_hour_cos``: local mean solar time, UTC hour + longitude / 15
  (no equation of time: at most ~16 minutes off), as an angle over 24 hours;
- ``season_sin``, ``season_cos``: time since 2000-01-01T00 UTC as an angle over the tropical
  year (365.2422 days), the same phase every year.
"""

from __future__ import annotations

import numpy as np

from sr_runtime.errors import UsageError

CLOCK_FEATURES = ("solar_hour_sin", "solar_hour_cos", "season_sin", "season_cos")
TROPICAL_YEAR_DAYS = 365.2422
_YEAR_ZERO = np.datetime64("2000-01-01T00:00", "ns")
_NS_PER_HOUR = 3_600 * 10**9


def clock_fields(times: np.ndarray, longitude: np.ndarray, rows: int) -> np.ndarray:
    """(N, 4, rows, W) float32 clock channels for ``times`` (N datetime64) over LR cells of
    ``longitude`` (W degrees east, any convention: 360 degrees are 24 hours)."""
    stamps = np.atleast_1d(np.asarray(times)).astype("datetime64[ns]")
    if np.isnat(stamps).any():
        raise ValueError("clock inputs need a valid time for every step, not NaT")
    hours = (stamps - _YEAR_ZERO).astype(np.int64) / _NS_PER_HOUR  # float64 hours
    lon = np.asarray(longitude, dtype=np.float64)
    if lon.ndim != 1 or not np.isfinite(lon).all():
        raise ValueError("clock inputs need a 1-D finite longitude per LR column")
    solar = 2 * np.pi * np.mod(hours[:, None] + lon[None, :] / 15.0, 24.0) / 24.0
    season = 2 * np.pi * np.mod(hours / 24.0, TROPICAL_YEAR_DAYS) / TROPICAL_YEAR_DAYS
    n, width = stamps.size, lon.size
    out = np.empty((n, len(CLOCK_FEATURES), rows, width), dtype=np.float32)
    out[:, 0] = np.sin(solar)[:, None, :]
    out[:, 1] = np.cos(solar)[:, None, :]
    out[:, 2] = np.sin(season)[:, None, None]
    out[:, 3] = np.cos(season)[:, None, None]
    return out


def with_clock(lr: np.ndarray, time: np.datetime64, longitude: np.ndarray,
               features: tuple[str, ...]) -> np.ndarray:
    """The model input of one step: (C, h, w) LR fields, then its clock channels when the model
    takes them (``features``: the description's ``clock_inputs``; empty: ``lr`` unchanged)."""
    if not features:
        return lr
    if np.isnat(np.asarray(time, dtype="datetime64[ns]")):
        raise UsageError("this model takes clock inputs (local solar hour and season, from each "
                         "step's time): give the field a time coordinate")
    if tuple(features) != CLOCK_FEATURES:
        raise ValueError(f"unknown clock inputs {list(features)}; this sr-edge computes "
                         f"{list(CLOCK_FEATURES)}")
    clock = clock_fields(np.asarray([time]), longitude, lr.shape[-2])[0]
    return np.concatenate([lr.astype(np.float32, copy=False), clock], axis=0)
