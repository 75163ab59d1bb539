"""The TensorRT build (runtime) and sr-export to-trt: profiles, recipes, FP16 graph, accuracy
gate, and the build/load flow.

Without a GPU the TensorRT flow runs against a stand-in ``tensorrt`` module and a stand-in
CUDA runtime (below) that execute the parsed ONNX graph with ONNX Runtime CPU. They check our
calls (flags per TensorRT version, pinned layers, profile, timing cache, fingerprint, caching,
double-buffered chunking), not TensorRT itself: that is what the ``gpu`` tests are for.
"""

from __future__ import annotations

import base64
import ctypes
import dataclasses
import enum
import importlib.machinery
import json
import sys
import types
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from typer.testing import CliRunner

from sr_export.cli import app
from sr_export.tensorrt_export import to_trt
from sr_runtime.description import ModelDescription
from sr_runtime.engines import gpu_backends
from sr_runtime.engines.registry import load_engine
from sr_runtime.engines.tensorrt import profiles
from sr_runtime.engines.tensorrt import runner as trt_runtime
from sr_runtime.engines.tensorrt.builder import choose_recipes, tensorrt_major
from sr_runtime.engines.tensorrt.fingerprint import (
    EngineMismatchError,
    read_record,
    sidecar_path,
)
from sr_runtime.engines.tensorrt.fp16 import convert_to_fp16, find_fp32_islands, node_precisions
from sr_runtime.engines.tensorrt.gate import (
    GateMetrics,
    compare_outputs,
    evaluate_gate,
    gate_decision,
)
from sr_runtime.engines.tensorrt.profiles import (
    ShapeProfile,
    parse_shape,
    parse_tile,
    resolve_profile,
)
from sr_runtime.errors import AccuracyGateError, EngineUnavailableError, UsageError
from sr_runtime.synthetic import sample_input as sample_tiles

runner = CliRunner()
FLOAT, FLOAT16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16


# ----------------------------------------------------------------------------- fixtures


def write_sr_edge_checkpoint(path: Path, seed: int = 0) -> Path:
    import torch

    from sr_export.model import SRResNet, SRResNetConfig

    torch.manual_seed(seed)
    config = SRResNetConfig(n_channels=8, n_blocks=1)
    network = SRResNet(config)
    variables = [{"name": "t2m", "units": "K", "lr_mean": 283.16, "lr_std": 4.30,
                  "hr_mean": 283.24, "hr_std": 4.23}]
    torch.save({"state_dict": {f"model.{k}": v for k, v in network.state_dict().items()},
                "hyper_parameters": {"sr_edge": {"model": config.to_dict(),
                                                 "variables": variables}}}, path)
    return path


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory) -> Path:
    """A tiny SRResNet (8 channels, 1 block, x8) exported and validated once."""
    from sr_export.checkpoints import load_checkpoint
    from sr_export.onnx_export import export_onnx

    folder = tmp_path_factory.mktemp("tiny")
    checkpoint = write_sr_edge_checkpoint(folder / "tiny.ckpt")
    export_onnx(load_checkpoint(checkpoint), folder / "tiny.onnx")
    return folder / "tiny.onnx"


@pytest.fixture
def model(tiny_onnx, tmp_path) -> Path:
    """A private copy, so tests can place engines next to it."""
    copy = tmp_path / "model.onnx"
    copy.write_bytes(tiny_onnx.read_bytes())
    return copy


def description_of(path: Path) -> ModelDescription:
    proto = onnx.load(str(path), load_external_data=False)
    return ModelDescription.from_metadata({p.key: p.value for p in proto.metadata_props})


# ----------------------------------------------------------------------------- profiles


def test_parse_tile_and_shapes():
    assert parse_tile("128,96") == (128, 96)
    assert parse_tile("64x64") == (64, 64)
    assert parse_tile("32") == (32, 32)
    for bad in ("12,x", "0,4", "1,2,3", "", "-4,4"):
        with pytest.raises(UsageError, match="--tile"):
            parse_tile(bad)
    assert parse_shape("64,80", channels=1, batch=4, label="opt") == (4, 1, 64, 80)
    assert parse_shape("2x1x64x80", channels=1, batch=4, label="opt") == (2, 1, 64, 80)
    with pytest.raises(UsageError, match="has 3 channels, the model takes 1"):
        parse_shape("1x3x64x64", channels=1, batch=1, label="min")
    with pytest.raises(UsageError, match="--max 'big' is not a shape"):
        parse_shape("big", channels=1, batch=1, label="max")


def test_profile_from_tile_is_static():
    profile = resolve_profile(1, tile="128,128", batch=4)
    assert profile.is_static and profile.opt == (4, 1, 128, 128)


def test_profile_from_min_opt_max():
    profile = resolve_profile(1, min_shape="32,32", opt_shape="128,128", max_shape="256,256",
                              batch=2)
    assert profile == ShapeProfile((1, 1, 32, 32), (2, 1, 128, 128), (2, 1, 256, 256))


def test_default_profile_accepts_halo_tiles():
    profile = resolve_profile(1)
    assert profile.min == (1, 1, 1, 1) and profile.opt == (1, 1, 128, 128)
    assert profile.max == (1, 1, 256, 256)


@pytest.mark.parametrize("kwargs, message", [
    ({"tile": "64,64", "min_shape": "1,1", "opt_shape": "2,2", "max_shape": "3,3"},
     "either --tile"),
    ({"min_shape": "32,32", "max_shape": "64,64"}, "--min, --opt and --max together"),
    ({"min_shape": "64,64", "opt_shape": "32,32", "max_shape": "128,128"}, "min <= opt <= max"),
    ({"tile": "64,64", "batch": 0}, "--batch must be at least 1"),
])
def test_profile_errors(kwargs, message):
    with pytest.raises(UsageError, match=message):
        resolve_profile(1, **kwargs)


# ----------------------------------------------------------------------------- recipes


def test_recipe_follows_tensorrt_version():
    ten = choose_recipes("10.11.0.33")
    assert [r.builder_fp16_flag for r in ten] == [True, True]
    assert not any(r.onnx_fp16 or r.strongly_typed for r in ten)
    assert [r.keep_final_conv for r in ten] == [False, True]
    assert ten[0].precision.startswith("fp16:trt10-builder-flag")

    eleven = choose_recipes("11.2.1.2")
    assert all(r.onnx_fp16 and r.strongly_typed and not r.builder_fp16_flag for r in eleven)
    assert eleven[0].precision.startswith("fp16:trt11-strongly-typed")
    assert eleven[1].precision.endswith("+final-conv")

    assert [r.precision for r in choose_recipes("11.0", "fp32")] == ["fp32"]
    assert tensorrt_major("12.1.0") == 12 and choose_recipes("12.1.0")[0].strongly_typed
    with pytest.raises(EngineUnavailableError, match="TensorRT 8.6.1 is too old"):
        choose_recipes("8.6.1")
    with pytest.raises(UsageError, match="fp16 or fp32"):
        choose_recipes("10.0", "int8")


# ----------------------------------------------------------------------------- FP16 graph


def test_fp16_graph_keeps_normalization_fp32(tiny_onnx):
    original = onnx.load(str(tiny_onnx))
    converted, islands = convert_to_fp16(original)
    assert islands.describe() == "Sub,Div,Mul,Add"
    precisions = node_precisions(converted)
    kept = set(islands.head + islands.tail)
    ops = {node.name: node.op_type for node in converted.graph.node}
    assert sorted(ops[name] for name in kept) == ["Add", "Div", "Mul", "Sub"]
    assert all(precisions[name] == FLOAT for name in kept)
    others = [name for name in precisions if name not in kept]
    assert {ops[name] for name in others} >= {"Conv", "DepthToSpace", "Add"}
    assert all(precisions[name] == FLOAT16 for name in others)  # convs, activations, residuals
    assert converted.graph.input[0].type.tensor_type.elem_type == FLOAT
    assert converted.graph.output[0].type.tensor_type.elem_type == FLOAT
    assert len(converted.metadata_props) == len(original.metadata_props)

    lr = sample_tiles(description_of(tiny_onnx), (12, 20), batch=2)
    fp32 = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    fp16 = ort.InferenceSession(converted.SerializeToString(),
                                providers=["CPUExecutionProvider"])
    reference = fp32.run(None, {"lr": lr})[0]
    candidate = fp16.run(None, {"lr": lr})[0]
    assert candidate.dtype == np.float32 and candidate.shape == (2, 1, 96, 160)
    assert np.sqrt(np.mean((candidate - reference) ** 2)) < 2e-3


def test_fp16_graph_can_keep_final_conv(tiny_onnx):
    original = onnx.load(str(tiny_onnx))
    islands = find_fp32_islands(original, keep_final_conv=True)
    assert "final-Conv" in islands.op_types
    converted, _ = convert_to_fp16(original, keep_final_conv=True)
    precisions = node_precisions(converted)
    convs = [n.name for n in converted.graph.node if n.op_type == "Conv"]
    assert islands.final_conv[0] == convs[-1] and precisions[convs[-1]] == FLOAT
    assert all(precisions[name] == FLOAT16 for name in convs[:-1])


# ----------------------------------------------------------------------------- accuracy gate


def test_gate_passes_within_limit():
    reference = np.full((1, 1, 16, 16), 283.0) + np.linspace(0, 5, 256).reshape(1, 1, 16, 16)
    report = evaluate_gate([(reference, reference + 0.01)], "PyTorch FP32")
    assert report.passed and report.reason == "within limits"
    assert report.metrics.rmse == pytest.approx(0.01) and report.metrics.max_abs == \
        pytest.approx(0.01)
    assert report.metrics.psnr == pytest.approx(20 * np.log10(5 / 0.01))
    assert 0.99 < report.metrics.ssim <= 1.0
    assert "OK" in report.summary()


def test_gate_fails_on_rmse():
    reference = np.zeros((2, 1, 8, 8)) + 280.0
    candidate = reference + 0.03
    report = evaluate_gate([(reference, candidate)], "ONNX Runtime CPU")
    assert not report.passed and "RMSE 0.03 K exceeds 0.02 K" in report.reason
    assert "FAILED" in report.summary()


def test_gate_fails_on_non_finite_values():
    reference = np.zeros((1, 1, 8, 8)) + 280.0
    candidate = reference.copy()
    candidate[0, 0, 3, 3] = np.nan
    candidate[0, 0, 4, 4] = np.inf
    report = evaluate_gate([(reference, candidate)], "PyTorch FP32")
    assert not report.passed
    assert "2 of 64 values are NaN or infinite (FP16 overflow?)" in report.reason


def test_gate_decision_is_pure():
    ok = GateMetrics(max_abs=0.1, rmse=0.019, psnr=40.0, ssim=0.99, data_range=10.0,
                     nonfinite=0, reference_nonfinite=0, values=100)
    assert gate_decision(ok) == (True, "within limits")
    assert not gate_decision(dataclasses.replace(ok, rmse=0.021))[0]
    assert not gate_decision(dataclasses.replace(ok, rmse=float("nan")))[0]
    assert "the reference itself has" in gate_decision(dataclasses.replace(ok,
                                                                     reference_nonfinite=1))[1]
    assert not gate_decision(dataclasses.replace(ok, values=0))[0]
    assert gate_decision(ok, rmse_limit=0.01)[0] is False


def test_compare_outputs_aggregates_shapes():
    a = np.zeros((1, 1, 8, 8))
    b = np.zeros((1, 1, 16, 16))
    metrics = compare_outputs([(a, a + 0.1), (b, b)])
    assert metrics.values == 64 + 256
    assert metrics.rmse == pytest.approx(np.sqrt(64 * 0.01 / 320))
    with pytest.raises(ValueError, match="shapes differ"):
        compare_outputs([(a, b)])


# ----------------------------------------------------------------------------- stand-ins


class FakeCudart:
    """The cuda-python runtime calls the engine makes, on host memory (copies are memmoves)."""

    class cudaError_t:
        cudaSuccess = 0

    class cudaMemcpyKind:
        cudaMemcpyHostToDevice = 1
        cudaMemcpyDeviceToHost = 2

    def __init__(self) -> None:
        self.buffers: dict[int, ctypes.Array] = {}
        self.copies: list[tuple[int, int]] = []

    def _alloc(self, nbytes: int) -> tuple[int, int]:
        buffer = ctypes.create_string_buffer(int(nbytes))
        self.buffers[ctypes.addressof(buffer)] = buffer
        return 0, ctypes.addressof(buffer)

    cudaMalloc = cudaMallocHost = _alloc

    def cudaFree(self, pointer: int) -> tuple[int]:
        self.buffers.pop(pointer, None)
        return (0,)

    cudaFreeHost = cudaFree

    def cudaStreamCreate(self) -> tuple[int, object]:
        return 0, object()

    def cudaStreamSynchronize(self, stream: object) -> tuple[int]:
        return (0,)

    cudaStreamDestroy = cudaStreamSynchronize

    def cudaMemcpyAsync(self, dst: int, src: int, nbytes: int, kind: int,
                        stream: object) -> tuple[int]:
        ctypes.memmove(dst, src, nbytes)
        self.copies.append((kind, nbytes))
        return (0,)

    def cudaGetErrorString(self, err: int) -> tuple[int, bytes]:
        return 0, b"fake"


def make_fake_tensorrt(version: str) -> types.ModuleType:
    """Enough of the tensorrt module for sr-edge's builder and runtime; records what it saw."""
    trt = types.ModuleType("tensorrt")
    trt.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)
    trt.__version__ = version
    trt.float32, trt.float16 = "float32", "float16"
    trt.builds = []  # one dict per build
    trt.noise = 0.0  # added to every output: makes the gate fail
    major = int(version.split(".")[0])

    class Severity(enum.IntEnum):
        INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

    class ILogger:
        def __init__(self) -> None:
            pass

    ILogger.Severity = Severity
    trt.ILogger = ILogger

    class IProgressMonitor:
        def __init__(self) -> None:
            pass

    trt.IProgressMonitor = IProgressMonitor
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=1)
    flags = {"TF32": "TF32"}
    if major < 11:  # removed in TensorRT 11: touching them there is an AttributeError
        flags.update(FP16="FP16", OBEY_PRECISION_CONSTRAINTS="OBEY_PRECISION_CONSTRAINTS")
    trt.BuilderFlag = types.SimpleNamespace(**flags)
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")

    class Tensor:
        def __init__(self, name: str) -> None:
            self.name = name

    class Layer:
        def __init__(self, node: onnx.NodeProto) -> None:
            self.name = node.name
            self.op = node.op_type
            self.outputs = [Tensor(name) for name in node.output]
            self.num_outputs = len(self.outputs)
            self.precision = None
            self.output_types: dict[int, str] = {}

        def get_output(self, i: int) -> Tensor:
            return self.outputs[i]

        def set_output_type(self, i: int, dtype: str) -> None:
            self.output_types[i] = dtype

    class Network:
        def __init__(self, flags: int) -> None:
            self.flags = flags
            self.layers: list[Layer] = []
            self.onnx = b""

        @property
        def num_layers(self) -> int:
            return len(self.layers)

        def get_layer(self, i: int) -> Layer:
            return self.layers[i]

    class OnnxParser:
        def __init__(self, network: Network, logger: ILogger) -> None:
            self.network = network
            self.num_errors = 0

        def parse_from_file(self, path: str) -> bool:
            model = onnx.load(path)
            self.network.onnx = model.SerializeToString()
            self.network.layers = [Layer(n) for n in model.graph.node if n.op_type != "Constant"]
            return True

    class TimingCache:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def serialize(self) -> bytes:
            return self.data + b"+timing"

    class Profile:
        def __init__(self) -> None:
            self.shapes: dict[str, tuple] = {}  # input name -> (min, opt, max)

        def set_shape(self, name: str, low, opt, high) -> None:
            self.shapes[name] = (tuple(low), tuple(opt), tuple(high))

    class Config:
        def __init__(self) -> None:
            self.flags: set[str] = set()
            self.profiles: list[Profile] = []
            self.pools: dict[str, int] = {}
            self.cache: TimingCache | None = None
            self.progress_monitor = None

        def set_flag(self, flag: str) -> None:
            self.flags.add(flag)

        def set_memory_pool_limit(self, pool: str, size: int) -> None:
            self.pools[pool] = size

        def add_optimization_profile(self, profile: Profile) -> int:
            self.profiles.append(profile)
            return 0

        def create_timing_cache(self, data: bytes) -> TimingCache:
            return TimingCache(bytes(data))

        def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
            self.cache = cache
            return True

        def get_timing_cache(self) -> TimingCache:
            return self.cache  # type: ignore[return-value]

    class Builder:
        def __init__(self, logger: ILogger) -> None:
            self.logger = logger

        def create_network(self, flags: int = 0) -> Network:
            return Network(flags)

        def create_builder_config(self) -> Config:
            return Config()

        def create_optimization_profile(self) -> Profile:
            return Profile()

        def build_serialized_network(self, network: Network, config: Config) -> bytes:
            monitor = config.progress_monitor
            if monitor is not None:
                monitor.phase_start("Building", None, 2)
                monitor.step_complete("Building", 0)
                monitor.step_complete("Building", 1)
                monitor.phase_finish("Building")
            (shapes,) = [p.shapes for p in config.profiles]  # one profile, every input in it
            low, opt, high = shapes["lr"]
            trt.builds.append({
                "flags": network.flags, "config_flags": set(config.flags),
                "pinned": sorted(layer.op for layer in network.layers
                                 if layer.precision == trt.float32),
                "casts": sum(layer.op == "Cast" for layer in network.layers),
                "profile": (low, opt, high), "profiles": dict(shapes),
                "timing_cache_in": config.cache.data
                if config.cache else None, "pools": dict(config.pools)})
            return json.dumps({"version": trt.__version__, "profile": [low, opt, high],
                               "profiles": {k: list(v) for k, v in shapes.items()},
                               "noise": trt.noise,
                               "onnx": base64.b64encode(network.onnx).decode()}).encode()

    class Context:
        def __init__(self, engine: Engine) -> None:
            self.engine = engine
            self.addresses: dict[str, int] = {}
            self.shapes: dict[str, tuple[int, ...] | None] = {}

        @property
        def shape(self) -> tuple[int, ...] | None:
            return self.shapes.get("lr")

        def set_tensor_address(self, name: str, pointer: int) -> bool:
            self.addresses[name] = pointer
            return True

        def set_input_shape(self, name: str, shape) -> bool:
            low, _, high = self.engine.profiles[name]
            ok = all(lo <= d <= hi for lo, d, hi in zip(low, shape, high, strict=True))
            self.shapes[name] = tuple(shape) if ok else None
            return ok

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            n, _, h, w = self.shape  # type: ignore[misc]
            return (n, self.engine.outputs, h * self.engine.scale, w * self.engine.scale)

        def execute_async_v3(self, stream: object) -> bool:
            feed = {}
            for name in self.engine.inputs:
                shape = self.shapes[name]
                count = int(np.prod(shape))
                feed[name] = np.ctypeslib.as_array((ctypes.c_float * count).from_address(
                    self.addresses[name])).reshape(shape).copy()
            hr = self.engine.session.run(None, feed)[0] + np.float32(self.engine.noise)
            ctypes.memmove(self.addresses["hr"], np.ascontiguousarray(hr, np.float32).ctypes.data,
                           hr.nbytes)
            return True

    class Engine:
        def __init__(self, plan: dict) -> None:
            model = base64.b64decode(plan["onnx"])
            self.session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
            proto = onnx.ModelProto.FromString(model)
            description = ModelDescription.from_metadata(
                {p.key: p.value for p in proto.metadata_props})
            self.scale, self.outputs = description.scale, len(description.variables)
            self.profiles = {name: [tuple(s) for s in shapes]
                             for name, shapes in plan["profiles"].items()}
            self.inputs = [i.name for i in self.session.get_inputs()]
            self.noise = plan["noise"]
            self.num_io_tensors = len(self.inputs) + 1

        def get_tensor_name(self, i: int) -> str:
            return [*self.inputs, "hr"][i]

        def get_tensor_dtype(self, name: str) -> str:
            return trt.float32

        def get_tensor_profile_shape(self, name: str, profile: int) -> list[tuple[int, ...]]:
            return list(self.profiles[name])

        def create_execution_context(self) -> Context:
            return Context(self)

    class Runtime:
        def __init__(self, logger: ILogger) -> None:
            self.logger = logger

        def deserialize_cuda_engine(self, plan: bytes) -> Engine | None:
            data = json.loads(bytes(plan))
            if data["version"] != trt.__version__:
                self.logger.log(Severity.ERROR, "Version tag does not match")
                return None
            return Engine(data)

    trt.Builder, trt.OnnxParser, trt.Runtime = Builder, OnnxParser, Runtime
    return trt


@pytest.fixture
def fake_gpu(monkeypatch, tmp_path):
    """TensorRT 10 on a fake H100; ``fake_gpu(version)`` switches TensorRT versions."""
    cudart = FakeCudart()
    monkeypatch.setattr(gpu_backends, "probe_cuda", lambda: gpu_backends.CudaDevice(
        0, "NVIDIA H100 80GB HBM3", "9.0", "13.0"))
    monkeypatch.setattr(gpu_backends, "cuda_python_reason", lambda: None)
    monkeypatch.setattr(trt_runtime, "_cudart", lambda: cudart)
    monkeypatch.setenv("SR_EDGE_ENGINE_CACHE", str(tmp_path / "cache"))

    def install(version: str = "10.11.0.33") -> types.ModuleType:
        trt = make_fake_tensorrt(version)
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
        return trt

    install.cudart = cudart  # type: ignore[attr-defined]
    return install


def ort_reference(path: Path, lr: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"lr": lr})[0]


# ----------------------------------------------------------------------------- build flow


def test_tensorrt10_build_pins_normalization_and_writes_fingerprint(fake_gpu, model, tmp_path):
    trt = fake_gpu("10.11.0.33")
    messages: list[str] = []
    result = to_trt(model, tile="16,16", batch=2, workspace_mb=512, progress=messages.append)
    engine = tmp_path / "model.engine"
    assert result.engine == engine and engine.is_file() and sidecar_path(engine).is_file()
    (build,) = trt.builds
    assert build["config_flags"] == {"FP16", "OBEY_PRECISION_CONSTRAINTS"}
    assert build["pinned"] == ["Add", "Div", "Mul", "Sub"]  # only the normalization
    assert build["flags"] == 0 and build["casts"] == 0
    assert build["profile"] == ((2, 1, 16, 16),) * 3
    assert build["pools"] == {"WORKSPACE": 512 << 20}
    assert any("Building 2/2" in m for m in messages)

    record = read_record(engine)
    assert record.fingerprint.tensorrt_version == "10.11.0.33"
    assert record.fingerprint.gpu_name == "NVIDIA H100 80GB HBM3"
    assert record.fingerprint.compute_capability == "9.0"
    assert record.fingerprint.precision == result.recipe.precision
    assert record.onnx_path == "model.onnx" and record.accuracy["passed"] is True
    assert record.description == description_of(model)
    timing = list((tmp_path / "cache" / "timing").iterdir())
    assert len(timing) == 1 and timing[0].read_bytes() == b"+timing"

    # The registry loads the .engine; batches larger than the profile are chunked and the last
    # chunk padded to the static batch of 2.
    selection = load_engine("tensorrt", engine)
    lr = sample_tiles(record.description, (16, 16), batch=5, seed=3)
    out = selection.engine.infer(lr)
    np.testing.assert_allclose(out, ort_reference(model, lr), atol=1e-4)
    with pytest.raises(UsageError, match="does not fit this engine's profile"):
        selection.engine.infer(lr[:, :, :8, :8])

    # The second build reuses (and extends) the timing cache.
    to_trt(model, tile="16,16", batch=2, overwrite=True)
    assert trt.builds[1]["timing_cache_in"] == b"+timing"


def test_engine_gets_the_halo_its_graph_needs_and_its_plan_hash(fake_gpu, model, tmp_path):
    import hashlib

    proto = onnx.load(str(model))
    for entry in proto.metadata_props:
        if entry.key == "sr_edge.description":
            raw = json.loads(entry.value)
            true_halo, raw["halo_lr"] = raw["halo_lr"], 1  # the metadata claims too little
            entry.value = json.dumps(raw)
    onnx.save(proto, str(model))
    fake_gpu()
    to_trt(model, tile="16,16")
    engine_path = tmp_path / "model.engine"
    assert read_record(engine_path).description.halo_lr == true_halo == 10
    engine = load_engine("tensorrt", engine_path).engine
    assert engine.description.halo_lr == true_halo
    assert engine.model_file_sha256 == hashlib.sha256(engine_path.read_bytes()).hexdigest()
    assert engine.model_file == engine_path
    # a sidecar written without the check (older sr-edge): the source ONNX graph decides
    sidecar = json.loads(sidecar_path(engine_path).read_text())
    sidecar["description"]["halo_lr"] = 1
    sidecar_path(engine_path).write_text(json.dumps(sidecar))
    assert read_record(engine_path).description.halo_lr == 1
    assert load_engine("tensorrt", engine_path).engine.description.halo_lr == true_halo


def test_tensorrt11_builds_strongly_typed_from_fp16_graph(fake_gpu, model):
    trt = fake_gpu("11.2.1.2")
    result = to_trt(model, tile="8,8")
    (build,) = trt.builds
    assert build["flags"] == 1 << 1  # STRONGLY_TYPED (ignored but harmless on 11)
    assert build["config_flags"] == set() and build["pinned"] == []
    assert build["casts"] == 2  # FP32 -> FP16 after Div, FP16 -> FP32 before Mul
    assert result.recipe.precision.startswith("fp16:trt11-strongly-typed")
    assert result.report.passed and result.report.metrics.rmse < 2e-3


def test_failing_engine_is_not_written(fake_gpu, model, tmp_path):
    trt = fake_gpu()
    trt.noise = 0.05
    with pytest.raises(AccuracyGateError) as err:
        to_trt(model, tile="8,8")
    assert "nothing was written" in str(err.value) and "+final-conv" in str(err.value)
    assert len(trt.builds) == 2  # retried with the final conv in FP32
    assert set(trt.builds[1]["pinned"]) - {"DepthToSpace"} == {"Add", "Conv", "Div", "Mul", "Sub"}
    assert not (tmp_path / "model.engine").exists()
    assert not sidecar_path(tmp_path / "model.engine").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_non_finite_output_stops_at_once(fake_gpu, model, tmp_path):
    trt = fake_gpu()
    trt.noise = float("nan")
    with pytest.raises(AccuracyGateError, match="NaN or infinite"):
        to_trt(model, tile="8,8")
    assert len(trt.builds) == 1 and not (tmp_path / "model.engine").exists()


def test_mismatched_engine_rebuilds_from_its_onnx_into_the_cache(fake_gpu, model, tmp_path):
    fake_gpu("10.8.0.43")
    to_trt(model, tile="8,8")
    engine = tmp_path / "model.engine"
    trt = fake_gpu("10.11.0.33")  # the machine was upgraded
    loaded = trt_runtime.load_tensorrt(engine)
    assert len(trt.builds) == 1
    cached = list((tmp_path / "cache").glob("*.engine"))
    assert len(cached) == 1
    assert read_record(cached[0]).fingerprint.tensorrt_version == "10.11.0.33"
    assert read_record(cached[0]).fingerprint.profile == read_record(engine).fingerprint.profile
    lr = sample_tiles(loaded.description, (8, 8), seed=5)
    np.testing.assert_allclose(loaded.infer(lr), ort_reference(model, lr), atol=1e-4)

    model.write_bytes(model.read_bytes() + b"\n")  # the ONNX changed: no silent rebuild
    with pytest.raises(EngineMismatchError) as err:
        trt_runtime.load_tensorrt(engine)
    message = str(err.value)
    assert "TensorRT version 10.8.0.43 -> 10.11.0.33" in message
    assert f"sr-export to-trt {model} --out {engine} --overwrite" in message


def test_onnx_model_gets_a_cached_engine(fake_gpu, model, tmp_path, monkeypatch):
    monkeypatch.setattr(profiles, "DEFAULT_OPT_TILE", (16, 16))  # small: a fast gate
    monkeypatch.setattr(profiles, "DEFAULT_MAX_TILE", (32, 32))
    trt = fake_gpu()
    first = trt_runtime.load_tensorrt(model, tile=(8, 8))
    second = load_engine("tensorrt", model, tile=(8, 8)).engine
    assert len(trt.builds) == 1
    assert first.profile == second.profile == ShapeProfile(*[(1, 1, 8, 8)] * 3)
    assert len(list((tmp_path / "cache").glob("*.engine.json"))) == 1
    dynamic = trt_runtime.load_tensorrt(model)  # default profile: another fingerprint
    assert len(trt.builds) == 2 and dynamic.profile.max == (1, 1, 32, 32)
    lr = sample_tiles(dynamic.description, (24, 20), seed=1)
    np.testing.assert_allclose(dynamic.infer(lr), ort_reference(model, lr), atol=1e-4)


class _Blocker:
    """Makes the export side and torch unimportable (``sys.meta_path`` finder)."""

    BLOCKED = ("torch", "sr_export", "lightning")

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.BLOCKED:
            raise ImportError(f"{name} is blocked for this test")
        return None


def test_runtime_builds_and_rebuilds_without_torch_or_sr_export(fake_gpu, model, tmp_path,
                                                                 monkeypatch):
    """The runtime's build path (ONNX -> gated engine, cache, rebuild) imports neither."""
    from sr_runtime.engines.tensorrt import build

    for name in [m for m in sys.modules if m.split(".")[0] in _Blocker.BLOCKED]:
        monkeypatch.delitem(sys.modules, name)  # restored after the test
    monkeypatch.setattr(sys, "meta_path", [_Blocker(), *sys.meta_path])
    fake_gpu("10.8.0.43")
    result = build.to_trt(model, tile="8,8")
    assert result.report.reference == build.ONNX_REFERENCE and result.report.passed
    trt = fake_gpu("10.11.0.33")  # upgraded: the fingerprint no longer matches
    loaded = trt_runtime.load_tensorrt(result.engine)
    assert len(trt.builds) == 1 and loaded.model_file.parent == tmp_path / "cache"
    lr = sample_tiles(loaded.description, (8, 8), seed=2)
    np.testing.assert_allclose(loaded.infer(lr), ort_reference(model, lr), atol=1e-4)
    assert not [m for m in sys.modules if m.split(".")[0] in _Blocker.BLOCKED]
    checkpoint = tmp_path / "model.ckpt"
    checkpoint.write_bytes(b"unused")
    with pytest.raises(UsageError, match="for a checkpoint use `sr-export to-trt`"):
        build.to_trt(checkpoint)


def test_to_trt_from_checkpoint_reuses_its_onnx_and_gates_against_pytorch(fake_gpu, tiny_onnx,
                                                                        tmp_path):
    for name in ("tiny.ckpt", "tiny.onnx"):  # the ONNX model was exported from this checkpoint
        (tmp_path / name).write_bytes((tiny_onnx.parent / name).read_bytes())
    fake_gpu()
    messages: list[str] = []
    result = to_trt(tmp_path / "tiny.ckpt", tile="8,8", info=messages.append)
    assert not result.exported and result.onnx == tmp_path / "tiny.onnx"
    assert any("reusing" in m for m in messages)
    assert result.report.reference == "PyTorch FP32" and result.report.passed
    assert read_record(tmp_path / "tiny.engine").onnx_path == "tiny.onnx"


@pytest.mark.skipif(gpu_backends.tensorrt_reason() is None,
                    reason="TensorRT and a GPU are present: this test is about their absence")
def test_cli_without_tensorrt_writes_nothing_and_says_how(tmp_path):
    checkpoint = write_sr_edge_checkpoint(tmp_path / "model.ckpt")
    result = runner.invoke(app, ["to-trt", str(checkpoint), "--tile", "32,32"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert "pip install 'sr-edge[gpu]'" in result.output
    assert f"sr-export to-onnx {checkpoint}" in result.output  # what can be done here
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.ckpt"]  # nothing written


def test_cli_usage_errors(tmp_path):
    checkpoint = tmp_path / "model.ckpt"
    checkpoint.write_bytes(b"not used")
    result = runner.invoke(app, ["to-trt", str(tmp_path / "missing.onnx")])
    assert result.exit_code == 2 and "model not found" in result.output
    (tmp_path / "model.engine").write_bytes(b"old")
    result = runner.invoke(app, ["to-trt", str(checkpoint)])
    assert result.exit_code == 2 and "--overwrite" in result.output
    result = runner.invoke(app, ["to-trt", str(checkpoint), "--precision", "int8", "--out",
                                 str(tmp_path / "x.engine")])
    assert result.exit_code == 2 and "--precision must be one of fp16, fp32" in result.output


def test_tensorrt_build_and_run_feed_hr_static(static_models, fake_gpu, tmp_path):
    """The TensorRT stand-in (tests/runtime/engines/test_tensorrt_build.py) runs the parsed graph
    on ONNX Runtime: the build sets a profile for each input, the engine stages both inputs."""
    from sr_runtime.description import HR_STATIC_INPUT, LR_INPUT
    from sr_runtime.engines.tensorrt.build import to_trt
    from sr_runtime.errors import ModelMismatchError
    from sr_runtime.synthetic import sample_feed

    trt = fake_gpu("10.11.0.33")
    model = tmp_path / "static.onnx"
    model.write_bytes(static_models["two"].read_bytes())
    result = to_trt(model, tile="12,12", batch=2)
    (build,) = trt.builds
    assert build["profiles"] == {LR_INPUT: ((2, 2, 12, 12),) * 3,
                                 HR_STATIC_INPUT: ((2, 2, 96, 96),) * 3}
    assert result.report.passed
    engine = load_engine("tensorrt", result.engine).engine
    feed = sample_feed(engine.description, (12, 12), batch=5, seed=2)  # chunked 2 + 2 + 1
    out = engine.infer(feed[LR_INPUT], hr_static=feed[HR_STATIC_INPUT])
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(out, session.run(None, feed)[0], atol=1e-4)
    with pytest.raises(ModelMismatchError, match="takes 'lr' and 'hr_static'"):
        engine.infer(feed[LR_INPUT])
    with pytest.raises(UsageError, match="does not match the LR input"):
        engine.infer(feed[LR_INPUT], hr_static=feed[HR_STATIC_INPUT][:, :, :48])


def test_tensorrt_profile_of_a_clock_model_covers_its_clock_channels(fake_gpu, tmp_path):
    """An LR-only model with clock inputs takes 1 + 4 channels: the build profile and the
    engine's own check count them, and the engine matches ONNX Runtime."""
    pytest.importorskip("torch")
    from sr_export.checkpoints import LoadedCheckpoint
    from sr_export.model import SRResNet, SRResNetConfig
    from sr_export.onnx_export import export_onnx
    from sr_runtime.clock import CLOCK_FEATURES
    from sr_runtime.description import LR_INPUT, ModelDescription, VariableSpec
    from sr_runtime.engines.tensorrt.build import to_trt
    from sr_runtime.synthetic import sample_input

    config = SRResNetConfig(n_channels=4, n_blocks=1, upsample_skip="bicubic",
                            clock_channels=len(CLOCK_FEATURES))
    description = ModelDescription(scale=8, variables=(VariableSpec("t2m", "K", 283.0, 5.0,
                                                                    283.0, 5.0),),
                                   arch_params=config.to_dict(), halo_lr=config.halo_lr(),
                                   clock_inputs=CLOCK_FEATURES)
    model = tmp_path / "clock.onnx"
    export_onnx(LoadedCheckpoint(SRResNet(config).eval(), description, "sr-edge"), model)
    trt = fake_gpu("10.11.0.33")
    result = to_trt(model, tile="12,12", batch=1)
    (build,) = trt.builds
    assert build["profiles"] == {LR_INPUT: ((1, 5, 12, 12),) * 3}
    assert result.report.passed
    engine = load_engine("tensorrt", result.engine).engine
    lr = sample_input(engine.description, (12, 12), batch=1, seed=4)
    assert lr.shape == (1, 5, 12, 12)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(engine.infer(lr), session.run(None, {LR_INPUT: lr})[0],
                               atol=1e-4)
