"""The ONNX Runtime engine runs a static model's static part once per set of static fields."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from sr_runtime.defaults import OROGRAPHY_MODEL
from sr_runtime.engines.onnxruntime import OnnxRuntimeEngine
from sr_runtime.engines.static_part import StaticPartCache, part_paths


@pytest.fixture
def default_copy(tmp_path) -> Path:
    """The shipped default model and its parts, in a folder of the test's own."""
    model = tmp_path / OROGRAPHY_MODEL.name
    for source in (OROGRAPHY_MODEL, *part_paths(OROGRAPHY_MODEL)):
        shutil.copy(source, tmp_path / source.name)
    return model


def _inputs(seed: int, lr_size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lr = np.concatenate([rng.normal(285, 5, (1, 2, lr_size, lr_size)),
                         rng.uniform(-1, 1, (1, 4, lr_size, lr_size))], axis=1)
    hr = lr_size * 8
    static = np.stack([rng.normal(800, 600, (hr, hr)), rng.uniform(0, 1, (hr, hr))])[None]
    return lr.astype(np.float32), static.astype(np.float32)


def test_steps_after_the_first_run_the_step_part_with_the_same_output(default_copy):
    cached = OnnxRuntimeEngine(default_copy, threads=1)
    whole = OnnxRuntimeEngine(default_copy, threads=1, static_cache=False)
    assert cached.static_cache is not None and "once per tile" in cached.static_part
    assert whole.static_cache is None and "off" in whole.static_part
    _, static = _inputs(0)
    for step in range(4):  # the same terrain, new weather each step
        lr, _ = _inputs(100 + step)
        out = cached.infer(lr, hr_static=static)
        assert np.abs(out - whole.infer(lr, hr_static=static)).max() <= 1e-5
    # first step whole (nothing to reuse yet), second computes the part, the rest reuse it
    assert (cached.static_cache.misses, cached.static_cache.hits) == (1, 2)


def test_sr_run_says_the_static_part_runs_once_per_tile(default_copy, tmp_path):
    from sr_runtime.engines.registry import load_engine

    assert "static part once per tile" in load_engine("onnxruntime", default_copy).summary()[-1]
    bare = tmp_path / "bare.onnx"  # no parts beside it
    shutil.copy(default_copy, bare)
    assert "static part" not in load_engine("onnxruntime", bare).summary()[-1]


def test_other_static_fields_never_get_a_cached_part(default_copy):
    engine = OnnxRuntimeEngine(default_copy, threads=1)
    reference = OnnxRuntimeEngine(default_copy, threads=1, static_cache=False)
    lr, static = _inputs(1)
    engine.infer(lr, hr_static=static)
    engine.infer(lr, hr_static=static)
    # differs in one cell the fingerprint does not sample: must be told apart all the same
    other = static.copy()
    other[0, 0, 3, 5] += 500.0
    for _ in range(2):
        got = engine.infer(lr, hr_static=other)
        assert np.abs(got - reference.infer(lr, hr_static=other)).max() <= 1e-5
    assert np.abs(got - reference.infer(lr, hr_static=static)).max() > 1e-3


def test_parts_of_another_model_version_are_not_used(default_copy, static_models, tmp_path):
    model = tmp_path / "other.onnx"  # another model, with the default model's parts beside it
    shutil.copy(static_models["one"], model)
    for part, target in zip(part_paths(default_copy), part_paths(model), strict=True):
        shutil.copy(part, target)
    engine = OnnxRuntimeEngine(model, threads=1)
    assert engine.static_cache is None
    assert "another version" in engine.static_part
    lr, static = _inputs(4)
    lr = lr[:, :1]  # the tiny model takes t2m alone
    assert np.isfinite(engine.infer(lr, hr_static=static)).all()


def test_the_cache_keeps_within_its_budget_and_stays_exact(default_copy):
    engine = OnnxRuntimeEngine(default_copy, threads=1)
    reference = OnnxRuntimeEngine(default_copy, threads=1, static_cache=False)
    cache = engine.static_cache
    assert isinstance(cache, StaticPartCache)
    lr, first = _inputs(2)
    for _ in range(3):
        engine.infer(lr, hr_static=first)
    entry_bytes = cache._bytes
    assert entry_bytes > 0
    cache.budget_bytes = int(entry_bytes * 1.5)  # room for one tile only
    tiles = [_inputs(10 + k)[1] for k in range(3)]
    for static in tiles:  # one tile after the other, each reused: the cache keeps the latest
        for _ in range(3):
            got = engine.infer(lr, hr_static=static)
            assert np.abs(got - reference.infer(lr, hr_static=static)).max() <= 1e-5
            assert cache._bytes <= cache.budget_bytes
    assert cache.stopped is None and cache.hits == 4
    # tiles taken in turn that do not fit: each would be evicted before its reuse
    for static in [_inputs(20 + k)[1] for k in range(2)] * 2:
        for _ in range(2):
            got = engine.infer(lr, hr_static=static)
            assert np.abs(got - reference.infer(lr, hr_static=static)).max() <= 1e-5
    assert cache.stopped and "more than the cache" in cache.stopped
    assert cache._bytes == 0 and not cache._entries  # its memory freed


def test_steps_in_flight_on_two_threads_get_their_own_outputs(default_copy):
    engine = OnnxRuntimeEngine(default_copy, threads=2, streams=2)
    reference = OnnxRuntimeEngine(default_copy, threads=1, static_cache=False)
    _, static = _inputs(3)
    steps = [_inputs(200 + k)[0] for k in range(8)]
    results: dict[int, np.ndarray] = {}

    def run(indices):
        for k in indices:
            results[k] = engine.infer(steps[k], hr_static=static)

    threads = [threading.Thread(target=run, args=(range(k, 8, 2),)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, lr in enumerate(steps):
        assert np.abs(results[k] - reference.infer(lr, hr_static=static)).max() <= 1e-5
    assert engine.static_cache.hits >= 4


def test_a_range_run_gives_the_same_store_with_and_without_the_parts(default_copy, tmp_path):
    """sr-run over the sample, end to end: the parts change the speed, never a value."""
    import xarray as xr
    from typer.testing import CliRunner

    from sr_runtime.cli import app

    bare = tmp_path / "bare" / default_copy.name
    bare.parent.mkdir()
    shutil.copy(default_copy, bare)  # the model alone: every step runs whole
    stores = {}
    for label, model in (("parts", default_copy), ("whole", bare)):
        out = tmp_path / f"{label}.zarr"
        result = CliRunner().invoke(app, ["--model", str(model), "--start", "2024-10-11T00:00",
                                          "--end", "2024-10-11T03:00", "--out", str(out),
                                          "--quiet"])
        assert result.exit_code == 0, result.output
        stores[label] = xr.open_zarr(out).load()
    for name in ("t2m", "d2m"):
        parts, whole = stores["parts"][name].values, stores["whole"][name].values
        assert parts.shape[0] == 4 and np.isfinite(parts).all()
        assert np.abs(parts - whole).max() <= 1e-4


def test_a_check_that_refuses_the_parts_keeps_none_of_them(default_copy):
    """An engine's ``check`` runs once, before the parts are first used, through both parts;
    if it raises, the call fails with its error and the parts are not kept."""
    from sr_runtime.engines.onnxruntime import open_session
    from sr_runtime.engines.static_part import find_parts
    from sr_runtime.paths import sha256_file

    parts, _ = find_parts(default_copy, sha256_file(default_copy))
    assert parts is not None
    whole = OnnxRuntimeEngine(default_copy, threads=1, static_cache=False)
    lr, static = _inputs(5)
    seen: list[float] = []

    def check(run_parts):
        got = run_parts({"lr": lr, "hr_static": static})
        seen.append(float(np.abs(got - whole.infer(lr, hr_static=static)).max()))

    cache = StaticPartCache(parts, lambda path: open_session(path, threads=1), check=check)
    for _ in range(3):
        out = cache.infer({"lr": lr, "hr_static": static}, lambda f: whole.infer(
            f["lr"], hr_static=f["hr_static"]))
    assert seen == [0.0] and cache.hits == 1  # checked once, bit for bit, then used
    np.testing.assert_array_equal(out, whole.infer(lr, hr_static=static))

    def refuse(run_parts):
        raise RuntimeError("parts disagree")

    refusing = StaticPartCache(parts, lambda path: open_session(path, threads=1), check=refuse)
    refusing.infer({"lr": lr, "hr_static": static}, lambda f: whole.infer(
        f["lr"], hr_static=f["hr_static"]))  # first sight: the whole model, no check
    with pytest.raises(RuntimeError, match="parts disagree"):
        refusing.infer({"lr": lr, "hr_static": static}, lambda f: f)
    assert refusing._sessions is None
