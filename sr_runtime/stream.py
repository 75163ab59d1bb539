"""Many time steps: read step t+1 while the engine runs step t and the sink writes step t-1.

Three stages joined by bounded queues (one item each), so at most a few fields are in memory
whatever the number of steps. The same per-step work (:class:`StepWorker`) runs serially here or
on Dask workers (:func:`run_distributed`), which load the engine once each and write their own
steps (Zarr regions or COG files).
"""

from __future__ import annotations

import queue
import threading
import time as clock
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from sr_runtime.errors import ModelOutputError, TimeSelectionError, UsageError
from sr_runtime.fields import GeoField
from sr_runtime.grid import BBox, describe_times, select_time
from sr_runtime.paths import check_distinct
from sr_runtime.pipeline import build_fields, check_missing, read_lr
from sr_runtime.sinks.files import FileSteps
from sr_runtime.tiling import infer_tiled

MAX_STEPS = 100_000


# ---------------------------------------------------------------- time ranges
def parse_every(text: str) -> np.timedelta64:
    try:
        delta = pd.Timedelta(text)
    except (ValueError, TypeError, OverflowError):
        raise TimeSelectionError(f"cannot parse --every {text!r}; use e.g. 1h, 6h, 1D") from None
    if pd.isna(delta):
        raise TimeSelectionError(f"cannot parse --every {text!r}; use e.g. 1h, 6h, 1D")
    if delta <= pd.Timedelta(0):
        raise TimeSelectionError(f"--every {text} must be positive")
    return np.timedelta64(delta.to_timedelta64(), "ns")


def select_range(times: np.ndarray, start: np.datetime64, end: np.datetime64,
                 every: np.timedelta64, nearest: bool = False) -> list[int]:
    """Indices of ``start, start+every, ... <= end`` in ``times``: exact steps unless
    ``nearest`` (then snapped, duplicates dropped); outside the cube is an error with its range."""
    times = np.asarray(times, dtype="datetime64[ns]")
    if end < start:
        raise TimeSelectionError(f"--end {pd.Timestamp(end):%Y-%m-%dT%H:%M} is before --start "
                                 f"{pd.Timestamp(start):%Y-%m-%dT%H:%M}")
    count = int((end - start) // every) + 1
    if count > MAX_STEPS:
        raise TimeSelectionError(f"--start/--end/--every give {count} steps (more than "
                                 f"{MAX_STEPS}); choose a shorter range or a larger --every")
    for bound in (start, end):  # outside the cube: say which range is available
        if times.size == 0 or bound < times[0] or bound > times[-1]:
            select_time(times, bound, nearest)
    indices: list[int] = []
    for k in range(count):
        index = select_time(times, start + k * every, nearest)
        if not indices or indices[-1] != index:
            indices.append(index)
    return indices


def describe_selection(times: np.ndarray) -> str:
    return describe_times(np.asarray(times, dtype="datetime64[ns]"))


# ---------------------------------------------------------------- outputs
CogSteps = FileSteps  # one COG per step (the name callers of the first API know)


# ---------------------------------------------------------------- output values
#: Values an output in these units cannot hold on Earth; t2m records are 184 K .. 330 K.
PLAUSIBLE_RANGE = {"K": (150.0, 350.0)}


def check_model_output(hr: np.ndarray, valid_time: np.datetime64, units: str) -> None:
    """Refuse a step whose engine output is non-finite or physically impossible, before it is
    written: corrupt weights or a model fed the wrong units give such fields."""
    when = np.datetime_as_string(np.datetime64(valid_time, "m"))
    bad = int(hr.size - np.count_nonzero(np.isfinite(hr)))
    if bad:
        raise ModelOutputError(f"the model's output at {when} has {bad} non-finite values (NaN "
                               f"or infinite) of {hr.size} cells; nothing was written for it. "
                               "The model file is likely corrupt (NaN/inf weights): export it "
                               "again with sr-export to-onnx")
    low, high = PLAUSIBLE_RANGE.get(units, (-np.inf, np.inf))
    outside = int(np.count_nonzero((hr < low) | (hr > high)))
    if outside:
        raise ModelOutputError(f"the model's output at {when} has {outside} of {hr.size} cells "
                               f"outside {low:g}..{high:g} {units} (min {float(hr.min()):.5g}, "
                               f"max {float(hr.max()):.5g}); nothing was written for it. Check "
                               "that the model fits this data (units, variable)")


# ---------------------------------------------------------------- per-step work
@dataclass
class StepOutcome:
    index: int
    time: np.datetime64
    outputs: list[str]
    hr_pixels: int
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class StepWorker:
    """Reads, infers and writes steps of ``dataset``; picklable apart from the engine."""

    bbox: BBox | None
    units: str
    tile: int | None
    source_label: str
    sink: object  # FileSteps or ZarrSink: write_step(index, field) -> str
    lr_sink: object | None = None
    tags: dict[str, str] = field(default_factory=dict)  # settings recorded in every output

    def read(self, dataset: xr.Dataset, engine, index: int):  # type: ignore[no-untyped-def]
        started = clock.perf_counter()
        lr, lat, lon = read_lr(dataset, engine.description, index, self.bbox)
        valid_time = np.datetime64(dataset.time.values[index], "ns")
        check_missing(lr, valid_time, self.source_label)
        return lr, lat, lon, valid_time, clock.perf_counter() - started

    def infer(self, engine, read_result):  # type: ignore[no-untyped-def]
        lr, lat, lon, valid_time, _ = read_result
        started = clock.perf_counter()
        hr = infer_tiled(engine, lr, self.tile)
        seconds = clock.perf_counter() - started
        check_model_output(hr, valid_time, engine.description.variables[0].units)
        lr_field, sr_field = build_fields(lr, hr, lat, lon, valid_time, engine.description,
                                          engine.name, self.units, self.source_label)
        lr_field.tags.update(self.tags)
        sr_field.tags.update(self.tags)
        return lr_field, sr_field, seconds

    def write(self, step: int, lr_field: GeoField, sr_field: GeoField) -> tuple[list[str], float]:
        started = clock.perf_counter()
        outputs = [self.sink.write_step(step, sr_field)]  # type: ignore[attr-defined]
        if self.lr_sink is not None:
            outputs.append(self.lr_sink.write_step(step, lr_field))  # type: ignore[attr-defined]
        return outputs, clock.perf_counter() - started

    def run_step(self, dataset: xr.Dataset, engine, step: int, index: int) -> StepOutcome:
        read_result = self.read(dataset, engine, index)
        lr_field, sr_field, infer_s = self.infer(engine, read_result)
        outputs, write_s = self.write(step, lr_field, sr_field)
        return StepOutcome(step, sr_field.time, outputs, sr_field.data.size,
                           {"read": read_result[4], "infer": infer_s, "write": write_s})


# ---------------------------------------------------------------- summary and progress
@dataclass
class StreamSummary:
    steps: int = 0
    skipped: int = 0
    seconds: float = 0.0
    engine_seconds: float = 0.0
    read_seconds: float = 0.0
    write_seconds: float = 0.0
    hr_pixels: int = 0
    backend: str = ""
    workers: int = 1
    outputs: list[str] = field(default_factory=list)

    @property
    def hr_mpix_per_s(self) -> float:
        return self.hr_pixels / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def add(self, outcome: StepOutcome) -> None:
        self.steps += 1
        self.hr_pixels += outcome.hr_pixels
        self.outputs.extend(o for o in outcome.outputs if o not in self.outputs[-4:])
        self.read_seconds += outcome.seconds.get("read", 0.0)
        self.engine_seconds += outcome.seconds.get("infer", 0.0)
        self.write_seconds += outcome.seconds.get("write", 0.0)

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["hr_mpix_per_s"] = round(self.hr_mpix_per_s, 3)
        for key in ("seconds", "engine_seconds", "read_seconds", "write_seconds"):
            data[key] = round(float(data[key]), 3)
        return data


Progress = Callable[[StepOutcome, StreamSummary], None]


# ---------------------------------------------------------------- serial, overlapped
_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _put(q: queue.Queue, item: object, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def run_stream(dataset: xr.Dataset, engine, worker: StepWorker, indices: Sequence[int], *,
               skip: set[int] | None = None, progress: Progress | None = None,
               prefetch: int = 1,
               before_first_write: Callable[[], None] | None = None) -> StreamSummary:
    """Steps ``indices`` of ``dataset`` in order; step ``k`` goes to output slot ``k``.

    ``before_first_write`` runs once, after the first step was read and inferred and checked,
    before anything is written (so that a run failing on its first step changes nothing)."""
    skip = skip or set()
    todo = [(k, i) for k, i in enumerate(indices) if k not in skip]
    summary = StreamSummary(skipped=len(indices) - len(todo), backend=engine.name)
    started = clock.perf_counter()
    stop = threading.Event()
    reads: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
    writes: queue.Queue = queue.Queue(maxsize=1)
    results: queue.Queue = queue.Queue()

    def reader() -> None:
        try:
            for step, index in todo:
                if not _put(reads, (step, worker.read(dataset, engine, index)), stop):
                    return
            _put(reads, _DONE, stop)
        except BaseException as exc:  # handed to the main thread
            _put(reads, _Failure(exc), stop)

    def writer() -> None:
        while True:
            try:
                item = writes.get(timeout=0.1)
            except queue.Empty:
                if stop.is_set():
                    return
                continue
            if item is _DONE:
                return
            step, lr_field, sr_field, seconds = item
            try:
                outputs, write_s = worker.write(step, lr_field, sr_field)
            except BaseException as exc:
                results.put(_Failure(exc))
                stop.set()
                return
            results.put(StepOutcome(step, sr_field.time, outputs, sr_field.data.size,
                                    {**seconds, "write": write_s}))

    threads = [threading.Thread(target=reader, name="sr-read", daemon=True),
               threading.Thread(target=writer, name="sr-write", daemon=True)]
    for thread in threads:
        thread.start()

    def drain(block: bool) -> None:
        while True:
            try:
                item = results.get(block=block, timeout=None)
            except queue.Empty:
                return
            if isinstance(item, _Failure):
                raise item.exc
            summary.add(item)
            summary.seconds = clock.perf_counter() - started
            if progress:
                progress(item, summary)
            if block:
                return

    try:
        while True:
            item = reads.get()
            if item is _DONE:
                break
            if isinstance(item, _Failure):
                raise item.exc
            step, read_result = item
            lr_field, sr_field, infer_s = worker.infer(engine, read_result)
            if before_first_write is not None:
                before_first_write()
                before_first_write = None
            if not _put(writes, (step, lr_field, sr_field,
                                 {"read": read_result[4], "infer": infer_s}), stop):
                break
            drain(block=False)
        _put(writes, _DONE, stop)
        threads[1].join()
        drain(block=False)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
    summary.seconds = clock.perf_counter() - started
    return summary


# ---------------------------------------------------------------- distributed (Dask)
_WORKER_STATE: dict[tuple[str, str], tuple[object, object]] = {}
_WORKER_LOCK = threading.Lock()


def _engine_and_data(source, model: str, backend: str, config: str | None, threads: int | None):
    """This worker's engine and dataset, loaded once per worker and reused for every step."""
    from distributed import get_worker

    key = (get_worker().address, f"{model}|{backend}|{source.label}")
    with _WORKER_LOCK:
        if key not in _WORKER_STATE:
            from sr_runtime.engines.onnxruntime import OnnxRuntimeEngine
            from sr_runtime.engines.registry import load_engine

            if backend == "onnxruntime" and threads:  # share the cores between workers
                engine = OnnxRuntimeEngine(Path(model), threads=threads)
            else:
                engine = load_engine(backend, Path(model),
                                     config=Path(config) if config else None).engine
            _WORKER_STATE[key] = (engine, source.open())
        return _WORKER_STATE[key]


def _remote_step(source, model: str, backend: str, config: str | None, threads: int | None,
                 worker: StepWorker, step: int, index: int) -> StepOutcome:
    engine, dataset = _engine_and_data(source, model, backend, config, threads)
    return worker.run_step(dataset, engine, step, index)  # type: ignore[arg-type]


LOOPBACK_ANY_PORT = "127.0.0.1:0"


def distributed_client(workers: int | None, scheduler: str | None):  # type: ignore[no-untyped-def]
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise UsageError("--workers/--scheduler need Dask: pip install 'dask[distributed]'"
                         ) from None
    if scheduler:
        try:
            return Client(scheduler, timeout="20s")
        except (OSError, ValueError, TypeError) as exc:  # refused, timed out, not an address
            raise UsageError(f"cannot reach the Dask scheduler at {scheduler} ({exc}); give "
                             "its address as tcp://HOST:PORT") from None
    # In-process workers talk over inproc://; the HTTP servers distributed always starts (health
    # and metrics routes) listen on the loopback only, and no dashboard is served.
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=False,
                           dashboard_address=LOOPBACK_ANY_PORT,
                           worker_dashboard_address=LOOPBACK_ANY_PORT,
                           scheduler_kwargs={"dashboard": False})
    return Client(cluster)


def run_distributed(client, source, model: Path, backend: str, config: Path | None,
                    worker: StepWorker, indices: Sequence[int], *, skip: set[int] | None = None,
                    progress: Progress | None = None, threads: int | None = 1) -> StreamSummary:
    """The same steps as :func:`run_stream`, one task per step, at most 2 per worker queued."""
    from distributed import as_completed

    skip = skip or set()
    todo = [(k, i) for k, i in enumerate(indices) if k not in skip]
    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    summary = StreamSummary(skipped=len(indices) - len(todo), backend=backend,
                            workers=n_workers)
    started = clock.perf_counter()
    pending = iter(todo)

    def submit(step: int, index: int):  # type: ignore[no-untyped-def]
        return client.submit(_remote_step, source, str(model), backend,
                             str(config) if config else None, threads, worker, step, index,
                             pure=False)

    first = [submit(*item) for _, item in zip(range(2 * n_workers), pending, strict=False)]
    flow = as_completed(first)
    for future in flow:
        outcome = future.result()
        summary.add(outcome)
        summary.backend = backend
        summary.seconds = clock.perf_counter() - started
        if progress:
            progress(outcome, summary)
        following = next(pending, None)
        if following is not None:
            flow.add(submit(*following))
    summary.outputs.sort()
    summary.seconds = clock.perf_counter() - started
    return summary


def check_no_overlap(paths: Sequence[Path], others: Sequence[Path]) -> None:
    """--out and --lr-out name different files, however they are spelt."""
    check_distinct([*(("--out", p) for p in paths), *(("--lr-out", p) for p in others)])
