"""Skill scores in physical units, with the data range stated (never normalized tensors).

SSIM follows Wang et al. (2004) as scikit-image computes it with ``gaussian_weights=True,
sigma=1.5, use_sample_covariance=False`` (11 x 11 window, K1 0.01, K2 0.03, borders where the
window does not fit excluded), in numpy so that the runtime can report it without scipy or
torch; tests check it against scikit-image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


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
    diff = np.asarray(prediction, np.float64) - np.asarray(truth, np.float64)
    return float(np.sqrt(np.mean(diff**2)))


def psnr(prediction: np.ndarray, truth: np.ndarray, data_range: float) -> float:
    error = rmse(prediction, truth)
    return float("inf") if error == 0 else float(20 * np.log10(data_range / error))


def _gaussian_window() -> np.ndarray:
    offsets = np.arange(SSIM_WINDOW) - (SSIM_WINDOW - 1) / 2
    kernel = np.exp(-(offsets**2) / (2 * SSIM_SIGMA**2))
    return kernel / kernel.sum()


def _filter_valid(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable 'valid' Gaussian filter over the last two axes."""
    rows = sliding_window_view(image, kernel.size, axis=-2) @ kernel
    return sliding_window_view(rows, kernel.size, axis=-1) @ kernel


def ssim(prediction: np.ndarray, truth: np.ndarray, data_range: float) -> float:
    """Mean SSIM over (..., H, W) fields."""
    x = np.asarray(prediction, np.float64)
    y = np.asarray(truth, np.float64)
    if min(x.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs fields of at least {SSIM_WINDOW} x {SSIM_WINDOW} pixels")
    kernel = _gaussian_window()
    mu_x, mu_y = _filter_valid(x, kernel), _filter_valid(y, kernel)
    var_x = _filter_valid(x * x, kernel) - mu_x**2
    var_y = _filter_valid(y * y, kernel) - mu_y**2
    cov = _filter_valid(x * y, kernel) - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    index = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(index.mean())


def score(prediction: np.ndarray, truth: np.ndarray, data_range: float) -> Scores:
    return Scores(rmse(prediction, truth), psnr(prediction, truth, data_range),
                  ssim(prediction, truth, data_range), data_range)
