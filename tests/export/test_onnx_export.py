"""Checkpoint -> ONNX: self-describing, dynamic shapes, BatchNorm folded, verified."""

from __future__ import annotations

import re

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from typer.testing import CliRunner

from sr_export.checkpoints import load_checkpoint
from sr_export.cli import app
from sr_export.onnx_export import (
    export_onnx,
    physical_model,
    sample_input,
    torch_predict,
)
from sr_runtime.description import ModelDescription
from sr_runtime.errors import AccuracyGateError

runner = CliRunner()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A demo-format Lightning checkpoint exported once through the CLI."""
    folder = tmp_path_factory.mktemp("export")
    import json

    import torch

    from sr_export.model import SRResNet, SRResNetConfig

    torch.manual_seed(3)
    net = SRResNet(SRResNetConfig(n_channels=8, n_blocks=2, output_activation="relu"))
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    ckpt = folder / "demo.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in net.state_dict().items()}}, ckpt)
    config = folder / "config.json"
    config.write_text(json.dumps({
        "model": {"architecture": "SRResNet", "large_kernel_size": 9, "small_kernel_size": 3,
                  "n_channels": 8, "n_blocks": 2, "scaling_factor": 8},
        "dataset": {"lr_mean": 10.0072, "lr_std": 4.3036, "hr_mean": 10.0942,
                    "hr_std": 4.2342, "unit": "Temperature (C)"}}))
    out = folder / "demo.onnx"
    result = runner.invoke(app, ["to-onnx", str(ckpt), "--config", str(config), "--out",
                                 str(out)])
    return ckpt, config, out, result


def test_cli_prints_parity_figures(exported):
    _, _, out, result = exported
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    match = re.search(r"max abs error ([0-9.e+-]+) K, RMSE ([0-9.e+-]+) K", text)
    assert match, text
    assert float(match.group(1)) <= 1e-3 and float(match.group(2)) <= float(match.group(1))
    assert out.is_file()


def test_onnx_matches_pytorch_within_a_millikelvin(exported):
    ckpt, config, out, _ = exported
    loaded = load_checkpoint(ckpt, config)
    lr = sample_input(loaded.description, shape=(23, 37), batch=3, seed=9)
    expected = torch_predict(physical_model(loaded), lr)
    got = ort.InferenceSession(str(out)).run(None, {"lr": lr})[0]
    assert got.shape == (3, 1, 23 * 8, 37 * 8)  # dynamic batch, height and width
    assert np.max(np.abs(got - expected)) <= 1e-3


def test_model_is_self_describing(exported):
    ckpt, _, out, _ = exported
    proto = onnx.load(out)
    onnx.checker.check_model(proto, full_check=True)
    assert not [n for n in proto.graph.node if n.op_type == "BatchNormalization"]
    props = {p.key: p.value for p in proto.metadata_props}
    description = ModelDescription.from_metadata(props)
    assert description.scale == 8 and description.variable_names == ["t2m"]
    # 9x9 head, 2 blocks x two 3x3, a 3x3, three x2 upsampling 3x3s, a 9x9 tail at HR
    assert description.halo_lr == 12  # ceil(4 + 4 + 1 + (1 + 0.5 + 0.25) + 4 / 8)
    import hashlib

    assert description.checkpoint_sha256 == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert "batchnorm_folded" in description.graph_rewrites
    assert {"tool", "torch", "onnx", "opset"} <= set(description.producer)
    assert props["scale_factor"] == "8"


def test_inspect_prints_metadata(exported):
    _, _, out, _ = exported
    result = runner.invoke(app, ["inspect", str(out)])
    assert result.exit_code == 0, result.output
    assert "SRResNet x8" in result.output and "t2m [K]" in result.output
    assert "LR mean 283.1572" in result.output


def test_failed_gate_writes_nothing(exported, tmp_path):
    ckpt, config, _, _ = exported
    out = tmp_path / "strict.onnx"
    with pytest.raises(AccuracyGateError, match="was not written"):
        export_onnx(load_checkpoint(ckpt, config), out, tolerance=1e-12)
    assert list(tmp_path.iterdir()) == []


def test_existing_output_refused(exported):
    ckpt, config, out, _ = exported
    result = runner.invoke(app, ["to-onnx", str(ckpt), "--config", str(config), "--out",
                                 str(out)])
    assert result.exit_code == 2 and "--overwrite" in result.output
