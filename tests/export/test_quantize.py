"""INT8 variant: FP32 islands where they matter, metadata, and a gate that can refuse."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from sr_export.cli import app
from sr_export.quantize import (
    GateData,
    accuracy_gate,
    fp32_nodes,
    parse_times,
    quantize_int8,
    quantize_to_proto,
)
from sr_runtime.description import (
    HR_OUTPUT,
    HR_STATIC_INPUT,
    LR_INPUT,
    ModelDescription,
    VariableSpec,
)
from sr_runtime.engines.variants import PRECISION_INT8, VARIANT_KEY, read_metadata_props
from sr_runtime.errors import AccuracyGateError, UsageError
from tests.conftest import save_described_model, write_edh_store

runner = CliRunner()
SCALE = 2
T2M = VariableSpec("t2m", "K", 283.2, 4.3, 283.3, 4.2)


def tiny_sr_model(path: Path, seed: int = 0, channels: int = 16, skip: bool = False) -> Path:
    """An SRResNet-shaped x2 graph as sr-export writes it (normalization, Conv+LeakyRelu,
    a pointwise/shift/gather tail before DepthToSpace, denormalization), built directly."""
    rng = np.random.default_rng(seed)
    inits, nodes = [], []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def conv(x: str, c_in: int, c_out: int, k: int, name: str, gain: float = 1.0) -> str:
        w = rng.normal(0, gain * (2.0 / (c_in * k * k)) ** 0.5, (c_out, c_in, k, k))
        nodes.append(helper.make_node("Conv", [x, const(f"{name}.w", w),
                                               const(f"{name}.b", rng.normal(0, 0.05, c_out))],
                                      [name], name=name, pads=[k // 2] * 4))
        return name

    def leaky(x: str, name: str) -> str:
        nodes.append(helper.make_node("LeakyRelu", [x], [name], name=name, alpha=0.2))
        return name

    channel = np.ones((1, 1, 1, 1), np.float32)
    nodes.append(helper.make_node("Sub", [LR_INPUT, const("lr_mean", channel * T2M.lr_mean)],
                                  ["centred"], name="sub"))
    nodes.append(helper.make_node("Div", ["centred", const("lr_std", channel * T2M.lr_std)],
                                  ["normalized"], name="div"))
    x = leaky(conv("normalized", 1, channels, 5, "head"), "head_act")
    x = leaky(conv(x, channels, channels, 3, "body"), "body_act")
    x = leaky(conv(x, channels, 4 * channels, 3, "up"), "up_act")
    x = conv(x, 4 * channels, 12, 1, "tail_pointwise")
    x = conv(x, 12, 4, 3, "tail_gather", gain=0.02)  # small outputs, as with random weights
    nodes.append(helper.make_node("DepthToSpace", [x], ["shuffled"], name="shuffle",
                                  blocksize=SCALE, mode="CRD"))
    if skip:  # SRResNetConfig(upsample_skip="bicubic"): the network adds bicubic upsampling
        scales = const("skip_scales", np.array([1, 1, SCALE, SCALE]))
        nodes.append(helper.make_node("Resize", ["normalized", "", scales], ["bicubic"],
                                      name="skip_resize", mode="cubic"))
        nodes.append(helper.make_node("Add", ["shuffled", "bicubic"], ["with_skip"],
                                      name="skip_add"))
    nodes.append(helper.make_node("Mul", ["with_skip" if skip else "shuffled",
                                          const("hr_std", channel * T2M.hr_std)],
                                  ["scaled"], name="mul"))
    nodes.append(helper.make_node("Add", ["scaled", const("hr_mean", channel * T2M.hr_mean)],
                                  [HR_OUTPUT], name="add"))
    graph = helper.make_graph(
        nodes, "tiny-sr",
        [helper.make_tensor_value_info(LR_INPUT, TensorProto.FLOAT, ["batch", 1, "h", "w"])],
        [helper.make_tensor_value_info(HR_OUTPUT, TensorProto.FLOAT, ["batch", 1, "H", "W"])],
        initializer=inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    proto.ir_version = 9
    description = ModelDescription(scale=SCALE, variables=(T2M,), halo_lr=4,
                                   arch_params={"n_channels": channels},
                                   graph_rewrites=("batchnorm_folded",))
    return save_described_model(proto, description, path)


def fields(count: int, size: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(np.linspace(0, 1, size), np.linspace(0, 1, size), indexing="ij")
    out = [T2M.lr_mean + T2M.lr_std * (np.sin(3 * x + p) + np.cos(2 * y - p)
                                       + 0.2 * rng.normal(size=x.shape))
           for p in rng.uniform(0, 6, count)]
    return np.asarray(out, np.float32)[:, None]


@pytest.fixture(scope="module")
def fp32_model(tmp_path_factory) -> Path:
    return tiny_sr_model(tmp_path_factory.mktemp("quantize") / "model.onnx")


@pytest.fixture(scope="module")
def int8_report(fp32_model):
    calibration = list(fields(6, seed=1)[:, None])
    return quantize_int8(fp32_model, fp32_model.with_name("model.int8.onnx"), calibration,
                         GateData(fields(3, seed=2)), calibration_label="unit test")


def test_fp32_islands_are_the_normalization_the_first_conv_and_the_tail_sum(fp32_model):
    kept = fp32_nodes(onnx.load(fp32_model))
    assert kept == ["sub", "div", "head", "tail_gather", "shuffle", "mul", "add"]


def test_bicubic_skip_stays_fp32(tmp_path):
    model = tiny_sr_model(tmp_path / "skip.onnx", skip=True)
    kept = fp32_nodes(onnx.load(model))
    assert {"sub", "div", "skip_resize", "skip_add", "head", "tail_gather"} <= set(kept)
    report = quantize_int8(model, tmp_path / "skip.int8.onnx", list(fields(3)[:, None]),
                           GateData(fields(2, seed=5)))
    producers = {o: n for n in onnx.load(report.out).graph.node for o in n.output}
    resize = next(n for n in onnx.load(report.out).graph.node if n.name == "skip_resize")
    assert producers[resize.input[0]].op_type == "Div"  # the exact normalized input
    assert report.gate.passed


def test_int8_variant_keeps_the_fp32_islands(int8_report):
    proto = onnx.load(int8_report.out)
    by_name = {n.name: n for n in proto.graph.node}
    producers = {out: n for n in proto.graph.node for out in n.output}
    def dequantized(tensor: str) -> bool:
        producer = producers.get(tensor)
        return producer is not None and producer.op_type == "DequantizeLinear"

    for name in ("sub", "div", "mul", "add", "head", "shuffle"):
        assert not any(dequantized(t) for t in by_name[name].input), name
    # the tap sum reads the INT8 1x1 conv's output, with FP32 weights of its own
    gather = by_name["tail_gather"]
    assert dequantized(gather.input[0]) and not any(dequantized(t) for t in gather.input[1:])
    assert by_name["sub"].input[0] == LR_INPUT and by_name["add"].output[0] == HR_OUTPUT
    quantized_convs = [n for n in proto.graph.node if n.op_type == "Conv"
                       and all(producers.get(t) is not None
                               and producers[t].op_type == "DequantizeLinear"
                               for t in n.input[:2])]
    assert {n.name for n in quantized_convs} == {"body", "up", "tail_pointwise"}


def test_int8_variant_records_precision_gate_and_speed(int8_report, fp32_model):
    assert int8_report.gate.passed
    props = read_metadata_props(int8_report.out)
    record = json.loads(props[VARIANT_KEY])
    assert record["precision"] == PRECISION_INT8 and props["precision"] == PRECISION_INT8
    assert record["gate"]["passed"] and record["gate"]["rmse_vs_fp32"] <= 0.05
    assert "FP32 only" in record["gate"]["note"]
    calibration = record["calibration"]
    assert calibration["source"] == "unit test" and calibration["fields"] == 6
    assert calibration["shape"] == [1, 1, 12, 12]
    low, high = calibration["lr_range"]
    assert T2M.lr_mean - 5 * T2M.lr_std < low < T2M.lr_mean < high < T2M.lr_mean + 5 * T2M.lr_std
    import hashlib

    assert record["source_sha256"] == hashlib.sha256(fp32_model.read_bytes()).hexdigest()
    assert record["speed"]["speedup"] > 0 and record["speed"]["machine"]["cpu_model"]
    # the description travels along, so the variant is a complete sr-edge model
    description = ModelDescription.from_metadata(props)
    assert description.scale == SCALE and description.variable_names == ["t2m"]


def test_gate_refuses_and_writes_nothing(fp32_model, tmp_path):
    out = tmp_path / "strict.int8.onnx"
    with pytest.raises(AccuracyGateError, match="was not written") as caught:
        quantize_int8(fp32_model, out, list(fields(4)[:, None]), GateData(fields(2)),
                      max_rmse=1e-7)
    assert "RMSE vs FP32" in str(caught.value)
    assert not out.exists()


def test_gate_fails_on_psnr_drop_and_on_non_finite_output():
    rng = np.random.default_rng(0)
    truth = 280 + rng.normal(0, 3, (2, 1, 16, 16))
    fp32 = truth + rng.normal(0, 0.3, truth.shape)
    close = fp32 + 0.01
    assert accuracy_gate(fp32, close, truth).passed
    worse = fp32 + rng.normal(0, 0.04, truth.shape)  # RMSE 0.04 K passes, but PSNR drops
    gate = accuracy_gate(fp32, worse, truth, max_psnr_drop=0.01)
    assert gate.rmse_vs_fp32 <= 0.05 and gate.psnr_drop > 0.01 and not gate.passed
    assert "PSNR" in gate.summary()
    broken = fp32.copy()
    broken[0, 0, 0, 0] = np.nan
    assert not accuracy_gate(fp32, broken, truth).passed
    assert not accuracy_gate(fp32, fp32 + 0.06).passed  # RMSE limit 0.05 K
    with pytest.raises(UsageError, match="HR truth"):
        accuracy_gate(fp32, fp32, truth[:, :, :8])


def test_quantizing_a_variant_is_refused(int8_report, tmp_path):
    with pytest.raises(UsageError, match="already a reduced-precision variant"):
        quantize_int8(int8_report.out, tmp_path / "again.onnx", list(fields(2)[:, None]),
                      GateData(fields(1)))


def test_calibration_times_are_parsed():
    assert parse_times(None) is None
    times = parse_times("2024-10-02T06, 2024-10-05T18")
    assert times.dtype == np.dtype("datetime64[ns]") and times.size == 2
    with pytest.raises(UsageError, match="--calib-times"):
        parse_times("yesterday")


@pytest.mark.filterwarnings("ignore:Consolidated metadata:UserWarning")
def test_cli_quantize_on_a_datacube(tmp_path):
    model = tiny_sr_model(tmp_path / "cube.onnx", seed=3)
    store = write_edh_store(tmp_path / "lr.zarr", hours=6)
    args = ["quantize", str(model), "--source", str(store),
            "--calib-times", "2024-10-11T00,2024-10-11T02,2024-10-11T04"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "PASSED" in text and "no HR truth" in text and "3 times" in text
    assert (tmp_path / "cube.int8.onnx").is_file()
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--overwrite" in again.output
    missing = runner.invoke(app, [*args[:-1], "2030-01-01T00", "--overwrite"])
    assert missing.exit_code == 2 and "no data at 2030-01-01T00" in " ".join(
        missing.output.split())


def test_cli_quantize_synthetic(tmp_path):
    model = tiny_sr_model(tmp_path / "synthetic.onnx", seed=4)
    result = runner.invoke(app, ["quantize", str(model), "--source", "synthetic",
                                 "--out", str(tmp_path / "synthetic.int8.onnx")])
    assert result.exit_code == 0, result.output
    assert "FP32 only" in " ".join(result.output.split())


def test_mixed_precision_keeps_the_convs_that_cost_too_much_accuracy(fp32_model, tmp_path):
    """When quantizing every conv fails the gate, only the convs chosen on the calibration
    fields run in INT8, and that variant faces the same gate."""
    from sr_export.mixed_precision import mixed_precision_convs, with_shuffles

    calibration = list(fields(4, seed=3)[:, None])
    gate_data = GateData(fields(4, seed=3))  # same fields: calibration error == gate error
    _, search = mixed_precision_convs(fp32_model, calibration, max_rmse=1.0)
    alone = {n: c["rmse_alone"] for n, c in search["candidates"].items()}
    assert set(alone) == {"body", "up", "tail_pointwise"}  # the FP32 islands are no candidates
    full = quantize_int8(fp32_model, tmp_path / "full.int8.onnx", calibration, gate_data)
    limit = min(alone.values()) * 1.02
    assert full.gate.rmse_vs_fp32 > limit  # so the full INT8 variant fails at this limit
    report = quantize_int8(fp32_model, tmp_path / "mixed.int8.onnx", calibration, gate_data,
                           max_rmse=limit)
    recipe = report.record["quantization"]
    chosen = recipe["mixed_precision"]["int8_convs"]
    assert report.gate.passed and 0 < len(chosen) < len(alone)
    assert "FAILED" in recipe["mixed_precision"]["full_int8_gate"]
    proto = onnx.load(report.out)
    producers = {o: n for n in proto.graph.node for o in n.output}
    int8 = {n.name for n in proto.graph.node if n.op_type == "Conv"
            and producers.get(n.input[1]) is not None
            and producers[n.input[1]].op_type == "DequantizeLinear"}
    assert int8 == set(chosen) and with_shuffles(proto, chosen) == chosen
    with pytest.raises(AccuracyGateError, match="no conv"):  # and mixed precision can fail too
        quantize_int8(fp32_model, tmp_path / "none.int8.onnx", calibration, gate_data,
                      max_rmse=min(alone.values()) * 0.5)
    with pytest.raises(AccuracyGateError, match="was not written"):
        quantize_int8(fp32_model, tmp_path / "off.int8.onnx", calibration, gate_data,
                      max_rmse=limit, mixed=False)


def test_calibration_takes_whole_feeds_for_a_model_with_static_inputs(static_models):
    """quantize_to_proto calibrates on feed dicts (LR and static HR fields), as
    benchmarks/probe_int8_static does; here every conv in INT8, all else FP32."""
    import onnxruntime as ort

    model = static_models["one"]
    rng = np.random.default_rng(0)
    feeds = [{LR_INPUT: (283.0 + 6.0 * rng.standard_normal((1, 1, 6, 7))).astype(np.float32),
              HR_STATIC_INPUT: rng.random((1, 2, 48, 56)).astype(np.float32)}
             for _ in range(6)]
    nodes = onnx.load(str(model)).graph.node
    keep = [n.name for n in nodes if n.op_type != "Conv"]
    proto, recipe = quantize_to_proto(model, feeds[:4], keep_fp32=keep)
    producer = {t: n.op_type for n in proto.graph.node for t in n.output}
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    assert len(convs) == 3
    assert all(producer.get(n.input[0]) == "DequantizeLinear" for n in convs)
    assert recipe["fp32_nodes"] == keep
    fp32 = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    int8 = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    for feed in feeds[4:]:  # held out from the calibration
        expected, got = fp32.run(None, feed)[0], int8.run(None, feed)[0]
        assert np.isfinite(got).all()
        assert 0 < float(np.sqrt(np.mean((got - expected) ** 2))) < 0.1
