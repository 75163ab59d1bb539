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
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a plain script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.bench_end_to_end import QUICKSTART, RANGE, load_average, timed_run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("executables", nargs=2, help="two sr-run scripts (before, after)")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    for exe in args.executables:
        if shutil.which(exe) is None:
            parser.error(f"{exe} is not an executable sr-run; give OLD/bin/sr-run of a venv")
    figures: dict[tuple[str, str], list[float]] = {
        (exe, what): [] for exe in args.executables for what in ("Quickstart", "range")}
    with tempfile.TemporaryDirectory(prefix="sr-edge-compare-") as tmp:
        folder = Path(tmp)
        for exe in args.executables:  # byte-code cache, page cache
            timed_run(QUICKSTART, folder / "warm.tif", [exe])
        for _ in range(args.rounds):
            for exe in args.executables:
                figures[(exe, "Quickstart")].append(
                    timed_run(QUICKSTART, folder / "sr.tif", [exe]))
                figures[(exe, "range")].append(timed_run(RANGE, folder / "sr.zarr", [exe]))
    print(f"{args.rounds} interleaved rounds, load average at end {load_average()}")
    print("| sr-run | Quickstart median (min) | 48-step range median (min) |")
    print("| --- | ---: | ---: |")
    for exe in args.executables:
        quick, ranged = figures[(exe, "Quickstart")], figures[(exe, "range")]
        print(f"| {exe} | {statistics.median(quick):.2f} s ({min(quick):.2f}) | "
              f"{statistics.median(ranged):.2f} s ({min(ranged):.2f}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
