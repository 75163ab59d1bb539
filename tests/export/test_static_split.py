"""`sr-export split`: a model's static and step parts, checked against the whole model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")

from sr_export.static_split import check_split, split_model, write_split  # noqa: E402
from sr_runtime.defaults import LR_ONLY_MODEL, OROGRAPHY_MODEL  # noqa: E402
from sr_runtime.engines.onnxruntime import (  # noqa: E402
    open_cpu_session,
    read_description,
    read_metadata,
)
from sr_runtime.engines.static_part import SPLIT_KEY, find_parts, part_paths  # noqa: E402
from sr_runtime.paths import sha256_file  # noqa: E402
from sr_runtime.synthetic import sample_feed  # noqa: E402


def probe_feed(model: Path, shape: tuple[int, int], seed: int = 0) -> dict[str, np.ndarray]:
    """One step's plausible physical inputs for ``model`` (the project's parity inputs)."""
    return sample_feed(read_description(model), shape, batch=1, seed=seed)


def _run_parts(model: Path, feed: dict[str, np.ndarray]) -> np.ndarray:
    static_path, step_path = part_paths(model)
    static, step = open_cpu_session(static_path), open_cpu_session(step_path)
    cut_names = [o.name for o in static.get_outputs()]
    cuts = dict(zip(cut_names, static.run(cut_names, {i.name: feed[i.name]
                                                      for i in static.get_inputs()}), strict=True))
    return step.run(None, {i.name: cuts.get(i.name, feed.get(i.name))
                           for i in step.get_inputs()})[0]


def test_the_shipped_parts_belong_to_the_shipped_model_and_give_its_output():
    """A re-exported default model with stale parts would silently run whole: they must match."""
    parts, why = find_parts(OROGRAPHY_MODEL, sha256_file(OROGRAPHY_MODEL))
    assert parts is not None, why
    feed = probe_feed(OROGRAPHY_MODEL, (16, 16))
    whole = open_cpu_session(OROGRAPHY_MODEL).run(None, feed)[0]
    assert np.abs(_run_parts(OROGRAPHY_MODEL, feed) - whole).max() <= 1e-5
    # the static part does the terrain network's convs; the step part none of them
    static_ops = [n.op_type for n in __import__("onnx").load(parts.static_path).graph.node]
    assert static_ops.count("Conv") >= 3
    assert LR_ONLY_MODEL.is_file() and not part_paths(LR_ONLY_MODEL)[0].exists()


def test_the_step_part_runs_nothing_that_the_static_fields_alone_determine():
    """The static encoder (a traced PixelUnshuffle: Reshape and Transpose behind Shape
    arithmetic) and the head conv's static share run in the static part, not every step."""
    import onnx

    from sr_export.static_split import static_nodes

    parts, why = find_parts(OROGRAPHY_MODEL, sha256_file(OROGRAPHY_MODEL))
    assert parts is not None, why
    step = onnx.load(parts.step_path).graph
    given = [i.name for i in step.input if i.name != "lr"]
    assert given and [n.op_type for n in static_nodes(step, given)] == []
    static = onnx.load(parts.static_path).graph
    assert {"Transpose", "Reshape"} <= {n.op_type for n in static.node}  # the encoder's unshuffle
    assert "hr_static" not in {name for n in step.node for name in n.input}


def test_split_of_a_static_model_composes_to_it_on_new_inputs(static_models, tmp_path):
    model = tmp_path / "m.onnx"
    shutil.copy(static_models["two"], model)
    static_path, step_path = write_split(model)
    record = json.loads(read_metadata(step_path)[SPLIT_KEY])
    assert record["role"] == "step" and record["whole_sha256"] == sha256_file(model)
    static_inputs = [i.name for i in open_cpu_session(static_path).get_inputs()]
    assert static_inputs == ["hr_static"]
    assert "lr" not in static_inputs
    # inputs unlike the probe the split was checked on: another size, other values
    feed = probe_feed(model, (9, 11), seed=3)
    feed["hr_static"] = feed["hr_static"] * 1.5 + 20
    whole = open_cpu_session(model).run(None, feed)[0]
    assert np.abs(_run_parts(model, feed) - whole).max() <= 1e-5


def test_a_model_without_static_inputs_has_no_parts_and_loses_stale_ones(tmp_path):
    model = tmp_path / "lr-only.onnx"
    shutil.copy(LR_ONLY_MODEL, model)
    for stale in part_paths(model):
        stale.write_bytes(b"left over from an earlier export")
    assert write_split(model) is None
    assert not any(p.exists() for p in part_paths(model))


def test_a_split_that_changes_the_output_is_not_written(static_models, tmp_path):
    import onnx

    model = tmp_path / "m.onnx"
    shutil.copy(static_models["one"], model)
    static_part, step_part = split_model(onnx.load(model), sha256_file(model))
    # corrupt the static part: scale its first output by 2 (a wrong split would do similar)
    out = static_part.graph.output[0].name
    doubled = out + "_x2"
    static_part.graph.node.append(onnx.helper.make_node("Add", [out, out], [doubled]))
    static_part.graph.output[0].name = doubled
    for node in step_part.graph.node:
        node.input[:] = [doubled if name == out else name for name in node.input]
    step_part.graph.input[[i.name for i in step_part.graph.input].index(out)].name = doubled
    error = check_split(model.read_bytes(), static_part.SerializeToString(),
                        step_part.SerializeToString(), probe_feed(model, (12, 12)))
    assert error > 1e-3


def test_sr_export_split_writes_the_parts_and_says_so(static_models, tmp_path):
    from typer.testing import CliRunner

    from sr_export.cli import app

    model = tmp_path / "m.onnx"
    shutil.copy(static_models["one"], model)
    result = CliRunner().invoke(app, ["split", str(model)])
    assert result.exit_code == 0, result.output
    assert "m.static-part.onnx" in result.output and "once per tile" in result.output
    assert all(p.is_file() for p in part_paths(model))
    missing = CliRunner().invoke(app, ["split", str(tmp_path / "absent.onnx")])
    assert missing.exit_code == 2 and "model not found" in missing.output
