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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import lightning as L
import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader
from torchmetrics.functional.image import structural_similarity_index_measure

from sr_export.checkpoints import SR_EDGE_HPARAMS_KEY
from sr_export.model import SRResNet, SRResNetConfig, conserve_block_means
from sr_export.tracking import Tracker
from sr_export.training_data import RegionCrops, build_training_data, split_times
from sr_runtime.description import StaticSpec, VariableSpec
from sr_runtime.errors import UsageError
from sr_runtime.paths import atomic_output

if TYPE_CHECKING:
    from rich.console import Console

    from sr_export.stream_data import Statistics, StreamSettings


class SRLightningModule(L.LightningModule):
    """SRResNet + normalization + metrics in physical units.

    With static fields each batch is ``(lr, static, hr)``; with the conservation layer the
    prediction is made conservative in physical units (as the exported graph does) before the
    loss, so the network learns under the constraint it will run with.
    """

    def __init__(self, model: dict, variables: list[dict], learning_rate: float = 1e-3,
                 data_range: float = 30.0, lr_step_deg: float = 0.0,
                 static_inputs: list[dict] | None = None) -> None:
        super().__init__()
        self.save_hyperparameters({SR_EDGE_HPARAMS_KEY: {
            "model": model, "variables": variables, "lr_step_deg": lr_step_deg,
            "static_inputs": list(static_inputs or [])},
            "learning_rate": learning_rate, "data_range": data_range})
        self.model = SRResNet(SRResNetConfig.from_dict(model))
        self.variables = [VariableSpec(**v) for v in variables]
        self.learning_rate = learning_rate
        self.data_range = data_range

        def stats(values: list[float]) -> torch.Tensor:
            return torch.tensor(values, dtype=torch.float32).reshape(1, -1, 1, 1)

        for name, values in (("hr_std", [v.hr_std for v in self.variables]),
                             ("hr_mean", [v.hr_mean for v in self.variables]),
                             ("lr_std", [v.lr_std for v in self.variables]),
                             ("lr_mean", [v.lr_mean for v in self.variables])):
            self.register_buffer(name, stats(values), persistent=False)

    def forward(self, lr: torch.Tensor, static: torch.Tensor | None = None) -> torch.Tensor:
        out = self.model(lr) if static is None else self.model(lr, static)
        if self.model.config.conservation == "block_mean":
            variables = lr[:, :self.model.config.in_channels]  # not the clock channels
            physical = conserve_block_means(self._physical(out),
                                            variables * self.lr_std + self.lr_mean,
                                            self.model.config.scaling_factor)
            out = (physical - self.hr_mean) / self.hr_std
        return out

    def _physical(self, normalized: torch.Tensor) -> torch.Tensor:
        return normalized * self.hr_std + self.hr_mean

    def _predict(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        if len(batch) == 3:
            lr, static, hr = batch
            prediction = self(lr, static)
        else:
            lr, hr = batch
            prediction = self(lr)
        # a crop streamed with its halo: the truth covers only the centre (no loss at edges)
        margin = (prediction.shape[-1] - hr.shape[-1]) // 2
        if margin > 0:
            prediction = prediction[..., margin:margin + hr.shape[-2], margin:margin + hr.shape[-1]]
        return prediction, hr

    def training_step(self, batch, _index):
        prediction, hr = self._predict(batch)
        loss = F.mse_loss(prediction, hr)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, _index):
        prediction, hr = self._predict(batch)
        loss = F.mse_loss(prediction, hr)
        pred_k, true_k = self._physical(prediction)[:, :1], self._physical(hr)[:, :1]
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


class StreamMeter(L.Callback):
    """Samples/s, MB/s read and the share of wall time the step waited for data.

    The wait is the gap between one batch's end and the next one's start (validation left
    out): there the loop only takes a batch from the DataLoader, so a loader that keeps up makes
    it small.
    """

    def __init__(self, batch_size: int, bytes_read: Callable[[], float]) -> None:
        self.batch_size, self.bytes_read = batch_size, bytes_read
        self.wait_s = self.step_s = self.validation_s = 0.0
        self.samples = 0
        self.started = self.last_end = self.batch_start = None  # type: float | None
        self.finished = self.validation_start = 0.0

    def on_validation_start(self, trainer, module) -> None:
        self.validation_start = time.perf_counter()

    def on_validation_end(self, trainer, module) -> None:
        spent = time.perf_counter() - self.validation_start
        if self.last_end is not None and not trainer.sanity_checking:
            self.last_end += spent  # validating is not waiting for training data
            self.validation_s += spent

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        now = time.perf_counter()
        if self.started is None:
            self.started = now
        elif self.last_end is not None:
            self.wait_s += now - self.last_end
        self.batch_start = now

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        if self.batch_start is not None:
            self.step_s += now - self.batch_start
        self.last_end = self.finished = now
        self.samples += self.batch_size

    def figures(self) -> dict[str, float]:
        wall = self.finished - (self.started or self.finished) - self.validation_s
        return {"samples_per_s": self.samples / wall if wall > 0 else 0.0,
                "read_MB_per_s": self.bytes_read() / 2**20 / wall if wall > 0 else 0.0,
                "read_MB": self.bytes_read() / 2**20,
                "data_wait_fraction": (self.wait_s / (self.wait_s + self.step_s)
                                       if self.wait_s + self.step_s > 0 else 0.0)}

    def status(self) -> str:
        f = self.figures()
        return (f"{f['samples_per_s']:.0f} samples/s, {f['read_MB_per_s']:.1f} MB/s read, "
                f"data wait {100 * f['data_wait_fraction']:.0f} %")


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


@dataclass(frozen=True)
class TrainResult:
    """What a training run left: the export checkpoint, the resumable one, where it started."""

    checkpoint: Path  # weights and description only (what `sr-export to-onnx` takes)
    last: Path  # the full training state (what --resume continues from)
    start_step: int
    global_step: int
    cpu_minutes: float
    metrics: dict[str, float]
    throughput: dict[str, float] = field(default_factory=dict)  # StreamMeter.figures()


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


@dataclass
class TrainingInputs:
    """The loaders and the normalization a run trains with, whatever the data came from."""

    train: DataLoader
    val: DataLoader
    variables: list[VariableSpec]
    statics: list[StaticSpec]
    data_range: float
    lr_step_deg: float
    params: dict[str, object]
    endless: bool = False  # a stream with no epochs: validate every N steps
    bytes_read: Callable[[], float] = lambda: 0.0


def _sample_inputs(times: np.ndarray, variables: tuple[str, ...], statics: tuple[str, ...],
                   area: str, val_fraction: float, seed: int, crop_lr: int, batch_size: int,
                   console: Console | None, augment: str = "none",
                   clock: bool = False) -> TrainingInputs:
    """Crops of the embedded sample, regenerated in memory (it is small)."""
    if console is not None:
        with console.status(f"synthesizing {times.size} training times ({area})"):
            data = build_training_data(times, variables, statics, area, clock=clock)
    else:
        data = build_training_data(times, variables, statics, area, clock=clock)
    n = times.size
    val_idx, train_idx = split_times(n, val_fraction, seed)
    n_val = int(val_idx.numel())
    n_regions = len(data.regions)
    if train_idx.numel() * n_regions < batch_size:
        raise UsageError(f"{train_idx.numel() * n_regions} training fields are fewer than one "
                         f"batch of {batch_size}; lower --batch-size or train on more times")
    val_crop = min(32, *(min(r.lr.shape[-2:]) for r in data.regions))
    train_loader = DataLoader(
        RegionCrops(data, train_idx, crop_lr, int(train_idx.numel()) * n_regions,
                    augment=augment),
        batch_size=batch_size, shuffle=True, drop_last=True)
    val_loader = DataLoader(RegionCrops(data, val_idx, val_crop, n_val * n_regions,
                                        fixed_seed=seed), batch_size=batch_size)
    params: dict[str, object] = {
        "data.source": "sample", "data.area": area, "data.regions": n_regions,
        "data.first_time": str(np.datetime_as_string(times[0], "m")),
        "data.last_time": str(np.datetime_as_string(times[-1], "m")), "data.steps": int(n),
        "data.train_fields": int(train_idx.numel()) * n_regions,
        "data.val_fields": n_val * n_regions, "data.augment": augment, "data.clock": clock}
    return TrainingInputs(train_loader, val_loader, data.variables, data.statics,
                          data.data_range, data.lr_step_deg, params)


def _stream_inputs(stream: StreamSettings, crop_lr: int, batch_size: int, seed: int,
                   start_step: int, console: Console | None) -> TrainingInputs:
    """Crops streamed from the two stores by worker processes (see sr_export.stream_data)."""
    from sr_export.stream_data import BlockCrops, HeldOutCrops, check_crop

    pair = stream.pair
    check_crop(pair, crop_lr, stream.halo)  # before the statistics pass, not after it
    stats = _streamed_statistics(stream, console)
    train_set = BlockCrops(pair, stats, crop=crop_lr, halo=stream.halo,
                           crops_per_block=stream.crops_per_block, seed=seed,
                           block_hours=stream.block_hours, first_pass=start_step)
    val_set = HeldOutCrops(pair, stats, crop=crop_lr, halo=stream.halo,
                           crops_per_block=stream.val_crops_per_block, seed=seed + 1,
                           block_hours=stream.block_hours)
    workers = stream.workers
    extra: dict[str, object] = ({"persistent_workers": True, "prefetch_factor": stream.prefetch}
                                if workers else {})
    train_loader = DataLoader(train_set, batch_size=batch_size, num_workers=workers, **extra)
    val_loader = DataLoader(val_set, batch_size=batch_size, num_workers=min(workers, 1),
                            **({"persistent_workers": True} if workers else {}))
    params: dict[str, object] = {
        "data.source": pair.description["source"], "data.truth": pair.description["truth"],
        "data.bbox": pair.description["bbox"], "data.lr_cells": pair.description["lr_cells"],
        "data.first_time": str(np.datetime_as_string(pair.times[0], "m")),
        "data.last_time": str(np.datetime_as_string(pair.times[-1], "m")),
        "data.steps": int(pair.times.size), "data.val_steps": int(pair.val_times.size),
        "data.val_first_time": str(np.datetime_as_string(pair.val_times[0], "m")),
        "data.val_last_time": str(np.datetime_as_string(pair.val_times[-1], "m")),
        "data.halo_lr": stream.halo, "data.crops_per_block": stream.crops_per_block,
        "data.block_hours": stream.block_hours, "data.cache_mb": pair.cache_mb,
        "data.workers": workers}
    return TrainingInputs(train_loader, val_loader, stats.variables, list(pair.statics),
                          stats.data_range, pair.lr_step_deg, params, endless=True,
                          bytes_read=lambda: train_set.bytes_read.value)


def _streamed_statistics(stream: StreamSettings, console: Console | None) -> Statistics:
    from sr_export.stream_data import blocks, stream_statistics

    if console is None:
        return stream_statistics(stream.pair, stream.block_hours)
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("normalization"), BarColumn(), TextColumn("{task.completed:.0f}/"
                  "{task.total:.0f} blocks"), TextColumn("{task.fields[read]}"),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("stats", total=len(blocks(stream.pair.hr_time, stream.block_hours)),
                            read="")
        started = time.perf_counter()

        def progress(done: int, total: int, nbytes: int) -> None:
            rate = nbytes / 2**20 / max(time.perf_counter() - started, 1e-9)
            bar.update(task, completed=done, total=total,
                       read=f"{nbytes / 2**20:.1f} MB read, {rate:.1f} MB/s")

        stats = stream_statistics(stream.pair, stream.block_hours, progress)
    console.print(f"normalization from {stream.pair.times.size} training hours: " + ", ".join(
        f"{v.name} LR {v.lr_mean:.2f}±{v.lr_std:.2f}, HR {v.hr_mean:.2f}±{v.hr_std:.2f} "
        f"{v.units}" for v in stats.variables))
    return stats


def check_clock_source(config: SRResNetConfig, *, streamed: bool) -> None:
    """Clock inputs are added to sample crops only: a streamed run with them is refused."""
    if streamed and config.clock_channels:
        raise UsageError("--clock-inputs trains on the embedded sample only: the streamed "
                         "loader (--source) does not add the clock channels; drop one of the two")


def train(config: SRResNetConfig, out_dir: Path, *, cpu_minutes: float, times: np.ndarray,
          batch_size: int = 16, learning_rate: float = 1e-3, val_fraction: float = 0.1,
          seed: int = 42, threads: int | None = None, crop_lr: int = 16,
          max_steps: int | None = None, resume_from: Path | None = None,
          tracker: Tracker | None = None, console: Console | None = None,
          checkpoint_every_s: float = 300.0, val_every_steps: int = 200,
          variables: tuple[str, ...] = ("t2m",), statics: tuple[str, ...] = (),
          area: str = "sample", stream: StreamSettings | None = None,
          augment: str = "none") -> TrainResult:
    """Train under a CPU-time budget (and at most ``max_steps`` optimizer steps in all).

    ``variables``/``statics``: the predicted variables and the static HR fields the network
    takes (``config`` must have as many channels); ``area``: see :mod:`sr_export.training_data`.
    ``augment``: random symmetries of sample crops (:class:`~sr_export.training_data.RegionCrops`).
    ``resume_from``: a ``last.ckpt`` to continue from (weights, optimizer, step, budget spent).
    ``tracker``: where parameters and metrics go; ``console``: where the progress bar goes.
    """
    if (config.in_channels, config.out_channels, config.static_channels) != (
            len(variables), len(variables), len(statics)):
        raise UsageError(f"the network has {config.in_channels} input, {config.out_channels} "
                         f"output and {config.static_channels} static channels but training "
                         f"asks for {len(variables)} variables and {len(statics)} static fields")
    tracker = tracker or Tracker()
    resume_state = read_resume_state(resume_from, config) if resume_from else None
    start_step = int(resume_state["global_step"]) if resume_state else 0
    del resume_state
    L.seed_everything(seed, workers=True, verbose=False)
    if threads:
        torch.set_num_threads(threads)
    check_clock_source(config, streamed=stream is not None)
    if stream is not None:
        inputs = _stream_inputs(stream, crop_lr, batch_size, seed, start_step, console)
    else:
        inputs = _sample_inputs(times, variables, statics, area, val_fraction, seed, crop_lr,
                                batch_size, console, augment=augment,
                                clock=bool(config.clock_channels))
    module = SRLightningModule(config.to_dict(), [v.__dict__ for v in inputs.variables],
                               learning_rate, inputs.data_range, inputs.lr_step_deg,
                               [s.__dict__ for s in inputs.statics])
    if inputs.endless:
        log_every = max(1, min(50, val_every_steps // 2))
        schedule = {"check_val_every_n_epoch": None, "val_check_interval": val_every_steps}
    else:
        steps_per_epoch = len(inputs.train)
        log_every = max(1, steps_per_epoch // 2)
        schedule = {"check_val_every_n_epoch": max(1, val_every_steps // steps_per_epoch)}
    tracker.log_params({
        **{f"model.{k}": v for k, v in config.to_dict().items()},
        **inputs.params, "data.variables": ",".join(variables),
        "data.statics": ",".join(statics), "data.crop_lr": crop_lr,
        "data.range_K": round(inputs.data_range, 4),
        "train.batch_size": batch_size, "train.learning_rate": learning_rate,
        "train.cpu_minutes": cpu_minutes, "train.max_steps": max_steps, "train.seed": seed,
        "train.val_fraction": val_fraction, "train.threads": threads or torch.get_num_threads(),
        "train.resume_from_step": start_step, "train.val_every_steps": val_every_steps,
    })
    budget = CpuBudget(cpu_minutes)
    out_dir.mkdir(parents=True, exist_ok=True)
    last = LastCheckpoint(out_dir / "last.ckpt", checkpoint_every_s)
    meter = StreamMeter(batch_size, inputs.bytes_read)
    callbacks: list[L.Callback] = [budget, last, TrackMetrics(tracker, budget, log_every), meter]
    if console is not None:
        from sr_export.train_progress import TrainingProgress

        callbacks.append(TrainingProgress(console, budget, max_steps, start_step,
                                          throughput=meter.status if inputs.endless else None))
    with quiet_lightning():
        trainer = L.Trainer(
            max_epochs=-1, max_steps=max_steps if max_steps else -1, accelerator="cpu",
            default_root_dir=str(out_dir), logger=L.pytorch.loggers.CSVLogger(str(out_dir)),
            enable_checkpointing=False, log_every_n_steps=log_every,
            deterministic=True, enable_model_summary=False, **schedule,
            callbacks=callbacks, enable_progress_bar=False,
        )
        trainer.fit(module, inputs.train, inputs.val,
                    ckpt_path=str(resume_from) if resume_from else None, weights_only=True)
        last.save(trainer)
        checkpoint = out_dir / "model.ckpt"
        with atomic_output(checkpoint) as tmp:
            trainer.save_checkpoint(tmp, weights_only=True)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    throughput = meter.figures()
    tracker.log_metrics({"global_step": trainer.global_step,
                         "cpu_minutes": budget.used_seconds() / 60.0,
                         **{f"loader.{k}": v for k, v in throughput.items()}},
                        step=trainer.global_step)
    return TrainResult(checkpoint, last.path, start_step, int(trainer.global_step),
                       budget.used_seconds() / 60.0, metrics, throughput)
