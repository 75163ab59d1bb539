"""The benchmark gate: its comparison logic, and that it fails on real slowed or broken runs."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from benchmarks import gate
from benchmarks.harness import SLOW_BACKEND_ENV


def synthetic_results(ratio: float = 2.0, parity_rmse: float = 1e-5, skill_rmse: float = 1.2,
                      skill_ssim: float = 0.80, profile: str = "selftest") -> dict:
    """A harness results dictionary with one model, two backends, one tile, sample skill."""

    def speed(backend: str, ms: float, r: float) -> dict:
        return {"backend": backend, "tile": 32, "precision": "fp32", "median_ms": ms,
                "hr_mpix_s": 0.065536 / (ms / 1e3), "gflop_s": 1.0, "ratio_vs_torch": r}

    skill = {"rmse": skill_rmse, "psnr": 30.0, "ssim": skill_ssim, "data_range": 20.0}
    return {
        "schema": 1, "profile": profile, "skipped_models": {},
        "models": {"m": {
            "backends": {"torch": {"precision": "fp32"}, "onnxruntime": {"precision": "fp32"}},
            "skipped_backends": {},
            "speed": {"torch@32": speed("torch", 100.0, 1.0),
                      "onnxruntime@32": speed("onnxruntime", 100.0 / ratio, ratio)},
            "accuracy": {
                "parity": {"onnxruntime": {"rmse": parity_rmse, "max_abs": 4 * parity_rmse,
                                           "psnr": 100.0, "ssim": 1.0, "data_range": 2.0}},
                "skill": {"bicubic": {"rmse": 1.5, "psnr": 28.0, "ssim": 0.75,
                                      "data_range": 20.0},
                          "torch": skill, "onnxruntime": dict(skill)},
                "skill_skipped": None},
        }},
    }


@pytest.fixture
def baseline() -> dict:
    return gate.make_baseline_profile(synthetic_results())


def failed_keys(checks: list[gate.Check]) -> set[str]:
    return {c.key for c in checks if c.failed}


def test_same_figures_pass(baseline):
    checks = gate.compare(baseline, synthetic_results())
    assert checks and not failed_keys(checks)
    assert {c.status for c in checks} == {"ok"}


def test_speed_noise_within_15_percent_passes(baseline):
    assert not failed_keys(gate.compare(baseline, synthetic_results(ratio=2.0 * 0.87)))


def test_speed_drop_beyond_15_percent_fails_and_is_named(baseline):
    checks = gate.compare(baseline, synthetic_results(ratio=2.0 * 0.80))
    assert failed_keys(checks) == {"m/onnxruntime@32"}
    assert "gate FAILED" in gate.summary(checks) and "speed m/onnxruntime@32" in \
        gate.summary(checks)
    assert "| REGRESSION | speed | m/onnxruntime@32 | 2 | 1.6 | -20.0 % |" in gate.table(checks)


def test_speed_gain_is_reported_not_failed(baseline):
    checks = gate.compare(baseline, synthetic_results(ratio=3.0))
    assert not failed_keys(checks)
    assert "faster" in {c.status for c in checks}
    assert "--update-baseline" in gate.summary(checks)


def test_parity_regression_fails(baseline):
    checks = gate.compare(baseline, synthetic_results(parity_rmse=5e-3))
    assert failed_keys(checks) == {"m/parity/onnxruntime/rmse", "m/parity/onnxruntime/max_abs"}


def test_skill_regression_fails_within_tolerance_passes(baseline):
    assert not failed_keys(gate.compare(baseline, synthetic_results(skill_ssim=0.799)))
    checks = gate.compare(baseline, synthetic_results(skill_ssim=0.78, skill_rmse=1.3))
    assert failed_keys(checks) == {f"m/skill/{b}/{metric}" for b in ("torch", "onnxruntime")
                                   for metric in ("ssim", "rmse")}


def test_non_finite_output_fails(baseline):
    checks = gate.compare(baseline, synthetic_results(parity_rmse=float("inf")))
    assert "m/parity/onnxruntime/rmse" in failed_keys(checks)


def test_missing_figure_fails_unless_skipped_with_reason(baseline):
    results = synthetic_results()
    del results["models"]["m"]["speed"]["onnxruntime@32"]
    assert failed_keys(gate.compare(baseline, results)) == {"m/onnxruntime@32"}
    results["models"]["m"]["skipped_backends"]["onnxruntime"] = "onnxruntime not installed"
    checks = gate.compare(baseline, results)
    assert not failed_keys(checks)
    assert any(c.status == "skipped" and "not installed" in c.note for c in checks)


def test_skill_skipped_when_sample_absent(baseline):
    results = synthetic_results()
    results["models"]["m"]["accuracy"]["skill"] = {}
    results["models"]["m"]["accuracy"]["skill_skipped"] = "sample stores absent"
    assert not failed_keys(gate.compare(baseline, results))


def test_pytest_benchmark_json_gives_ratios():
    bench = {"benchmarks": [
        {"extra_info": {"kind": "throughput", "model": "m", "backend": b, "tile": 32},
         "stats": {"median": seconds}} for b, seconds in (("torch", 0.1), ("onnxruntime", 0.04))
    ]}
    results = gate.results_from_pytest_benchmark(bench, synthetic_results())
    assert gate.speed_figures(results)["m/onnxruntime@32"]["ratio"] == pytest.approx(2.5)
    assert "m/parity/onnxruntime/rmse" in gate.accuracy_figures(results)


def write_json(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_cli_exit_status_and_table(tmp_path, capsys):
    base_file = tmp_path / "baseline.json"
    ok = write_json(tmp_path / "ok.json", synthetic_results())
    slow = write_json(tmp_path / "slow.json", synthetic_results(ratio=1.0))
    assert gate.main(["--results", str(ok), "--baseline", str(base_file),
                      "--update-baseline"]) == 0
    assert json.loads(base_file.read_text())["profiles"]["selftest"]["speed"]
    assert gate.main(["--results", str(ok), "--baseline", str(base_file)]) == 0
    capsys.readouterr()
    assert gate.main(["--results", str(slow), "--baseline", str(base_file)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out and "m/onnxruntime@32" in out and "-50.0 %" in out
    other = copy.deepcopy(synthetic_results(profile="quick"))
    assert gate.main(["--results", str(write_json(tmp_path / "q.json", other)),
                      "--baseline", str(base_file)]) == 2
    assert "--update-baseline" in capsys.readouterr().err


def test_accuracy_only_update_keeps_the_speed_baseline(tmp_path, capsys):
    base_file = tmp_path / "baseline.json"
    first = write_json(tmp_path / "first.json", synthetic_results(ratio=2.0, skill_rmse=1.2))
    assert gate.main(["--results", str(first), "--baseline", str(base_file),
                      "--update-baseline"]) == 0
    lucky = write_json(tmp_path / "lucky.json", synthetic_results(ratio=9.0, skill_rmse=0.9))
    assert gate.main(["--results", str(lucky), "--baseline", str(base_file),
                      "--update-baseline", "--accuracy-only"]) == 0
    profile = json.loads(base_file.read_text())["profiles"]["selftest"]
    assert profile["speed"]["m/onnxruntime@32"]["ratio"] == 2.0  # one lucky run not adopted
    assert profile["accuracy"]["m/skill/onnxruntime/rmse"]["value"] == 0.9
    assert gate.main(["--results", str(lucky), "--baseline", str(tmp_path / "none.json"),
                      "--update-baseline", "--accuracy-only"]) == 2
    assert "drop --accuracy-only" in capsys.readouterr().err


@pytest.mark.slow
def test_gate_fails_on_slowed_backend_and_perturbed_weights(tmp_path, capsys, monkeypatch):
    """Real runs of a tiny model: a baseline, then ONNX Runtime slowed and its weights broken."""
    pytest.importorskip("torch")
    common = ["--profile", "selftest", "--rounds", "3", "--workdir", str(tmp_path / "work"),
              "--baseline", str(tmp_path / "baseline.json"), "--no-retry"]
    assert gate.main([*common, "--out", str(tmp_path / "base.json"), "--update-baseline"]) == 0
    capsys.readouterr()

    monkeypatch.setenv(SLOW_BACKEND_ENV, "onnxruntime")
    status = gate.main([*common, "--out", str(tmp_path / "bad.json"),
                        "--perturb-weights", "0.05"])
    out = capsys.readouterr().out
    assert status == 1, out
    assert "speed tiny-8ch-1b/onnxruntime@32" in out
    assert "accuracy tiny-8ch-1b/parity/onnxruntime/rmse" in out
    assert (tmp_path / "selftest-gate.md").is_file()
