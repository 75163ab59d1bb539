"""The embedded sample DataCube: Climate DT-shaped stores of synthetic t2m over real terrain.

A SAMPLE DERIVED FROM REAL TERRAIN (GLOBE 30"), NOT CLIMATE DT OUTPUT. It exists so that
sr-edge can be trained, evaluated and demonstrated offline on data laid out exactly like the
Earth Data Hub's Climate DT stores (an Alpine box, 32 x 32 LR and 256 x 256 HR pixels, October
2024 hourly). Modules, one job each:

- :mod:`.grids`: the EDH global grids and the sample box cut from them;
- :mod:`.terrain`: the shipped GLOBE crop, averaged over each grid's cells;
- :mod:`.weather`: the physically motivated, seeded, deterministic t2m model;
- :mod:`.times`: October 2024, the train / held-out split, the shipped HR times;
- :mod:`.metadata`: EDH-like store and variable attributes;
- :mod:`.builder`: writing the Zarr v3 stores (``python -m sr_runtime.sample.builder``).
"""

from __future__ import annotations

from typing import Any

from sr_runtime.sample.grids import SampleGrids, sample_grids
from sr_runtime.sample.metadata import HR_STORE_NAME, LR_STORE_NAME, Resolution
from sr_runtime.sample.times import (
    DEFAULT_HR_TIMES,
    HR_TRUTH_STEP_HOURS,
    MONTH_END,
    MONTH_START,
    SHOWCASE_TIME,
    TRAIN_END,
    held_out_times,
    month_times,
    training_times,
)
from sr_runtime.sample.weather import DEFAULT_SEED, synoptic_anomaly, synthesize

__all__ = [
    "DEFAULT_HR_TIMES",
    "DEFAULT_SEED",
    "HR_STORE_NAME",
    "HR_TRUTH_STEP_HOURS",
    "LR_STORE_NAME",
    "MONTH_END",
    "MONTH_START",
    "SAMPLE_DIR",
    "SHOWCASE_TIME",
    "TRAIN_END",
    "Resolution",
    "SampleGrids",
    "build_stores",
    "held_out_times",
    "month_times",
    "sample_dataset",
    "sample_grids",
    "synoptic_anomaly",
    "synthesize",
    "training_times",
]

_BUILDER_NAMES = {"SAMPLE_DIR", "build_stores", "sample_dataset"}


def __getattr__(name: str) -> Any:
    """Builder names load lazily, so ``python -m sr_runtime.sample.builder`` runs cleanly."""
    if name in _BUILDER_NAMES:
        from sr_runtime.sample import builder

        return getattr(builder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
