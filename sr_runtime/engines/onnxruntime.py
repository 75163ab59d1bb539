"""ONNX Runtime engine (CPU by default; GPU execution providers reuse it with other providers)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sr_runtime.description import LR_INPUT, ModelDescription
from sr_runtime.engines.base import EngineBase
from sr_runtime.engines.graph_check import check_session, checked
from sr_runtime.engines.static_part import StaticPartCache, find_parts
from sr_runtime.errors import EngineUnavailableError, UsageError
from sr_runtime.machine import physical_cores
from sr_runtime.paths import sha256_file

if TYPE_CHECKING:
    from onnxruntime import InferenceSession, SessionOptions

__all__ = ["OnnxRuntimeEngine", "open_cpu_session", "open_session", "physical_cores",
           "read_description", "read_metadata", "session_options"]


def read_metadata(path: Path) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file: the one reader of them in sr-edge.

    Read from the file's protobuf fields (:mod:`sr_runtime.engines.onnx_metadata`: no session
    is opened for it) and cached per file version within the process: ``sr-run`` reads a
    model's metadata for its variants, its description and its precision.
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"model not found: {path}")
    stat = path.stat()
    return dict(_read_metadata(str(path.resolve()), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=32)
def _read_metadata(path: str, mtime_ns: int, size: int) -> tuple[tuple[str, str], ...]:
    from sr_runtime.engines.onnx_metadata import read_onnx_metadata

    return tuple(sorted(read_onnx_metadata(Path(path)).items()))


def read_description(path: Path) -> ModelDescription:
    """The sr-edge description stored in an ONNX file, read with ONNX Runtime alone.

    This is the metadata as written; :func:`sr_runtime.engines.graph_check.check_onnx_file`
    also checks it against the graph.
    """
    return ModelDescription.from_metadata(read_metadata(path), str(path))


def open_cpu_session(path: Path | bytes) -> InferenceSession:
    """A plain CPU session (default options): for metadata and the load-time graph probes."""
    return open_session(path, options=None)


def open_session(model: Path | str | bytes, *, threads: int | None = None,
                 providers: Sequence[str | tuple[str, dict]] = ("CPUExecutionProvider",),
                 options: object | None | str = "tuned",
                 spinning: bool = True) -> InferenceSession:
    """The one way sr-edge opens an ONNX Runtime session, from a file or serialized bytes.

    ``options``: "tuned" (:func:`session_options` with ``threads``), None (ONNX Runtime's
    defaults), or a ``SessionOptions``. A file that ONNX Runtime cannot load is a one-line
    :class:`UsageError` naming the file and ONNX Runtime's reason.
    """
    import onnxruntime as ort

    label = "the model" if isinstance(model, bytes) else str(model)
    if not isinstance(model, bytes) and not Path(model).is_file():
        raise UsageError(f"model not found: {model}")
    if options == "tuned":
        options = session_options(threads, spinning)
    elif options is None:
        options = ort.SessionOptions()
    try:
        return ort.InferenceSession(model if isinstance(model, bytes) else str(model),
                                    sess_options=options, providers=list(providers))
    except Exception as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise UsageError(f"ONNX Runtime cannot load {label}: {first_line}") from exc


def session_options(threads: int | None = None, spinning: bool = True) -> SessionOptions:
    """Session options measured best for SRResNet on CPU (see ``benchmarks/bench_cpu_engines.py``).

    - all graph optimizations: the CPU provider's blocked (NCHWc) layout, and Conv fused with
      LeakyRelu/Relu and with the residual Add, need ``ORT_ENABLE_ALL``;
    - one intra-op thread per physical core (SMT siblings share the FMA units), sequential
      execution (the graph is a chain);
    - the memory arena and memory patterns on: tiles repeat the same shapes, so the activation
      buffers are planned once and reused.

    - ``spinning=False`` for an engine that shares the cores with the reader and writer threads
      of a multi-step run: idle pool threads that spin steal the cores those threads need
      (48 sample steps on 2 cores, 2026-12-02: pipeline 1.05-1.17 s without spinning against
      1.28-1.41 s with it), while a lone engine gains from spinning on small tiles.

    Binding a preallocated output (IO binding) was measured and gives nothing measurable (the
    output copy is < 0.5 % of a tile's time), so ``infer`` keeps the plain ``run``.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or physical_cores()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.enable_cpu_mem_arena = True
    options.enable_mem_pattern = True
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class OnnxRuntimeEngine(EngineBase):
    """An ``InferenceSession`` tuned for the machine; ``infer`` works on physical units.

    Before it is used, the graph is checked against its description
    (:mod:`sr_runtime.engines.graph_check`): one input ``lr``, the claimed scale and channels,
    finite output, and a halo no smaller than the graph's receptive field (``description``
    carries the halo to tile with). ``model_file`` / ``model_file_sha256`` name the file that
    runs (a variant's own hash, not its checkpoint's: that is
    ``description.checkpoint_sha256``).

    ``streams`` > 1 (CPU only): the session serves that many ``run`` calls at once (ONNX
    Runtime sessions are thread-safe), its intra-op threads shared out among them. A multi-step
    run then keeps one step per core in flight, each on one thread: the 48 sample steps of the
    default model on 2 cores took 2.01-2.06 s so against 2.35-2.36 s one at a time on 2
    threads (``python -m benchmarks.bench_steps_in_flight``, ``amx/2c``, 2026-12-03, two
    runs), since a single-threaded call has no barrier at which a busy core stalls the other.

    A model with static inputs whose static and step parts lie beside it
    (:mod:`sr_runtime.engines.static_part`) runs the static part once per tile and the step
    part for every further step with the same fields (CPU only; ``static_cache=False`` runs the
    whole model every call). ``static_part`` says which, and why.
    """

    def __init__(self, path: Path, providers: Sequence[str | tuple[str, dict]] = (
                 "CPUExecutionProvider",), name: str = "onnxruntime",
                 threads: int | None = None, spinning: bool = True, streams: int = 1,
                 static_cache: bool = True) -> None:
        self.path = Path(path)
        self.name = name
        if streams < 1:
            raise UsageError(f"streams must be at least 1, not {streams}")
        first = providers[0] if isinstance(providers[0], str) else providers[0][0]
        self.parallel_calls = streams if first == "CPUExecutionProvider" else 1
        if self.parallel_calls > 1:  # one session, its threads shared out among the calls
            threads = max(1, (threads or physical_cores()) // self.parallel_calls)
        self.session = open_session(self.path, threads=threads, providers=providers,
                                    spinning=spinning)
        metadata = self.session.get_modelmeta().custom_metadata_map
        description = ModelDescription.from_metadata(metadata, str(path))
        self.precision = metadata.get("precision", "fp32")  # set by `sr-export quantize`
        if self.precision != "fp32":
            self.name = f"{name}-{self.precision}"
        active = self.session.get_providers()
        wanted = providers[0] if isinstance(providers[0], str) else providers[0][0]
        if wanted not in active:
            raise EngineUnavailableError(
                f"ONNX Runtime could not enable {wanted} (active: {', '.join(active)})")
        self.model_file = self.path
        self.model_file_sha256 = sha256_file(self.path)
        # GPU providers would build or compile for each probe shape: probe on the CPU instead
        probe = self.session if wanted == "CPUExecutionProvider" else open_cpu_session(self.path)
        self.graph_check = check_session(probe, description, str(path), self.model_file_sha256)
        self.description = checked(description, self.graph_check)
        self.static_cache: StaticPartCache | None = None
        if not description.static_inputs:
            self.static_part = "the model takes no static fields"
        elif not static_cache or wanted != "CPUExecutionProvider":
            self.static_part = "run with every step (" + (
                "static part caching off)" if not static_cache else "GPU provider)")
        else:
            parts, self.static_part = find_parts(self.path, self.model_file_sha256)
            if parts is not None:
                self.static_part = "computed once per tile, reused for every further step"
                self.static_cache = StaticPartCache(parts, functools.partial(
                    open_session, threads=threads, providers=providers, spinning=spinning))

    def infer(self, lr: np.ndarray, **inputs: np.ndarray) -> np.ndarray:
        feed = {LR_INPUT: np.ascontiguousarray(lr, dtype=np.float32),
                **{name: np.ascontiguousarray(value, dtype=np.float32)
                   for name, value in inputs.items()}}
        if self.static_cache is not None and inputs:
            return self.static_cache.infer(feed, self._run_whole)
        return self._run_whole(feed)

    def _run_whole(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(None, feed)[0]

    def close(self) -> None:
        self.session = None  # ONNX Runtime frees the session's memory with its last reference
        self.static_cache = None


def cpu_available() -> str | None:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "onnxruntime is not installed: pip install onnxruntime"
    return None
