"""Broken or lying models: one line and no file, or correct output; never a traceback.

Covers metadata that is not valid JSON or lacks what the runtime needs, graphs that contradict
their description (scale, input name, receptive field), corrupt (NaN) weights, and the hash of
the file that actually runs.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
import pytest
import rasterio
from typer.testing import CliRunner

from sr_export.cli import app as export_app
from sr_runtime.cli import app as run_app
from sr_runtime.description import DESCRIPTION_KEY
from sr_runtime.engines.graph_check import check_onnx_file
from sr_runtime.engines.registry import load_engine
from sr_runtime.engines.variants import select_variant
from sr_runtime.errors import UsageError
from sr_runtime.tiling import infer_tiled, tile_for_budget
from tests.conftest import (
    assert_one_line_error,
    conv_model,
    folder_state,
    resize_model,
    write_edh_store,
)

runner = CliRunner()
TIME = "2024-10-11T01:00"


def with_description(source, out, text: str):
    """A copy of ``source`` whose description JSON is replaced by ``text``."""
    proto = onnx.load(str(source))
    for entry in proto.metadata_props:
        if entry.key == DESCRIPTION_KEY:
            entry.value = text
    onnx.save(proto, str(out))
    return out


def edited(source, out, **changes):
    proto = onnx.load(str(source))
    raw = json.loads({p.key: p.value for p in proto.metadata_props}[DESCRIPTION_KEY])
    for key, value in changes.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    return with_description(source, out, json.dumps(raw))


def run(model, store, out, *extra):
    return runner.invoke(run_app, ["--time", TIME, "--out", str(out), "--model", str(model),
                                   "--source", str(store), "--quiet", *extra])


BROKEN = {
    "invalid JSON": ("{\"scale\": 8, \"variables\": [", "not valid JSON"),
    "missing scale": ({"scale": None}, "'scale' is missing"),
    "no variables": ({"variables": []}, "'variables' is empty"),
    "scale 0": ({"scale": 0}, "'scale' is 0, outside 1..64"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_description_is_one_line_in_sr_run_and_inspect(case, tmp_path, edh_store):
    change, expected = BROKEN[case]
    base = resize_model(tmp_path / "base.onnx")
    model = (with_description(base, tmp_path / "m.onnx", change) if isinstance(change, str)
             else edited(base, tmp_path / "m.onnx", **change))
    before = folder_state(tmp_path)
    message = assert_one_line_error(run(model, edh_store, tmp_path / "sr.tif"), 2)
    assert expected in message and "sr-export to-onnx" in message
    message = assert_one_line_error(runner.invoke(export_app, ["inspect", str(model)]), 2)
    assert expected in message
    assert folder_state(tmp_path) == before


@pytest.mark.parametrize(("build", "expected"), [
    (dict(scale=8, graph_scale=4), "upsamples 21x3 to 84x12 (x4) but its description says x8"),
    (dict(input_name="x"), "takes the input(s) 'x'; sr-edge models take one input 'lr'"),
    (dict(nan_weights=True, lr_kernels=(3,)), "returns non-finite values (NaN/inf"),
    (dict(variables=("t2m", "d2m")), "takes 1 input channel(s) but its description lists 2"),
])
def test_graph_that_contradicts_its_description_is_refused_at_load(build, expected, tmp_path,
                                                                   edh_store):
    model = conv_model(tmp_path / "m.onnx", **build)
    before = folder_state(tmp_path)
    message = assert_one_line_error(run(model, edh_store, tmp_path / "sr.tif"), 2)
    assert expected in message
    assert folder_state(tmp_path) == before
    # inspect still shows the description, and says what sr-run would refuse
    result = runner.invoke(export_app, ["inspect", str(model)])
    assert result.exit_code == 0, result.output
    assert "graph check: FAILED, sr-run refuses this model" in result.output
    assert expected in " ".join(result.output.split())


def test_nan_model_inspects_and_refuses_to_run(nan_model, tmp_path, edh_store):
    result = runner.invoke(export_app, ["inspect", str(nan_model)])
    assert result.exit_code == 0 and "variable t2m [K]" in result.output
    assert "non-finite" in result.output
    message = assert_one_line_error(run(nan_model, edh_store, tmp_path / "sr.tif"), 2)
    assert "weights are corrupt" in message
    assert not (tmp_path / "sr.tif").exists()


def test_huge_halo_says_the_budget_it_used(tmp_path, edh_store):
    model = edited(resize_model(tmp_path / "base.onnx"), tmp_path / "m.onnx", halo_lr=4000)
    message = assert_one_line_error(run(model, edh_store, tmp_path / "sr.tif"), 2)
    assert "the default memory budget (1024 MB) is too small" in message
    assert "4000-cell halo" in message and "None" not in message
    too_big = edited(model, tmp_path / "m2.onnx", halo_lr=10**9)
    message = assert_one_line_error(run(too_big, edh_store, tmp_path / "sr.tif"), 2)
    assert "'halo_lr' is 1000000000, outside 0..4096" in message
    assert not (tmp_path / "sr.tif").exists()


def test_budget_message_names_the_given_budget():
    from sr_runtime.description import ModelDescription, VariableSpec

    description = ModelDescription(scale=8, variables=(VariableSpec("t2m", "K", 280, 5, 280,
                                                                    5),), halo_lr=400)
    with pytest.raises(UsageError, match=r"--max-memory 2 MB is too small .* give "
                                         r"--max-memory \d+ or more"):
        tile_for_budget(description, 2)


@pytest.mark.parametrize(("build", "radius"), [
    (dict(lr_kernels=(9, 9)), 8),                 # 4 + 4 LR cells
    (dict(lr_kernels=(3, 3, 3), claimed_halo=0), 3),
    (dict(lr_kernels=(5,), hr_kernel=9), 3),      # 2 LR + 4 HR px reach 1 more LR cell
    (dict(lr_kernels=(3,), hr_kernel=25), 3),     # 1 LR + 12 HR px reach 2 more
    (dict(lr_kernels=(9, 9), claimed_halo=30), 8),
])
def test_receptive_field_is_measured_from_the_graph(tmp_path, build, radius):
    model = conv_model(tmp_path / "m.onnx", **build)
    description, check = check_onnx_file(model)
    assert check.receptive_field_lr == radius
    claimed = build.get("claimed_halo", radius)
    assert description.halo_lr == max(claimed, radius)


def test_exported_srresnet_halo_matches_its_measured_receptive_field(make_demo_checkpoint,
                                                                     tmp_path):
    ckpt, config = make_demo_checkpoint(n_channels=8, n_blocks=2)
    out = tmp_path / "m.onnx"
    result = runner.invoke(export_app, ["to-onnx", str(ckpt), "--config", str(config), "--out",
                                        str(out)])
    assert result.exit_code == 0, result.output
    # 9x9 head 4, 2 blocks x two 3x3 4, one 3x3 1, three x2 up-convs 1 + 0.5 + 0.25, 9x9 tail
    # at HR 4/8: ceil(11.25) = 12
    assert check_onnx_file(out)[1].receptive_field_lr == 12


def test_halo_claimed_too_small_gives_no_seams(tmp_path):
    store = write_edh_store(tmp_path / "lr.zarr", lat_slice=slice(300, 348),
                            lon_slice=slice(500, 548), hours=2)
    model = conv_model(tmp_path / "lying.onnx", lr_kernels=(9, 9), claimed_halo=1)
    whole, tiled = tmp_path / "whole.tif", tmp_path / "tiled.tif"
    assert run(model, store, whole).exit_code == 0
    result = run(model, store, tiled, "--max-memory", "0.6")
    assert result.exit_code == 0, result.output
    with rasterio.open(whole) as a, rasterio.open(tiled) as b:
        assert np.max(np.abs(a.read(1) - b.read(1))) <= 1e-4
    # what the claimed halo alone would have given: visible seams
    engine = load_engine("onnxruntime", model).engine
    assert engine.description.halo_lr == 8
    import xarray as xr

    lr = xr.open_dataset(store, engine="zarr").t2m.isel(time=1).values[None]
    seams = np.abs(infer_tiled(engine, lr, tile=16, halo=1) - engine.infer(lr[None])[0])
    assert seams.max() > 0.5


def test_engine_reports_the_hash_of_the_file_that_runs(tmp_path):
    checkpoint_sha = "ab" * 32
    fp32 = edited(resize_model(tmp_path / "base.onnx"), tmp_path / "model.onnx",
                  checkpoint_sha256=checkpoint_sha)
    proto = onnx.load(str(fp32))
    proto.doc_string = "another file of the same model"
    entry = proto.metadata_props.add()
    entry.key, entry.value = "precision", "int8"
    variant = tmp_path / "model.int8.onnx"
    onnx.save(proto, str(variant))
    for path in (fp32, variant):
        chosen, _ = select_variant(path)
        engine = load_engine("onnxruntime", chosen).engine
        assert engine.model_file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert engine.description.checkpoint_sha256 == checkpoint_sha
    assert hashlib.sha256(variant.read_bytes()).digest() != hashlib.sha256(
        fp32.read_bytes()).digest()


def test_torch_engine_runs_its_checkpoint(make_demo_checkpoint):
    ckpt, config = make_demo_checkpoint()
    engine = load_engine("torch", ckpt, config=config).engine
    assert engine.model_file_sha256 == hashlib.sha256(ckpt.read_bytes()).hexdigest()
