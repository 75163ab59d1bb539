"""The terminal's view of a training run: one bar against the nearer limit, no epoch counter.

Training stops on a CPU-time budget (or a step limit), so an epoch count has no end to show
("Epoch 0/99999" is what Lightning's own bar would print). This bar shows the share of the
budget or of the steps used, whichever is further along, with the step, the training loss and
the last validation scores; without a terminal it prints one plain line per validation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import lightning as L
from rich.console import Console

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from sr_export.training import CpuBudget


class TrainingProgress(L.Callback):
    """A rich bar on a terminal, a line per validation otherwise (on ``console``)."""

    def __init__(self, console: Console, budget: CpuBudget, max_steps: int | None,
                 start_step: int = 0, throughput: Callable[[], str] | None = None) -> None:
        self.console, self.budget, self.max_steps = console, budget, max_steps
        self.throughput = throughput  # a streamed run: samples/s, MB/s read, data wait
        self.start_step = start_step
        self.bar: Progress | None = None
        self.task: TaskID | None = None
        self.scores = ""

    def fraction(self, step: int) -> float:
        used = self.budget.used()
        if self.max_steps:
            used = max(used, step / self.max_steps)
        return min(1.0, used)

    def limits(self) -> str:
        text = f"{self.budget.budget_s / 60:g} CPU-min"
        return text + (f" or {self.max_steps} steps" if self.max_steps else "")

    def on_train_start(self, trainer, module) -> None:
        start = f" from step {self.start_step}" if self.start_step else ""
        batches = trainer.num_training_batches
        what = ("training on streamed crops" if batches == float("inf")
                else f"training {batches} batches per epoch")
        self.console.print(f"{what}{start}, until {self.limits()}")
        if self.console.is_terminal:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("training"), BarColumn(),
                                TextColumn("{task.percentage:>3.0f}%"),
                                TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                                console=self.console)
            self.bar.start()
            self.task = self.bar.add_task("train", total=1.0, status="")

    def status(self, trainer) -> str:
        loss = trainer.callback_metrics.get("train_loss")
        text = f"step {trainer.global_step}"
        if loss is not None:
            text += f", loss {float(loss):.4f}"
        if self.throughput is not None:
            text += f", {self.throughput()}"
        return text + (f"; {self.scores}" if self.scores else "")

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, completed=self.fraction(trainer.global_step),
                            status=self.status(trainer))

    def on_validation_end(self, trainer, module) -> None:
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        if "val_rmse_K" in metrics:
            self.scores = (f"val RMSE {float(metrics['val_rmse_K']):.3f} K, PSNR "
                           f"{float(metrics['val_psnr_dB']):.2f} dB, SSIM "
                           f"{float(metrics['val_ssim']):.4f}")
        if self.bar is None:
            self.console.print(f"{100 * self.fraction(trainer.global_step):3.0f}% "
                               f"{self.status(trainer)}, {self.budget.used_seconds() / 60:.1f} "
                               "CPU-min")

    def _stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def on_train_end(self, trainer, module) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, completed=self.fraction(trainer.global_step),
                            status=self.status(trainer))
        self._stop()

    def on_exception(self, trainer, module, exception: BaseException) -> None:
        self._stop()
