"""A real uvicorn server on 127.0.0.1 (free port) serving the shipped model over the sample, and
engines that stand for a slow or broken backend (they wrap or replace the real engine)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import pytest

from sr_runtime.api import Model, open_model, open_source, open_static
from sr_runtime.description import ModelDescription
from sr_runtime.engines.base import EngineBase
from sr_runtime.results import Results, default_truth

WHEN = "2024-10-25T12:00"  # a held-out time with HR truth in the sample


@dataclass
class CountingEngine(EngineBase):
    """The real engine, slowed down and counted: proves how often inference runs."""

    inner: object
    delay: float = 0.0
    calls: int = 0

    def __post_init__(self) -> None:
        self.name = self.inner.name
        self.description: ModelDescription = self.inner.description
        self.model_file_sha256 = self.inner.model_file_sha256
        self.lock = threading.Lock()

    def infer(self, lr: np.ndarray, **inputs: np.ndarray) -> np.ndarray:
        with self.lock:
            self.calls += 1
        time.sleep(self.delay)
        return self.inner.infer(lr, **inputs)


@dataclass
class BrokenEngine(EngineBase):
    """A backend whose output is not finite, or that raises: a failed run."""

    inner: object
    mode: str = "nan"
    calls: int = 0

    def __post_init__(self) -> None:
        self.name = self.inner.name
        self.description = self.inner.description
        self.model_file_sha256 = self.inner.model_file_sha256

    def infer(self, lr: np.ndarray, **inputs: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.mode == "raise":
            raise RuntimeError("the accelerator fell off the bus")
        out = self.inner.infer(lr, **inputs)
        out[..., 0, 0] = np.nan
        return out


@pytest.fixture(scope="session")
def shipped_model():
    with open_model() as model:
        yield model


def sample_results(model: Model, engine=None) -> Results:
    wrapped = Model(engine or model.engine, model.path, list(model.notes))
    return Results(wrapped, open_source("sample"), default_truth("sample", None),
                   static=open_static("sample"))


@pytest.fixture
def results(shipped_model) -> Results:
    return sample_results(shipped_model)


@pytest.fixture
def server(results):
    """(base URL, results) of a fresh service: empty caches, zero inferences."""
    from sr_runtime.serve.http import create_app
    from sr_runtime.serve.server import serving

    with serving(create_app(results)) as url:
        yield url, results
