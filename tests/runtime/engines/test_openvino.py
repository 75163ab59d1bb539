"""OpenVINO engine: FP32 parity with ONNX Runtime, BF16 only where the CPU has it, gated by
`sr-export tune`, chosen per CPU class, `--precision`, and a clear message without the extra."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sr_export.calibration import GateData
from sr_export.tune import tune_model, write_tune
from sr_runtime.cli import app as run_app
from sr_runtime.compare import compare
from sr_runtime.engines.choice import choose_engine
from sr_runtime.engines.onnxruntime import OnnxRuntimeEngine
from sr_runtime.engines.registry import load_engine
from sr_runtime.engines.tuning import read_tune_record, tune_path, tuned_setting
from sr_runtime.errors import AccuracyGateError, EngineUnavailableError, UsageError
from sr_runtime.machine import has_bf16
from tests.conftest import assert_one_line_error, copy_model_folder, write_edh_store
from tests.export.test_quantize import fields, tiny_sr_model
from tests.runtime.test_runtime_without_torch import blocker

pytest.importorskip("openvino")
from sr_runtime.engines.openvino import (  # noqa: E402
    OpenVinoEngine,
    bf16_unavailable_reason,
    check_precision,
)

runner = CliRunner()
BF16_HERE = has_bf16()
needs_bf16 = pytest.mark.skipif(not BF16_HERE, reason="this CPU has neither avx512_bf16 nor AMX")


@pytest.fixture(scope="module")
def tuned_dir(tmp_path_factory) -> Path:
    """model.onnx (a tiny SRResNet-shaped x2 graph) and its tune record, OpenVINO included."""
    folder = tmp_path_factory.mktemp("openvino")
    model = tiny_sr_model(folder / "model.onnx", seed=7)
    record = tune_model(model, tiles=[8], repeats=1, pause=0, threads=1,
                        gate_data=GateData(fields(3, seed=4)))
    write_tune(record, model)
    return folder


@pytest.fixture
def tuned(tuned_dir, tmp_path) -> Path:
    return copy_model_folder(tuned_dir, tmp_path)


def edit_record(model: Path, **changes: dict) -> None:
    """Apply ``changes`` to entries (by key) or, under "machine", to the machine fingerprint."""
    path = tune_path(model)
    record = json.loads(path.read_text())
    for key, change in changes.items():
        target = record["machine"] if key == "machine" else record["variants"][key]
        target.update(change)
    path.write_text(json.dumps(record))


def test_fp32_matches_onnxruntime_within_1e_4_kelvin(tmp_path):
    model = tiny_sr_model(tmp_path / "model.onnx", seed=3)
    lr = fields(2, size=20, seed=9)
    expected = OnnxRuntimeEngine(model, threads=1).infer(lr)
    with OpenVinoEngine(model, threads=1) as engine:
        assert engine.name == "openvino" and engine.precision == "fp32"
        assert engine.config["INFERENCE_PRECISION_HINT"] == "f32"  # explicit, never bf16 here
        result = compare(expected, engine.infer(lr), with_ssim=False)
        assert result.nonfinite == 0 and result.max_abs <= 1e-4
        assert "parity vs ONNX Runtime FP32" in engine.parity
        assert engine.description.scale == 2 and engine.description.halo_lr >= 4


def test_compiles_per_window_shape_and_keeps_a_few(tmp_path):
    from sr_runtime.engines import openvino

    model = tiny_sr_model(tmp_path / "model.onnx")
    engine = OpenVinoEngine(model, threads=1)
    shapes = [(1, 1, 10 + i, 12) for i in range(openvino.SHAPE_CACHE + 2)]
    for shape in shapes:
        out = engine.infer(np.full(shape, 283.0, np.float32))
        assert out.shape == (1, 1, 2 * shape[2], 2 * shape[3])
    compiled = engine._whole.compiled  # keyed by the shapes of the model's inputs, in order
    assert len(compiled) == openvino.SHAPE_CACHE
    assert (shapes[-1],) in compiled and (shapes[0],) not in compiled


def test_steps_in_flight_get_a_stream_and_a_request_each(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    model = tiny_sr_model(tmp_path / "model.onnx", seed=4)
    lr = fields(12, size=14, seed=2)
    expected = OpenVinoEngine(model, threads=2).infer(lr)  # one call at a time
    engine = load_engine("openvino", model, threads=2, streams=2).engine
    assert engine.parallel_calls == 2
    assert engine.config["PERFORMANCE_HINT"] == "THROUGHPUT"
    assert engine.config["NUM_STREAMS"] == "2"
    with ThreadPoolExecutor(4) as pool:  # more callers than requests: they wait their turn
        together = list(pool.map(lambda k: engine.infer(lr[k:k + 1]), range(len(lr))))
    np.testing.assert_allclose(np.concatenate(together), expected, atol=1e-4)
    requests = engine._whole.compiled[((1, 1, 14, 14),)]
    held = [requests.get() for _ in range(2)]
    compiled = held[0].get_compiled_model()
    assert int(compiled.get_property("NUM_STREAMS")) == 2
    assert held[0] is not held[1]
    with pytest.raises(UsageError, match="calls must be at least 1"):
        OpenVinoEngine(model, calls=0)


def test_tiled_field_equals_whole_field(tmp_path):
    from sr_runtime.tiling import infer_tiled

    model = tiny_sr_model(tmp_path / "model.onnx", seed=2)
    engine = OpenVinoEngine(model, threads=1)
    lr = fields(1, size=40, seed=5)[0]
    whole = engine.infer(lr[None])[0]
    np.testing.assert_allclose(infer_tiled(engine, lr, tile=16), whole, atol=1e-4)


def test_bf16_is_refused_on_a_cpu_without_it():
    avx2 = ("fma", "avx2")
    reason = bf16_unavailable_reason(avx2)
    assert "avx512_bf16 or amx_bf16" in reason and "fma avx2" in reason
    assert "--precision fp32" in reason
    assert bf16_unavailable_reason(("avx512f", "avx512_bf16")) is None
    assert bf16_unavailable_reason(("amx_tile", "amx_bf16")) is None
    with pytest.raises(EngineUnavailableError, match="BF16 is not usable here"):
        check_precision("bf16", avx2)
    check_precision("fp32", avx2)
    with pytest.raises(UsageError, match="not 'fp16'"):
        check_precision("fp16", avx2)


@needs_bf16
def test_bf16_engine_runs_bf16_within_the_gate(tmp_path):
    model = tiny_sr_model(tmp_path / "model.onnx", seed=3)
    lr = fields(2, size=20, seed=9)
    expected = OnnxRuntimeEngine(model, threads=1).infer(lr)
    engine = load_engine("openvino", model, threads=1, precision="bf16").engine
    assert engine.name == "openvino-bf16" and engine.precision == "bf16"
    result = compare(expected, engine.infer(lr), with_ssim=False)
    assert 0 < result.rmse <= 0.05 and result.nonfinite == 0  # really reduced, within the gate


def test_int8_variant_file_is_not_run_by_openvino(tmp_path):
    from sr_export.quantize import quantize_int8

    model = tiny_sr_model(tmp_path / "model.onnx")
    variant = tmp_path / "model.int8.onnx"
    quantize_int8(model, variant, list(fields(3, seed=1)[:, None]), GateData(fields(2)))
    with pytest.raises(UsageError, match="made for ONNX Runtime"):
        OpenVinoEngine(variant)


def test_tune_gates_and_records_openvino(tuned):
    record = read_tune_record(tuned)
    assert record.applies and record.raw["machine"]["openvino"]
    fp32 = record.variant("openvino:model.onnx")
    assert fp32["backend"] == "openvino" and fp32["precision"] == "fp32"
    assert fp32["gate"]["passed"] and fp32["gate"]["max_abs_vs_fp32"] <= 1e-3
    assert fp32["hint"] == "LATENCY" and fp32["streams"] == 1  # one thread: one stream
    assert fp32["hr_mpix_s"] > 0 and fp32["configs"] == {"LATENCY/1": fp32["hr_mpix_s"]}
    bf16 = record.variant("openvino-bf16:model.onnx")
    if BF16_HERE:
        assert bf16["gate"]["passed"] and 0 < bf16["gate"]["rmse_vs_fp32"] <= 0.05
        assert bf16["hr_mpix_s"] > 0
    else:
        assert bf16 is None and "openvino-bf16:model.onnx" in record.raw["not_measured"]


@needs_bf16
def test_failed_bf16_gate_is_recorded_not_timed(tmp_path):
    model = tiny_sr_model(tmp_path / "model.onnx", seed=7)
    lr = fields(3, seed=4)
    truth = OnnxRuntimeEngine(model).infer(lr)  # the FP32 output as truth: any loss shows
    record = tune_model(model, tiles=[8], repeats=1, pause=0, threads=1,
                        gate_data=GateData(lr, truth + 0.0, "exact"),
                        openvino=True)
    entry = record["variants"]["openvino-bf16:model.onnx"]
    # PSNR against a truth equal to FP32 is infinite for FP32, finite for BF16: the drop fails
    assert not entry["gate"]["passed"] and "hr_mpix_s" not in entry
    write_tune(record, model)
    choice_error = pytest.raises(AccuracyGateError, match="accuracy gate did not pass")
    with choice_error:
        choose_engine(model, "auto", "bf16")


@needs_bf16
def test_auto_picks_bf16_only_when_gated_and_measured_faster_on_this_cpu_class(tuned):
    edit_record(tuned, **{"model.onnx": {"hr_mpix_s": 1.0},
                          "openvino:model.onnx": {"hr_mpix_s": 1.2},
                          "openvino-bf16:model.onnx": {"hr_mpix_s": 2.0}})
    choice = choose_engine(tuned, "auto", "auto")
    assert (choice.backend, choice.cpu_backend, choice.precision) == ("auto", "openvino", "bf16")
    assert "engine: openvino bf16" in choice.reason and "2.00x ONNX Runtime FP32" in choice.reason
    assert "accuracy gate passed" in choice.reason
    selection = load_engine(choice.backend, choice.model, precision=choice.precision,
                            cpu_backend=choice.cpu_backend)
    assert selection.engine.name == "openvino-bf16" and selection.backend == "openvino"
    assert "precision bf16" in selection.summary()[-1]

    edit_record(tuned, **{"openvino-bf16:model.onnx": {"hr_mpix_s": 1.03},
                          "openvino:model.onnx": {"hr_mpix_s": 1.02}})  # within the margin
    choice = choose_engine(tuned, "auto", "auto")
    assert choice.cpu_backend == "onnxruntime" and "must reach 1.05x" in choice.reason

    edit_record(tuned, **{"openvino-bf16:model.onnx": {"hr_mpix_s": 2.0},
                          "machine": {"cpu_class": "avx2/64c"}})  # another CPU class
    choice = choose_engine(tuned, "auto", "auto")
    assert choice.cpu_backend == "onnxruntime" and "not timed on this CPU class" in choice.reason
    with pytest.raises(AccuracyGateError, match="no accuracy gate run on this CPU class"):
        choose_engine(tuned, "auto", "bf16")


def test_openvino_entries_need_the_same_openvino_version(tuned):
    edit_record(tuned, **{"model.onnx": {"hr_mpix_s": 1.0},
                          "openvino:model.onnx": {"hr_mpix_s": 3.0, "hint": "THROUGHPUT"}})
    assert choose_engine(tuned, "auto", "auto").cpu_backend == "openvino"
    assert tuned_setting(tuned, "openvino", "hint") == "THROUGHPUT"
    edit_record(tuned, machine={"openvino": "2000.0.0"})
    choice = choose_engine(tuned, "auto", "auto")
    assert choice.cpu_backend == "onnxruntime"  # the ONNX Runtime entries still apply
    assert read_tune_record(tuned).applies and tuned_setting(tuned, "openvino", "hint") is None


def test_precision_fp32_pins_the_exact_path(tuned):
    edit_record(tuned, **{"model.onnx": {"hr_mpix_s": 1.0},
                          "openvino:model.onnx": {"hr_mpix_s": 0.5},
                          **({"openvino-bf16:model.onnx": {"hr_mpix_s": 9.0}} if BF16_HERE
                             else {})})
    choice = choose_engine(tuned, "auto", "fp32")
    assert choice.model == tuned and choice.cpu_backend == "onnxruntime"
    assert "bf16" not in choice.reason  # not even considered
    selection = load_engine(choice.backend, choice.model, cpu_backend=choice.cpu_backend,
                            precision=choice.precision)
    assert selection.engine.name == "onnxruntime" and selection.engine.precision == "fp32"
    edit_record(tuned, **{"openvino:model.onnx": {"hr_mpix_s": 1.5}})
    assert choose_engine(tuned, "auto", "fp32").cpu_backend == "openvino"  # exact too


def test_precision_asked_for_but_unavailable_says_what_to_do(tuned):
    with pytest.raises(UsageError, match="no INT8 variant beside it; make one with"):
        choose_engine(tuned, "auto", "int8")
    with pytest.raises(UsageError, match="BF16 runs on OpenVINO"):
        choose_engine(tuned, "onnxruntime", "bf16")
    with pytest.raises(UsageError, match="INT8 runs on ONNX Runtime"):
        choose_engine(tuned, "openvino", "int8")
    with pytest.raises(UsageError, match="--precision must be one of auto, fp32, bf16, int8"):
        choose_engine(tuned, "auto", "fp16")


def test_sr_run_says_which_engine_and_precision(tuned, tmp_path):
    store = write_edh_store(tmp_path / "lr.zarr")
    out = tmp_path / "sr.tif"
    args = ["--time", "2024-10-11T01:00", "--model", str(tuned), "--source", str(store)]
    result = runner.invoke(run_app, [*args, "--out", str(out), "--backend", "openvino",
                                     "--precision", "fp32"])
    assert result.exit_code == 0, result.output
    assert "engine: openvino fp32 running model.onnx" in result.output
    assert "backend: openvino" in result.output
    import rasterio

    with rasterio.open(out) as cog:
        assert cog.tags()["precision"] == "fp32"
    bad = runner.invoke(run_app, [*args, "--out", str(tmp_path / "x.tif"), "--precision",
                                  "fp16"])
    assert_one_line_error(bad, 2)
    assert "--precision must be one of" in bad.output


@needs_bf16
def test_sr_run_bf16_records_its_precision(tuned, tmp_path):
    store = write_edh_store(tmp_path / "lr.zarr")
    out = tmp_path / "sr.tif"
    result = runner.invoke(run_app, ["--time", "2024-10-11T01:00", "--model", str(tuned),
                                     "--source", str(store), "--out", str(out),
                                     "--precision", "bf16"])
    assert result.exit_code == 0, result.output
    assert "engine: openvino bf16" in result.output and "accuracy gate passed" in result.output
    import rasterio

    with rasterio.open(out) as cog:
        assert cog.tags()["precision"] == "bf16"


def test_without_openvino_the_backend_says_how_to_install_it(tmp_path):
    model = tiny_sr_model(tmp_path / "model.onnx")
    code = blocker({"openvino"}) + textwrap.dedent(f"""
        from pathlib import Path
        import sr_runtime
        from sr_runtime.engines.registry import ENGINES, load_engine
        from sr_runtime.engines.choice import choose_engine
        from sr_runtime.errors import EngineUnavailableError
        print("REASON", ENGINES["openvino"].available())
        print("AUTO", load_engine("auto", Path({str(model)!r})).engine.name)
        print("CHOICE", choose_engine(Path({str(model)!r})).reason)
        try:
            load_engine("openvino", Path({str(model)!r}))
        except EngineUnavailableError as exc:
            print("ERROR", exc)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "REASON openvino is not installed: pip install 'sr-edge[openvino]'" in result.stdout
    assert "AUTO onnxruntime" in result.stdout
    assert ("openvino fp32 (model.onnx) and openvino bf16 (model.onnx) skipped: openvino is not "
            "installed") in result.stdout
    assert result.stdout.count("openvino is not installed") == 3  # REASON, CHOICE once, ERROR
    assert ("ERROR backend 'openvino' is not usable here: openvino is not installed: "
            "pip install 'sr-edge[openvino]'") in result.stdout


def shuffle_graph(path: Path, perturb: bool = False) -> Path:
    """x (1, 8, 6, 6) -> one-hot ConvTranspose (PixelShuffle(2), as sr-edge's rewrites write
    it) -> one-hot strided grouped Conv (PixelUnshuffle(2)) -> a 3x3 conv: a real graph whose
    shuffles only move values (``perturb``: one weight of the first is 0.5, a real conv)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    f, c = 2, 2
    shuffle = np.zeros((c * f * f, 1, f, f), np.float32)  # ConvTranspose W: (in, out/groups, .)
    unshuffle = np.zeros((c * f * f, 1, f, f), np.float32)  # Conv W: (out, in/groups, .)
    for ch in range(c):
        for a in range(f):
            for b in range(f):
                shuffle[ch * f * f + a * f + b, 0, a, b] = 1.0
                unshuffle[ch * f * f + a * f + b, 0, a, b] = 1.0
    if perturb:
        shuffle[0, 0, 0, 0] = 0.5
    mix = np.random.default_rng(0).normal(size=(3, c * f * f, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("ConvTranspose", ["x", "shuffle"], ["hr"], group=c,
                              kernel_shape=[f, f], strides=[f, f]),
             helper.make_node("Conv", ["hr", "unshuffle"], ["lr"], group=c, kernel_shape=[f, f],
                              strides=[f, f]),
             helper.make_node("Conv", ["lr", "mix"], ["y"], pads=[1, 1, 1, 1])]
    graph = helper.make_graph(
        nodes, "shuffles", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(shuffle, "shuffle"), numpy_helper.from_array(unshuffle,
                                                                              "unshuffle"),
         numpy_helper.from_array(mix, "mix")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    proto.ir_version = 9
    onnx.save(proto, path)
    return path


def test_one_hot_shuffles_become_data_moves_with_bit_identical_output(tmp_path):
    import openvino as ov

    from sr_runtime.engines.openvino_graph import shuffles_as_moves

    core = ov.Core()
    path = shuffle_graph(tmp_path / "shuffles.onnx")
    x = np.random.default_rng(1).normal(size=(1, 8, 6, 6)).astype(np.float32)
    config = {"INFERENCE_PRECISION_HINT": "f32"}
    original = core.read_model(str(path))
    moved = core.read_model(str(path))
    assert shuffles_as_moves(moved) == 2
    types = [n.get_type_name() for n in moved.get_ordered_ops()]
    assert "DepthToSpace" in types and "SpaceToDepth" in types
    assert "GroupConvolutionBackpropData" not in types and "GroupConvolution" not in types
    before = core.compile_model(original, "CPU", config)(x)[0]
    after = core.compile_model(moved, "CPU", config)(x)[0]
    np.testing.assert_array_equal(after, before)
    # a ConvTranspose that really computes stays a convolution; the unshuffle after it moves
    path = shuffle_graph(tmp_path / "real.onnx", perturb=True)
    real = core.read_model(str(path))
    assert shuffles_as_moves(real) == 1
    types = [n.get_type_name() for n in real.get_ordered_ops()]
    assert "GroupConvolutionBackpropData" in types and "SpaceToDepth" in types
    np.testing.assert_array_equal(core.compile_model(real, "CPU", config)(x)[0],
                                  core.compile_model(str(path), "CPU", config)(x)[0])


def test_the_engine_runs_the_shipped_shuffles_as_data_moves(tmp_path):
    from sr_runtime.defaults import LR_ONLY_MODEL

    engine = OpenVinoEngine(LR_ONLY_MODEL, threads=1)
    assert engine.shuffles_as_moves >= 2  # its inner PixelShuffles, as one-hot ConvTranspose
    assert "parity vs ONNX Runtime FP32" in engine.parity


def test_the_terrain_terms_run_one_product_per_field_and_give_the_same_output():
    """The default model's terrain_terms_at_once (ONNX Runtime's fast form) becomes the
    training form's per-field products again; OpenVINO FP32 still matches ONNX Runtime."""
    import openvino as ov

    from sr_runtime.defaults import LR_ONLY_MODEL, OROGRAPHY_MODEL
    from sr_runtime.engines.openvino_graph import terrain_terms_one_by_one
    from sr_runtime.synthetic import sample_feed

    read = ov.Core().read_model(str(OROGRAPHY_MODEL))
    assert "ReduceSum" in [n.get_type_name() for n in read.get_ordered_ops()]
    assert terrain_terms_one_by_one(read) == 1
    assert "ReduceSum" not in [n.get_type_name() for n in read.get_ordered_ops()]
    engine = OpenVinoEngine(OROGRAPHY_MODEL, threads=1)
    assert engine.terrain_terms_one_by_one == 1
    feed = sample_feed(engine.description, (12, 14), batch=1, seed=3)
    lr = feed.pop("lr")
    reference = OnnxRuntimeEngine(OROGRAPHY_MODEL, static_cache=False).infer(lr, **feed)
    assert np.abs(engine.infer(lr, **feed) - reference).max() <= 1e-3
    assert OpenVinoEngine(LR_ONLY_MODEL, threads=1).terrain_terms_one_by_one == 0


def _default_copy(folder: Path, parts: bool = True) -> Path:
    """The shipped default model, with its static and step parts unless ``parts`` is False."""
    import shutil

    from sr_runtime.defaults import OROGRAPHY_MODEL
    from sr_runtime.engines.static_part import part_paths

    for source in (OROGRAPHY_MODEL, *(part_paths(OROGRAPHY_MODEL) if parts else ())):
        shutil.copy(source, folder / source.name)
    return folder / OROGRAPHY_MODEL.name


def test_further_steps_run_the_step_part_with_the_whole_models_output(tmp_path):
    """Like ONNX Runtime's: the first call with given static fields runs the whole model, every
    further one the step part on the static part's kept tensors; both checked at load."""
    from sr_runtime.synthetic import sample_feed

    model = _default_copy(tmp_path)
    engine = OpenVinoEngine(model, threads=1)
    whole = OpenVinoEngine(model, threads=1, static_cache=False)
    assert engine.static_cache is not None and "once per tile" in engine.static_part
    assert whole.static_cache is None and "off" in whole.static_part
    assert engine.static_cache is not None
    assert "parts" not in engine.parity and engine.static_cache._sessions is None  # none yet
    feed = sample_feed(engine.description, (10, 12), batch=1, seed=8)
    lr = feed.pop("lr")
    reference = OnnxRuntimeEngine(model, threads=1, static_cache=False).infer(lr, **feed)
    outputs = [engine.infer(lr, **feed) for _ in range(3)]
    assert (engine.static_cache.misses, engine.static_cache.hits) == (1, 1)
    assert "; static and step parts max abs" in engine.parity  # checked before first use
    assert "parts" not in whole.parity
    assert [(c.label, len(c.compiled)) for c in engine.static_cache._sessions] == [
        (model.name.replace(".onnx", ".static-part.onnx"), 2),  # the parity field's shape too
        (model.name.replace(".onnx", ".step-part.onnx"), 2)]
    for out in outputs:
        assert np.abs(out - reference).max() <= 1e-3
    np.testing.assert_array_equal(outputs[1], outputs[2])  # the kept tensors, reused
    assert np.abs(outputs[2] - whole.infer(lr, **feed)).max() <= 1e-3  # parity tolerance
    other = sample_feed(engine.description, (10, 12), batch=1, seed=9)  # other terrain
    other.pop("lr")
    for _ in range(2):
        got = engine.infer(lr, **other)
    expected = OnnxRuntimeEngine(model, threads=1, static_cache=False).infer(lr, **other)
    assert np.abs(got - expected).max() <= 1e-3 and np.abs(got - reference).max() > 1e-2


def test_without_parts_every_call_runs_the_whole_model(tmp_path):
    engine = OpenVinoEngine(_default_copy(tmp_path, parts=False), threads=1)
    assert engine.static_cache is None and "no " in engine.static_part
    assert "parts" not in engine.parity


@needs_bf16
def test_bf16_parts_pass_the_parity_rule_before_their_first_use(tmp_path):
    from sr_runtime.synthetic import sample_feed

    engine = OpenVinoEngine(_default_copy(tmp_path), threads=1, precision="bf16")
    feed = sample_feed(engine.description, (10, 12), batch=1, seed=8)
    lr = feed.pop("lr")
    for _ in range(2):
        engine.infer(lr, **feed)
    assert engine.static_cache is not None and "static and step parts" in engine.parity
