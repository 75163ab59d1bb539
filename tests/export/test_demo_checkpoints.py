"""The demo's own checkpoints, as its training leaves them, through sr-export and sr-run.

`demo_run` (conftest) trains the demo's way with real Lightning: the best ``.ckpt`` (state dict
prefixed ``model.``, no hyper-parameters), the bare ``.pt`` beside it and ``config.json`` with
``"data_variable": "t2m"`` as a string. The reference output is the demo's own inference path
(tests/demo_reference.py), which shares no code with sr-edge.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import rasterio
import torch
from typer.testing import CliRunner

from sr_export.checkpoints import load_checkpoint
from sr_export.cli import app as export_app
from sr_runtime.cli import app as run_app
from sr_runtime.engines import gpu_backends
from sr_runtime.errors import ModelMismatchError, UsageError
from tests.conftest import assert_one_line_error, folder_state, write_edh_store
from tests.export.demo_reference import demo_inference

runner = CliRunner()
LIGHTNING_KEYS = {"epoch", "global_step", "pytorch-lightning_version", "state_dict", "loops",
                  "callbacks", "optimizer_states", "lr_schedulers"}
TIME = "2024-10-11T01:00"


def test_fixture_is_what_the_demo_writes(demo_run):
    raw = torch.load(demo_run.ckpt, weights_only=True)
    assert set(raw) == LIGHTNING_KEYS  # no hyper_parameters
    assert raw["pytorch-lightning_version"].startswith("2.")
    assert all(k.startswith("model.") for k in raw["state_dict"])
    assert any(k.startswith("ModelCheckpoint") for k in raw["callbacks"])
    plain = torch.load(demo_run.pt, weights_only=True)
    assert plain and not any(k.startswith("model.") for k in plain)
    assert demo_run.pt.parent == demo_run.ckpt.parent
    config = json.loads(demo_run.config.read_text())
    assert list(config) == ["model", "training", "dataset", "validation", "checkpoint",
                            "visualization"]
    assert config["dataset"]["data_variable"] == "t2m" == config["dataset"]["data_target"]


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    """The demo's box on the EDH LR grid (32 x 32, ascending latitude), realistic October K."""
    rng = np.random.default_rng(5)
    y, x = np.meshgrid(np.linspace(0, 1, 32), np.linspace(0, 1, 32), indexing="ij")
    values = np.stack([283.0 - 6.0 * y + 3.0 * np.sin(5 * x + h) + rng.normal(0, 1.0, y.shape)
                       for h in range(2)])
    return write_edh_store(tmp_path_factory.mktemp("demo-store") / "lr.zarr",
                           lat_slice=slice(389, 421), lon_slice=slice(527, 559), hours=2,
                           values=values)


def south_to_north(path) -> np.ndarray:
    with rasterio.open(path) as cog:
        band = cog.read(1).astype(np.float64)
        return band[::-1] if cog.transform.e < 0 else band


@pytest.mark.parametrize("kind", ["ckpt", "pt"])
def test_demo_checkpoint_exports_and_runs_like_the_demo(demo_run, demo_store, tmp_path, kind):
    checkpoint = demo_run.ckpt if kind == "ckpt" else demo_run.pt
    model = tmp_path / "demo.onnx"
    result = runner.invoke(export_app, ["to-onnx", str(checkpoint), "--config",
                                        str(demo_run.config), "--out", str(model)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "sr.tif"
    result = runner.invoke(run_app, ["--time", TIME, "--out", str(out), "--model", str(model),
                                     "--source", str(demo_store), "--quiet"])
    assert result.exit_code == 0, result.output

    import xarray as xr

    lr = xr.open_dataset(demo_store, engine="zarr").t2m.isel(time=1).values  # south to north
    expected = demo_inference(demo_run.pt, demo_run.config, lr)
    got = south_to_north(out)
    assert got.shape == expected.shape == (256, 256)
    assert np.max(np.abs(got - expected)) <= 1e-3
    # the comparison can fail: the output is not the ReLU floor everywhere, and the same
    # network on north-to-south arrays gives another field
    floor = demo_run.stats["hr_mean"] + 273.15
    assert np.mean(expected > floor + 0.01) > 0.1
    flipped = demo_inference(demo_run.pt, demo_run.config, lr[::-1])[::-1]
    assert np.max(np.abs(got - flipped)) > 0.05


@pytest.mark.skipif(gpu_backends.tensorrt_reason() is None,
                    reason="TensorRT and a GPU are present: this test is about their absence")
@pytest.mark.parametrize("kind", ["ckpt", "pt"])
def test_to_trt_without_tensorrt_is_one_line_and_writes_nothing(demo_run, tmp_path, kind):
    source = demo_run.ckpt if kind == "ckpt" else demo_run.pt
    checkpoint = tmp_path / source.name
    shutil.copy(source, checkpoint)
    config = tmp_path / "config.json"
    shutil.copy(demo_run.config, config)
    before = folder_state(tmp_path)
    result = runner.invoke(export_app, ["to-trt", str(checkpoint), "--config", str(config)])
    message = assert_one_line_error(result, 1)
    assert "tensorrt is not installed" in message and "pip install 'sr-edge[gpu]'" in message
    assert f"sr-export to-onnx {checkpoint} --config {config}" in message
    assert folder_state(tmp_path) == before


@pytest.mark.parametrize("names", ["t2m", ["t2m"]])
def test_variable_names_may_be_a_string_or_a_list(make_demo_checkpoint, names):
    ckpt, config = make_demo_checkpoint(config_overrides={"dataset.data_variable": names,
                                                          "dataset.data_target": names})
    description = load_checkpoint(ckpt, config).description
    assert description.variable_names == ["t2m"]


@pytest.mark.parametrize(("overrides", "error", "match"), [
    ({"dataset.data_target": ["t2m", "d2m"], "dataset.data_variable": ["t2m", "d2m"]},
     ModelMismatchError, r"names 2 variable\(s\) \(t2m, d2m\) but the weights have 1"),
    ({"dataset.data_target": "d2m"}, ModelMismatchError, "reads t2m and predicts d2m"),
    ({"dataset.data_target": 7}, UsageError, "must be a variable name"),
    ({"dataset.data_variable": []}, UsageError, "must be a variable name"),
    ({"dataset.unit": "Temperature (F)"}, UsageError, "neither Celsius nor kelvin"),
    ({"dataset.lr_std": 0}, UsageError, "must be positive"),
    ({"dataset.hr_mean": "10.1"}, UsageError, "must be a finite number"),
    ({"model.n_blocks": "1"}, UsageError, "must be a positive integer"),
    ({"model.scaling_factor": 3}, UsageError, "scaling_factor must be 2, 4 or 8"),
    ({"dataset.lr_mean": None}, UsageError, r"lacks values .*dataset\.lr_mean"),
])
def test_wrong_config_values_are_named(make_demo_checkpoint, overrides, error, match):
    ckpt, config = make_demo_checkpoint(config_overrides=overrides)
    with pytest.raises(error, match=match):
        load_checkpoint(ckpt, config)


def test_kelvin_unit_is_not_shifted(make_demo_checkpoint):
    ckpt, config = make_demo_checkpoint(config_overrides={"dataset.unit": "Temperature (K)",
                                                          "dataset.lr_mean": 283.0})
    assert load_checkpoint(ckpt, config).description.variables[0].lr_mean == 283.0


@pytest.mark.parametrize("text", ["[1, 2]", "{\"model\": 3}", "\u00ff\u00fe"])
def test_config_that_is_not_the_demos_object(make_demo_checkpoint, tmp_path, text):
    ckpt, config = make_demo_checkpoint()
    config.write_bytes(text.encode("latin-1") if "\u00ff" in text else text.encode())
    result = runner.invoke(export_app, ["to-onnx", str(ckpt), "--config", str(config),
                                        "--out", str(tmp_path / "m.onnx")])
    assert_one_line_error(result, 2)
    assert not (tmp_path / "m.onnx").exists()
