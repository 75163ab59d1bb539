"""The steps of a run on Dask workers: a local in-process cluster on the loopback, or a remote
scheduler. Each worker loads the engine once (from a picklable :class:`EngineRef`) and writes its
own steps (Zarr regions or files).
"""

from __future__ import annotations

import threading
import time as clock
from collections.abc import Sequence
from typing import TYPE_CHECKING

import xarray as xr

from sr_runtime.engines.base import Engine, EngineRef
from sr_runtime.errors import UsageError
from sr_runtime.sources.base import DataSource
from sr_runtime.steps import StepOutcome, StepWorker
from sr_runtime.summary import Progress, StreamSummary

if TYPE_CHECKING:
    from distributed import Client, Future

_WORKER_STATE: dict[tuple[str, EngineRef, str], tuple[Engine, xr.Dataset]] = {}
_WORKER_LOCK = threading.Lock()


def _engine_and_data(source: DataSource, engine: EngineRef) -> tuple[Engine, xr.Dataset]:
    """This worker's engine and dataset, loaded once per worker and reused for every step."""
    from distributed import get_worker

    key = (get_worker().address, engine, source.label)
    with _WORKER_LOCK:
        if key not in _WORKER_STATE:
            _WORKER_STATE[key] = (engine.load(), source.open())
        return _WORKER_STATE[key]


def _remote_step(source: DataSource, engine: EngineRef, worker: StepWorker, step: int,
                 index: int) -> StepOutcome:
    loaded, dataset = _engine_and_data(source, engine)
    return worker.run_step(dataset, loaded, step, index)


LOOPBACK_ANY_PORT = "127.0.0.1:0"


def distributed_client(workers: int | None, scheduler: str | None) -> Client:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise UsageError("--workers/--scheduler need Dask: pip install 'sr-edge[distributed]'"
                         ) from None
    if scheduler:
        try:
            return Client(scheduler, timeout="20s", set_as_default=False)
        except (OSError, ValueError, TypeError) as exc:  # refused, timed out, not an address
            raise UsageError(f"cannot reach the Dask scheduler at {scheduler} ({exc}); give "
                             "its address as tcp://HOST:PORT") from None
    # In-process workers talk over inproc://; the HTTP servers distributed always starts (health
    # and metrics routes) listen on the loopback only, and no dashboard is served. The client is
    # never the process's default Dask scheduler: the run submits to it by name, and a caller's
    # own dask/xarray work must not end up on a cluster that this run closes.
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=False,
                           dashboard_address=LOOPBACK_ANY_PORT,
                           worker_dashboard_address=LOOPBACK_ANY_PORT,
                           scheduler_kwargs={"dashboard": False})
    return Client(cluster, set_as_default=False)


def run_distributed(client: Client, source: DataSource, engine: EngineRef, worker: StepWorker,
                    indices: Sequence[int], *, skip: set[int] | None = None,
                    progress: Progress | None = None) -> StreamSummary:
    """The same steps as :func:`sr_runtime.stream.run_stream`, one task per step, at most two
    per worker queued."""
    from distributed import as_completed

    skip = skip or set()
    todo = [(k, i) for k, i in enumerate(indices) if k not in skip]
    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    summary = StreamSummary(skipped=len(indices) - len(todo), backend=engine.backend,
                            workers=n_workers)
    started = clock.perf_counter()
    pending = iter(todo)
    # static HR fields travel once to every worker, not with every step
    shipped = client.scatter(worker, broadcast=True) if worker.statics is not None else worker

    def submit(step: int, index: int) -> Future:
        return client.submit(_remote_step, source, engine, shipped, step, index, pure=False)

    first = [submit(*item) for _, item in zip(range(2 * n_workers), pending, strict=False)]
    flow = as_completed(first, loop=client.loop)  # this client's loop: it is not the default
    for future in flow:
        outcome = future.result()
        summary.add(outcome)
        summary.seconds = clock.perf_counter() - started
        if progress:
            progress(outcome, summary)
        following = next(pending, None)
        if following is not None:
            flow.add(submit(*following))
    summary.outputs.sort()
    summary.seconds = clock.perf_counter() - started
    return summary
