"""Backends from entry points (group ``sr_edge.engines``): the PyTorch baseline is one, found
lazily through the installed metadata, so the runtime never imports the export side."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from sr_runtime.engines import gpu_backends, registry
from sr_runtime.engines.registry import load_engine
from sr_runtime.errors import EngineUnavailableError, UsageError

INSTALL = "pip install 'sr-edge[export]'"


def test_torch_backend_is_the_export_sides_entry_point():
    points = {p.name: p.value for p in importlib.metadata.entry_points(group="sr_edge.engines")}
    assert points["torch"] == "sr_export.torch_engine:ENGINE_SPEC"
    from sr_export import torch_engine

    assert registry.ENGINES["torch"] is torch_engine.ENGINE_SPEC
    assert registry.ENGINES["torch"].accepts == (".ckpt", ".pt", ".pth")
    assert registry.backend_names() == ["auto", "onnxruntime", "openvino", "torch", "tensorrt",
                                        "ort-tensorrt", "ort-cuda"]


def test_the_entry_point_is_read_only_when_the_registry_is():
    code = textwrap.dedent("""
        import sys
        from sr_runtime.engines import registry
        before = sorted(m for m in sys.modules if m.startswith("sr_export"))
        names = registry.backend_names()
        after = sorted(m for m in sys.modules if m.startswith("sr_export"))
        print(before, "torch" in names, after, "torch" in sys.modules)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[] True ['sr_export', 'sr_export.torch_engine'] False"


def test_torch_backend_runs_the_checkpoint(tmp_path):
    pytest.importorskip("torch")
    from tests.runtime.engines.test_tensorrt_build import write_sr_edge_checkpoint

    checkpoint = write_sr_edge_checkpoint(tmp_path / "tiny.ckpt")
    engine = load_engine("torch", checkpoint).engine
    assert engine.name == "torch" and engine.model_file == checkpoint
    out = engine.infer(np.full((1, 1, 4, 5), 283.0, np.float32))
    assert out.shape == (1, 1, 32, 40) and np.isfinite(out).all()
    with pytest.raises(UsageError, match="loads .ckpt/.pt/.pth files"):
        load_engine("torch", tmp_path / "model.onnx")


PLUGIN = '''
import numpy as np
from sr_runtime.engines.base import EngineSpec


class Echo:
    name = "echo"

    def __init__(self, path):
        from sr_runtime.description import ModelDescription, VariableSpec
        self.description = ModelDescription(scale=1, variables=(
            VariableSpec("t2m", "K", 280, 5, 280, 5),))
        self.model_file_sha256 = "0" * 64

    def infer(self, lr):
        return np.asarray(lr, np.float32)


SPEC = EngineSpec("echo", lambda: None, lambda path, options: Echo(path), accepts=(".echo",))
WRONG_NAME = EngineSpec("other", lambda: None, lambda path, options: Echo(path))
'''


@pytest.fixture
def plugin_group(tmp_path, monkeypatch):
    """A separately installed distribution (real dist-info on sys.path) declaring backends in
    its own entry-point group, and a fresh registry that reads that group."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "srplugin_demo.py").write_text(PLUGIN)
    info = site / "srplugin_demo-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: srplugin-demo\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[sr_edge_test.engines]\n"
        "echo = srplugin_demo:SPEC\n"
        "broken = srplugin_missing:SPEC\n"
        "renamed = srplugin_demo:WRONG_NAME\n"
        "onnxruntime = srplugin_demo:SPEC\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    fresh = registry._Registry()
    fresh.add(registry.ENGINES["onnxruntime"])
    for spec in gpu_backends.specs():
        fresh.add(spec)
    monkeypatch.setattr(registry, "ENGINES", fresh)
    monkeypatch.setattr(registry, "ENTRY_POINT_GROUP", "sr_edge_test.engines")
    return fresh


def test_plugins_are_discovered_and_builtins_win(plugin_group, tmp_path):
    assert registry.backend_names() == ["auto", "onnxruntime", "tensorrt", "ort-tensorrt",
                                        "ort-cuda", "echo"]
    assert plugin_group["onnxruntime"].accepts == (".onnx",)  # not replaced by the plugin
    engine = load_engine("echo", tmp_path / "x.echo").engine
    lr = np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3)
    np.testing.assert_array_equal(engine.infer(lr), lr)


def test_broken_plugins_say_why_in_one_line(plugin_group, tmp_path):
    with pytest.raises(EngineUnavailableError) as err:
        load_engine("broken", tmp_path / "x.onnx")
    assert "srplugin_missing:SPEC cannot be imported (No module named 'srplugin_missing')" in \
        str(err.value)
    with pytest.raises(EngineUnavailableError, match="is not an EngineSpec named 'renamed'"):
        load_engine("renamed", tmp_path / "x.onnx")
    with pytest.raises(UsageError, match="unknown backend 'nope'"):
        load_engine("nope", tmp_path / "x.onnx")


def test_without_the_torch_plugin_torch_says_what_to_install(plugin_group, tmp_path):
    checkpoint = tmp_path / "model.ckpt"
    with pytest.raises(EngineUnavailableError) as err:
        load_engine("torch", checkpoint)
    assert str(err.value) == f"backend 'torch' is not usable here: not installed: {INSTALL}"
    with pytest.raises(EngineUnavailableError) as err:
        load_engine("auto", checkpoint)
    assert f"torch: not installed: {INSTALL}" in str(err.value)
    assert "onnxruntime: does not load .ckpt files" in str(err.value)


def test_auto_summary_for_a_checkpoint_is_unchanged(monkeypatch, tmp_path):
    """With the plugin installed, auto picks torch for a checkpoint after the same skips."""
    pytest.importorskip("torch")
    from tests.runtime.engines.test_tensorrt_build import write_sr_edge_checkpoint

    monkeypatch.setattr(gpu_backends, "probe_cuda", lambda: gpu_backends.NO_GPU)
    checkpoint = write_sr_edge_checkpoint(tmp_path / "tiny.ckpt")
    selection = load_engine("auto", Path(checkpoint))
    assert selection.engine.name == "torch"
    assert [name for name, _ in selection.skipped] == ["tensorrt", "ort-tensorrt", "ort-cuda",
                                                       "onnxruntime"]
    assert selection.skipped[-1] == ("onnxruntime", "does not load .ckpt files")
