"""The engine boundary: physical LR fields in, physical HR fields out, whatever runs them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from sr_runtime.description import ModelDescription


@runtime_checkable
class Engine(Protocol):
    """A loaded model. ``infer`` takes (N, C, h, w) float32 in the variables' units (K) and
    returns (N, C, s*h, s*w) float32 in the same units.

    Provenance: ``description.checkpoint_sha256`` is the checkpoint the model was exported
    from; ``model_file_sha256`` is the sha256 of the file that actually runs (the ONNX model or
    variant, the TensorRT plan, or the checkpoint for the torch baseline).
    """

    name: str
    description: ModelDescription
    model_file_sha256: str

    def infer(self, lr: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class EngineSpec:
    """A backend in the registry: how to tell whether it can run here, and how to load it."""

    name: str
    available: Callable[[], str | None]  # None when usable, else the reason it is not
    load: Callable[[Path], Engine]
    accepts: tuple[str, ...] = (".onnx",)  # model file suffixes it loads
