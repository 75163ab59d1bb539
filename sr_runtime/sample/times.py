"""The sample's calendar: October 2024, trained on Oct 1-24, held out Oct 25-31."""

from __future__ import annotations

import numpy as np

MONTH_START = np.datetime64("2024-10-01T00", "ns")
MONTH_END = np.datetime64("2024-11-01T00", "ns")  # exclusive
#: First held-out hour: models train on Oct 1-24 and are scored on Oct 25-31.
TRAIN_END = np.datetime64("2024-10-25T00", "ns")
#: Showcase time for the Quickstart preview. It lies in the TRAINING period (NOT held out);
#: its HR truth is shipped only so the preview has a reference map to show.
SHOWCASE_TIME = np.datetime64("2024-10-11T12", "ns")
#: Spacing of the shipped HR truth over the held-out week (size budget, see data/README.md).
HR_TRUTH_STEP_HOURS = 2

_HOUR = np.timedelta64(1, "h")


def month_times() -> np.ndarray:
    """All 744 hours of October 2024 (datetime64[ns]), the LR store's time axis."""
    return np.arange(MONTH_START, MONTH_END, _HOUR).astype("datetime64[ns]")


def training_times() -> np.ndarray:
    """Oct 1-24 hourly (576 hours): what training regenerates on the fly."""
    return np.arange(MONTH_START, TRAIN_END, _HOUR).astype("datetime64[ns]")


def held_out_times(step_hours: int = 1) -> np.ndarray:
    """Oct 25-31 every ``step_hours`` hours from 00 UTC (168 hours when ``step_hours`` is 1)."""
    if step_hours < 1:
        raise ValueError("step_hours must be at least 1")
    return np.arange(TRAIN_END, MONTH_END, step_hours * _HOUR).astype("datetime64[ns]")


#: The HR truth times shipped in the high-maps store: the showcase time first, then every
#: second held-out hour (00, 02, ..., 22 UTC on Oct 25-31: 84 maps), 85 in all.
DEFAULT_HR_TIMES = np.concatenate(([SHOWCASE_TIME], held_out_times(HR_TRUTH_STEP_HOURS)))
