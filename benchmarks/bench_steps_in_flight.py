"""Steps in flight: each CPU engine on the 48 sample steps one at a time, and one per core at once.

    python -m benchmarks.bench_steps_in_flight [--repeats 5] [--model M.onnx]

What ``sr-run`` gains on a range by keeping one step per physical core in flight (ONNX Runtime:
one session whose threads are shared out among the calls; OpenVINO: THROUGHPUT with a stream and
an infer request per call), against one step at a time on all cores (ONNX Runtime with spinning
threads, OpenVINO with its LATENCY hint). The engines are loaded as ``sr-run`` loads them; the
inputs are the default model's (LR variables, clock channels, static HR fields) made beforehand,
so only the engine calls are timed. Rounds alternate between the two ways; each figure is the
median over ``--repeats`` rounds, wall clock, with the CPU class and the load average.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a plain script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.bench_end_to_end import load_average, sample_range_inputs, steps_seconds  # noqa: E402


def candidates() -> list[tuple[str, str]]:
    """(backend, precision) pairs usable on this machine."""
    from sr_runtime.engines.openvino import available, bf16_unavailable_reason

    found = [("onnxruntime", "fp32")]
    if available() is None:
        found.append(("openvino", "fp32"))
        if bf16_unavailable_reason() is None:
            found.append(("openvino", "bf16"))
    return found


def main(argv: list[str] | None = None) -> int:
    from sr_runtime.defaults import DEFAULT_MODEL
    from sr_runtime.engines.registry import load_engine
    from sr_runtime.machine import machine_info, physical_cores

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    args = parser.parse_args(argv)
    cores = physical_cores()
    print(f"machine: {machine_info().line()}\nload average at start {load_average()}\n"
          f"{args.model.name}, 48 sample steps, {cores} physical cores\n")
    print("| engine | one at a time (s) | one per core in flight (s) | gain |")
    print("| --- | ---: | ---: | ---: |")
    for backend, precision in candidates():
        serial = load_engine(backend, args.model, precision=precision).engine
        parallel = load_engine(backend, args.model, precision=precision, spinning=False,
                               streams=cores).engine
        inputs, statics = sample_range_inputs(serial.description)
        one, many = [], []
        for _ in range(args.repeats):  # interleaved, so that drifting load hits both
            one.append(steps_seconds(serial, inputs, statics, 1))
            many.append(steps_seconds(parallel, inputs, statics, 1))
        one.sort()
        many.sort()
        a, b = one[len(one) // 2], many[len(many) // 2]
        print(f"| {backend} {precision} | {a:.3f} | {b:.3f} | {a / b:.2f}x |")
    print(f"\nload average at end {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
