"""`sr-run` end to end, as a user runs it, against the engine alone on the same fields.

    python -m benchmarks.bench_end_to_end [--repeats 5] [--json out.json]

Three figures, on the embedded sample DataCube and the shipped default model, each a fresh
``sr-run`` process (interpreter start, imports, engine load, reading, inference, writing):

- the Quickstart's single step (``sr-run --time 2024-10-11T12:00 --out sr.tif``), wall clock;
- the 48-step range 2024-10-11T00:00..2024-10-12T23:00 into one Zarr store, wall clock;
- the engine alone on the same 48 fields, already in memory, after a warm-up (the compute a
  perfect pipeline would still need), the faster of one step at a time and one step per core
  in flight (as ``sr-run`` runs a range).

Acceptance (issue 14): the range takes at most 1.5 x the engine-only time + 0.5 s, and the
Quickstart step at most 1.0 s. Each figure is the median of ``--repeats`` runs (the minimum is
printed too); the machine and its CPU class head the report, and the load average is printed,
since wall-clock figures on a loaded 2-core machine are worth little.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a plain script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

QUICKSTART = ["--time", "2024-10-11T12:00"]
RANGE = ["--start", "2024-10-11T00:00", "--end", "2024-10-12T23:00"]
STEPS = 48
QUICKSTART_LIMIT_S = 1.0
RANGE_FACTOR, RANGE_ALLOWANCE_S = 1.5, 0.5


def sr_run_command() -> list[str]:
    """The installed ``sr-run`` beside this interpreter, else the module."""
    script = Path(sys.executable).with_name("sr-run")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "sr_runtime.cli"]


def timed_run(args: list[str], out: Path, command: list[str] | None = None) -> float:
    """Wall seconds of one fresh ``sr-run`` process (``command``, default the one beside this
    interpreter) writing ``out`` (removed first)."""
    command = command or sr_run_command()
    if out.is_dir():
        shutil.rmtree(out)
    out.unlink(missing_ok=True)
    # as in a user's environment, the first run may write the byte-code cache that the next
    # runs read (some machines set PYTHONDONTWRITEBYTECODE, which would time compiling too)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    started = time.perf_counter()
    done = subprocess.run([*command, *args, "--out", str(out), "--quiet"],
                          capture_output=True, text=True, check=False, env=env)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} {' '.join(args)} failed: {done.stderr.strip()}")
    return seconds


def sample_range_inputs(description) -> tuple[list[np.ndarray], np.ndarray | None]:
    """The engine inputs of the 48 sample steps for a model of ``description``: its LR variables
    with its clock channels, one array per step, and its static HR fields (None without)."""
    from sr_runtime.clock import with_clock
    from sr_runtime.grid import sr_axes
    from sr_runtime.sources.registry import resolve_source
    from sr_runtime.statics import region_statics, static_source
    from sr_runtime.times import parse_time, select_range

    dataset = resolve_source("sample").open()
    indices = select_range(dataset.time.values, parse_time(RANGE[1]), parse_time(RANGE[3]),
                           np.timedelta64(1, "h"))
    if len(indices) != STEPS:
        raise SystemExit(f"the sample range has {len(indices)} steps, not {STEPS}")
    window = dataset.isel(time=indices)
    lat, lon = window.latitude.values, window.longitude.values
    lr = np.stack([window[name].values for name in description.variable_names],
                  axis=1).astype(np.float32)  # (steps, variables, h, w)
    inputs = [with_clock(lr[step], window.time.values[step], lon, description.clock_inputs)
              for step in range(STEPS)]
    statics = None
    if description.static_inputs:
        location = static_source(None, "sample", None,
                                 [spec.name for spec in description.static_inputs])
        statics = region_statics(location, description.static_inputs,
                                 *sr_axes(lat, lon, description.scale))
    return inputs, statics


def steps_seconds(engine, inputs: list[np.ndarray], statics: np.ndarray | None,
                  repeats: int) -> float:
    """Median wall seconds of ``engine`` over all ``inputs``, after a warm-up, with as many
    steps in flight as the engine serves at once (``parallel_calls``), in step order."""
    from concurrent.futures import ThreadPoolExecutor

    from sr_runtime.tiling import infer_tiled

    def one(x: np.ndarray) -> np.ndarray:
        return infer_tiled(engine, x, None, statics=statics)

    one(inputs[0])
    runs = []
    with ThreadPoolExecutor(getattr(engine, "parallel_calls", 1)) as pool:
        for _ in range(repeats):
            started = time.perf_counter()
            list(pool.map(one, inputs))
            runs.append(time.perf_counter() - started)
    return float(np.median(runs))


def engine_only_seconds(repeats: int) -> dict[str, float]:
    """The default engine (as ``sr-run`` loads it) on the 48 sample steps, in memory: every
    input the model takes (its LR variables, its clock channels, its static HR fields) made
    beforehand, so only the engine calls are timed. Two ways, each the median of ``repeats``:
    ``serial``, one step after another on all cores (idle threads spinning, as a lone engine
    runs best), and ``parallel``, one step per core in flight, as a range in ``sr-run`` runs
    them. The limit of the range is taken from the faster of the two."""
    from sr_runtime.defaults import DEFAULT_MODEL
    from sr_runtime.engines.choice import choose_engine
    from sr_runtime.engines.registry import load_engine
    from sr_runtime.machine import physical_cores

    choice = choose_engine(DEFAULT_MODEL)  # the engine and precision sr-run would pick

    def load(**options: object):
        return load_engine(choice.backend, choice.model, precision=choice.precision,
                           cpu_backend=choice.cpu_backend, **options).engine

    serial_engine = load()
    inputs, statics = sample_range_inputs(serial_engine.description)
    parallel_engine = load(spinning=False, streams=physical_cores())  # as sr-run's range
    return {"serial": steps_seconds(serial_engine, inputs, statics, repeats),
            "parallel": steps_seconds(parallel_engine, inputs, statics, repeats)}


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def measure(repeats: int) -> dict:
    from sr_runtime.machine import machine_info

    machine = machine_info()
    with tempfile.TemporaryDirectory(prefix="sr-edge-e2e-") as tmp:
        folder = Path(tmp)
        timed_run(QUICKSTART, folder / "warm.tif")  # page cache, byte-code caches
        quick = [timed_run(QUICKSTART, folder / "sr.tif") for _ in range(repeats)]
        ranged = [timed_run(RANGE, folder / "sr.zarr") for _ in range(repeats)]
    engine = engine_only_seconds(repeats)
    engine_s = min(engine.values())
    range_s, quick_s = float(np.median(ranged)), float(np.median(quick))
    range_limit = RANGE_FACTOR * engine_s + RANGE_ALLOWANCE_S
    return {
        "machine": machine.line(), "cpu_class": machine.cpu_class,
        "load_average_end": load_average(), "repeats": repeats,
        "quickstart_wall_s": round(quick_s, 3), "quickstart_min_s": round(min(quick), 3),
        "quickstart_limit_s": QUICKSTART_LIMIT_S,
        "range_steps": STEPS, "range_wall_s": round(range_s, 3),
        "range_min_s": round(min(ranged), 3), "engine_only_s": round(engine_s, 3),
        "engine_only_serial_s": round(engine["serial"], 3),
        "engine_only_parallel_s": round(engine["parallel"], 3),
        "range_limit_s": round(range_limit, 3),
        "quickstart_met": quick_s <= QUICKSTART_LIMIT_S, "range_met": range_s <= range_limit,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    print(f"load average at start {load_average()}", file=sys.stderr)
    result = measure(args.repeats)
    verdict = {True: "MET", False: "NOT MET"}
    print(f"machine: {result['machine']}\n"
          f"Quickstart single step: {result['quickstart_wall_s']:.2f} s wall (min "
          f"{result['quickstart_min_s']:.2f}; limit {QUICKSTART_LIMIT_S} s): "
          f"{verdict[result['quickstart_met']]}\n"
          f"48-step range: {result['range_wall_s']:.2f} s wall (min {result['range_min_s']:.2f})"
          f"; engine alone {result['engine_only_s']:.3f} s (the faster of one step at a time "
          f"{result['engine_only_serial_s']:.3f} s and one per core "
          f"{result['engine_only_parallel_s']:.3f} s); limit {RANGE_FACTOR} x engine + "
          f"{RANGE_ALLOWANCE_S} s = {result['range_limit_s']:.2f} s: "
          f"{verdict[result['range_met']]}\n"
          f"load average at end {result['load_average_end']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
