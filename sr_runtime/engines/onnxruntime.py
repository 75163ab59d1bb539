"""ONNX Runtime engine (CPU by default; GPU execution providers reuse it with other providers)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sr_runtime.description import LR_INPUT, ModelDescription
from sr_runtime.engines.graph_check import check_session, checked
from sr_runtime.errors import EngineUnavailableError, UsageError
from sr_runtime.paths import sha256_file


def physical_cores() -> int:
    """Physical cores available to this process (SMT siblings share FP units, so count once)."""
    try:
        available = os.sched_getaffinity(0)
    except AttributeError:  # not Linux
        return max(1, (os.cpu_count() or 2) // 2)
    siblings: set[tuple[str, str]] = set()
    for cpu in available:
        base = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            siblings.add(((base / "physical_package_id").read_text().strip(),
                          (base / "core_id").read_text().strip()))
        except OSError:
            return len(available)
    return max(1, len(siblings))


def read_description(path: Path) -> ModelDescription:
    """The sr-edge description stored in an ONNX file, read with ONNX Runtime alone.

    This is the metadata as written; :func:`sr_runtime.engines.graph_check.check_onnx_file`
    also checks it against the graph.
    """
    session = open_cpu_session(path)
    return ModelDescription.from_metadata(session.get_modelmeta().custom_metadata_map, str(path))


def open_cpu_session(path: Path):  # type: ignore[no-untyped-def]
    """A plain CPU session: for metadata and the load-time graph probes."""
    import onnxruntime as ort

    return _open_session(path, ["CPUExecutionProvider"], ort.SessionOptions())


def _open_session(path: Path, providers: Sequence[str | tuple[str, dict]], options: object):
    import onnxruntime as ort

    if not Path(path).is_file():
        raise UsageError(f"model not found: {path}")
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=list(providers))
    except Exception as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise UsageError(f"ONNX Runtime cannot load {path}: {first_line}") from exc


def session_options(threads: int | None = None):
    """Session options measured best for SRResNet on CPU (see ``benchmarks/bench_cpu_engines.py``).

    - all graph optimizations: the CPU provider's blocked (NCHWc) layout, and Conv fused with
      LeakyRelu/Relu and with the residual Add, need ``ORT_ENABLE_ALL``;
    - one intra-op thread per physical core (SMT siblings share the FMA units), sequential
      execution (the graph is a chain);
    - the memory arena and memory patterns on: tiles repeat the same shapes, so the activation
      buffers are planned once and reused.

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
    return options


class OnnxRuntimeEngine:
    """An ``InferenceSession`` tuned for the machine; ``infer`` works on physical units.

    Before it is used, the graph is checked against its description
    (:mod:`sr_runtime.engines.graph_check`): one input ``lr``, the claimed scale and channels,
    finite output, and a halo no smaller than the graph's receptive field (``description``
    carries the halo to tile with). ``model_file`` / ``model_file_sha256`` name the file that
    runs (a variant's own hash, not its checkpoint's: that is
    ``description.checkpoint_sha256``).
    """

    def __init__(self, path: Path, providers: Sequence[str | tuple[str, dict]] = (
                 "CPUExecutionProvider",), name: str = "onnxruntime",
                 threads: int | None = None) -> None:
        options = session_options(threads)
        self.path = Path(path)
        self.name = name
        self.session = _open_session(self.path, providers, options)
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

    def infer(self, lr: np.ndarray) -> np.ndarray:
        return self.session.run(None, {LR_INPUT: np.ascontiguousarray(lr, dtype=np.float32)})[0]


def cpu_available() -> str | None:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "onnxruntime is not installed: pip install onnxruntime"
    return None
