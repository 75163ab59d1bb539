"""OpenVINO engine (extra ``openvino``): the same self-describing sr-edge ONNX on Intel's runtime.

Why a second CPU engine: on the sr-edge ONNX, OpenVINO's CPU plugin runs FP32 within about 20 %
of ONNX Runtime either way (0.81-0.97x on one AVX-512 EPYC, 1.0-1.19x in
``../shared/reference/engines.md``), and on CPUs with native BF16 (AVX512_BF16, AMX) it runs
BF16 1.6-1.9x faster than its FP32. Which one wins on a machine is measured by
``sr-export tune``, not assumed.

- **Exact by default**: the inference precision hint is set to f32 explicitly (OpenVINO would
  otherwise pick bf16 by itself on a BF16 CPU); BF16 only when asked (``precision="bf16"``),
  and only on a CPU that has it (:func:`bf16_unavailable_reason`).
- **One compiled model per window shape**: the model is reshaped to the static shape the tiler
  feeds and compiled for it (a fraction of a second); a few shapes are kept (edge tiles differ).
  A model with static inputs is reshaped on both: ``hr_static`` is N x S x s*h x s*w.
- **Same checks as ONNX Runtime**: the description comes from the file's metadata, the graph is
  probed against it (:mod:`sr_runtime.engines.graph_check`, on ONNX Runtime: the probes need
  many shapes), and at load the compiled model must match ONNX Runtime FP32 on a typical field
  within the export's parity tolerance (BF16: within the reduced-precision RMSE limit; its full
  accuracy gate, with HR truth, is run by ``sr-export tune``).
- **Shuffles as data moves**: the one-hot shuffle convs that sr-edge's rewrites write for ONNX
  Runtime become OpenVINO's DepthToSpace / SpaceToDepth (bit-identical;
  :mod:`sr_runtime.engines.openvino_graph`).
- **Performance hint and streams** (LATENCY with 1 stream by default) come from the tune record
  when ``sr-export tune`` measured another setting faster on this CPU class.
- **The static part once per tile**: for a model with static fields and its parts beside it
  (:mod:`sr_runtime.engines.static_part`), the first call with given fields runs the whole
  model and every further one the step part alone, with the static part's tensors kept, as on
  ONNX Runtime; each part is compiled like the whole model (same precision, hint, streams and
  graph moves) and checked against ONNX Runtime FP32 like it, when a run first needs them (a
  single step never compiles them). OpenVINO BF16 on the
  default model, one thread, ``avx512-bf16-vnni/2c``, 2026-12-06: 25.1 ms per further step
  against 30.6 ms per call at LR 32, 408 against 549 ms at LR 128 (``python
  benchmarks/bench_cpu_engines.py --cpu-time --rounds 5 --pause 0 --skip-demo --skip-shipped``).
- **Steps in flight**: with ``calls`` > 1 (a multi-step run: one step per core) the model is
  compiled for THROUGHPUT with that many streams and as many infer requests, so ``infer`` may be
  called from that many threads at once: the 48 sample steps of the default model on 2 cores
  took 0.99-1.03 s so in BF16 against 1.23-1.26 s one at a time (FP32: 2.25-2.38 s against
  2.73-2.75 s; ``python -m benchmarks.bench_steps_in_flight``, ``amx/2c``, 2026-12-03).
"""

from __future__ import annotations

import importlib.metadata
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sr_runtime.compare import PARITY_TOLERANCE_K, REDUCED_MAX_RMSE_K, GateRule, compare
from sr_runtime.description import HR_STATIC_INPUT, LR_INPUT, ModelDescription
from sr_runtime.engines.base import EngineBase
from sr_runtime.engines.graph_check import check_session, checked
from sr_runtime.engines.openvino_graph import shuffles_as_moves, terrain_terms_one_by_one
from sr_runtime.engines.static_part import StaticPartCache, find_parts
from sr_runtime.errors import AccuracyGateError, EngineUnavailableError, UsageError
from sr_runtime.machine import BF16_FLAGS, has_bf16, isa_flags, physical_cores
from sr_runtime.paths import sha256_file

INSTALL = "pip install 'sr-edge[openvino]'"
PRECISIONS = ("fp32", "bf16")
HINTS = ("LATENCY", "THROUGHPUT")
DEFAULT_HINT, DEFAULT_STREAMS = "LATENCY", 1
#: Compiled window shapes kept per engine (a tiled field feeds at most a handful).
SHAPE_CACHE = 8
#: OpenVINO's name of each precision hint.
_OV_PRECISION = {"fp32": "f32", "bf16": "bf16"}


def available() -> str | None:
    """None when OpenVINO is installed, else how to install it. Looked up, not imported:
    importing it takes about half a second, which a run on ONNX Runtime must not pay."""
    import importlib.util

    try:
        found = importlib.util.find_spec("openvino") is not None
    except (ImportError, ValueError):
        found = False
    return None if found else f"openvino is not installed: {INSTALL}"


def _import() -> Any:
    """The ``openvino`` module, or why it cannot be used (installed but broken, or absent)."""
    try:
        import openvino
    except ImportError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise EngineUnavailableError(f"backend 'openvino' is not usable here: openvino cannot "
                                     f"be imported ({first}); reinstall: {INSTALL}") from None
    return openvino


def openvino_version() -> str:
    try:
        return importlib.metadata.version("openvino")
    except importlib.metadata.PackageNotFoundError:
        return ""


def bf16_unavailable_reason(flags: tuple[str, ...] | list[str] | None = None) -> str | None:
    """None when a CPU with ``flags`` (default: this one's) computes BF16 natively, else why
    not: without AVX512_BF16 or AMX, BF16 is emulated and slower than FP32."""
    flags = isa_flags() if flags is None else flags
    if has_bf16(flags):
        return None
    present = " ".join(flags) or "none of the recorded ISA flags"
    return (f"BF16 needs a CPU with {' or '.join(BF16_FLAGS)} (this one has: {present}); "
            "run FP32 instead (--precision fp32)")


def check_precision(precision: str, flags: tuple[str, ...] | list[str] | None = None) -> None:
    """Refuse an unknown precision (usage) or BF16 on a CPU without it (environment)."""
    if precision not in PRECISIONS:
        raise UsageError(f"OpenVINO runs precision {' or '.join(PRECISIONS)}, not "
                         f"{precision!r}")
    if precision == "bf16":
        reason = bf16_unavailable_reason(flags)
        if reason:
            raise EngineUnavailableError(f"OpenVINO BF16 is not usable here: {reason}")


_CORE: Any = None


def _core() -> Any:
    global _CORE
    if _CORE is None:
        _CORE = _import().Core()
    return _CORE


class _Compiled:
    """One OpenVINO model (the whole model or one of its parts) compiled per set of input
    shapes, each with the engine's ``parallel_calls`` free infer requests; the last
    :data:`SHAPE_CACHE` shape sets are kept (edge tiles differ). ``run`` takes and gives what
    an ONNX Runtime session's does, so :class:`StaticPartCache` runs either."""

    def __init__(self, engine: OpenVinoEngine, model: Any, label: str) -> None:
        self._engine, self._model, self.label = engine, model, label
        self.inputs = [port.get_any_name() for port in model.inputs]
        self._lock = threading.Lock()
        #: per tuple of input shapes (in the model's input order), its free infer requests
        self.compiled: OrderedDict[tuple[tuple[int, ...], ...], queue.SimpleQueue] = \
            OrderedDict()

    def run(self, names: list[str] | None, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The outputs ``names`` (None: all, in order) for ``feed``."""
        requests = self._requests(tuple(tuple(int(d) for d in feed[name].shape)
                                        for name in self.inputs))
        request = requests.get()  # one is free: at most parallel_calls callers at once
        try:
            request.infer(feed, share_inputs=True)
            tensors = ([request.get_output_tensor(i) for i in range(len(self._model.outputs))]
                       if names is None else [request.get_tensor(name) for name in names])
            return [np.array(tensor.data, copy=True) for tensor in tensors]
        finally:
            requests.put(request)

    def _requests(self, shapes: tuple[tuple[int, ...], ...]) -> queue.SimpleQueue:
        """The free infer requests for ``shapes`` (compiled on first use, by one thread while
        the others wait)."""
        with self._lock:
            requests = self.compiled.get(shapes)
            if requests is None:
                requests = self.compiled[shapes] = self._compile(shapes)
            self.compiled.move_to_end(shapes)
            while len(self.compiled) > SHAPE_CACHE:
                self.compiled.popitem(last=False)
            return requests

    def _compile(self, shapes: tuple[tuple[int, ...], ...]) -> queue.SimpleQueue:
        engine = self._engine
        model = self._model.clone()
        model.reshape({name: list(shape) for name, shape in zip(self.inputs, shapes,
                                                                strict=True)})
        by_name = dict(zip(self.inputs, shapes, strict=True))
        what = (f"LR shape {'x'.join(map(str, by_name[LR_INPUT]))}" if LR_INPUT in by_name
                else "input shapes " + ", ".join(f"{name} {'x'.join(map(str, shape))}"
                                                 for name, shape in by_name.items()))
        try:
            compiled = _core().compile_model(model, "CPU", engine.config)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise EngineUnavailableError(f"OpenVINO cannot compile {self.label} for {what}: "
                                         f"{first}") from exc
        ran = compiled.get_property("INFERENCE_PRECISION_HINT")
        if ran != getattr(_import().Type, _OV_PRECISION[engine.precision]):
            # OpenVINO overrode the hint: never run a precision that was not asked for
            raise EngineUnavailableError(f"OpenVINO compiled {self.label} in {ran}, not "
                                         f"{engine.precision} as asked; use --precision fp32 or "
                                         "--backend onnxruntime")
        requests: queue.SimpleQueue = queue.SimpleQueue()
        for _ in range(engine.parallel_calls):
            requests.put(compiled.create_infer_request())
        return requests


class OpenVinoEngine(EngineBase):
    """An sr-edge ``.onnx`` compiled by OpenVINO for the CPU; ``infer`` works on physical units.

    ``precision``: ``fp32`` (exact) or ``bf16``; ``hint``/``streams``: OpenVINO's performance
    hint and stream count (default: what ``sr-export tune`` chose here, else LATENCY and 1);
    ``threads``: inference threads (default one per physical core); ``calls``: ``infer`` calls
    served at once (``parallel_calls``), each on a stream of its own (THROUGHPUT, ``calls``
    streams, whatever ``hint``/``streams`` say); ``static_cache``: run a static model's step
    part alone for every further step with the same static fields (``static_part`` says
    whether, and why).
    """

    def __init__(self, path: Path, *, threads: int | None = None, precision: str = "fp32",
                 hint: str | None = None, streams: int | None = None,
                 calls: int = 1, static_cache: bool = True) -> None:
        reason = available()
        if reason:
            raise EngineUnavailableError(f"backend 'openvino' is not usable here: {reason}")
        check_precision(precision)
        self.path = Path(path)
        if not self.path.is_file():
            raise UsageError(f"model not found: {self.path}")
        from sr_runtime.engines.onnxruntime import open_cpu_session
        from sr_runtime.engines.tuning import tuned_setting

        self.precision = precision
        self.name = "openvino" if precision == "fp32" else f"openvino-{precision}"
        probe = open_cpu_session(self.path)  # metadata, graph probes and the parity reference
        metadata = probe.get_modelmeta().custom_metadata_map
        if metadata.get("precision", "fp32") != "fp32":
            raise UsageError(f"{self.path.name} is a {metadata['precision']} variant made for "
                             "ONNX Runtime; OpenVINO runs the FP32 model (BF16 as a precision "
                             "hint): give --model with the FP32 .onnx, or --backend onnxruntime")
        description = ModelDescription.from_metadata(metadata, str(self.path))
        self.model_file = self.path
        self.model_file_sha256 = sha256_file(self.path)
        self.graph_check = check_session(probe, description, str(self.path),
                                         self.model_file_sha256)
        self.description = checked(description, self.graph_check)
        self.hint = str(hint or tuned_setting(self.path, self.name, "hint") or DEFAULT_HINT)
        if self.hint not in HINTS:
            raise UsageError(f"OpenVINO performance hint must be one of {', '.join(HINTS)}, "
                             f"not {self.hint!r}")
        self.streams = int(streams or tuned_setting(self.path, self.name, "streams")
                           or DEFAULT_STREAMS)
        self.threads = int(threads or physical_cores())
        if calls < 1:
            raise UsageError(f"calls must be at least 1, not {calls}")
        self.parallel_calls = int(calls)
        if self.parallel_calls > 1:  # one stream per call in flight
            self.hint, self.streams = "THROUGHPUT", self.parallel_calls
        model = self._read(self.path)
        #: one-hot shuffle convs (ONNX Runtime's fast form) run as OpenVINO's data moves
        self.shuffles_as_moves = shuffles_as_moves(model)
        #: terrain_terms_at_once (ONNX Runtime's fast form) as one product per field
        self.terrain_terms_one_by_one = terrain_terms_one_by_one(model)
        self._whole = _Compiled(self, model, self.model_file.name)
        self.static_cache: StaticPartCache | None = None
        if not self.description.static_inputs:
            self.static_part = "the model takes no static fields"
        elif not static_cache:
            self.static_part = "run with every step (static part caching off)"
        else:
            parts, self.static_part = find_parts(self.path, self.model_file_sha256)
            if parts is not None:
                self.static_part = "computed once per tile, reused for every further step"
                self.static_cache = StaticPartCache(parts, self._open_part,
                                                    check=self._check_parts)
        self.parity = self._check_parity(probe)

    @staticmethod
    def _read(path: Path) -> Any:
        try:
            return _core().read_model(str(path))
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UsageError(f"OpenVINO cannot load {path}: {first}") from exc

    def _open_part(self, path: Path) -> _Compiled:
        """A part file as this engine runs it, with the whole model's graph moves
        (:class:`StaticPartCache` opens each part once)."""
        model = self._read(path)
        shuffles_as_moves(model)
        terrain_terms_one_by_one(model)
        return _Compiled(self, model, path.name)

    @property
    def config(self) -> dict[str, str]:
        """The properties every compilation gets (explicit: no OpenVINO default decides)."""
        return {"INFERENCE_PRECISION_HINT": _OV_PRECISION[self.precision],
                "PERFORMANCE_HINT": self.hint, "NUM_STREAMS": str(self.streams),
                "INFERENCE_NUM_THREADS": str(self.threads)}

    def _check_parity(self, reference: Any) -> str:
        """This engine against ONNX Runtime FP32 on a typical field, by the one comparator (the
        parts, if any, are checked on the same field when a run first needs them)."""
        from sr_runtime.synthetic import sample_feed

        feed = sample_feed(self.description, shape=(24, 24), batch=1, seed=3)
        self._parity_case = (feed, reference.run(None, feed)[0])
        return "parity vs ONNX Runtime FP32: " + self._parity_line(self._run_whole, "")

    def _check_parts(self, run_parts: Callable[[dict[str, np.ndarray]], np.ndarray]) -> None:
        """The static and step parts, one after the other, against ONNX Runtime FP32 on the
        load-time parity field (:class:`StaticPartCache` calls this once, before using them)."""
        self.parity += "; static and step parts " + self._parity_line(
            run_parts, " (static and step parts)")

    def _parity_line(self, run: Callable[[dict[str, np.ndarray]], np.ndarray],
                     label: str) -> str:
        feed, expected = self._parity_case
        result = compare(expected, run(feed), with_ssim=False)
        rule = (GateRule(max_abs=PARITY_TOLERANCE_K) if self.precision == "fp32"
                else GateRule(rmse=REDUCED_MAX_RMSE_K))
        units = self.description.variables[0].units
        failures = rule.failures(result, units=units)
        if failures:
            raise AccuracyGateError(f"OpenVINO {self.precision}{label} disagrees with ONNX "
                                    f"Runtime FP32 on {self.model_file.name}: {failures[0]}; use "
                                    "--backend onnxruntime and report it with `sr-export "
                                    "inspect` output")
        return result.line(units)

    def infer(self, lr: np.ndarray, **inputs: np.ndarray) -> np.ndarray:
        wanted = {HR_STATIC_INPUT} if self.description.static_inputs else set()
        if set(inputs) != wanted:
            takes = " and ".join(map(repr, [LR_INPUT, *sorted(wanted)]))
            raise UsageError(f"{self.model_file.name} takes {takes}; OpenVINO got "
                             f"{', '.join(map(repr, [LR_INPUT, *inputs]))}")
        feed = {LR_INPUT: np.ascontiguousarray(lr, dtype=np.float32),
                **{name: np.ascontiguousarray(value, dtype=np.float32)
                   for name, value in inputs.items()}}
        if self.static_cache is not None:
            return self.static_cache.infer(feed, self._run_whole)
        return self._run_whole(feed)

    def _run_whole(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        return self._whole.run(None, feed)[0]

    def close(self) -> None:
        # OpenVINO frees a compiled model with its last reference
        self._whole.compiled.clear()
        self.static_cache = None  # and with it the compiled parts
