"""Many time steps: read step t+1 while the engine runs step t and the sink writes step t-1.

The reader reads the steps that share a time chunk of the store at once (one decode of it).
An engine that serves several calls at once (``parallel_calls``: ONNX Runtime or OpenVINO on
CPU with ``streams``) gets that many steps in flight; they are written in step order.

Three stages joined by bounded queues (one item each), so at most a few fields are in memory
whatever the number of steps. The per-step work is :class:`sr_runtime.steps.StepWorker`; the
same steps on Dask workers are :func:`sr_runtime.distributed.run_distributed`.
"""

from __future__ import annotations

import queue
import threading
import time as clock
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress

import xarray as xr

from sr_runtime.engines.base import Engine
from sr_runtime.pipeline import time_blocks
from sr_runtime.steps import StepInput, StepOutcome, StepWorker
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
            steps = iter(todo)
            for block in time_blocks(dataset, engine.description, [i for _, i in todo],
                                     worker.bbox):
                for read in worker.read_steps(dataset, engine, block):
                    if not _put(reads, (next(steps)[0], read), stop):
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

    calls = max(1, int(getattr(engine, "parallel_calls", 1)))
    pool = ThreadPoolExecutor(calls, thread_name_prefix="sr-infer") if calls > 1 else None
    pending: deque[tuple[int, StepInput, Future]] = deque()

    def hand_on(step: int, read_result: StepInput,
                inferred: tuple[list, list, float]) -> bool:
        """Send an inferred step to the writer (in step order); False when the run stops."""
        nonlocal before_first_write
        lr_fields, sr_fields, infer_s = inferred
        if before_first_write is not None:
            before_first_write()
            before_first_write = None
        if not _put(writes, (step, lr_fields, sr_fields,
                             {"read": read_result.read_seconds, "infer": infer_s}), stop):
            return False
        drain(block=False)
        return True

    def hand_on_oldest() -> bool:
        step, read_result, future = pending.popleft()
        return hand_on(step, read_result, future.result())

    def hand_on_pending() -> None:
        while pending and hand_on_oldest():
            pass

    def finish_writing() -> None:
        _put(writes, _DONE, stop)
        threads[1].join()
        drain(block=False)

    try:
        while True:
            item = reads.get()
            if item is _DONE:
                break
            if isinstance(item, _Failure):
                hand_on_pending()  # the steps read before the failure are still written
                raise item.exc
            step, read_result = item
            if pool is None:
                if not hand_on(step, read_result, worker.infer(engine, read_result)):
                    break
                continue
            # steps are handed on in order: before_first_write waits for the first one, and a
            # run that fails on it changes nothing, whatever else was in flight
            pending.append((step, read_result, pool.submit(worker.infer, engine, read_result)))
            if len(pending) >= calls and not hand_on_oldest():
                break
        hand_on_pending()
    except Exception:
        # the steps handed on before the failure are still written, and reported
        with suppress(Exception):  # the writer failed too: the first failure is the one said
            finish_writing()
        raise
    else:
        finish_writing()
    finally:
        stop.set()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        for thread in threads:
            thread.join(timeout=5)
    summary.seconds = clock.perf_counter() - started
    return summary
