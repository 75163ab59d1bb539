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
    returns (N, C, s*h, s*w) float32 in the same units."""

    name: str
    description: ModelDescription

    def infer(self, lr: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class EngineSpec:
    """A backend in the registry: how to tell whether it can run here, and how to load it."""

    name: str
    available: Callable[[], str | None]  # None when usable, else the reason it is not
    load: Callable[[Path], Engine]
    accepts: tuple[str, ...] = (".onnx",)  # model file suffixes it loads
