#!/usr/bin/env python3
"""One command for a GPU machine: the GPU tests, then benchmarks, into ONE JSON report.

    python benchmarks/gpu_check.py [--out report.json]  # CUDA; default $OUT/gpu_report.json
    python benchmarks/gpu_check.py --allow-cpu          # dry run on CPU with tiny sizes

Backends (each skipped with its reason when absent): PyTorch CUDA FP32 eager NCHW (the demo's
way, TF32 off: the reference), FP32 NCHW with PyTorch's default TF32 convs, FP32 channels_last,
FP16 channels_last (autocast inside the network only: the kelvin normalization stays FP32), the
same captured as a CUDA graph with pinned host buffers, ONNX Runtime CUDA, TensorRT FP16 (built and
gated by sr_runtime.engines.tensorrt.build). Cases: 32x32 and 128x128 LR tiles and the global step
(512 x 1025 LR -> 4096 x 8200 network output; the HR grid is 4096 x 8193), for SRResNetConfig()
(64 channels, 16 blocks) with random weights and the shipped default model (models/*.ckpt).
Times are host-to-host medians (numpy in, numpy out, CUDA-synchronized) after warm-up; PyTorch
also reports device-only compute. Needs only torch + numpy (+ onnxruntime / tensorrt when
present); runs from a checkout without installing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.models import T2M_STATS_K  # noqa: E402  (the demo's normalization, in kelvin)


@dataclass(frozen=True)
class Case:
    name: str
    batch: int
    height: int
    width: int


CASES = ("tile32", "tile128", "global")
MODELS = ("demo", "shipped")
BACKENDS = ("torch-fp32-nchw", "torch-fp32-channels-last", "torch-fp16-channels-last",
            "torch-fp32-nchw-tf32", "torch-fp16-cl-cudagraph", "ort-cuda", "ort-cpu-dry-run",
            "tensorrt-fp16")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    default_out = Path(os.environ["OUT"]) / "gpu_report.json" if os.environ.get("OUT") \
        else Path("gpu_report.json")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=default_out, help="JSON report path")
    parser.add_argument("--allow-cpu", action="store_true",
                        help="dry run on CPU with tiny sizes (same code paths)")
    parser.add_argument("--skip-tests", action="store_true", help="do not run pytest -m gpu")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per measurement")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first")
    parser.add_argument("--cases", default="tile32,tile128,global",
                        help="comma-separated subset of tile32, tile128, global")
    parser.add_argument("--models", default="demo,shipped",
                        help="comma-separated subset of demo (64 ch / 16 blocks), shipped")
    parser.add_argument("--backends", default="",
                        help="comma-separated backend names to time (default: all available; "
                             "the torch-fp32-nchw reference always runs)")
    parser.add_argument("--budget", type=float, default=330.0,
                        help="seconds; later steps are skipped (and listed) once exceeded")
    args = parser.parse_args(argv)
    for option, known in (("cases", CASES), ("models", MODELS), ("backends", BACKENDS)):
        chosen = [name for name in getattr(args, option).split(",") if name]
        unknown = sorted(set(chosen) - set(known))
        if unknown:
            parser.error(f"--{option}: unknown {', '.join(unknown)}; choose from "
                         f"{', '.join(known)}")
        setattr(args, option, chosen)
    return args


class Report:
    def __init__(self, path: Path, budget: float) -> None:
        self.path = path
        self.start = time.perf_counter()
        self.budget = budget
        self.data: dict[str, object] = {"schema": "sr-edge-gpu-check/1", "skipped": [],
                                        "errors": [], "results": []}

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def over_budget(self, what: str, reserve: float = 0.0) -> bool:
        if self.elapsed() + reserve > self.budget:
            self.skip(what, f"time budget of {self.budget:.0f} s reached "
                            f"({self.elapsed():.0f} s used)")
            return True
        return False

    def skip(self, what: str, reason: str) -> None:
        print(f"skipped {what}: {reason}", flush=True)
        self.data["skipped"].append({"what": what, "reason": reason})  # type: ignore[union-attr]

    def error(self, what: str, exc: BaseException) -> None:
        text = str(exc).strip()
        line = f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"
        print(f"ERROR {what}: {line}", flush=True)
        self.data["errors"].append({"what": what, "error": line,  # type: ignore[union-attr]
                                    "traceback": traceback.format_exc()[-3000:]})

    def write(self) -> None:
        from sr_runtime.paths import write_atomically

        self.data["elapsed_s"] = round(self.elapsed(), 1)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(json.dumps(self.data, indent=2, default=str).encode(), self.path)


# ----------------------------------------------------------------------------- environment


def versions(torch) -> dict[str, object]:
    from sr_runtime.machine import machine_info

    found: dict[str, object] = {"python": platform.python_version(), "torch": torch.__version__,
                                "torch_cuda": torch.version.cuda, "numpy": np.__version__,
                                "platform": platform.platform(),
                                "host": machine_info().to_dict()}  # the CPU feeding the GPU
    if torch.backends.cudnn.is_available():
        found["cudnn"] = torch.backends.cudnn.version()
    for module in ("onnxruntime", "onnx", "tensorrt"):
        try:
            found[module] = __import__(module).__version__
        except Exception as exc:
            found[module] = f"absent ({type(exc).__name__})"
    try:
        from sr_runtime.engines.gpu_backends import probe_cuda

        device = probe_cuda()
        found["cuda_driver"] = device if isinstance(device, str) else device.driver_version
    except Exception as exc:
        found["cuda_driver"] = f"unknown ({exc})"
    return found


def run_gpu_tests(report: Report, timeout: float) -> None:
    """pytest -m gpu over tests/; collection errors of unrelated modules are only listed."""
    with tempfile.TemporaryDirectory() as scratch:
        junit = Path(scratch) / "junit.xml"
        command = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-rs", "-p",
                   "no:cacheprovider", "--continue-on-collection-errors",
                   f"--junitxml={junit}", str(ROOT / "tests")]
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        start = time.perf_counter()
        try:
            done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            report.data["tests"] = {"status": "timeout", "timeout_s": timeout}
            return
        result: dict[str, object] = {"returncode": done.returncode,
                                     "seconds": round(time.perf_counter() - start, 1),
                                     "output_tail": (done.stdout + done.stderr)[-4000:]}
        failed, collection_errors, counts = [], [], {"passed": 0, "failed": 0, "skipped": 0}
        if junit.is_file():
            for case in ET.parse(junit).getroot().iter("testcase"):
                name = (f"{case.get('classname')}::{case.get('name')}"
                        if case.get("classname") else str(case.get("name")))
                if case.find("failure") is not None:
                    failed.append(name)
                    counts["failed"] += 1
                elif case.find("error") is not None:  # classname "": a module did not import
                    (failed if case.get("classname") else collection_errors).append(name)
                elif case.find("skipped") is not None:
                    counts["skipped"] += 1
                else:
                    counts["passed"] += 1
        result.update(counts, failed_tests=failed, collection_errors=collection_errors,
                      status="failed" if failed else "ok")
        report.data["tests"] = result
        print(f"gpu tests: {result['status']} ({counts})", flush=True)


# ----------------------------------------------------------------------------- models


def random_model(config, seed: int = 0):
    """The demo's architecture (or the dry run's tiny one) with seeded random weights."""
    from benchmarks.models import ModelSpec, random_checkpoint

    spec = ModelSpec(f"random-{config.n_channels}ch-{config.n_blocks}b",
                     n_channels=config.n_channels, n_blocks=config.n_blocks, seed=seed)
    return random_checkpoint(spec)


def shipped_models() -> list[Path]:
    """The committed default checkpoint (models/), and any under sr_runtime/data."""
    found = [p for folder in (ROOT / "models", ROOT / "sr_runtime" / "data")
             for p in folder.glob("**/*") if p.suffix in (".ckpt", ".pt")]
    return sorted(found)


# ----------------------------------------------------------------------------- timing


MAX_SECONDS_PER_MEASUREMENT = 8.0  # slow baselines (seconds per global step) stop early
MIN_TIMED_RUNS = 3
SLOW_MS = 1000.0  # above this, device-only compute is not timed separately


def time_host(fn, inputs: list[np.ndarray], warmup: int, repeats: int, sync,
              max_seconds: float | None = None) -> list[float]:
    """Milliseconds per call; at least MIN_TIMED_RUNS runs, fewer than ``repeats`` when slow."""
    limit = MAX_SECONDS_PER_MEASUREMENT if max_seconds is None else max_seconds
    start_all = time.perf_counter()
    for i in range(warmup):
        fn(inputs[i % len(inputs)])
        if time.perf_counter() - start_all > limit / 4:
            break
    sync()
    times: list[float] = []
    start_all = time.perf_counter()
    for i in range(repeats):
        start = time.perf_counter()
        fn(inputs[i % len(inputs)])
        sync()
        times.append((time.perf_counter() - start) * 1e3)
        if len(times) >= MIN_TIMED_RUNS and time.perf_counter() - start_all > limit:
            break
    return times


def accuracy(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    diff = candidate.astype(np.float64) - reference.astype(np.float64)
    finite = bool(np.isfinite(diff).all())
    return {"rmse_k": float(np.sqrt(np.mean(diff**2))) if finite else float("inf"),
            "max_abs_k": float(np.max(np.abs(diff))) if finite else float("inf"),
            "nonfinite": int((~np.isfinite(candidate)).sum())}


def tiled(fn, lr: np.ndarray, scale: int, core: int, halo: int) -> np.ndarray:
    """Run ``fn`` over overlapping tiles and keep each tile's core: equal to whole-field output."""
    n, c, h, w = lr.shape
    out = None
    for y0 in range(0, h, core):
        for x0 in range(0, w, core):
            ya, xa = max(0, y0 - halo), max(0, x0 - halo)
            yb, xb = min(h, y0 + core + halo), min(w, x0 + core + halo)
            part = fn(np.ascontiguousarray(lr[:, :, ya:yb, xa:xb]))
            if out is None:
                out = np.empty((n, part.shape[1], h * scale, w * scale), dtype=part.dtype)
            y1, x1 = min(h, y0 + core), min(w, x0 + core)
            out[:, :, y0 * scale:y1 * scale, x0 * scale:x1 * scale] = part[
                :, :, (y0 - ya) * scale:(y1 - ya) * scale, (x0 - xa) * scale:(x1 - xa) * scale]
    return out  # type: ignore[return-value]


# ----------------------------------------------------------------------------- backends


class TorchBackend:
    def __init__(self, name: str, loaded, device: str, channels_last: bool, fp16: bool,
                 tf32: bool = False) -> None:
        import torch

        from sr_export.onnx_export import fold_batchnorm

        self.name, self.torch, self.device, self.fp16, self.tf32 = name, torch, device, fp16, tf32
        self.autocast_cache = True  # CUDA-graph capture needs it off (PyTorch's CUDA graph docs)
        self.format = torch.channels_last if channels_last else torch.contiguous_format
        self.network = fold_batchnorm(loaded.model).to(device).to(memory_format=self.format)
        variables = loaded.description.variables

        def buffer(values: list[float]):
            return torch.tensor(values, dtype=torch.float32, device=device).reshape(1, -1, 1, 1)

        self.lr_mean = buffer([v.lr_mean for v in variables])
        self.lr_std = buffer([v.lr_std for v in variables])
        self.hr_mean = buffer([v.hr_mean for v in variables])
        self.hr_std = buffer([v.hr_std for v in variables])

    def forward(self, x):
        torch = self.torch
        torch.backends.cudnn.allow_tf32 = self.tf32  # PyTorch's own default is True
        normalized = ((x - self.lr_mean) / self.lr_std).contiguous(memory_format=self.format)
        if self.fp16:  # FP16 inside the network only; kelvin in and out stay FP32
            with torch.autocast(device_type=self.device, dtype=torch.float16,
                                cache_enabled=self.autocast_cache):
                y = self.network(normalized)
            y = y.float()
        else:
            y = self.network(normalized)
        return y * self.hr_std + self.hr_mean

    def __call__(self, lr: np.ndarray) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            x = torch.from_numpy(lr).to(self.device, non_blocking=False)
            return self.forward(x).contiguous().cpu().numpy()

    def compute_ms(self, lr: np.ndarray, warmup: int, repeats: int, sync) -> float:
        torch = self.torch
        with torch.inference_mode():
            x = torch.from_numpy(lr).to(self.device)
            times = time_host(lambda _: self.forward(x), [lr], warmup, repeats, sync)
        return statistics.median(times)


class CudaGraphBackend:
    """A TorchBackend captured once per input shape as a CUDA graph, with pinned host buffers.

    What a hand-tuned PyTorch deployment can reach without TensorRT: no Python or launch
    overhead per layer, and page-locked copies in and out. The host output buffer is reused:
    a result stays valid until the next call.
    """

    def __init__(self, inner: TorchBackend) -> None:
        self.inner, self.torch = inner, inner.torch
        inner.autocast_cache = False
        self.graphs: dict[tuple[int, ...], tuple[object, object, object, object, object]] = {}

    def _capture(self, shape: tuple[int, ...]):
        torch = self.torch
        host_in = torch.empty(shape, dtype=torch.float32, pin_memory=True)
        device_in = torch.zeros(shape, dtype=torch.float32, device="cuda")
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.inference_mode(), torch.cuda.stream(side):
            for _ in range(2):  # cuDNN autotuning and allocator warm-up outside the graph
                self.inner.forward(device_in)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(graph):
            device_out = self.inner.forward(device_in)
        host_out = torch.empty(device_out.shape, dtype=torch.float32, pin_memory=True)
        return graph, host_in, device_in, device_out, host_out

    def replay(self, shape: tuple[int, ...]) -> None:
        self.graphs[shape][0].replay()  # type: ignore[attr-defined]

    def __call__(self, lr: np.ndarray) -> np.ndarray:
        shape = tuple(lr.shape)
        if shape not in self.graphs:
            self.graphs[shape] = self._capture(shape)
        graph, host_in, device_in, device_out, host_out = self.graphs[shape]
        host_in.numpy()[...] = lr  # type: ignore[attr-defined]
        device_in.copy_(host_in, non_blocking=True)  # type: ignore[attr-defined]
        graph.replay()  # type: ignore[attr-defined]
        host_out.copy_(device_out, non_blocking=True)  # type: ignore[attr-defined]
        self.torch.cuda.current_stream().synchronize()
        return host_out.numpy()  # type: ignore[attr-defined]

    def compute_ms(self, lr: np.ndarray, warmup: int, repeats: int, sync) -> float:
        shape = tuple(lr.shape)
        self(lr)
        times = time_host(lambda _: self.replay(shape), [lr], warmup, repeats, sync)
        return statistics.median(times)

    def close(self) -> None:
        self.graphs.clear()


def onnx_for(loaded, folder: Path) -> Path:
    from sr_export.onnx_export import export_onnx

    path = folder / "model.onnx"
    if not path.is_file():
        export_onnx(loaded, path)
    return path


def ort_session(onnx_path: Path, provider: str):
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=[provider, "CPUExecutionProvider"])
    if session.get_providers()[0] != provider:
        raise RuntimeError(f"{provider} did not load (active: {session.get_providers()})")
    return lambda lr: session.run(None, {"lr": lr})[0]


def tensorrt_engine(onnx_path: Path, loaded, case: Case, reference, cache: Path):
    """A static FP16 engine for the case's shape, gated against the FP32 reference backend."""
    from sr_runtime.engines.tensorrt.build import build_environment
    from sr_runtime.engines.tensorrt.builder import build_verified, choose_recipes
    from sr_runtime.engines.tensorrt.profiles import ShapeProfile
    from sr_runtime.engines.tensorrt.runner import TensorRTEngine

    environment = build_environment()
    shape = (case.batch, loaded.description.input_channels, case.height, case.width)
    build = build_verified(onnx_path, loaded.description, ShapeProfile(shape, shape, shape),
                           reference=reference, reference_name="PyTorch CUDA FP32",
                           environment=environment,
                           recipes=choose_recipes(environment.tensorrt_version),
                           timing_cache=cache / "timing.cache", report=lambda _: None)
    engine = TensorRTEngine(build.plan, loaded.description)
    return engine, build


# ----------------------------------------------------------------------------- main loop


def bench_model(label: str, loaded, cases: list[Case], device: str, args, report: Report,
                scratch: Path) -> None:
    import torch

    from sr_runtime.engines.gpu_backends import onnxruntime_provider_reason, tensorrt_reason
    from sr_runtime.synthetic import sample_input as sample_tiles

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    scale = loaded.description.scale
    halo = loaded.description.halo_lr
    backends = {
        "torch-fp32-nchw": TorchBackend("torch-fp32-nchw", loaded, device, False, False),
        "torch-fp32-channels-last": TorchBackend("torch-fp32-cl", loaded, device, True, False),
        "torch-fp16-channels-last": TorchBackend("torch-fp16-cl", loaded, device, True, True),
    }
    if device == "cuda":  # PyTorch's default FP32 convs on Ampere and later use TF32
        backends["torch-fp32-nchw-tf32"] = TorchBackend("torch-fp32-nchw-tf32", loaded, device,
                                                        False, False, tf32=True)
        backends["torch-fp16-cl-cudagraph"] = CudaGraphBackend(
            TorchBackend("torch-fp16-cl-graph", loaded, device, True, True))
    else:
        report.skip(f"{label} torch TF32 and CUDA-graph backends", "dry run on CPU")
    onnx_path = None
    if device == "cuda":
        ort_name, provider = "ort-cuda", "CUDAExecutionProvider"
        ort_reason = onnxruntime_provider_reason(provider)
        trt_reason = tensorrt_reason()
    else:  # the dry run takes the same export/session path with the CPU provider
        ort_name, provider, ort_reason = "ort-cpu-dry-run", "CPUExecutionProvider", None
        trt_reason = "dry run on CPU"
    if ort_reason is None or trt_reason is None:
        (scratch / label).mkdir(parents=True, exist_ok=True)
        onnx_path = onnx_for(loaded, scratch / label)
    if ort_reason is None:
        try:
            backends[ort_name] = ort_session(onnx_path, provider)  # type: ignore[arg-type]
        except Exception as exc:
            report.error(f"{label} {ort_name}", exc)
    else:
        report.skip(f"{label} ort-cuda", ort_reason)
    if trt_reason is not None:
        report.skip(f"{label} tensorrt", trt_reason)

    reference = backends["torch-fp32-nchw"]
    for case in cases:
        if report.over_budget(f"{label} {case.name}"):
            continue
        inputs = [sample_tiles(loaded.description, (case.height, case.width), case.batch, seed)
                  for seed in (11, 12)]
        per_case = dict(backends)
        if trt_reason is None and not report.over_budget(f"{label} {case.name} tensorrt",
                                                         reserve=60):
            try:
                engine, build = tensorrt_engine(onnx_path, loaded, case, reference,  # type: ignore[arg-type]
                                                scratch)
                per_case["tensorrt-fp16"] = engine
                report.data.setdefault("tensorrt_builds", []).append(  # type: ignore[union-attr]
                    {"model": label, "case": case.name, "build_s": round(build.build_seconds, 1),
                     "precision": build.recipe.precision, "gate": build.report.to_dict()})
            except Exception as exc:
                report.error(f"{label} {case.name} tensorrt", exc)
        expected = None
        for name, backend in per_case.items():
            if args.backends and name not in args.backends and name != "torch-fp32-nchw":
                continue  # the FP32 NCHW reference always runs: accuracy and ratios need it
            if name != "torch-fp32-nchw" and report.over_budget(f"{label} {case.name} {name}"):
                continue
            fn = backend.infer if hasattr(backend, "infer") else backend
            whole = True
            try:
                try:
                    out = fn(inputs[0])
                except torch.cuda.OutOfMemoryError:
                    torch.cuda.empty_cache()
                    whole = False
                    fn = (lambda f: lambda lr: tiled(f, lr, scale, 256, halo))(fn)
                    out = fn(inputs[0])
                if expected is None:
                    expected = out  # torch-fp32-nchw comes first
                error = accuracy(expected, out)  # before timing: some backends reuse buffers
                hr_shape = list(out.shape)
                times = time_host(fn, inputs, args.warmup, args.repeats, sync)
                median = statistics.median(times)
                hr_pixels = hr_shape[0] * hr_shape[2] * hr_shape[3]
                row = {"model": label, "case": case.name, "backend": name,
                       "lr_shape": list(inputs[0].shape), "hr_shape": hr_shape,
                       "whole_field": whole, "ms_median": round(median, 3),
                       "ms_min": round(min(times), 3), "runs": len(times),
                       "hr_mpix_per_s": round(hr_pixels / 1e6 / (median / 1e3), 3),
                       **error}
                if isinstance(backend, (TorchBackend, CudaGraphBackend)) and whole \
                        and median < SLOW_MS:  # seconds per call: the copies do not matter
                    row["compute_ms_median"] = round(backend.compute_ms(
                        inputs[0], args.warmup, args.repeats, sync), 3)
                report.data["results"].append(row)  # type: ignore[union-attr]
                report.write()  # a killed run still leaves every finished row
                print(f"{label:12s} {case.name:8s} {name:26s} {median:10.2f} ms "
                      f"{row['hr_mpix_per_s']:9.2f} HR Mpix/s  rmse {row['rmse_k']:.2e} K",
                      flush=True)
            except Exception as exc:
                report.error(f"{label} {case.name} {name}", exc)
            finally:
                if hasattr(backend, "close") and name == "tensorrt-fp16":
                    backend.close()
        if device == "cuda":
            torch.cuda.empty_cache()


RATIO_BASES = {"vs_torch_fp32_eager": "torch-fp32-nchw",
               "vs_torch_fp32_eager_tf32": "torch-fp32-nchw-tf32",
               "vs_torch_fp16_channels_last": "torch-fp16-channels-last"}


def speed_ratios(results: list[dict]) -> list[dict]:
    """Each backend's speed-up over the PyTorch baselines of the same model and case."""
    times = {(r["model"], r["case"], r["backend"]): r["ms_median"] for r in results}
    ratios = []
    for r in results:
        row = {"model": r["model"], "case": r["case"], "backend": r["backend"]}
        for key, base in RATIO_BASES.items():
            ref = times.get((r["model"], r["case"], base))
            if ref:
                row[key] = round(ref / r["ms_median"], 2)
        ratios.append(row)
    return ratios


def targets(results: list[dict]) -> list[dict]:
    """The issue's H100 targets for TensorRT FP16, met or not, or why they were not measured."""
    ratios = {(r["model"], r["case"], r["backend"]): r for r in speed_ratios(results)}
    times = {(r["model"], r["case"], r["backend"]): r["ms_median"] for r in results}
    checks = []
    for model, case in sorted({(r["model"], r["case"]) for r in results}):
        trt = ratios.get((model, case, "tensorrt-fp16"))
        for key, floor in (("vs_torch_fp32_eager", 4.0), ("vs_torch_fp16_channels_last", 1.5)):
            value = trt.get(key) if trt else None
            checks.append({"model": model, "case": case, "target": f"tensorrt-fp16 {key}",
                           "floor": floor, "value": value,
                           "met": None if value is None else value >= floor})
        if case == "global":
            ms = times.get((model, case, "tensorrt-fp16"))
            checks.append({"model": model, "case": case, "target": "tensorrt-fp16 global step ms",
                           "ceiling": 50.0, "value": ms, "met": None if ms is None else ms < 50})
    return checks


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import torch
    except ImportError:
        print("error: PyTorch is required: pip install torch (or 'sr-edge[export]')",
              file=sys.stderr)
        return 2
    if not torch.cuda.is_available() and not args.allow_cpu:
        print("error: no CUDA GPU visible to PyTorch (torch.cuda.is_available() is False); run "
              "this on a GPU machine, or pass --allow-cpu for a dry run", file=sys.stderr)
        return 2
    device = "cuda" if torch.cuda.is_available() and not args.allow_cpu else "cpu"
    report = Report(args.out, args.budget)

    from sr_export.checkpoints import load_checkpoint
    from sr_export.model import SRResNetConfig

    if device == "cpu":
        args.repeats, args.warmup = min(args.repeats, 2), min(args.warmup, 1)
    torch.backends.cudnn.benchmark = device == "cuda"
    torch.backends.cudnn.allow_tf32 = False  # "FP32" means FP32: TF32 convs would be 10-bit
    torch.backends.cuda.matmul.allow_tf32 = False
    report.data.update(device=torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
                       mode="gpu" if device == "cuda" else "dry-run-cpu",
                       versions=versions(torch),
                       settings={"warmup": args.warmup, "repeats": args.repeats,
                                 "tf32": False, "cudnn_benchmark": device == "cuda",
                                 "timing": "host-to-host median, CUDA-synchronized",
                                 "normalization_k": T2M_STATS_K})
    if device == "cuda":
        major, minor = torch.cuda.get_device_capability(0)
        report.data["compute_capability"] = f"{major}.{minor}"
    if args.skip_tests:
        report.skip("gpu tests", "--skip-tests")
    else:
        run_gpu_tests(report, timeout=120 if device == "cuda" else 300)

    if device == "cuda":
        config = SRResNetConfig()
        cases = [Case("tile32", 1, 32, 32), Case("tile128", 1, 128, 128),
                 Case("global", 1, 512, 1025)]
    else:  # same paths, tiny sizes
        config = SRResNetConfig(n_channels=8, n_blocks=1)
        cases = [Case("tile32", 1, 8, 8), Case("tile128", 1, 16, 16), Case("global", 1, 24, 41)]
    cases = [c for c in cases if c.name in args.cases]
    report.data["cases"] = [c.__dict__ for c in cases]
    models = []
    if "demo" in args.models:
        models.append((f"demo-random-{config.n_channels}ch-{config.n_blocks}b",
                       random_model(config)))
    shipped = shipped_models() if "shipped" in args.models else []
    if "shipped" in args.models and not shipped:
        report.skip("shipped default model", "models/ holds no .ckpt/.pt")
    for path in shipped:
        try:
            models.append((f"shipped-{path.stem}", load_checkpoint(path)))
        except Exception as exc:
            report.error(f"load {path.name}", exc)
    report.data["models"] = [{"label": label, "arch": dict(m.description.arch_params)}
                             for label, m in models]

    with tempfile.TemporaryDirectory(prefix="sr-edge-gpu-check-") as scratch:
        for label, loaded in models:
            try:
                bench_model(label, loaded, cases, device, args, report, Path(scratch))
            except Exception as exc:
                report.error(label, exc)
            report.write()
    report.data["speed_ratios"] = speed_ratios(report.data["results"])  # type: ignore[arg-type]
    report.data["targets"] = targets(report.data["results"])  # type: ignore[arg-type]
    report.write()
    print(f"wrote {args.out} ({report.elapsed():.0f} s)", flush=True)
    tests_failed = report.data.get("tests", {}).get("status") not in (None, "ok")  # type: ignore[union-attr]
    return 1 if report.data["errors"] or tests_failed else 0


if __name__ == "__main__":
    sys.exit(main())
