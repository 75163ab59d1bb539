"""What one `sr-run` does, as a typed value: the CLI parses its text into a :class:`RunRequest`,
and any script can build one directly and pass it to :func:`sr_runtime.runner.run`.

:meth:`RunRequest.validate` checks everything the request alone can tell (exclusive options,
ranges of numbers, output kinds and names) without opening or writing anything.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sr_runtime.errors import UsageError
from sr_runtime.grid import BBox, parse_bbox
from sr_runtime.pipeline import UNITS
from sr_runtime.sinks.kinds import COG, ZARR, check_preview_name, output_kind
from sr_runtime.sinks.templates import check_template, is_template
from sr_runtime.times import parse_every, parse_time

#: --max-memory above this (a petabyte) is a typo, and would overflow the tile arithmetic
MAX_MEMORY_MB = 1e9


@dataclass(frozen=True)
class TimeRange:
    """``start, start + every, ... <= end`` (both ends included)."""

    start: np.datetime64
    end: np.datetime64
    every: np.timedelta64


@dataclass(frozen=True)
class RunRequest:
    """One run: which steps of which DataCube, through which model, into which outputs.

    Give ``time`` (one step) or ``times`` (a range). ``bbox`` None means the whole source grid.
    ``out`` is a COG (``.tif``), NetCDF (``.nc``), a name template of either, or a ``.zarr``
    store; ``units`` is ``K`` or ``degC``. ``static``: the store of static HR fields (orog,
    lsm) for models that take them (default: the source's companion high-resolution store).
    """

    out: Path
    time: np.datetime64 | None = None
    times: TimeRange | None = None
    nearest: bool = False
    model: Path | None = None
    backend: str = "auto"
    precision: str = "auto"  # auto, fp32 (the exact path), bf16, int8
    config: Path | None = None
    source: str = "sample"
    edh_url: str | None = None
    static: str | None = None
    bbox: BBox | None = None
    units: str = "K"
    lr_out: Path | None = None
    preview: Path | None = None
    report: bool = False
    truth: str | None = None
    overwrite: bool = False
    resume: bool = False
    max_memory: float | None = None
    workers: int | None = None
    scheduler: str | None = None
    quiet: bool = False

    @classmethod
    def from_text(cls, *, out: str | Path, time: str | None = None, start: str | None = None,
                  end: str | None = None, every: str = "1h", bbox: str | None = None,
                  whole_globe: bool = False, **options: Any) -> RunRequest:
        """Parse the command line's text values (times, range, region) into a request."""
        if time and (start or end):
            raise UsageError("give either --time or --start/--end, not both")
        if not time and not (start and end):
            raise UsageError("give --time for one step, or --start and --end for a range")
        if whole_globe and bbox:
            raise UsageError("--global and --bbox exclude each other; give one")
        span = None if time else TimeRange(parse_time(str(start)), parse_time(str(end)),
                                           parse_every(every))
        return cls(out=Path(out), time=parse_time(time) if time else None, times=span,
                   bbox=parse_bbox(bbox) if bbox is not None else None,
                   **options)

    @property
    def span(self) -> tuple[np.datetime64, np.datetime64, np.timedelta64] | None:
        return (self.times.start, self.times.end, self.times.every) if self.times else None

    def validate(self) -> str:
        """Everything the request alone can tell; returns the output kind (COG, ZARR...)."""
        if (self.time is None) == (self.times is None):
            raise UsageError("give either --time for one step or --start/--end for a range")
        from sr_runtime.engines.choice import check_precision_name

        check_precision_name(self.precision)
        if not self.source.strip():
            raise UsageError("--source is empty; give sample, edh[:MODEL/EXPERIMENT/VARIANT], "
                             "or a Zarr path or URL")
        if self.static is not None and not self.static.strip():
            raise UsageError("--static is empty; give a Zarr path or URL in the Earth Data Hub "
                             "high-maps layout")
        if self.config is not None and not Path(self.config).is_file():
            raise UsageError(f"--config {self.config} not found; give the demo's config.json")
        if self.units not in UNITS:
            raise UsageError(f"--units must be one of {', '.join(UNITS)}, not {self.units!r}")
        memory = self.max_memory
        if memory is not None and not (math.isfinite(memory) and 0 < memory <= MAX_MEMORY_MB):
            raise UsageError(f"--max-memory must be a positive number of MB, at most "
                             f"{MAX_MEMORY_MB:g}, not {memory:g}")
        if self.workers is not None and not 1 <= self.workers <= max_workers():
            raise UsageError(f"--workers must be between 1 and {max_workers()} (4 per CPU "
                             f"here), not {self.workers}")
        if self.workers is not None and self.scheduler:
            raise UsageError("--workers and --scheduler exclude each other; give one")
        kind = output_kind(self.out)
        for each in (self.out, self.lr_out):
            if each is not None and is_template(each):
                check_template(each)
        if kind == ZARR and is_template(self.out):
            raise UsageError(f"--out {str(self.out)!r}: one Zarr store holds every step, so its "
                             "name takes no {time} field; give e.g. --out sr.zarr")
        if self.lr_out is not None:
            output_kind(self.lr_out, "--lr-out", (COG,))
        if kind == ZARR and self.lr_out:
            raise UsageError("--lr-out works with COG outputs only; drop it or write COGs")
        if self.overwrite and self.resume:
            raise UsageError("--overwrite and --resume exclude each other; give one")
        if (self.preview or self.report) and (
                self.time is None or kind != COG or is_template(self.out)):
            raise UsageError("--preview and --report look at one result: use them with --time "
                             "and a single COG --out")
        if self.preview:
            check_preview_name(self.preview)
        return kind


def max_workers() -> int:
    return 4 * (os.cpu_count() or 1)
