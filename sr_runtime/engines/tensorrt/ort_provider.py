"""ONNX Runtime's TensorRT execution provider (``--backend ort-tensorrt``): the same ONNX file,
with ORT's engine and timing caches, and the FP16 graph for strongly typed TensorRT 11."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from sr_runtime.description import LR_INPUT
from sr_runtime.engines.gpu_backends import preload_onnxruntime_gpu_libraries, require_onnx
from sr_runtime.engines.onnxruntime import OnnxRuntimeEngine, read_description
from sr_runtime.engines.tensorrt.cache import default_cache_dir
from sr_runtime.engines.tensorrt.profiles import (
    ShapeProfile,
    format_shape,
    input_profiles,
    runtime_profile,
)
from sr_runtime.paths import sha256_file, write_atomically


def _tensorrt_major() -> int | None:
    for dist in ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-cu13-libs",
                 "tensorrt-cu12-libs"):
        try:
            return int(importlib.metadata.version(dist).split(".")[0])
        except (importlib.metadata.PackageNotFoundError, ValueError):
            continue
    return None


def ort_tensorrt_providers(cache_root: Path, precision: str = "fp32",
                           profile: ShapeProfile | dict[str, ShapeProfile] | None = None,
                           tensorrt_major: int | None = None) -> list:
    """Provider list for ONNX Runtime's TensorRT EP (then CUDA, then CPU for leftovers).

    ``profile``: the ``lr`` profile, or every input's by name (``hr_static`` too for models
    with static inputs: ORT's ``trt_profile_*_shapes`` must name every dynamic input).

    FP32 by default: ORT's ``trt_fp16_enable`` (TensorRT 10) cannot keep the kelvin
    normalization in FP32, so FP16 there is opt-in; on TensorRT 11 the flag does not exist and
    FP16 comes from the converted ONNX graph instead (see :func:`load_ort_tensorrt`).
    """
    options: dict[str, object] = {
        "device_id": 0,
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(cache_root),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(cache_root),
    }
    if precision == "fp16" and (tensorrt_major or 10) < 11:
        options["trt_fp16_enable"] = True
    if profile is not None:
        profiles = profile if isinstance(profile, dict) else {LR_INPUT: profile}
        for key in ("min", "opt", "max"):
            options[f"trt_profile_{key}_shapes"] = ",".join(
                f"{name}:{format_shape(getattr(shapes, key))}"
                for name, shapes in profiles.items())
    return [("TensorrtExecutionProvider", options), ("CUDAExecutionProvider", {"device_id": 0}),
            "CPUExecutionProvider"]


def load_ort_tensorrt(path: Path, *, cache_dir: Path | None = None, precision: str = "fp32",
                      tile: tuple[int, int] | None = None,
                      batch: int | None = None) -> OnnxRuntimeEngine:
    """ONNX Runtime with the TensorRT execution provider (engine and timing caches enabled)."""
    preload_onnxruntime_gpu_libraries()
    path = Path(path)
    cache_root = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / \
        "ort-tensorrt"
    cache_root.mkdir(parents=True, exist_ok=True)
    major = _tensorrt_major()
    profile = None
    if tile is not None:
        description = read_description(path)
        profile = input_profiles(runtime_profile(description.input_channels, tile, batch),
                                 description)
    model = path
    if precision == "fp16" and (major or 10) >= 11:
        model = _fp16_model(path, cache_root)
    return OnnxRuntimeEngine(model, providers=ort_tensorrt_providers(cache_root, precision,
                                                                     profile, major),
                             name="ort-tensorrt")


def _fp16_model(path: Path, cache_root: Path) -> Path:
    """The FP16-with-FP32-islands graph for strongly typed TensorRT, cached by source hash."""
    onnx = require_onnx()  # before the converter, which needs it
    from sr_runtime.engines.tensorrt.fp16 import CONVERTER_VERSION, convert_to_fp16

    tag = sha256_file(path)[:16] + "-" + CONVERTER_VERSION.replace("/", "-")
    out = cache_root / f"{tag}.fp16.onnx"
    if not out.is_file():
        converted, _ = convert_to_fp16(onnx.load(str(path)))
        write_atomically(converted.SerializeToString(), out)
    return out
