"""Throughput per backend, precision and LR tile size, with HR Mpix/s and GFLOP/s."""

from __future__ import annotations

import pytest

from benchmarks.harness import lr_input

# Every backend the harness can discover; those unusable here are skipped with the reason.
BACKENDS = ["torch", "torch-channels-last", "onnxruntime", "onnxruntime-fp16", "tensorrt",
            "ort-tensorrt", "ort-cuda"]
TILES = [32, 128]
MODELS = ["random", "sr-edge-t2m-x8"]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("tile", TILES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_throughput(benchmark, backends, bench_rounds, model, tile, backend):
    files, chosen = backends(model, backend)
    engine = chosen.engine
    lr = lr_input(engine.description, tile)
    benchmark.group = f"{files.spec.name} LR {tile}x{tile}"
    out = benchmark.pedantic(engine.infer, args=(lr,), rounds=bench_rounds, iterations=1,
                             warmup_rounds=1)
    scale = engine.description.scale
    assert out.shape[-2:] == (tile * scale, tile * scale)
    median = benchmark.stats.stats.median
    benchmark.extra_info.update({
        "kind": "throughput", "model": files.spec.name, "backend": backend, "tile": tile,
        "precision": chosen.precision, "median_ms": 1e3 * median,
        "hr_mpix_s": (tile * scale) ** 2 / median / 1e6,
        "gflop_s": files.flops_per_lr_pixel * tile * tile / median / 1e9,
    })
