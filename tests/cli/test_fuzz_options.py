"""Fuzz-style: odd options and combinations of them through `sr-run` in-process.

For every case: no traceback; either exit 0 with every written value finite and a plausible
2 m temperature (150..350 K), or exit 1/2 with exactly one ``error:`` line. The cases are a
curated list of odd values per option (numbers as NaN/inf/huge/negative, empty strings, odd
paths and suffixes, bad templates, bad --every, reversed ranges, conflicting flags) plus seeded
random pairs of them.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from typer.testing import CliRunner

from sr_runtime.cli import app
from tests.conftest import resize_model, write_edh_store

runner = CliRunner()
T = ["--time", "2024-10-11T02:00"]
RANGE = ["--start", "2024-10-11T01:00", "--end", "2024-10-11T03:00"]
PLAUSIBLE_K = (150.0, 350.0)

# "@" is the case's output folder, "%" the folder of the inputs
ODD: dict[str, list[list[str]]] = {
    "max-memory": [["--max-memory", v] for v in
                   ("nan", "inf", "-inf", "1e400", "1e308", "0", "-1", "1e-300", "0.5", "",
                    "ten", "64")],
    "workers": [["--workers", v] for v in ("0", "-3", "99999999", "", "1.5")],
    "every": [[*RANGE, "--out", "@/s_{time:%H}.tif", "--every", v] for v in
              ("0h", "-1h", "nan", "NaT", "1e400h", "", "1ns", "xyz", "100000000D", "2h")],
    "time": [["--time", v] for v in
             ("", "nan", "inf", "9999-99-99", "2024-10-11T02:00+05:00", "-1", "2024",
              "99999999999999999999", "2024-10-11T02:30", "24:00")],
    "range": [["--start", a, "--end", b, "--out", "@/r_{time:%H}.tif"] for a, b in
              (("2024-10-11T05:00", "2024-10-11T01:00"), ("2024-10-11T01:00",
               "2024-10-11T01:00"), ("2024-10-11T01:00", "2024-12-01T00:00"), ("", ""),
               ("nan", "nan"))],
    "bbox": [["--bbox", v] for v in
             ("", "nan,nan,nan,nan", "inf,-inf,inf,-inf", "1,2,3", "1,2,3,4,5", "190,0,200,10",
              "5,37,5.1,37.1", "-180,-90,180,90", "4,36,13,42", "13,36,4,42", "a,b,c,d")],
    "units": [["--units", v] for v in ("", "k", "degF", "degC")],
    "backend": [["--backend", v] for v in ("", "torch", "AUTO", "onnxruntime")],
    "out": [["--out", v] for v in
            ("", " ", ".", "/", "@", "@/sr", "@/sr.TIF", "@/sr.tiff", "@/sr.nc", "@/sr.zarr/",
             "@/sr.png", "@/sr.txt", "@/missing/sr.tif", "@/" + "a" * 300 + ".tif",
             "@/sr_{time}.tif", "@/sr_{tim}.tif", "@/sr_{0}.tif", "@/sr_{time.year}.tif",
             "@/sr_{time:%Y}{.tif", "@/sr_}.tif", "@/{variable}.tif", "@/sr_{time!r}.tif",
             "@/sr_{time:%Y/%m}.tif", "@/sr_{time:%H}.zarr", "@/sr_{time:{variable}}.tif",
             "%/lr.zarr", "%/nearest.onnx")],
    "lr-out": [["--lr-out", v] for v in ("@/lr.png", "@/lr.nc", "@/sr.tif", "@/lr.tif", "")],
    "preview": [["--preview", v] for v in ("@/p.png", "@/p.jpg", "@/sr.tif", "")],
    "source": [["--source", v] for v in ("", " ", "sample:", "edh:bad", "%/nope.zarr",
                                         "%/nearest.onnx", "%/afile")],
    "model": [["--model", v] for v in ("%/nope.onnx", "%/empty.onnx", "%/garbage.onnx",
                                       "%/adir", "%/lr.zarr", "")],
    "flags": [["--overwrite", "--resume"], ["--global", "--bbox", "4,36,13,42"], ["--global"],
              ["--time", "2024-10-11T02:00", "--start", "2024-10-11T01:00"],
              ["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"],
              ["--scheduler", "not-an-address"], ["--report"], ["--report", "--out", "@/x.zarr"],
              ["--lr-out", "@/lr.tif", "--out", "@/x.zarr"], ["--nearest"],
              ["--config", "%/nope.json"], ["--truth", "%/nope.zarr", "--report"],
              ["--preview", "@/p.png", *RANGE, "--out", "@/s_{time:%H}.tif"],
              ["--resume"], ["--overwrite"], ["--json"]],
}
SINGLES = [case for cases in ODD.values() for case in cases]


def _pairs(count: int, seed: int = 12) -> list[list[str]]:
    rng = random.Random(seed)
    groups = sorted(ODD)
    pairs = []
    for _ in range(count):
        first, second = rng.sample(groups, 2)
        pairs.append([*rng.choice(ODD[first]), *rng.choice(ODD[second])])
    return pairs


CASES = SINGLES + _pairs(40)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz-inputs")
    write_edh_store(folder / "lr.zarr")
    resize_model(folder / "nearest.onnx")
    (folder / "empty.onnx").write_bytes(b"")
    (folder / "garbage.onnx").write_bytes(b"\x08\x01not a model" * 8)
    (folder / "adir").mkdir()
    (folder / "afile").write_text("not a store")
    return folder


def _arguments(case: list[str], inputs: Path, out: Path) -> list[str]:
    args = [a.replace("@", str(out)).replace("%", str(inputs)) for a in case]
    given = set(args)
    if "--model" not in given:
        args = ["--model", str(inputs / "nearest.onnx"), *args]
    if "--source" not in given:
        args = ["--source", str(inputs / "lr.zarr"), *args]
    if not given & {"--time", "--start", "--end"}:
        args = [*T, *args]
    if "--out" not in given:
        args = [*args, "--out", str(out / "sr.tif")]
    return [*args, "--quiet"]


def _written_values(out: Path) -> list[tuple[Path, np.ndarray, str]]:
    """Every data output under ``out`` with its values and units."""
    found = []
    for path in sorted(out.rglob("*")):
        suffix = path.suffix.lower()
        if suffix in (".tif", ".tiff") and path.is_file():
            with rasterio.open(path) as cog:
                found.append((path, cog.read(1), cog.tags().get("units", "")))
        elif suffix == ".nc":
            with xr.open_dataset(path, engine="scipy") as ds:
                found.append((path, ds.t2m.values, ds.t2m.attrs.get("units", "")))
        elif suffix == ".zarr" and path.is_dir():
            ds = xr.open_zarr(path)
            found.append((path, ds.t2m.values, ds.t2m.attrs.get("units", "")))
    return found


def test_cases_cover_every_kind_of_oddity():
    assert len(CASES) > 150 and len(ODD) >= 14


@pytest.mark.parametrize("case", CASES, ids=[" ".join(c)[:60] for c in CASES])
def test_odd_options(tmp_path, inputs, case):
    out = tmp_path / "out"
    out.mkdir()
    result = runner.invoke(app, _arguments(case, inputs, out))
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        repr(result.exception))
    if result.exit_code == 0:
        written = _written_values(out)
        assert written, f"exit 0 without an output: {result.output}"
        for path, values, units in written:
            kelvin = values + 273.15 if units == "degC" else values
            assert units in ("K", "degC"), (path, units)
            assert np.all(np.isfinite(values)), path
            assert PLAUSIBLE_K[0] <= kelvin.min() and kelvin.max() <= PLAUSIBLE_K[1], path
        return
    assert result.exit_code in (1, 2), (result.exit_code, result.output)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    if result.exit_code == 2:  # a refused command line leaves nothing behind
        assert not [p for p in out.rglob("*") if p.suffix != ".lock"], list(out.rglob("*"))
