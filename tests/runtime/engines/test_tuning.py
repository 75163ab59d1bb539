"""Tuning records beside the model, variant discovery and the choice ``--backend auto`` makes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest
from typer.testing import CliRunner

from sr_export.cli import app
from sr_export.quantize import GateData, quantize_int8
from sr_export.tune import parse_tiles, profile_nodes, tune_model, write_tune
from sr_runtime.engines.onnxruntime import session_options
from sr_runtime.engines.tuning import (
    family_base,
    machine_fingerprint,
    read_tune_record,
    tune_path,
    tuned_tile,
)
from sr_runtime.engines.variants import (
    VARIANT_KEY,
    discover_variants,
    read_metadata_props,
    select_variant,
)
from sr_runtime.errors import UsageError
from tests.conftest import copy_model_folder
from tests.export.test_quantize import fields, tiny_sr_model

runner = CliRunner()


@pytest.fixture(scope="module")
def family_dir(tmp_path_factory) -> Path:
    """model.onnx and a gated model.int8.onnx made from it."""
    folder = tmp_path_factory.mktemp("family")
    model = tiny_sr_model(folder / "model.onnx", seed=5)
    quantize_int8(model, folder / "model.int8.onnx", list(fields(4, seed=1)[:, None]),
                  GateData(fields(2, seed=2)))
    return folder


@pytest.fixture
def family(family_dir, tmp_path) -> Path:
    """A private copy of the family, free to be modified by one test."""
    return copy_model_folder(family_dir, tmp_path)


def with_variant_record(source: Path, out: Path, **changes: object) -> Path:
    """A copy of ``source`` whose variant record has ``changes`` applied."""
    proto = onnx.load(source)
    for prop in proto.metadata_props:
        if prop.key == VARIANT_KEY:
            record = json.loads(prop.value)
            for key, value in changes.items():
                if isinstance(value, dict) and isinstance(record.get(key), dict):
                    record[key] = {**record[key], **value}
                else:
                    record[key] = value
            prop.value = json.dumps(record)
    onnx.save(proto, out)
    return out


def fake_tune(model: Path, speeds: dict[str, float], **machine: object) -> Path:
    record = {"sr_edge_tune": 1, "machine": {**machine_fingerprint(), **machine},
              "best_tile": 64, "variants": {
                  name: {"best_tile": 32 + i, "hr_mpix_s": speed}
                  for i, (name, speed) in enumerate(speeds.items())}}
    path = tune_path(model)
    path.write_text(json.dumps(record))
    return path


def test_family_names():
    assert family_base(Path("m/model.int8.onnx")) == Path("m/model.onnx")
    assert family_base(Path("m/model.onnx")) == Path("m/model.onnx")
    assert family_base(Path("m/my.model.onnx")) == Path("m/my.model.onnx")
    assert tune_path(Path("m/model.int8.onnx")) == Path("m/model.tune.json")


def test_metadata_is_read_without_the_onnx_package(family):
    expected = {p.key: p.value for p in onnx.load(family).metadata_props}
    assert read_metadata_props(family) == expected
    variant = family.with_name("model.int8.onnx")
    assert VARIANT_KEY in read_metadata_props(variant)
    broken = family.with_name("broken.onnx")
    broken.write_bytes(b"\xff\xff\xff")
    with pytest.raises(UsageError, match="broken.onnx is not an ONNX model"):
        read_metadata_props(broken)


def test_without_tuning_the_speed_measured_when_made_decides(family):
    variant = family.with_name("model.int8.onnx")
    with_variant_record(variant, variant, speed={"speedup": 1.5})
    path, reason = select_variant(family)
    assert path == variant  # its speed was measured when it was made, on this machine
    assert "accuracy gate passed" in reason and "timed when it was made, here" in reason
    with_variant_record(variant, variant, speed={"speedup": 0.9})
    assert select_variant(family)[0] == family
    with_variant_record(variant, variant, speed={"speedup": 1.02})  # within timing noise
    path, reason = select_variant(family)
    assert path == family and "must reach 1.05x the FP32 model" in reason


def test_tuned_speeds_decide(family):
    fake_tune(family, {"model.onnx": 1.0, "model.int8.onnx": 0.8})
    path, reason = select_variant(family)
    assert path == family and "model.int8.onnx not faster here (0.80x;" in reason
    fake_tune(family, {"model.onnx": 1.0, "model.int8.onnx": 1.7})
    path, reason = select_variant(family)
    assert path.name == "model.int8.onnx" and "1.70x" in reason and "model.tune.json" in reason


def test_variant_not_timed_on_this_cpu_class_is_not_chosen(family):
    variant = family.with_name("model.int8.onnx")
    elsewhere = {"cpu_model": "elsewhere", "cpu_class": "amx/64c"}
    with_variant_record(variant, variant, speed={"machine": elsewhere})
    fake_tune(family, {"model.onnx": 1.0, "model.int8.onnx": 2.0}, **elsewhere)
    path, reason = select_variant(family)
    assert path == family and "not timed on this machine" in reason
    assert tuned_tile(family) is None  # timings from another CPU class do not apply


def test_timings_of_another_cpu_model_of_the_same_class_apply(family):
    fake_tune(family, {"model.onnx": 1.0}, cpu_model="another EPYC of the same class")
    assert tuned_tile(family) is not None


def test_failed_or_stale_variants_are_skipped(family):
    variant = family.with_name("model.int8.onnx")
    with_variant_record(variant, variant, gate={"passed": False})
    path, reason = select_variant(family)
    assert path == family and "gate did not pass" in reason

    with_variant_record(variant, variant, gate={"passed": True}, speed={"speedup": 1.5})
    assert select_variant(family)[0] == variant
    proto = onnx.load(family)  # the FP32 model re-exported: the variant no longer matches it
    proto.doc_string = "re-exported"
    onnx.save(proto, family)
    path, reason = select_variant(family)
    assert path == family and "another version of model.onnx" in reason


def test_foreign_variant_file_is_ignored(family):
    stray = family.with_name("model.fp16.onnx")
    shutil.copy(family, stray)  # no variant record: not made by sr-export quantize
    variant = family.with_name("model.int8.onnx")
    with_variant_record(variant, variant, speed={"speedup": 1.5})
    found = {v.path.name: v for v in discover_variants(family)}
    assert not found["model.fp16.onnx"].usable
    assert select_variant(family)[0].name == "model.int8.onnx"


def test_explicit_variant_is_kept(family):
    variant = family.with_name("model.int8.onnx")
    assert select_variant(variant) == (variant, "model.int8.onnx: variant named explicitly")
    with pytest.raises(UsageError, match="model not found"):
        select_variant(family.with_name("absent.onnx"))


def test_tuned_tile_needs_a_record_from_this_machine(family):
    assert tuned_tile(family) is None
    fake_tune(family, {"model.onnx": 1.0, "model.int8.onnx": 1.5})
    assert tuned_tile(family) == 32 and tuned_tile(family.with_name("model.int8.onnx")) == 33
    fake_tune(family, {"model.onnx": 1.0}, onnxruntime="0.0.1")
    assert tuned_tile(family) is None
    assert "onnxruntime" in read_tune_record(family).describe_mismatch()
    tune_path(family).write_text("{not json")
    assert tuned_tile(family) is None


def test_tune_measures_each_variant_and_writes_the_record(family):
    messages = []
    record = tune_model(family, tiles=[8, 16], repeats=1, pause=0, progress=messages.append,
                        openvino=False)
    assert set(record["variants"]) == {"model.onnx", "model.int8.onnx"}
    for entry in record["variants"].values():
        assert [t["tile"] for t in entry["tiles"]] == [8, 16]
        assert all(t["window"] == t["tile"] + 8 and t["ms"] > 0 for t in entry["tiles"])
        assert entry["best_tile"] in (8, 16)
    assert record["best_variant"] in record["variants"] and len(messages) == 4
    path = write_tune(record, family)
    assert path == family.with_name("model.tune.json")
    best = record["variants"]["model.onnx"]["best_tile"]
    assert tuned_tile(family) == best


def test_cli_tune(family):
    result = runner.invoke(app, ["tune", str(family), "--tiles", "8", "--repeats", "1",
                                 "--profile"])
    assert result.exit_code == 0, result.output
    assert "model.tune.json" in result.output and "| Conv |" in result.output
    bad = runner.invoke(app, ["tune", str(family), "--tiles", "8,x"])
    assert bad.exit_code == 2 and "--tiles" in bad.output


def test_parse_tiles():
    assert parse_tiles(None) is None and parse_tiles("32, 64") == [32, 64]


def test_profile_splits_time_by_node(family):
    profile = profile_nodes(family, fields(1, size=16), runs=2, threads=1)
    assert profile.by_op["Conv"] > 0 and profile.run_ms > 0
    assert sum(ms for *_, ms in profile.by_node) == pytest.approx(sum(profile.by_op.values()))
    assert "| Conv |" in profile.table()


def test_session_options_use_physical_cores():
    import onnxruntime as ort

    options = session_options()
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert options.intra_op_num_threads == machine_fingerprint()["physical_cores"]
    assert session_options(threads=3).intra_op_num_threads == 3


def test_variant_choice_needs_neither_torch_nor_onnx(family):
    """sr-run calls these: they must work with only the runtime's dependencies."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import sys
        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {{"torch", "onnx", "lightning", "onnxscript"}}:
                    raise ImportError(name + " is blocked for this test")
        sys.meta_path.insert(0, Blocker())
        from sr_runtime.engines.tuning import tuned_tile
        from sr_runtime.engines.variants import select_variant
        path, reason = select_variant({str(family)!r})
        print("CHOSE", path.name, tuned_tile(path))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "CHOSE model" in result.stdout


def test_engine_says_which_precision_it_runs(family):
    from sr_runtime.engines.onnxruntime import OnnxRuntimeEngine

    assert OnnxRuntimeEngine(family).name == "onnxruntime"
    variant = OnnxRuntimeEngine(family.with_name("model.int8.onnx"))
    assert variant.name == "onnxruntime-int8" and variant.precision == "int8"
