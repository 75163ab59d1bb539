"""Markdown table and PNG plots from a harness results JSON, into ``benchmarks/results/``.

    python -m benchmarks.report                         # runs the full profile, then reports
    python -m benchmarks.report --results benchmarks/results/latest/quick.json

Writes ``<profile>.md`` (throughput per backend and tile in HR Mpix/s, ms and GFLOP/s; parity
and skill in K, dB and SSIM with the data range stated; `sr-run` wall times),
``<profile>-throughput.png`` and ``<profile>-accuracy.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from benchmarks.harness import BASELINE_BACKEND, RESULTS_DIR


def _num(value: float, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return str(value)
    return f"{value:.{digits}f}"


def _sci(value: float) -> str:
    return f"{value:.1e}" if value and math.isfinite(value) else str(value)


def machine_line(results: dict) -> str:
    m = results.get("machine", {})
    settings = results.get("settings", {})
    loads = f"{results.get('load_average_start')} -> {results.get('load_average_end')}"
    flags = " ".join(m.get("isa_flags") or []) or "not recorded"
    return (f"Machine: {m.get('cpu')}, CPU class {m.get('cpu_class', 'not recorded')} "
            f"(flags {flags}), {m.get('logical_cpus')} logical CPUs "
            f"({m.get('physical_cores')} physical cores); {settings.get('threads')} intra-op "
            f"thread(s) per backend; torch {m.get('torch')}, onnxruntime {m.get('onnxruntime')}; "
            f"load average (1/5/15 min) {loads}; {results.get('created')}. Timing: "
            f"{settings.get('rounds')} interleaved rounds x {settings.get('repeats')} calls, "
            f"fastest call per round, median over rounds; ratios from "
            f"{settings.get('ratio_clock', 'wall')} time.")


def markdown(results: dict) -> str:
    lines = [f"# sr-edge benchmarks ({results.get('profile')} profile)", "",
             machine_line(results), ""]
    for note in results.get("notes", []):
        lines.append(f"> {note}")
    for name, reason in results.get("skipped_models", {}).items():
        lines.append(f"- {name}: skipped ({reason})")
    for model, entry in results.get("models", {}).items():
        lines += ["", f"## {entry.get('label', model)}", "",
                  f"{entry['flops_per_lr_pixel'] / 1e6:.2f} MFLOP per LR pixel "
                  f"({entry['flops_per_lr_pixel'] / entry['scale'] ** 2 / 1e3:.0f} kFLOP per "
                  f"HR pixel), x{entry['scale']}, batch 1."]
        for backend, why in (entry.get("skipped_backends") or {}).items():
            lines.append(f"- {backend}: not measured ({why})")
        if entry.get("speed"):
            lines += ["", "| backend | precision | LR tile | ms | HR Mpix/s | GFLOP/s | "
                      "x PyTorch FP32 |", "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
            for row in sorted(entry["speed"].values(), key=lambda r: (r["tile"],
                                                                      -r["ratio_vs_torch"])):
                label = entry["backends"].get(row["backend"], {}).get("label", row["backend"])
                lines.append(f"| {label} | {row['precision']} | {row['tile']} | "
                             f"{row['median_ms']:.1f} | {row['hr_mpix_s']:.3f} | "
                             f"{row['gflop_s']:.1f} | {row['ratio_vs_torch']:.2f} |")
        accuracy = entry.get("accuracy") or {}
        if accuracy.get("parity"):
            ranges = {round(s["data_range"], 3) for s in accuracy["parity"].values()}
            lines += ["", f"Parity against {BASELINE_BACKEND} FP32 on {accuracy.get('input')} "
                      f"(PSNR/SSIM data range: reference max - min = "
                      f"{', '.join(map(str, ranges))} K):", "",
                      "| backend | RMSE (K) | max abs (K) | PSNR (dB) | SSIM |",
                      "| --- | ---: | ---: | ---: | ---: |"]
            for backend, s in accuracy["parity"].items():
                lines.append(f"| {backend} | {_sci(s['rmse'])} | {_sci(s['max_abs'])} | "
                             f"{_num(s['psnr'], 1)} | {s['ssim']:.6f} |")
        if accuracy.get("skill"):
            lines += ["", f"Skill against HR truth on {accuracy.get('input')} (PSNR/SSIM data "
                      f"range: HR truth max - min = {accuracy.get('skill_data_range', 0):.2f} K"
                      + ("; random weights: these are regression sentinels, not skill"
                         if not entry.get("shipped") else "") + "):", "",
                      "| method | RMSE (K) | PSNR (dB) | SSIM |", "| --- | ---: | ---: | ---: |"]
            for method, s in accuracy["skill"].items():
                lines.append(f"| {method} | {s['rmse']:.3f} | {s['psnr']:.2f} | "
                             f"{s['ssim']:.4f} |")
        elif accuracy.get("skill_skipped"):
            lines.append(f"\nSkill not measured: {accuracy['skill_skipped']}.")
        e2e = entry.get("endtoend")
        if e2e:
            lines += ["", f"End to end, subprocess, one time step of the {e2e.get('source')} "
                      f"(median of runs):", "", "| command | wall (ms) |", "| --- | ---: |"]
            for name, value in e2e.items():
                if isinstance(value, dict):
                    shown = f"{value['median_ms']:.0f}" if "median_ms" in value \
                        else value.get("error", "")
                    lines.append(f"| {name} | {shown} |")
    return "\n".join(lines) + "\n"


def plots(results: dict, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    written = []
    profile = results.get("profile", "run")
    models = [(m, e) for m, e in results.get("models", {}).items() if e.get("speed")]
    if models:
        fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4), squeeze=False)
        for ax, (model, entry) in zip(axes[0], models, strict=True):
            backends = sorted({r["backend"] for r in entry["speed"].values()})
            tiles = sorted({r["tile"] for r in entry["speed"].values()})
            width = 0.8 / len(tiles)
            for j, tile in enumerate(tiles):
                values = [entry["speed"].get(f"{b}@{tile}", {}).get("hr_mpix_s", 0)
                          for b in backends]
                ax.bar([i + j * width for i in range(len(backends))], values, width,
                       label=f"LR {tile}x{tile}")
            ax.set_xticks([i + width * (len(tiles) - 1) / 2 for i in range(len(backends))])
            ax.set_xticklabels(backends, rotation=20, ha="right")
            ax.set_ylabel("HR Mpix/s (batch 1)")
            ax.set_title(model)
            ax.legend()
        fig.tight_layout()
        path = out_dir / f"{profile}-throughput.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    acc = [(m, e["accuracy"]) for m, e in results.get("models", {}).items()
           if (e.get("accuracy") or {}).get("skill") or (e.get("accuracy") or {}).get("parity")]
    if acc:
        fig, axes = plt.subplots(len(acc), 3, figsize=(15, 3.6 * len(acc)), squeeze=False)
        for row, (model, accuracy) in zip(axes, acc, strict=True):
            skill = accuracy.get("skill") or {}
            source = skill or accuracy["parity"]
            what = "vs HR truth" if skill else f"vs {BASELINE_BACKEND} FP32 (parity)"
            methods = list(source)
            for ax, metric, unit in zip(row, ("rmse", "psnr", "ssim"), ("K", "dB", ""),
                                        strict=True):
                values = [source[m][metric] for m in methods]
                values = [v if math.isfinite(v) else 0.0 for v in values]
                ax.barh(methods, values, color="tab:blue")
                ax.set_title(f"{model}: {metric.upper()} {what}")
                ax.set_xlabel(unit or "index")
                if metric == "rmse" and not skill:
                    ax.set_xscale("log")
        fig.tight_layout()
        path = out_dir / f"{profile}-accuracy.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    from benchmarks import harness

    parser = argparse.ArgumentParser(prog="python -m benchmarks.report",
                                     description=__doc__.split("\n\n")[0])
    harness.add_run_arguments(parser)
    parser.set_defaults(profile="full")
    parser.add_argument("--results", type=Path, help="report on this results JSON instead of "
                        "running the profile")
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    if args.results:
        results = json.loads(args.results.read_text())
    else:
        results = harness.run(harness.settings_from_args(args),
                              log=lambda m: print(m, file=sys.stderr, flush=True))
        harness.write_results(results, args.out_dir / f"{results['profile']}-latest.json")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    md = args.out_dir / f"{results.get('profile', 'run')}.md"
    md.write_text(markdown(results))
    for path in [md, *plots(results, args.out_dir)]:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
