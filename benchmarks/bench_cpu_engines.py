"""CPU engines side by side: PyTorch eager against the export-optimized ONNX Runtime paths.

    python benchmarks/bench_cpu_engines.py [--sizes 32,128] [--rounds 5] [--cpu-time]
                                           [--checkpoint runs/x/model.ckpt ...]

For the demo's configuration (SRResNetConfig(): 64 channels, 16 blocks, seeded random weights)
and, when present, the shipped default model (its checkpoint ``models/sr-edge-t2m-x8.ckpt`` and
``sr_runtime/data/models/sr-edge-t2m-x8.onnx``), in one process, on the same inputs:

- PyTorch eager FP32, NCHW (the demo's way) and channels_last: the original network;
- ONNX Runtime FP32 with BatchNorm folding only (``export_onnx(optimize=False)``);
- ONNX Runtime FP32 with the exact rewrites (``export_onnx()``, the default);
- ONNX Runtime INT8 (``sr-export quantize``), with its accuracy gate's verdict.

Backends run round-robin (one call each per round), each call after a short idle pause (the
previous backend's worker threads spin for a while after their last op and would steal the
cores), and the median per backend is reported, so load from other processes hits all alike.
``--cpu-time`` times single-threaded runs by the calling thread's CPU time instead of
wall-clock time: a figure that other processes on a shared machine barely disturb. A 3x3 conv
microbenchmark in the same run gives the machine's practical FP32 peak, against which each
backend's achieved GFLOP/s is stated.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a plain script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.models import (  # noqa: E402
    DEFAULT_CHECKPOINT,
    DEFAULT_MODEL,
    DEMO,
    random_checkpoint,
    shipped_missing_reason,
)

TARGETS = {"exact_vs_nchw": 2.0, "exact_vs_cl": 1.5, "reduced_vs_nchw": 3.5}


@dataclass
class Backend:
    name: str
    run: Callable[[np.ndarray], np.ndarray]
    note: str = ""
    times: list[float] = field(default_factory=list)
    check: str = ""


@dataclass
class ModelUnderTest:
    label: str
    loaded: object  # LoadedCheckpoint
    flops_per_lr_pixel: int
    backends: list[Backend]
    notes: list[str]


def clock(cpu_time: bool) -> Callable[[], float]:
    return time.thread_time if cpu_time else time.perf_counter


def ort_session(path: Path, threads: int):
    import onnxruntime as ort

    from sr_runtime.engines.onnxruntime import session_options

    return ort.InferenceSession(str(path), session_options(threads),
                                providers=["CPUExecutionProvider"])


def ort_runner(path: Path, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    session = ort_session(path, threads)
    return lambda lr: session.run(None, {"lr": lr})[0]


def torch_runner(model, channels_last: bool) -> Callable[[np.ndarray], np.ndarray]:
    import torch

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = copy.deepcopy(model).to(memory_format=fmt)

    def run(lr: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(lr).contiguous(memory_format=fmt)
            return model(x).contiguous().numpy()

    return run


def calibration_and_gate(description):
    """Calibration fields and gate data from the sample DataCube, else synthetic."""
    from sr_export.quantize import SYNTHETIC, load_calibration, load_gate_data
    from sr_runtime.errors import SrEdgeError

    try:
        fields, label = load_calibration("sample", description)
        return fields, label, load_gate_data("sample", description, None)
    except SrEdgeError as exc:
        fields, label = load_calibration(SYNTHETIC, description)
        gate = load_gate_data(SYNTHETIC, description, None)
        return fields, f"{label} (sample DataCube unavailable: {exc})", gate


def build(label: str, loaded, workdir: Path, threads: int, shipped_onnx: Path | None,
          log: Callable[[str], None]) -> ModelUnderTest:
    from sr_export.model import SRResNetConfig
    from sr_export.onnx_export import export_onnx, physical_model
    from sr_export.quantize import accuracy_gate, quantize_int8, quantize_to_proto
    from sr_runtime.errors import AccuracyGateError

    config = SRResNetConfig.from_dict(dict(loaded.description.arch_params))
    stem = workdir / label.split()[0]
    plain, exact = Path(f"{stem}.plain.onnx"), Path(f"{stem}.onnx")
    int8 = Path(f"{stem}.int8.onnx")
    log(f"[{label}] exporting (BatchNorm folding only, then with the exact rewrites)")
    export_onnx(loaded, plain, optimize=False)
    report = export_onnx(loaded, exact)
    notes = [report.summary()]
    reference = physical_model(loaded)
    backends = [
        Backend("PyTorch eager FP32 NCHW", torch_runner(reference, False)),
        Backend("PyTorch eager FP32 channels_last", torch_runner(reference, True)),
        Backend("ORT FP32, BatchNorm folded only", ort_runner(plain, threads)),
        Backend("ORT FP32 exact rewrites", ort_runner(exact, threads), "exact"),
    ]
    if shipped_onnx is not None:
        from sr_runtime.engines.onnxruntime import read_description

        rewrites = ", ".join(read_description(shipped_onnx).graph_rewrites)
        backends.append(Backend("ORT FP32, shipped .onnx as is", ort_runner(shipped_onnx, threads),
                                f"rewrites: {rewrites}"))

    log(f"[{label}] quantizing to INT8 (calibration and gate on the sample DataCube)")
    fields, calib_label, gate_data = calibration_and_gate(loaded.description)
    try:
        q = quantize_int8(exact, int8, fields, gate_data, calibration_label=calib_label)
        gate = q.gate
        mixed = q.record["quantization"].get("mixed_precision")  # type: ignore[union-attr]
        if mixed:
            notes.append(f"INT8 mixed precision ({mixed['why']}): INT8 only for "
                         f"{', '.join(mixed['int8_nodes'])} ({mixed['int8_flop_share']:.0%} of "
                         f"the FLOPs)")
    except AccuracyGateError as exc:  # time it anyway, marked as refused
        notes.append(f"INT8 refused by its gate: {exc}")
        proto, _ = quantize_to_proto(exact, fields)
        import onnx

        onnx.save(proto, str(int8))
        session = ort_session(int8, threads)
        ref = ort_session(exact, threads)
        gate = accuracy_gate(ref.run(None, {"lr": gate_data.lr})[0],
                             session.run(None, {"lr": gate_data.lr})[0], gate_data.truth,
                             note=gate_data.note)
    notes.append(f"INT8 calibrated on {calib_label}; gate: {gate.summary()}")
    backends.append(Backend("ORT INT8 (QDQ, FP32 islands)", ort_runner(int8, threads),
                            "reduced" if gate.passed else "reduced, GATE FAILED"))
    return ModelUnderTest(label, loaded, config.flops_per_lr_pixel(), backends, notes)


def conv_peak(threads: int, cpu_time: bool, rounds: int,
              pause: float = 0.0) -> tuple[float, str]:
    """Best GFLOP/s of a 3x3 conv (64 -> 64 and 64 -> 256 at 128 x 128), ORT and PyTorch."""
    import onnx
    import torch
    from onnx import TensorProto, helper, numpy_helper

    results = {}
    tick = clock(cpu_time)
    with tempfile.TemporaryDirectory() as scratch:
        for c_out in (64, 256):
            rng = np.random.default_rng(0)
            w = rng.normal(0, 0.05, (c_out, 64, 3, 3)).astype(np.float32)
            graph = helper.make_graph(
                [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "conv",
                [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64, 128, 128])],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                [numpy_helper.from_array(w, "w")])
            proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
            proto.ir_version = 9
            path = Path(scratch) / f"conv{c_out}.onnx"
            onnx.save(proto, path)
            session = ort_session(path, threads)
            x = rng.normal(size=(1, 64, 128, 128)).astype(np.float32)
            conv = torch.nn.Conv2d(64, c_out, 3, padding=1, bias=False).to(
                memory_format=torch.channels_last)
            xt = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
            flops = 2 * 64 * c_out * 9 * 128 * 128
            runs = {f"ORT conv 64->{c_out}": lambda s=session, x=x: s.run(None, {"x": x}),
                    f"PyTorch conv 64->{c_out} channels_last": lambda c=conv, xt=xt: c(xt)}
            samples: dict[str, list[float]] = {k: [] for k in runs}
            with torch.inference_mode():
                for fn in runs.values():
                    fn()
                for _ in range(rounds):
                    for name, fn in runs.items():
                        time.sleep(pause)
                        start = tick()
                        fn()
                        samples[name].append(tick() - start)
            for name, values in samples.items():
                results[name] = flops / float(np.median(values)) / 1e9
    best = max(results, key=results.get)  # type: ignore[arg-type]
    return results[best], best


def load_average() -> str:
    try:
        return " ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def measure(model: ModelUnderTest, size: int, rounds: int, cpu_time: bool,
            log: Callable[[str], None], pause: float = 0.0) -> None:
    from sr_export.onnx_export import sample_input

    lr = sample_input(model.loaded.description, shape=(size, size), batch=1, seed=size)
    outputs = {b.name: b.run(lr) for b in model.backends}  # warm-up and agreement check
    reference = outputs[model.backends[0].name].astype(np.float64)
    for backend in model.backends:
        diff = outputs[backend.name] - reference
        backend.check = (f"max abs {np.max(np.abs(diff)):.1e} K, RMSE "
                         f"{np.sqrt(np.mean(diff ** 2)):.1e} K vs PyTorch NCHW")
        backend.times = []
    tick = clock(cpu_time)
    for i in range(rounds):
        for backend in model.backends:
            time.sleep(pause)  # let the previous backend's spinning worker threads go idle
            start = tick()
            backend.run(lr)
            backend.times.append(tick() - start)
        log(f"[{model.label}] LR {size}x{size}: round {i + 1}/{rounds} "
            f"(load average {load_average()})")


def report(model: ModelUnderTest, size: int, peak: float) -> tuple[list[str], dict[str, float]]:
    flops = model.flops_per_lr_pixel * size * size
    base = float(np.median(model.backends[0].times))
    channels_last = float(np.median(model.backends[1].times))
    lines = [f"\n{model.label}, LR {size}x{size} ({flops / 1e9:.2f} GFLOP per tile)", "",
             "| backend | median ms | min ms | x NCHW | x channels_last | GFLOP/s | % of peak | "
             "HR Mpix/s | output vs PyTorch NCHW |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    speedups: dict[str, float] = {}
    hr_pixels = (size * model.loaded.description.scale) ** 2
    for backend in model.backends:
        med = float(np.median(backend.times))
        gflops = flops / med / 1e9
        name = backend.name + (f" ({backend.note})" if backend.note else "")
        lines.append(f"| {name} | {med * 1e3:.1f} | {min(backend.times) * 1e3:.1f} | "
                     f"{base / med:.2f} | {channels_last / med:.2f} | {gflops:.0f} | "
                     f"{100 * gflops / peak:.0f} % | {hr_pixels / med / 1e6:.2f} | "
                     f"{backend.check} |")
        if backend.note == "exact":
            speedups["exact_vs_nchw"] = base / med
            speedups["exact_vs_cl"] = channels_last / med
        elif backend.note.startswith("reduced"):
            speedups["reduced_vs_nchw"] = base / med
            speedups["reduced_gate"] = float(backend.note == "reduced")
    return lines, speedups


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="32,128", help="LR tile sizes (comma-separated)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per size")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for every backend [default: physical cores]")
    parser.add_argument("--pause", type=float, default=0.3,
                        help="seconds of idle time before each timed call, so that the worker "
                        "threads of the backend before (OpenMP, ONNX Runtime pools) stop "
                        "spinning and do not steal the cores [default: 0.3]")
    parser.add_argument("--cpu-time", action="store_true",
                        help="single-threaded, timed by the thread's CPU time")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the models here")
    parser.add_argument("--skip-shipped", action="store_true")
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--checkpoint", type=Path, action="append", default=[],
                        help="also benchmark this sr-edge checkpoint (repeatable)")
    args = parser.parse_args(argv)

    import torch

    from sr_runtime.machine import machine_info, physical_cores

    threads = 1 if args.cpu_time else (args.threads or physical_cores())
    torch.set_num_threads(threads)
    sizes = [int(s) for s in args.sizes.split(",")]

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    machine = machine_info()
    header = [f"machine: {machine.line()}; {machine.physical_cores} physical cores; "
              f"{threads} thread(s); timing: "
              f"{'CPU time of the calling thread' if args.cpu_time else 'wall clock'}, median "
              f"of {args.rounds} round-robin rounds, {args.pause:g} s idle before each call; "
              f"load average at start {load_average()}"]
    workdir_context = (tempfile.TemporaryDirectory(prefix="sr-edge-bench-")
                       if args.workdir is None else None)
    workdir = Path(workdir_context.name) if workdir_context else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)

    models: list[ModelUnderTest] = []
    if not args.skip_demo:
        models.append(build("demo-64ch-16b (SRResNetConfig(), random weights seed 0)",
                            random_checkpoint(DEMO), workdir, threads, None, log))
    if not args.skip_shipped:
        missing = shipped_missing_reason()
        if missing is None:
            from sr_export.checkpoints import load_checkpoint

            models.append(build("shipped sr-edge-t2m-x8", load_checkpoint(DEFAULT_CHECKPOINT),
                                workdir, threads, DEFAULT_MODEL, log))
        else:
            header.append(missing)

    for checkpoint in args.checkpoint:
        from sr_export.checkpoints import load_checkpoint

        loaded = load_checkpoint(checkpoint)
        arch = loaded.description.arch_params
        label = (f"{checkpoint.parent.name or checkpoint.stem} ({checkpoint}, "
                 f"{arch.get('n_channels')} ch, {arch.get('n_blocks')} blocks, "
                 f"upsample_skip {arch.get('upsample_skip', 'none')})")
        models.append(build(label, loaded, workdir, threads, None, log))

    log("measuring the 3x3 conv peak")
    peak, peak_name = conv_peak(threads, args.cpu_time, args.rounds, args.pause)
    header.append(f"practical FP32 peak (3x3 conv microbenchmark, same run): {peak:.0f} GFLOP/s "
                  f"({peak_name})")
    lines: list[str] = []
    verdicts: list[str] = []
    for model in models:
        lines.append(f"\n## {model.label}")
        lines += [f"- {note}" for note in model.notes]
        for size in sizes:
            measure(model, size, args.rounds, args.cpu_time, log, args.pause)
            table, speedups = report(model, size, peak)
            lines += table
            for key, target in TARGETS.items():
                if key in speedups:
                    ok = speedups[key] >= target and (key != "reduced_vs_nchw"
                                                      or speedups.get("reduced_gate") == 1.0)
                    verdicts.append(f"{model.label.split()[0]} LR {size}: {key} "
                                    f"{speedups[key]:.2f}x (target {target}x"
                                    f"{', gate must pass' if key == 'reduced_vs_nchw' else ''})"
                                    f": {'MET' if ok else 'NOT MET'}")
    header.append(f"load average at end {load_average()}")
    print("\n".join(header + lines + ["\n## Acceptance"] + [f"- {v}" for v in verdicts]))
    if workdir_context:
        workdir_context.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
