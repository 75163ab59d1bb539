"""The LightningModule: a few real steps, and a checkpoint that describes itself."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from sr_export.checkpoints import load_checkpoint
from sr_export.model import SRResNetConfig
from sr_export.onnx_export import export_onnx
from sr_export.training import SRLightningModule
from sr_runtime.description import VariableSpec

SPEC = VariableSpec("t2m", "K", 282.0, 5.0, 281.5, 5.5)


def tiny_run(tmp_path, steps: int = 4) -> tuple[SRLightningModule, L.Trainer]:
    torch.manual_seed(0)
    lr = torch.randn(8, 1, 6, 6)
    hr = torch.nn.functional.interpolate(lr, scale_factor=8, mode="bilinear")
    config = SRResNetConfig(n_channels=4, n_blocks=1)
    module = SRLightningModule(config.to_dict(), [SPEC.__dict__], 1e-2, 30.0, 0.35225)
    trainer = L.Trainer(max_steps=steps, accelerator="cpu", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=str(tmp_path),
                        limit_val_batches=1, val_check_interval=steps,
                        check_val_every_n_epoch=None)
    loader = DataLoader(TensorDataset(lr, hr), batch_size=4)
    trainer.fit(module, loader, loader)
    return module, trainer


def test_training_reduces_loss_and_logs_physical_metrics(tmp_path):
    module, trainer = tiny_run(tmp_path, steps=30)
    metrics = trainer.callback_metrics
    assert {"val_rmse_K", "val_psnr_dB", "val_ssim"} <= set(metrics)
    # RMSE in kelvin is the normalized error scaled by the HR std
    assert float(metrics["val_rmse_K"]) == pytest.approx(
        float(torch.sqrt(metrics["val_loss"])) * SPEC.hr_std, rel=1e-4)
    assert float(metrics["val_loss"]) < 1.0  # better than predicting the mean


def test_checkpoint_is_self_describing_and_exports(tmp_path):
    _, trainer = tiny_run(tmp_path)
    ckpt = tmp_path / "model.ckpt"
    trainer.save_checkpoint(ckpt, weights_only=True)
    loaded = load_checkpoint(ckpt)  # no config.json needed
    assert loaded.source_format == "sr-edge"
    assert loaded.description.variables == (SPEC,)
    assert loaded.description.lr_step_deg == pytest.approx(0.35225)
    assert dict(loaded.description.arch_params)["n_channels"] == 4
    assert dict(loaded.description.arch_params)["output_activation"] == "none"
    report = export_onnx(loaded, tmp_path / "model.onnx")
    assert report.passed and (tmp_path / "model.onnx").is_file()
