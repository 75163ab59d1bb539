"""Training streamed from real Zarr stores: on disk, and served over HTTP on 127.0.0.1 with
Basic auth and injected faults (5xx, dropped connections), through the runtime's sources."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from torch.utils.data import DataLoader
from typer.testing import CliRunner

from sr_export.cli import app
from sr_export.model import SRResNetConfig
from sr_export.stream_data import (
    BlockCrops,
    HeldOutCrops,
    StreamSettings,
    open_pair,
    stream_statistics,
)
from sr_export.training import train
from sr_runtime.errors import SrEdgeError
from sr_runtime.sources import http
from sr_runtime.sources.registry import resolve_source
from sr_runtime.statics import companion_source
from sr_runtime.times import parse_time
from tests.conftest import write_edh_high_store, write_edh_store
from tests.runtime.sources.conftest import API_KEY, FAST_RETRY, EdhServer

SLICES = (slice(384, 398), slice(526, 546))
LR_NAME = "IFS-NEMO-SSP3-7.0-sfc-hourly-standard-v0.zarr"
HR_NAME = "IFS-NEMO-SSP3-7.0-sfc-hourly-high-maps-v0.zarr"
HOURS = 72
runner = CliRunner()


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Path:
    """``climate-dt-2/`` with a standard store (t2m, d2m; 72 hours) and its high-maps store."""
    root = tmp_path_factory.mktemp("hub")
    folder = root / "climate-dt-2"
    folder.mkdir()
    rng = np.random.default_rng(3)
    lr = write_edh_store(folder / LR_NAME, lat_slice=SLICES[0], lon_slice=SLICES[1],
                         hours=HOURS, variables=("t2m", "d2m"))
    analytic = xr.open_zarr(lr).t2m.values  # with noise, so that no two crops are alike
    noisy = analytic + rng.normal(0, 0.5, analytic.shape).astype(np.float32)
    write_edh_store(folder / LR_NAME, lat_slice=SLICES[0], lon_slice=SLICES[1],
                    hours=HOURS, variables=("t2m", "d2m"), values=noisy)
    write_edh_high_store(folder / HR_NAME, lr_slices=SLICES, hours=HOURS)
    return root


@pytest.fixture
def server(hub, monkeypatch, tmp_path):
    monkeypatch.setattr(http, "DEFAULT_RETRY", FAST_RETRY)
    monkeypatch.setenv("EDH_API_KEY", API_KEY)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.delenv("SR_EDGE_EDH_URL", raising=False)
    with EdhServer(hub) as running:
        yield running


def local_pair(hub: Path, **options):
    lr = resolve_source(str(hub / "climate-dt-2" / LR_NAME))
    return open_pair(lr, companion_source(str(hub / "climate-dt-2" / LR_NAME)), ("t2m",),
                     bbox=None, start=None, end=None, **options)


def http_pair(server: EdhServer, **options):
    lr = resolve_source("edh", edh_url=server.base_url)
    return open_pair(lr, companion_source("edh", server.base_url), ("t2m",), bbox=None,
                     start=None, end=None, **options)


def batches(dataset, n: int, workers: int = 2) -> list[list[torch.Tensor]]:
    loader = DataLoader(dataset, batch_size=4, num_workers=workers)
    out = []
    for batch in loader:
        out.append(batch)
        if len(out) == n:
            break
    return out


def test_http_with_faults_and_local_stream_the_same_samples(hub, server):
    local, remote = local_pair(hub), http_pair(server)
    stats = stream_statistics(local)
    server.faults.errors, server.faults.drop = 3, 2  # retried by the runtime's HTTP layer
    options = dict(crop=4, halo=1, crops_per_block=8, seed=7)
    from_disk = batches(BlockCrops(local, stats, **options), 12)
    over_http = batches(BlockCrops(remote, stats, **options), 12)
    assert len(from_disk) == len(over_http) == 12
    for a, b in zip(from_disk, over_http, strict=True):
        for x, y in zip(a, b, strict=True):
            torch.testing.assert_close(x, y, rtol=0, atol=0)
    statuses = [status for _, status in server.served]
    assert 503 in statuses and -1 in statuses, "the faults were never met"
    assert all(h == server.auth_headers[-1] for h in server.auth_headers if h), "one key"
    # another seed, other samples
    other = batches(BlockCrops(local, stats, **{**options, "seed": 8}), 1)
    assert not torch.equal(other[0][0], from_disk[0][0])


def test_a_crop_is_its_lr_window_with_halo_and_the_truth_under_its_centre(hub):
    pair = local_pair(hub)
    stats = stream_statistics(pair)
    crop, halo, s = 3, 2, 8
    lr_item, hr_item = next(iter(BlockCrops(pair, stats, crop=crop, halo=halo,
                                            crops_per_block=1, seed=1)))
    assert lr_item.shape == (1, crop + 2 * halo, crop + 2 * halo)
    assert hr_item.shape == (1, crop * s, crop * s)
    spec = stats.variables[0]
    lr_k = lr_item[0].numpy() * spec.lr_std + spec.lr_mean
    hr_k = hr_item[0].numpy() * spec.hr_std + spec.hr_mean
    lr_all = xr.open_zarr(hub / "climate-dt-2" / LR_NAME).t2m.values
    hr_ds = xr.open_zarr(hub / "climate-dt-2" / HR_NAME)
    size = crop + 2 * halo
    # where in the LR store is this window? (the LR field is noisy: one place fits)
    errors = {(t, r, c): float(np.abs(lr_all[t, r:r + size, c:c + size] - lr_k).max())
              for t in pair.lr_time for r in range(lr_all.shape[1] - size + 1)
              for c in range(lr_all.shape[2] - size + 1)}
    (t, r, c), error = min(errors.items(), key=lambda item: item[1])
    assert error < 1e-3
    hr_all = hr_ds.t2m.isel(latitude=pair.hr_rows, longitude=pair.hr_cols).values
    under = hr_all[t, (r + halo) * s:(r + halo + crop) * s, (c + halo) * s:(c + halo + crop) * s]
    np.testing.assert_allclose(hr_k, under, atol=1e-3)
    assert t in set(pair.lr_time.tolist()) and t not in set(pair.val_lr_time.tolist())


def test_streamed_statistics_match_the_whole_training_range(hub):
    pair = local_pair(hub)
    stats = stream_statistics(pair, block_hours=5)  # blocks that do not divide the range
    lr = xr.open_zarr(hub / "climate-dt-2" / LR_NAME).t2m.values[pair.lr_time]
    hr = xr.open_zarr(hub / "climate-dt-2" / HR_NAME).t2m.isel(
        latitude=pair.hr_rows, longitude=pair.hr_cols).values[pair.hr_time]
    spec = stats.variables[0]
    assert spec.lr_mean == pytest.approx(float(lr.mean(dtype=np.float64)), abs=1e-4)
    assert spec.lr_std == pytest.approx(float(lr.std(dtype=np.float64)), rel=1e-5)
    assert spec.hr_mean == pytest.approx(float(hr.mean(dtype=np.float64)), abs=1e-4)
    assert spec.hr_std == pytest.approx(float(hr.std(dtype=np.float64)), rel=1e-5)
    assert stats.data_range == pytest.approx(float(hr.max() - hr.min()), abs=1e-4)


def test_held_out_hours_are_never_trained_on(hub):
    pair = local_pair(hub, holdout=(parse_time("2024-10-12T00:00"),
                                    parse_time("2024-10-12T23:00")))
    assert pair.val_times.size == 24 and pair.times.size == HOURS - 24
    assert not set(pair.times.tolist()) & set(pair.val_times.tolist())
    stats = stream_statistics(pair)
    held = HeldOutCrops(pair, stats, crop=4, halo=1, crops_per_block=3, seed=0)
    first, again = batches(held, 10, workers=0), batches(held, 10, workers=0)
    assert sum(b[0].shape[0] for b in first) == 3  # one block of 24 hours, 3 crops
    torch.testing.assert_close(first[0][0], again[0][0], rtol=0, atol=0)


def test_the_chunk_cache_reads_less_and_changes_nothing(hub):
    results = {}
    for cache_mb in (0.0, 64.0):
        pair = local_pair(hub, cache_mb=cache_mb)
        stats = stream_statistics(pair, block_hours=6)
        dataset = BlockCrops(pair, stats, crop=4, halo=1, crops_per_block=2, seed=3,
                             block_hours=6, passes=1)
        items = [x[0] for x in dataset]
        results[cache_mb] = (items, dataset.bytes_read.value)
    (plain, read_plain), (cached, read_cached) = results[0.0], results[64.0]
    assert len(plain) == len(cached) > 0
    for a, b in zip(plain, cached, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # chunks of 24 (HR) and 72 (LR) hours: without a cache each 6-hour block reads them again
    assert read_cached < read_plain / 3


def test_training_from_http_and_from_disk_gives_the_same_weights(hub, server, tmp_path):
    config = SRResNetConfig(n_channels=4, n_blocks=1, upsample_skip="bicubic")
    weights = []
    for name, pair in (("disk", local_pair(hub)), ("http", http_pair(server))):
        if name == "http":
            server.faults.errors, server.faults.drop = 2, 1
        stream = StreamSettings(pair, workers=1, halo=1, crops_per_block=8)
        # a budget far away: the cosine schedule over CPU time stays at its start in both runs
        result = train(config, tmp_path / name, cpu_minutes=1e6, times=np.array([]),
                       batch_size=4, crop_lr=4, max_steps=6, val_every_steps=3, threads=1,
                       stream=stream)
        assert result.global_step == 6
        assert result.throughput["samples_per_s"] > 0 and result.throughput["read_MB"] > 0
        state = torch.load(result.checkpoint, map_location="cpu", weights_only=True)
        weights.append(state["state_dict"])
        assert "val_rmse_K" in result.metrics
    statuses = [status for _, status in server.served]
    assert statuses.count(503) == 2 and statuses.count(-1) == 1, "the faults were never met"
    # the same batches in the same order: bit for bit the same weights
    for key, value in weights[0].items():
        torch.testing.assert_close(value, weights[1][key], rtol=0, atol=0)


def test_train_and_evaluate_from_the_command_line(hub, tmp_path):
    lr_store = hub / "climate-dt-2" / LR_NAME
    result = runner.invoke(app, [
        "train", "--source", str(lr_store), "--out-dir", str(tmp_path / "run"),
        "--max-steps", "4", "--channels", "4", "--blocks", "1", "--crop", "4", "--halo", "1",
        "--batch-size", "4", "--val-every", "2", "--threads", "1", "--workers", "1",
        "--val-start", "2024-10-13T00:00", "--val-end", "2024-10-13T23:00",
        "--variables", "t2m,d2m", "--static", "orog,lsm", "--heldout-every", "6"])
    assert result.exit_code == 0, result.output
    assert "48 training and 24 held-out hours" in result.output
    assert "samples/s" in result.output and "MB read" in result.output
    assert "Held-out hours over the whole grid (14x20 LR cells): 4 steps" in result.output
    table = runner.invoke(app, [
        "evaluate", "--model", str(tmp_path / "run" / "model.ckpt"), "--backend", "torch",
        "--source", str(lr_store), "--start", "2024-10-13T00:00", "--end",
        "2024-10-13T23:00", "--every", "12", "--bbox", "8,43,12,47"])
    assert table.exit_code == 0, table.output
    assert "2 steps, 2024-10-13T00:00 .. 2024-10-13T12:00" in table.output
    assert "| sr-edge model (torch) |" in table.output and "`d2m`" in table.output


@pytest.mark.parametrize(("options", "expected"), [
    (["--start", "2030-01-01T00:00"], "has 0 hour(s) in --start/--end"),
    (["--bbox", "100,10,110,20"], "contains no grid cell"),
    (["--val-start", "2024-10-11T00:00"], "give --val-start and --val-end together"),
    (["--val-start", "2024-10-01T00:00", "--val-end", "2024-10-20T00:00"],
     "leaves 0 training and 72 held-out hours"),
    (["--variables", "u10"], "has no u10"),
    (["--crop", "30"], "--crop 30 with a halo of 2 needs 34x34 LR cells but the region has "
                       "14x20"),
    (["--workers", "-1"], "--workers must be 0 or more"),
])
def test_bad_streaming_options_are_one_clear_line(hub, tmp_path, options, expected):
    result = runner.invoke(app, ["train", "--source", str(hub / "climate-dt-2" / LR_NAME),
                                 "--out-dir", str(tmp_path / "run"), "--max-steps", "1",
                                 "--channels", "4", "--blocks", "1", *options])
    assert result.exit_code != 0
    assert expected in result.output, result.output
    assert "Traceback" not in result.output
    assert "normalization from" not in result.output  # refused before any data is streamed
    assert not (tmp_path / "run" / "model.ckpt").exists()


def test_hours_without_truth_are_left_out_and_said(hub, tmp_path):
    short = write_edh_high_store(tmp_path / "short.zarr", lr_slices=SLICES, hours=24)
    lr = resolve_source(str(hub / "climate-dt-2" / LR_NAME))
    pair = open_pair(lr, resolve_source(str(short)), ("t2m",), bbox=None, start=None, end=None)
    assert pair.times.size + pair.val_times.size == 24
    assert pair.description["without_truth"] == "48"
    result = runner.invoke(app, ["train", "--source", str(hub / "climate-dt-2" / LR_NAME),
                                 "--truth", str(short), "--out-dir", str(tmp_path / "run"),
                                 "--max-steps", "1", "--channels", "4", "--blocks", "1",
                                 "--crop", "4", "--no-evaluate", "--workers", "0"])
    assert result.exit_code == 0, result.output
    assert "note: 48 hours of --source in --start/--end have no HR truth" in result.output
    later = write_edh_high_store(tmp_path / "later.zarr", lr_slices=SLICES, hours=24,
                                 start="2024-11-01T00")
    with pytest.raises(SrEdgeError, match=r"later.zarr has none of the 72 hours of --source"):
        open_pair(lr, resolve_source(str(later)), ("t2m",), bbox=None, start=None, end=None)


def test_sample_options_without_source_are_refused():
    result = runner.invoke(app, ["train", "--bbox", "5,40,10,45", "--max-steps", "1"])
    assert result.exit_code == 2 and "--bbox needs --source" in result.output


def test_a_refusing_server_is_one_line_naming_it(hub, server, tmp_path):
    server.faults.status = 403
    result = runner.invoke(app, ["train", "--source", "edh", "--edh-url", server.base_url,
                                 "--out-dir", str(tmp_path / "run"), "--max-steps", "1"])
    assert result.exit_code != 0
    assert "403" in result.output and API_KEY not in result.output
    assert "Traceback" not in result.output


def test_a_server_that_starts_refusing_mid_stream_is_named_not_called_damage(hub, server):
    pair = http_pair(server, cache_mb=0.0)
    stats = stream_statistics(pair)
    server.faults.status = 403
    with pytest.raises(SrEdgeError) as refused:
        next(iter(BlockCrops(pair, stats, crop=4, halo=1, crops_per_block=1, seed=0)))
    assert "access denied (403): this account lacks Climate DT access" in str(refused.value)
    assert "damaged" not in str(refused.value)
