"""--preview and --report on the embedded sample, checked against the stores themselves."""

from __future__ import annotations

import re

import numpy as np
import pytest
import rasterio
import xarray as xr
from matplotlib.image import imread
from typer.testing import CliRunner

from sr_runtime.cli import app
from sr_runtime.defaults import sample_hr_store
from tests.conftest import resize_model

runner = CliRunner()
pytestmark = pytest.mark.skipif(not sample_hr_store().exists(), reason="sample not built")


def test_preview_and_report_against_hr_truth(tmp_path):
    model = resize_model(tmp_path / "nearest.onnx")
    out, png = tmp_path / "sr.tif", tmp_path / "look.png"
    result = runner.invoke(app, ["--time", "2024-10-11T12:00", "--out", str(out), "--model",
                                 str(model), "--preview", str(png), "--report"])
    assert result.exit_code == 0, result.output
    image = imread(png)
    assert image.shape[0] >= 400 and image.shape[1] >= 3 * image.shape[0] * 0.8  # 3 panels

    text = " ".join(result.output.split())
    match = re.search(r"RMSE ([0-9.]+) K, PSNR ([0-9.]+) dB, SSIM ([0-9.]+) \(data range "
                      r"([0-9.]+) K\)", text)
    assert match, text
    truth = xr.open_dataset(sample_hr_store(), engine="zarr").t2m.sel(
        time=np.datetime64("2024-10-11T12:00", "ns")).values
    with rasterio.open(out) as cog:
        sr = cog.read(1)[::-1]
    expected_rmse = float(np.sqrt(np.mean((sr.astype(np.float64) - truth) ** 2)))
    assert float(match.group(1)) == pytest.approx(expected_rmse, abs=1e-3)
    assert float(match.group(4)) == pytest.approx(float(truth.max() - truth.min()), abs=1e-2)


def test_report_without_truth_at_that_time(tmp_path):
    model = resize_model(tmp_path / "nearest.onnx")
    out = tmp_path / "sr.tif"
    result = runner.invoke(app, ["--time", "2024-10-11T13:00", "--out", str(out), "--model",
                                 str(model), "--report"])
    assert result.exit_code == 2
    assert "--report needs HR truth at 2024-10-11T13:00" in " ".join(result.output.split())


def test_preview_without_truth_shows_two_panels(tmp_path):
    model = resize_model(tmp_path / "nearest.onnx")
    out, png = tmp_path / "sr.tif", tmp_path / "look.png"
    result = runner.invoke(app, ["--time", "2024-10-11T13:00", "--out", str(out), "--model",
                                 str(model), "--preview", str(png)])
    assert result.exit_code == 0, result.output
    assert "LR | SR (no HR truth" in " ".join(result.output.split())
    height, width = imread(png).shape[:2]
    assert width < 2.6 * height
