"""GPU backends: availability reasons, ``auto`` order, lazy imports; real GPU runs (marker gpu).

The ``gpu`` tests run on a machine with an NVIDIA GPU (``pytest -m gpu``, or
``benchmarks/gpu_check.py``) and are skipped elsewhere with the reason the backend gives.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from sr_runtime.engines import gpu_backends
from sr_runtime.engines.registry import AUTO_ORDER, ENGINES, load_engine
from sr_runtime.engines.tensorrt.fingerprint import read_record
from sr_runtime.engines.tensorrt.ort_provider import ort_tensorrt_providers
from sr_runtime.engines.tensorrt.profiles import ShapeProfile
from sr_runtime.errors import EngineUnavailableError
from tests.conftest import save_described_model

TENSORRT_REASON = gpu_backends.tensorrt_reason()
ORT_CUDA_REASON = gpu_backends.onnxruntime_provider_reason("CUDAExecutionProvider")
ORT_TRT_REASON = gpu_backends.onnxruntime_provider_reason("TensorrtExecutionProvider")
GPU_REASON = gpu_backends.gpu_reason()


@pytest.fixture
def no_gpu_stack(monkeypatch):
    """A machine with CPU onnxruntime, no tensorrt and no GPU, whatever this one has."""
    real = gpu_backends._has_module
    monkeypatch.setattr(gpu_backends, "_has_module",
                        lambda name: False if name.split(".")[0] in ("tensorrt", "cuda")
                        else real(name))
    monkeypatch.setattr(gpu_backends, "probe_cuda", lambda: gpu_backends.NO_GPU)
    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["CPUExecutionProvider"])


def test_gpu_backends_are_registered_in_auto_order():
    assert AUTO_ORDER[:3] == ("tensorrt", "ort-tensorrt", "ort-cuda")
    assert {"tensorrt", "ort-tensorrt", "ort-cuda"} <= set(ENGINES)
    assert ENGINES["tensorrt"].accepts == (".engine", ".onnx")
    assert ENGINES["ort-cuda"].accepts == (".onnx",)


def test_reasons_say_what_to_install(no_gpu_stack):
    trt = ENGINES["tensorrt"].available()
    assert "tensorrt is not installed" in trt and "sr-edge[gpu]" in trt
    assert "Dockerfile.trt" in trt and "no NVIDIA GPU visible" in trt
    ort_trt = ENGINES["ort-tensorrt"].available()
    assert "no TensorrtExecutionProvider" in ort_trt
    assert "pip uninstall -y onnxruntime" in ort_trt and "onnxruntime-gpu" in ort_trt
    assert "onnxruntime has no CUDAExecutionProvider" in ENGINES["ort-cuda"].available()


def test_gpu_provider_without_gpu(monkeypatch, no_gpu_stack):
    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert ENGINES["ort-cuda"].available() == gpu_backends.NO_GPU


def test_auto_picks_onnxruntime_and_lists_skipped_gpu_backends(no_gpu_stack, tmp_path):
    model = tiny_identity_model(tmp_path / "m.onnx")
    selection = load_engine("auto", model)
    assert selection.engine.name == "onnxruntime"
    assert [name for name, _ in selection.skipped] == ["tensorrt", "ort-tensorrt", "ort-cuda"]
    reasons = dict(selection.skipped)
    assert "tensorrt is not installed" in reasons["tensorrt"]
    assert "no TensorrtExecutionProvider" in reasons["ort-tensorrt"]
    assert "no CUDAExecutionProvider" in reasons["ort-cuda"]
    with pytest.raises(EngineUnavailableError, match="backend 'tensorrt' is not usable here: "
                                                     "tensorrt is not installed"):
        load_engine("tensorrt", model)


def test_summary_says_no_gpu_once_and_names_the_backends_it_rules_out(no_gpu_stack, tmp_path):
    selection = load_engine("auto", tiny_identity_model(tmp_path / "m.onnx"))
    lines = selection.summary()
    assert lines == [f"backend: onnxruntime (tensorrt, ort-tensorrt, ort-cuda skipped: "
                     f"{gpu_backends.NO_GPU}; `sr-run --backend tensorrt` says what else it needs)"]
    verbose = selection.summary(verbose=True)
    assert len(verbose) == 4 and verbose[-1] == "backend: onnxruntime"
    assert "tensorrt is not installed" in verbose[0]


def test_summary_gives_each_reason_when_a_gpu_is_there(monkeypatch, no_gpu_stack, tmp_path):
    h100 = gpu_backends.CudaDevice(0, "NVIDIA H100 80GB HBM3", "9.0", "13.0")
    monkeypatch.setattr(gpu_backends, "probe_cuda", lambda: h100)
    lines = load_engine("auto", tiny_identity_model(tmp_path / "m.onnx")).summary()
    assert [line.split(" skipped:")[0] for line in lines[:3]] == [
        "backend tensorrt", "backend ort-tensorrt", "backend ort-cuda"]
    assert "tensorrt is not installed" in lines[0] and "CUDAExecutionProvider" in lines[2]
    assert lines[3] == "backend: onnxruntime"


def test_engine_files_only_load_with_tensorrt(no_gpu_stack, tmp_path):
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"plan")
    with pytest.raises(EngineUnavailableError) as err:
        load_engine("auto", engine)
    message = str(err.value)
    assert "tensorrt: tensorrt is not installed" in message
    assert "onnxruntime: does not load .engine files" in message


def test_importing_and_probing_never_imports_tensorrt_cuda_or_torch():
    code = textwrap.dedent("""
        import sys
        import sr_runtime
        from sr_runtime.engines import registry
        for spec in registry.ENGINES.values():
            spec.available()
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorrt", "torch") or
                     m == "cuda" or m.startswith("cuda.")))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


class FakeDriver:
    """libcuda's few entry points that probe_cuda calls; writes through ctypes.byref."""

    def __init__(self, init_status: int = 0) -> None:
        self.init_status = init_status

    def cuInit(self, flags):
        return self.init_status

    def cuDeviceGetCount(self, count):
        count._obj.value = 1
        return 0

    def cuDeviceGet(self, device, ordinal):
        device._obj.value = 0
        return 0

    def cuDeviceGetName(self, buffer, size, device):
        buffer.value = b"NVIDIA H100 80GB HBM3"
        return 0

    def cuDeviceGetAttribute(self, value, attribute, device):
        value._obj.value = {75: 9, 76: 0}[attribute]
        return 0

    def cuDriverGetVersion(self, version):
        version._obj.value = 12080
        return 0


def test_probe_cuda_reads_name_and_compute_capability(monkeypatch):
    probe = gpu_backends.probe_cuda.__wrapped__
    monkeypatch.setattr(gpu_backends, "_driver_library", lambda: FakeDriver())
    assert probe() == gpu_backends.CudaDevice(0, "NVIDIA H100 80GB HBM3", "9.0", "12.8")
    monkeypatch.setattr(gpu_backends, "_driver_library", lambda: FakeDriver(init_status=100))
    assert probe() == "no NVIDIA GPU visible (the CUDA driver reports CUDA_ERROR_NO_DEVICE)"
    monkeypatch.setattr(gpu_backends, "_driver_library", lambda: None)
    assert probe() == gpu_backends.NO_GPU


def test_ort_tensorrt_provider_options(tmp_path):
    profile = ShapeProfile((1, 1, 8, 8), (1, 1, 128, 128), (2, 1, 256, 256))
    providers = ort_tensorrt_providers(tmp_path, "fp16", profile, tensorrt_major=10)
    (name, options), cuda, cpu = providers
    assert (name, cuda[0], cpu) == ("TensorrtExecutionProvider", "CUDAExecutionProvider",
                                    "CPUExecutionProvider")
    assert options["trt_fp16_enable"] is True
    assert options["trt_engine_cache_enable"] and options["trt_timing_cache_enable"]
    assert options["trt_engine_cache_path"] == str(tmp_path)
    assert options["trt_profile_min_shapes"] == "lr:1x1x8x8"
    assert options["trt_profile_max_shapes"] == "lr:2x1x256x256"
    eleven = ort_tensorrt_providers(tmp_path, "fp16", None, tensorrt_major=11)[0][1]
    assert "trt_fp16_enable" not in eleven  # TensorRT 11: FP16 comes from the graph
    assert "trt_fp16_enable" not in ort_tensorrt_providers(tmp_path)[0][1]  # FP32 default


def tiny_identity_model(path: Path) -> Path:
    """A self-describing ONNX model (x1 identity) for selection tests; no torch needed."""
    from onnx import TensorProto, helper

    from sr_runtime.description import ModelDescription, VariableSpec

    graph = helper.make_graph(
        [helper.make_node("Identity", ["lr"], ["hr"])], "identity",
        [helper.make_tensor_value_info("lr", TensorProto.FLOAT, ["n", 1, "h", "w"])],
        [helper.make_tensor_value_info("hr", TensorProto.FLOAT, ["n", 1, "h", "w"])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    proto.ir_version = 9
    description = ModelDescription(scale=1, variables=(VariableSpec("t2m", "K", 280, 5, 280,
                                                                    5),))
    return save_described_model(proto, description, path)


# ----------------------------------------------------------------------------- on a GPU


@pytest.fixture(scope="module")
def sr_onnx(tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    from sr_export.checkpoints import load_checkpoint
    from sr_export.onnx_export import export_onnx
    from tests.runtime.engines.test_tensorrt_build import write_sr_edge_checkpoint

    folder = tmp_path_factory.mktemp("gpu")
    checkpoint = write_sr_edge_checkpoint(folder / "tiny.ckpt")
    export_onnx(load_checkpoint(checkpoint), folder / "tiny.onnx")
    return folder / "tiny.onnx"


def cpu_reference(path: Path, lr: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"lr": lr})[0]


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a.astype(np.float64) - b) ** 2)))


@pytest.mark.gpu
@pytest.mark.skipif(GPU_REASON is not None, reason=GPU_REASON or "")
def test_probe_cuda_sees_the_gpu():
    device = gpu_backends.require_gpu()
    assert device.name and re.fullmatch(r"\d+\.\d+", device.compute_capability)


@pytest.mark.gpu
@pytest.mark.skipif(TENSORRT_REASON is not None, reason=TENSORRT_REASON or "")
def test_tensorrt_build_gate_and_run(sr_onnx, tmp_path, monkeypatch):
    from sr_export.tensorrt_export import to_trt
    from sr_runtime.synthetic import sample_input as sample_tiles

    monkeypatch.setenv("SR_EDGE_ENGINE_CACHE", str(tmp_path / "cache"))
    result = to_trt(sr_onnx, out=tmp_path / "tiny.engine", tile="32,32", batch=2)
    assert result.report.passed and result.report.metrics.rmse <= 0.02
    here = gpu_backends.require_gpu()
    record = read_record(tmp_path / "tiny.engine")
    assert record.fingerprint.compute_capability == here.compute_capability
    selection = load_engine("auto", tmp_path / "tiny.engine")
    assert selection.engine.name == "tensorrt"
    lr = sample_tiles(record.description, (32, 32), batch=5, seed=9)  # 2 + 2 + 1 (padded)
    out = selection.engine.infer(lr)
    assert np.isfinite(out).all() and rmse(out, cpu_reference(sr_onnx, lr)) <= 0.02
    selection.engine.close()


@pytest.mark.gpu
@pytest.mark.skipif(TENSORRT_REASON is not None, reason=TENSORRT_REASON or "")
def test_tensorrt_from_onnx_uses_the_engine_cache(sr_onnx, tmp_path):
    from sr_runtime.engines.tensorrt.runner import load_tensorrt
    from sr_runtime.synthetic import sample_input as sample_tiles

    engine = load_tensorrt(sr_onnx, cache_dir=tmp_path, tile=(24, 40))
    cached = list(tmp_path.glob("*.engine"))
    assert len(cached) == 1
    again = load_tensorrt(sr_onnx, cache_dir=tmp_path, tile=(24, 40))
    assert list(tmp_path.glob("*.engine")) == cached
    lr = sample_tiles(engine.description, (24, 40), seed=4)
    assert rmse(again.infer(lr), cpu_reference(sr_onnx, lr)) <= 0.02


@pytest.mark.gpu
@pytest.mark.skipif(ORT_CUDA_REASON is not None, reason=ORT_CUDA_REASON or "")
def test_ort_cuda_matches_cpu(sr_onnx):
    from sr_runtime.synthetic import sample_input as sample_tiles

    engine = load_engine("ort-cuda", sr_onnx).engine
    lr = sample_tiles(engine.description, (40, 24), batch=2, seed=2)
    assert rmse(engine.infer(lr), cpu_reference(sr_onnx, lr)) <= 1e-3


@pytest.mark.gpu
@pytest.mark.skipif(ORT_TRT_REASON is not None, reason=ORT_TRT_REASON or "")
def test_ort_tensorrt_matches_cpu(sr_onnx, tmp_path):
    from sr_runtime.synthetic import sample_input as sample_tiles

    engine = load_engine("ort-tensorrt", sr_onnx, cache_dir=tmp_path).engine
    lr = sample_tiles(engine.description, (32, 32), seed=3)
    assert rmse(engine.infer(lr), cpu_reference(sr_onnx, lr)) <= 0.02
