"""Two installs of `sr-run` side by side: the Quickstart step and the 48-step range, interleaved.

    python benchmarks/compare_sr_run.py OLD/bin/sr-run NEW/bin/sr-run [--rounds 7]

For a before/after of a change to start-up, reading, the engine or writing: build one virtual
environment per version (``python -m venv V && V/bin/pip install .`` in each checkout), then
time both here. Rounds alternate between the two, so that a drifting load on a small machine
hits both alike; each figure is the median (and minimum) wall time of fresh processes, on the
embedded sample DataCube with the default model, as a user runs them. The first run of each
writes the byte-code cache, as a user's first run would (PYTHONDONTWRITEBYTECODE is dropped).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QUICKSTART = ["--time", "2024-10-11T12:00"]
RANGE = ["--start", "2024-10-11T00:00", "--end", "2024-10-12T23:00"]


def timed(executable: str, args: list[str], out: Path, env: dict[str, str]) -> float:
    shutil.rmtree(out, ignore_errors=True)
    out.unlink(missing_ok=True)
    started = time.perf_counter()
    done = subprocess.run([executable, *args, "--out", str(out), "--quiet"], env=env,
                          capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{executable} {' '.join(args)} failed: {done.stderr.strip()}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("executables", nargs=2, help="two sr-run scripts (before, after)")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    figures: dict[tuple[str, str], list[float]] = {
        (exe, what): [] for exe in args.executables for what in ("Quickstart", "range")}
    with tempfile.TemporaryDirectory(prefix="sr-edge-compare-") as tmp:
        folder = Path(tmp)
        for exe in args.executables:  # byte-code cache, page cache
            timed(exe, QUICKSTART, folder / "warm.tif", env)
        for _ in range(args.rounds):
            for exe in args.executables:
                figures[(exe, "Quickstart")].append(
                    timed(exe, QUICKSTART, folder / "sr.tif", env))
                figures[(exe, "range")].append(timed(exe, RANGE, folder / "sr.zarr", env))
    print(f"{args.rounds} interleaved rounds, load average at end "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("| sr-run | Quickstart median (min) | 48-step range median (min) |")
    print("| --- | ---: | ---: |")
    for exe in args.executables:
        quick, ranged = figures[(exe, "Quickstart")], figures[(exe, "range")]
        print(f"| {exe} | {statistics.median(quick):.2f} s ({min(quick):.2f}) | "
              f"{statistics.median(ranged):.2f} s ({min(ranged):.2f}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
