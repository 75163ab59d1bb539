"""One sr-run at a time per output: an exclusive lock file beside it for the whole run.

Two runs into one Zarr store (``--overwrite`` twice, ``--resume`` twice) or one set of COGs
would interleave their writes; the second one stops before it touches anything, naming the
process that holds the lock. The lock is ``flock`` on ``.NAME.lock`` in the output's folder,
released by the kernel whatever way the holder ends (``kill -9`` included); the file is removed
at a normal exit. A template's lock is named after the template, in its first folder without a
placeholder, so two runs of one template exclude each other.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sr_runtime.errors import OutputLockedError
from sr_runtime.paths import output_error

try:
    import fcntl
except ImportError:  # not POSIX: no lock, as before
    fcntl = None  # type: ignore[assignment]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def lock_path(out: str | Path) -> Path:
    """``.NAME.lock`` beside ``out``; for a template, in the deepest folder without ``{``.

    The folder is resolved (symlinks, relative parts), so every spelling of one output shares
    one lock.
    """
    parts = Path(out).parts
    fixed = 0
    while fixed < len(parts) - 1 and "{" not in parts[fixed]:
        fixed += 1
    folder = Path(*parts[:fixed]) if fixed else Path(".")
    rest = "_".join(parts[fixed:])
    name = _UNSAFE.sub("_", rest) if "{" in rest else rest
    return Path(os.path.realpath(folder)) / f".{name}.lock"


def _holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        return "pid unknown"
    return f"pid {text}" if text.isdigit() else "pid unknown"


def _acquire(path: Path, label: str) -> int:
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise output_error(exc, path) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputLockedError(f"another sr-run is writing {label} ({_holder(path)}); wait "
                                    "for it or choose another --out") from None
        try:  # the holder before us removes the file at exit: lock the file that is there now
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


@contextmanager
def output_lock(out: str | Path) -> Iterator[Path | None]:
    """Hold the lock of ``out`` for the block, or raise :class:`OutputLockedError`."""
    if fcntl is None:
        yield None
        return
    path = lock_path(out)
    fd = _acquire(path, str(out))
    try:
        yield path
    finally:
        try:
            path.unlink(missing_ok=True)  # while still holding it, see _acquire
        finally:
            os.close(fd)
