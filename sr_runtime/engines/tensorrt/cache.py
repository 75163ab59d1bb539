"""The engine cache: engines keyed by fingerprint, plus one timing cache per TensorRT and GPU.

``--backend tensorrt`` with an ``.onnx`` model (or an engine whose fingerprint no longer
matches this machine) finds its engine here or builds one into it
(:func:`sr_runtime.engines.tensorrt.build.build_cached_engine`). The folder is
``$SR_EDGE_ENGINE_CACHE``, else ``$XDG_CACHE_HOME/sr-edge/engines`` (``~/.cache``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from sr_runtime.engines.tensorrt.fingerprint import (
    BuildEnvironment,
    EngineFingerprint,
    EngineMismatchError,
    read_record,
    sidecar_path,
)
from sr_runtime.errors import UsageError

CACHE_ENV = "SR_EDGE_ENGINE_CACHE"


def default_cache_dir() -> Path:
    """``$SR_EDGE_ENGINE_CACHE``, else ``$XDG_CACHE_HOME/sr-edge/engines`` (``~/.cache``)."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "sr-edge" / "engines"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower() or "gpu"


@dataclass(frozen=True)
class EngineCache:
    """Engines keyed by fingerprint, plus one timing cache per TensorRT version and GPU."""

    root: Path

    def engine_path(self, fingerprint: EngineFingerprint) -> Path:
        return Path(self.root) / f"{fingerprint.key()}.engine"

    def lookup(self, fingerprint: EngineFingerprint) -> Path | None:
        """The cached engine for exactly this fingerprint, if one is stored and intact."""
        path = self.engine_path(fingerprint)
        if not path.is_file() or not sidecar_path(path).is_file():
            return None
        try:
            record = read_record(path)
        except EngineMismatchError:
            return None
        return path if record.fingerprint == fingerprint else None

    def timing_cache_path(self, environment: BuildEnvironment) -> Path:
        name = (f"trt-{_slug(environment.tensorrt_version)}-sm"
                f"{environment.compute_capability.replace('.', '')}-"
                f"{_slug(environment.gpu_name)}.timing")
        return Path(self.root) / "timing" / name

    def ensure(self) -> None:
        try:
            (Path(self.root) / "timing").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create the engine cache {self.root} ({exc.strerror}); set "
                             f"{CACHE_ENV} to a writable folder") from exc
