"""Lightning training of SRResNet on the embedded sample (regenerated on the fly).

The LightningModule saves its hyper-parameters and the normalization statistics in every
checkpoint (unlike the demo), so a checkpoint alone describes the model. Loss is MSE on
normalized fields; RMSE, PSNR and SSIM are logged in kelvin with a stated data range.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torchmetrics.functional.image import structural_similarity_index_measure

from sr_export.checkpoints import SR_EDGE_HPARAMS_KEY
from sr_export.model import SRResNet, SRResNetConfig
from sr_runtime.description import VariableSpec


class SRLightningModule(L.LightningModule):
    """SRResNet + normalization + metrics in physical units."""

    def __init__(self, model: dict, variables: list[dict], learning_rate: float = 1e-3,
                 data_range: float = 30.0, lr_step_deg: float = 0.0) -> None:
        super().__init__()
        self.save_hyperparameters({SR_EDGE_HPARAMS_KEY: {
            "model": model, "variables": variables, "lr_step_deg": lr_step_deg},
            "learning_rate": learning_rate, "data_range": data_range})
        self.model = SRResNet(SRResNetConfig.from_dict(model))
        self.variables = [VariableSpec(**v) for v in variables]
        self.learning_rate = learning_rate
        self.data_range = data_range
        self.register_buffer("hr_std", torch.tensor([v.hr_std for v in self.variables])
                             .reshape(1, -1, 1, 1), persistent=False)
        self.register_buffer("hr_mean", torch.tensor([v.hr_mean for v in self.variables])
                             .reshape(1, -1, 1, 1), persistent=False)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.model(lr)

    def _physical(self, normalized: torch.Tensor) -> torch.Tensor:
        return normalized * self.hr_std + self.hr_mean

    def training_step(self, batch, _index):
        lr, hr = batch
        loss = F.mse_loss(self(lr), hr)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, _index):
        lr, hr = batch
        prediction = self(lr)
        loss = F.mse_loss(prediction, hr)
        pred_k, true_k = self._physical(prediction), self._physical(hr)
        rmse_k = torch.sqrt(F.mse_loss(pred_k, true_k))
        self.log_dict({
            "val_loss": loss,
            "val_rmse_K": rmse_k,
            "val_psnr_dB": 20 * torch.log10(self.data_range / rmse_k),
            "val_ssim": structural_similarity_index_measure(pred_k, true_k,
                                                            data_range=self.data_range),
        }, prog_bar=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.learning_rate)


class CpuBudget(L.Callback):
    """Stop after a budget of process CPU time, with cosine learning-rate decay over it.

    CPU time, not wall time, so that a run on a busy machine gets the same training as on an
    idle one, and two configurations compared under "the same budget" really get the same.
    """

    def __init__(self, cpu_minutes: float, floor: float = 0.02) -> None:
        self.budget_s = cpu_minutes * 60.0
        self.floor = floor
        self.started = 0.0

    def used(self) -> float:
        return (time.process_time() - self.started) / self.budget_s

    def on_train_start(self, trainer, module) -> None:
        self.started = time.process_time()

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        progress = min(1.0, self.used())
        factor = self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * progress))
        for group in trainer.optimizers[0].param_groups:
            group["lr"] = module.learning_rate * factor

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self.used() >= 1.0:
            trainer.should_stop = True

    def on_validation_epoch_end(self, trainer, module) -> None:
        if not trainer.sanity_checking:
            module.log("cpu_minutes", (time.process_time() - self.started) / 60.0)


class RandomCrops(Dataset):
    """Random aligned LR/HR crops: more optimizer steps per CPU-second than whole fields."""

    def __init__(self, lr: torch.Tensor, hr: torch.Tensor, crop_lr: int) -> None:
        self.lr, self.hr, self.crop = lr, hr, min(crop_lr, lr.shape[-1], lr.shape[-2])
        self.scale = hr.shape[-1] // lr.shape[-1]

    def __len__(self) -> int:
        return self.lr.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = self.lr.shape[-2:]
        top = int(torch.randint(0, h - self.crop + 1, ()))
        left = int(torch.randint(0, w - self.crop + 1, ()))
        s, c = self.scale, self.crop
        return (self.lr[index, :, top:top + c, left:left + c],
                self.hr[index, :, top * s:(top + c) * s, left * s:(left + c) * s])


@dataclass
class TrainingData:
    """Normalized LR/HR tensors and the statistics used to normalize them (in K)."""

    lr: torch.Tensor
    hr: torch.Tensor
    variables: list[VariableSpec]
    data_range: float
    lr_step_deg: float


def sample_training_data(times: np.ndarray, variable: str = "t2m") -> TrainingData:
    """LR/HR pairs from the sample builder for ``times`` (regenerated, deterministic)."""
    from sr_runtime.sample import synthesize

    lr_ds = synthesize(times, "standard")
    hr_ds = synthesize(times, "high")
    lr = lr_ds[variable].values.astype(np.float32)[:, None]
    hr = hr_ds[variable].values.astype(np.float32)[:, None]
    spec = VariableSpec(name=variable, units=str(lr_ds[variable].attrs.get("units", "K")),
                        lr_mean=float(lr.mean()), lr_std=float(lr.std()),
                        hr_mean=float(hr.mean()), hr_std=float(hr.std()))
    lr_n = (lr - spec.lr_mean) / spec.lr_std
    hr_n = (hr - spec.hr_mean) / spec.hr_std
    lr_step = float(np.diff(lr_ds.latitude.values).mean())
    return TrainingData(torch.from_numpy(lr_n), torch.from_numpy(hr_n), [spec],
                        float(hr.max() - hr.min()), lr_step)


def train(config: SRResNetConfig, out_dir: Path, *, cpu_minutes: float, times: np.ndarray,
          batch_size: int = 16, learning_rate: float = 1e-3, val_fraction: float = 0.1,
          seed: int = 42, threads: int | None = None, crop_lr: int = 16) -> Path:
    """Train under a CPU-time budget; return the path of the final checkpoint."""
    L.seed_everything(seed, workers=True)
    if threads:
        torch.set_num_threads(threads)
    data = sample_training_data(times)
    n = data.lr.shape[0]
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = max(1, int(n * val_fraction))
    val_idx, train_idx = order[:n_val], order[n_val:]
    train_loader = DataLoader(RandomCrops(data.lr[train_idx], data.hr[train_idx], crop_lr),
                              batch_size=batch_size, shuffle=True, drop_last=True)
    val_loader = DataLoader(TensorDataset(data.lr[val_idx], data.hr[val_idx]),
                            batch_size=batch_size)
    module = SRLightningModule(config.to_dict(), [v.__dict__ for v in data.variables],
                               learning_rate, data.data_range, data.lr_step_deg)
    steps_per_epoch = len(train_loader)
    trainer = L.Trainer(
        max_epochs=100_000, accelerator="cpu",
        default_root_dir=str(out_dir), logger=L.pytorch.loggers.CSVLogger(str(out_dir)),
        enable_checkpointing=False, log_every_n_steps=max(1, steps_per_epoch // 2),
        deterministic=True, enable_model_summary=False,
        check_val_every_n_epoch=max(1, 200 // steps_per_epoch),
        callbacks=[CpuBudget(cpu_minutes)], enable_progress_bar=True,
    )
    trainer.fit(module, train_loader, val_loader)
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = out_dir / "model.ckpt"
    trainer.save_checkpoint(checkpoint, weights_only=True)
    return checkpoint
