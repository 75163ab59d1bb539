"""Output kinds, name templates and per-step files (sr_runtime.sinks), apart from the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate

from sr_runtime.errors import OutputError, UsageError
from sr_runtime.fields import GeoField
from sr_runtime.sinks.base import Sink
from sr_runtime.sinks.files import FileSteps
from sr_runtime.sinks.kinds import COG, NETCDF, ZARR, output_kind
from sr_runtime.sinks.templates import check_template, render_all

TIMES = np.array(["2024-10-11T00", "2024-10-11T01"], dtype="datetime64[ns]")


def field(value: float = 280.0) -> GeoField:
    lat = 45 + 0.1 * np.arange(16)
    lon = 8 + 0.1 * np.arange(24)
    data = (value + np.add.outer(lat - 45, lon - 8)).astype(np.float32)
    return GeoField(data, lat, lon, TIMES[0], "t2m", "K", {"source": "test"})


def test_the_suffix_picks_the_kind():
    assert output_kind("a.tif") == COG and output_kind("a.TIFF") == COG
    assert output_kind("a.nc") == NETCDF and output_kind("a.zarr") == ZARR
    with pytest.raises(UsageError, match=".tif"):
        output_kind("a.png")


def test_templates_render_one_name_per_step_and_refuse_unknown_fields():
    names = render_all("sr_{time:%Y%m%dT%H}_{variable}.tif", TIMES, "t2m")
    assert [p.name for p in names] == ["sr_20241011T00_t2m.tif", "sr_20241011T01_t2m.tif"]
    with pytest.raises(UsageError):
        check_template("sr_{hour}.tif")


def test_file_steps_follow_the_sink_contract(tmp_path):
    settings = {"model_sha256": "abc", "units": "K"}
    sink = FileSteps(render_all(tmp_path / "sr_{time:%H}.tif", TIMES), COG, settings)
    assert isinstance(sink, Sink)
    sink.check(overwrite=False, resume=False)
    assert sink.done_steps(overwrite=False, resume=False) == set()
    sink.create()
    step = field()
    step.tags.update(settings)  # the step worker tags every field with the run's settings
    written = sink.write_step(0, step)
    assert cog_validate(written)[0]
    with rasterio.open(written) as src:
        assert src.tags()["model_sha256"] == "abc"
        np.testing.assert_allclose(src.read(1)[::-1], field().data)
    assert sink.done_steps(overwrite=False, resume=True) == {0}
    other = FileSteps(sink.paths, COG, {"model_sha256": "xyz", "units": "K"})
    with pytest.raises(OutputError, match="--model .*'abc', this run has 'xyz'"):
        other.done_steps(overwrite=False, resume=True)
    with pytest.raises(OutputError):
        sink.check(overwrite=False, resume=False)  # exists, neither --overwrite nor --resume
