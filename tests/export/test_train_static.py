"""A two-variable orography-aware model: train on the training area, export, run, gate."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import rasterio
from typer.testing import CliRunner

from sr_export.cli import app
from sr_runtime.cli import app as run_app
from sr_runtime.clock import CLOCK_FEATURES
from sr_runtime.description import HR_STATIC_INPUT, LR_INPUT, ModelDescription
from sr_runtime.engines.tuning import tune_path

runner = CliRunner()
runner_run = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("orog") / "run"
    result = runner.invoke(app, [
        "train", "--out-dir", str(out), "--channels", "4", "--blocks", "1", "--batch-size", "4",
        "--max-steps", "3", "--val-every", "3", "--every", "500", "--variables", "t2m,d2m",
        "--static", "orog,lsm", "--area", "area", "--period", "year", "--crop", "8",
        "--skip", "bicubic", "--conservation", "block_mean", "--terrain-features", "2",
        "--relative-static", "orog", "--terrain-scales", "2,6", "--augment", "dihedral",
        "--clock-inputs", "--no-evaluate"])
    assert result.exit_code == 0, result.output
    return out / "model.ckpt"


def test_two_variable_static_model_exports_with_named_inputs_and_passes_parity(trained, tmp_path):
    model = tmp_path / "m.onnx"
    result = runner.invoke(app, ["to-onnx", str(trained), "--out", str(model)])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output
    proto = onnx.load(str(model))
    assert [i.name for i in proto.graph.input] == [LR_INPUT, HR_STATIC_INPUT]
    props = {p.key: p.value for p in proto.metadata_props}
    description = ModelDescription.from_metadata(props)
    assert description.variable_names == ["t2m", "d2m"]
    assert [(s.name, s.units) for s in description.static_inputs] == [("orog", "m"),
                                                                       ("lsm", "(0 - 1)")]
    assert description.arch_params["conservation"] == "block_mean"
    assert description.arch_params["static_channels"] == 2
    assert description.arch_params["terrain_features"] == 2
    assert list(description.arch_params["relative_static"]) == [0]
    assert all(v.units == "K" and v.hr_std > 0 for v in description.variables)
    assert description.clock_inputs == CLOCK_FEATURES
    lr_shape = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert lr_shape[1] == 2 + len(CLOCK_FEATURES)  # t2m, d2m, then the clock channels

    from sr_runtime.engines.onnxruntime import open_session
    from sr_runtime.synthetic import sample_input, sample_statics

    lr = sample_input(description, shape=(6, 7), batch=1)
    static = sample_statics(description, (6, 7), batch=1)
    hr = open_session(model, options=None).run(None, {LR_INPUT: lr, HR_STATIC_INPUT: static})[0]
    assert hr.shape == (1, 2, 48, 56)
    means = hr.reshape(1, 2, 6, 8, 7, 8).mean(axis=(3, 5), dtype=np.float64)
    assert np.abs(means - lr[:, :2]).max() < 1e-3  # the conservation layer is in the graph


def test_terrain_model_gives_the_same_field_whole_and_in_halo_tiles(trained, tmp_path):
    """The terrain network and the relative orography reach past each LR block: the halo the
    description claims must still make tiled output equal whole-field output (1e-4 K)."""
    from sr_runtime.engines.onnxruntime import OnnxRuntimeEngine
    from sr_runtime.synthetic import sample_input, sample_statics
    from sr_runtime.tiling import infer_tiled, plan_tiles

    model = tmp_path / "m.onnx"
    assert runner.invoke(app, ["to-onnx", str(trained), "--out", str(model)]).exit_code == 0
    engine = OnnxRuntimeEngine(model, threads=1)
    halo = engine.description.halo_lr
    height, width = 2 * halo + 9, 2 * halo + 13
    rng = np.random.default_rng(3)
    lr = sample_input(engine.description, shape=(height, width), batch=1)[0]
    lr = lr + rng.normal(0.0, 2.0, lr.shape).astype(np.float32)
    statics = sample_statics(engine.description, (height, width), batch=1)[0]
    statics[0] = statics[0] + rng.uniform(0.0, 2500.0, statics[0].shape).astype(np.float32)
    assert len(plan_tiles(height, width, 8, halo)) >= 4
    whole = infer_tiled(engine, lr, statics=statics)
    tiled = infer_tiled(engine, lr, tile=8, statics=statics)
    assert float(np.abs(tiled - whole).max()) <= 1e-4
    seamy = infer_tiled(engine, lr, tile=8, halo=0, statics=statics)
    assert float(np.abs(seamy - whole).max()) > 1e-3  # the comparison can fail


def test_training_refuses_a_variable_the_sample_lacks(tmp_path):
    result = runner.invoke(app, ["train", "--out-dir", str(tmp_path), "--channels", "4",
                                 "--blocks", "1", "--max-steps", "1", "--every", "500",
                                 "--variables", "t2m,u10", "--no-evaluate"])
    assert result.exit_code == 2
    assert "u10" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(("extra", "match"), [
    (["--source", "sample", "--augment", "flips"], "--augment applies to crops of the embedded "
                                                   "sample"),
    (["--augment", "rotate"], "--augment must be one of none, flips, dihedral"),
    (["--static", "orog", "--relative-static", "lsm"], "--relative-static lsm is not among "
                                                      "--static orog"),
    (["--terrain-features", "4"], "terrain_features needs static"),
    (["--static", "orog", "--terrain-features", "2", "--terrain-scales", "2,x"],
     "--terrain-scales '2,x' is not a comma-separated list of numbers"),
    (["--static", "orog", "--terrain-scales", "4"], "give terrain_features > 0 too"),
])
def test_training_options_that_do_not_fit_are_refused_in_one_line(tmp_path, extra, match):
    result = runner.invoke(app, ["train", "--out-dir", str(tmp_path / "run"), "--channels", "4",
                                 "--blocks", "1", "--max-steps", "1", "--no-evaluate", *extra])
    assert result.exit_code == 2, result.output
    assert match in " ".join(result.output.split()) and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_quantize_refuses_static_models_before_any_work(trained, tmp_path):
    model = tmp_path / "m.onnx"
    assert runner.invoke(app, ["to-onnx", str(trained), "--out", str(model)]).exit_code == 0
    result = runner.invoke(app, ["quantize", str(model)])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "static HR fields or clock inputs (orog, lsm, solar_hour_sin" in text
    assert "--precision fp32" in text and "sr-export tune" in text
    # to-onnx wrote the model and its static/step parts; quantize nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "m.onnx", "m.static-part.onnx", "m.step-part.onnx"]


def test_tune_gates_and_times_a_static_clock_model_and_sr_run_uses_its_record(tmp_path):
    """tune feeds the static fields and the clock: ONNX Runtime FP32 and OpenVINO (gated on the
    sample's held-out steps with their static fields) are timed, and sr-run reads the record.
    (The shipped recipe's layers, without the terrain pyramid, which OpenVINO compiles for
    minutes.)"""
    pytest.importorskip("openvino")
    result = runner.invoke(app, [
        "train", "--out-dir", str(tmp_path / "run"), "--channels", "4", "--blocks", "1",
        "--batch-size", "4", "--max-steps", "2", "--val-every", "2", "--every", "500",
        "--variables", "t2m,d2m", "--static", "orog,lsm", "--area", "area", "--period", "year",
        "--crop", "8", "--skip", "bicubic", "--terrain-features", "2", "--relative-static",
        "orog", "--clock-inputs", "--no-evaluate"])
    assert result.exit_code == 0, result.output
    model = tmp_path / "m.onnx"
    assert runner.invoke(app, ["to-onnx", str(tmp_path / "run" / "model.ckpt"), "--out",
                               str(model)]).exit_code == 0
    result = runner.invoke(app, ["tune", str(model), "--tiles", "16", "--repeats", "1",
                                 "--pause", "0"])
    assert result.exit_code == 0, result.output
    record = json.loads(tune_path(model).read_text())
    fp32 = record["variants"]["openvino:m.onnx"]
    assert fp32["gate"]["passed"] and fp32["gate"]["max_abs_vs_fp32"] < 1e-3
    assert record["variants"]["m.onnx"]["hr_mpix_s"] > 0 and fp32["hr_mpix_s"] > 0
    # BF16 is gated (whatever the verdict for this 2-step model) where the CPU has it
    assert "openvino-bf16:m.onnx" in {**record["variants"], **record["not_measured"]}
    out = tmp_path / "sr.tif"
    ran = runner_run.invoke(run_app, ["--model", str(model), "--time", "2024-10-25T12:00",
                                      "--out", str(out), "--precision", "fp32"])
    assert ran.exit_code == 0, ran.output
    speed = fp32["hr_mpix_s"] / record["variants"]["m.onnx"]["hr_mpix_s"]
    engine_line = next(line for line in ran.output.splitlines() if line.startswith("engine:"))
    if speed >= 1.05:  # the record decides, as measured
        assert engine_line.startswith("engine: openvino fp32"), engine_line
    else:
        assert f"openvino fp32 (m.onnx) not faster here ({speed:.2f}x" in engine_line or (
            "slower" in engine_line), engine_line
    with rasterio.open(out) as written:
        assert written.count == 2


def test_conservation_can_be_switched_at_export(trained, tmp_path):
    model = tmp_path / "free.onnx"
    result = runner.invoke(app, ["to-onnx", str(trained), "--out", str(model),
                                 "--conservation", "none"])
    assert result.exit_code == 0, result.output
    props = {p.key: p.value for p in onnx.load(str(model)).metadata_props}
    assert ModelDescription.from_metadata(props).arch_params["conservation"] == "none"
    bad = runner.invoke(app, ["to-onnx", str(trained), "--out", str(tmp_path / "x.onnx"),
                              "--conservation", "mass"])
    assert bad.exit_code == 2 and "conservation" in bad.output


def test_clock_model_output_depends_on_the_hour_and_sr_run_feeds_it(trained, tmp_path):
    """The clock channels reach the output (the same LR fields at another hour give another
    field), and sr-run computes them for the step it runs."""
    import rasterio

    from sr_runtime.cli import app as run_app
    from sr_runtime.clock import with_clock
    from sr_runtime.engines.onnxruntime import OnnxRuntimeEngine
    from sr_runtime.synthetic import sample_input, sample_statics

    model = tmp_path / "m.onnx"
    assert runner.invoke(app, ["to-onnx", str(trained), "--out", str(model)]).exit_code == 0
    engine = OnnxRuntimeEngine(model, threads=1)
    lr = sample_input(engine.description, shape=(6, 7), batch=1)[0, :2]
    static = {HR_STATIC_INPUT: sample_statics(engine.description, (6, 7), batch=1)}
    lon = np.linspace(5.0, 7.0, 7)
    noon, night = (with_clock(lr, np.datetime64(t, "ns"), lon, CLOCK_FEATURES)[None]
                   for t in ("2024-10-11T12:00", "2024-10-12T00:00"))
    assert float(np.abs(engine.infer(noon, **static) - engine.infer(night, **static)).max()) > 1e-4
    shown = runner.invoke(app, ["inspect", str(model)])
    assert "clock inputs (from each step's time and longitudes): solar_hour_sin" in shown.output
    out = tmp_path / "sr.tif"  # a model fed too few channels would fail here
    result = CliRunner().invoke(run_app, ["--model", str(model), "--time", "2024-10-11T12:00",
                                          "--out", str(out)])
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as cog:
        assert cog.count == 2 and cog.descriptions == ("t2m", "d2m")
        assert np.isfinite(cog.read()).all()


def test_clock_inputs_are_refused_with_a_streamed_source(tmp_path):
    result = runner.invoke(app, ["train", "--out-dir", str(tmp_path / "run"), "--channels", "4",
                                 "--blocks", "1", "--max-steps", "1", "--no-evaluate",
                                 "--source", "sample", "--clock-inputs"])
    assert result.exit_code == 2, result.output
    assert "--clock-inputs trains on the embedded sample only" in " ".join(result.output.split())
    assert not (tmp_path / "run").exists()


def test_the_python_api_feeds_the_clock_and_refuses_a_field_without_time(trained, tmp_path):
    import xarray as xr

    import sr_runtime as sr
    from sr_runtime.defaults import sample_hr_store, sample_lr_store
    from sr_runtime.errors import UsageError

    model_path = tmp_path / "m.onnx"
    assert runner.invoke(app, ["to-onnx", str(trained), "--out", str(model_path)]).exit_code == 0
    frame = xr.open_zarr(sample_lr_store())[["t2m", "d2m"]].sel(
        time=np.datetime64("2024-10-11T12:00", "ns")).load()
    with sr.open_model(model_path, "onnxruntime") as model:
        hr = sr.super_resolve(frame, model, static=str(sample_hr_store()))
        tiled = sr.super_resolve(frame, model, static=str(sample_hr_store()), tile=8)
        np.testing.assert_allclose(tiled.t2m.values, hr.t2m.values, atol=1e-4)
        with pytest.raises(UsageError, match="give the field a time coordinate"):
            sr.super_resolve(frame.drop_vars("time"), model, static=str(sample_hr_store()))


def test_the_service_results_feed_the_clock(trained, tmp_path):
    """sr-serve and the app get their fields from Results (the Python API inside): a clock model
    runs there too, with the sample's companion static store found on its own."""
    from sr_runtime.results import open_results

    model = tmp_path / "m.onnx"
    assert runner.invoke(app, ["to-onnx", str(trained), "--out", str(model)]).exit_code == 0
    results = open_results("sample", model, "onnxruntime")
    result, _ = results.get(results.resolve("2024-10-25T12:00"))
    assert result.sr.data.shape == (256, 256) and np.isfinite(result.sr.data).all()
    assert result.scores is not None and np.isfinite(result.scores.rmse)
