"""Real inputs as a new user gives them (issue 12): no traceback for any of them, and no silently
wrong output. Each case checks the exit code, one ``error:`` line, and that no file was left or
changed (a snapshot of the folder before and after)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import typer
import xarray as xr
from typer.testing import CliRunner

from sr_runtime.cli import app
from sr_runtime.clikit import DebugOption, OneLineCommand, friendly_errors
from sr_runtime.description import HR_OUTPUT, LR_INPUT, ModelDescription, VariableSpec
from tests.conftest import nan_where_cold_model, resize_model, save_described_model, write_edh_store

runner = CliRunner()
T = "2024-10-11T02:00"
RANGE = ["--start", "2024-10-11T01:00", "--end", "2024-10-11T05:00"]


# ---------------------------------------------------------------- helpers
def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones too) with the sha256 of its content."""
    found = {}
    for path in sorted(Path(folder).rglob("*")):
        if path.is_symlink():
            found[str(path.relative_to(folder))] = "-> " + os.readlink(path)
        elif path.is_file():
            found[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.is_dir():
            found[str(path.relative_to(folder))] = "dir"
    return found


def one_error_line(output: str) -> str:
    """The output is exactly one ``error: ...`` line (the runs below are --quiet)."""
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("error: "), output
    return lines[0]


def sr(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def graph_model(path: Path, nodes, initializers) -> Path:
    """An x8 t2m model: nearest Resize of ``lr`` into ``up``, then ``nodes`` from ``up`` to
    ``hr`` (ONNX Runtime runs it for real)."""
    from onnx import TensorProto, helper

    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1.0, 1.0, 8.0, 8.0])
    resize = helper.make_node("Resize", [LR_INPUT, "", "scales"], ["up"], mode="nearest",
                              coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    graph = helper.make_graph(
        [resize, *nodes], "broken",
        [helper.make_tensor_value_info(LR_INPUT, TensorProto.FLOAT, ["batch", 1, "h", "w"])],
        [helper.make_tensor_value_info(HR_OUTPUT, TensorProto.FLOAT, ["batch", 1, "H", "W"])],
        initializer=[scales, *initializers])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    proto.ir_version = 9
    description = ModelDescription(scale=8, architecture="Broken",
                                   variables=(VariableSpec("t2m", "K", 0.0, 1.0, 0.0, 1.0),))
    return save_described_model(proto, description, path)


def weight_model(path: Path, weight: float) -> Path:
    """hr = up * weight: a single corrupt weight (NaN, inf) or a wrong one (0 -> 0 K)."""
    from onnx import TensorProto, helper

    return graph_model(path, [helper.make_node("Mul", ["up", "w"], [HR_OUTPUT])],
                       [helper.make_tensor("w", TensorProto.FLOAT, [1], [weight])])


@pytest.fixture
def base(edh_store, nearest_model):
    return ["--model", nearest_model, "--source", edh_store, "--quiet"]


def expected_hr(store) -> np.ndarray:
    lr = xr.open_zarr(store).t2m.values
    return np.repeat(np.repeat(lr, 8, axis=1), 8, axis=2)


def cli_process(*args: str, **kwargs) -> subprocess.Popen:
    # PYTHONFAULTHANDLER: a run that hangs can be made to print every thread's stack (SIGABRT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **kwargs}
    return subprocess.Popen([sys.executable, "-m", "sr_runtime.cli", *map(str, args)], env=env,
                            text=True, **pipes)


# ---------------------------------------------------------------- no traceback, any input
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400", "0", "-5", "1e308"])
def test_max_memory_that_is_no_budget(tmp_path, base, value):
    before = snapshot(tmp_path)
    result = sr(*base, "--time", T, "--out", tmp_path / "sr.tif", f"--max-memory={value}")
    assert result.exit_code == 2
    assert "--max-memory must be a positive number of MB" in one_error_line(result.output)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("args", [["--max-memory", "lots"], ["--workers", "two"],
                                  ["--no-such-option"], []])
def test_what_the_parser_refuses_is_one_line(tmp_path, base, args):
    out = [] if args == [] else ["--out", tmp_path / "sr.tif"]  # [] misses --out
    result = sr(*base, "--time", T, *out, *args)
    assert result.exit_code == 2
    assert "--help" in one_error_line(result.output)
    assert not (tmp_path / "sr.tif").exists()


def test_output_name_too_long(tmp_path, base):
    before = snapshot(tmp_path)
    result = sr(*base, "--time", T, "--out", tmp_path / ("a" * 300 + ".tif"))
    assert result.exit_code == 2
    assert "too long for its filesystem" in one_error_line(result.output)
    assert snapshot(tmp_path) == before


def test_output_folder_is_a_file(tmp_path, base):
    (tmp_path / "notes").write_text("mine")
    before = snapshot(tmp_path)
    for option in ("--out", "--lr-out"):
        extra = ["--out", tmp_path / "sr.tif"] if option == "--lr-out" else []
        result = sr(*base, "--time", T, *extra, option, tmp_path / "notes" / "x.tif")
        assert result.exit_code == 2
        assert "notes is a file, not a folder" in one_error_line(result.output)
        assert snapshot(tmp_path) == before


def _run_as_nobody(args: list[str]) -> tuple[int, str]:
    """Run sr-run in a forked child that became ``nobody`` (root ignores permissions)."""
    import pwd

    nobody = pwd.getpwnam("nobody")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop root, run the CLI in-process, report through the pipe
        code, output = 99, ""
        try:
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            result = runner.invoke(app, args)
            code, output = result.exit_code, result.output
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            output = repr(exc)
        finally:
            os.write(write_end, json.dumps([code, output]).encode())
            os._exit(0)
    os.close(write_end)
    chunks = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(pid, 0)
    code, output = json.loads(b"".join(chunks).decode())
    return code, output


def test_output_folder_not_writable(tmp_path, base):
    folder = tmp_path / "readonly"
    folder.mkdir()
    args = [*map(str, base), "--time", T, "--out", str(folder / "sr.tif")]
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            result = sr(*args)
            code, output = result.exit_code, result.output
        finally:
            folder.chmod(0o755)
    else:
        try:
            import pwd

            pwd.getpwnam("nobody")
        except (ImportError, KeyError):
            pytest.skip("running as root (permissions are not enforced) and no 'nobody' user")
        folder.chmod(0o755)  # root's folder: nobody may enter it but not write there
        for parent in [tmp_path, *tmp_path.parents]:  # pytest's folders are 0700
            if parent == Path("/"):
                break
            parent.chmod(parent.stat().st_mode | 0o005)
        code, output = _run_as_nobody(args)
    assert code == 2, output
    line = one_error_line(output)
    assert f"output folder {folder} is not writable" in line
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize(("code", "needle"), [
    (errno.EROFS, "is on a read-only filesystem"),
    (errno.EACCES, "is not writable"),
    (errno.ENOSPC, "no space left in"),
    (errno.EIO, "cannot write --out"),
])
def test_every_os_refusal_is_one_line(tmp_path, code, needle):
    """What a read-only mount or a full disk answers, as the probe would get it."""
    from sr_runtime.paths import output_error

    error = output_error(OSError(code, os.strerror(code)), tmp_path / "sr.tif")
    assert needle in str(error) and "\n" not in str(error)
    assert error.exit_code == 2


def _wait_for_lock(proc: subprocess.Popen, folder: Path) -> Path:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        for lock in folder.glob(".*.lock"):
            try:
                if lock.read_text().strip() == str(proc.pid):
                    return lock
            except OSError:
                pass
        time.sleep(0.005)
    raise AssertionError(f"no lock appeared (exit {proc.poll()}): {stacks_and_kill(proc)}")


def stacks_and_kill(proc: subprocess.Popen) -> str:
    """What a run printed, with every thread's stack if it was still running (it is ended)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGABRT)  # faulthandler prints the stacks, then it dies
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return f"stdout: {out}\nstderr: {err}"


@pytest.mark.parametrize("mode", ["zarr-overwrite", "cog-resume"])
def test_second_concurrent_run_stops_at_once(tmp_path, mode):
    """Two real sr-run processes on one output: the second stops with one line naming the
    first, which completes undisturbed."""
    store = write_edh_store(tmp_path / "big.zarr", lat_slice=slice(200, 232),
                            lon_slice=slice(400, 464), hours=60)
    model = resize_model(tmp_path / "nearest.onnx")
    folder = tmp_path / "out"
    folder.mkdir()
    if mode == "zarr-overwrite":
        out, flag = folder / "sr.zarr", "--overwrite"
    else:
        out, flag = folder / "sr_{time:%d%H}.tif", "--resume"
    args = ["--model", model, "--source", store, "--start", "2024-10-11T00:00", "--end",
            "2024-10-13T11:00", "--out", out, "--quiet", flag]
    first = cli_process(*args)
    try:
        _wait_for_lock(first, folder)
        first.send_signal(signal.SIGSTOP)  # hold it mid-run, whatever the machine's speed
        try:
            second = cli_process(*args)
            try:
                _, second_err = second.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"the second run did not stop: {stacks_and_kill(second)}"
                                     ) from None
        finally:
            first.send_signal(signal.SIGCONT)
        assert second.returncode == 1, second_err
        line = one_error_line(second_err)
        assert f"another sr-run is writing {out} (pid {first.pid}); wait for it or choose " \
               "another --out" in line
        try:
            _, stderr = first.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the first run did not finish: {stacks_and_kill(first)}"
                                 ) from None
        assert first.returncode == 0, stderr
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    expected = expected_hr(store)
    if mode == "zarr-overwrite":
        ds = xr.open_zarr(out)
        assert ds.step_complete.values.tolist() == [1] * 60
        np.testing.assert_array_equal(ds.t2m.values, expected)
    else:
        cogs = sorted(folder.glob("sr_*.tif"))
        assert len(cogs) == 60
        with rasterio.open(cogs[-1]) as cog:
            np.testing.assert_array_equal(cog.read(1)[::-1], expected[-1])
    assert list(folder.glob(".*")) == [], "no lock or temporary file is left"


def test_dask_failure_is_one_line_without_its_traceback(tmp_path, edh_store):
    pytest.importorskip("distributed")
    lr = xr.open_zarr(edh_store).t2m.sel(time="2024-10-11T01:00").values
    model = nan_where_cold_model(tmp_path / "cold.onnx", float(np.median(lr)))
    out = tmp_path / "sr.zarr"
    proc = cli_process("--model", model, "--source", edh_store, *RANGE, "--out", out,
                       "--workers", "2", "--quiet")
    stdout, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 1, stderr
    line = one_error_line(stderr)
    assert "non-finite values" in line and "distributed" not in stderr
    assert stdout == "" and not out.exists()


def test_unforeseen_error_names_itself_and_where_to_report_it(monkeypatch):
    """An exception sr-edge has no message for, in a command built like sr-run's."""
    demo = typer.Typer(add_completion=False)

    @demo.command(cls=OneLineCommand)
    @friendly_errors
    def crash(debug: DebugOption = False) -> None:
        {}["no such key"]  # noqa: B018 - a KeyError nobody foresaw

    monkeypatch.delenv("SR_EDGE_DEBUG", raising=False)
    result = runner.invoke(demo, [])
    assert result.exit_code == 1
    line = one_error_line(result.output)
    assert "unexpected KeyError: 'no such key'" in line
    assert "SR_EDGE_DEBUG=1" in line and "--debug" in line
    assert "report it with the traceback at the sr-edge issue tracker" in line

    for args, env in (([], "1"), (["--debug"], None)):
        if env:
            monkeypatch.setenv("SR_EDGE_DEBUG", env)
        else:
            monkeypatch.delenv("SR_EDGE_DEBUG", raising=False)
        result = runner.invoke(demo, args)
        assert result.exit_code == 1
        assert "Traceback" in result.output and "KeyError" in result.output
        last = result.output.strip().splitlines()[-1]
        assert last.startswith("error: unexpected KeyError") and "issue tracker" in last
    monkeypatch.delenv("SR_EDGE_DEBUG", raising=False)
    assert "Traceback" not in runner.invoke(demo, []).output, "--debug lasts one call"


def test_sr_run_has_debug(tmp_path, base, monkeypatch):
    monkeypatch.delenv("SR_EDGE_DEBUG", raising=False)
    result = sr(*base, "--time", "2024-12-01T00:00", "--out", tmp_path / "sr.tif", "--debug")
    assert result.exit_code == 2
    assert "Traceback" in result.output and "outside the DataCube" in result.output


# ---------------------------------------------------------------- no silently wrong output
@pytest.mark.parametrize("weight", [float("nan"), float("inf")])
@pytest.mark.parametrize("name", ["sr.tif", "sr.zarr", "sr.nc"])
def test_corrupt_weights_are_refused_before_anything_runs(tmp_path, edh_store, weight, name):
    """NaN/inf weights give non-finite output for any input: the load-time probe refuses the
    model (a usage error: the file is broken) before a step is read or written."""
    model = weight_model(tmp_path / "corrupt.onnx", weight)
    before = snapshot(tmp_path)
    result = sr("--model", model, "--source", edh_store, "--time", T, "--out", tmp_path / name,
                "--quiet")
    assert result.exit_code == 2
    line = one_error_line(result.output)
    assert "returns non-finite values" in line and "weights are corrupt" in line
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("name", ["sr.tif", "sr.zarr", "sr.nc"])
def test_non_finite_model_output_writes_nothing(tmp_path, edh_store, name):
    """A model that passes the load-time probe but returns NaN on this data (colder than what
    its description claims): every engine output is checked before it is written."""
    lr = xr.open_zarr(edh_store).t2m.sel(time=T).values
    threshold = float(np.median(lr))
    model = nan_where_cold_model(tmp_path / "cold.onnx", threshold)
    before = snapshot(tmp_path)
    result = sr("--model", model, "--source", edh_store, "--time", T, "--out", tmp_path / name,
                "--quiet")
    assert result.exit_code == 1
    line = one_error_line(result.output)
    cells = 64 * int(np.count_nonzero(lr < threshold))  # sqrt of a negative is NaN, x8 nearest
    assert f"at {T} has {cells} non-finite values" in line
    assert snapshot(tmp_path) == before


def test_non_finite_count_and_time_over_a_range(tmp_path, edh_store):
    lr = xr.open_zarr(edh_store).t2m.sel(time="2024-10-11T01:00").values
    threshold = float(np.median(lr))
    model = nan_where_cold_model(tmp_path / "partly.onnx", threshold)
    existing = tmp_path / "sr.zarr"
    assert sr("--model", resize_model(tmp_path / "good.onnx"), "--source", edh_store, *RANGE,
              "--out", existing, "--quiet").exit_code == 0
    before = snapshot(tmp_path)
    result = sr("--model", model, "--source", edh_store, *RANGE, "--out", existing,
                "--overwrite", "--quiet")
    assert result.exit_code == 1
    below = int(np.count_nonzero(lr < threshold))  # sqrt(<0) is NaN
    assert f"at 2024-10-11T01:00 has {64 * below} non-finite values" in one_error_line(
        result.output)
    assert snapshot(tmp_path) == before, "the existing store is kept when step 1 fails"


def test_impossible_temperatures_are_refused(tmp_path, edh_store):
    model = weight_model(tmp_path / "zero.onnx", 0.0)  # 0 K everywhere
    result = sr("--model", model, "--source", edh_store, "--time", T, "--out",
                tmp_path / "sr.tif", "--quiet")
    assert result.exit_code == 1
    assert "outside 150..350 K" in one_error_line(result.output)
    assert not (tmp_path / "sr.tif").exists()


def test_outputs_that_are_one_file_are_refused(tmp_path, base, monkeypatch):
    precious = tmp_path / "a.tif"
    precious.write_bytes(b"precious")
    (tmp_path / "look.png").symlink_to(precious)
    (tmp_path / "sub").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "sub")
    monkeypatch.chdir(tmp_path)
    cases = [
        (["--time", T, "--out", "a.tif", "--preview", "look.png", "--overwrite"], "a.tif"),
        (["--time", T, "--out", "sr.tif", "--lr-out", tmp_path / "sr.tif"], "sr.tif"),
        (["--time", T, "--out", "sub/sr.tif", "--lr-out", "alias/sr.tif"], "sr.tif"),
        ([*RANGE, "--out", "s_{time:%H}.tif", "--lr-out", "s_{time:%I}.tif"], "s_01.tif"),
        (["--time", T, "--out", "./x/../a.tif", "--lr-out", "a.tif", "--overwrite"], "a.tif"),
    ]
    (tmp_path / "x").mkdir()
    before = snapshot(tmp_path)
    for args, name in cases:
        result = sr(*base, *args)
        assert result.exit_code == 2, (args, result.output)
        line = one_error_line(result.output)
        assert "are the same file" in line and name in line, line
        assert snapshot(tmp_path) == before, args


def test_output_that_is_an_input_is_refused(tmp_path, edh_store, nearest_model):
    before = snapshot(tmp_path)
    for args, needle in (
            (["--source", edh_store, "--out", edh_store, "--overwrite"], "--source"),
            (["--source", edh_store, "--out", edh_store / "x.tif"], "--source"),
    ):
        result = sr("--model", nearest_model, *args, *RANGE, "--quiet")
        assert result.exit_code == 2
        line = one_error_line(result.output)
        assert needle in line and "which this run reads" in line
        assert snapshot(tmp_path) == before


def _zarr_run(base, out, *extra):
    return sr(*base, *RANGE, "--out", out, *extra)


def test_resume_refuses_other_settings(tmp_path, edh_store, base):
    out = tmp_path / "sr.zarr"
    assert _zarr_run(base, out).exit_code == 0
    import onnx

    other_model = resize_model(tmp_path / "other.onnx")  # the same network, another file
    proto = onnx.load(other_model)
    proto.doc_string = "retrained"
    onnx.save(proto, other_model)
    lat, lon = (xr.open_zarr(edh_store)[name].values for name in ("latitude", "longitude"))

    def box(first: int) -> str:  # 11 longitude cells from ``first``, every latitude
        return f"{lon[first] - 0.01},{lat[0] - 0.01},{lon[first + 10] + 0.01},{lat[-1] + 0.01}"

    boxed = tmp_path / "box.zarr"
    assert _zarr_run([*base, "--bbox", box(0)], boxed).exit_code == 0
    before = snapshot(tmp_path)
    cases = [
        (out, [*base, "--units", "degC"], "--units 'K', this run has 'degC'"),
        (out, ["--model", other_model, "--source", edh_store, "--quiet"],
         "--model (sha256 of the model file that ran)"),
        (boxed, [*base, "--bbox", box(1)], "region (--bbox / --global)"),
    ]
    for store, args, needle in cases:
        result = _zarr_run(args, store, "--resume")
        assert result.exit_code == 2, result.output
        line = one_error_line(result.output)
        assert needle in line and "--overwrite" in line, line
        assert snapshot(tmp_path) == before
    assert xr.open_zarr(out).t2m.attrs["units"] == "K"

    template = tmp_path / "c_{time:%H}.tif"
    assert sr(*base, *RANGE, "--out", template).exit_code == 0
    (tmp_path / "c_03.tif").unlink()
    before = snapshot(tmp_path)
    result = sr("--model", other_model, "--source", edh_store, "--quiet", *RANGE, "--out",
                template, "--resume")
    assert result.exit_code == 2
    line = one_error_line(result.output)
    assert "--model (sha256 of the model file that ran)" in line
    assert hashlib.sha256(Path(tmp_path / "nearest.onnx").read_bytes()).hexdigest()[:12] in line
    assert hashlib.sha256(other_model.read_bytes()).hexdigest()[:12] in line
    assert snapshot(tmp_path) == before


def test_resume_refuses_outputs_without_a_record(tmp_path, base):
    import zarr

    out = tmp_path / "sr.zarr"
    assert _zarr_run(base, out).exit_code == 0
    root = zarr.open_group(str(out), mode="r+")
    root.attrs.pop("model_sha256")  # as an older sr-edge wrote it
    root["step_complete"][2:] = 0
    result = _zarr_run(base, out, "--resume")
    assert result.exit_code == 2
    assert "nothing recorded" in one_error_line(result.output)


def test_tags_hash_the_file_that_ran(tmp_path, edh_store):
    from onnx import TensorProto, helper

    checkpoint_sha = "ab" * 32
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1.0, 1.0, 8.0, 8.0])
    node = helper.make_node("Resize", [LR_INPUT, "", "scales"], [HR_OUTPUT], mode="nearest",
                            coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    graph = helper.make_graph(
        [node], "nearest",
        [helper.make_tensor_value_info(LR_INPUT, TensorProto.FLOAT, ["b", 1, "h", "w"])],
        [helper.make_tensor_value_info(HR_OUTPUT, TensorProto.FLOAT, ["b", 1, "H", "W"])],
        initializer=[scales])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    proto.ir_version = 9
    model = save_described_model(proto, ModelDescription(
        scale=8, variables=(VariableSpec("t2m", "K", 0.0, 1.0, 0.0, 1.0),),
        checkpoint_sha256=checkpoint_sha), tmp_path / "model.onnx")
    file_sha = hashlib.sha256(model.read_bytes()).hexdigest()
    cog, store = tmp_path / "sr.tif", tmp_path / "sr.zarr"
    assert sr("--model", model, "--source", edh_store, "--time", T, "--out", cog, "--units",
              "degC", "--quiet").exit_code == 0
    with rasterio.open(cog) as src:
        tags = src.tags()
    assert tags["model_sha256"] == file_sha and tags["checkpoint_sha256"] == checkpoint_sha
    assert tags["units"] == "degC" and tags["precision"] == "fp32"
    assert tags["source"] == str(edh_store)
    west, south, east, north = map(float, tags["region"].split(","))
    with rasterio.open(cog) as src:
        assert np.allclose([west, south, east, north], list(src.bounds), atol=1e-4)
    assert sr("--model", model, "--source", edh_store, *RANGE, "--out", store,
              "--quiet").exit_code == 0
    attrs = xr.open_zarr(store).attrs
    assert attrs["model_sha256"] == file_sha and attrs["checkpoint_sha256"] == checkpoint_sha


@pytest.mark.parametrize(("option", "name", "needle"), [
    ("--out", "sr.png", "suffix '.png'; --out takes .tif/.tiff for a Cloud-Optimized GeoTIFF; "
                        ".zarr for a Zarr store; .nc for NetCDF"),
    ("--out", "sr.txt", "suffix '.txt'"),
    ("--out", "sr", "no suffix"),
    ("--out", "sr_{time:%H}.zarr", "takes no {time} field"),
    ("--lr-out", "lr.nc", "--lr-out takes .tif/.tiff"),
    ("--preview", "look.tif", "must end in .png"),
])
def test_output_suffix_decides_the_format(tmp_path, base, option, name, needle):
    extra = [] if option == "--out" else ["--out", tmp_path / "sr.tif"]
    before = snapshot(tmp_path)
    result = sr(*base, "--time", T, *extra, option, tmp_path / name)
    assert result.exit_code == 2
    assert needle in one_error_line(result.output)
    assert snapshot(tmp_path) == before


def test_netcdf_output_is_cf_described(tmp_path, edh_store, base):
    out, cog = tmp_path / "sr.nc", tmp_path / "sr.tif"
    assert sr(*base, "--time", T, "--out", out).exit_code == 0
    assert sr(*base, "--time", T, "--out", cog).exit_code == 0
    assert out.read_bytes()[:3] == b"CDF", "a NetCDF file, not a GeoTIFF"
    with xr.open_dataset(out, engine="scipy") as ds:
        t2m = ds.t2m
        assert t2m.dims == ("time", "latitude", "longitude")
        assert t2m.attrs["standard_name"] == "air_temperature"
        assert t2m.attrs["units"] == "K" and t2m.attrs["long_name"] == "2 metre temperature"
        assert t2m.attrs["grid_mapping"] == "crs"
        assert ds.crs.attrs["grid_mapping_name"] == "latitude_longitude"
        assert ds.latitude.attrs["units"] == "degrees_north"
        assert ds.longitude.attrs["standard_name"] == "longitude"
        assert ds.attrs["Conventions"].startswith("CF-")
        assert ds.time.values[0] == np.datetime64(T, "ns")
        with rasterio.open(cog) as src:
            np.testing.assert_array_equal(t2m.values[0], src.read(1)[::-1])
            assert np.isclose(float(ds.latitude[0]), src.bounds.bottom
                              + src.res[1] / 2, atol=1e-6)
    templated = tmp_path / "n_{time:%H}.nc"
    assert sr(*base, *RANGE, "--out", templated).exit_code == 0
    assert sorted(p.name for p in tmp_path.glob("n_*.nc")) == [f"n_0{h}.nc" for h in range(1, 6)]


def test_report_without_truth_writes_nothing(tmp_path):
    from sr_runtime.defaults import sample_hr_store

    if not sample_hr_store().exists():
        pytest.skip("sample not built")
    model = resize_model(tmp_path / "nearest.onnx")
    before = snapshot(tmp_path)
    result = sr("--time", "2024-10-11T13:00", "--out", tmp_path / "sr.tif", "--model", model,
                "--report", "--quiet")  # the sample has HR truth at 12:00, not 13:00
    assert result.exit_code == 2
    assert "--report needs HR truth at 2024-10-11T13:00" in one_error_line(result.output)
    assert snapshot(tmp_path) == before, "no COG is written before the report fails"


def test_unwritable_lr_out_fails_before_the_sr_cog(tmp_path, base):
    (tmp_path / "blocked").write_text("a file where a folder should be")
    before = snapshot(tmp_path)
    result = sr(*base, *RANGE, "--out", tmp_path / "sr_{time:%H}.tif", "--lr-out",
                tmp_path / "blocked" / "lr_{time:%H}.tif")
    assert result.exit_code == 2
    assert "is a file, not a folder" in one_error_line(result.output)
    assert snapshot(tmp_path) == before


def _loopback(address: str) -> bool:
    return address in ("127.0.0.1", "::1") or address.startswith("127.")


def test_dask_workers_listen_on_loopback_only(tmp_path):
    psutil = pytest.importorskip("psutil")  # a dependency of distributed
    pytest.importorskip("distributed")
    store = write_edh_store(tmp_path / "big.zarr", lat_slice=slice(200, 232),
                            lon_slice=slice(400, 464), hours=100)
    model = resize_model(tmp_path / "nearest.onnx")
    # stderr goes to a file: a pipe nobody reads while we poll could fill and stall the run
    with open(tmp_path / "stderr.txt", "w+") as errors:
        proc = cli_process("--model", model, "--source", store, "--start", "2024-10-11T00:00",
                           "--end", "2024-10-15T03:00", "--out", tmp_path / "sr.zarr",
                           "--workers", "2", "--quiet", stdout=subprocess.DEVNULL,
                           stderr=errors)
        seen = _listening_sockets(proc, psutil, deadline=time.monotonic() + 180)
        errors.seek(0)
        stderr = errors.read()
    assert proc.returncode == 0, stderr
    assert seen, "the cluster's sockets were never seen: the run ended too early"
    assert all(_loopback(ip) for ip, _ in seen), seen
    assert 8787 not in {port for _, port in seen}, "no dashboard"


def _listening_sockets(proc: subprocess.Popen, psutil, deadline: float) -> set[tuple[str, int]]:
    """The sockets the run and its children listen on, until it ends (killed past deadline)."""
    seen: set[tuple[str, int]] = set()
    try:
        while proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError("sr-run --workers 2 did not finish within 180 s")
            try:
                tree = psutil.Process(proc.pid)
                for each in [tree, *tree.children(recursive=True)]:
                    for conn in each.net_connections(kind="inet"):
                        if conn.status == psutil.CONN_LISTEN:
                            seen.add((conn.laddr.ip, conn.laddr.port))
            except psutil.NoSuchProcess:
                break
            time.sleep(0.02)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return seen


def test_quiet_is_quiet_with_the_default_model(tmp_path):
    from sr_runtime.defaults import DEFAULT_MODEL, sample_lr_store

    if not (DEFAULT_MODEL.is_file() and sample_lr_store().exists()):
        pytest.skip("no default model or sample in this installation")
    result = sr("--time", "2024-10-11T12:00", "--out", tmp_path / "sr.tif", "--quiet")
    assert result.exit_code == 0, result.output
    assert result.output == ""


def test_report_pairs_the_hub_truth_over_a_large_box(tmp_path):
    """Over 48 x 40 LR cells the Hub's non-nested HR grid skips rows: the report still scores
    every SR cell against its nearest HR cell (a nearest-neighbour model of the analytic field
    scores what nearest upsampling of it scores)."""
    from sr_runtime.grid import hr_axis
    from tests.conftest import write_edh_high_store

    slices = (slice(330, 378), slice(520, 560))
    lr = write_edh_store(tmp_path / "lr.zarr", lat_slice=slices[0], lon_slice=slices[1])
    hr = write_edh_high_store(tmp_path / "hr.zarr", lr_slices=slices, variables=("t2m",),
                              statics=())
    result = sr("--model", str(resize_model(tmp_path / "nearest.onnx")), "--source", str(lr),
                "--time", T, "--out", str(tmp_path / "sr.tif"), "--truth", str(hr), "--report")
    assert result.exit_code == 0, result.output
    line = result.output.replace("\n", " ")
    assert f"skill at {T} vs HR truth: RMSE" in line
    reported = float(line.split("vs HR truth: RMSE ")[1].split(" K")[0])
    # the same score from the stores: each SR cell against its nearest HR cell
    lr_ds, hr_ds = xr.open_zarr(lr), xr.open_zarr(hr)
    lat, lon = lr_ds.latitude.values, lr_ds.longitude.values
    sr_lat, sr_lon = hr_axis(lat, 8, lat[1] - lat[0]), hr_axis(lon, 8, lon[1] - lon[0])
    rows = np.abs(hr_ds.latitude.values[None] - sr_lat[:, None]).argmin(axis=1)
    cols = np.abs(hr_ds.longitude.values[None] - sr_lon[:, None]).argmin(axis=1)
    truth = hr_ds.t2m.sel(time=T).values[np.ix_(rows, cols)]
    upsampled = np.kron(lr_ds.t2m.sel(time=T).values, np.ones((8, 8)))
    assert reported == pytest.approx(float(np.sqrt(np.mean((upsampled - truth) ** 2))), abs=1e-3)
