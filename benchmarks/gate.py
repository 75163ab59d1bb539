"""The CI performance and accuracy gate: a fresh run against ``benchmarks/baseline.json``.

    python -m benchmarks.gate --quick                    # CI: run the quick profile and check
    python -m benchmarks.gate --quick --update-baseline  # re-measure and rewrite the baseline
    python -m benchmarks.gate --results run.json         # check results measured earlier
    python -m benchmarks.gate --benchmark-json bench.json --results run.json
                                                         # speed from pytest-benchmark instead

Speed is never compared in absolute terms: each backend's figure is its throughput divided by
PyTorch eager FP32 NCHW's, measured interleaved in the same run (see ``benchmarks.harness``).
A ratio more than 15 % below the baseline's fails, and so does an accuracy figure worse than
the baseline's by more than its tolerance (stored beside it in the baseline). A speed failure
must reproduce: the affected models are measured a second time and the better ratio counts.
Exit status: 0 pass, 1 regression, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sr_runtime.paths import write_atomically

BENCH_DIR = Path(__file__).resolve().parent
BASELINE_PATH = BENCH_DIR / "baseline.json"
RESULTS_DIR = BENCH_DIR / "results"
SPEED_TOLERANCE = 0.15
BASELINE_BACKEND = "torch"

# Accuracy figures gated, with how a tolerance is derived when the baseline is written.
# parity: every backend against PyTorch FP32 on the same input; skill: against HR truth.
PARITY_FLOOR_K = {"fp32": 1e-4, "fp16": 2e-2}
SKILL_RULES = {  # metric -> (better, absolute tolerance, relative tolerance)
    "rmse": ("lower", 0.005, 0.01),
    "psnr": ("higher", 0.1, 0.0),
    "ssim": ("higher", 0.002, 0.0),
}


class GateUsageError(Exception):
    """A problem with the gate's inputs (missing baseline, wrong profile): exit status 2."""


# ------------------------------------------------------------------------- flattening results


def speed_figures(results: dict) -> dict[str, dict[str, float]]:
    """``model/backend@tile`` -> ratio to PyTorch FP32 (the baseline backend excluded)."""
    figures = {}
    for model, entry in results.get("models", {}).items():
        for key, row in (entry.get("speed") or {}).items():
            if row["backend"] == BASELINE_BACKEND:
                continue
            figures[f"{model}/{key}"] = {"ratio": float(row["ratio_vs_torch"]),
                                         "ms": float(row.get("median_ms", math.nan))}
    return figures


def _parity_tolerance(value: float, precision: str) -> float:
    floor = PARITY_FLOOR_K.get(precision, PARITY_FLOOR_K["fp16"])
    return max(floor, 2.0 * value) if math.isfinite(value) else floor


def accuracy_figures(results: dict) -> dict[str, dict[str, object]]:
    """``model/parity|skill/method/metric`` -> value, direction and the tolerance it would get."""
    figures: dict[str, dict[str, object]] = {}
    for model, entry in results.get("models", {}).items():
        accuracy = entry.get("accuracy") or {}
        backends = entry.get("backends", {})
        for backend, scores in (accuracy.get("parity") or {}).items():
            precision = backends.get(backend, {}).get("precision", "fp32")
            for metric in ("rmse", "max_abs"):
                value = float(scores[metric])
                figures[f"{model}/parity/{backend}/{metric}"] = {
                    "value": value, "better": "lower", "units": "K",
                    "tolerance": _parity_tolerance(value, precision)}
        for method, scores in (accuracy.get("skill") or {}).items():
            for metric, (better, absolute, relative) in SKILL_RULES.items():
                value = float(scores[metric])
                tolerance = absolute + relative * abs(value) if math.isfinite(value) \
                    else absolute
                figures[f"{model}/skill/{method}/{metric}"] = {
                    "value": value, "better": better,
                    "units": {"rmse": "K", "psnr": "dB", "ssim": ""}[metric],
                    "tolerance": tolerance}
    return figures


def skipped_reasons(results: dict) -> dict[str, str]:
    """Prefixes (``model`` or ``model/backend``) that the run skipped, with the reason."""
    reasons = dict(results.get("skipped_models", {}))
    for model, entry in results.get("models", {}).items():
        for backend, why in (entry.get("skipped_backends") or {}).items():
            reasons[f"{model}/{backend}"] = why
        accuracy = entry.get("accuracy") or {}
        if accuracy.get("skill_skipped"):
            reasons[f"{model}/skill"] = accuracy["skill_skipped"]
    return reasons


def make_baseline_profile(results: dict) -> dict[str, object]:
    return {
        "created": results.get("created"), "machine": results.get("machine"),
        "load_average": [results.get("load_average_start"), results.get("load_average_end")],
        "settings": results.get("settings"),
        "speed": speed_figures(results),
        "accuracy": accuracy_figures(results),
    }


# ------------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class Check:
    kind: str  # "speed" or "accuracy"
    key: str
    baseline: float | None
    candidate: float | None
    limit: float | None
    status: str  # ok, faster, better, REGRESSION, MISSING, skipped, new
    note: str = ""

    @property
    def failed(self) -> bool:
        return self.status in ("REGRESSION", "MISSING")

    @property
    def change(self) -> str:
        if self.baseline is None or self.candidate is None:
            return ""
        if self.kind == "speed" and self.baseline:
            return f"{100 * (self.candidate / self.baseline - 1):+.1f} %"
        return f"{self.candidate - self.baseline:+.3g}"


def _skip_reason(key: str, skipped: dict[str, str]) -> str | None:
    parts = key.replace("@", "/").split("/")
    for n in range(len(parts), 0, -1):
        prefix = "/".join(parts[:n])
        if prefix in skipped:
            return skipped[prefix]
    return None


def _absent(kind: str, key: str, baseline: float, limit: float, skipped: dict[str, str]) -> Check:
    """A baseline figure this run lacks: skipped with its reason, else MISSING (a failure)."""
    reason = _skip_reason(key, skipped)
    return Check(kind, key, baseline, None, limit, "skipped" if reason else "MISSING",
                 reason or "not measured in this run")


def compare(baseline: dict, results: dict, speed_tolerance: float = SPEED_TOLERANCE
            ) -> list[Check]:
    """Every gated figure of ``baseline`` (one profile) against the fresh ``results``."""
    checks: list[Check] = []
    skipped = skipped_reasons(results)
    speed = speed_figures(results)
    for key, base in sorted(baseline.get("speed", {}).items()):
        ratio = float(base["ratio"])
        limit = ratio * (1 - speed_tolerance)
        if key not in speed:
            checks.append(_absent("speed", key, ratio, limit, skipped))
            continue
        value = speed[key]["ratio"]
        if not math.isfinite(value) or value < limit:
            status = "REGRESSION"
        elif value > ratio * (1 + speed_tolerance):
            status = "faster"
        else:
            status = "ok"
        checks.append(Check("speed", key, ratio, value, limit, status))
    for key in sorted(set(speed) - set(baseline.get("speed", {}))):
        checks.append(Check("speed", key, None, speed[key]["ratio"], None, "new",
                            "not in the baseline"))

    accuracy = accuracy_figures(results)
    for key, base in sorted(baseline.get("accuracy", {}).items()):
        value0, tolerance = float(base["value"]), float(base["tolerance"])
        lower = base.get("better", "lower") == "lower"
        limit = value0 + tolerance if lower else value0 - tolerance
        if key not in accuracy:
            checks.append(_absent("accuracy", key, value0, limit, skipped))
            continue
        value = float(accuracy[key]["value"])
        worse = (not math.isfinite(value) and math.isfinite(value0)) or (
            value > limit if lower else value < limit)
        improved = value < value0 - tolerance if lower else value > value0 + tolerance
        status = "REGRESSION" if worse else ("better" if improved else "ok")
        checks.append(Check("accuracy", key, value0, value, limit, status,
                            str(base.get("units", ""))))
    for key in sorted(set(accuracy) - set(baseline.get("accuracy", {}))):
        checks.append(Check("accuracy", key, None, float(accuracy[key]["value"]), None, "new",
                            "not in the baseline"))
    return checks


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0 or not math.isfinite(value):
        return str(value)
    return f"{value:.4g}" if 1e-3 <= abs(value) < 1e5 else f"{value:.3e}"


ORDER = {"REGRESSION": 0, "MISSING": 1, "faster": 2, "better": 2, "new": 3, "skipped": 4,
         "ok": 5}


def table(checks: Iterable[Check]) -> str:
    """Markdown table, what moved first."""
    rows = sorted(checks, key=lambda c: (ORDER.get(c.status, 9), c.kind, c.key))
    lines = ["| status | kind | figure | baseline | now | change | limit | note |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for c in rows:
        lines.append(f"| {c.status} | {c.kind} | {c.key} | {_fmt(c.baseline)} | "
                     f"{_fmt(c.candidate)} | {c.change} | {_fmt(c.limit)} | {c.note} |")
    return "\n".join(lines)


def summary(checks: list[Check]) -> str:
    failed = [c for c in checks if c.failed]
    if not failed:
        moved = sum(c.status in ("faster", "better") for c in checks)
        extra = f"; {moved} figure(s) improved beyond tolerance: consider --update-baseline" \
            if moved else ""
        return f"gate PASSED: {len(checks)} figures checked{extra}"
    names = ", ".join(f"{c.kind} {c.key}" for c in failed)
    return f"gate FAILED: {len(failed)} regression(s): {names}"


# ------------------------------------------------------------------------ pytest-benchmark


def results_from_pytest_benchmark(bench: dict, accuracy_from: dict | None = None) -> dict:
    """Results in the harness's shape from a ``--benchmark-json`` file of ``benchmarks/``.

    Ratios there come from each test's median, not from interleaved rounds: noisier.
    Accuracy (and skipped models) are taken from ``accuracy_from``, a harness results file.
    """
    models: dict[str, dict] = {}
    times: dict[tuple[str, int], dict[str, float]] = {}
    for item in bench.get("benchmarks", []):
        info = item.get("extra_info", {})
        if info.get("kind") != "throughput":
            continue
        times.setdefault((info["model"], int(info["tile"])), {})[info["backend"]] = \
            float(item["stats"]["median"])
    for (model, tile), by_backend in times.items():
        base = by_backend.get(BASELINE_BACKEND)
        if base is None:
            continue
        speed = models.setdefault(model, {}).setdefault("speed", {})
        for backend, seconds in by_backend.items():
            speed[f"{backend}@{tile}"] = {"backend": backend, "tile": tile,
                                          "median_ms": 1e3 * seconds,
                                          "ratio_vs_torch": base / seconds}
    results = {"models": models, "skipped_models": {}}
    if accuracy_from:
        results["skipped_models"] = accuracy_from.get("skipped_models", {})
        for model, entry in accuracy_from.get("models", {}).items():
            target = models.setdefault(model, {})
            for field in ("accuracy", "backends", "skipped_backends"):
                if field in entry:
                    target[field] = entry[field]
    return results


# ------------------------------------------------------------------------------------ CLI


def load_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise GateUsageError(f"{what} {path} not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise GateUsageError(f"{what} {path} is not JSON ({exc.msg} at line {exc.lineno})") \
            from exc


def baseline_profile(baseline: dict, profile: str, path: Path) -> dict:
    profiles = baseline.get("profiles", {})
    if profile not in profiles:
        raise GateUsageError(
            f"{path} has no baseline for profile {profile!r} (has: "
            f"{', '.join(profiles) or 'none'}); create it: python -m benchmarks.gate "
            f"--profile {profile} --update-baseline")
    return profiles[profile]


def write_baseline(path: Path, results: dict, speed_tolerance: float,
                   accuracy_only: bool = False) -> None:
    """Write ``results`` as the profile's baseline; with ``accuracy_only`` keep its speed part.

    Accuracy figures are deterministic, speed ratios are not: refreshing the accuracy baseline
    (a new model, a re-export) should not also adopt one run's noisy speed ratios.
    """
    baseline = json.loads(path.read_text()) if path.is_file() else {}
    baseline.setdefault("schema", 1)
    baseline["speed_tolerance"] = speed_tolerance
    baseline["update_command"] = "python -m benchmarks.gate --profile PROFILE --update-baseline"
    profiles = baseline.setdefault("profiles", {})
    fresh = make_baseline_profile(results)
    old = profiles.get(results["profile"])
    if accuracy_only:
        if old is None:
            raise GateUsageError(f"{path} has no baseline for profile {results['profile']!r} "
                                 "to keep the speed figures of; drop --accuracy-only")
        fresh = {**old, "accuracy": fresh["accuracy"],
                 "accuracy_updated": results.get("created")}
    profiles[results["profile"]] = fresh
    write_atomically((json.dumps(baseline, indent=1, sort_keys=False) + "\n").encode(), path)


def _retry_speed(results: dict, failed: list[Check], args, log) -> dict:
    """Measure the models with speed regressions again; keep the better ratio of the two."""
    from dataclasses import replace

    from benchmarks import harness

    models = sorted({c.key.split("/")[0] for c in failed if c.kind == "speed"})
    settings = harness.settings_from_args(args)
    runs = tuple(replace(m, accuracy=False) for m in settings.profile.models
                 if m.spec.name in models)
    settings.profile = replace(settings.profile, models=runs, endtoend=False)
    log(f"speed regression in {', '.join(models)}: measuring again to confirm")
    again = harness.run(settings, log=log)
    for model, entry in again["models"].items():
        first = results["models"][model]["speed"]
        for key, row in entry["speed"].items():
            if row["ratio_vs_torch"] > first[key]["ratio_vs_torch"]:
                first[key] = {**row, "note": "second measurement"}
    results.setdefault("notes", []).append(f"speed re-measured for {', '.join(models)}")
    return results


def main(argv: list[str] | None = None) -> int:
    from benchmarks import harness

    parser = argparse.ArgumentParser(prog="python -m benchmarks.gate",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    harness.add_run_arguments(parser)
    parser.add_argument("--quick", dest="profile", action="store_const", const="quick",
                        help="same as --profile quick (the CI gate)")
    parser.add_argument("--full", dest="profile", action="store_const", const="full",
                        help="same as --profile full")
    parser.add_argument("--results", type=Path, help="check this harness results JSON instead "
                        "of running (its profile is used)")
    parser.add_argument("--benchmark-json", type=Path, help="speed from this pytest-benchmark "
                        "JSON (`pytest benchmarks/ --benchmark-json=...`); accuracy from "
                        "--results")
    parser.add_argument("--baseline", type=Path, default=BASELINE_PATH)
    parser.add_argument("--update-baseline", action="store_true",
                        help="write this run's figures as the profile's baseline")
    parser.add_argument("--accuracy-only", action="store_true",
                        help="with --update-baseline: refresh the accuracy figures only, keeping "
                             "the baseline's speed ratios")
    parser.add_argument("--speed-tolerance", type=float, default=None,
                        help="allowed fractional drop of a speed ratio [baseline's, or 0.15]")
    parser.add_argument("--no-retry", action="store_true",
                        help="do not re-measure to confirm a speed regression")
    parser.add_argument("--out", type=Path, help="where to write the fresh results JSON "
                        "[benchmarks/results/<profile>-latest.json]")
    args = parser.parse_args(argv)

    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    try:
        ran = False
        if args.benchmark_json:
            accuracy = load_json(args.results, "results") if args.results else None
            results = results_from_pytest_benchmark(
                load_json(args.benchmark_json, "pytest-benchmark JSON"), accuracy)
            results["profile"] = (accuracy or {}).get("profile", args.profile)
        elif args.results:
            results = load_json(args.results, "results")
        else:
            results = harness.run(harness.settings_from_args(args), log=log)
            ran = True
        profile = results.get("profile", args.profile)
        if ran:
            out = args.out or RESULTS_DIR / f"{profile}-latest.json"
            log(f"results: {harness.write_results(results, out)}")
        if args.update_baseline:
            tolerance = args.speed_tolerance or SPEED_TOLERANCE
            write_baseline(args.baseline, results, tolerance, args.accuracy_only)
            print(f"baseline for profile {profile!r} written to {args.baseline}"
                  + (" (accuracy figures only)" if args.accuracy_only else ""))
            return 0
        baseline = load_json(args.baseline, "baseline")
        tolerance = args.speed_tolerance or float(baseline.get("speed_tolerance",
                                                               SPEED_TOLERANCE))
        expected = baseline_profile(baseline, profile, args.baseline)
        checks = compare(expected, results, tolerance)
        failed = [c for c in checks if c.failed]
        if ran and not args.no_retry and any(c.kind == "speed" for c in failed):
            results = _retry_speed(results, failed, args, log)
            harness.write_results(results, out)
            checks = compare(expected, results, tolerance)
    except GateUsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = table(checks)
    verdict = summary(checks)
    print(f"## Gate: profile {profile}, speed tolerance {100 * tolerance:.0f} % "
          f"(ratios to PyTorch FP32 NCHW)\n\n{report}\n\n{verdict}")
    if ran:
        out.with_name(f"{profile}-gate.md").write_text(f"{report}\n\n{verdict}\n")
    return 1 if any(c.failed for c in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
