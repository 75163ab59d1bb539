"""The runtime's numpy SSIM agrees with scikit-image; PSNR/RMSE follow their definitions."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from sr_runtime.metrics import psnr, rmse, ssim


@pytest.mark.parametrize("noise", [0.1, 1.0, 5.0])
def test_ssim_matches_scikit_image(noise):
    rng = np.random.default_rng(0)
    truth = 280 + 10 * np.sin(np.linspace(0, 6, 64))[:, None] * np.cos(
        np.linspace(0, 4, 80))[None, :]
    prediction = truth + rng.normal(0, noise, truth.shape)
    data_range = float(truth.max() - truth.min())
    expected = structural_similarity(prediction, truth, data_range=data_range,
                                     gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False)
    assert ssim(prediction, truth, data_range) == pytest.approx(expected, abs=1e-9)


def test_identical_fields_score_perfectly():
    field = np.random.default_rng(1).normal(280, 3, (32, 32))
    assert ssim(field, field, 20.0) == pytest.approx(1.0)
    assert rmse(field, field) == 0.0 and psnr(field, field, 20.0) == float("inf")


def test_psnr_uses_the_stated_range():
    truth = np.zeros((16, 16))
    prediction = np.full((16, 16), 0.5)  # RMSE 0.5 K
    assert rmse(prediction, truth) == pytest.approx(0.5)
    assert psnr(prediction, truth, 50.0) == pytest.approx(20 * np.log10(100.0))
