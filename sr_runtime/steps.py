"""One time step's work: read the LR window, run the engine, check, build fields, write.

The same :class:`StepWorker` runs serially (:mod:`sr_runtime.stream`) or on Dask workers
(:mod:`sr_runtime.distributed`); it is picklable, the engine is not, so each worker loads its own.
"""

from __future__ import annotations

import time as clock
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from sr_runtime.clock import with_clock
from sr_runtime.description import VariableSpec
from sr_runtime.engines.base import Engine
from sr_runtime.errors import ModelOutputError
from sr_runtime.fields import GeoField
from sr_runtime.grid import BBox
from sr_runtime.pipeline import build_fields, check_missing, read_lr_steps
from sr_runtime.sinks.base import Sink
from sr_runtime.tiling import infer_tiled
from sr_runtime.times import at_time
from sr_runtime.units import (
    DEW_POINT_EXCESS_TOLERANCE_K,
    convert,
    dew_point_pairs,
    plausible_range,
)


@dataclass(frozen=True)
class StepInput:
    """What the reader hands the engine: the LR window of one step and where it lies."""

    lr: np.ndarray  # (C, h, w) float32, the model's units
    latitude: np.ndarray
    longitude: np.ndarray
    time: np.datetime64
    read_seconds: float


def check_model_output(hr: np.ndarray, valid_time: np.datetime64, units: str,
                       variable: str = "t2m") -> None:
    """Refuse a step whose engine output is non-finite or physically impossible, before it is
    written: corrupt weights or a model fed the wrong units give such fields."""
    at = at_time(valid_time)
    bad = int(hr.size - np.count_nonzero(np.isfinite(hr)))
    if bad:
        raise ModelOutputError(f"the model's output{at} has {bad} non-finite values (NaN "
                               f"or infinite) of {hr.size} cells; nothing was written for it. "
                               "The model file is likely corrupt (NaN/inf weights): export it "
                               "again with sr-export to-onnx")
    low, high = plausible_range(variable, units) or (-np.inf, np.inf)
    outside = int(np.count_nonzero((hr < low) | (hr > high)))
    if outside:
        raise ModelOutputError(f"the model's output{at} has {outside} of {hr.size} cells "
                               f"outside {low:g}..{high:g} {units} (min {float(hr.min()):.5g}, "
                               f"max {float(hr.max()):.5g}); nothing was written for it. Check "
                               "that the model fits this data (units, variable)")


def check_dew_points(hr: np.ndarray, variables: Sequence[VariableSpec],
                     valid_time: np.datetime64) -> None:
    """Refuse a step whose dew point exceeds the air temperature (``hr``: (C, H, W) in the
    units of ``variables``): supersaturation at 2 m is not physical, and sr-edge's graph caps
    the dew point at the air temperature, so a model that shows it was exported without it."""
    names = [v.name for v in variables]
    for dew, air in dew_point_pairs(names):
        air_values = convert(hr[air], variables[air].units, "K")
        excess = convert(hr[dew], variables[dew].units, "K") - air_values
        bad = int(np.count_nonzero(excess > DEW_POINT_EXCESS_TOLERANCE_K))
        if bad:
            raise ModelOutputError(
                f"the model's output{at_time(valid_time)} has {names[dew]} above {names[air]} "
                f"in {bad} of {excess.size} cells (by up to {float(excess.max()):.3g} K: a dew "
                "point above the air temperature is not physical); nothing was written for "
                "it. Export the model again with sr-export to-onnx, whose graph caps the dew "
                "point at the air temperature")


@dataclass
class StepOutcome:
    index: int
    time: np.datetime64
    outputs: list[str]
    hr_pixels: int
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class StepWorker:
    """Reads, infers and writes steps of ``dataset``; picklable apart from the engine.

    ``statics``: the model's static HR fields on the SR grid of the region, (S, H, W), read once
    per run (:mod:`sr_runtime.statics`); None for LR-only models."""

    bbox: BBox | None
    units: str
    tile: int | None
    source_label: str
    sink: Sink
    lr_sink: Sink | None = None
    tags: dict[str, str] = field(default_factory=dict)  # settings recorded in every output
    statics: np.ndarray | None = None

    def read(self, dataset: xr.Dataset, engine: Engine, index: int) -> StepInput:
        return next(self.read_steps(dataset, engine, [index]))

    def read_steps(self, dataset: xr.Dataset, engine: Engine,
                   indices: Sequence[int]) -> Iterator[StepInput]:
        """:meth:`read` of each of ``indices`` (one block of :func:`time_blocks`), from one
        read of the store; the first step's ``read_seconds`` holds that read, each later one
        only its own checks (the block's total is the run's reading time)."""
        started = clock.perf_counter()
        steps = read_lr_steps(dataset, engine.description, indices, self.bbox)
        for index, (lr, lat, lon) in zip(indices, steps, strict=True):
            valid_time = np.datetime64(dataset.time.values[index], "ns")
            check_missing(lr, valid_time, self.source_label)
            now = clock.perf_counter()
            yield StepInput(lr, lat, lon, valid_time, now - started)
            started = clock.perf_counter()

    def infer(self, engine: Engine, step: StepInput) -> tuple[list[GeoField], list[GeoField],
                                                              float]:
        """The LR and SR fields of the step, one per variable of the model, and the seconds
        the engine took."""
        lr, lat, lon, valid_time = step.lr, step.latitude, step.longitude, step.time
        started = clock.perf_counter()
        model_input = with_clock(lr, valid_time, lon, engine.description.clock_inputs)
        hr = infer_tiled(engine, model_input, self.tile, statics=self.statics)
        seconds = clock.perf_counter() - started
        variables = engine.description.variables
        if hr.shape[0] != len(variables):
            raise ModelOutputError(f"the model returned {hr.shape[0]} variable(s), its "
                                   f"description lists {len(variables)}; export it again")
        for channel, variable in zip(hr, variables, strict=True):
            check_model_output(channel, valid_time, variable.units, variable.name)
        check_dew_points(hr, variables, valid_time)
        lr_fields, sr_fields = build_fields(lr, hr, lat, lon, valid_time, engine.description,
                                            engine.name, self.units, self.source_label)
        for each in (*lr_fields, *sr_fields):
            each.tags.update(self.tags)
        return lr_fields, sr_fields, seconds

    def write(self, step: int, lr_fields: list[GeoField],
              sr_fields: list[GeoField]) -> tuple[list[str], float]:
        started = clock.perf_counter()
        outputs = [self.sink.write_step(step, sr_fields)]
        if self.lr_sink is not None:
            outputs.append(self.lr_sink.write_step(step, lr_fields))
        return outputs, clock.perf_counter() - started

    def run_step(self, dataset: xr.Dataset, engine: Engine, step: int,
                 index: int) -> StepOutcome:
        read_result = self.read(dataset, engine, index)
        lr_fields, sr_fields, infer_s = self.infer(engine, read_result)
        outputs, write_s = self.write(step, lr_fields, sr_fields)
        return StepOutcome(step, sr_fields[0].time, outputs, sr_fields[0].data.size,
                           {"read": read_result.read_seconds, "infer": infer_s,
                            "write": write_s})
