"""Training samples/s streamed from a local Zarr pair and from the same pair over HTTP with
latency, and whether the loader keeps the model busy.

The stores are in the Earth Data Hub layout (real EDH coordinates; HR chunks of 24 hours by
512 x 512 cells, one LR chunk for all hours); the HTTP server is a plain file server on
127.0.0.1 that answers every request after ``--latency-ms``. Each case trains the default
network (32 channels, 8 blocks) for ``--steps`` steps with ``sr_export.training.train`` and
reports samples/s, MB read, MB/s and the share of the step's wall time spent waiting for data.

Acceptance: the data wait is under 10 % of the step time in both cases.

    python -m benchmarks.bench_stream_training [--steps 60] [--latency-ms 50] [--workers 2]
    pytest benchmarks/bench_stream_training.py --benchmark-only
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from sr_runtime.machine import machine_info

ROOT = Path(__file__).resolve().parent.parent
WAIT_LIMIT = 0.10
LR_NAME = "IFS-NEMO-SSP3-7.0-sfc-hourly-standard-v0.zarr"
HR_NAME = "IFS-NEMO-SSP3-7.0-sfc-hourly-high-maps-v0.zarr"
REGION = (slice(372, 404), slice(520, 568))  # 32 x 48 LR cells over the Alps
HOURS = 96


def make_stores(folder: Path) -> Path:
    """``folder/climate-dt-2/`` with the LR store and its high-maps companion."""
    from tests.conftest import write_edh_high_store, write_edh_store

    hub = folder / "climate-dt-2"
    hub.mkdir(parents=True, exist_ok=True)
    write_edh_store(hub / LR_NAME, lat_slice=REGION[0], lon_slice=REGION[1], hours=HOURS,
                    variables=("t2m",))
    write_edh_high_store(hub / HR_NAME, lr_slices=REGION, hours=HOURS, variables=("t2m",))
    return hub


class QuietHandler(SimpleHTTPRequestHandler):
    latency_s = 0.0

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        time.sleep(self.latency_s)
        super().do_GET()


def serve(folder: Path, latency_s: float) -> ThreadingHTTPServer:
    handler = type("Handler", (QuietHandler,), {"latency_s": latency_s})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(folder)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def train_case(lr_location: str, out: Path, steps: int, workers: int, batch: int,
               crop: int) -> dict:
    from sr_export.model import SRResNetConfig
    from sr_export.stream_data import StreamSettings, open_pair
    from sr_export.training import train
    from sr_runtime.sources.registry import resolve_source
    from sr_runtime.statics import companion_source

    lr = resolve_source(lr_location)
    pair = open_pair(lr, companion_source(lr_location), ("t2m",), bbox=None, start=None,
                     end=None)
    started = time.perf_counter()
    result = train(SRResNetConfig(n_channels=32, n_blocks=8, upsample_skip="bicubic"), out,
                   cpu_minutes=1e6, times=np.array([]), batch_size=batch, crop_lr=crop,
                   max_steps=steps, val_every_steps=10 * steps,
                   stream=StreamSettings(pair, workers=workers))
    return {**result.throughput, "steps": result.global_step,
            "wall_s": time.perf_counter() - started, "batch_size": batch, "crop_lr": crop,
            "workers": workers}


def measure(steps: int = 60, latency_ms: float = 50.0, workers: int = 2, batch: int = 16,
            crop: int = 16) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        hub = make_stores(folder / "root")
        cases = {"local": train_case(str(hub / LR_NAME), folder / "local", steps, workers,
                                     batch, crop)}
        server = serve(folder / "root", latency_ms / 1000)
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/climate-dt-2/{LR_NAME}"
            cases[f"http +{latency_ms:g} ms"] = train_case(url, folder / "http", steps,
                                                          workers, batch, crop)
        finally:
            server.shutdown()
    return {"machine": machine_info().to_dict(), "latency_ms": latency_ms, "wait_limit": WAIT_LIMIT,
            "cases": cases}


def table(results: dict) -> str:
    lines = ["| case | samples/s | MB read | MB/s | data wait | steps |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, c in results["cases"].items():
        lines.append(f"| {name} | {c['samples_per_s']:.1f} | {c['read_MB']:.1f} | "
                     f"{c['read_MB_per_s']:.2f} | {100 * c['data_wait_fraction']:.1f} % | "
                     f"{c['steps']} |")
    return "\n".join(lines)


def test_stream_training_keeps_the_model_busy(benchmark):  # pytest-benchmark
    results = benchmark.pedantic(measure, kwargs={"steps": 12}, rounds=1, iterations=1)
    benchmark.extra_info.update(results)
    for name, case in results["cases"].items():
        assert case["data_wait_fraction"] < WAIT_LIMIT, (name, case)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--crop", type=int, default=16)
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "latest" /
                        "stream_training.json")
    args = parser.parse_args()
    results = measure(args.steps, args.latency_ms, args.workers, args.batch_size, args.crop)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"CPU class {results['machine'].get('cpu_class', '?')}")
    print(table(results))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
