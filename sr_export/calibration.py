"""Fields to calibrate and gate a reduced-precision model with: DataCube steps or synthetic.

Calibration uses the sample's training period, the gate its held-out week with HR truth where a
truth store exists (else it is gated against FP32 only, and says so).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sr_runtime.description import ModelDescription
from sr_runtime.errors import SourceError, UsageError

DEFAULT_CALIBRATION_STEPS = 24
DEFAULT_GATE_STEPS = 16
SYNTHETIC = "synthetic"


@dataclass(frozen=True)
class GateData:
    """LR inputs for the gate and, optionally, the matching HR truth (both physical units)."""

    lr: np.ndarray
    truth: np.ndarray | None = None
    label: str = ""
    note: str = ""
    #: (S, H, W) static HR fields of a model that takes them, on its SR grid (one region:
    #: the same for every sample)
    static: np.ndarray | None = None

    def inputs(self, index: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Sample ``index`` as the engine takes it: the LR input and the named others."""
        from sr_runtime.description import HR_STATIC_INPUT

        extra = {} if self.static is None else {HR_STATIC_INPUT: self.static[None]}
        return self.lr[index:index + 1], extra


def default_calibration_times(count: int = DEFAULT_CALIBRATION_STEPS) -> np.ndarray:
    """``count`` hours spread over the sample's training period (all hours of day covered)."""
    from sr_runtime.sample.times import training_times

    times = training_times()
    index = np.linspace(0, times.size - 1, count).round().astype(int)
    return times[index]


def parse_times(text: str | None) -> np.ndarray | None:
    """Comma-separated ISO times (``2024-10-02T06,2024-10-05T18``), or None for the default."""
    if not text:
        return None
    try:
        return np.array([np.datetime64(t.strip(), "ns") for t in text.split(",") if t.strip()])
    except ValueError as exc:
        raise UsageError(f"--calib-times must be comma-separated ISO times such as "
                         f"2024-10-02T06,2024-10-05T18 ({exc})") from exc


def _fields(ds, description: ModelDescription, times: np.ndarray, label: str) -> np.ndarray:
    missing = [v for v in description.variable_names if v not in ds.data_vars]
    if missing:
        raise UsageError(f"{label} has no variable {', '.join(missing)} which the model needs")
    absent = np.setdiff1d(times, ds.time.values)
    if absent.size:
        raise UsageError(f"{label} has no data at {np.datetime_as_string(absent[0], 'h')} "
                         f"({absent.size} of {times.size} times missing); pick times inside "
                         f"{np.datetime_as_string(ds.time.values[0], 'h')} .. "
                         f"{np.datetime_as_string(ds.time.values[-1], 'h')}")
    data = np.stack([ds[v].sel(time=times).values.astype(np.float32)
                     for v in description.variable_names], axis=1)
    if not np.all(np.isfinite(data)):
        raise SourceError(f"{label} has missing values at the requested times; pick others")
    return data


def load_calibration(source: str, description: ModelDescription, times: np.ndarray | None = None,
                     ) -> tuple[list[np.ndarray], str]:
    """LR fields (1, C, h, w) in physical units from a DataCube, or synthetic fields."""
    if source == SYNTHETIC:
        from sr_runtime.synthetic import sample_input

        lr = sample_input(description, shape=(32, 32), batch=DEFAULT_CALIBRATION_STEPS, seed=11)
        return [lr[i:i + 1] for i in range(lr.shape[0])], "synthetic smooth fields"
    from sr_runtime.sources.registry import resolve_source

    resolved = resolve_source(source)
    ds = resolved.open()
    times = default_calibration_times() if times is None else times
    data = _fields(ds, description, times, resolved.label)
    first, last = np.datetime_as_string(times[0], "h"), np.datetime_as_string(times[-1], "h")
    return [data[i:i + 1] for i in range(data.shape[0])], \
        f"{resolved.label}: {times.size} times {first} .. {last}"


def load_gate_data(source: str, description: ModelDescription, truth: str | None,
                   steps: int = DEFAULT_GATE_STEPS) -> GateData:
    """Held-out LR fields and their HR truth where a truth store exists; else FP32-only."""

    if source == SYNTHETIC:
        return synthetic_gate_data(description)
    from sr_runtime.defaults import sample_hr_store
    from sr_runtime.sample.times import held_out_times
    from sr_runtime.sources.registry import resolve_source

    resolved = resolve_source(source)
    ds = resolved.open()
    truth_spec = truth or (str(sample_hr_store()) if source == "sample" else None)
    hr = None
    if truth_spec is not None:
        try:
            hr = resolve_source(truth_spec).open()
        except SourceError:
            hr = None
    candidates = np.intersect1d(held_out_times(), ds.time.values)
    if hr is not None:
        candidates = np.intersect1d(candidates, hr.time.values)
    if candidates.size == 0:
        candidates = ds.time.values[-steps:]
    times = candidates[np.linspace(0, candidates.size - 1, min(steps, candidates.size))
                       .round().astype(int)]
    lr = _fields(ds, description, times, resolved.label)
    static = _static_fields(source, description, ds)
    if description.clock_inputs:
        from sr_runtime.clock import clock_fields

        lr = np.concatenate([lr, clock_fields(times, ds.longitude.values.astype(np.float64),
                                              lr.shape[-2])], axis=1)
    if hr is None:
        return GateData(lr, None, "", "no HR truth store found: gated against FP32 only",
                        static)
    hr_fields = _fields(hr, description, times, truth_spec)
    return GateData(lr, hr_fields, truth_spec, static=static)


def synthetic_gate_data(description: ModelDescription) -> GateData:
    """Synthetic smooth inputs (clock and static fields too, for models that take them)."""
    from sr_runtime.synthetic import sample_input, sample_statics

    static = sample_statics(description, (32, 32), batch=1, seed=23)
    return GateData(sample_input(description, shape=(32, 32), batch=4, seed=23),
                    note="synthetic inputs, no HR truth: gated against FP32 only",
                    static=None if static is None else static[0])


def _static_fields(source: str, description: ModelDescription, ds) -> np.ndarray | None:
    """The static HR fields of the source's whole grid, as ``sr-run`` reads them (its
    companion high-resolution store)."""
    if not description.static_inputs:
        return None
    from sr_runtime.grid import sr_axes
    from sr_runtime.statics import region_statics, static_source

    location = static_source(None, source, None, [s.name for s in description.static_inputs])
    return region_statics(location, description.static_inputs,
                          *sr_axes(ds.latitude.values.astype(np.float64),
                                   ds.longitude.values.astype(np.float64), description.scale))
