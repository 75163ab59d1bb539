"""Many time steps: read step t+1 while the engine runs step t and the sink writes step t-1.

Three stages joined by bounded queues (one item each), so at most a few fields are in memory
whatever the number of steps. The per-step work is :class:`sr_runtime.steps.StepWorker`; the
same steps on Dask workers are :func:`sr_runtime.distributed.run_distributed`.
"""

from __future__ import annotations

import queue
import threading
import time as clock
from collections.abc import Callable, Sequence

import xarray as xr

from sr_runtime.engines.base import Engine
from sr_runtime.steps import StepOutcome, StepWorker
from sr_runtime.summary import Progress, StreamSummary

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


def run_stream(dataset: xr.Dataset, engine: Engine, worker: StepWorker, indices: Sequence[int], *,
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
            step, lr_fields, sr_fields, seconds = item
            try:
                outputs, write_s = worker.write(step, lr_fields, sr_fields)
            except BaseException as exc:
                results.put(_Failure(exc))
                stop.set()
                return
            results.put(StepOutcome(step, sr_fields[0].time, outputs, sr_fields[0].data.size,
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
            lr_fields, sr_fields, infer_s = worker.infer(engine, read_result)
            if before_first_write is not None:
                before_first_write()
                before_first_write = None
            if not _put(writes, (step, lr_fields, sr_fields,
                                 {"read": read_result.read_seconds, "infer": infer_s}), stop):
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
