"""Throughput and latency of `sr-serve` on this machine: cached tiles, cold and cached COGs.

Starts `sr-serve` (the default model over the embedded sample) as its own process on a free
127.0.0.1 port and drives it with httpx from client threads:

- cached tiles: every Web Mercator tile over the sample's box at zooms 5-8 for one time,
  requested once to fill the cache, then ``--tile-requests`` requests round-robin;
- cold COGs: ``/cog/sr`` for distinct times (each one an inference and a COG write);
- cached COGs: the same requests again (served from the cache).

Prints a markdown table and writes JSON (with ``sr_runtime.machine.machine_info()``) to
``--out`` (default ``benchmarks/results/latest/serve.json``, ignored by git).

    python benchmarks/bench_serve.py [--tile-requests 2000] [--cold 48] [--clients 4]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import morecantile
import numpy as np

from sr_runtime.machine import machine_info

ROOT = Path(__file__).resolve().parent.parent
TILE_TIME = "2024-10-25T12:00"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server() -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "sr_runtime.serve.cli", "--port",
                                str(port), "--log-level", "warning"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("sr-serve did not start")


def drive(url: str, paths: list[tuple[str, dict]], clients: int) -> dict[str, float]:
    """Request ``paths`` (split over ``clients`` threads); rps and latency percentiles."""
    latencies: list[float] = []
    failures: list[int] = []
    lock = threading.Lock()

    def worker(share: list[tuple[str, dict]]) -> None:
        with httpx.Client(base_url=url, timeout=120) as client:
            for path, params in share:
                started = time.perf_counter()
                response = client.get(path, params=params)
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    if response.status_code != 200:
                        failures.append(response.status_code)

    threads = [threading.Thread(target=worker, args=(paths[i::clients],))
               for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{len(failures)} requests failed (statuses {sorted(set(failures))})")
    ms = np.asarray(latencies) * 1000
    return {"requests": len(paths), "clients": clients, "seconds": round(wall, 3),
            "rps": round(len(paths) / wall, 1), "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p95_ms": round(float(np.percentile(ms, 95)), 2)}


def tiles_over(box: list[float], zooms: range) -> list[tuple[int, int, int]]:
    tms = morecantile.tms.get("WebMercatorQuad")
    west, south, east, north = box
    return [(t.z, t.x, t.y) for z in zooms for t in tms.tiles(west, south, east, north, [z])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tile-requests", type=int, default=2000)
    parser.add_argument("--cold", type=int, default=48, help="distinct times for cold COGs")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "latest" / "serve.json")
    args = parser.parse_args()

    process, url = start_server()
    try:
        times = httpx.get(url + "/times").json()
        box = times["bbox"]
        tiles = tiles_over(box, range(5, 9))
        tile_paths = [(f"/tiles/{z}/{x}/{y}.png", {"time": TILE_TIME}) for z, x, y in tiles]
        drive(url, tile_paths, 1)  # fill the caches (one inference, one render per tile)
        repeated = [tile_paths[i % len(tile_paths)] for i in range(args.tile_requests)]
        rows = {"cached tiles": drive(url, repeated, args.clients)}
        picked = times["times"][:: max(1, len(times["times"]) // args.cold)][: args.cold]
        cogs = [("/cog/sr", {"time": t}) for t in picked]
        rows["cold COGs, 1 client"] = drive(url, cogs[: len(cogs) // 2], 1)
        rows[f"cold COGs, {args.clients} clients"] = drive(url, cogs[len(cogs) // 2:],
                                                          args.clients)
        rows[f"cached COGs, {args.clients} clients"] = drive(url, cogs * 4, args.clients)
        health = httpx.get(url + "/health").json()
    finally:
        process.terminate()
        process.wait(timeout=30)

    machine = machine_info()
    report = {"machine": machine.to_dict(), "tiles": len(tiles), "tile_time": TILE_TIME,
              "results": rows, "inferences": health["inferences"],
              "date": time.strftime("%Y-%m-%d")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"machine: {machine.line()}")
    print(f"{len(tiles)} tiles at zooms 5-8; {health['inferences']} inferences in all\n")
    print("| case | requests | clients | req/s | p50 ms | p95 ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, row in rows.items():
        print(f"| {name} | {row['requests']} | {row['clients']} | {row['rps']} | "
              f"{row['p50_ms']} | {row['p95_ms']} |")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
