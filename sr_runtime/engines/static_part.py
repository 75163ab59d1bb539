"""A model's static part, computed once per tile and reused for every further step.

A model that takes static HR fields (terrain) spends part of every call on what depends on
them alone: the default model's terrain network (three 3x3 convs at HR), its block anomalies and
their slices, about a fifth of its time. ``sr-export`` writes that part and the rest beside the
model (:func:`part_paths`): ``model.static-part.onnx`` (static fields in, the tensors the rest
reads out) and ``model.step-part.onnx`` (the LR input and those tensors in, the model's output
out), each recording the sha256 of the model it was split from. Run one after the other they
give the model's output bit for bit (``sr-export`` checks it before writing them).

:class:`StaticPartCache` runs them: the first call with given static fields runs the whole
model (a single step pays nothing); from the second call with the same fields on, the static
part's tensors are kept (bounded by :data:`CACHE_BUDGET_BYTES`) and each call runs only the
step part. Lookups compare the fields themselves, not only a fingerprint, so a cached entry is
never used for other fields.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sr_runtime.description import LR_INPUT
from sr_runtime.errors import UsageError

SPLIT_KEY = "sr_edge.static_split"
SPLIT_FORMAT = 1
STATIC_PART_SUFFIX = ".static-part.onnx"
STEP_PART_SUFFIX = ".step-part.onnx"
ROLE_STATIC, ROLE_STEP = "static", "step"
#: Static fields and their part's tensors kept at most (an LR 128 tile of the default model
#: takes about 52 MB): a tiled global run that needs more evicts the least recently used.
CACHE_BUDGET_BYTES = 512 * 1024 ** 2
_FINGERPRINT_SAMPLES = 4096


def part_paths(model: Path) -> tuple[Path, Path]:
    """``model.onnx`` -> (``model.static-part.onnx``, ``model.step-part.onnx``)."""
    stem = Path(model).name.removesuffix(".onnx")
    return (Path(model).with_name(stem + STATIC_PART_SUFFIX),
            Path(model).with_name(stem + STEP_PART_SUFFIX))


def split_record(role: str, whole_sha256: str, static_inputs: list[str], cuts: list[str],
                 step_static_inputs: list[str]) -> str:
    """The JSON each part carries under :data:`SPLIT_KEY`."""
    return json.dumps({"format": SPLIT_FORMAT, "role": role, "whole_sha256": whole_sha256,
                       "static_inputs": static_inputs, "cuts": cuts,
                       "step_static_inputs": step_static_inputs}, sort_keys=True)


@dataclass(frozen=True)
class SplitParts:
    """The two part files of a model and how they connect."""

    static_path: Path
    step_path: Path
    static_inputs: tuple[str, ...]  # fed to the static part
    cuts: tuple[str, ...]  # its outputs, fed to the step part
    step_static_inputs: tuple[str, ...]  # static fields the step part still reads (shapes)


def find_parts(model: Path, model_sha256: str) -> tuple[SplitParts | None, str]:
    """The parts beside ``model`` if both exist and were split from this very file, with why
    not otherwise (a part of an earlier version of the model is stale: never used)."""
    from sr_runtime.engines.onnxruntime import read_metadata

    static_path, step_path = part_paths(model)
    if not static_path.is_file() or not step_path.is_file():
        return None, f"no {static_path.name} and {step_path.name} beside the model"
    records: dict[str, dict[str, Any]] = {}
    for path in (static_path, step_path):
        try:
            record = json.loads(read_metadata(path).get(SPLIT_KEY, "null"))
        except (UsageError, ValueError, OSError) as exc:
            return None, f"{path.name} is unreadable ({exc})"
        if not isinstance(record, dict) or record.get("format") != SPLIT_FORMAT:
            return None, f"{path.name} carries no static-split record of format {SPLIT_FORMAT}"
        if record.get("whole_sha256") != model_sha256:
            return None, (f"{path.name} was split from another version of {Path(model).name} "
                          "(re-export the model, or run `sr-export split` on it)")
        records[record.get("role", "")] = record
    static, step = records.get(ROLE_STATIC), records.get(ROLE_STEP)
    if static is None or step is None or static["cuts"] != step["cuts"]:
        return None, f"{static_path.name} and {step_path.name} do not belong together"
    return SplitParts(static_path, step_path, tuple(static["static_inputs"]),
                      tuple(static["cuts"]), tuple(step["step_static_inputs"])), "found"


def _fingerprint(fields: Mapping[str, np.ndarray]) -> tuple:
    """A cheap key: shapes and a few thousand evenly spaced values (entries are then compared
    in full, so two fields that share a fingerprint are still told apart)."""
    key: list[Any] = []
    for name in sorted(fields):
        flat = fields[name].reshape(-1)
        step = max(1, flat.size // _FINGERPRINT_SAMPLES)
        key += [name, fields[name].shape, flat[::step].tobytes()]
    return tuple(key)


@dataclass
class _Entry:
    fields: dict[str, np.ndarray]
    cuts: dict[str, np.ndarray]
    nbytes: int
    hits: int = 0


class StaticPartCache:
    """Runs a model as its static and step parts, keeping the static part's tensors per tile.

    ``open_part`` opens a session on a part file (the engine's own options; anything with
    ONNX Runtime's ``run(names, feed)``), on the first call that needs it; ``check``, if
    given, is then called once with a function that runs a feed through both parts, and may
    raise to refuse them (an engine whose parts are not bit-identical checks them there, so a
    single step never pays for it). Thread-safe: a multi-step run calls it from several threads.
    ``hits``/``misses`` count the calls that reused or computed a static part. A run whose
    tiles do not fit in the budget (an entry evicted before it was ever reused, or one larger
    than the budget) would only copy: caching then stops (``stopped`` says why), its memory is
    freed, and every call runs the whole model.
    """

    def __init__(self, parts: SplitParts, open_part: Callable[[Path], Any],
                 budget_bytes: int = CACHE_BUDGET_BYTES,
                 check: Callable[[Callable[[dict[str, np.ndarray]], np.ndarray]], None]
                 | None = None) -> None:
        self.parts = parts
        self.budget_bytes = budget_bytes
        self._open_part = open_part
        self._check = check
        self._sessions: tuple[Any, Any] | None = None
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple, list[_Entry]] = OrderedDict()
        self._seen: OrderedDict[tuple, None] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0
        self.stopped: str | None = None

    def infer(self, feed: dict[str, np.ndarray],
              run_whole: Callable[[dict[str, np.ndarray]], np.ndarray]) -> np.ndarray:
        """The model's output for ``feed``; ``run_whole`` runs the whole model (first sight)."""
        if self.stopped:  # set once, never cleared: no lock needed to read it
            return run_whole(feed)
        fields = {name: feed[name] for name in self.parts.static_inputs}
        key = _fingerprint(fields)
        with self._lock:
            entry = self._lookup(key, fields)
            if entry is None and key not in self._seen:
                self._seen[key] = None  # first sight: a single step gains nothing from parts
                while len(self._seen) > 1024:
                    self._seen.popitem(last=False)
                first_sight = True
            else:
                first_sight = False
            if entry is not None:
                self.hits += 1
                entry.hits += 1
        if first_sight:
            return run_whole(feed)
        static_session, step_session = self._open()
        if entry is None:
            entry = self._store(key, fields, self._cuts(static_session, fields))
        return self._step(step_session, feed, entry.cuts)

    def _cuts(self, static_session: Any, fields: dict[str, np.ndarray]
              ) -> dict[str, np.ndarray]:
        outputs = static_session.run(list(self.parts.cuts), fields)
        return dict(zip(self.parts.cuts, outputs, strict=True))

    def _step(self, step_session: Any, feed: dict[str, np.ndarray],
              cuts: dict[str, np.ndarray]) -> np.ndarray:
        step_feed = {LR_INPUT: feed[LR_INPUT], **cuts,
                     **{name: feed[name] for name in self.parts.step_static_inputs}}
        return step_session.run(None, step_feed)[0]

    def _open(self) -> tuple[Any, Any]:
        with self._lock:
            if self._sessions is None:
                sessions = (self._open_part(self.parts.static_path),
                            self._open_part(self.parts.step_path))
                if self._check is not None:  # raises to refuse them: nothing is kept then
                    self._check(lambda feed: self._step(sessions[1], feed, self._cuts(
                        sessions[0], {name: feed[name] for name in self.parts.static_inputs})))
                self._sessions = sessions
            return self._sessions

    def _lookup(self, key: tuple, fields: dict[str, np.ndarray]) -> _Entry | None:
        for entry in self._entries.get(key, ()):
            if all(np.array_equal(entry.fields[name], value) for name, value in fields.items()):
                self._entries.move_to_end(key)
                return entry
        return None

    def _store(self, key: tuple, fields: dict[str, np.ndarray],
               cuts: dict[str, np.ndarray]) -> _Entry:
        kept = {name: np.array(value, copy=True) for name, value in fields.items()}
        nbytes = sum(v.nbytes for v in kept.values()) + sum(v.nbytes for v in cuts.values())
        entry = _Entry(kept, cuts, nbytes)
        with self._lock:
            self.misses += 1
            kept_by_another = self._lookup(key, kept)  # a concurrent call computed it too
            if kept_by_another is not None:
                return kept_by_another
            if nbytes > self.budget_bytes:
                self._stop(f"one tile's static part ({nbytes / 2**20:.0f} MB) is larger than "
                           f"the cache ({self.budget_bytes / 2**20:.0f} MB)")
                return entry  # used for this call only
            while self._bytes + nbytes > self.budget_bytes and self._entries:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= sum(e.nbytes for e in evicted)
                if any(e.hits == 0 for e in evicted):
                    self._stop(f"the run's tiles need more than the cache's "
                               f"{self.budget_bytes / 2**20:.0f} MB")
                    return entry
            self._entries.setdefault(key, []).append(entry)
            self._bytes += nbytes
        return entry

    def _stop(self, why: str) -> None:
        """Caching would only copy: free its memory and run the whole model from now on."""
        self.stopped = why
        self._entries.clear()
        self._seen.clear()
        self._bytes = 0
