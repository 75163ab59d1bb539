"""CPU engines side by side: sr-edge's paths against what a user would pick instead.

    python benchmarks/bench_cpu_engines.py [--sizes 32,128] [--rounds 5] [--cpu-time]
                                           [--checkpoint runs/x/model.ckpt ...]

For the demo's configuration (SRResNetConfig(): 64 channels, 16 blocks, seeded random weights)
and, when present, the two shipped models (checkpoints in ``models/``, ONNX files in
``sr_runtime/data/models/``): the LR-only ``sr-edge-t2m-x8`` and the default
``sr-edge-t2m-d2m-orog-x8``, which also takes static HR fields and clock channels (every backend
gets them), in one process, on the same inputs and weights:

- peers, the network as a user would run it without sr-edge: PyTorch eager FP32 NCHW (the
  demo's way) and channels_last, ``torch.compile`` (inductor, freezing), and a plain
  ``torch.onnx.export`` of the same network on ONNX Runtime (default options) and on OpenVINO
  (FP32, and its default precision, which is BF16 on a CPU with AVX512_BF16 or AMX);
- sr-edge: ONNX Runtime FP32 on the exact rewrites (``export_onnx()``), the shipped ``.onnx`` as
  it is, the ``openvino`` backend on the same file (FP32 and, where the CPU has it, BF16), and
  ONNX Runtime INT8 (``sr-export quantize``, which refuses models with static inputs); each
  reduced-precision path with its accuracy gate's verdict (RMSE against FP32, PSNR drop against
  HR truth, on the sample DataCube). For a model with static fields also ``sr-run``'s ONNX
  Runtime and OpenVINO engines as they compute the static part once per tile (``sr-export
  split``): their medians are the time of every further step of a run over the same tile,
  reported beside the single-call figures as ``exact_per_step_vs_best_peer`` and
  ``gated_per_step_vs_best_peer`` (OpenVINO BF16, its gate measured on the parts too).

The report gives per backend: ms, the ratio to PyTorch eager NCHW, the ratio to the best peer
(the fastest peer whose output matches PyTorch within 1e-3 K), GFLOP/s against a practical peak
measured in the same run (a 3x3 conv: FP32, and BF16 where OpenVINO and the CPU have it) and
the accuracy in kelvin; the header names the CPU class.

Backends run round-robin (one call each per round), each call after a short idle pause (the
previous backend's worker threads spin for a while after their last op and would steal the
cores), and the median per backend is reported, so load from other processes hits all alike.
``--cpu-time`` runs every backend on one thread and times it by the process's CPU time (not the
calling thread's: OpenVINO runs inference on its own worker thread), a figure that other
processes on a shared machine barely disturb.
"""

from __future__ import annotations

import argparse
import copy
import itertools
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
    DEMO,
    LR_ONLY_MODEL,
    OROGRAPHY_CHECKPOINT,
    random_checkpoint,
    shipped_missing_reason,
)
from sr_runtime.defaults import OROGRAPHY_MODEL  # noqa: E402
from sr_runtime.description import LR_INPUT  # noqa: E402
from sr_runtime.machine import has_bf16  # noqa: E402
from sr_runtime.synthetic import sample_feed  # noqa: E402

#: Every graph input by name: ``lr`` and, for a model with static fields, ``hr_static``.
Feed = dict[str, np.ndarray]

#: Acceptance of issue 14: sr-edge's exact FP32 path against the best peer, and its best gated
#: path (reduced precision included) against the same peer.
TARGETS = {"exact_vs_best_peer": 2.0, "gated_vs_best_peer": 3.0}
#: Reported beside them for a model with static fields: the exact path on every further step
#: of a run over the same tile, its static part computed once (sr-run's ONNX Runtime engine).
STEP_TARGETS = {"exact_per_step_vs_best_peer": 2.0, "gated_per_step_vs_best_peer": 3.0}
#: A peer counts as exact (a candidate for "best peer") when it matches PyTorch this closely.
PEER_EXACT_K = 1e-3
PEER, EXACT, REDUCED = "peer", "sr-edge exact", "sr-edge reduced"
EXACT_STEP = "sr-edge exact, per further step"
REDUCED_STEP = "sr-edge reduced, per further step"
STEP_NOTE = "each further step of a run; GFLOP/s as for the whole model"


@dataclass
class Backend:
    name: str
    run: Callable[[Feed], np.ndarray]
    role: str = PEER
    note: str = ""
    gate_passed: bool | None = None  # reduced precision: its accuracy gate's verdict
    bf16: bool = False  # measured against the BF16 peak
    times: list[float] = field(default_factory=list)
    check: str = ""
    max_abs: float = 0.0


@dataclass
class ModelUnderTest:
    label: str
    loaded: object  # LoadedCheckpoint
    flops_per_lr_pixel: int
    backends: list[Backend]
    notes: list[str]


def clock(cpu_time: bool) -> Callable[[], float]:
    return time.process_time if cpu_time else time.perf_counter


def openvino_missing() -> str | None:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return "OpenVINO not installed (pip install 'sr-edge[openvino]'): its rows are skipped"
    return None


def openvino_runner(path: Path, threads: int, precision: str | None
                    ) -> Callable[[Feed], np.ndarray]:
    """A plain OpenVINO run of ``path`` as a user would write it: compiled for the inputs'
    static shapes (once per shape), LATENCY hint, ``precision`` f32/bf16 or None for the
    plugin's default."""
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(path))
    compiled: dict[tuple[tuple[int, ...], ...], object] = {}
    config: dict[str, object] = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision

    def run(feed: Feed) -> np.ndarray:
        key = tuple(feed[name].shape for name in sorted(feed))
        request = compiled.get(key)
        if request is None:
            static = model.clone()
            static.reshape({name: ov.PartialShape(list(value.shape))
                            for name, value in feed.items()})
            request = compiled[key] = core.compile_model(static, "CPU", config) \
                .create_infer_request()
        return np.asarray(request.infer(feed)[0])  # type: ignore[attr-defined]

    return run


def sr_edge_openvino_runner(path: Path, threads: int, precision: str, static_cache: bool = False
                            ) -> Callable[[Feed], np.ndarray] | None:
    """sr-edge's own ``openvino`` backend (the engine ``sr-run --backend openvino`` loads): one
    call as a single step runs it, or with ``static_cache`` every further step of a run over
    the same tile (None without parts beside ``path``)."""
    from sr_runtime.engines.openvino import OpenVinoEngine

    engine = OpenVinoEngine(path, threads=threads, precision=precision,
                            static_cache=static_cache)
    if static_cache and engine.static_cache is None:
        return None
    return lambda feed: engine.infer(feed[LR_INPUT], **others(feed))


def others(feed: Feed) -> Feed:
    """The inputs besides ``lr`` (static HR fields), as engines take them by keyword."""
    return {name: value for name, value in feed.items() if name != LR_INPUT}


def tensors(feed: Feed) -> list:
    """The feed as PyTorch's ``forward(lr, hr_static)`` takes it, in graph-input order."""
    import torch

    return [torch.from_numpy(feed[LR_INPUT]), *map(torch.from_numpy, others(feed).values())]


def plain_export(reference, path: Path, feed: Feed, scale: int) -> Path:
    """``torch.onnx.export`` of the unmodified network, as a user would write it (dynamic
    height and width; a static HR input's are ``scale`` x the LR's)."""
    import torch

    height, width = torch.export.Dim("h", min=8), torch.export.Dim("w", min=8)
    shapes = {name: {2: height, 3: width} if name == LR_INPUT
              else {2: scale * height, 3: scale * width} for name in feed}
    torch.onnx.export(reference, tuple(tensors(feed)), str(path), dynamo=True,
                      external_data=False, input_names=list(feed), output_names=["hr"],
                      dynamic_shapes=shapes)
    return path


def compiled_runner(model) -> Callable[[Feed], np.ndarray]:
    """``torch.compile`` (inductor) with freezing, channels_last: the fastest PyTorch peer."""
    import torch
    import torch._inductor.config as inductor

    inductor.freezing = True
    compiled = torch.compile(copy.deepcopy(model).to(memory_format=torch.channels_last),
                             dynamic=False)  # one graph per tile size: dynamic shapes broke
    # inductor's freezing with channels_last at the second size (torch 2.13)

    def run(feed: Feed) -> np.ndarray:
        with torch.inference_mode():
            xs = [x.contiguous(memory_format=torch.channels_last) for x in tensors(feed)]
            return compiled(*xs).contiguous().numpy()

    return run


def ort_session(path: Path, threads: int):
    import onnxruntime as ort

    from sr_runtime.engines.onnxruntime import session_options

    return ort.InferenceSession(str(path), session_options(threads),
                                providers=["CPUExecutionProvider"])


def ort_runner(path: Path, threads: int) -> Callable[[Feed], np.ndarray]:
    session = ort_session(path, threads)
    return lambda feed: session.run(None, feed)[0]


def static_part_runner(path: Path, threads: int) -> Callable[[Feed], np.ndarray] | None:
    """sr-run's ONNX Runtime engine on ``path``, which computes the static part once per set
    of static fields (every round feeds the same ones); None without parts beside ``path``."""
    from sr_runtime.engines.onnxruntime import OnnxRuntimeEngine

    engine = OnnxRuntimeEngine(path, threads=threads)
    if engine.static_cache is None:
        return None
    return lambda feed: engine.infer(feed[LR_INPUT],
                                     **{k: v for k, v in feed.items() if k != LR_INPUT})


def torch_runner(model, channels_last: bool) -> Callable[[Feed], np.ndarray]:
    import torch

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = copy.deepcopy(model).to(memory_format=fmt)

    def run(feed: Feed) -> np.ndarray:
        with torch.inference_mode():
            return model(*[x.contiguous(memory_format=fmt) for x in tensors(feed)]) \
                .contiguous().numpy()

    return run


def calibration_and_gate(description):
    """Calibration fields (None for a model with static inputs: no INT8 for it) and gate data
    from the sample DataCube, else synthetic."""
    from sr_export.quantize import SYNTHETIC, load_calibration, load_gate_data
    from sr_runtime.errors import SrEdgeError

    int8 = not description.static_inputs
    try:
        fields, label = load_calibration("sample", description) if int8 else (None, "")
        return fields, label, load_gate_data("sample", description, None)
    except SrEdgeError as exc:
        fields, label = load_calibration(SYNTHETIC, description) if int8 else (None, "")
        gate = load_gate_data(SYNTHETIC, description, None)
        return fields, f"{label} (sample DataCube unavailable: {exc})", gate


def gate_feed(gate_data) -> Feed:
    """All gate samples as one batch: the LR fields and, where the model takes them, the
    region's static fields repeated per sample."""
    feed = {LR_INPUT: gate_data.lr}
    for name, value in gate_data.inputs(0)[1].items():
        feed[name] = np.repeat(value, gate_data.lr.shape[0], axis=0)
    return feed


def build(label: str, loaded, workdir: Path, threads: int, shipped_onnx: Path | None,
          log: Callable[[str], None], compile_peer: bool = True) -> ModelUnderTest:
    from sr_export.model import SRResNetConfig
    from sr_export.onnx_export import export_onnx, physical_model
    from sr_export.quantize import accuracy_gate, quantize_int8, quantize_to_proto
    from sr_runtime.errors import AccuracyGateError

    config = SRResNetConfig.from_dict(dict(loaded.description.arch_params))
    stem = workdir / label.split()[0]
    plain, exact = Path(f"{stem}.plain.onnx"), Path(f"{stem}.onnx")
    int8 = Path(f"{stem}.int8.onnx")
    reference = physical_model(loaded)
    log(f"[{label}] exporting: a plain torch.onnx.export, then sr-edge's export_onnx")
    plain_export(reference, plain, sample_feed(loaded.description, (32, 32), 1),
                 loaded.description.scale)
    report = export_onnx(loaded, exact)
    notes = [report.summary()]
    backends = [
        Backend("PyTorch eager FP32 NCHW", torch_runner(reference, False)),
        Backend("PyTorch eager FP32 channels_last", torch_runner(reference, True)),
    ]
    if compile_peer:
        backends.append(Backend("torch.compile (inductor, freezing, channels_last)",
                                compiled_runner(reference)))
    backends.append(Backend("ONNX Runtime, plain export, default options",
                            plain_ort_runner(plain, threads)))
    ov_missing = openvino_missing()
    if ov_missing is None:
        backends += [Backend("OpenVINO FP32, plain export", openvino_runner(plain, threads, "f32")),
                     Backend("OpenVINO default precision, plain export",
                             openvino_runner(plain, threads, None), bf16=has_bf16())]
    else:
        notes.append(ov_missing)
    backends.append(Backend("sr-edge ONNX Runtime FP32 (exact rewrites)",
                            ort_runner(exact, threads), EXACT))
    per_step = static_part_runner(exact, threads)
    if per_step is not None:
        backends.append(Backend("sr-edge ONNX Runtime FP32, static part once per tile",
                                per_step, EXACT_STEP, STEP_NOTE))
    if shipped_onnx is not None:
        from sr_runtime.engines.onnxruntime import read_description

        rewrites = ", ".join(read_description(shipped_onnx).graph_rewrites)
        backends.append(Backend("sr-edge ONNX Runtime FP32, shipped .onnx as is",
                                ort_runner(shipped_onnx, threads), EXACT,
                                f"rewrites: {rewrites}"))

    fields, calib_label, gate_data = calibration_and_gate(loaded.description)
    gate_inputs = gate_feed(gate_data)
    fp32_gate_out = ort_session(exact, threads).run(None, gate_inputs)[0]
    if ov_missing is None:
        fp32 = sr_edge_openvino_runner(exact, threads, "fp32")
        assert fp32 is not None
        backends.append(Backend("sr-edge OpenVINO FP32", fp32, EXACT))
        fp32_step = sr_edge_openvino_runner(exact, threads, "fp32", static_cache=True)
        if fp32_step is not None:
            backends.append(Backend("sr-edge OpenVINO FP32, static part once per tile",
                                    fp32_step, EXACT_STEP, STEP_NOTE))
        if has_bf16():
            bf16 = sr_edge_openvino_runner(exact, threads, "bf16")
            assert bf16 is not None
            gate = accuracy_gate(fp32_gate_out, bf16(gate_inputs), gate_data.truth,
                                 note=gate_data.note)
            notes.append(f"OpenVINO BF16 gate: {gate.summary()}")
            backends.append(Backend("sr-edge OpenVINO BF16", bf16, REDUCED,
                                    gate_passed=gate.passed, bf16=True))
            bf16_step = sr_edge_openvino_runner(exact, threads, "bf16", static_cache=True)
            if bf16_step is not None:
                bf16_step(gate_inputs)  # first sight: the whole model; then the parts
                step_gate = accuracy_gate(fp32_gate_out, bf16_step(gate_inputs), gate_data.truth,
                                          note=gate_data.note)
                notes.append(f"OpenVINO BF16 gate, static and step parts: "
                             f"{step_gate.summary()}")
                backends.append(Backend("sr-edge OpenVINO BF16, static part once per tile",
                                        bf16_step, REDUCED_STEP, STEP_NOTE,
                                        gate_passed=step_gate.passed, bf16=True))
        else:
            notes.append("OpenVINO BF16 not measured: this CPU has neither AVX512_BF16 nor AMX")

    if fields is None:
        notes.append("INT8 not measured: sr-export quantize refuses models with static inputs "
                     "(its calibration reads LR fields alone)")
        return ModelUnderTest(label, loaded, config.flops_per_lr_pixel(), backends, notes)
    log(f"[{label}] quantizing to INT8 (calibration and gate on the sample DataCube)")
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
        gate = accuracy_gate(fp32_gate_out, session.run(None, gate_inputs)[0],
                             gate_data.truth, note=gate_data.note)
    notes.append(f"INT8 calibrated on {calib_label}; gate: {gate.summary()}")
    backends.append(Backend("sr-edge ONNX Runtime INT8 (QDQ, FP32 islands)",
                            ort_runner(int8, threads), REDUCED, gate_passed=gate.passed))
    return ModelUnderTest(label, loaded, config.flops_per_lr_pixel(), backends, notes)


def plain_ort_runner(path: Path, threads: int) -> Callable[[Feed], np.ndarray]:
    """ONNX Runtime as a user would open a model: default options, ``threads`` intra-op."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda feed: session.run(None, feed)[0]


#: Spatial sizes of the peak microbenchmark's conv (the LR tile sizes the report uses).
PEAK_SIDES = (32, 128)


@dataclass(frozen=True)
class Peak:
    """The machine's practical peak in this run: best GFLOP/s of a 3x3 conv, per arithmetic."""

    fp32: float
    fp32_by: str
    bf16: float | None = None
    bf16_by: str = ""

    def of(self, backend: Backend) -> float:
        return self.bf16 if backend.bf16 and self.bf16 else self.fp32

    def describe(self) -> str:
        text = f"FP32 {self.fp32:.0f} GFLOP/s ({self.fp32_by})"
        if self.bf16:
            text += f"; BF16 {self.bf16:.0f} GFLOP/s ({self.bf16_by})"
        return text


def conv_peak(threads: int, cpu_time: bool, rounds: int,
              pause: float = 0.0) -> Peak:
    """Best GFLOP/s of a 3x3 conv (64 -> 64 and 64 -> 256, at 32 x 32 and 128 x 128: which one
    runs closer to the peak depends on the caches), FP32 on ORT, PyTorch and OpenVINO, BF16 on
    OpenVINO where it and the CPU have it."""
    import onnx
    import torch
    from onnx import TensorProto, helper, numpy_helper

    results = {}
    tick = clock(cpu_time)
    with tempfile.TemporaryDirectory() as scratch:
        for c_out, side in itertools.product((64, 256), PEAK_SIDES):
            rng = np.random.default_rng(0)
            w = rng.normal(0, 0.05, (c_out, 64, 3, 3)).astype(np.float32)
            graph = helper.make_graph(
                [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "conv",
                [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64, side, side])],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                [numpy_helper.from_array(w, "w")])
            proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
            proto.ir_version = 9
            path = Path(scratch) / f"conv{c_out}-{side}.onnx"
            onnx.save(proto, path)
            session = ort_session(path, threads)
            x = rng.normal(size=(1, 64, side, side)).astype(np.float32)
            conv = torch.nn.Conv2d(64, c_out, 3, padding=1, bias=False).to(
                memory_format=torch.channels_last)
            xt = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
            flops = 2 * 64 * c_out * 9 * side * side
            at = f"64->{c_out} at {side}x{side}"
            runs = {f"ORT conv {at}": lambda s=session, x=x: s.run(None, {"x": x}),
                    f"PyTorch conv {at} channels_last": lambda c=conv, xt=xt: c(xt)}
            if openvino_missing() is None:
                runs[f"OpenVINO conv {at} FP32"] = (
                    lambda r=openvino_runner(path, threads, "f32"), x=x: r({"x": x}))
                if has_bf16():
                    runs[f"OpenVINO conv {at} BF16"] = (
                        lambda r=openvino_runner(path, threads, "bf16"), x=x: r({"x": x}))
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
    fp32 = {k: v for k, v in results.items() if "BF16" not in k}
    bf16 = {k: v for k, v in results.items() if "BF16" in k}
    best = max(fp32, key=fp32.__getitem__)
    best_bf16 = max(bf16, key=bf16.__getitem__) if bf16 else ""
    return Peak(fp32[best], best, bf16[best_bf16] if bf16 else None, best_bf16)


def load_average() -> str:
    try:
        return " ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def measure(model: ModelUnderTest, size: int, rounds: int, cpu_time: bool,
            log: Callable[[str], None], pause: float = 0.0) -> None:
    feed = sample_feed(model.loaded.description, (size, size), 1, size)
    log(f"[{model.label}] LR {size}x{size}: warm-up (torch.compile compiles here)")
    outputs = {b.name: b.run(feed) for b in model.backends}  # warm-up and agreement check
    reference = outputs[model.backends[0].name].astype(np.float64)
    for backend in model.backends:
        diff = outputs[backend.name] - reference
        if not np.all(np.isfinite(outputs[backend.name])):
            raise SystemExit(f"{backend.name} returned non-finite values at LR {size}")
        backend.max_abs = float(np.max(np.abs(diff)))
        backend.check = (f"max abs {backend.max_abs:.1e} K, RMSE "
                         f"{np.sqrt(np.mean(diff ** 2)):.1e} K")
        backend.times = []
    tick = clock(cpu_time)
    for i in range(rounds):
        for backend in model.backends:
            time.sleep(pause)  # let the previous backend's spinning worker threads go idle
            start = tick()
            backend.run(feed)
            backend.times.append(tick() - start)
        log(f"[{model.label}] LR {size}x{size}: round {i + 1}/{rounds} "
            f"(load average {load_average()})")


def report(model: ModelUnderTest, size: int, peak: Peak) -> tuple[list[str], dict[str, float]]:
    """The table for one model and size, and the acceptance ratios (``*_vs_best_peer``)."""
    flops = model.flops_per_lr_pixel * size * size
    median = {b.name: float(np.median(b.times)) for b in model.backends}
    base = median[model.backends[0].name]
    exact_peers = [b for b in model.backends if b.role == PEER and b.max_abs <= PEER_EXACT_K]
    best_peer = min(exact_peers, key=lambda b: median[b.name])
    peer_ms = median[best_peer.name]
    lines = [f"\n{model.label}, LR {size}x{size} ({flops / 1e9:.2f} GFLOP per tile); best peer: "
             f"{best_peer.name} ({peer_ms * 1e3:.1f} ms)", "",
             "| backend | kind | median ms | x PyTorch NCHW | x best peer | GFLOP/s | % of peak | "
             "HR Mpix/s | output vs PyTorch FP32 |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    hr_pixels = (size * model.loaded.description.scale) ** 2
    exact_ms, gated_ms, step_ms = [], [], []
    gated_step_ms: list[float] = []
    for backend in model.backends:
        med = median[backend.name]
        gflops = flops / med / 1e9
        kind = backend.role
        if backend.role in (REDUCED, REDUCED_STEP):
            kind += ", gate passed" if backend.gate_passed else ", GATE FAILED"
            if backend.gate_passed:
                (gated_ms if backend.role == REDUCED else gated_step_ms).append(med)
        elif backend.role == EXACT:
            exact_ms.append(med)
        elif backend.role == EXACT_STEP:
            step_ms.append(med)
        if backend.role == PEER and backend.max_abs > PEER_EXACT_K:
            kind += ", not exact"
        name = backend.name + (f" ({backend.note})" if backend.note else "")
        lines.append(f"| {name} | {kind} | {med * 1e3:.1f} | {base / med:.2f} | "
                     f"{peer_ms / med:.2f} | {gflops:.0f} | "
                     f"{100 * gflops / peak.of(backend):.0f} % {'BF16' if backend.bf16 else 'FP32'}"
                     f" | {hr_pixels / med / 1e6:.2f} | {backend.check} |")
    ratios = {"exact_vs_best_peer": peer_ms / min(exact_ms),
              "gated_vs_best_peer": peer_ms / min(exact_ms + gated_ms)}
    if step_ms:
        ratios["exact_per_step_vs_best_peer"] = peer_ms / min(exact_ms + step_ms)
    if step_ms or gated_step_ms:
        ratios["gated_per_step_vs_best_peer"] = peer_ms / min(exact_ms + step_ms + gated_ms
                                                             + gated_step_ms)
    return lines, ratios


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
                        help="single-threaded, timed by the process's CPU time")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the models here")
    parser.add_argument("--skip-shipped", action="store_true",
                        help="leave out the shipped LR-only model")
    parser.add_argument("--skip-default", action="store_true",
                        help="leave out the shipped default (orography-aware) model")
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--no-compile", action="store_true",
                        help="leave out the torch.compile peer (it compiles for minutes)")
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
              f"{'process CPU time, 1 thread' if args.cpu_time else 'wall clock'}, median "
              f"of {args.rounds} round-robin rounds, {args.pause:g} s idle before each call; "
              f"load average at start {load_average()}"]
    workdir_context = (tempfile.TemporaryDirectory(prefix="sr-edge-bench-")
                       if args.workdir is None else None)
    workdir = Path(workdir_context.name) if workdir_context else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)

    models: list[ModelUnderTest] = []
    if not args.skip_demo:
        models.append(build("demo-64ch-16b (SRResNetConfig(), random weights seed 0)",
                            random_checkpoint(DEMO), workdir, threads, None, log,
                            not args.no_compile))
    if not args.skip_shipped:
        missing = shipped_missing_reason()
        if missing is None:
            from sr_export.checkpoints import load_checkpoint

            models.append(build("shipped sr-edge-t2m-x8", load_checkpoint(DEFAULT_CHECKPOINT),
                                workdir, threads, LR_ONLY_MODEL, log, not args.no_compile))
        else:
            header.append(missing)
    if not args.skip_default:
        missing = shipped_missing_reason(OROGRAPHY_MODEL, OROGRAPHY_CHECKPOINT)
        if missing is None:
            from sr_export.checkpoints import load_checkpoint

            models.append(build("default sr-edge-t2m-d2m-orog-x8 (static fields, clock)",
                                load_checkpoint(OROGRAPHY_CHECKPOINT), workdir, threads,
                                OROGRAPHY_MODEL, log, not args.no_compile))
        else:
            header.append(missing)

    for checkpoint in args.checkpoint:
        from sr_export.checkpoints import load_checkpoint

        loaded = load_checkpoint(checkpoint)
        arch = loaded.description.arch_params
        label = (f"{checkpoint.parent.name or checkpoint.stem} ({checkpoint}, "
                 f"{arch.get('n_channels')} ch, {arch.get('n_blocks')} blocks, "
                 f"upsample_skip {arch.get('upsample_skip', 'none')})")
        models.append(build(label, loaded, workdir, threads, None, log, not args.no_compile))

    log("measuring the 3x3 conv peak")
    peak = conv_peak(threads, args.cpu_time, args.rounds, args.pause)
    header.append(f"practical peak (3x3 conv microbenchmark, same run): {peak.describe()}")
    lines: list[str] = []
    verdicts: list[str] = []
    for model in models:
        lines.append(f"\n## {model.label}")
        lines += [f"- {note}" for note in model.notes]
        for size in sizes:
            measure(model, size, args.rounds, args.cpu_time, log, args.pause)
            table, ratios = report(model, size, peak)
            lines += table
            for key, target in {**TARGETS, **STEP_TARGETS}.items():
                if key not in ratios:
                    continue
                verdicts.append(f"{model.label.split()[0]} LR {size}: {key} {ratios[key]:.2f}x "
                                f"(target {target}x): "
                                f"{'MET' if ratios[key] >= target else 'NOT MET'}")
    header.append(f"load average at end {load_average()}")
    print("\n".join(header + lines + ["\n## Acceptance"] + [f"- {v}" for v in verdicts]))
    if workdir_context:
        workdir_context.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
