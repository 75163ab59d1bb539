"""Lightning training of SRResNet on the embedded sample (regenerated on the fly).

The LightningModule saves its hyper-parameters and the normalization statistics in every
checkpoint (unlike the demo), so a checkpoint alone describes the model. Loss is MSE on
normalized fields; RMSE, PSNR and SSIM are logged in kelvin with a stated data range.

A run writes ``last.ckpt`` (the full training state, atomically, every few minutes and at the
end), which ``resume_from`` continues: global step, optimizer, CPU budget spent. Metrics go to
the tracker (:mod:`sr_export.tracking`, a no-op without ``--mlflow``) and the terminal gets one
progress bar (:mod:`sr_export.train_progress`) instead of Lightning's banners and epoch counter.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import lightning as L
import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torchmetrics.functional.image import structural_similarity_index_measure

from sr_export.checkpoints import SR_EDGE_HPARAMS_KEY
from sr_export.model import SRResNet, SRResNetConfig
from sr_export.tracking import Tracker
from sr_runtime.description import VariableSpec
from sr_runtime.errors import UsageError
from sr_runtime.paths import atomic_output

if TYPE_CHECKING:
    from rich.console import Console


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
    The CPU time spent is saved in checkpoints, so a resumed run continues the budget and the
    learning-rate schedule where they were.
    """

    def __init__(self, cpu_minutes: float, floor: float = 0.02) -> None:
        self.budget_s = cpu_minutes * 60.0
        self.floor = floor
        self.started = time.process_time()
        self.spent_before = 0.0  # CPU seconds of the sessions before a resume

    def used_seconds(self) -> float:
        return self.spent_before + time.process_time() - self.started

    def used(self) -> float:
        return self.used_seconds() / self.budget_s

    def state_dict(self) -> dict[str, float]:
        return {"cpu_seconds": self.used_seconds()}

    def load_state_dict(self, state_dict: dict[str, float]) -> None:
        self.spent_before = float(state_dict.get("cpu_seconds", 0.0))

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
            module.log("cpu_minutes", self.used_seconds() / 60.0)


class LastCheckpoint(L.Callback):
    """The full training state (weights, optimizer, loops, callbacks) in ``last.ckpt``, written
    atomically every ``every_s`` seconds and by :func:`train` at the end: what ``--resume``
    continues from, also after a crash."""

    def __init__(self, path: Path, every_s: float = 300.0) -> None:
        self.path, self.every_s = Path(path), every_s
        self.saved = time.monotonic()

    def save(self, trainer: L.Trainer) -> None:
        with atomic_output(self.path) as tmp:
            trainer.save_checkpoint(tmp)
        self.saved = time.monotonic()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if time.monotonic() - self.saved >= self.every_s:
            self.save(trainer)


class TrackMetrics(L.Callback):
    """Losses, validation RMSE / PSNR / SSIM (K, dB) and CPU time to the tracker, by step.

    Its state in a checkpoint is the tracked run that wrote it, so a resumed run names the one
    it continues."""

    def __init__(self, tracker: Tracker, budget: CpuBudget, every_n_steps: int) -> None:
        self.tracker, self.budget, self.every = tracker, budget, max(1, every_n_steps)
        self.resumed_run: str | None = None

    def state_dict(self) -> dict[str, str]:
        return {"mlflow_run_id": self.tracker.run_id or ""}

    def load_state_dict(self, state_dict: dict[str, str]) -> None:
        self.resumed_run = state_dict.get("mlflow_run_id") or None
        if self.resumed_run:
            self.tracker.set_tags({"sr_edge.resumed_run_id": self.resumed_run})

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if trainer.global_step % self.every == 0 and "train_loss" in trainer.callback_metrics:
            self.tracker.log_metrics({"train_loss": trainer.callback_metrics["train_loss"]},
                                     step=trainer.global_step)

    def on_validation_end(self, trainer, module) -> None:
        if trainer.sanity_checking:
            return
        metrics: dict[str, object] = {k: float(v) for k, v in trainer.callback_metrics.items()
                                      if k.startswith("val_")}
        metrics.update(epoch=trainer.current_epoch,
                       cpu_minutes=self.budget.used_seconds() / 60.0)
        self.tracker.log_metrics(metrics, step=trainer.global_step)


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """No adverts ("💡 Tip: ... litlogger"), accelerator inventory or data-loader-worker hints:
    Lightning's info lines are silenced and those warnings ignored while training."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric",
                                                    "pytorch_lightning", "lightning_fabric")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for message in (".*does not have many workers.*", ".*is smaller than the logging "
                            "interval.*", ".*litlogger.*", ".*litmodels.*",
                            ".*isinstance.treespec, LeafSpec.*",
                            # random crops of shuffled fields: a mid-epoch resume samples alike
                            ".*resuming from a checkpoint that ended before the epoch ended.*"):
                warnings.filterwarnings("ignore", message=message)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


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


@dataclass(frozen=True)
class TrainResult:
    """What a training run left: the export checkpoint, the resumable one, where it started."""

    checkpoint: Path  # weights and description only (what `sr-export to-onnx` takes)
    last: Path  # the full training state (what --resume continues from)
    start_step: int
    global_step: int
    cpu_minutes: float
    metrics: dict[str, float]


def resume_path(out_dir: Path, resume: bool, resume_from: Path | None) -> Path | None:
    """The checkpoint ``--resume`` / ``--resume-from`` name (None: start afresh)."""
    if resume and resume_from is not None:
        raise UsageError("give --resume (OUT_DIR/last.ckpt) or --resume-from PATH, not both")
    if resume_from is not None:
        return Path(resume_from)
    return Path(out_dir) / "last.ckpt" if resume else None


def read_resume_state(path: Path, config: SRResNetConfig) -> dict:
    """The training state to resume from, checked: a full checkpoint of the same network."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no checkpoint to resume from at {path}; train without --resume "
                         "first, or pass --resume-from PATH")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle or zip errors, forbidden globals
        raise UsageError(f"{path} is not a loadable training checkpoint "
                         f"({type(exc).__name__}); resume from the last.ckpt a run wrote") \
            from None
    if not isinstance(state, dict) or "optimizer_states" not in state or "loops" not in state:
        raise UsageError(f"{path} holds weights only, not a training state; resume from the "
                         "last.ckpt beside it")
    saved = ((state.get("hyper_parameters") or {}).get(SR_EDGE_HPARAMS_KEY) or {}).get("model")
    if not isinstance(saved, dict):
        raise UsageError(f"{path} is not an sr-edge training checkpoint (no architecture "
                         "saved); resume from a last.ckpt written by sr-export train")
    differs = {k: (v, saved.get(k)) for k, v in config.to_dict().items() if saved.get(k) != v}
    if differs:
        what = ", ".join(f"{k} {old!r} (asked {new!r})" for k, (new, old) in differs.items())
        raise UsageError(f"{path} was trained with {what}; resume with the same architecture "
                         "options or start a new --out-dir")
    return state


def train(config: SRResNetConfig, out_dir: Path, *, cpu_minutes: float, times: np.ndarray,
          batch_size: int = 16, learning_rate: float = 1e-3, val_fraction: float = 0.1,
          seed: int = 42, threads: int | None = None, crop_lr: int = 16,
          max_steps: int | None = None, resume_from: Path | None = None,
          tracker: Tracker | None = None, console: Console | None = None,
          checkpoint_every_s: float = 300.0, val_every_steps: int = 200) -> TrainResult:
    """Train under a CPU-time budget (and at most ``max_steps`` optimizer steps in all).

    ``resume_from``: a ``last.ckpt`` to continue from (weights, optimizer, step, budget spent).
    ``tracker``: where parameters and metrics go; ``console``: where the progress bar goes.
    """
    tracker = tracker or Tracker()
    resume_state = read_resume_state(resume_from, config) if resume_from else None
    start_step = int(resume_state["global_step"]) if resume_state else 0
    del resume_state
    L.seed_everything(seed, workers=True, verbose=False)
    if threads:
        torch.set_num_threads(threads)
    data = sample_training_data(times)
    n = data.lr.shape[0]
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = max(1, int(n * val_fraction))
    val_idx, train_idx = order[:n_val], order[n_val:]
    if train_idx.numel() < batch_size:
        raise UsageError(f"{train_idx.numel()} training fields are fewer than one batch of "
                         f"{batch_size}; lower --batch-size or train on more times")
    train_loader = DataLoader(RandomCrops(data.lr[train_idx], data.hr[train_idx], crop_lr),
                              batch_size=batch_size, shuffle=True, drop_last=True)
    val_loader = DataLoader(TensorDataset(data.lr[val_idx], data.hr[val_idx]),
                            batch_size=batch_size)
    module = SRLightningModule(config.to_dict(), [v.__dict__ for v in data.variables],
                               learning_rate, data.data_range, data.lr_step_deg)
    steps_per_epoch = len(train_loader)
    log_every = max(1, steps_per_epoch // 2)
    tracker.log_params({
        **{f"model.{k}": v for k, v in config.to_dict().items()},
        "data.source": "sample", "data.first_time": str(np.datetime_as_string(times[0], "m")),
        "data.last_time": str(np.datetime_as_string(times[-1], "m")), "data.steps": int(n),
        "data.train_fields": int(train_idx.numel()), "data.val_fields": n_val,
        "data.crop_lr": crop_lr, "data.range_K": round(data.data_range, 4),
        "train.batch_size": batch_size, "train.learning_rate": learning_rate,
        "train.cpu_minutes": cpu_minutes, "train.max_steps": max_steps, "train.seed": seed,
        "train.val_fraction": val_fraction, "train.threads": threads or torch.get_num_threads(),
        "train.resume_from_step": start_step, "train.val_every_steps": val_every_steps,
    })
    budget = CpuBudget(cpu_minutes)
    out_dir.mkdir(parents=True, exist_ok=True)
    last = LastCheckpoint(out_dir / "last.ckpt", checkpoint_every_s)
    callbacks: list[L.Callback] = [budget, last, TrackMetrics(tracker, budget, log_every)]
    if console is not None:
        from sr_export.train_progress import TrainingProgress

        callbacks.append(TrainingProgress(console, budget, max_steps, start_step))
    with quiet_lightning():
        trainer = L.Trainer(
            max_epochs=-1, max_steps=max_steps if max_steps else -1, accelerator="cpu",
            default_root_dir=str(out_dir), logger=L.pytorch.loggers.CSVLogger(str(out_dir)),
            enable_checkpointing=False, log_every_n_steps=log_every,
            deterministic=True, enable_model_summary=False,
            check_val_every_n_epoch=max(1, val_every_steps // steps_per_epoch),
            callbacks=callbacks, enable_progress_bar=False,
        )
        trainer.fit(module, train_loader, val_loader,
                    ckpt_path=str(resume_from) if resume_from else None, weights_only=True)
        last.save(trainer)
        checkpoint = out_dir / "model.ckpt"
        with atomic_output(checkpoint) as tmp:
            trainer.save_checkpoint(tmp, weights_only=True)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    tracker.log_metrics({"global_step": trainer.global_step,
                         "cpu_minutes": budget.used_seconds() / 60.0}, step=trainer.global_step)
    return TrainResult(checkpoint, last.path, start_step, int(trainer.global_step),
                       budget.used_seconds() / 60.0, metrics)
