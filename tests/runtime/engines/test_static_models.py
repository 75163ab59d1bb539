"""Models with static HR inputs (issue 16): the load-time graph check, every CPU engine, halo
tiling and the TensorRT profiles, on tiny real (lr, hr_static) -> hr ONNX models exported by
torch (tests/conftest.py: static_sr_model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from sr_runtime.description import HR_STATIC_INPUT, LR_INPUT, ModelDescription, StaticSpec
from sr_runtime.engines.graph_check import check_onnx_file
from sr_runtime.engines.onnxruntime import OnnxRuntimeEngine, open_cpu_session
from sr_runtime.engines.registry import load_engine
from sr_runtime.engines.tensorrt.ort_provider import ort_tensorrt_providers
from sr_runtime.engines.tensorrt.profiles import (
    ShapeProfile,
    input_profiles,
    runtime_profile,
    static_profile,
)
from sr_runtime.errors import ModelMismatchError, UsageError
from sr_runtime.synthetic import sample_feed
from sr_runtime.tiling import infer_tiled, plan_tiles
from tests.conftest import resize_model, save_described_model, static_sr_model

pytest.importorskip("torch")


def redescribed(source: Path, out: Path, **changes: object) -> Path:
    """``source`` with its sr-edge description changed (the graph as it is)."""
    proto = onnx.load(str(source))
    description = ModelDescription.from_metadata({p.key: p.value for p in proto.metadata_props})
    del proto.metadata_props[:]
    return save_described_model(proto, description.with_updates(**changes), out)


def reference(path: Path, lr: np.ndarray, hr_static: np.ndarray) -> np.ndarray:
    """ONNX Runtime on the file, with default options: what every engine must match."""
    return open_cpu_session(path).run(None, {LR_INPUT: lr, HR_STATIC_INPUT: hr_static})[0]


def test_a_static_model_passes_the_graph_check_with_its_receptive_field(static_models):
    description, check = check_onnx_file(static_models["two"])
    assert [s.name for s in description.static_inputs] == ["orog", "lsm"]
    assert description.variable_names == ["t2m", "d2m"]
    assert check.receptive_field_lr == 3  # 5 // 2 LR cells, then one HR cell of a 3x3 conv


def test_how_far_a_static_cell_reaches_is_measured_too(tmp_path):
    # the LR path reaches nothing beyond its cell; a 33 x 33 HR conv on the statics reaches
    # 16 HR cells = 2 LR cells
    model = static_sr_model(tmp_path / "m.onnx", lr_kernel=1, hr_kernel=1, static_kernel=33,
                            claimed_halo=0)
    description, check = check_onnx_file(model)
    assert check.receptive_field_lr == 2 and description.halo_lr == 2


@pytest.mark.parametrize(("which", "changes", "expected"), [
    ("static", {"static_inputs": ()},
     "graph takes static HR fields ('hr_static') but its description lists no static_inputs"),
    ("static", {"static_inputs": (StaticSpec("orog", "m", 700.0, 600.0),)},
     "takes 2 static channel(s) in 'hr_static' but its description lists 1 static input(s) "
     "(orog)"),
    ("plain", {"static_inputs": (StaticSpec("orog", "m", 700.0, 600.0),
                                 StaticSpec("lsm", "(0 - 1)", 0.7, 0.4))},
     "its description lists static inputs (orog, lsm) but its graph has no input 'hr_static'"),
])
def test_a_description_that_contradicts_the_graph_is_refused(static_models, tmp_path, which,
                                                             changes, expected):
    source = static_models["one"] if which == "static" else resize_model(tmp_path / "p.onnx")
    model = redescribed(source, tmp_path / "m.onnx", **changes)
    with pytest.raises(ModelMismatchError) as caught:
        check_onnx_file(model)
    message = str(caught.value)
    assert expected in message and "\n" not in message and "sr-export to-onnx" in message


def test_a_description_naming_a_static_field_twice_is_refused(static_models, tmp_path):
    twice = (StaticSpec("orog", "m", 700.0, 600.0), StaticSpec("orog", "m", 700.0, 600.0))
    model = redescribed(static_models["one"], tmp_path / "m.onnx", static_inputs=twice)
    with pytest.raises(ModelMismatchError, match="'static_inputs' names a field twice"):
        check_onnx_file(model)


def test_onnxruntime_feeds_the_static_fields(static_models):
    feed = sample_feed(check_onnx_file(static_models["two"])[0], (12, 10), batch=2, seed=4)
    engine = OnnxRuntimeEngine(static_models["two"], threads=1)
    out = engine.infer(feed[LR_INPUT], hr_static=feed[HR_STATIC_INPUT])
    np.testing.assert_allclose(out, reference(static_models["two"], **feed), atol=1e-5)
    other = engine.infer(feed[LR_INPUT], hr_static=feed[HR_STATIC_INPUT][:, ::-1].copy())
    assert np.abs(other - out).max() > 1e-2  # the static fields change the result


def test_openvino_runs_a_static_model_within_1e_4_kelvin(static_models):
    pytest.importorskip("openvino")
    from sr_runtime.engines.openvino import OpenVinoEngine

    path = static_models["two"]
    with OpenVinoEngine(path, threads=1) as engine:
        assert "parity vs ONNX Runtime FP32" in engine.parity  # checked with hr_static fed
        feed = sample_feed(engine.description, (14, 11), batch=1, seed=6)
        out = engine.infer(feed[LR_INPUT], hr_static=feed[HR_STATIC_INPUT])
        assert np.abs(out - reference(path, **feed)).max() <= 1e-4
        with pytest.raises(UsageError, match="takes 'lr' and 'hr_static'"):
            engine.infer(feed[LR_INPUT])
        lr = sample_feed(engine.description, (40, 36), batch=1, seed=8)
        whole = engine.infer(lr[LR_INPUT], hr_static=lr[HR_STATIC_INPUT])[0]
        tiled = infer_tiled(engine, lr[LR_INPUT][0], tile=16, statics=lr[HR_STATIC_INPUT][0])
        np.testing.assert_allclose(tiled, whole, atol=1e-4)


def test_tiled_output_equals_whole_field_output_with_static_inputs(static_models):
    engine = load_engine("onnxruntime", static_models["two"], threads=1).engine
    halo = engine.description.halo_lr
    feed = sample_feed(engine.description, (45, 38), batch=1, seed=11)
    lr, statics = feed[LR_INPUT][0], feed[HR_STATIC_INPUT][0]
    assert halo == 3 and len(plan_tiles(45, 38, 16, halo)) >= 6
    whole = infer_tiled(engine, lr, None, statics=statics)
    tiled = infer_tiled(engine, lr, tile=16, statics=statics)
    assert np.abs(tiled - whole).max() <= 1e-4
    np.testing.assert_allclose(whole, reference(static_models["two"], **feed)[0], atol=1e-5)
    # slicing the statics of another window shows: each tile must get its own HR cells
    shifted = np.roll(statics, 8, axis=2)
    assert np.abs(infer_tiled(engine, lr, tile=16, statics=shifted) - whole).max() > 1e-3
    with pytest.raises(UsageError, match="takes static HR fields \\(orog, lsm\\)"):
        infer_tiled(engine, lr, tile=16)
    with pytest.raises(UsageError, match="do not match the SR grid"):
        infer_tiled(engine, lr, tile=16, statics=statics[:, :-8])


def test_tensorrt_profiles_cover_both_inputs(static_models, tmp_path):
    lr = ShapeProfile((1, 2, 1, 1), (2, 2, 128, 128), (2, 2, 256, 256))
    static = static_profile(lr, 2, 8)
    assert (static.min, static.opt, static.max) == ((1, 2, 8, 8), (2, 2, 1024, 1024),
                                                    (2, 2, 2048, 2048))
    description = check_onnx_file(static_models["two"])[0]
    profiles = input_profiles(runtime_profile(2, (32, 48), 3), description)
    assert profiles[LR_INPUT].opt == (3, 2, 32, 48)
    assert profiles[HR_STATIC_INPUT].is_static
    assert profiles[HR_STATIC_INPUT].opt == (3, 2, 256, 384)
    plain = input_profiles(lr, description.with_updates(static_inputs=()))
    assert list(plain) == [LR_INPUT]
    options = ort_tensorrt_providers(tmp_path, "fp32", profiles, tensorrt_major=10)[0][1]
    assert options["trt_profile_opt_shapes"] == "lr:3x2x32x48,hr_static:3x2x256x384"
    with pytest.raises(UsageError):
        static_profile(lr, 0, 8)


def test_tune_profile_feeds_the_static_fields(static_models, tmp_path):
    import shutil

    from typer.testing import CliRunner

    from sr_export.cli import app

    model = Path(shutil.copy(static_models["two"], tmp_path / "model.onnx"))
    result = CliRunner().invoke(app, ["tune", str(model), "--tiles", "8", "--repeats", "1",
                                      "--pause", "0", "--no-openvino", "--profile"])
    assert result.exit_code == 0, result.output
    assert "| Conv |" in result.output and (tmp_path / "model.tune.json").is_file()
