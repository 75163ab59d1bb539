"""A bounded in-memory cache of a store's chunk bytes, and a count of the bytes read.

Training draws many crops from the same chunks (an LR chunk of the Hub holds 1440 hours), so
each chunk is fetched once while it is in use instead of once per crop. Only chunk keys are
cached: metadata (``zarr.json``) is always read afresh, so a store still being appended is
never seen stale. A budget of 0 turns the cache off and only counts.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

from zarr.abc.store import ByteRequest, Store
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import WrapperStore

from sr_runtime.sources.chunks import is_chunk_key


class ReadCounter:
    """Bytes fetched from the underlying store, and how many of the chunk reads the cache
    answered. Shared by every view of one store (zarr derives views with ``with_read_only``)."""

    def __init__(self) -> None:
        self.bytes_read = 0
        self.hits = 0
        self.misses = 0
        self.lock = threading.Lock()

    def add(self, nbytes: int, hit: bool) -> None:
        with self.lock:
            self.bytes_read += nbytes
            if hit:
                self.hits += 1
            else:
                self.misses += 1


class ChunkCache:
    """Least-recently-used chunk bytes, at most ``max_bytes`` in all."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max(0, int(max_bytes))
        self.entries: OrderedDict[str, bytes] = OrderedDict()
        self.size = 0
        self.lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self.lock:
            value = self.entries.get(key)
            if value is not None:
                self.entries.move_to_end(key)
            return value

    def put(self, key: str, value: bytes) -> None:
        if len(value) > self.max_bytes:
            return
        with self.lock:
            if key in self.entries:
                self.size -= len(self.entries.pop(key))
            self.entries[key] = value
            self.size += len(value)
            while self.size > self.max_bytes:
                _, dropped = self.entries.popitem(last=False)
                self.size -= len(dropped)


class CachingStore(WrapperStore[Store]):
    """``store`` read through ``cache`` (whole chunks only), counting bytes in ``counter``."""

    def __init__(self, store: Store, cache: ChunkCache, counter: ReadCounter) -> None:
        super().__init__(store)
        self.cache, self.counter = cache, counter

    def _with_store(self, store: Store) -> CachingStore:
        return type(self)(store, self.cache, self.counter)

    async def get(self, key: str, prototype: BufferPrototype,
                  byte_range: ByteRequest | None = None) -> Buffer | None:
        cacheable = byte_range is None and is_chunk_key(key) and self.cache.max_bytes > 0
        if cacheable:
            cached = self.cache.get(key)
            if cached is not None:
                self.counter.add(0, hit=True)
                return prototype.buffer.from_bytes(cached)
        value = await self._store.get(key, prototype, byte_range)
        if value is not None:
            self.counter.add(len(value), hit=False)
            if cacheable:
                self.cache.put(key, value.to_bytes())
        return value

    async def get_partial_values(self, prototype: BufferPrototype,
                                 key_ranges: Iterable[tuple[str, ByteRequest | None]]
                                 ) -> list[Buffer | None]:
        values = await self._store.get_partial_values(prototype, key_ranges)
        for value in values:
            if value is not None:
                self.counter.add(len(value), hit=False)
        return values


def caching(store: Store, cache_mb: float, counter: ReadCounter | None = None) -> CachingStore:
    """``store`` behind a chunk cache of ``cache_mb`` MB (0: no cache, bytes still counted)."""
    return CachingStore(store, ChunkCache(int(cache_mb * 2**20)), counter or ReadCounter())
