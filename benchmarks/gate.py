"""The CI performance and accuracy gate: a fresh run against ``benchmarks/baseline.json``.

    python -m benchmarks.gate --quick                    # CI: run the quick profile and check
    python -m benchmarks.gate --quick --update-baseline  # re-measure and rewrite this CPU
                                                         # class's baseline (and the reference)
    python -m benchmarks.gate --results run.json         # check results measured earlier
    python -m benchmarks.gate --benchmark-json bench.json --results run.json
                                                         # speed from pytest-benchmark instead

Speed is never compared in absolute terms, and never against figures of another CPU class:

- **reference** (any CPU): the candidate ONNX Runtime path (a fresh export by the current code,
  through the shipped engine) against the last accepted artefact run by a pinned plain session,
  interleaved in the same run. Unchanged code gives ~1.0 on every machine; a slower engine, a
  lost graph rewrite or a slower export falls below 1 - tolerance.
- **speed** (per CPU class, ``<ISA level>/<cores>c``, see :mod:`sr_runtime.machine`): each
  backend's throughput over PyTorch eager FP32 NCHW's in the same run, against the baseline of
  the class the run was measured on. A class with no baseline is said in one line; its ratios
  are reported, not gated.

A ratio more than 15 % below its expectation fails, and so does an accuracy figure worse than
the baseline's by more than its tolerance (stored beside it; accuracy is gated in full on every
class). A speed failure must reproduce: the affected models are measured a second time and the
better ratio counts. Exit status: 0 pass, 1 regression, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sr_runtime.paths import write_atomically

BENCH_DIR = Path(__file__).resolve().parent
BASELINE_PATH = BENCH_DIR / "baseline.json"
LATEST_DIR = BENCH_DIR / "results" / "latest"  # ignored by git
SCHEMA = 2
SPEED_TOLERANCE = 0.15
BASELINE_BACKEND = "torch"
REFERENCE_BACKEND = "reference"
#: What a candidate/reference ratio should be while nothing changed, on any CPU.
REFERENCE_EXPECTED = 1.0
UNRECORDED_CLASS = "unrecorded"

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
    """``model/backend@tile`` -> ratio to PyTorch FP32 (the baseline and reference excluded)."""
    figures = {}
    for model, entry in results.get("models", {}).items():
        for key, row in (entry.get("speed") or {}).items():
            if row["backend"] in (BASELINE_BACKEND, REFERENCE_BACKEND):
                continue
            figures[f"{model}/{key}"] = {"ratio": float(row["ratio_vs_torch"]),
                                         "ms": float(row.get("median_ms", math.nan))}
    return figures


def reference_figures(results: dict) -> dict[str, dict[str, float]]:
    """``model/backend@tile`` -> ratio of the candidate to the reference artefact."""
    figures = {}
    for model, entry in results.get("models", {}).items():
        for key, row in (entry.get("speed") or {}).items():
            if "ratio_vs_reference" in row:
                figures[f"{model}/{key}"] = {"ratio": float(row["ratio_vs_reference"]),
                                             "ms": float(row.get("median_ms", math.nan))}
    return figures


def results_cpu_class(results: dict) -> str:
    """The CPU class a results file was measured on (older files did not record it)."""
    return str((results.get("machine") or {}).get("cpu_class") or UNRECORDED_CLASS)


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


def _lowest(runs: list[dict], figures) -> dict[str, dict[str, float]]:
    """Each figure's lowest ratio over ``runs``: a baseline noise cannot make too demanding."""
    lowest: dict[str, dict[str, float]] = {}
    for results in runs:
        for key, figure in figures(results).items():
            if key not in lowest or figure["ratio"] < lowest[key]["ratio"]:
                lowest[key] = figure
    return lowest


def class_baseline(runs: list[dict]) -> dict[str, object]:
    """The speed baseline of one CPU class, from one or more runs on such a machine."""
    first = runs[0]
    return {"created": first.get("created"), "machine": first.get("machine"), "runs": len(runs),
            "load_average": [[r.get("load_average_start"), r.get("load_average_end")]
                             for r in runs],
            "speed": _lowest(runs, speed_figures)}


def make_baseline_profile(results: dict | list[dict]) -> dict[str, object]:
    """A profile's baseline: accuracy and reference figures for every class, speed for one."""
    runs = results if isinstance(results, list) else [results]
    first = runs[0]
    return {
        "settings": first.get("settings"),
        "accuracy": accuracy_figures(first),
        "accuracy_updated": first.get("created"),
        "reference": {"created": first.get("created"), "expected": REFERENCE_EXPECTED,
                      "measured": _lowest(runs, reference_figures)},
        "classes": {results_cpu_class(first): class_baseline(runs)},
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
        if self.kind in ("speed", "reference") and self.baseline:
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


def _ratio_check(kind: str, key: str, expected: float, value: float, tolerance: float,
                 note: str = "") -> Check:
    limit = expected * (1 - tolerance)
    if not math.isfinite(value) or value < limit:
        status = "REGRESSION"
    elif value > expected * (1 + tolerance):
        status = "faster"
    else:
        status = "ok"
    return Check(kind, key, expected, value, limit, status, note)


def class_note(baseline: dict, cpu_class: str) -> str | None:
    """One line when ``cpu_class`` has no speed baseline (its ratios are then not gated)."""
    classes = baseline.get("classes", {})
    if cpu_class in classes:
        return None
    return (f"no speed baseline for CPU class {cpu_class} (baselines: "
            f"{', '.join(sorted(classes)) or 'none'}): ratios to PyTorch reported, not gated; "
            "speed gated against the in-run reference, accuracy in full; add this class: "
            "python -m benchmarks.gate --quick --update-baseline")


def compare(baseline: dict, results: dict, speed_tolerance: float = SPEED_TOLERANCE,
            cpu_class: str | None = None) -> list[Check]:
    """Every gated figure of ``baseline`` (one profile) against the fresh ``results``.

    ``cpu_class`` overrides the class the results record (to check them as another class).
    """
    checks: list[Check] = []
    skipped = skipped_reasons(results)
    cpu_class = cpu_class or results_cpu_class(results)

    reference = reference_figures(results)
    expected_reference = baseline.get("reference", {})
    expected = float(expected_reference.get("expected", REFERENCE_EXPECTED))
    for key in sorted(expected_reference.get("measured", {})):
        if key not in reference:
            # the candidate may be skipped with a reason; a missing reference artefact never is
            candidate_skips = {k: v for k, v in skipped.items()
                               if not k.endswith(f"/{REFERENCE_BACKEND}")}
            checks.append(_absent("reference", key, expected, expected * (1 - speed_tolerance),
                                  candidate_skips))
            continue
        checks.append(_ratio_check("reference", key, expected, reference[key]["ratio"],
                                   speed_tolerance, "candidate / last accepted artefact"))
    for key in sorted(set(reference) - set(expected_reference.get("measured", {}))):
        checks.append(Check("reference", key, None, reference[key]["ratio"], None, "new",
                            "not in the baseline"))

    speed = speed_figures(results)
    class_speed = baseline.get("classes", {}).get(cpu_class, {}).get("speed")
    if class_speed is None:
        for key in sorted(speed):
            checks.append(Check("speed", key, None, speed[key]["ratio"], None, "not gated",
                                f"no baseline for CPU class {cpu_class}"))
        class_speed = {}
    for key, base in sorted(class_speed.items()):
        ratio = float(base["ratio"])
        if key not in speed:
            checks.append(_absent("speed", key, ratio, ratio * (1 - speed_tolerance), skipped))
            continue
        checks.append(_ratio_check("speed", key, ratio, speed[key]["ratio"], speed_tolerance,
                                   cpu_class))
    for key in sorted(set(speed) - set(class_speed)) if class_speed else ():
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
         "not gated": 5, "ok": 6}


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
        reported = sum(c.status == "not gated" for c in checks)
        extra = f"; {moved} figure(s) improved beyond tolerance: consider --update-baseline" \
            if moved else ""
        if reported:
            extra += f"; {reported} ratio(s) to PyTorch reported, not gated"
        return f"gate PASSED: {len(checks) - reported} figures checked{extra}"
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
    if baseline.get("schema", 1) < SCHEMA:
        raise GateUsageError(f"{path} is schema {baseline.get('schema', 1)} (speed not keyed by "
                             f"CPU class); this gate reads schema {SCHEMA}: re-create it with "
                             f"python -m benchmarks.gate --profile {profile} --update-baseline")
    profiles = baseline.get("profiles", {})
    if profile not in profiles:
        raise GateUsageError(
            f"{path} has no baseline for profile {profile!r} (has: "
            f"{', '.join(profiles) or 'none'}); create it: python -m benchmarks.gate "
            f"--profile {profile} --update-baseline")
    return profiles[profile]


def write_baseline(path: Path, runs: list[dict], speed_tolerance: float,
                   accuracy_only: bool = False, cpu_class: str | None = None) -> str:
    """Write ``runs`` (one or more, same profile and machine) as the profile's baseline.

    Accuracy and the reference figures are replaced; speed only for the runs' CPU class (other
    classes' baselines are kept), each figure at its lowest ratio over the runs. With
    ``accuracy_only`` only the accuracy figures are replaced: they are deterministic, speed
    ratios are not, so refreshing them after a re-export should not adopt one run's noise.
    Returns what was written, for the log.
    """
    profile_name = runs[0]["profile"]
    if any(r.get("profile") != profile_name for r in runs):
        raise GateUsageError("--results files of different profiles cannot make one baseline")
    cpu_class = cpu_class or results_cpu_class(runs[0])
    if any((cpu_class or results_cpu_class(r)) != cpu_class for r in runs):
        raise GateUsageError("--results files of different CPU classes cannot make one baseline")
    baseline = json.loads(path.read_text()) if path.is_file() else {}
    if baseline and baseline.get("schema", 1) < SCHEMA:
        baseline = {}  # an old layout: start afresh rather than mix layouts
    baseline["schema"] = SCHEMA
    baseline["speed_tolerance"] = speed_tolerance
    baseline["update_command"] = "python -m benchmarks.gate --profile PROFILE --update-baseline"
    profiles = baseline.setdefault("profiles", {})
    fresh = make_baseline_profile(runs)
    old = profiles.get(profile_name)
    if accuracy_only:
        if old is None:
            raise GateUsageError(f"{path} has no baseline for profile {profile_name!r} "
                                 "to keep the speed figures of; drop --accuracy-only")
        profiles[profile_name] = {**old, "accuracy": fresh["accuracy"],
                                  "accuracy_updated": fresh["accuracy_updated"]}
        what = "accuracy figures only"
    else:
        classes = dict((old or {}).get("classes", {}))
        classes[cpu_class] = next(iter(fresh["classes"].values()))
        profiles[profile_name] = {**fresh, "classes": dict(sorted(classes.items()))}
        what = f"accuracy, reference and CPU class {cpu_class} speed figures"
    write_atomically((json.dumps(baseline, indent=1, sort_keys=False) + "\n").encode(), path)
    return what


def _retry_speed(results: dict, failed: list[Check], args, log) -> dict:
    """Measure the models with speed regressions again; keep the better ratios of the two."""
    from dataclasses import replace

    from benchmarks import harness

    models = sorted({c.key.split("/")[0] for c in failed if c.kind in ("speed", "reference")})
    settings = harness.settings_from_args(args)
    runs = tuple(replace(m, accuracy=False) for m in settings.profile.models
                 if m.spec.name in models)
    settings.profile = replace(settings.profile, models=runs, endtoend=False)
    log(f"speed regression in {', '.join(models)}: measuring again to confirm")
    again = harness.run(settings, log=log)
    for model, entry in again["models"].items():
        first = results["models"][model]["speed"]
        for key, row in entry["speed"].items():
            kept = first[key]
            for ratio in ("ratio_vs_torch", "ratio_vs_reference"):
                if ratio in row and row[ratio] > kept.get(ratio, -math.inf):
                    kept[ratio] = row[ratio]
                    kept.setdefault("notes", []).append(f"{ratio}: second measurement")
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
    parser.add_argument("--results", type=Path, nargs="+", help="check this harness results "
                        "JSON instead of running (its profile and CPU class are used); with "
                        "--update-baseline several runs may be given (lowest ratio kept)")
    parser.add_argument("--benchmark-json", type=Path, help="speed from this pytest-benchmark "
                        "JSON (`pytest benchmarks/ --benchmark-json=...`); accuracy from "
                        "--results")
    parser.add_argument("--baseline", type=Path, default=BASELINE_PATH)
    parser.add_argument("--cpu-class", help="treat the results as measured on this CPU class "
                        "(e.g. avx2/2c; default: the class detected or recorded in --results)")
    parser.add_argument("--update-baseline", action="store_true",
                        help="write this run's figures as the profile's baseline for this CPU "
                             "class, and its exports as the reference artefacts")
    parser.add_argument("--accuracy-only", action="store_true",
                        help="with --update-baseline: refresh the accuracy figures only, keeping "
                             "the baseline's speed ratios")
    parser.add_argument("--speed-tolerance", type=float, default=None,
                        help="allowed fractional drop of a speed ratio [baseline's, or 0.15]")
    parser.add_argument("--no-retry", action="store_true",
                        help="do not re-measure to confirm a speed regression")
    parser.add_argument("--out", type=Path, help="where to write the fresh results JSON "
                        "[benchmarks/results/latest/<profile>.json, ignored by git]")
    parser.add_argument("--mlflow", default=None, metavar="URI",
                        help="also log the results and the verdict as an MLflow run (extra "
                        "'mlops'; 'local' = sqlite:///mlruns.db here) [default: "
                        "$MLFLOW_TRACKING_URI, else not logged]")
    args = parser.parse_args(argv)

    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    try:
        ran = False
        if args.results and len(args.results) > 1 and not args.update_baseline:
            raise GateUsageError("several --results files only make sense with "
                                 "--update-baseline; check one at a time")
        if args.benchmark_json:
            accuracy = load_json(args.results[0], "results") if args.results else None
            runs = [results_from_pytest_benchmark(
                load_json(args.benchmark_json, "pytest-benchmark JSON"), accuracy)]
            runs[0]["profile"] = (accuracy or {}).get("profile", args.profile)
        elif args.results:
            runs = [load_json(path, "results") for path in args.results]
        else:
            settings = harness.settings_from_args(args)
            settings.adopt_reference = args.update_baseline and not args.accuracy_only
            runs = [harness.run(settings, log=log)]
            ran = True
        results = runs[0]
        profile = results.get("profile", args.profile)
        cpu_class = args.cpu_class or results_cpu_class(results)
        if ran:
            out = args.out or LATEST_DIR / f"{profile}.json"
            log(f"results: {harness.write_results(results, out)}")
        if args.update_baseline:
            tolerance = args.speed_tolerance or SPEED_TOLERANCE
            what = write_baseline(args.baseline, runs, tolerance, args.accuracy_only,
                                  args.cpu_class)
            print(f"baseline for profile {profile!r} written to {args.baseline} ({what})")
            return 0
        baseline = load_json(args.baseline, "baseline")
        tolerance = args.speed_tolerance or float(baseline.get("speed_tolerance",
                                                               SPEED_TOLERANCE))
        expected = baseline_profile(baseline, profile, args.baseline)
        checks = compare(expected, results, tolerance, cpu_class)
        failed = [c for c in checks if c.failed]
        if ran and not args.no_retry and any(c.kind in ("speed", "reference") for c in failed):
            results = _retry_speed(results, failed, args, log)
            harness.write_results(results, out)
            checks = compare(expected, results, tolerance, cpu_class)
    except GateUsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = table(checks)
    verdict = summary(checks)
    note = class_note(expected, cpu_class)
    machine = results.get("machine") or {}
    head = (f"## Gate: profile {profile}, CPU class {cpu_class} "
            f"({machine.get('cpu_model') or machine.get('cpu') or 'machine not recorded'}), "
            f"speed tolerance {100 * tolerance:.0f} %")
    text = "\n\n".join(part for part in (head, note, report, verdict) if part)
    print(text)
    if ran:
        out.with_name(f"{profile}-gate.md").write_text(text + "\n")
    failed_count = sum(c.failed for c in checks)
    if args.mlflow or os.environ.get("MLFLOW_TRACKING_URI"):
        logged = _log_to_mlflow(args.mlflow, out if ran else None, runs[0], failed_count,
                                len(checks))
        if logged:
            print(logged, file=sys.stderr)
    return 1 if failed_count else 0


def _log_to_mlflow(uri: str | None, path: Path | None, results: dict, failed: int,
                   checked: int) -> str:
    """Log the results file and the verdict through ``sr_export.tracking`` (extra 'mlops')."""
    import tempfile

    from sr_export.tracking import log_benchmark
    from sr_runtime.errors import SrEdgeError

    gate = {"passed": failed == 0, "failed_checks": failed, "checks": checked}
    with tempfile.TemporaryDirectory(prefix="sr-edge-gate-") as scratch:
        if path is None:
            path = Path(scratch) / f"{results.get('profile', 'results')}.json"
            path.write_text(json.dumps(results))
        try:
            run_id = log_benchmark(path, uri, gate=gate)
        except SrEdgeError as exc:
            return f"not logged to MLflow: {exc}"
    return f"logged to MLflow as run {run_id}"


if __name__ == "__main__":
    sys.exit(main())
