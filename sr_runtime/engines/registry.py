"""Backends by name, and ``auto``: the first usable one in order of expected speed.

Built-in backends (ONNX Runtime, OpenVINO when its extra is installed, the GPU backends)
register here. Others come from installed
packages through entry points of the group :data:`ENTRY_POINT_GROUP`, each an
:class:`EngineSpec`; they are discovered the first time the registry is read. The PyTorch
baseline is one (``torch = "sr_export.torch_engine:ENGINE_SPEC"``), so the runtime never imports
the export side.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sr_runtime.engines.base import Engine, EngineSpec, LoadOptions
from sr_runtime.engines.onnxruntime import OnnxRuntimeEngine, cpu_available
from sr_runtime.errors import EngineUnavailableError, UsageError

ENTRY_POINT_GROUP = "sr_edge.engines"
#: Backends that other parts of sr-edge provide through entry points, and what installs them.
PLUGIN_INSTALL = {"torch": "pip install 'sr-edge[export]'"}
#: How names are listed (CPU backends, then GPU ones); others follow in registration order.
LISTING_ORDER = ("onnxruntime", "openvino", "torch", "tensorrt", "ort-tensorrt", "ort-cuda")


class _Registry(Mapping[str, EngineSpec]):
    """Backends by name; entry-point backends are added on first read, built-ins win."""

    def __init__(self) -> None:
        self._specs: dict[str, EngineSpec] = {}
        self.broken: dict[str, str] = {}  # entry-point name -> why it could not be loaded
        self._discovered = False

    def add(self, spec: EngineSpec) -> None:
        self._specs[spec.name] = spec

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        for point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if point.name in self._specs:
                continue
            try:
                spec = point.load()
            except Exception as exc:  # a broken plugin must not break the other backends
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                self.broken[point.name] = f"{point.value} cannot be imported ({first})"
                continue
            if not isinstance(spec, EngineSpec) or spec.name != point.name:
                self.broken[point.name] = (f"{point.value} is not an EngineSpec named "
                                           f"{point.name!r}")
                continue
            self._specs[spec.name] = spec

    def __getitem__(self, name: str) -> EngineSpec:
        self._discover()
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        self._discover()
        rank = {name: i for i, name in enumerate(LISTING_ORDER)}
        return iter(sorted(self._specs, key=lambda name: rank.get(name, len(rank))))

    def __len__(self) -> int:
        self._discover()
        return len(self._specs)


ENGINES = _Registry()


def register(spec: EngineSpec) -> None:
    ENGINES.add(spec)


def missing_reason(name: str) -> str | None:
    """Why a backend that sr-edge knows of is not registered here, or None if unknown."""
    ENGINES._discover()
    hint = PLUGIN_INSTALL.get(name)
    if name in ENGINES.broken:
        return ENGINES.broken[name] + (f"; reinstall: {hint}" if hint else "")
    if hint:
        return f"not installed: {hint}"
    return None


register(EngineSpec("onnxruntime", cpu_available,
                    lambda path, options: OnnxRuntimeEngine(path, threads=options.threads,
                                                            spinning=options.spinning,
                                                            streams=options.streams)))


def _load_openvino(path: Path, options: LoadOptions) -> Engine:
    from sr_runtime.engines.openvino import OpenVinoEngine

    return OpenVinoEngine(path, threads=options.threads, precision=options.precision or "fp32",
                          calls=options.streams)


def _openvino_available() -> str | None:
    from sr_runtime.engines.openvino import available

    return available()


# Built in, usable where the `openvino` extra is installed; `auto` runs it where `sr-export tune`
# measured it faster on this CPU class (sr_runtime.engines.choice), never by position.
register(EngineSpec("openvino", _openvino_available, _load_openvino))

# Order tried by ``auto``: fastest first. Names not registered (GPU backends absent) are skipped.
# The CPU slot is ``onnxruntime``; a CPU engine that `sr-export tune` measured faster on this CPU
# class takes it (``load_engine(..., cpu_backend=...)``).
AUTO_ORDER = ("tensorrt", "ort-tensorrt", "ort-cuda", "onnxruntime", "torch")
CPU_SLOT = "onnxruntime"


@dataclass
class Selection:
    """The chosen engine and, for each backend tried before it, why it was skipped."""

    engine: Engine
    skipped: list[tuple[str, str]] = field(default_factory=list)
    backend: str = ""  # the registered name that loaded it (engine.name may add a precision)


    def summary(self, verbose: bool = False) -> list[str]:
        """Lines saying which backend runs and why each earlier one was skipped.

        On a machine without a GPU every GPU backend is skipped for that one reason; it is said
        once, with the backends it rules out, unless ``verbose`` asks for each full reason.
        """
        from sr_runtime.engines import gpu_backends

        precision = getattr(self.engine, "precision", "fp32")
        calls = getattr(self.engine, "parallel_calls", 1)
        chosen = f"backend: {self.engine.name}" + (
            f", precision {precision}" if precision != "fp32" else "") + (
            f", {calls} steps at a time" if calls > 1 else "") + (
            ", static part once per tile" if getattr(self.engine, "static_cache", None)
            else "")
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


def load_engine(backend: str, model: Path, *, cpu_backend: str | None = None,
                **options: Any) -> Selection:
    """Load ``model`` with the named backend, or with the first usable one for ``auto``.

    ``options`` are the fields of :class:`LoadOptions` (config, threads, precision...); any
    other name is a programming error, refused at once. ``cpu_backend``: for ``auto``, the CPU
    engine chosen for this model (:func:`sr_runtime.engines.choice.choose_engine`); it takes
    the CPU slot of :data:`AUTO_ORDER`, and ONNX Runtime FP32 follows it if it cannot load.
    """
    try:
        chosen = LoadOptions(**options)
    except TypeError as exc:
        raise UsageError(f"load_engine: {exc}") from None
    if backend != "auto":
        missing = missing_reason(backend) if backend not in ENGINES else None
        if missing:
            raise EngineUnavailableError(f"backend {backend!r} is not usable here: {missing}")
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
        return Selection(spec.load(model, chosen), backend=backend)

    skipped: list[tuple[str, str]] = []
    order: list[str] = list(AUTO_ORDER)
    if cpu_backend and cpu_backend != CPU_SLOT:
        order.insert(order.index(CPU_SLOT), cpu_backend)
    for name in order:
        if name == CPU_SLOT and cpu_backend and cpu_backend != CPU_SLOT:
            chosen = LoadOptions(**{**options, "precision": None})  # its exact FP32 fallback
        candidate = ENGINES.get(name)
        if candidate is None:
            missing = missing_reason(name)
            if missing:
                skipped.append((name, missing))
            continue
        if model.suffix not in candidate.accepts:
            skipped.append((name, f"does not load {model.suffix} files"))
            continue
        reason = candidate.available()
        if reason:
            skipped.append((name, reason))
            continue
        try:
            return Selection(candidate.load(model, chosen), skipped, name)
        except EngineUnavailableError as exc:
            skipped.append((name, str(exc)))
    detail = "; ".join(f"{n}: {r}" for n, r in skipped)
    raise EngineUnavailableError(f"no backend can run {model.name} here ({detail})")


def _register_gpu_backends() -> None:
    from sr_runtime.engines import gpu_backends

    for spec in gpu_backends.specs():
        register(spec)


_register_gpu_backends()
