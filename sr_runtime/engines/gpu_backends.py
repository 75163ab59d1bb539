"""GPU backends (TensorRT, ONNX Runtime TensorRT/CUDA execution providers), registered lazily.

Nothing here imports tensorrt, cuda-python or torch at import time: each backend's ``available``
probes on demand and returns a precise reason when it cannot run. The GPU itself is found through
the CUDA driver library (``libcuda``) with ctypes, which works without any Python CUDA package.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib.metadata
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sr_runtime.engines.base import Engine, EngineSpec
from sr_runtime.errors import EngineUnavailableError

GPU_EXTRA = "pip install 'sr-edge[gpu]'"
ORT_GPU_FIX = ("install onnxruntime-gpu in place of onnxruntime: pip install 'sr-edge[gpu]' && "
               "pip uninstall -y onnxruntime && pip install --force-reinstall --no-deps "
               "onnxruntime-gpu")
NO_GPU = "no NVIDIA GPU visible (nvidia-smi / CUDA driver not found)"

_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75
_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76
_CUDA_ERRORS = {100: "CUDA_ERROR_NO_DEVICE", 999: "CUDA_ERROR_UNKNOWN",
                35: "CUDA_ERROR_INSUFFICIENT_DRIVER", 3: "CUDA_ERROR_NOT_INITIALIZED",
                101: "CUDA_ERROR_INVALID_DEVICE", 304: "CUDA_ERROR_OPERATING_SYSTEM"}


@dataclass(frozen=True)
class CudaDevice:
    """The GPU engines are built for: its name and compute capability ("9.0")."""

    index: int
    name: str
    compute_capability: str
    driver_version: str


def _driver_library() -> ctypes.CDLL | None:
    names = ["nvcuda.dll"] if sys.platform == "win32" else ["libcuda.so.1", "libcuda.so"]
    for name in names:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


@functools.lru_cache(maxsize=1)
def probe_cuda() -> CudaDevice | str:
    """Device 0 through the CUDA driver API, or the reason no GPU can be used."""
    lib = _driver_library()
    if lib is None:
        return NO_GPU
    status = lib.cuInit(0)
    if status != 0:
        label = _CUDA_ERRORS.get(status, f"error {status}")
        if status == 100:
            return f"no NVIDIA GPU visible (the CUDA driver reports {label})"
        return (f"the CUDA driver failed to initialize ({label}); check `nvidia-smi`, and start "
                "containers with `--gpus all`")
    count = ctypes.c_int(0)
    if lib.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value < 1:
        return NO_GPU
    device = ctypes.c_int(0)
    lib.cuDeviceGet(ctypes.byref(device), 0)
    name = ctypes.create_string_buffer(256)
    lib.cuDeviceGetName(name, 256, device)
    major, minor, version = ctypes.c_int(0), ctypes.c_int(0), ctypes.c_int(0)
    lib.cuDeviceGetAttribute(ctypes.byref(major), _CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
                             device)
    lib.cuDeviceGetAttribute(ctypes.byref(minor), _CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
                             device)
    lib.cuDriverGetVersion(ctypes.byref(version))
    driver = f"{version.value // 1000}.{version.value % 1000 // 10}"
    return CudaDevice(0, name.value.decode(errors="replace").strip(),
                      f"{major.value}.{minor.value}", driver)


def gpu_reason() -> str | None:
    found = probe_cuda()
    return found if isinstance(found, str) else None


def require_gpu() -> CudaDevice:
    found = probe_cuda()
    if isinstance(found, str):
        raise EngineUnavailableError(found)
    return found


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _has_distribution(*names: str) -> bool:
    """Installed-package check that imports nothing (``find_spec('cuda.x')`` imports ``cuda``)."""
    for name in names:
        try:
            importlib.metadata.distribution(name)
            return True
        except importlib.metadata.PackageNotFoundError:
            continue
    return False


def cuda_python_reason() -> str | None:
    if _has_distribution("cuda-bindings", "cuda-python"):
        return None
    return ("cuda-python is not installed (the TensorRT runtime uses it for streams and pinned "
            f"buffers): {GPU_EXTRA}")


def tensorrt_reason() -> str | None:
    """Why the native TensorRT backend cannot run here, or None."""
    missing = []
    if not _has_module("tensorrt"):
        missing.append(f"tensorrt is not installed: {GPU_EXTRA} (or use Dockerfile.trt)")
    else:
        cuda_python = cuda_python_reason()
        if cuda_python:
            missing.append(cuda_python)
    gpu = gpu_reason()
    if gpu:
        missing.append(gpu)
    return "; ".join(missing) or None


def require_tensorrt():
    """Import tensorrt, or raise with what to install."""
    if not _has_module("tensorrt"):
        raise EngineUnavailableError(f"tensorrt is not installed: {GPU_EXTRA} (or use "
                                     "Dockerfile.trt)")
    try:
        import tensorrt
    except Exception as exc:  # a broken install: missing libnvinfer, CUDA mismatch
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EngineUnavailableError(f"tensorrt is installed but cannot be imported ({first}); "
                                     f"reinstall it: {GPU_EXTRA}") from exc
    return tensorrt


def require_onnx():
    """Import onnx (the ``gpu`` extra has it: engine builds read and convert ONNX graphs)."""
    if not _has_module("onnx"):
        raise EngineUnavailableError(f"onnx is not installed (TensorRT builds read the ONNX "
                                     f"graph with it): {GPU_EXTRA}")
    import onnx

    return onnx


def onnxruntime_provider_reason(provider: str) -> str | None:
    """Why ONNX Runtime cannot use ``provider`` here, or None."""
    try:
        import onnxruntime
    except ImportError:
        return f"onnxruntime-gpu is not installed: {GPU_EXTRA}"
    if provider not in onnxruntime.get_available_providers():
        return f"onnxruntime has no {provider} ({ORT_GPU_FIX})"
    if provider == "TensorrtExecutionProvider" and not _has_libnvinfer():
        return ("ONNX Runtime's TensorRT provider needs the TensorRT libraries (libnvinfer): "
                f"{GPU_EXTRA}")
    return gpu_reason()


def _has_libnvinfer() -> bool:
    if _has_module("tensorrt_libs") or _has_module("tensorrt"):
        return True
    for name in ("libnvinfer.so.10", "libnvinfer.so.11", "libnvinfer.so", "nvinfer_10.dll"):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def _load_tensorrt(path: Path, **options: Any) -> Engine:
    from sr_runtime.engines.tensorrt.runner import load_tensorrt

    return load_tensorrt(path, **options)


def _load_ort_tensorrt(path: Path, **options: Any) -> Engine:
    from sr_runtime.engines.tensorrt.ort_provider import load_ort_tensorrt

    return load_ort_tensorrt(path, **options)


def preload_onnxruntime_gpu_libraries() -> None:
    """Let onnxruntime-gpu (>= 1.21) find CUDA/cuDNN from PyTorch or NVIDIA's pip packages."""
    import onnxruntime

    preload = getattr(onnxruntime, "preload_dlls", None)
    if preload is not None:
        with contextlib.suppress(Exception):  # best effort: system libraries may serve instead
            preload()


def _load_ort_cuda(path: Path, **options: object):
    from sr_runtime.engines.onnxruntime import OnnxRuntimeEngine

    preload_onnxruntime_gpu_libraries()
    return OnnxRuntimeEngine(path, providers=[("CUDAExecutionProvider", {"device_id": 0}),
                                              "CPUExecutionProvider"], name="ort-cuda")


def specs() -> list[EngineSpec]:
    return [
        EngineSpec("tensorrt", tensorrt_reason, _load_tensorrt, accepts=(".engine", ".onnx")),
        EngineSpec("ort-tensorrt",
                   lambda: onnxruntime_provider_reason("TensorrtExecutionProvider"),
                   _load_ort_tensorrt),
        EngineSpec("ort-cuda", lambda: onnxruntime_provider_reason("CUDAExecutionProvider"),
                   _load_ort_cuda),
    ]
