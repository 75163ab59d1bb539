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
    """A loaded model. ``infer`` takes (N, C, h, w) float32 in the variables' units (K) as the
    input named ``lr``, plus any further named inputs the model declares (for example static HR
    fields), and returns (N, C, s*h, s*w) float32 in the same units.

    Provenance: ``description.checkpoint_sha256`` is the checkpoint the model was exported
    from; ``path`` and ``model_file_sha256`` are the file that actually runs (the ONNX model or
    variant, the TensorRT plan, or the checkpoint for the torch baseline), ``precision`` its
    arithmetic (fp32, fp16, int8...). ``max_window_lr`` is the largest LR window the engine
    takes (a TensorRT profile), None for any size. ``parallel_calls`` is how many ``infer``
    calls the engine serves at once from different threads (a multi-step run keeps that many
    steps in flight); 1 where calls must not overlap. Engines hold native resources: ``close``
    them, or use them as context managers.
    """

    name: str
    description: ModelDescription
    model_file_sha256: str
    path: Path | None
    precision: str
    max_window_lr: int | None
    parallel_calls: int

    def infer(self, lr: np.ndarray, **inputs: np.ndarray) -> np.ndarray: ...

    def close(self) -> None: ...


class EngineBase:
    """Defaults every engine shares: no window limit, FP32, one call at a time, nothing to
    release, ``with``."""

    max_window_lr: int | None = None
    parallel_calls: int = 1
    precision: str = "fp32"
    path: Path | None = None  # set by engines that run a file as it is

    def close(self) -> None:
        """Release native resources (sessions, CUDA contexts); the engine is unusable after."""

    def __enter__(self) -> EngineBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class LoadOptions:
    """What a backend may be told when it loads a model; each takes the fields it knows.

    ``config``: the demo's config.json (torch baseline, demo checkpoints); ``threads``: intra-op
    threads of CPU engines; ``precision``: the arithmetic of engines that take it as a hint
    (OpenVINO: fp32 or bf16; None: the engine's exact default); ``cache_dir``/``tile``/
    ``batch``/``rebuild``: how TensorRT engines are found or built; ``spinning``: whether idle
    CPU worker threads may spin (off when reader and writer threads share the cores);
    ``streams``: steps a multi-step run may infer at once (CPU engines that take it split their
    threads among them, see :class:`sr_runtime.engines.onnxruntime.OnnxRuntimeEngine`).
    """

    config: Path | None = None
    threads: int | None = None
    precision: str | None = None
    cache_dir: Path | None = None
    tile: tuple[int, int] | None = None
    batch: int | None = None
    rebuild: bool = True
    spinning: bool = True
    streams: int = 1


@dataclass(frozen=True)
class EngineRef:
    """A picklable reference to an engine: what a Dask worker needs to load the same one.

    ``threads`` caps the intra-op threads of CPU engines, so that several workers on one machine
    share its cores instead of each claiming all of them.
    """

    backend: str
    model: str
    config: str | None = None
    threads: int | None = None
    precision: str | None = None

    def load(self) -> Engine:
        from sr_runtime.engines.registry import load_engine

        return load_engine(self.backend, Path(self.model),
                           config=Path(self.config) if self.config else None,
                           threads=self.threads, precision=self.precision).engine


@dataclass(frozen=True)
class EngineSpec:
    """A backend in the registry: how to tell whether it can run here, and how to load it."""

    name: str
    available: Callable[[], str | None]  # None when usable, else the reason it is not
    load: Callable[[Path, LoadOptions], Engine]
    accepts: tuple[str, ...] = (".onnx",)  # model file suffixes it loads
