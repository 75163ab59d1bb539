"""Results on demand: one computation per key however many callers wait, failures not kept,
memory bounded; requests checked against the cube before any inference."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from sr_runtime.errors import RegionError, TimeSelectionError, UsageError
from sr_runtime.quicklook import align_truth, report_scores
from sr_runtime.results import NotInCubeError, SingleFlightCache
from tests.runtime.serve.conftest import WHEN, CountingEngine, sample_results


def test_waiters_share_one_computation():
    cache: SingleFlightCache[str, int] = SingleFlightCache(1e6, lambda v: 8)
    release, runs = threading.Event(), []

    def compute() -> int:
        runs.append(1)
        release.wait(30)
        return 42

    answers: list[tuple[int, bool]] = []
    threads = [threading.Thread(target=lambda: answers.append(cache.get("k", compute)))
               for _ in range(6)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30  # a guard against hanging, not a timing check
    while cache.stats()["hits"] < 5 and time.monotonic() < deadline:
        threading.Event().wait(0.01)  # until every other caller waits on the first one
    release.set()
    for thread in threads:
        thread.join(30)
    assert runs == [1]
    assert sorted(answers) == [(42, False)] + [(42, True)] * 5


def test_a_failure_reaches_every_waiter_and_is_not_kept():
    cache: SingleFlightCache[str, int] = SingleFlightCache(1e6, lambda v: 8)

    def fail() -> int:
        raise ValueError("broken")

    with pytest.raises(ValueError, match="broken"):
        cache.get("k", fail)
    assert cache.get("k", lambda: 7) == (7, False)


def test_the_cache_stays_within_its_budget():
    cache: SingleFlightCache[int, bytes] = SingleFlightCache(100, len)
    for key in range(5):
        cache.get(key, lambda: b"x" * 40)
    assert cache.stats()["bytes"] <= 100 and cache.stats()["entries"] == 2
    assert cache.get(4, lambda: b"new")[1] is True  # the most recent ones are kept
    assert cache.get(0, lambda: b"new") == (b"new", False)
    cache.get(99, lambda: b"y" * 500)  # larger than the budget: served, not kept
    assert 99 not in cache.done


@pytest.mark.parametrize(("time", "bbox", "units", "error"), [
    ("2023-01-01T00:00", None, "K", NotInCubeError),
    ("2024-10-11T12:30", None, "K", NotInCubeError),
    ("soon", None, "K", TimeSelectionError),
    (WHEN, "50,10,60,20", "K", NotInCubeError),
    (WHEN, "10,50,5,40", "K", RegionError),
    (WHEN, None, "F", UsageError),
])
def test_requests_are_checked_before_inference(shipped_model, time, bbox, units, error):
    engine = CountingEngine(shipped_model.engine)
    results = sample_results(shipped_model, engine)
    with pytest.raises(error):
        results.resolve(time, bbox, units)
    assert engine.calls == 0


def test_truth_and_scores_match_sr_run_report(shipped_model):
    results = sample_results(shipped_model)
    result, cached = results.get(results.resolve(WHEN))
    assert not cached and result.truth is not None and result.land_sea is not None
    from sr_runtime.api import to_geofield

    sr = to_geofield(result.sr)
    truth = align_truth(results.truth, sr)  # what `sr-run --report` compares against
    np.testing.assert_array_equal(result.truth.values, truth.data)
    expected = report_scores(sr, truth)
    assert result.scores.rmse == pytest.approx(expected.rmse)
    assert result.scores.ssim == pytest.approx(expected.ssim)


def test_degc_results_and_times_without_truth(shipped_model):
    results = sample_results(shipped_model)
    kelvin, _ = results.get(results.resolve(WHEN))
    celsius, _ = results.get(results.resolve(WHEN, units="degC"))
    np.testing.assert_allclose(celsius.sr.values, kelvin.sr.values - 273.15, atol=1e-4)
    np.testing.assert_allclose(celsius.truth.values, kelvin.truth.values - 273.15, atol=1e-4)
    assert celsius.sr.attrs["units"] == "degC" and celsius.lr.attrs["units"] == "degC"
    assert celsius.scores.rmse == pytest.approx(kelvin.scores.rmse, abs=1e-4)
    early, _ = results.get(results.resolve("2024-10-02T06:00", "8,44,12,47"))
    assert early.truth is None and early.scores is None
    assert early.land_sea is not None and early.land_sea.shape == early.sr.shape


def test_the_second_variable_comes_from_the_same_inference_with_its_own_truth(shipped_model):
    engine = CountingEngine(shipped_model.engine)
    results = sample_results(shipped_model, engine)
    with pytest.raises(UsageError, match="variable must be one of the model's"):
        results.resolve(WHEN, variable="u10")
    assert engine.calls == 0
    t2m, _ = results.get(results.resolve(WHEN, units="degC"))
    d2m, cached = results.get(results.resolve(WHEN, units="degC", variable="d2m"))
    assert cached and engine.calls == 1
    assert d2m.sr.name == "d2m" and d2m.truth is not None and d2m.sr.attrs["units"] == "degC"
    truth = results.truth["d2m"].sel(time=np.datetime64(WHEN, "ns"))
    assert float(d2m.truth.mean()) == pytest.approx(float(truth.mean()) - 273.15, abs=0.05)
    assert d2m.scores.rmse < 1.0 and (d2m.sr.values <= t2m.sr.values).all()
