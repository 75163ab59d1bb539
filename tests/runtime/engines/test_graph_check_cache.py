"""A passed load-time graph check is remembered on disk by model bytes, description and ONNX
Runtime version; a failed one never is, and a damaged entry is probed again."""

from __future__ import annotations

import logging

import pytest

from sr_runtime.engines import graph_check
from sr_runtime.engines.graph_check import CHECK_CACHE_ENV, check_graph
from sr_runtime.engines.onnxruntime import open_cpu_session, read_description
from sr_runtime.errors import ModelMismatchError
from sr_runtime.paths import sha256_file
from tests.conftest import conv_model

pytest.importorskip("onnx", reason="the export extra is not installed")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "checks"
    monkeypatch.setenv(CHECK_CACHE_ENV, str(folder))
    monkeypatch.setattr(graph_check, "_CHECKED", {})  # a fresh process, as far as checks go
    return folder


def probed(path):
    """check_graph on ``path`` through a real ONNX Runtime session; (result, probe calls)."""
    session = open_cpu_session(path)
    calls = []

    def run(lr):
        calls.append(lr.shape)
        return session.run(None, {"lr": lr})[0]

    graph_check._CHECKED.clear()
    result = check_graph(run, read_description(path), str(path), sha256_file(path))
    return result, len(calls)


def test_the_second_load_skips_the_probes_and_agrees(tmp_path, cache):
    model = conv_model(tmp_path / "m.onnx", lr_kernels=(5, 3))
    first, first_calls = probed(model)
    again, again_calls = probed(model)
    assert first_calls > 0 and again_calls == 0
    assert again == first and first.receptive_field_lr == 3  # 5 // 2 + 3 // 2
    assert len(list(cache.glob("*.json"))) == 1


def test_another_model_is_probed_afresh(tmp_path, cache):
    probed(conv_model(tmp_path / "a.onnx", lr_kernels=(3,)))
    result, calls = probed(conv_model(tmp_path / "b.onnx", lr_kernels=(7,)))
    assert calls > 0 and result.receptive_field_lr == 3


def test_a_damaged_entry_is_probed_again(tmp_path, cache):
    model = conv_model(tmp_path / "m.onnx", lr_kernels=(5,))
    probed(model)
    (entry,) = cache.glob("*.json")
    entry.write_text('{"scale": 8, "receptive')
    result, calls = probed(model)
    assert calls > 0 and result.receptive_field_lr == 2


def test_a_failed_check_is_not_remembered(tmp_path, cache):
    model = conv_model(tmp_path / "nan.onnx", lr_kernels=(3,), nan_weights=True)
    for _ in range(2):  # refused both times: nothing was stored in between
        with pytest.raises(ModelMismatchError, match="non-finite"):
            probed(model)
    assert not list(cache.glob("*.json"))


def test_off_turns_the_cache_off(tmp_path, monkeypatch):
    monkeypatch.setenv(CHECK_CACHE_ENV, "off")
    model = conv_model(tmp_path / "m.onnx", lr_kernels=(3,))
    probed(model)
    assert probed(model)[1] > 0


def test_a_too_small_halo_is_still_reported_when_remembered(tmp_path, cache, caplog):
    model = conv_model(tmp_path / "m.onnx", lr_kernels=(9,), claimed_halo=1)
    probed(model)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sr_runtime"):
        result, calls = probed(model)
    assert calls == 0 and result.halo_lr == 4
    assert "claims a 1-cell halo but its receptive field reaches 4" in caplog.text
