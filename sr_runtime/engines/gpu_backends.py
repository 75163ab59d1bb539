"""GPU backends (TensorRT, ONNX Runtime TensorRT/CUDA execution providers), registered lazily."""

from __future__ import annotations

from sr_runtime.engines.base import EngineSpec


def specs() -> list[EngineSpec]:
    return []
