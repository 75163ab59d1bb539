"""The LightningModule: a few real steps, and a checkpoint that describes itself."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset
from typer.testing import CliRunner

from sr_export.checkpoints import load_checkpoint
from sr_export.cli import app
from sr_export.model import SRResNetConfig
from sr_export.onnx_export import export_onnx
from sr_export.training import SRLightningModule
from sr_runtime.description import VariableSpec
from sr_runtime.errors import UsageError

runner = CliRunner()
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


def sample_times(count: int = 24):
    from sr_runtime.sample import training_times

    return training_times()[::24][:count]


def test_resumed_training_continues_from_the_saved_step(tmp_path):
    """Train 3 steps, resume to 6: the run starts at step 3 with the saved optimizer state
    (Adam's own step count reaches 6, not 3) and continues the CPU budget it had spent."""
    from sr_export.training import train

    config = SRResNetConfig(n_channels=4, n_blocks=1)
    first = train(config, tmp_path, cpu_minutes=10, times=sample_times(), batch_size=4,
                  max_steps=3, seed=1)
    assert (first.start_step, first.global_step) == (0, 3)
    spent = torch.load(first.last, weights_only=True)["callbacks"]["CpuBudget"]["cpu_seconds"]
    resumed = train(config, tmp_path, cpu_minutes=10, times=sample_times(), batch_size=4,
                    max_steps=6, seed=1, resume_from=first.last)
    assert (resumed.start_step, resumed.global_step) == (3, 6)
    state = torch.load(resumed.last, weights_only=True)
    assert state["global_step"] == 6
    adam_steps = {int(s["step"]) for s in state["optimizer_states"][0]["state"].values()}
    assert adam_steps == {6}
    assert state["callbacks"]["CpuBudget"]["cpu_seconds"] > spent > 0
    assert load_checkpoint(resumed.checkpoint).source_format == "sr-edge"  # still exportable


def test_resume_refuses_another_architecture_and_a_weights_only_file(tmp_path):
    from sr_export.training import read_resume_state, train

    config = SRResNetConfig(n_channels=4, n_blocks=1)
    done = train(config, tmp_path, cpu_minutes=10, times=sample_times(), batch_size=4,
                 max_steps=1)
    with pytest.raises(UsageError, match="n_channels 4 .asked 8."):
        read_resume_state(done.last, SRResNetConfig(n_channels=8, n_blocks=1))
    with pytest.raises(UsageError, match="weights only"):
        read_resume_state(done.checkpoint, config)
    with pytest.raises(UsageError, match="no checkpoint to resume"):
        read_resume_state(tmp_path / "missing.ckpt", config)


def test_cli_resume_shows_a_clean_progress_and_continues(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--out-dir", str(out), "--channels", "4", "--blocks", "1", "--batch-size",
            "4", "--every", "24", "--val-every", "5", "--no-evaluate"]
    first = runner.invoke(app, [*args, "--max-steps", "5"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, [*args, "--max-steps", "10", "--resume"])
    assert again.exit_code == 0, again.output
    text = " ".join(again.output.split())
    assert "from step 5" in text and "trained steps 5..10" in text
    for advert in ("Tip", "litlogger", "litmodels", "GPU available", "Epoch 0/"):
        assert advert not in first.output + again.output
    assert "val RMSE" in first.output  # one plain line per validation without a terminal
    both = runner.invoke(app, [*args, "--resume", "--resume-from", str(out / "last.ckpt")])
    assert both.exit_code == 2 and "not both" in both.output
