"""Skill scores in physical units, with the data range stated (never normalized tensors)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchmetrics.functional.image import structural_similarity_index_measure


@dataclass(frozen=True)
class Scores:
    rmse: float  # in the variable's units
    psnr: float  # dB, with the stated data range
    ssim: float
    data_range: float

    def as_dict(self) -> dict[str, float]:
        return {"rmse": self.rmse, "psnr": self.psnr, "ssim": self.ssim,
                "data_range": self.data_range}


def rmse(prediction: np.ndarray, truth: np.ndarray) -> float:
    diff = prediction.astype(np.float64) - truth.astype(np.float64)
    return float(np.sqrt(np.mean(diff**2)))


def psnr(prediction: np.ndarray, truth: np.ndarray, data_range: float) -> float:
    error = rmse(prediction, truth)
    return float("inf") if error == 0 else float(20 * np.log10(data_range / error))


def ssim(prediction: np.ndarray, truth: np.ndarray, data_range: float) -> float:
    """Mean SSIM over (N, C, H, W) or (H, W) fields (Gaussian window, torchmetrics)."""
    pred = torch.as_tensor(np.asarray(prediction, dtype=np.float64))
    true = torch.as_tensor(np.asarray(truth, dtype=np.float64))
    while pred.ndim < 4:
        pred, true = pred[None], true[None]
    return float(structural_similarity_index_measure(pred, true, data_range=data_range))


def score(prediction: np.ndarray, truth: np.ndarray, data_range: float) -> Scores:
    return Scores(rmse(prediction, truth), psnr(prediction, truth, data_range),
                  ssim(prediction, truth, data_range), data_range)
