"""Backends by name, and ``auto``: the first usable one in order of expected speed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sr_runtime.engines.base import Engine, EngineSpec
from sr_runtime.engines.onnxruntime import OnnxRuntimeEngine, cpu_available
from sr_runtime.engines.torch_baseline import TorchEngine, torch_available
from sr_runtime.errors import EngineUnavailableError, UsageError

CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth")

ENGINES: dict[str, EngineSpec] = {}


def register(spec: EngineSpec) -> None:
    ENGINES[spec.name] = spec


register(EngineSpec("onnxruntime", cpu_available,
                    lambda path, threads=None, **_: OnnxRuntimeEngine(path, threads=threads)))
register(EngineSpec("torch", torch_available,
                    lambda path, config=None, **_: TorchEngine(path, config),
                    accepts=CHECKPOINT_SUFFIXES))

# Order tried by ``auto``: fastest first. Names not registered (GPU backends absent) are skipped.
AUTO_ORDER = ("tensorrt", "ort-tensorrt", "ort-cuda", "onnxruntime", "torch")


@dataclass
class Selection:
    """The chosen engine and, for each backend tried before it, why it was skipped."""

    engine: Engine
    skipped: list[tuple[str, str]] = field(default_factory=list)


    def summary(self, verbose: bool = False) -> list[str]:
        """Lines saying which backend runs and why each earlier one was skipped.

        On a machine without a GPU every GPU backend is skipped for that one reason; it is said
        once, with the backends it rules out, unless ``verbose`` asks for each full reason.
        """
        from sr_runtime.engines import gpu_backends

        chosen = f"backend: {self.engine.name}"
        no_gpu = gpu_backends.gpu_reason() if self.skipped else None
        gpu_names = {spec.name for spec in gpu_backends.specs()}
        shared = [name for name, _ in self.skipped if no_gpu and name in gpu_names]
        if verbose or not shared:
            return [*(f"backend {n} skipped: {r}" for n, r in self.skipped), chosen]
        rest = [f"backend {n} skipped: {r}" for n, r in self.skipped if n not in shared]
        return [*rest, f"{chosen} ({', '.join(shared)} skipped: {no_gpu}; "
                       f"`sr-run --backend {shared[0]}` says what else it needs)"]


def backend_names() -> list[str]:
    return ["auto", *ENGINES]


def load_engine(backend: str, model: Path, **options: object) -> Selection:
    """Load ``model`` with the named backend, or with the first usable one for ``auto``."""
    if backend != "auto":
        if backend not in ENGINES:
            raise UsageError(f"unknown backend {backend!r}; choose one of "
                             f"{', '.join(backend_names())}")
        spec = ENGINES[backend]
        if model.suffix not in spec.accepts:
            raise UsageError(f"backend {backend!r} loads {'/'.join(spec.accepts)} files, "
                             f"not {model.name}")
        reason = spec.available()
        if reason:
            raise EngineUnavailableError(f"backend {backend!r} is not usable here: {reason}")
        return Selection(spec.load(model, **options))

    skipped: list[tuple[str, str]] = []
    for name in AUTO_ORDER:
        spec = ENGINES.get(name)
        if spec is None:
            continue
        if model.suffix not in spec.accepts:
            skipped.append((name, f"does not load {model.suffix} files"))
            continue
        reason = spec.available()
        if reason:
            skipped.append((name, reason))
            continue
        try:
            return Selection(spec.load(model, **options), skipped)
        except EngineUnavailableError as exc:
            skipped.append((name, str(exc)))
    detail = "; ".join(f"{n}: {r}" for n, r in skipped)
    raise EngineUnavailableError(f"no backend can run {model.name} here ({detail})")


def _register_gpu_backends() -> None:
    from sr_runtime.engines import gpu_backends

    for spec in gpu_backends.specs():
        register(spec)


_register_gpu_backends()
