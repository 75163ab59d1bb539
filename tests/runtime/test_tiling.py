"""Halo tiling: tiled inference equals whole-field inference; tiles cover the field once."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from sr_runtime.cli import app
from sr_runtime.description import ModelDescription, VariableSpec
from sr_runtime.errors import UsageError
from sr_runtime.tiling import infer_tiled, plan_tiles, tile_for_budget
from tests.conftest import write_edh_store

runner = CliRunner()


def export_tiny_srresnet(folder, seed: int = 0):
    """A tiny real SRResNet (x8, 8 channels, 1 block) exported with sr_export."""
    pytest.importorskip("torch")
    import torch

    from sr_export.checkpoints import LoadedCheckpoint
    from sr_export.model import SRResNet, SRResNetConfig
    from sr_export.onnx_export import export_onnx

    torch.manual_seed(seed)
    config = SRResNetConfig(n_channels=8, n_blocks=1)
    net = SRResNet(config).eval()
    description = ModelDescription(
        scale=8, variables=(VariableSpec("t2m", "K", 283.0, 5.0, 283.0, 5.0),),
        arch_params=config.to_dict(), halo_lr=config.halo_lr())
    out = folder / "tiny.onnx"
    export_onnx(LoadedCheckpoint(net, description, "sr-edge"), out)
    return out


@pytest.fixture(scope="module")
def tiny_engine(tmp_path_factory):
    from sr_runtime.engines.onnxruntime import OnnxRuntimeEngine

    return OnnxRuntimeEngine(export_tiny_srresnet(tmp_path_factory.mktemp("tiny")), threads=1)


def smooth_field(height: int, width: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(np.linspace(0, 3, height), np.linspace(0, 4, width), indexing="ij")
    return (283 + 6 * np.sin(y) * np.cos(x) + rng.normal(0, 0.5, (height, width))).astype(
        np.float32)[None]


def test_tiled_equals_whole_field(tiny_engine):
    lr = smooth_field(37, 53)
    halo = tiny_engine.description.halo_lr
    assert halo >= 10
    tiles = plan_tiles(37, 53, 16, halo)
    assert len(tiles) >= 4
    whole = tiny_engine.infer(lr[None])[0]
    tiled = infer_tiled(tiny_engine, lr, tile=16)
    assert tiled.shape == whole.shape == (1, 37 * 8, 53 * 8)
    assert float(np.abs(tiled - whole).max()) <= 1e-4


def test_without_halo_tiles_show_seams(tiny_engine):
    """The comparison above is sensitive: no halo gives visible seams."""
    lr = smooth_field(37, 53)
    whole = tiny_engine.infer(lr[None])[0]
    seamy = infer_tiled(tiny_engine, lr, tile=16, halo=0)
    assert float(np.abs(seamy - whole).max()) > 1e-2


@pytest.mark.parametrize(("height", "width", "tile", "halo"),
                         [(37, 53, 16, 10), (5, 7, 16, 3), (64, 64, 16, 0), (100, 3, 7, 2)])
def test_tiles_cover_field_exactly_once(height, width, tile, halo):
    seen = np.zeros((height, width), dtype=int)
    for piece in plan_tiles(height, width, tile, halo):
        rows, cols = piece.core
        seen[rows, cols] += 1
        wrows, wcols = piece.window
        assert wrows.start == max(0, rows.start - halo) and wrows.stop == min(height,
                                                                              rows.stop + halo)
        assert wcols.start == max(0, cols.start - halo) and wcols.stop == min(width,
                                                                              cols.stop + halo)
        assert rows.stop - rows.start <= tile and cols.stop - cols.start <= tile
    assert (seen == 1).all()


def test_tile_size_follows_memory_budget():
    description = ModelDescription(
        scale=8, variables=(VariableSpec("t2m", "K", 0, 1, 0, 1),),
        arch_params={"n_channels": 64}, halo_lr=14)
    small, large = tile_for_budget(description, 256), tile_for_budget(description, 1024)
    assert 16 <= small < large
    with pytest.raises(UsageError, match="too small for this model"):
        tile_for_budget(description, 1)


def test_tiled_run_equals_whole_field_run(tmp_path, tiny_engine):
    """End to end through `sr-run`: --max-memory small enough for 9 tiles per step."""
    model = tiny_engine.path
    store = write_edh_store(tmp_path / "lr.zarr", lat_slice=slice(340, 380),
                            lon_slice=slice(500, 556), hours=2)
    outs = {}
    for name, extra in (("whole", []), ("tiled", ["--max-memory", "10"])):
        outs[name] = tmp_path / f"{name}.zarr"
        result = runner.invoke(app, ["--model", str(model), "--source", str(store), "--start",
                                     "2024-10-11T00:00", "--end", "2024-10-11T01:00", "--out",
                                     str(outs[name]), *extra])
        assert result.exit_code == 0, result.output
    whole = xr.open_zarr(outs["whole"]).t2m.values
    tiled = xr.open_zarr(outs["tiled"]).t2m.values
    assert whole.shape == (2, 320, 448)
    assert float(np.abs(whole - tiled).max()) <= 1e-4


class _ProfiledEngine:
    """An engine with a TensorRT-like shape limit (what cap_tile_for_engine reads)."""

    name = "profiled"

    def __init__(self, description, max_window_lr):
        self.description, self.max_window_lr = description, max_window_lr


def test_tiles_are_capped_to_an_engine_profile():
    from sr_runtime.description import ModelDescription, VariableSpec
    from sr_runtime.errors import UsageError
    from sr_runtime.tiling import cap_tile_for_engine

    description = ModelDescription(scale=8, variables=(VariableSpec("t2m", "K", 0, 1, 0, 1),),
                                   halo_lr=40)
    assert cap_tile_for_engine(500, _ProfiledEngine(description, 256)) == 256 - 80
    assert cap_tile_for_engine(100, _ProfiledEngine(description, 256)) == 100
    with pytest.raises(UsageError, match="rebuild it with a larger profile"):
        cap_tile_for_engine(500, _ProfiledEngine(description, 64))
