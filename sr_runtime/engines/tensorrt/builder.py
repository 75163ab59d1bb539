"""ONNX -> TensorRT plan for TensorRT 10 and 11, retried per precision recipe until one passes.

Precision recipes (chosen from the TensorRT version):

- TensorRT 10: ``BuilderFlag.FP16`` with ``OBEY_PRECISION_CONSTRAINTS`` pinning the input
  normalization (Sub, Div) and output denormalization (Mul, Add) to FP32: the graph takes physical
  kelvin (~280 K), where FP16 values are 0.25 K apart.
- TensorRT 11 (strongly typed only; the FP16 flag is gone): the ONNX graph is converted to FP16
  first, keeping the same nodes in FP32 (:mod:`sr_runtime.engines.tensorrt.fp16`), and built
  strongly typed.

If the gate (:mod:`sr_runtime.engines.tensorrt.gate`) fails on RMSE, the build is retried with
the final convolution in FP32 as well. tensorrt and onnx are imported only when building.
"""

from __future__ import annotations

import re
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sr_runtime.description import HR_STATIC_INPUT, LR_INPUT, ModelDescription
from sr_runtime.engines.gpu_backends import require_tensorrt
from sr_runtime.engines.tensorrt.fingerprint import BuildEnvironment, EngineFingerprint
from sr_runtime.engines.tensorrt.gate import (
    RMSE_LIMIT_K,
    GateReport,
    Reference,
    evaluate_gate,
    gate_inputs,
    run_reference,
)
from sr_runtime.engines.tensorrt.profiles import ShapeProfile, input_profiles
from sr_runtime.engines.tensorrt.runner import TensorRTEngine, make_logger
from sr_runtime.errors import AccuracyGateError, EngineUnavailableError, SrEdgeError, UsageError
from sr_runtime.paths import sha256_file, write_atomically

MIN_TENSORRT_MAJOR = 10

Report = Callable[[str], None]


class EngineBuildError(SrEdgeError):
    """TensorRT could not parse the model or build an engine for it."""


@dataclass(frozen=True)
class PrecisionRecipe:
    """How precision is obtained on a given TensorRT: the string lands in the fingerprint."""

    precision: str
    tensorrt_major: int
    builder_fp16_flag: bool = False  # TensorRT 10: BuilderFlag.FP16 + pinned FP32 layers
    onnx_fp16: bool = False  # TensorRT 11: convert the ONNX graph to FP16 with FP32 islands
    strongly_typed: bool = False
    keep_final_conv: bool = False


def tensorrt_major(version: str) -> int:
    """Major version from ``tensorrt.__version__`` ("10.11.0.33" -> 10); < 10 is refused."""
    match = re.match(r"\s*(\d+)", str(version))
    if not match:
        raise EngineUnavailableError(f"cannot read the TensorRT version {version!r}")
    major = int(match.group(1))
    if major < MIN_TENSORRT_MAJOR:
        raise EngineUnavailableError(f"TensorRT {version} is too old: sr-edge builds with "
                                     "TensorRT 10 or 11 (pip install -U 'tensorrt>=10')")
    return major


def choose_recipes(tensorrt_version: str, precision: str = "fp16") -> list[PrecisionRecipe]:
    """Recipes to try in order: FP16 with FP32 normalization, then also the final conv FP32."""
    major = tensorrt_major(tensorrt_version)
    if precision == "fp32":
        return [PrecisionRecipe("fp32", major, strongly_typed=major >= 11)]
    if precision != "fp16":
        raise UsageError(f"precision must be fp16 or fp32, not {precision!r}")
    if major >= 11:
        from sr_runtime.engines.tensorrt.fp16 import CONVERTER_VERSION

        base = f"fp16:trt{major}-strongly-typed:{CONVERTER_VERSION}:fp32-io-normalization"
        return [PrecisionRecipe(base, major, onnx_fp16=True, strongly_typed=True),
                PrecisionRecipe(base + "+final-conv", major, onnx_fp16=True, strongly_typed=True,
                                keep_final_conv=True)]
    base = f"fp16:trt{major}-builder-flag:obey-precision-constraints:fp32-io-normalization"
    return [PrecisionRecipe(base, major, builder_fp16_flag=True),
            PrecisionRecipe(base + "+final-conv", major, builder_fp16_flag=True,
                            keep_final_conv=True)]


def _make_progress_monitor(trt, report: Report, cancel: threading.Event):
    class _Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._phases: dict[str, tuple[int, int]] = {}

        def phase_start(self, phase_name, parent_phase, num_steps) -> None:
            self._phases[phase_name] = (0, int(num_steps))
            self._show(phase_name)

        def step_complete(self, phase_name, step) -> bool:
            total = self._phases.get(phase_name, (0, 0))[1]
            self._phases[phase_name] = (int(step) + 1, total)
            self._show(phase_name)
            return not cancel.is_set()

        def phase_finish(self, phase_name) -> None:
            self._phases.pop(phase_name, None)

        def _show(self, phase: str) -> None:
            done, total = self._phases.get(phase, (0, 0))
            report(f"building TensorRT engine: {phase} {done}/{total}")

    return _Monitor()


def _fp32_tensor_names(onnx_path: Path, keep_final_conv: bool) -> set[str]:
    """Output tensor names of the nodes to pin to FP32 (TensorRT keeps ONNX tensor names)."""
    import onnx

    from sr_runtime.engines.tensorrt.fp16 import find_fp32_islands

    model = onnx.load(str(onnx_path), load_external_data=False)
    islands = find_fp32_islands(model, keep_final_conv)
    return {out for node in model.graph.node if node.name in islands.nodes for out in node.output}


def _pin_fp32_layers(trt, network, names: set[str], report: Report) -> None:
    found: set[str] = set()
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        outputs = [layer.get_output(j) for j in range(layer.num_outputs)]
        if any(out.name in names for out in outputs):
            layer.precision = trt.float32
            for j in range(layer.num_outputs):
                layer.set_output_type(j, trt.float32)
            found.update(out.name for out in outputs)
    if not found:
        raise EngineBuildError("found none of the normalization layers "
                               f"({', '.join(sorted(names))}) in the TensorRT network; this is "
                               "a bug in sr-edge, please report it with your TensorRT version")
    missing = names - found
    if missing:
        report(f"warning: no TensorRT layer produces {', '.join(sorted(missing))}; the "
               "accuracy gate decides")


def _write_fp16_onnx(onnx_path: Path, folder: Path, keep_final_conv: bool) -> Path:
    import onnx

    from sr_runtime.engines.tensorrt.fp16 import convert_to_fp16

    converted, _ = convert_to_fp16(onnx.load(str(onnx_path)), keep_final_conv=keep_final_conv)
    out = folder / "model.fp16.onnx"
    large = converted.ByteSize() > 1_500_000_000
    onnx.save(converted, str(out), save_as_external_data=large)
    return out


def build_plan(trt, onnx_path: Path, recipe: PrecisionRecipe,
               profile: ShapeProfile | dict[str, ShapeProfile], *,
               workspace_mb: int | None = None, timing_cache: Path | None = None,
               report: Report = lambda _: None, notice: Report | None = None) -> bytes:
    """One TensorRT build (no accuracy check). Parses from the file path (external data).

    ``profile``: the ``lr`` profile, or every input's profile by name
    (:func:`~sr_runtime.engines.tensorrt.profiles.input_profiles`: ``hr_static`` too for models
    with static inputs). ``report`` gets transient progress lines, ``notice`` the warnings
    worth keeping.
    """
    profiles = profile if isinstance(profile, dict) else {LR_INPUT: profile}
    profile = profiles[LR_INPUT]
    notice = notice or report
    logger = make_logger(trt)
    cancel = threading.Event()
    with tempfile.TemporaryDirectory(prefix="sr-edge-trt-") as scratch:
        source = (_write_fp16_onnx(onnx_path, Path(scratch), recipe.keep_final_conv)
                  if recipe.onnx_fp16 else Path(onnx_path))
        builder = trt.Builder(logger)
        flags = 0
        strongly = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
        if recipe.strongly_typed and strongly is not None:
            flags |= 1 << int(strongly)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(source)):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)] or logger.errors
            raise EngineBuildError(f"TensorRT {trt.__version__} cannot parse {onnx_path}: "
                                   + "; ".join(errors[:3]))
        config = builder.create_builder_config()
        if workspace_mb:
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
        if recipe.builder_fp16_flag:
            config.set_flag(trt.BuilderFlag.FP16)
            config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
            _pin_fp32_layers(trt, network, _fp32_tensor_names(onnx_path, recipe.keep_final_conv),
                             notice)
        optimization = builder.create_optimization_profile()
        for name, shapes in profiles.items():  # one profile covering every input
            optimization.set_shape(name, shapes.min, shapes.opt, shapes.max)
        config.add_optimization_profile(optimization)

        cache = None
        if timing_cache is not None:
            data = timing_cache.read_bytes() if timing_cache.is_file() else b""
            cache = config.create_timing_cache(data)
            if not config.set_timing_cache(cache, False):
                notice(f"warning: timing cache {timing_cache} is from another TensorRT or GPU; "
                       "starting a new one")
                cache = config.create_timing_cache(b"")
                config.set_timing_cache(cache, False)
        monitor = None  # referenced here so it lives as long as the build
        if hasattr(trt, "IProgressMonitor"):
            monitor = _make_progress_monitor(trt, report, cancel)
            config.progress_monitor = monitor
        else:
            report("building TensorRT engine (this TensorRT reports no progress)")
        try:
            plan = builder.build_serialized_network(network, config)
            del monitor
        except KeyboardInterrupt:
            cancel.set()
            raise
        if plan is None:
            detail = "; ".join(logger.errors[-3:]) or "no details from TensorRT"
            raise EngineBuildError(f"TensorRT could not build an engine for {onnx_path} with "
                                   f"profile {profile.describe()} ({detail}); try a smaller "
                                   "--max shape or a larger --workspace")
        if timing_cache is not None:
            serialized = config.get_timing_cache().serialize()
            timing_cache.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(bytes(serialized), timing_cache)
        return bytes(plan)


@dataclass(frozen=True)
class VerifiedBuild:
    plan: bytes
    fingerprint: EngineFingerprint
    recipe: PrecisionRecipe
    report: GateReport
    build_seconds: float


def build_verified(onnx_path: Path, description: ModelDescription, profile: ShapeProfile, *,
                   reference: Reference, reference_name: str, environment: BuildEnvironment,
                   recipes: Sequence[PrecisionRecipe], workspace_mb: int | None = None,
                   timing_cache: Path | None = None, rmse_limit: float = RMSE_LIMIT_K,
                   report: Report = lambda _: None,
                   notice: Report | None = None) -> VerifiedBuild:
    """Build with each recipe in turn until one passes the gate; raise if none does."""
    notice = notice or report
    trt = require_tensorrt()
    onnx_sha = sha256_file(onnx_path)
    feeds = gate_inputs(description, profile)
    expected = [run_reference(reference, feed) for feed in feeds]
    profiles = input_profiles(profile, description)
    failures = []
    for attempt, recipe in enumerate(recipes, 1):
        start = time.perf_counter()
        plan = build_plan(trt, onnx_path, recipe, profiles, workspace_mb=workspace_mb,
                          timing_cache=timing_cache, report=report, notice=notice)
        seconds = time.perf_counter() - start
        report(f"checking the engine ({recipe.precision}) against {reference_name}")
        engine = TensorRTEngine(plan, description, origin="the new engine")
        try:
            pairs = [(ref, engine.infer(feed[LR_INPUT], **{k: v for k, v in feed.items()
                                                           if k == HR_STATIC_INPUT}))
                     for ref, feed in zip(expected, feeds, strict=True)]
        finally:
            engine.close()
        gate = evaluate_gate(pairs, reference_name, rmse_limit)
        if gate.passed:
            fingerprint = EngineFingerprint.create(onnx_sha, environment, profile,
                                                   recipe.precision)
            return VerifiedBuild(plan, fingerprint, recipe, gate, seconds)
        failures.append(f"{recipe.precision}: {gate.summary(description.variables[0].units)}")
        if gate.metrics.nonfinite:
            break
        if attempt < len(recipes):
            notice(f"{recipe.precision} failed the accuracy gate ({gate.reason}); trying "
                   f"{recipes[attempt].precision}")
    raise AccuracyGateError("no TensorRT engine passed the accuracy gate, nothing was written: "
                            + " | ".join(failures))

