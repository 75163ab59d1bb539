"""Two exports of the same model side by side on ONNX Runtime: the whole model and its parts.

    python -m benchmarks.compare_exports OLD.onnx NEW.onnx [--tiles 32,128] [--rounds 15]

For a before/after of a change to the exporter (a rewrite, a graph pass, the static split):
keep the old files (``git show REV:path > old.onnx``, with its ``.static-part.onnx`` and
``.step-part.onnx`` beside it), export the new, then time both here. Each is run as ``sr-run``
runs it on the CPU (:func:`sr_runtime.engines.onnxruntime.open_session`, one thread), on the
same physical inputs (:func:`sr_runtime.synthetic.sample_feed`), in interleaved rounds so that
a drifting load hits both alike; figures are medians of process CPU time. Where a model has a
static part and a step part (a model with static inputs, ``sr-export split``), they are timed
too: the step part is what every further step of a run costs. The outputs of the two exports
are compared as well (max abs difference, K): an exact change moves them by float rounding only.
``--openvino bf16`` (or ``fp32``) also times the whole model through sr-edge's OpenVINO engine
(extra ``openvino``; its graph moves at load included), one thread.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a plain script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.bench_end_to_end import load_average  # noqa: E402


class Runner:
    """One export's sessions (whole, and static and step parts where it has them) and feeds."""

    def __init__(self, model: Path, feed: dict[str, np.ndarray],
                 openvino: str | None = None) -> None:
        from sr_runtime.engines.onnxruntime import open_session
        from sr_runtime.engines.static_part import part_paths

        self.whole = open_session(model, threads=1)
        self.feed = {i.name: feed[i.name] for i in self.whole.get_inputs()}
        self.static = self.step = None
        self.step_feed: dict[str, np.ndarray] = {}
        static_path, step_path = part_paths(model)
        if static_path.is_file() and step_path.is_file():
            self.static = open_session(static_path, threads=1)
            self.step = open_session(step_path, threads=1)
            self.static_feed = {i.name: feed[i.name] for i in self.static.get_inputs()}
            cut_names = [o.name for o in self.static.get_outputs()]
            cuts = dict(zip(cut_names, self.static.run(cut_names, self.static_feed), strict=True))
            self.step_feed = {i.name: cuts[i.name] if i.name in cuts else feed[i.name]
                              for i in self.step.get_inputs()}
        self.openvino: tuple[str, Callable[[], object]] | None = None
        if openvino:
            from sr_runtime.engines.openvino import OpenVinoEngine

            engine = OpenVinoEngine(model, threads=1, precision=openvino, static_cache=False)
            lr, statics = feed["lr"], {k: v for k, v in feed.items() if k != "lr"}
            self.openvino = (f"OpenVINO, whole model ({openvino.upper()})",
                             lambda: engine.infer(lr, **statics))

    def calls(self) -> dict[str, Callable[[], object]]:
        whole = self.whole
        calls: dict[str, Callable[[], object]] = {
            "whole model": lambda: whole.run(None, self.feed)[0]}
        if self.static is not None and self.step is not None:
            static, step = self.static, self.step
            calls["static part"] = lambda: static.run(None, self.static_feed)
            calls["step part"] = lambda: step.run(None, self.step_feed)[0]
        if self.openvino is not None:
            name, call = self.openvino
            calls[name] = call
        return calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", type=Path, help="the export before the change")
    parser.add_argument("new", type=Path, help="the export after it")
    parser.add_argument("--tiles", default="32,128", help="LR tile sides, comma-separated")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved timed rounds")
    parser.add_argument("--openvino", choices=("fp32", "bf16"),
                        help="also time the whole model on OpenVINO at this precision")
    args = parser.parse_args(argv)
    from sr_runtime.engines.onnxruntime import read_description
    from sr_runtime.machine import machine_info
    from sr_runtime.synthetic import sample_feed

    for path in (args.old, args.new):
        if not path.is_file():
            parser.error(f"model not found: {path}")
    description = read_description(args.new)
    if read_description(args.old).variable_names != description.variable_names:
        parser.error("the two models take different variables: compare two exports of one model")
    print(f"machine: {machine_info().line()}\nload average at start {load_average()}")
    print(f"old: {args.old}\nnew: {args.new}\none thread, process CPU time, median of "
          f"{args.rounds} interleaved rounds, ms\n")
    print("| LR tile | call | old | new | old / new |\n| --- | --- | ---: | ---: | ---: |")
    for tile in (int(t) for t in args.tiles.split(",")):
        feed = sample_feed(description, (tile, tile), batch=1, seed=tile)
        runners = {"old": Runner(args.old, feed, args.openvino),
                   "new": Runner(args.new, feed, args.openvino)}
        outputs = {label: runner.whole.run(None, runner.feed)[0]
                   for label, runner in runners.items()}  # also the warm-up of each session
        calls = {label: runner.calls() for label, runner in runners.items()}
        shared = [name for name in calls["new"] if name in calls["old"]]
        for label in runners:
            for name in shared:
                calls[label][name]()  # warm-up
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.rounds):
            for name in shared:
                for label in runners:
                    started = time.process_time()
                    calls[label][name]()
                    times.setdefault((label, name), []).append(time.process_time() - started)
        for name in shared:
            old, new = (1e3 * float(np.median(times[(label, name)])) for label in runners)
            print(f"| {tile} | {name} | {old:.1f} | {new:.1f} | {old / new:.2f}x |")
        difference = float(np.abs(outputs["old"].astype(np.float64) - outputs["new"]).max())
        print(f"| {tile} | output, max abs difference | | | {difference:.1e} K |")
    print(f"\nload average at end {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
