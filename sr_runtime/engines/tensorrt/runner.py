"""TensorRT runtime: a fingerprint-checked plan run on CUDA streams.

``TensorRTEngine`` keeps two slots, each with its own execution context, CUDA stream, pinned host
buffers and device buffers sized for the profile's largest shape (one pair per input: ``lr``,
and ``hr_static`` for models with static HR inputs, whose profile is s x the LR shape). A batch
larger than the profile allows is cut into chunks that alternate between the slots, so the copies
of one chunk overlap the compute of the other. Inputs must lie within the optimization profile (a
static tile shape for engines built with ``--tile``); a smaller batch is padded to the profile's
minimum.

CUDA is used through cuda-python (``cuda.bindings.runtime``); nothing here needs torch, and this
module is only imported when a TensorRT backend is loaded.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
from pathlib import Path
from typing import Any

import numpy as np

from sr_runtime.description import HR_OUTPUT, HR_STATIC_INPUT, LR_INPUT, ModelDescription
from sr_runtime.engines.base import EngineBase
from sr_runtime.engines.gpu_backends import cuda_python_reason, require_gpu, require_tensorrt
from sr_runtime.engines.tensorrt.cache import default_cache_dir
from sr_runtime.engines.tensorrt.fingerprint import (
    EngineMismatchError,
    EngineRecord,
    current_environment,
    mismatch_message,
    read_checked_plan,
    read_record,
    sha256_bytes,
)
from sr_runtime.engines.tensorrt.profiles import (
    ShapeProfile,
    format_shape,
    input_profiles,
    runtime_profile,
)
from sr_runtime.errors import EngineUnavailableError, ModelMismatchError, UsageError
from sr_runtime.paths import sha256_file

LOG = logging.getLogger(__name__)


def make_logger(trt):
    """A TensorRT ILogger that keeps error messages, so failures can be reported in one line."""

    class _Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity, msg) -> None:
            if int(severity) <= int(trt.ILogger.Severity.ERROR):
                self.errors.append(str(msg))
            elif int(severity) == int(trt.ILogger.Severity.WARNING):
                LOG.debug("TensorRT: %s", msg)

    return _Logger()


def _cudart():
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart  # cuda-python < 12.6
        except ImportError as exc:
            raise EngineUnavailableError(cuda_python_reason() or str(exc)) from exc
    return cudart


class _Cuda:
    """Error-checked calls into the CUDA runtime (cuda-python returns (error, *values))."""

    def __init__(self) -> None:
        self.rt = _cudart()

    def __call__(self, what: str, result: Any) -> Any:
        values = result if isinstance(result, tuple) else (result,)
        err = values[0]
        if err != self.rt.cudaError_t.cudaSuccess:
            text = self.rt.cudaGetErrorString(err)
            text = text[-1] if isinstance(text, tuple) else text
            text = text.decode() if isinstance(text, bytes) else str(text)
            raise EngineUnavailableError(f"CUDA {what} failed: {text} ({err})")
        rest = values[1:]
        return rest[0] if len(rest) == 1 else None


def _pinned_array(cuda: _Cuda, count: int) -> tuple[int, np.ndarray]:
    pointer = int(cuda("cudaMallocHost", cuda.rt.cudaMallocHost(count * 4)))
    buffer = (ctypes.c_float * count).from_address(pointer)
    return pointer, np.ctypeslib.as_array(buffer)


class _Slot:
    """One execution context with its stream and buffers: the unit of double buffering.

    ``inputs``: each input's name and its largest element count (its buffers' size)."""

    def __init__(self, cuda: _Cuda, engine: Any, inputs: dict[str, int], out_count: int) -> None:
        self.cuda = cuda
        self.context = engine.create_execution_context()
        if self.context is None:
            raise EngineUnavailableError("TensorRT could not create an execution context (GPU "
                                         "memory full?)")
        self.stream = cuda("cudaStreamCreate", cuda.rt.cudaStreamCreate())
        self.host_in: dict[str, tuple[int, np.ndarray]] = {}
        self.dev_in: dict[str, int] = {}
        for name, count in inputs.items():
            self.host_in[name] = _pinned_array(cuda, count)
            self.dev_in[name] = int(cuda("cudaMalloc", cuda.rt.cudaMalloc(count * 4)))
            self.context.set_tensor_address(name, self.dev_in[name])
        self.host_out_ptr, self.host_out = _pinned_array(cuda, out_count)
        self.dev_out = int(cuda("cudaMalloc", cuda.rt.cudaMalloc(out_count * 4)))
        self.context.set_tensor_address(HR_OUTPUT, self.dev_out)
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.pending: tuple[np.ndarray, tuple[int, ...]] | None = None

    def launch(self, chunks: dict[str, np.ndarray], target: np.ndarray) -> None:
        """Stage ``chunks`` (one array per input) and enqueue copy-in, compute and copy-out;
        ``target`` gets the result."""
        rt = self.cuda.rt
        for name, chunk in chunks.items():
            pointer, host = self.host_in[name]
            np.copyto(host[:chunk.size], chunk.reshape(-1))
            if chunk.shape != self.shapes.get(name):
                if not self.context.set_input_shape(name, chunk.shape):
                    raise UsageError(f"TensorRT refused {name} shape {format_shape(chunk.shape)}")
                self.shapes[name] = chunk.shape
        out_shape = tuple(self.context.get_tensor_shape(HR_OUTPUT))
        if int(np.prod(out_shape)) > self.host_out.size:
            raise ModelMismatchError(f"engine output {format_shape(out_shape)} exceeds its "
                                     "buffers; the engine does not match its description")
        for name, chunk in chunks.items():
            self.cuda("cudaMemcpyAsync", rt.cudaMemcpyAsync(
                self.dev_in[name], self.host_in[name][0], chunk.nbytes,
                rt.cudaMemcpyKind.cudaMemcpyHostToDevice, self.stream))
        if not self.context.execute_async_v3(self.stream):
            raise EngineUnavailableError("TensorRT failed to enqueue inference")
        out_bytes = int(np.prod(out_shape)) * 4
        self.cuda("cudaMemcpyAsync", rt.cudaMemcpyAsync(
            self.host_out_ptr, self.dev_out, out_bytes,
            rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, self.stream))
        self.pending = (target, out_shape)

    def finish(self) -> None:
        """Wait for this slot's work and copy its result out of the pinned buffer."""
        if self.pending is None:
            return
        target, out_shape = self.pending
        self.pending = None
        self.cuda("cudaStreamSynchronize", self.cuda.rt.cudaStreamSynchronize(self.stream))
        result = self.host_out[:int(np.prod(out_shape))].reshape(out_shape)
        if result.shape[1:] != target.shape[1:]:
            raise ModelMismatchError(f"engine output {format_shape(out_shape)} does not match "
                                     f"the expected {format_shape(target.shape)}")
        np.copyto(target, result[:target.shape[0]])

    def close(self) -> None:
        rt = self.cuda.rt
        self.pending = None
        rt.cudaStreamSynchronize(self.stream)
        self.context = None
        for name, device in self.dev_in.items():
            rt.cudaFree(device)
            rt.cudaFreeHost(self.host_in[name][0])
        rt.cudaFree(self.dev_out)
        rt.cudaFreeHost(self.host_out_ptr)
        rt.cudaStreamDestroy(self.stream)


class TensorRTEngine(EngineBase):
    """A deserialized TensorRT plan; ``infer`` takes and returns physical units like every engine.

    Attributes beyond the Engine protocol: ``profile`` (the accepted input shapes) and
    ``tile_shape``/``max_batch`` (the shape the engine was tuned for, and the largest batch);
    ``model_file`` (the ``.engine`` file, when loaded from one). ``model_file_sha256`` is the
    plan's sha256; the halo in ``description`` was checked against the ONNX graph when the
    engine was built (:func:`sr_runtime.engines.tensorrt.build.write_engine`).
    """

    def __init__(self, plan: bytes, description: ModelDescription, *, name: str = "tensorrt",
                 origin: str = "engine") -> None:
        trt = require_tensorrt()
        require_gpu()
        self.name = name
        self.description = description
        self.model_file_sha256 = sha256_bytes(plan)  # the plan that runs
        self.model_file: Path | None = None
        self._logger = make_logger(trt)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(plan)
        if self._engine is None:
            detail = "; ".join(self._logger.errors[-2:]) or "no details from TensorRT"
            raise EngineMismatchError(f"TensorRT {trt.__version__} cannot load {origin} "
                                      f"({detail}); rebuild it with `sr-export to-trt MODEL.onnx "
                                      "--overwrite`")
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        self.input_names = [LR_INPUT, HR_STATIC_INPUT] if description.static_inputs else [
            LR_INPUT]
        if sorted(names) != sorted([*self.input_names, HR_OUTPUT]):
            raise ModelMismatchError(f"{origin} has inputs/outputs {names}; this sr-edge model's "
                                     "engines have exactly "
                                     f"{', '.join(map(repr, [*self.input_names, HR_OUTPUT]))}")
        for tensor in names:
            if self._engine.get_tensor_dtype(tensor) != trt.float32:
                raise ModelMismatchError(f"{origin}: tensor {tensor!r} is "
                                         f"{self._engine.get_tensor_dtype(tensor)}, not FP32")
        low, opt, high = self._engine.get_tensor_profile_shape(LR_INPUT, 0)
        self.profile = ShapeProfile(tuple(low), tuple(opt), tuple(high))
        if self.profile.channels != description.input_channels:
            raise ModelMismatchError(f"{origin} takes {self.profile.channels} channels, its "
                                     f"description lists {description.input_channels} input "
                                     "channels (variables, then clock inputs)")
        self.profiles = input_profiles(self.profile, description)
        if HR_STATIC_INPUT in self.profiles:
            built = tuple(tuple(int(d) for d in shape) for shape in
                          self._engine.get_tensor_profile_shape(HR_STATIC_INPUT, 0))
            wanted = self.profiles[HR_STATIC_INPUT]
            if built != (wanted.min, wanted.opt, wanted.max):
                raise ModelMismatchError(
                    f"{origin}: its {HR_STATIC_INPUT!r} profile "
                    f"{' / '.join(format_shape(b) for b in built)} is not s x its {LR_INPUT!r} "
                    f"profile ({wanted.describe()}); rebuild it with `sr-export to-trt`")
        self.tile_shape = tuple(self.profile.opt[2:])
        self.max_batch = self.profile.max[0]
        self.max_window_lr = int(min(self.profile.max[2:]))  # tiling keeps windows within it
        scale = description.scale
        n, _, h, w = self.profile.max
        out_count = n * len(description.variables) * scale * h * scale * w
        counts = {name: int(np.prod(shapes.max)) for name, shapes in self.profiles.items()}
        self._cuda = _Cuda()
        self._slots: list[_Slot] = []
        try:
            for _ in range(2):
                self._slots.append(_Slot(self._cuda, self._engine, counts, out_count))
        except BaseException:
            self.close()
            raise

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        """Channels and tile size must lie in the profile; any batch is chunked or padded."""
        low, high = self.profile.min, self.profile.max
        if len(shape) != 4 or not all(lo <= d <= hi for lo, d, hi in
                                      zip(low[1:], shape[1:], high[1:], strict=True)):
            raise UsageError(
                f"input {format_shape(shape)} does not fit this engine's profile "
                f"({self.profile.describe()}); use tiles of {format_shape(self.profile.opt[2:])} "
                "or rebuild with `sr-export to-trt --tile H,W` / `--min/--opt/--max`")

    def infer(self, lr: np.ndarray, **inputs: np.ndarray) -> np.ndarray:
        if sorted(inputs) != self.input_names[1:]:
            takes = " and ".join(map(repr, self.input_names))
            raise ModelMismatchError(f"this TensorRT engine takes {takes}, not "
                                     f"{', '.join(map(repr, [LR_INPUT, *sorted(inputs)]))}")
        if not self._slots:
            raise UsageError("this TensorRT engine was closed")
        lr = np.ascontiguousarray(lr, dtype=np.float32)
        self._check_shape(lr.shape)
        n, _, h, w = lr.shape
        feeds = {LR_INPUT: lr}
        if HR_STATIC_INPUT in inputs:
            static = np.ascontiguousarray(inputs[HR_STATIC_INPUT], dtype=np.float32)
            s = self.description.scale
            wanted = (n, len(self.description.static_inputs), h * s, w * s)
            if static.shape != wanted:
                raise UsageError(f"{HR_STATIC_INPUT} {format_shape(static.shape)} does not match "
                                 f"the LR input {format_shape(lr.shape)} (expected "
                                 f"{format_shape(wanted)})")
            feeds[HR_STATIC_INPUT] = static
        s = self.description.scale
        out = np.empty((n, len(self.description.variables), s * h, s * w), dtype=np.float32)
        step, least = self.profile.max[0], self.profile.min[0]
        try:
            for i, start in enumerate(range(0, n, step)):
                chunks = {}
                for name, values in feeds.items():
                    chunk = values[start:start + step]
                    if len(chunk) < least:  # static batch: pad with copies of the last tile
                        chunk = np.concatenate([chunk,
                                                np.repeat(chunk[-1:], least - len(chunk), 0)])
                    chunks[name] = chunk
                slot = self._slots[i % 2]
                slot.finish()
                slot.launch(chunks, out[start:start + step])
            for slot in self._slots:
                slot.finish()
        except BaseException:
            for slot in self._slots:
                slot.pending = None
                self._cuda.rt.cudaStreamSynchronize(slot.stream)
            raise
        return out

    def close(self) -> None:
        for slot in self._slots:
            slot.close()
        self._slots = []
        self._engine = None
        self._runtime = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter exit CUDA may already be gone
            self.close()


def load_tensorrt(path: Path, *, cache_dir: Path | None = None,
                  tile: tuple[int, int] | None = None, batch: int | None = None,
                  rebuild: bool = True) -> TensorRTEngine:
    """Load a ``.engine`` after checking its fingerprint, or find/build one for a ``.onnx``.

    A fatal mismatch (other TensorRT version or compute capability) rebuilds from the ONNX model
    recorded in the fingerprint into the engine cache when that model is still there and
    unchanged; otherwise it raises with the command that fixes it.
    """
    path = Path(path)
    cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if path.suffix == ".onnx":
        from sr_runtime.engines.onnxruntime import read_description

        description = read_description(path)
        profile = runtime_profile(description.input_channels, tile, batch)
        return _from_onnx(path, profile, cache_root)

    record = read_record(path)
    here = current_environment()
    found = record.fingerprint.mismatches(here)
    source = record.source_onnx(path)
    if found:
        message = mismatch_message(path, record.fingerprint.environment, here, found,
                                   str(source) if source else None)
        fatal = any(m.fatal for m in found)
        usable_source = (source is not None and source.is_file()
                         and sha256_file(source) == record.fingerprint.onnx_sha256)
        if fatal and rebuild and usable_source and source is not None:
            LOG.warning("%s; rebuilding from %s into %s", message, source, cache_root)
            return _from_onnx(source, record.fingerprint.profile, cache_root)
        if fatal:
            raise EngineMismatchError(message)
        LOG.warning("%s", message)
    plan = read_checked_plan(path, record)
    engine = TensorRTEngine(plan, _checked_description(record, path), origin=str(path))
    engine.model_file = path
    return engine


def _checked_description(record: EngineRecord, engine_path: Path) -> ModelDescription:
    """The sidecar's description, with the halo its source ONNX graph needs when that model is
    still beside the engine and unchanged (engines built by older sr-edge versions took the
    halo from metadata unchecked)."""
    source = record.source_onnx(engine_path)
    if source is None or not source.is_file() or (
            sha256_file(source) != record.fingerprint.onnx_sha256):
        return record.description
    from sr_runtime.engines.graph_check import check_onnx_file

    halo = check_onnx_file(source)[0].halo_lr
    if halo <= record.description.halo_lr:
        return record.description
    return record.description.with_updates(halo_lr=halo)


def _from_onnx(onnx_path: Path, profile: ShapeProfile, cache_root: Path) -> TensorRTEngine:
    from sr_runtime.engines.tensorrt.build import build_cached_engine  # it imports this module

    engine_path = build_cached_engine(onnx_path, profile, cache_root, report=LOG.info)
    record = read_record(engine_path)
    engine = TensorRTEngine(read_checked_plan(engine_path, record), record.description,
                            origin=str(engine_path))
    engine.model_file = engine_path
    return engine
