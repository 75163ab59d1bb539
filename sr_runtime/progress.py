"""Progress of a run on the terminal: a rich bar (steps, HR Mpix/s, ETA), plain lines otherwise.

Part of the command-line layer: the library (:func:`sr_runtime.runner.run`) takes any callable
progress factory, or none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
from rich.console import Console

from sr_runtime.steps import StepOutcome
from sr_runtime.summary import StreamSummary

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


class Reporter:
    """A rich progress bar (steps, HR Mpix/s, ETA) on a terminal, plain lines otherwise."""

    def __init__(self, console: Console, total: int, quiet: bool) -> None:
        self.console, self.total, self.quiet = console, total, quiet
        self.bar: Progress | None = None
        self.task: TaskID | None = None

    def __enter__(self) -> Reporter:
        if not self.quiet and self.console.is_terminal and self.total > 1:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(TextColumn("super-resolving"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                                console=self.console, transient=False)
            self.bar.start()
            self.task = self.bar.add_task("steps", total=self.total, rate="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def __call__(self, outcome: StepOutcome, summary: StreamSummary) -> None:
        if self.quiet or self.total == 1:
            return
        rate = f"{summary.hr_mpix_per_s:.1f} HR Mpix/s"
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, advance=1, rate=rate)
            return
        when = pd.Timestamp(outcome.time).strftime("%Y-%m-%dT%H:%M")
        done = summary.steps + summary.skipped
        self.console.print(f"[{done}/{self.total}] {when}: wrote {', '.join(outcome.outputs)} "
                           f"({rate})", soft_wrap=True)
