"""Time selection on the canonical layout: ISO 8601 parsing, steps, ranges, what was used.

Times are UTC ``datetime64[ns]``; a step must exist in the DataCube unless ``nearest`` snaps it,
and a time outside the cube is an error that shows the range the cube covers.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import numpy as np
import pandas as pd

from sr_runtime.errors import TimeSelectionError

MAX_STEPS = 100_000

ISO_8601 = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?)?"
                      r"(Z|[+-]\d{2}(:?\d{2})?)?")
TIME_FORMS = ("ISO 8601 only (YYYY-MM-DD[THH[:MM[:SS]]], optional Z or +HH:MM), e.g. "
              "2024-10-11T12:00")


def parse_time(text: str) -> np.datetime64:
    """ISO 8601 date-time (``2024-10-11``, ``2024-10-11T12``, ``2024-10-11T12:00Z``) as UTC
    datetime64[ns]. Nothing else: ``11/10/2024`` is 11 October to some and 10 November to
    others, so it is refused rather than guessed."""
    text = text.strip()
    if not ISO_8601.fullmatch(text):
        raise TimeSelectionError(f"cannot parse time {text!r}; use {TIME_FORMS}")
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError):
        raise TimeSelectionError(f"cannot parse time {text!r} (no such date or hour); use "
                                 f"{TIME_FORMS}") from None
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return np.datetime64(stamp.to_datetime64(), "ns")


def as_datetime64(value: Any, unit: Literal["ns", "m"] = "ns") -> np.datetime64:
    """``value`` (a datetime64 of any unit, a datetime, an ISO string) as datetime64 in
    ``unit``; numpy accepts all of them, its type stubs only some."""
    return np.datetime64(value, unit)


def at_time(valid_time: Any) -> str:
    """`` at 2024-10-11T12:00`` for messages about one step; empty for a field with no time."""
    stamp = as_datetime64(valid_time, "m")
    return "" if np.isnat(stamp) else f" at {np.datetime_as_string(stamp)}"


def describe_times(times: np.ndarray) -> str:
    if times.size == 0:
        return "no time steps"
    step = ""
    if times.size > 1:
        delta = pd.Timedelta(np.diff(times).min())
        step = f" every {delta}" if delta > pd.Timedelta(0) else ""
    fmt = "%Y-%m-%dT%H:%M"
    return (f"{pd.Timestamp(times[0]).strftime(fmt)} .. {pd.Timestamp(times[-1]).strftime(fmt)}"
            f"{step} ({times.size} steps)")


def select_time(times: np.ndarray, wanted: np.datetime64, nearest: bool = False) -> int:
    """Index of ``wanted`` in ``times``; outside the cube is an error that shows the range."""
    times = np.asarray(times, dtype="datetime64[ns]")
    label = pd.Timestamp(wanted).strftime("%Y-%m-%dT%H:%M")
    if times.size == 0 or wanted < times[0] or wanted > times[-1]:
        raise TimeSelectionError(f"time {label} is outside the DataCube, which covers "
                                 f"{describe_times(times)}; pick a time in that range")
    index = int(np.searchsorted(times, wanted))
    if index < times.size and times[index] == wanted:
        return index
    if nearest:
        candidates = [i for i in (index - 1, index) if 0 <= i < times.size]
        return min(candidates, key=lambda i: abs(times[i] - wanted))
    raise TimeSelectionError(f"time {label} is not a step of the DataCube "
                             f"({describe_times(times)}); pass --nearest to snap to the "
                             "closest step")


def parse_every(text: str) -> np.timedelta64:
    try:
        delta = pd.Timedelta(text)
    except (ValueError, TypeError, OverflowError):
        raise TimeSelectionError(f"cannot parse --every {text!r}; use e.g. 1h, 6h, 1D") from None
    if pd.isna(delta):
        raise TimeSelectionError(f"cannot parse --every {text!r}; use e.g. 1h, 6h, 1D")
    if delta <= pd.Timedelta(0):
        raise TimeSelectionError(f"--every {text} must be positive")
    return np.timedelta64(delta.to_timedelta64(), "ns")


def select_range(times: np.ndarray, start: np.datetime64, end: np.datetime64,
                 every: np.timedelta64, nearest: bool = False) -> list[int]:
    """Indices of ``start, start+every, ... <= end`` in ``times``: exact steps unless
    ``nearest`` (then snapped, duplicates dropped); outside the cube is an error with its range."""
    times = np.asarray(times, dtype="datetime64[ns]")
    if end < start:
        raise TimeSelectionError(f"--end {pd.Timestamp(end):%Y-%m-%dT%H:%M} is before --start "
                                 f"{pd.Timestamp(start):%Y-%m-%dT%H:%M}")
    count = int((end - start) // every) + 1
    if count > MAX_STEPS:
        raise TimeSelectionError(f"--start/--end/--every give {count} steps (more than "
                                 f"{MAX_STEPS}); choose a shorter range or a larger --every")
    for bound in (start, end):  # outside the cube: say which range is available
        if times.size == 0 or bound < times[0] or bound > times[-1]:
            select_time(times, bound, nearest)
    indices: list[int] = []
    for k in range(count):
        index = select_time(times, start + k * every, nearest)
        if not indices or indices[-1] != index:
            indices.append(index)
    return indices


def _stamp(value: np.datetime64) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%dT%H:%M")


def time_note(times: np.ndarray, indices: list[int], wanted: np.datetime64 | None,
              span: tuple[np.datetime64, np.datetime64, np.timedelta64] | None) -> str | None:
    """One line saying which times were used, when ``--nearest`` moved any of them."""
    used = np.asarray(times, dtype="datetime64[ns]")[indices]
    if wanted is not None:
        if used[0] == wanted:
            return None
        return f"time {_stamp(used[0])} (nearest to {_stamp(wanted)})"
    if span is None:
        return None
    start, end, every = span
    asked = start + np.arange(int((end - start) // every) + 1) * every
    moved = int(np.count_nonzero(~np.isin(asked, used)))
    if not moved and used.size == asked.size:
        return None
    return (f"times {_stamp(used[0])} .. {_stamp(used[-1])} ({used.size} steps; {moved} of "
            f"{asked.size} requested times snapped to the nearest step)")
