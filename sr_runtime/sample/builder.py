"""Write the embedded sample DataCube: two Zarr v3 stores laid out like the Earth Data Hub's.

The stores let every part of sr-edge (sources, engines, evaluation, the Quickstart) run offline
against data that looks like Climate DT on the Hub: same store names, dims, ascending float64
global coordinates, float32 ``t2m`` in K, static ``lsm``/``orog``, consolidated metadata. The
content is synthetic (see :mod:`sr_runtime.sample.weather`), NOT Climate DT output.

To fit the wheel, ``t2m`` and ``d2m`` are bit-rounded to 14 mantissa bits (error at most
0.0078 K) before
Blosc/zstd compression with byte shuffle; the stored dtype stays float32 and no special codec is
needed to read it.

Rebuild the shipped stores with ``python -m sr_runtime.sample.builder [--out DIR]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import xarray as xr
from zarr.codecs import BloscCodec

from sr_runtime.defaults import SAMPLE_DIR
from sr_runtime.sample.metadata import HR_STORE_NAME, LR_STORE_NAME, Resolution, global_attrs
from sr_runtime.sample.times import DEFAULT_HR_TIMES, MONTH_START, month_times
from sr_runtime.sample.weather import DEFAULT_SEED, synthesize

#: float32 mantissa bits kept in t2m: ulp 2**-6 K between 256 and 512 K, so |error| <= 0.0078 K.
KEEP_MANTISSA_BITS = 14
#: Time steps per t2m chunk: one day of hourly LR maps (EDH uses 1440 x 64 x 64 for LR), and
#: a few HR maps per chunk (EDH uses 24 x 512 x 512), so reading one map stays cheap.
LR_TIME_CHUNK = 24
HR_TIME_CHUNK = 4


def bitround(values: np.ndarray, keepbits: int = KEEP_MANTISSA_BITS) -> np.ndarray:
    """Round float32 to ``keepbits`` mantissa bits (to nearest, ties to even); a copy.

    Zeroed trailing bits compress well; the values stay plain float32 (unlike a codec in the
    store's metadata, no reader needs to know about it).
    """
    if not 0 < keepbits < 23:
        raise ValueError("keepbits must be in 1..22")
    bits = np.ascontiguousarray(values, dtype=np.float32).copy().view(np.uint32)
    drop = np.uint32(23 - keepbits)
    half = np.uint32((1 << (23 - keepbits - 1)) - 1)
    bits += ((bits >> drop) & np.uint32(1)) + half
    bits &= np.uint32((0xFFFFFFFF >> int(drop)) << int(drop))
    return bits.view(np.float32)


def _compressor() -> BloscCodec:
    return BloscCodec(cname="zstd", clevel=9, shuffle="shuffle")


def _encoding(ds: xr.Dataset, time_chunk: int) -> dict[str, dict[str, object]]:
    ny, nx = ds.sizes["latitude"], ds.sizes["longitude"]
    static = {"chunks": (ny, nx), "compressors": (_compressor(),), "dtype": "float32"}
    hourly = {"chunks": (min(time_chunk, max(ds.sizes["time"], 1)), ny, nx),
              "compressors": (_compressor(),), "dtype": "float32", "_FillValue": np.nan}
    return {
        "t2m": dict(hourly),
        "d2m": dict(hourly),
        "lsm": dict(static),
        "orog": dict(static),
        "time": {"units": f"hours since {np.datetime_as_string(MONTH_START, unit='s')}",
                 "calendar": "proleptic_gregorian", "dtype": "int64"},
        "latitude": {"dtype": "float64"},
        "longitude": {"dtype": "float64"},
    }


def _write_atomically(ds: xr.Dataset, target: Path, time_chunk: int) -> Path:
    """Write to a temporary sibling, then swap it into place: never a half-written store."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    with warnings.catch_warnings():
        # Zarr warns that consolidated metadata is not yet part of the v3 spec; the Hub uses it.
        warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
        ds.to_zarr(tmp, mode="w", zarr_format=3, consolidated=True,
                   encoding=_encoding(ds, time_chunk))
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def sample_dataset(times: np.ndarray, resolution: Resolution, seed: int = DEFAULT_SEED
                   ) -> xr.Dataset:
    """What a store holds: :func:`synthesize` output, bit-rounded, with global attributes."""
    ds = synthesize(times, resolution, seed)
    for name in ("t2m", "d2m"):
        ds[name] = ds[name].copy(data=bitround(ds[name].values))
    ds.attrs.update(global_attrs(resolution, seed))
    return ds


def build_stores(out_dir: Path = SAMPLE_DIR, hr_times: np.ndarray | None = None, *,
                 lr_times: np.ndarray | None = None, seed: int = DEFAULT_SEED
                 ) -> tuple[Path, Path]:
    """Write the LR (standard) and HR (high-maps) stores into ``out_dir``; return their paths.

    ``lr_times`` defaults to all 744 hours of October 2024, ``hr_times`` to
    :data:`DEFAULT_HR_TIMES` (held-out truth plus the Quickstart showcase time).
    """
    lr_times = month_times() if lr_times is None else lr_times
    hr_times = DEFAULT_HR_TIMES if hr_times is None else hr_times
    out_dir = Path(out_dir)
    lr = _write_atomically(sample_dataset(lr_times, "standard", seed),
                           out_dir / LR_STORE_NAME, LR_TIME_CHUNK)
    hr = _write_atomically(sample_dataset(hr_times, "high", seed),
                           out_dir / HR_STORE_NAME, HR_TIME_CHUNK)
    return lr, hr


def tree_size(path: Path) -> int:
    """Bytes of all files under ``path``."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def main(argv: list[str] | None = None) -> None:
    """Rebuild the sample DataCube (default: the stores shipped in the package)."""
    parser = argparse.ArgumentParser(prog="python -m sr_runtime.sample.builder",
                                     description=main.__doc__)
    parser.add_argument("--out", type=Path, default=SAMPLE_DIR, help="output folder")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    paths = build_stores(args.out)
    elapsed = time.perf_counter() - start
    for path in paths:
        with xr.open_zarr(path, consolidated=True) as ds:
            print(f"wrote {path}  t2m {tuple(ds.t2m.shape)}  {tree_size(path) / 1e6:.2f} MB")
    print(f"total {sum(tree_size(p) for p in paths) / 1e6:.2f} MB in {elapsed:.1f} s")


if __name__ == "__main__":
    main()
