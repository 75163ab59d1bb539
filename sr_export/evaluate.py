"""Skill on held-out times in physical units: the model against classic references.

References: nearest neighbour, bicubic interpolation, and a physics reference that knows the HR
terrain (bicubic plus a lapse-rate correction for the difference between the HR elevation and
the interpolated LR elevation). PSNR and SSIM use one stated data range: the HR truth's
max - min over the evaluated times.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from torch.nn import functional as F

from sr_runtime.engines.base import Engine
from sr_runtime.errors import UsageError
from sr_runtime.metrics import Scores, psnr, rmse, ssim

LAPSE_RATE_K_PER_M = -0.0065


@dataclass
class Evaluation:
    times: np.ndarray
    data_range: float
    scores: dict[str, Scores]

    def table(self) -> str:
        first = np.datetime_as_string(self.times[0], "m")
        last = np.datetime_as_string(self.times[-1], "m")
        lines = [f"Held-out times: {self.times.size} steps, {first} .. {last}; PSNR/SSIM data "
                 f"range {self.data_range:.2f} K (HR truth max - min)", "",
                 "| method | RMSE (K) | PSNR (dB) | SSIM |", "| --- | ---: | ---: | ---: |"]
        for name, s in self.scores.items():
            lines.append(f"| {name} | {s.rmse:.3f} | {s.psnr:.2f} | {s.ssim:.4f} |")
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


def evaluate(engine: Engine, lr_ds: xr.Dataset, hr_ds: xr.Dataset, times: np.ndarray,
             variable: str = "t2m", extra: dict[str, Callable[[np.ndarray], np.ndarray]]
             | None = None) -> Evaluation:
    """Score the engine and the references on ``times`` present in both datasets."""
    if times.size == 0:
        raise UsageError("no evaluation times: the HR store has no truth for the held-out week")
    lr = lr_ds[variable].sel(time=times).values.astype(np.float32)[:, None]
    truth = hr_ds[variable].sel(time=times).values.astype(np.float32)[:, None]
    scale = truth.shape[-1] // lr.shape[-1]
    if truth.shape[-2:] != (lr.shape[-2] * scale, lr.shape[-1] * scale):
        raise UsageError(f"HR truth {truth.shape[-2:]} is not x{scale} the LR window "
                         f"{lr.shape[-2:]}; use matching LR and HR stores")
    predictions = {
        "nearest neighbour": interpolate(lr, scale, "nearest"),
        "bicubic": interpolate(lr, scale, "bicubic"),
    }
    if "orog" in lr_ds and "orog" in hr_ds:
        predictions["bicubic + lapse rate (HR terrain)"] = physics_reference(
            lr, scale, lr_ds["orog"].values.astype(np.float32),
            hr_ds["orog"].values.astype(np.float32))
    for name, method in (extra or {}).items():
        predictions[name] = method(lr)
    predictions[f"sr-edge model ({engine.name})"] = np.concatenate(
        [engine.infer(lr[i:i + 1]) for i in range(lr.shape[0])])
    data_range = float(truth.max() - truth.min())
    scores = {name: Scores(rmse(pred, truth), psnr(pred, truth, data_range),
                           ssim(pred, truth, data_range), data_range)
              for name, pred in predictions.items()}
    return Evaluation(np.asarray(times), data_range, scores)


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
