"""Which chunks a store could not give: so a missing or damaged chunk is named, never filled in.

Zarr reads an absent chunk (a deleted file, an HTTP 404) back as the array's fill value without
an error, and a damaged chunk fails deep in a codec with no key in the message. Every source
opens its store through :class:`RecordingStore`, which writes into a :class:`ChunkLog` the chunk
keys that were absent (and why: ``HTTP 404``, ``no such file``) and the keys that were read, so
the reader can refuse the data and say which chunk, of which variable, was at fault.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import xarray as xr
from zarr.abc.store import ByteRequest, Store
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import WrapperStore

METADATA_NAMES = frozenset({"zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata"})
LOG_KEY = "sr_edge_chunk_log"  # where a source leaves its log in ``Dataset.encoding``


def is_chunk_key(key: str) -> bool:
    return key.rsplit("/", 1)[-1] not in METADATA_NAMES


def array_of(key: str) -> str:
    """The array a chunk key belongs to (stores hold their arrays at the root)."""
    return key.split("/", 1)[0]


@dataclass
class ChunkLog:
    """Chunk keys a store was asked for: absent ones with why (``HTTP 404 on KEY``), and read
    ones, each with the sequence number of its last request (memory stays bounded by the
    number of distinct keys, however long the run).

    ``label`` names the source and ``where`` the place of its data ("on the server", "in the
    store") in messages."""

    store: Store
    label: str = "the source"
    where: str = "in the store"
    why_absent: Callable[[str], str] = lambda key: f"no file {key} in the store"
    absent: dict[str, tuple[str, int]] = field(default_factory=dict)
    read: dict[str, int] = field(default_factory=dict)
    count: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __deepcopy__(self, memo: dict) -> ChunkLog:  # datasets derived from one store share it
        return self

    def note(self, key: str, found: bool) -> None:
        if not is_chunk_key(key):
            return
        why = None if found else self.why_absent(key)
        with self.lock:
            self.count += 1
            if why is None:
                self.read[key] = self.count
            else:
                self.absent[key] = (why, self.count)

    def mark(self) -> int:
        """A point in the requests: ``*_since(mark)`` give what was asked after it."""
        with self.lock:
            return self.count + 1

    def absent_since(self, mark: int, array: str) -> list[tuple[str, str]]:
        with self.lock:
            found = sorted((seq, key, why) for key, (why, seq) in self.absent.items()
                           if seq >= mark and array_of(key) == array)
        return [(key, why) for _, key, why in found]

    def read_since(self, mark: int, array: str | None = None) -> list[str]:
        with self.lock:
            return [key for key, seq in self.read.items()
                    if seq >= mark and (array is None or array_of(key) == array)]


class RecordingStore(WrapperStore[Store]):
    """A read-only view of ``store`` that notes every chunk it finds or misses in ``log``."""

    def __init__(self, store: Store, log: ChunkLog | None = None) -> None:
        super().__init__(store)
        self.log = log if log is not None else ChunkLog(store)

    def _with_store(self, store: Store) -> RecordingStore:
        return type(self)(store, self.log)

    async def get(self, key: str, prototype: BufferPrototype,
                  byte_range: ByteRequest | None = None) -> Buffer | None:
        value = await self._store.get(key, prototype, byte_range)
        self.log.note(key, value is not None)
        return value

    async def get_partial_values(self, prototype: BufferPrototype,
                                 key_ranges: Iterable[tuple[str, ByteRequest | None]]
                                 ) -> list[Buffer | None]:
        key_ranges = list(key_ranges)
        values = await self._store.get_partial_values(prototype, key_ranges)
        for (key, _), value in zip(key_ranges, values, strict=False):
            self.log.note(key, value is not None)
        return values


def chunk_log(ds: xr.Dataset) -> ChunkLog | None:
    log = ds.encoding.get(LOG_KEY)
    return log if isinstance(log, ChunkLog) else None


def describe_absent(absent: list[tuple[str, str]], limit: int = 3) -> str:
    """``HTTP 404 on t2m/c/0/1/0, ...`` for at most ``limit`` keys, then how many more."""
    shown = ", ".join(why for _, why in absent[:limit])
    more = len(absent) - limit
    return shown + (f" and {more} more" if more > 0 else "")


def _chunk_coords(key: str, array: str) -> tuple[int, ...] | None:
    rest = key[len(array) + 1:]
    rest = rest[2:] if rest[:2] in ("c/", "c.") else ("" if rest == "c" else rest)
    parts = [p for p in re.split(r"[./]", rest) if p]
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else None


def damaged_chunks(log: ChunkLog, array: str, keys: Iterable[str]) -> list[str]:
    """Which of ``keys`` (chunks of ``array`` that were read) fail to decode on their own."""
    import zarr

    try:  # through the consolidated metadata when there is some, as xarray read it
        arr = zarr.open_group(store=log.store, mode="r")[array]
    except Exception:  # the metadata itself is unreadable: no chunk to single out
        return []
    if not isinstance(arr, zarr.Array):
        return []
    damaged = []
    for key in keys:
        coords = _chunk_coords(key, array)
        if coords is None or len(coords) != arr.ndim:
            continue
        try:
            arr.get_block_selection(coords)
        except Exception:
            damaged.append(key)
    return damaged


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
