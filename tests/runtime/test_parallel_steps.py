"""A CPU engine with ``streams`` keeps several steps in flight; the run still writes them in step
order, with the values one step at a time gives, and stops at a bad step as before."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import xarray as xr

from sr_runtime.engines.onnxruntime import OnnxRuntimeEngine
from sr_runtime.engines.registry import load_engine
from sr_runtime.errors import ModelOutputError, UsageError
from sr_runtime.grid import sr_axes
from sr_runtime.machine import physical_cores
from sr_runtime.sinks.zarr_store import ZarrSink
from sr_runtime.sources.zarr_store import ZarrSource
from sr_runtime.steps import StepWorker
from sr_runtime.stream import run_stream
from tests.conftest import EDH_LR_LAT, EDH_LR_LON, nan_where_cold_model, write_edh_store

HOURS = 8


def run(engine, store, out, order: list[int]):
    ds = ZarrSource(store).open()
    lat, lon = ds.latitude.values, ds.longitude.values
    sink = ZarrSink(out, ds.time.values, *sr_axes(lat, lon, 8), ["t2m"], ["K"])
    worker = StepWorker(None, "K", None, "test store", sink)
    return run_stream(ds, engine, worker, list(range(HOURS)), before_first_write=sink.create,
                      progress=lambda outcome, _: order.append(outcome.index))


def test_the_session_serves_calls_at_once_with_its_threads_shared(nearest_model):
    engine = OnnxRuntimeEngine(nearest_model, streams=2, spinning=False)
    assert engine.parallel_calls == 2
    options = engine.session.get_session_options()
    assert options.intra_op_num_threads == max(1, physical_cores() // 2)
    assert OnnxRuntimeEngine(nearest_model).parallel_calls == 1
    with pytest.raises(UsageError, match="streams must be at least 1"):
        OnnxRuntimeEngine(nearest_model, streams=0)

    rng = np.random.default_rng(0)
    inputs = [rng.normal(280, 5, (1, 1, 9, 11)).astype(np.float32) for _ in range(16)]
    with ThreadPoolExecutor(4) as pool:  # concurrent calls from several threads
        together = list(pool.map(engine.infer, inputs))
    for lr, hr in zip(inputs, together, strict=True):
        np.testing.assert_array_equal(hr, np.repeat(np.repeat(lr, 8, axis=2), 8, axis=3))


def test_a_range_in_flight_two_at_a_time_is_written_in_order(tmp_path, nearest_model):
    store = write_edh_store(tmp_path / "lr.zarr", hours=HOURS)
    selection = load_engine("onnxruntime", nearest_model, streams=2, spinning=False)
    assert "2 steps at a time" in selection.summary()[-1]
    calls, lock = [], threading.Lock()
    engine = selection.engine
    infer = engine.infer

    def watched(lr, **inputs):
        with lock:
            calls.append(threading.current_thread().name)
        return infer(lr, **inputs)

    engine.infer = watched  # the shipped engine, its calls recorded
    order: list[int] = []
    summary = run(engine, store, tmp_path / "sr.zarr", order)
    assert summary.steps == HOURS and order == list(range(HOURS))
    assert len(calls) == HOURS and all(name.startswith("sr-infer") for name in calls)
    out = xr.open_zarr(tmp_path / "sr.zarr")
    lr = xr.open_zarr(store).t2m.values
    np.testing.assert_array_equal(out.t2m.values, np.repeat(np.repeat(lr, 8, axis=1), 8, axis=2))
    assert out.step_complete.values.tolist() == [1] * HOURS
    (codec,) = out.t2m.encoding["compressors"]  # floats: Blosc with byte shuffle
    assert (codec.cname.value, codec.shuffle.value) == ("lz4", "shuffle")


def run_with_a_cold_step(tmp_path, cold_step: int, order: list[int]) -> None:
    """A range whose step ``cold_step`` is colder than the model takes (its output is NaN
    there), run with two steps in flight; raises as the run does."""
    lat, lon = EDH_LR_LAT[100:106], EDH_LR_LON[200:206]
    values = np.full((HOURS, lat.size, lon.size), 290.0, dtype=np.float32)
    values[cold_step, 2, 3] = 270.0
    store = write_edh_store(tmp_path / "lr.zarr", lat_slice=slice(100, 106),
                            lon_slice=slice(200, 206), hours=HOURS, values=values)
    engine = OnnxRuntimeEngine(nan_where_cold_model(tmp_path / "cold.onnx", 280.0), streams=2,
                               spinning=False)
    run(engine, store, tmp_path / "sr.zarr", order)


def test_a_bad_step_in_flight_stops_the_run_after_the_steps_before_it(tmp_path):
    order: list[int] = []
    with pytest.raises(ModelOutputError, match=r"at 2024-10-11T05:00 has 64 non-finite"):
        run_with_a_cold_step(tmp_path, 5, order)
    assert order == [0, 1, 2, 3, 4]
    assert xr.open_zarr(tmp_path / "sr.zarr").step_complete.values.tolist() == [1] * 5 + [0] * 3


def test_a_bad_first_step_changes_nothing_while_the_next_was_in_flight(tmp_path):
    order: list[int] = []
    with pytest.raises(ModelOutputError, match=r"at 2024-10-11T00:00 has 64 non-finite"):
        run_with_a_cold_step(tmp_path, 0, order)
    assert order == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cold.onnx", "lr.zarr"]
