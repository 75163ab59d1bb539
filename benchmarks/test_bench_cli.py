"""`sr-run` as users run it: start-up (`--help`) and one time step end to end (subprocess)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.harness import sample_missing_reason, write_synthetic_store


def sr_run() -> str:
    path = shutil.which("sr-run") or str(Path(sys.executable).with_name("sr-run"))
    if not Path(path).exists():
        pytest.skip("sr-run is not installed (pip install -e .)")
    return path


def run_ok(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 0, done.stderr[-2000:]


def test_startup(benchmark):
    benchmark.extra_info["kind"] = "startup"
    benchmark.pedantic(run_ok, args=([sr_run(), "--help"],), rounds=3, iterations=1)


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_sr_run_one_step(benchmark, model_files, tmp_path, backend):
    files = model_files("random")
    if sample_missing_reason() is None:
        source, when = "sample", "2024-10-25T00:00"
    else:
        source, when = str(write_synthetic_store(tmp_path / "lr.zarr")), "2024-10-11T00:00"
    model = files.onnx if backend == "onnxruntime" else files.checkpoint
    command = [sr_run(), "--time", when, "--out", str(tmp_path / "sr.tif"), "--source", source,
               "--model", str(model), "--backend", backend, "--overwrite"]
    benchmark.extra_info.update({"kind": "endtoend", "backend": backend,
                                 "model": files.spec.name, "source": source})
    benchmark.pedantic(run_ok, args=(command,), rounds=3, iterations=1)
