"""What the app's page works on, without Gradio: opened (source, model, backend) choices, the
times the page may offer, region presets, and the per-session folders of generated files.

Opening a choice costs seconds (model load, cube metadata), so each is opened once and shared
by every browser session; its results cache is shared too (same key, same values). Generated
files live in one folder per browser session, removed when the session ends and at exit.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sr_runtime.errors import RegionError, UsageError
from sr_runtime.grid import BBox, parse_bbox, region_slices
from sr_runtime.results import DEFAULT_CACHE_MB, Results, open_results

WHOLE_GRID = "Source box (whole grid)"
#: Named boxes offered where they hold at least 2 x 2 cells of the source grid (W, S, E, N).
PRESETS: dict[str, tuple[float, float, float, float]] = {
    "Alps": (5.5, 43.5, 16.0, 48.5),
    "Western Alps": (5.5, 43.5, 10.5, 47.5),
    "Po Valley": (7.0, 44.0, 13.0, 46.2),
    "Corsica and Sardinia": (8.0, 38.8, 10.0, 43.2),
    "Europe": (-11.0, 35.0, 31.0, 60.0),
    "Mediterranean": (-6.0, 30.0, 36.0, 46.0),
}
MAX_OPEN = 4
_SESSION = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class Choice:
    """The same names ``sr-run`` takes: --source, --model, --backend (and its helpers)."""

    source: str = "sample"
    model: str | None = None
    backend: str = "auto"
    config: str | None = None
    truth: str | None = None
    edh_url: str | None = None
    static: str | None = None


class Workbench:
    """Opened choices (least recently used closed beyond :data:`MAX_OPEN`) and file folders."""

    def __init__(self, default: Choice, cache_mb: float = DEFAULT_CACHE_MB,
                 folder: Path | None = None) -> None:
        self.default, self.cache_mb = default, cache_mb
        self.lock = threading.Lock()
        self.opened: OrderedDict[Choice, Results] = OrderedDict()
        self.folder = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="sr-app-"))
        self.folder.mkdir(parents=True, exist_ok=True)

    def results(self, choice: Choice | None = None) -> Results:
        choice = choice or self.default
        with self.lock:
            if choice in self.opened:
                self.opened.move_to_end(choice)
                return self.opened[choice]
            results = open_results(choice.source, choice.model or None, choice.backend,
                                   config=choice.config, edh_url=choice.edh_url,
                                   truth=choice.truth, cache_mb=self.cache_mb,
                                   static=choice.static)
            self.opened[choice] = results
            while len(self.opened) > MAX_OPEN:
                _, old = self.opened.popitem(last=False)
                old.model.close()
            return results

    # -- what the page offers -------------------------------------------------------------
    @staticmethod
    def dates(results: Results) -> list[str]:
        return sorted({label[:10] for label in results.time_labels()})

    @staticmethod
    def hours(results: Results, date: str) -> list[tuple[str, str]]:
        """(label, time) for each step on ``date``; steps with HR truth say so."""
        picked = [t for t in results.time_labels() if t.startswith(date)]
        return [(f"{t[11:]} UTC" + (" (HR truth)" if t in results.truth_times else ""), t)
                for t in picked]

    @staticmethod
    def first_time(results: Results) -> str:
        """A showcase time: the first with HR truth, else the first step."""
        labels = results.time_labels()
        with_truth = [t for t in labels if t in results.truth_times]
        if not labels:
            raise UsageError(f"{results.source.label} has no time steps")
        return (with_truth or labels)[0]

    @staticmethod
    def presets(results: Results) -> list[str]:
        names = [WHOLE_GRID]
        for name, box in PRESETS.items():
            try:
                rows, cols = region_slices(results.latitude, results.longitude, BBox(*box))
            except RegionError:
                continue
            if rows.stop - rows.start >= 2 and cols.stop - cols.start >= 2 and (
                    rows.stop - rows.start < results.latitude.size
                    or cols.stop - cols.start < results.longitude.size):
                names.append(name)
        return names

    @staticmethod
    def region(preset: str | None, bbox_text: str | None) -> BBox | None:
        """The typed box if any, else the preset's, else None (the whole grid)."""
        if bbox_text and bbox_text.strip():
            return parse_bbox(bbox_text)
        if preset and preset != WHOLE_GRID:
            if preset not in PRESETS:
                raise UsageError(f"unknown region preset {preset!r}; choose one of the list")
            return BBox(*PRESETS[preset])
        return None

    # -- generated files ------------------------------------------------------------------
    def session_folder(self, session: str) -> Path:
        folder = self.folder / (_SESSION.sub("_", session)[:64] or "anonymous")
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def end_session(self, session: str) -> None:
        shutil.rmtree(self.folder / (_SESSION.sub("_", session)[:64] or "anonymous"),
                      ignore_errors=True)

    def close(self) -> None:
        with self.lock:
            for results in self.opened.values():
                results.model.close()
            self.opened.clear()
        shutil.rmtree(self.folder, ignore_errors=True)


def time_label(time: str) -> str:
    return pd.Timestamp(time).strftime("%Y-%m-%d %H:%M UTC")
