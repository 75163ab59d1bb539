"""Skill on held-out times in physical units: the model against classic references.

References: nearest neighbour, bicubic interpolation, and for temperature a physics reference
that knows the HR terrain (bicubic plus -6.5 K/km times the difference between the HR elevation
and the interpolated LR elevation). PSNR and SSIM use one stated data range per variable: the HR
truth's max - min over the evaluated times. Each method also gets its bias (mean error) and the
fraction of LR block means it keeps: the share of s x s output blocks whose mean lies within
:data:`BLOCK_MEAN_TOLERANCE_K` of the LR cell they refine.

Models with static inputs are fed the HR store's static fields (``orog``, ``lsm``) for the same
window, exactly as ``sr-run`` aligns them for the embedded sample.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import xarray as xr
from torch.nn import functional as F

from sr_runtime.clock import with_clock
from sr_runtime.description import HR_STATIC_INPUT
from sr_runtime.engines.base import Engine
from sr_runtime.errors import UsageError
from sr_runtime.metrics import Scores, psnr, rmse, ssim

if TYPE_CHECKING:
    from sr_export.stream_data import StreamPair

LAPSE_RATE_K_PER_M = -0.0065
LAPSE_REFERENCE = "bicubic + lapse rate (HR terrain)"
#: A block mean "kept": within this of its LR cell (K).
BLOCK_MEAN_TOLERANCE_K = 0.05
#: Variables the lapse-rate reference applies to (temperatures that follow terrain).
LAPSE_VARIABLES = ("t2m",)


@dataclass(frozen=True)
class Skill:
    """Scores of one method on one variable, plus its bias and block means kept."""

    scores: Scores
    bias: float
    block_means_kept: float

    def row(self, name: str) -> str:
        s = self.scores
        return (f"| {name} | {s.rmse:.3f} | {self.bias:+.3f} | {s.psnr:.2f} | {s.ssim:.4f} | "
                f"{100 * self.block_means_kept:.1f} % |")


@dataclass
class Evaluation:
    """``skill[variable][method]``; ``scores`` is the first variable's, as before."""

    times: np.ndarray
    data_range: float
    scores: dict[str, Scores]
    skill: dict[str, dict[str, Skill]] = field(default_factory=dict)
    title: str = "Held-out times"

    def table(self) -> str:
        first = np.datetime_as_string(self.times[0], "m")
        last = np.datetime_as_string(self.times[-1], "m")
        lines = [f"{self.title}: {self.times.size} steps, {first} .. {last}"]
        for variable, methods in self.skill.items():
            data_range = next(iter(methods.values())).scores.data_range
            lines += ["", f"`{variable}`: PSNR/SSIM data range {data_range:.2f} K (HR truth "
                      f"max - min); block means kept within {BLOCK_MEAN_TOLERANCE_K} K", "",
                      "| method | RMSE (K) | bias (K) | PSNR (dB) | SSIM | block means kept |",
                      "| --- | ---: | ---: | ---: | ---: | ---: |"]
            lines += [skill.row(name) for name, skill in methods.items()]
        return "\n".join(lines)


def interpolate(lr: np.ndarray, scale: int, mode: str) -> np.ndarray:
    """(N, C, h, w) -> (N, C, s*h, s*w) on the HR cells covering the LR cells' extent."""
    tensor = torch.from_numpy(np.ascontiguousarray(lr, dtype=np.float32))
    if mode == "nearest":
        return F.interpolate(tensor, scale_factor=scale, mode="nearest").numpy()
    return F.interpolate(tensor, scale_factor=scale, mode=mode, align_corners=False).numpy()


def physics_reference(lr: np.ndarray, scale: int, lr_orog: np.ndarray,
                      hr_orog: np.ndarray) -> np.ndarray:
    base = interpolate(lr, scale, "bicubic")
    lr_terrain = interpolate(lr_orog[None, None], scale, "bicubic")[0, 0]
    return base + LAPSE_RATE_K_PER_M * (hr_orog - lr_terrain)[None, None]


def block_means_kept(prediction: np.ndarray, lr: np.ndarray, scale: int,
                     tolerance: float = BLOCK_MEAN_TOLERANCE_K) -> float:
    """Share of s x s blocks of ``prediction`` (N, h*s, w*s) whose mean is within
    ``tolerance`` of the LR cell (N, h, w)."""
    n, h, w = lr.shape
    means = prediction.reshape(n, h, scale, w, scale).mean(axis=(2, 4), dtype=np.float64)
    return float(np.mean(np.abs(means - lr) <= tolerance))


def static_input(engine: Engine, hr_ds: xr.Dataset, batch: int) -> dict[str, np.ndarray]:
    """The model's static HR fields from the HR store, (batch, S, H, W), or nothing."""
    statics = engine.description.static_inputs
    if not statics:
        return {}
    missing = [s.name for s in statics if s.name not in hr_ds]
    if missing:
        raise UsageError(f"the HR truth store has no {', '.join(missing)}, which the model "
                         "takes as static fields; use a store in the EDH high layout")
    fields = []
    for spec in statics:
        values = hr_ds[spec.name]
        if "time" in values.dims:
            values = values.isel(time=0)
        fields.append(values.values.astype(np.float32))
    return {HR_STATIC_INPUT: np.repeat(np.stack(fields)[None], batch, axis=0)}


def skill(prediction: np.ndarray, truth: np.ndarray, lr: np.ndarray, scale: int,
          data_range: float) -> Skill:
    """One method on one variable: (N, H, W) prediction and truth, (N, h, w) LR."""
    return Skill(Scores(rmse(prediction, truth), psnr(prediction, truth, data_range),
                        ssim(prediction, truth, data_range), data_range),
                 float(np.mean(prediction - truth, dtype=np.float64)),
                 block_means_kept(prediction, lr, scale))


def evaluate(engine: Engine, lr_ds: xr.Dataset, hr_ds: xr.Dataset, times: np.ndarray,
             variable: str | None = None, extra: dict[str, Callable[[np.ndarray], np.ndarray]]
             | None = None, title: str = "Held-out times",
             model_name: str | None = None) -> Evaluation:
    """Score the engine and the references on ``times`` present in both datasets, for every
    variable the model predicts (``variable``: the first one reported in ``scores``)."""
    if times.size == 0:
        raise UsageError("no evaluation times: the HR store has no truth for the held-out week")
    variables = engine.description.variable_names
    missing = [v for v in variables if v not in lr_ds or v not in hr_ds]
    if missing:
        raise UsageError(f"the LR or HR store has no {', '.join(missing)}, which the model "
                         "predicts; evaluate on stores that hold every variable")
    lr = np.stack([lr_ds[v].sel(time=times).values for v in variables], axis=1
                  ).astype(np.float32)
    truth = np.stack([hr_ds[v].sel(time=times).values for v in variables], axis=1
                     ).astype(np.float32)
    scale = truth.shape[-1] // lr.shape[-1]
    if truth.shape[-2:] != (lr.shape[-2] * scale, lr.shape[-1] * scale):
        raise UsageError(f"HR truth {truth.shape[-2:]} is not x{scale} the LR window "
                         f"{lr.shape[-2:]}; use matching LR and HR stores")
    predictions = {
        "nearest neighbour": interpolate(lr, scale, "nearest"),
        "bicubic": interpolate(lr, scale, "bicubic"),
    }
    lapse_rows: set[str] = set()
    if "orog" in lr_ds and "orog" in hr_ds:
        reference = predictions["bicubic"].copy()
        lr_orog = lr_ds["orog"].values.astype(np.float32)
        hr_orog = hr_ds["orog"].values.astype(np.float32)
        for c, name in enumerate(variables):
            if name in LAPSE_VARIABLES:
                reference[:, c:c + 1] = physics_reference(lr[:, c:c + 1], scale, lr_orog,
                                                          hr_orog)
                lapse_rows.add(name)
        predictions[LAPSE_REFERENCE] = reference
    for name, method in (extra or {}).items():
        predictions[name] = method(lr)
    statics = static_input(engine, hr_ds, 1)
    clock, lon = engine.description.clock_inputs, lr_ds.longitude.values
    predictions[model_name or f"sr-edge model ({engine.name})"] = np.concatenate(
        [engine.infer(with_clock(lr[i], times[i], lon, clock)[None], **statics)
         for i in range(lr.shape[0])])
    table: dict[str, dict[str, Skill]] = {}
    for c, name in enumerate(variables):
        data_range = float(truth[:, c].max() - truth[:, c].min())
        table[name] = {method: skill(pred[:, c], truth[:, c], lr[:, c], scale, data_range)
                       for method, pred in predictions.items()
                       if method != LAPSE_REFERENCE or name in lapse_rows}
    first = variable or variables[0]
    return Evaluation(np.asarray(times), float(truth[:, 0].max() - truth[:, 0].min()),
                      {method: s.scores for method, s in table[first].items()}, table, title)


def evaluate_held_out(model: str | Path, *, backend: str = "torch", config: Path | None = None,
                      source: str = "sample", truth: str | None = None,
                      every: int = 1) -> Evaluation:
    """Score ``model`` (a checkpoint for ``torch``, an ``.onnx`` for ONNX Runtime) and the
    references on the sample's held-out week (Oct 25-31 2024) where ``truth`` has HR fields
    (``every``: each n-th of those steps only)."""
    from sr_runtime.defaults import sample_hr_store
    from sr_runtime.engines.registry import load_engine
    from sr_runtime.sample import held_out_times
    from sr_runtime.sources.registry import resolve_source

    lr_ds = resolve_source(source).open()
    hr_ds = resolve_source(truth or str(sample_hr_store())).open()
    times = np.intersect1d(held_out_times(), hr_ds.time.values)[::every]
    engine = load_engine(backend, Path(model), config=config).engine
    return evaluate(engine, lr_ds, hr_ds, times)


def evaluate_training_area(model: str | Path, *, backend: str = "torch",
                           config: Path | None = None, every: int = 1) -> list[Evaluation]:
    """The held-out week (every 2nd hour, as the sample's truth) on each training region of
    :func:`sr_export.training_data.training_regions`: the same places, unseen times."""
    from sr_export.training_data import training_regions
    from sr_runtime.engines.registry import load_engine
    from sr_runtime.sample import DEFAULT_SEED, HR_TRUTH_STEP_HOURS, held_out_times, synthesize
    from sr_runtime.sample.grids import region_grids

    engine = load_engine(backend, Path(model), config=config).engine
    times = held_out_times(HR_TRUTH_STEP_HOURS)[::every]
    results = []
    for region in training_regions():
        grids = region_grids(region.lat_start, region.lon_start, region.rows, region.cols)
        lr_ds = synthesize(times, "standard", DEFAULT_SEED, grids=grids)
        hr_ds = synthesize(times, "high", DEFAULT_SEED, grids=grids)
        results.append(evaluate(engine, lr_ds, hr_ds, times,
                                title=f"Training region {region.name}, held-out week"))
    return results


def _in_kelvin(ds: xr.Dataset, names: tuple[str, ...] | list[str], label: str) -> xr.Dataset:
    """Temperatures in K (a store may keep them in degC), so every method is scored in K."""
    from sr_runtime.units import convert, is_temperature, source_units

    for name in names:
        if name in ds:
            unit = source_units(ds[name].attrs, name, label)
            if unit != "K" and is_temperature(unit):
                ds[name] = ds[name].copy(data=convert(ds[name].values, unit, "K"))
    return ds


def evaluate_pair(engine: Engine, pair: StreamPair, times: np.ndarray,
                  title: str = "Held-out hours") -> Evaluation:
    """The table of :func:`evaluate` on the region of a streamed pair, for ``times`` (with the
    pair's static fields, when the model takes them)."""
    lr_ds, hr_ds = pair.open()
    if pair.static is not None:
        hr_ds = hr_ds.assign({spec.name: (("latitude", "longitude"), pair.static[k])
                              for k, spec in enumerate(pair.statics)})
    names = engine.description.variable_names
    lr_ds = _in_kelvin(lr_ds.sel(time=times), names, pair.lr_source.label)
    hr_ds = _in_kelvin(hr_ds.sel(time=times), names, pair.hr_source.label)
    where = f"{title} over {pair.description['bbox']} ({pair.description['lr_cells']} LR cells)"
    return evaluate(engine, lr_ds, hr_ds, times, title=where)


def evaluate_stream(model: str | Path, pair: StreamPair, *, backend: str = "torch",
                    config: Path | None = None, every: int = 1) -> Evaluation:
    """``model`` on the held-out hours of a streamed pair (``every``: each n-th of them)."""
    from sr_runtime.engines.registry import load_engine

    engine = load_engine(backend, Path(model), config=config).engine
    return evaluate_pair(engine, pair, pair.val_times[::every])
