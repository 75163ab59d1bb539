"""The GPU check script's bookkeeping: speed ratios, the issue's targets, capped timing.

The GPU measurements themselves run only on a CUDA machine (``benchmarks/gpu_check.sh``); these
parts decide what its report says, and need no GPU.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import gpu_check


def row(backend: str, ms: float, case: str = "global", model: str = "m") -> dict:
    return {"model": model, "case": case, "backend": backend, "ms_median": ms}


def test_speed_ratios_against_each_baseline_of_the_same_model_and_case():
    results = [row("torch-fp32-nchw", 400.0), row("torch-fp16-channels-last", 100.0),
               row("tensorrt-fp16", 50.0), row("torch-fp32-nchw", 9.0, case="tile32")]
    ratios = {(r["case"], r["backend"]): r for r in gpu_check.speed_ratios(results)}
    trt = ratios[("global", "tensorrt-fp16")]
    assert trt["vs_torch_fp32_eager"] == 8.0
    assert trt["vs_torch_fp16_channels_last"] == 2.0
    assert "vs_torch_fp32_eager_tf32" not in trt  # that baseline did not run
    assert ratios[("tile32", "torch-fp32-nchw")] == {
        "model": "m", "case": "tile32", "backend": "torch-fp32-nchw", "vs_torch_fp32_eager": 1.0}


def test_targets_met_missed_and_not_measured():
    met = gpu_check.targets([row("torch-fp32-nchw", 400.0), row("torch-fp16-channels-last", 60.0),
                             row("tensorrt-fp16", 40.0)])
    assert {t["target"]: t["met"] for t in met} == {
        "tensorrt-fp16 vs_torch_fp32_eager": True,  # 10x >= 4x
        "tensorrt-fp16 vs_torch_fp16_channels_last": True,  # 1.5x >= 1.5x
        "tensorrt-fp16 global step ms": True}  # 40 ms < 50 ms
    missed = gpu_check.targets([row("torch-fp32-nchw", 400.0),
                                row("torch-fp16-channels-last", 60.0), row("tensorrt-fp16", 55.0)])
    assert {t["target"]: t["met"] for t in missed} == {
        "tensorrt-fp16 vs_torch_fp32_eager": True,
        "tensorrt-fp16 vs_torch_fp16_channels_last": False,
        "tensorrt-fp16 global step ms": False}
    absent = gpu_check.targets([row("torch-fp32-nchw", 9.0, case="tile32")])
    assert [t["met"] for t in absent] == [None, None]  # no TensorRT: not measured, not failed


def test_timing_stops_early_for_slow_backends_but_keeps_a_minimum(monkeypatch):
    clock = iter(np.arange(0.0, 1000.0, 1.0))  # every perf_counter call advances one second
    monkeypatch.setattr(gpu_check.time, "perf_counter", lambda: float(next(clock)))
    calls = []
    times = gpu_check.time_host(calls.append, [np.zeros(1)], warmup=3, repeats=10,
                                sync=lambda: None, max_seconds=2.0)
    assert len(times) == gpu_check.MIN_TIMED_RUNS
    assert len(calls) == 1 + gpu_check.MIN_TIMED_RUNS  # one warm-up: it already took too long
    fast = gpu_check.time_host(lambda _: None, [np.zeros(1)], warmup=1, repeats=10,
                               sync=lambda: None, max_seconds=1e9)
    assert len(fast) == 10


def test_arguments_select_cases_models_and_backends(tmp_path):
    args = gpu_check.parse_args(["--out", str(tmp_path / "r.json"), "--cases", "global",
                                 "--models", "shipped", "--backends",
                                 "torch-fp32-nchw,tensorrt-fp16"])
    assert args.cases == ["global"] and args.models == ["shipped"]
    assert args.backends == ["torch-fp32-nchw", "tensorrt-fp16"]
    defaults = gpu_check.parse_args(["--out", str(tmp_path / "r.json")])
    assert defaults.cases == ["tile32", "tile128", "global"] and defaults.backends == []


@pytest.mark.parametrize("option, value", [("--cases", "globl"), ("--models", "demo,x"),
                                           ("--backends", "tensorrt")])
def test_a_misspelt_subset_is_refused_not_silently_empty(option, value, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        gpu_check.parse_args(["--out", str(tmp_path / "r.json"), option, value])
    assert exit_info.value.code == 2
    assert f"{option}: unknown" in capsys.readouterr().err


def test_the_committed_checkpoint_is_benchmarked():
    assert any(p.name == "sr-edge-t2m-x8.ckpt" for p in gpu_check.shipped_models())


def test_report_is_written_atomically_and_readable(tmp_path):
    report = gpu_check.Report(tmp_path / "report.json", budget=10.0)
    report.skip("tensorrt", "tensorrt is not installed")
    report.write()
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["skipped"] == [{"what": "tensorrt", "reason": "tensorrt is not installed"}]
    assert not list(tmp_path.glob("*.part"))


def test_without_a_gpu_the_script_says_so_and_exits_2(capsys, tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    assert gpu_check.main(["--out", str(tmp_path / "r.json")]) == 2
    assert "no CUDA GPU visible" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()
