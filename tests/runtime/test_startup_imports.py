"""`sr-run` imports only what the run needs: no HTTP stack for a local store, no plotting unless
a preview is asked for, no Dask unless --workers/--scheduler (Dask is the `distributed` extra:
xarray imports an installed Dask on every run)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

#: Packages a plain local run must not import, and what would pull them in.
NOT_NEEDED = {"aiohttp": "the HTTP source", "matplotlib": "previews", "dask": "Dask",
              "distributed": "Dask", "scipy": "NetCDF output", "torch": "the export side",
              "gradio": "the app", "fastapi": "the service",
              "rio_cogeo": "RGBA COGs (GDAL's COG driver writes the data COG)",
              "morecantile": "rio-cogeo", "pyproj": "rio-cogeo",
              "pydantic": "Typer 0.29 and newer (pyproject.toml holds it below)"}


def run_without_dask(args: list[str]) -> subprocess.CompletedProcess:
    """``sr-run ARGS`` in a fresh interpreter where Dask is not installed (a ``None`` entry in
    ``sys.modules`` is what Python and xarray's ``find_spec`` see for a missing package); it
    prints the imported top-level packages as JSON last."""
    code = textwrap.dedent(f"""
        import json, sys
        sys.modules["dask"] = None
        sys.modules["distributed"] = None
        sys.argv = ["sr-run", *{args!r}]
        from sr_runtime.cli import main
        try:
            main()
        except SystemExit as exc:
            code = exc.code
        else:
            code = 0
        loaded = sorted({{name.split(".")[0] for name, module in sys.modules.items()
                          if module is not None}})
        print(json.dumps({{"code": code, "modules": loaded}}))
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=False)


def test_a_local_run_imports_no_http_plotting_or_dask(tmp_path):
    done = run_without_dask(["--time", "2024-10-11T12:00", "--out", str(tmp_path / "sr.tif")])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 0, done.stderr
    assert (tmp_path / "sr.tif").is_file()
    loaded = set(result["modules"])
    assert {"onnxruntime", "rasterio", "zarr"} <= loaded  # the run did run
    assert not {name: why for name, why in NOT_NEEDED.items() if name in loaded}


def test_workers_without_dask_say_which_extra_to_install(tmp_path):
    done = run_without_dask(["--start", "2024-10-11T00:00", "--end", "2024-10-11T02:00",
                             "--out", str(tmp_path / "sr.zarr"), "--workers", "2"])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 2
    assert "pip install 'sr-edge[distributed]'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "sr.zarr").exists()
