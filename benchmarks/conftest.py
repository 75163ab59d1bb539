"""pytest-benchmark suite: `pytest benchmarks/ [--bench-model NAME] [--benchmark-json out.json]`.

The files here are named ``test_bench_*.py`` so that pytest collects them when asked to
(``pytest benchmarks/``); the project's ``testpaths = ["tests"]`` keeps them out of a plain
``pytest`` run. The CI gate does not use this suite (it needs interleaved rounds, see
``benchmarks/harness.py``), but ``python -m benchmarks.gate --benchmark-json`` can check it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.harness import MODEL_SPECS, Backend, discover_backends
from benchmarks.models import SHIPPED, ModelFiles, prepare, shipped_missing_reason


def pytest_benchmark_update_machine_info(config, machine_info: dict) -> None:
    """Record the CPU class and ISA flags with every pytest-benchmark figure."""
    from sr_runtime.machine import machine_info as describe

    machine_info["sr_edge"] = describe().to_dict()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sr-edge benchmarks")
    group.addoption("--bench-model", default="demo-64ch-16b", choices=sorted(MODEL_SPECS),
                    help="random-weight model to benchmark (the shipped one is added when "
                         "present)")
    group.addoption("--bench-threads", type=int, default=0,
                    help="intra-op threads for every backend [physical cores]")
    group.addoption("--bench-rounds", type=int, default=5, help="timed calls per benchmark")


@pytest.fixture(scope="session")
def bench_threads(request: pytest.FixtureRequest) -> int:
    import torch

    from sr_runtime.engines.onnxruntime import physical_cores

    threads = request.config.getoption("--bench-threads") or physical_cores()
    torch.set_num_threads(threads)
    return threads


@pytest.fixture(scope="session")
def bench_rounds(request: pytest.FixtureRequest) -> int:
    return request.config.getoption("--bench-rounds")


@pytest.fixture(scope="session")
def model_files(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Model name -> ModelFiles, prepared once per session and on first use."""
    cache: dict[str, ModelFiles] = {}
    chosen = request.config.getoption("--bench-model")

    def get(name: str) -> ModelFiles:
        if name == "random":
            name = chosen
        if name == SHIPPED.name and (reason := shipped_missing_reason()):
            pytest.skip(reason)
        if name not in cache:
            cache[name] = prepare(MODEL_SPECS[name], Path(tmp_path_factory.mktemp(name)))
        return cache[name]

    return get


@pytest.fixture(scope="session")
def backends(model_files, bench_threads):
    """(model name, backend name) -> Backend, or a skip with the reason it is unusable."""
    cache: dict[str, tuple[dict[str, Backend], dict[str, str]]] = {}

    def get(model: str, backend: str) -> tuple[ModelFiles, Backend]:
        files = model_files(model)
        if files.spec.name not in cache:
            found, skipped = discover_backends(files, bench_threads)
            cache[files.spec.name] = ({b.name: b for b in found}, skipped)
        found, skipped = cache[files.spec.name]
        if backend not in found:
            pytest.skip(f"{backend}: {skipped.get(backend, 'not available here')}")
        return files, found[backend]

    return get
