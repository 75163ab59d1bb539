"""Output path checks done before any work, so a user mistake costs nothing."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sr_runtime.errors import OutputError


def check_output(path: Path, overwrite: bool) -> None:
    if path.is_dir():
        raise OutputError(f"{path} is a folder; give a file name such as {path / 'sr.tif'}")
    if path.exists() and not overwrite:
        raise OutputError(f"{path} already exists; pass --overwrite to replace it")
    if not path.parent.exists():
        raise OutputError(f"output folder {path.parent} does not exist; create it first "
                          f"(mkdir -p {path.parent})")


@contextmanager
def atomic_output(out: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``out``; rename it to ``out`` only if the block succeeds.

    A failed or interrupted write leaves nothing at ``out`` and no temporary file behind.
    """
    out = Path(out)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=f".part{suffix}",
                                    dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (checkpoints, models and plans can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomically(data: bytes, out: Path) -> None:
    """Write ``data`` to ``out`` through :func:`atomic_output`: never a partial file."""
    with atomic_output(Path(out)) as tmp:
        tmp.write_bytes(data)
