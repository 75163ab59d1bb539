"""The chunk cache streamed training reads through: bounded, chunks only, counts what it read."""

from __future__ import annotations

import asyncio

import numpy as np
from zarr.core.buffer import default_buffer_prototype
from zarr.storage import LocalStore

from sr_runtime.sources.cache import ChunkCache, ReadCounter, caching
from sr_runtime.sources.zarr_store import ZarrSource
from tests.conftest import write_edh_store


def test_least_recently_used_chunks_go_first_and_the_budget_holds():
    cache = ChunkCache(max_bytes=10)
    cache.put("t2m/c/0/0/0", b"aaaa")
    cache.put("t2m/c/1/0/0", b"bbbb")
    assert cache.get("t2m/c/0/0/0") == b"aaaa"  # now the most recent
    cache.put("t2m/c/2/0/0", b"cccc")            # 12 bytes > 10: the oldest goes
    assert cache.get("t2m/c/1/0/0") is None
    assert cache.get("t2m/c/0/0/0") == b"aaaa" and cache.get("t2m/c/2/0/0") == b"cccc"
    assert cache.size == 8
    cache.put("big", b"x" * 11)                  # larger than the whole budget: not kept
    assert cache.get("big") is None and cache.size == 8


def test_chunks_are_read_once_and_metadata_always(tmp_path):
    path = write_edh_store(tmp_path / "lr.zarr")
    counter = ReadCounter()
    store = caching(LocalStore(str(path), read_only=True), cache_mb=1, counter=counter)
    prototype = default_buffer_prototype()

    async def read(key: str) -> int:
        value = await store.get(key, prototype)
        assert value is not None
        return len(value)

    chunk = asyncio.run(read("t2m/c/0/0/0"))
    asyncio.run(read("t2m/c/0/0/0"))
    assert (counter.bytes_read, counter.hits, counter.misses) == (chunk, 1, 1)
    meta = asyncio.run(read("zarr.json"))
    asyncio.run(read("zarr.json"))
    assert counter.bytes_read == chunk + 2 * meta  # never cached: a store may be appended to


def test_a_source_read_through_the_cache_gives_the_same_data(tmp_path):
    path = write_edh_store(tmp_path / "lr.zarr", hours=12)
    plain = ZarrSource(path).open().t2m.values
    source = ZarrSource(path)
    source.chunk_cache_mb, source.read_counter = 16.0, ReadCounter()
    ds = source.open()
    first, again = ds.t2m.isel(time=slice(0, 6)).values, ds.t2m.isel(time=slice(6, 12)).values
    np.testing.assert_array_equal(np.concatenate([first, again]), plain)
    assert source.read_counter.hits >= 1  # the second half came from the cached chunk
