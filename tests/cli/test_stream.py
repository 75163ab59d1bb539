"""Multi-step runs: Zarr output in the EDH layout, resume, kill -9, Dask workers, JSON summary,
and halo tiling end to end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import rasterio
import xarray as xr
from typer.testing import CliRunner

from sr_runtime.cli import app
from tests.conftest import resize_model, write_edh_store

runner = CliRunner()
RANGE = ["--start", "2024-10-11T00:00", "--end", "2024-10-11T05:00"]


def expected_hr(store) -> np.ndarray:
    """What the nearest-Resize model gives: each LR cell repeated 8 x 8."""
    lr = xr.open_zarr(store).t2m.values
    return np.repeat(np.repeat(lr, 8, axis=1), 8, axis=2)


def sr(args, *extra):
    return runner.invoke(app, [*args, *extra])


@pytest.fixture
def base(tmp_path, edh_store, nearest_model):
    return ["--model", str(nearest_model), "--source", str(edh_store)]


def test_zarr_output_layout_and_values(tmp_path, edh_store, base):
    out = tmp_path / "sr.zarr"
    result = sr(base, *RANGE, "--out", str(out), "--quiet", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["steps"] == 6 and summary["skipped"] == 0
    assert summary["backend"] == "onnxruntime" and summary["hr_mpix_per_s"] > 0
    ds = xr.open_zarr(out)
    assert ds.t2m.dims == ("time", "latitude", "longitude")
    assert ds.t2m.encoding["chunks"][0] == 1
    assert ds.t2m.attrs["units"] == "K"
    np.testing.assert_array_equal(ds.time.values, xr.open_zarr(edh_store).time.values)
    assert np.all(np.diff(ds.latitude.values) > 0)
    np.testing.assert_array_equal(ds.t2m.values, expected_hr(edh_store))
    assert ds.step_complete.values.tolist() == [1] * 6

    # the same step as a COG has the same values and grid (north-up there)
    cog = tmp_path / "sr3.tif"
    assert sr(base, "--time", "2024-10-11T03:00", "--out", str(cog)).exit_code == 0
    with rasterio.open(cog) as src:
        np.testing.assert_array_equal(src.read(1)[::-1], ds.t2m.values[3])
        assert np.isclose(src.bounds.bottom, ds.latitude.values[0] - 0.35225 / 16, atol=1e-6)


def test_existing_store_needs_resume_or_overwrite(tmp_path, edh_store, base):
    out = tmp_path / "sr.zarr"
    assert sr(base, *RANGE, "--out", str(out)).exit_code == 0
    result = sr(base, *RANGE, "--out", str(out))
    assert result.exit_code == 2
    assert "pass --resume to complete it or --overwrite" in " ".join(result.output.split())
    result = sr(base, *RANGE, "--out", str(out), "--resume", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["skipped"] == 6

    import zarr  # forget steps 2..5 and spoil their data: --resume must redo exactly those
    root = zarr.open_group(str(out), mode="r+")
    root["step_complete"][2:] = 0
    root["t2m"][2:] = -1.0
    result = sr(base, *RANGE, "--out", str(out), "--resume", "--json", "--quiet")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["steps"] == 4
    np.testing.assert_array_equal(xr.open_zarr(out).t2m.values, expected_hr(edh_store))

    other = sr(base, "--start", "2024-10-11T01:00", "--end", "2024-10-11T02:00", "--out",
               str(out), "--resume")
    assert other.exit_code == 2
    assert "made for other times" in " ".join(other.output.split())


def test_cog_resume_skips_written_steps(tmp_path, base):
    template = str(tmp_path / "sr_{time:%H}.tif")
    assert sr(base, *RANGE, "--out", template, "--every", "2h").exit_code == 0
    (tmp_path / "sr_02.tif").unlink()
    (tmp_path / ".sr_02.tif.abc.part.tif").write_bytes(b"half")  # left by a killed run
    result = sr(base, *RANGE, "--out", template, "--every", "2h", "--resume", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["steps"], summary["skipped"]) == (1, 2)
    assert sorted(p.name for p in tmp_path.iterdir() if "sr_" in p.name) == [
        "sr_00.tif", "sr_02.tif", "sr_04.tif"]


def test_kill_9_leaves_no_corrupt_output_and_resume_completes(tmp_path):
    store = write_edh_store(tmp_path / "big.zarr", lat_slice=slice(200, 232),
                            lon_slice=slice(400, 464), hours=100)
    model = resize_model(tmp_path / "nearest.onnx")
    out = tmp_path / "sr.zarr"
    args = [sys.executable, "-m", "sr_runtime.cli", "--model", str(model), "--source",
            str(store), "--start", "2024-10-11T00:00", "--end", "2024-10-15T03:00", "--out",
            str(out), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    import zarr

    deadline = time.monotonic() + 60
    done = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / "zarr.json").exists():
                done = int(np.asarray(zarr.open_group(str(out), mode="r")["step_complete"][:])
                           .sum())
                if done >= 3:
                    break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert 3 <= done < 100

    expected = expected_hr(store)
    ds = xr.open_zarr(out)  # opens: metadata is whole
    flags = ds.step_complete.values
    complete = np.flatnonzero(flags == 1)
    assert complete.size >= 3
    np.testing.assert_array_equal(ds.t2m.values[complete], expected[complete])

    result = runner.invoke(app, [*args[3:], "--resume", "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["skipped"] == complete.size and summary["steps"] == 100 - complete.size
    np.testing.assert_array_equal(xr.open_zarr(out).t2m.values, expected)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".sr.zarr")]


def test_two_dask_workers_match_serial(tmp_path, edh_store, base):
    pytest.importorskip("distributed")
    serial, dist = tmp_path / "serial.zarr", tmp_path / "dist.zarr"
    assert sr(base, *RANGE, "--out", str(serial), "--quiet").exit_code == 0
    result = sr(base, *RANGE, "--out", str(dist), "--workers", "2", "--json", "--quiet")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["workers"] == 2 and summary["steps"] == 6
    xr.testing.assert_identical(xr.open_zarr(serial).t2m.load(), xr.open_zarr(dist).t2m.load())
    # the run's cluster is gone and was never the process's default scheduler: the caller's own
    # dask work (this chunked store) still computes on the local threads
    from distributed import default_client

    with pytest.raises(ValueError, match="No clients found"):
        default_client()
    assert float(xr.open_zarr(dist).t2m.mean().compute()) > 200.0


def test_global_and_bbox_exclude_each_other(tmp_path, base):
    result = sr(base, "--time", "2024-10-11T00:00", "--global", "--bbox", "0,0,10,10",
                "--out", str(tmp_path / "x.tif"))
    assert result.exit_code == 2
    assert "--global and --bbox exclude each other" in result.output


def test_progress_bar_on_a_terminal(tmp_path, edh_store, nearest_model):
    import io

    from rich.console import Console

    from sr_runtime.progress import Reporter
    from sr_runtime.request import RunRequest
    from sr_runtime.runner import run

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100)
    request = RunRequest.from_text(out=tmp_path / "sr.zarr", model=nearest_model,
                                   source=str(edh_store), start="2024-10-11T00:00",
                                   end="2024-10-11T05:00")
    summary = run(request, say=console.print,
                  progress=lambda total: Reporter(console, total, quiet=False))
    assert summary.steps == 6
    text = buffer.getvalue()
    assert "6/6" in text and "HR Mpix/s" in text
