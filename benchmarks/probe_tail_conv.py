"""Three exact forms of the tail conv (a 'same' 5x5 conv with few outputs) on ONNX Runtime.

    python -m benchmarks.probe_tail_conv [--rounds 7]

The tail conv that ``final_conv_before_pixel_shuffle`` makes runs at a quarter of the HR
resolution: 128 -> 8 channels for the default model, 256 -> 4 for the demo configuration. Timed
on one thread (process CPU time, medians of interleaved rounds) at 128 x 128 and 512 x 512
(LR tiles 32 and 128), with seeded random weights:

- ``direct``: one Conv (its few outputs padded to the CPU's SIMD block);
- ``pointwise``: ``final_conv_as_pointwise_and_shifts`` in its ``taps`` form (what sr-edge
  exports where 5 x O channels would leave the SIMD blocks padded: the demo's tail): a 1x1 conv
  to 25 x O channels, one-hot depthwise 5x5 shifts, a 1x1 sum of the taps;
- ``rows``: its ``rows`` form (exported where 5 x O fills the blocks: the default model's tail,
  ``shift_form`` in ``sr_export/rewrites.py``): a 1x5 conv to 5 x O channels, one-hot depthwise
  5x1 shifts, a 1x1 sum (fewer channels to shift, a wider first conv).

Each form's max abs difference to ``direct`` is printed too (float rounding only).
"""

from __future__ import annotations

import argparse
import resource
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.bench_end_to_end import load_average  # noqa: E402

KERNEL = 5
SHAPES = {"default model (128 -> 8)": (128, 8), "demo configuration (256 -> 4)": (256, 4)}


def _model(nodes, weights: dict[str, np.ndarray], channels: int) -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes, "tail", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                      [1, channels, None, None])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(value, name) for name, value in weights.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]
                             ).SerializeToString()


def tail_forms(channels: int, outputs: int, seed: int = 0) -> dict[str, bytes]:
    """The three ONNX graphs of one seeded 5x5 conv ``channels`` -> ``outputs``."""
    from onnx import helper

    rng = np.random.default_rng(seed)
    k, p = KERNEL, KERNEL // 2
    weight = (rng.standard_normal((outputs, channels, k, k)) * 0.05).astype(np.float32)
    bias = rng.standard_normal(outputs).astype(np.float32)
    conv = helper.make_node
    taps = k * k
    point = weight.transpose(2, 3, 0, 1).reshape(taps * outputs, channels, 1, 1)
    shift = np.zeros((taps * outputs, 1, k, k), np.float32)
    gather = np.zeros((outputs, taps * outputs, 1, 1), np.float32)
    rows = weight.transpose(2, 0, 1, 3).reshape(k * outputs, channels, 1, k)
    vertical = np.zeros((k * outputs, 1, k, 1), np.float32)
    row_gather = np.zeros((outputs, k * outputs, 1, 1), np.float32)
    for o in range(outputs):
        for t in range(taps):
            shift[t * outputs + o, 0, t // k, t % k] = 1.0
            gather[o, t * outputs + o] = 1.0
        for ty in range(k):
            vertical[ty * outputs + o, 0, ty, 0] = 1.0
            row_gather[o, ty * outputs + o] = 1.0
    return {
        "direct": _model([conv("Conv", ["x", "w", "b"], ["y"], pads=[p] * 4)],
                         {"w": weight, "b": bias}, channels),
        "pointwise": _model([conv("Conv", ["x", "pw"], ["t"]),
                             conv("Conv", ["t", "sh"], ["s"], pads=[p] * 4, group=taps * outputs),
                             conv("Conv", ["s", "ga", "b"], ["y"])],
                            {"pw": point, "sh": shift, "ga": gather, "b": bias}, channels),
        "rows": _model([conv("Conv", ["x", "rw"], ["r"], pads=[0, p, 0, p]),
                        conv("Conv", ["r", "vs"], ["s"], pads=[p, 0, p, 0], group=k * outputs),
                        conv("Conv", ["s", "vg", "b"], ["y"])],
                       {"rw": rows, "vs": vertical, "vg": row_gather, "b": bias}, channels),
    }


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timed rounds")
    args = parser.parse_args(argv)
    from sr_runtime.engines.onnxruntime import open_session
    from sr_runtime.machine import machine_info

    print(f"machine: {machine_info().line()}\nload average at start {load_average()}")
    for label, (channels, outputs) in SHAPES.items():
        sessions = {name: open_session(data, threads=1)
                    for name, data in tail_forms(channels, outputs).items()}
        print(f"\n{label}, one thread, ms (max abs difference to direct)\n")
        print("| size | " + " | ".join(sessions) + " |")
        print("| --- |" + " ---: |" * len(sessions))
        for size in (128, 512):
            x = np.random.default_rng(1).standard_normal((1, channels, size, size)
                                                         ).astype(np.float32)
            reference = sessions["direct"].run(None, {"x": x})[0]
            times: dict[str, list[float]] = {name: [] for name in sessions}
            errors: dict[str, float] = {}
            for _ in range(args.rounds):
                for name, session in sessions.items():
                    started = _cpu()
                    out = session.run(None, {"x": x})[0]
                    times[name].append(_cpu() - started)
                    errors[name] = float(np.abs(out - reference).max())
            print(f"| {size} x {size} | " + " | ".join(
                f"{1e3 * float(np.median(times[n])):.1f} ({errors[n]:.0e})" for n in sessions)
                + " |")
    print(f"\nload average at end {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
