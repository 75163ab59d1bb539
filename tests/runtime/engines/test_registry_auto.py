"""Backends by name and `auto` (sr_runtime.engines.registry)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sr_runtime.engines.registry import AUTO_ORDER, ENGINES, backend_names, load_engine
from sr_runtime.errors import EngineUnavailableError, UsageError


def test_unknown_backend_lists_the_known_ones(nearest_model):
    with pytest.raises(UsageError) as info:
        load_engine("opencl", nearest_model)
    message = str(info.value)
    assert "unknown backend 'opencl'" in message
    for name in backend_names():
        assert name in message


def test_a_backend_refuses_files_it_does_not_load(tmp_path):
    checkpoint = tmp_path / "model.ckpt"
    checkpoint.write_bytes(b"")
    with pytest.raises(UsageError, match="loads .onnx files"):
        load_engine("onnxruntime", checkpoint)


def test_auto_picks_the_first_usable_backend_and_says_why_others_were_skipped(nearest_model):
    selection = load_engine("auto", nearest_model)
    assert selection.engine.name == "onnxruntime"
    skipped = [name for name, _ in selection.skipped]
    assert skipped == [n for n in AUTO_ORDER[:AUTO_ORDER.index("onnxruntime")] if n in ENGINES]
    assert all(reason for _, reason in selection.skipped)
    lines = selection.summary()
    assert lines[-1].startswith("backend: onnxruntime")


def test_auto_with_nothing_usable_says_what_each_backend_lacks(tmp_path):
    model = Path(tmp_path / "model.engine")
    model.write_bytes(b"not a plan")
    with pytest.raises((EngineUnavailableError, UsageError)) as info:
        load_engine("auto", model)
    assert "onnxruntime" in str(info.value)


def test_loaded_engines_declare_the_engine_contract(nearest_model):
    with load_engine("onnxruntime", nearest_model).engine as engine:
        assert engine.path == nearest_model and len(engine.model_file_sha256) == 64
        assert engine.precision == "fp32" and engine.max_window_lr is None


def test_an_engine_for_a_multi_step_run_does_not_spin(nearest_model):
    """Reader and writer threads share the cores with a range's engine: its idle ONNX Runtime
    threads are told not to spin; a single-step engine keeps ONNX Runtime's default."""
    from sr_runtime.engines.registry import load_engine

    quiet = load_engine("onnxruntime", nearest_model, spinning=False).engine
    options = quiet.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    default = load_engine("onnxruntime", nearest_model).engine
    with pytest.raises(Exception, match="allow_spinning"):  # not set: ONNX Runtime's default
        default.session.get_session_options().get_session_config_entry(
            "session.intra_op.allow_spinning")
