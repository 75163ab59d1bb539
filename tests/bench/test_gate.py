"""The benchmark gate: its comparison logic, and that it fails on real slowed or broken runs."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from benchmarks import gate
from benchmarks.harness import SLOW_BACKEND_ENV

AVX2 = "avx2/2c"
AVX512 = "avx512-bf16-vnni/2c"


def synthetic_results(ratio: float = 2.0, parity_rmse: float = 1e-5, skill_rmse: float = 1.2,
                      skill_ssim: float = 0.80, profile: str = "selftest",
                      vs_reference: float = 1.0, cpu_class: str | None = None) -> dict:
    """A harness results dictionary with one model, three backends (PyTorch, the candidate
    ONNX Runtime path and its reference artefact), one tile, sample skill."""

    def speed(backend: str, ms: float, r: float) -> dict:
        return {"backend": backend, "tile": 32, "precision": "fp32", "median_ms": ms,
                "hr_mpix_s": 0.065536 / (ms / 1e3), "gflop_s": 1.0, "ratio_vs_torch": r}

    skill = {"rmse": skill_rmse, "psnr": 30.0, "ssim": skill_ssim, "data_range": 20.0}
    candidate = {**speed("onnxruntime", 100.0 / ratio, ratio),
                 "ratio_vs_reference": vs_reference}
    reference_ratio = ratio / vs_reference
    return {
        "schema": 1, "profile": profile, "skipped_models": {},
        "machine": {"cpu_model": "AMD EPYC", "cpu_class": cpu_class} if cpu_class else {},
        "models": {"m": {
            "backends": {"torch": {"precision": "fp32"}, "onnxruntime": {"precision": "fp32"},
                         "reference": {"precision": "fp32"}},
            "skipped_backends": {},
            "speed": {"torch@32": speed("torch", 100.0, 1.0),
                      "onnxruntime@32": candidate,
                      "reference@32": speed("reference", 100.0 / reference_ratio,
                                            reference_ratio)},
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
    profile = json.loads(base_file.read_text())["profiles"]["selftest"]
    assert profile["classes"][gate.UNRECORDED_CLASS]["speed"]
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
    speed = profile["classes"][gate.UNRECORDED_CLASS]["speed"]
    assert speed["m/onnxruntime@32"]["ratio"] == 2.0  # one lucky run not adopted
    assert profile["accuracy"]["m/skill/onnxruntime/rmse"]["value"] == 0.9
    assert gate.main(["--results", str(lucky), "--baseline", str(tmp_path / "none.json"),
                      "--update-baseline", "--accuracy-only"]) == 2
    assert "drop --accuracy-only" in capsys.readouterr().err


# ------------------------------------------------------------------- CPU classes (issue 11)


@pytest.fixture
def two_class_baseline() -> dict:
    """The same code measured on an AVX2 and on an AVX-512 machine: ratios to PyTorch differ
    (PyTorch eager gains most from AVX-512), the ratio to the reference artefact does not."""
    profile = gate.make_baseline_profile(synthetic_results(ratio=6.0, cpu_class=AVX2))
    other = gate.make_baseline_profile(synthetic_results(ratio=3.0, cpu_class=AVX512))
    profile["classes"].update(other["classes"])
    return profile


CLASS_RATIOS = [(AVX2, 6.0), (AVX512, 3.0)]


@pytest.mark.parametrize(("cpu_class", "ratio"), CLASS_RATIOS)
def test_unchanged_code_passes_on_either_class(two_class_baseline, cpu_class, ratio):
    checks = gate.compare(two_class_baseline, synthetic_results(ratio=ratio, cpu_class=cpu_class))
    assert not failed_keys(checks)
    assert {"speed", "reference", "accuracy"} <= {c.kind for c in checks if c.status == "ok"}
    assert gate.class_note(two_class_baseline, cpu_class) is None


def test_a_ratio_is_never_gated_against_another_class(two_class_baseline):
    """What issue 11 saw: AVX-512 ratios checked against an AVX2 baseline fail unchanged code."""
    avx512_run = synthetic_results(ratio=3.0, cpu_class=AVX512)
    assert failed_keys(gate.compare(two_class_baseline, avx512_run, cpu_class=AVX2)) == \
        {"m/onnxruntime@32"}
    assert not failed_keys(gate.compare(two_class_baseline, avx512_run))


@pytest.mark.parametrize(("cpu_class", "ratio"), CLASS_RATIOS)
def test_slowed_backend_fails_on_either_class(two_class_baseline, cpu_class, ratio):
    slowed = synthetic_results(ratio=ratio / 2, vs_reference=0.5, cpu_class=cpu_class)
    checks = gate.compare(two_class_baseline, slowed)
    assert {(c.kind, c.key) for c in checks if c.failed} == {("speed", "m/onnxruntime@32"),
                                                              ("reference", "m/onnxruntime@32")}


@pytest.mark.parametrize(("cpu_class", "ratio"), CLASS_RATIOS)
def test_perturbed_weights_fail_on_either_class(two_class_baseline, cpu_class, ratio):
    perturbed = synthetic_results(ratio=ratio, parity_rmse=0.05, cpu_class=cpu_class)
    assert failed_keys(gate.compare(two_class_baseline, perturbed)) == \
        {"m/parity/onnxruntime/rmse", "m/parity/onnxruntime/max_abs"}


def test_class_without_baseline_gates_reference_and_accuracy_only(two_class_baseline):
    amx = "amx/2c"
    note = gate.class_note(two_class_baseline, amx)
    assert note is not None and "\n" not in note and amx in note and AVX2 in note
    unchanged = gate.compare(two_class_baseline, synthetic_results(ratio=9.0, cpu_class=amx))
    assert not failed_keys(unchanged)
    assert {c.status for c in unchanged if c.kind == "speed"} == {"not gated"}
    slowed = synthetic_results(ratio=4.5, vs_reference=0.5, cpu_class=amx)
    assert {(c.kind, c.key) for c in gate.compare(two_class_baseline, slowed) if c.failed} == \
        {("reference", "m/onnxruntime@32")}
    perturbed = synthetic_results(ratio=9.0, parity_rmse=0.05, cpu_class=amx)
    assert "m/parity/onnxruntime/rmse" in failed_keys(gate.compare(two_class_baseline,
                                                                   perturbed))


def test_missing_reference_artefact_fails(baseline):
    results = synthetic_results()
    del results["models"]["m"]["speed"]["onnxruntime@32"]["ratio_vs_reference"]
    results["models"]["m"]["skipped_backends"]["reference"] = "no reference artefact"
    assert ("reference", "m/onnxruntime@32") in {
        (c.kind, c.key) for c in gate.compare(baseline, results) if c.failed}


def test_update_keeps_other_classes_and_takes_the_lowest_ratio(tmp_path):
    base_file = tmp_path / "baseline.json"
    avx2 = write_json(tmp_path / "avx2.json", synthetic_results(ratio=6.0, cpu_class=AVX2))
    assert gate.main(["--results", str(avx2), "--baseline", str(base_file),
                      "--update-baseline"]) == 0
    runs = [write_json(tmp_path / f"r{i}.json", synthetic_results(ratio=r, cpu_class=AVX512))
            for i, r in enumerate((3.3, 3.0, 3.6))]
    assert gate.main(["--results", *map(str, runs), "--baseline", str(base_file),
                      "--update-baseline"]) == 0
    classes = json.loads(base_file.read_text())["profiles"]["selftest"]["classes"]
    assert classes[AVX2]["speed"]["m/onnxruntime@32"]["ratio"] == 6.0
    assert classes[AVX512]["speed"]["m/onnxruntime@32"]["ratio"] == 3.0
    assert classes[AVX512]["runs"] == 3


def test_old_baseline_layout_is_refused_with_the_fix(tmp_path, capsys):
    old = write_json(tmp_path / "old.json", {"schema": 1, "profiles": {"selftest": {}}})
    ok = write_json(tmp_path / "ok.json", synthetic_results())
    assert gate.main(["--results", str(ok), "--baseline", str(old)]) == 2
    assert "--update-baseline" in capsys.readouterr().err


def test_results_default_to_a_folder_git_ignores():
    """CI must leave the checkout unchanged: the gate's default outputs are git-ignored."""
    import shutil
    import subprocess

    root = Path(__file__).resolve().parents[2]
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    for name in ("quick.json", "quick-gate.md"):
        path = gate.LATEST_DIR / name
        done = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=root, check=False)
        assert done.returncode == 0, f"{path} is not ignored by git"


@pytest.mark.slow
def test_real_runs_gate_under_both_cpu_classes(tmp_path, capsys, monkeypatch):
    """Real runs of a tiny model, each checked as an AVX2 and as an AVX-512 machine (the class
    this machine lacks is simulated by overriding its detection): unchanged code passes; a
    slowed backend, perturbed weights and a removed graph rewrite fail."""
    pytest.importorskip("torch")
    baseline = str(tmp_path / "baseline.json")
    common = ["--profile", "selftest", "--rounds", "3", "--workdir", str(tmp_path / "work"),
              "--reference-dir", str(tmp_path / "reference"), "--baseline", baseline]

    def run(name: str, *extra: str) -> Path:
        out = tmp_path / f"{name}.json"
        gate.main([*common, "--out", str(out), *extra])
        capsys.readouterr()
        return out

    # a baseline from two runs, the lowest ratio of each kept, as `--update-baseline` documents
    bases = [str(run(f"base{k}", "--update-baseline", "--cpu-class", AVX2, "--no-retry"))
             for k in (1, 2)]
    assert (tmp_path / "reference" / "tiny-8ch-1b.onnx").is_file()
    for cpu_class in (AVX2, AVX512):
        assert gate.main(["--results", *bases, "--baseline", baseline, "--update-baseline",
                          "--cpu-class", cpu_class]) == 0
    # The ratio to PyTorch of this 8-channel model swings by up to 40 % from one run to the next
    # on some CPUs (PyTorch's own time is mostly overhead), so the baseline keeps the lower of two
    # runs, "unchanged" is measured as CI measures (a speed regression is measured again), and a
    # slowed backend must fail on the interleaved candidate/reference ratio (within ~5 %).
    unchanged = run("unchanged")
    broken = run("rewrite", "--drop-rewrite", "final_conv_before_pixel_shuffle", "--no-retry")
    monkeypatch.setenv(SLOW_BACKEND_ENV, "onnxruntime")
    slowed = run("slowed", "--perturb-weights", "0.05", "--no-retry")
    assert (tmp_path / "selftest-gate.md").is_file()

    def check(results: Path, cpu_class: str) -> tuple[int, str]:
        status = gate.main(["--results", str(results), "--baseline", baseline,
                            "--cpu-class", cpu_class])
        return status, capsys.readouterr().out

    for cpu_class in (AVX2, AVX512):
        status, out = check(unchanged, cpu_class)
        assert status == 0, out
        status, out = check(slowed, cpu_class)
        assert status == 1, out
        assert "reference tiny-8ch-1b/onnxruntime@32" in out
        assert "accuracy tiny-8ch-1b/parity/onnxruntime/rmse" in out
        status, out = check(broken, cpu_class)
        assert status == 1, out
        assert "reference tiny-8ch-1b/onnxruntime@32" in out


def test_gate_verdict_and_results_are_logged_to_mlflow(tmp_path, capsys, monkeypatch):
    """`benchmarks.gate --mlflow URI`: the run holds the results and the gate's verdict, read
    back with MLflow's own client; without --mlflow or the variable nothing is logged."""
    tracking = pytest.importorskip("mlflow.tracking", reason="the mlops extra is not installed")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    base_file = tmp_path / "baseline.json"
    ok = write_json(tmp_path / "ok.json", synthetic_results())
    slow = write_json(tmp_path / "slow.json", synthetic_results(ratio=1.0))
    assert gate.main(["--results", str(ok), "--baseline", str(base_file),
                      "--update-baseline"]) == 0
    assert gate.main(["--results", str(ok), "--baseline", str(base_file)]) == 0
    assert "MLflow" not in capsys.readouterr().err
    uri = f"sqlite:///{tmp_path / 'runs.db'}"
    assert gate.main(["--results", str(slow), "--baseline", str(base_file),
                      "--mlflow", uri]) == 1
    assert "logged to MLflow as run" in capsys.readouterr().err
    client = tracking.MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.data.metrics["gate.passed"] == 0.0
    assert run.data.metrics["gate.failed_checks"] >= 1
