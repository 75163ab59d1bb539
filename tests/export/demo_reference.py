"""A stand-in for the ESA demo's training run and inference path (facts: esa-demo.md).

What a user brings from the demo is produced here the way the demo produces it, with nothing
from sr-edge: a plain torch SRResNet held as ``self.model`` by a LightningModule that never
calls ``save_hyperparameters``, trained by a real Lightning ``Trainer`` with a
``ModelCheckpoint`` on ``val_ssim``; the best network's bare state dict saved as a ``.pt``
beside the best ``.ckpt``; ``config.json`` in the Lightning log folder, in the demo's exact
shape (key order, types: ``data_variable``/``data_target`` are strings). The demo's inference
path (degC, normalize with the LR stats, network, denormalize with the HR stats, south-to-north
arrays) is :func:`demo_inference`, the reference sr-edge's output is compared with.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

KELVIN = 273.15


class ConvolutionalBlock(nn.Module):
    """conv -> BatchNorm? -> activation?, as ``self.conv_block`` (the demo's layout)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, batch_norm: bool = False,
                 activation: str | None = None) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(c_out))
        if activation == "prelu":
            layers.append(nn.PReLU())
        elif activation == "relu":
            layers.append(nn.ReLU())
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_block(x)


class SubPixelConvolutionalBlock(nn.Module):
    def __init__(self, kernel: int, channels: int, factor: int = 2) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * factor**2, kernel, padding=kernel // 2)
        self.pixel_shuffle = nn.PixelShuffle(factor)
        self.prelu = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.prelu(self.pixel_shuffle(self.conv(x)))


class ResidualBlock(nn.Module):
    def __init__(self, kernel: int, channels: int) -> None:
        super().__init__()
        self.conv_block1 = ConvolutionalBlock(channels, channels, kernel, True, "prelu")
        self.conv_block2 = ConvolutionalBlock(channels, channels, kernel, True, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block2(self.conv_block1(x))


class SRResNet(nn.Module):
    """The demo's network: 9x9 head, residual blocks, 3x3 + BN, skip, x2 sub-pixel blocks,
    9x9 tail with the final ReLU."""

    def __init__(self, large_kernel_size: int = 9, small_kernel_size: int = 3,
                 n_channels: int = 64, n_blocks: int = 16, scaling_factor: int = 8) -> None:
        super().__init__()
        self.conv_block1 = ConvolutionalBlock(1, n_channels, large_kernel_size, False, "prelu")
        self.residual_blocks = nn.Sequential(
            *[ResidualBlock(small_kernel_size, n_channels) for _ in range(n_blocks)])
        self.conv_block2 = ConvolutionalBlock(n_channels, n_channels, small_kernel_size, True)
        self.subpixel_convolutional_blocks = nn.Sequential(
            *[SubPixelConvolutionalBlock(small_kernel_size, n_channels)
              for _ in range(int(math.log2(scaling_factor)))])
        self.conv_block3 = ConvolutionalBlock(n_channels, 1, large_kernel_size, False, "relu")

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        head = self.conv_block1(lr)
        body = self.conv_block2(self.residual_blocks(head)) + head
        return self.conv_block3(self.subpixel_convolutional_blocks(body))


def demo_config(n_channels: int, n_blocks: int) -> dict:
    """config.json exactly as the demo's training writes it (esa-demo.md; values vary)."""
    return {
        "model": {"architecture": "SRResNet", "large_kernel_size": 9, "small_kernel_size": 3,
                  "n_channels": n_channels, "n_blocks": n_blocks, "scaling_factor": 8},
        "training": {"streaming": False, "learning_rate": 0.001, "batch_size": 32,
                     "epochs": 100, "optimizer": "Adam", "loss_function": "mse_loss",
                     "devices": [0], "accelerator": "gpu", "deterministic": True, "seed": 42},
        "dataset": {"hr_zarr_url": "https://data.earthdatahub.destine.eu/d1-climate-dt/"
                                   "ScenarioMIP-SSP3-7.0-IFS-NEMO-0001-high-sfc-v0.zarr",
                    "lr_zarr_url": "https://data.earthdatahub.destine.eu/d1-climate-dt/"
                                   "ScenarioMIP-SSP3-7.0-IFS-NEMO-0001-standard-sfc-v0.zarr",
                    "time_range": "2024-10", "latitude_range": [47, 58.22],
                    "longitude_range": [5, 16.25], "data_variable": "t2m", "data_target": "t2m",
                    "unit": "Temperature (C)", "hr_mean": 10.0942, "hr_std": 4.2342,
                    "lr_mean": 10.0072, "lr_std": 4.3036},
        "validation": {"val_split_ratio": 0.3},
        "checkpoint": {"monitor": "val_ssim", "mode": "max",
                       "filename": "best-val-ssim-{epoch:02d}-{val_ssim:.2f}", "save_top_k": 1},
        "visualization": {"color_map": "YlOrRd"},
    }


@dataclass(frozen=True)
class DemoRun:
    ckpt: Path
    pt: Path
    config: Path
    stats: dict[str, float]  # degC, from config.json


def _lightning_module(network: nn.Module, learning_rate: float):  # type: ignore[no-untyped-def]
    import lightning as L
    from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

    class SRModule(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = network  # no save_hyperparameters: the .ckpt has none
            self.psnr = PeakSignalNoiseRatio(data_range=10.0)  # required by torchmetrics 1.x
            self.ssim = StructuralSimilarityIndexMeasure()

        def training_step(self, batch, _index):  # type: ignore[no-untyped-def]
            lr, hr = batch
            loss = F.mse_loss(self.model(lr), hr)
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch, _index):  # type: ignore[no-untyped-def]
            lr, hr = batch
            sr = self.model(lr)
            self.log("val_loss", F.mse_loss(sr, hr))
            self.log("val_psnr", self.psnr(sr, hr))
            self.log("val_ssim", self.ssim(sr, hr))

        def configure_optimizers(self):  # type: ignore[no-untyped-def]
            return torch.optim.Adam(self.parameters(), lr=learning_rate)

    return SRModule()


def train_demo(folder: Path, n_channels: int = 8, n_blocks: int = 2) -> DemoRun:
    """Train for two tiny epochs the demo's way; return its .ckpt, .pt and config.json."""
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger
    from torch.utils.data import DataLoader, TensorDataset

    config = demo_config(n_channels, n_blocks)
    L.seed_everything(config["training"]["seed"], verbose=False)
    network = SRResNet(**{k: v for k, v in config["model"].items() if k != "architecture"})
    module = _lightning_module(network, config["training"]["learning_rate"])
    rng = np.random.default_rng(0)
    hr = torch.from_numpy(rng.normal(0, 1, (12, 1, 32, 32)).astype(np.float32))
    lr = F.avg_pool2d(hr, 8)
    train = DataLoader(TensorDataset(lr[:8], hr[:8]), batch_size=4, shuffle=True)
    val = DataLoader(TensorDataset(lr[8:], hr[8:]), batch_size=4)
    checkpoint = ModelCheckpoint(monitor=config["checkpoint"]["monitor"],
                                 mode=config["checkpoint"]["mode"],
                                 filename=config["checkpoint"]["filename"],
                                 save_top_k=config["checkpoint"]["save_top_k"])
    logger = CSVLogger(folder, name="lightning_logs")
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=1, deterministic=True,
                        logger=logger, callbacks=[checkpoint], enable_progress_bar=False,
                        enable_model_summary=False, log_every_n_steps=1,
                        default_root_dir=folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, train, val)
    best = Path(checkpoint.best_model_path)
    # save_best_model_as_pt: the best network's bare state dict, next to the best .ckpt
    module.load_state_dict(torch.load(best, weights_only=True)["state_dict"])
    pt = best.parent / "best_model.pt"
    torch.save(module.model.state_dict(), pt)
    # save_config_to_log_dir: the config plus the dataset statistics, with json.dump
    config_path = Path(trainer.log_dir) / "config.json"
    with open(config_path, "w") as handle:
        json.dump(config, handle)
    stats = {k: config["dataset"][k] for k in ("lr_mean", "lr_std", "hr_mean", "hr_std")}
    return DemoRun(best, pt, config_path, stats)


def demo_inference(pt: Path, config: Path, lr_kelvin: np.ndarray) -> np.ndarray:
    """The demo's app/inference path on one (lat ascending, lon) LR field in K -> HR in K."""
    settings = json.loads(config.read_text())
    model_cfg = {k: v for k, v in settings["model"].items() if k != "architecture"}
    stats = settings["dataset"]
    network = SRResNet(**model_cfg)
    network.load_state_dict(torch.load(pt, weights_only=True))
    network.eval()
    celsius = lr_kelvin.astype(np.float64) - KELVIN
    normalized = (celsius - stats["lr_mean"]) / stats["lr_std"]
    with torch.no_grad():
        out = network(torch.from_numpy(normalized.astype(np.float32))[None, None])[0, 0]
    return out.double().numpy() * stats["hr_std"] + stats["hr_mean"] + KELVIN
