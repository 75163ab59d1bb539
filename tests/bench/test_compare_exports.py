"""benchmarks/compare_exports.py: two exports side by side, on real ONNX Runtime sessions."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("onnx")

from benchmarks.compare_exports import main  # noqa: E402
from sr_export.static_split import write_split  # noqa: E402


def test_two_exports_of_a_static_model_are_timed_whole_and_in_parts(static_models, tmp_path,
                                                                    capsys):
    old, new = tmp_path / "old.onnx", tmp_path / "new.onnx"
    shutil.copy(static_models["two"], old)
    shutil.copy(static_models["two"], new)
    write_split(new)  # only the new one has parts: the shared calls are compared
    assert main([str(old), str(new), "--tiles", "8", "--rounds", "1"]) == 0
    table = capsys.readouterr().out
    assert "| 8 | whole model |" in table
    assert "static part" not in table  # the old export has none
    assert "| 8 | output, max abs difference | | | 0.0e+00 K |" in table  # the same graph
    write_split(old)
    assert main([str(old), str(new), "--tiles", "8", "--rounds", "1"]) == 0
    table = capsys.readouterr().out
    assert "| 8 | static part |" in table and "| 8 | step part |" in table


def test_a_missing_model_is_refused(static_models, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "nothing.onnx"), str(static_models["two"])])
    assert exit_info.value.code == 2
    assert "model not found" in capsys.readouterr().err


def test_openvino_times_the_whole_model_as_its_engine_runs_it(static_models, tmp_path, capsys):
    pytest.importorskip("openvino")
    assert main([str(static_models["one"]), str(static_models["one"]), "--tiles", "8",
                 "--rounds", "1", "--openvino", "fp32"]) == 0
    assert "| 8 | OpenVINO, whole model (FP32) |" in capsys.readouterr().out
