"""Output path checks done before any work, so a user mistake costs nothing.

Every output is written under a temporary name beside it and renamed when complete
(:func:`atomic_output`); :func:`check_output` creates and removes such a temporary name up
front, so that a folder that is missing, read-only or not a folder, or a name too long for the
filesystem, is one line before the run instead of an ``OSError`` after it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sr_runtime.errors import OutputError

PART = ".part"
#: Bytes the temporary name adds to an output's name (".", ".", 8 random, ".part.tif").
TEMP_NAME_EXTRA = 2 + 8 + len(PART) + 4


def _name_limit(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX")) - TEMP_NAME_EXTRA
    except (OSError, ValueError):
        return 255 - TEMP_NAME_EXTRA


def output_error(exc: OSError, path: Path, what: str = "--out") -> OutputError:
    """The one-line reason why ``path`` cannot be written, from the ``OSError`` that said so."""
    path = Path(path)
    folder = path.parent
    code = exc.errno
    if code == errno.ENAMETOOLONG:
        size = len(os.fsencode(path.name))
        return OutputError(f"{what} name {path.name[:40]}... is too long for its filesystem "
                           f"({size} bytes; sr-edge needs at most {_name_limit(folder)}); "
                           "choose a shorter name")
    if code in (errno.EACCES, errno.EPERM):
        return OutputError(f"output folder {folder} is not writable ({exc.strerror}); choose "
                           f"another {what} or make the folder writable")
    if code == errno.EROFS:
        return OutputError(f"output folder {folder} is on a read-only filesystem; choose "
                           f"another {what}")
    if code == errno.ENOTDIR:
        return OutputError(f"{what} {path}: a part of {folder} is a file, not a folder; "
                           f"choose another {what}")
    if code == errno.ENOENT:
        return OutputError(f"output folder {folder} does not exist; create it first "
                           f"(mkdir -p {folder})")
    if code == errno.ENOSPC:
        return OutputError(f"no space left in {folder}; free some or choose another {what}")
    return OutputError(f"cannot write {what} {path} ({exc.strerror or exc}); choose another "
                       f"{what}")


def check_writable(path: Path, what: str = "--out") -> None:
    """Create and remove a temporary file named as :func:`atomic_output` names it."""
    path = Path(path)
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f"{PART}.tif",
                                     dir=path.parent)
    except OSError as exc:
        raise output_error(exc, path, what) from None
    os.close(fd)
    os.unlink(probe)


def check_output(path: Path, overwrite: bool, what: str = "--out", probe: bool = True) -> None:
    """``path`` can be written: not a folder, not existing unless ``overwrite``, in a writable
    folder (``probe``: checked by writing there), with a name the filesystem takes."""
    path = Path(path)
    if "\0" in str(path):
        raise OutputError(f"{what} {str(path)!r} contains a NUL character; choose another name")
    try:
        is_dir, exists = path.is_dir(), path.exists() or path.is_symlink()
        folder_exists, folder_is_dir = path.parent.exists(), path.parent.is_dir()
    except OSError as exc:  # e.g. a name too long even to look up
        raise output_error(exc, path, what) from None
    if is_dir:
        raise OutputError(f"{path} is a folder; give a file name such as {path / 'sr.tif'}")
    if exists and not overwrite:
        raise OutputError(f"{path} already exists; pass --overwrite to replace it")
    if not folder_exists:
        raise OutputError(f"output folder {path.parent} does not exist; create it first "
                          f"(mkdir -p {path.parent})")
    if not folder_is_dir:
        raise OutputError(f"{what} {path}: {path.parent} is a file, not a folder; choose "
                          f"another {what}")
    if probe:
        check_writable(path, what)


def same_file_keys(path: Path) -> set[str]:
    """What identifies the file ``path`` names: its real path (symlinks, ``..`` and relative
    parts resolved) and, when it exists, its device and inode (hard links)."""
    keys = {os.path.realpath(path)}
    try:
        stat = os.stat(path)
        keys.add(f"inode:{stat.st_dev}:{stat.st_ino}")
    except OSError:
        pass
    return keys


def check_distinct(named: Sequence[tuple[str, Path]]) -> None:
    """Refuse two outputs of one run that are the same file however they are spelt."""
    seen: dict[str, tuple[str, Path]] = {}
    for option, path in named:
        for key in same_file_keys(path):
            if key in seen and seen[key] != (option, Path(path)):
                other, other_path = seen[key]
                raise OutputError(f"{other} {other_path} and {option} {path} are the same file; "
                                  "give each output its own name")
            seen[key] = (option, Path(path))


def check_not_input(outputs: Sequence[tuple[str, Path]],
                    inputs: Sequence[tuple[str, Path]]) -> None:
    """Refuse an output that is an input of the run (or lies inside one, or holds one)."""
    for in_option, in_path in inputs:
        in_real = Path(os.path.realpath(in_path))
        for out_option, out_path in outputs:
            out_real = Path(os.path.realpath(out_path))
            if (out_real == in_real or in_real in out_real.parents
                    or out_real in in_real.parents
                    or same_file_keys(out_path) & same_file_keys(in_path)):
                how = "is" if out_real == in_real else "overlaps"
                raise OutputError(f"{out_option} {out_path} {how} the {in_option} {in_path}, "
                                  "which this run reads; write the output somewhere else")


@contextmanager
def atomic_output(out: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``out``; rename it to ``out`` only if the block succeeds.

    A failed or interrupted write leaves nothing at ``out`` and no temporary file behind.
    """
    out = Path(out)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=f"{PART}{suffix}",
                                        dir=out.parent)
    except OSError as exc:
        raise output_error(exc, out) from None
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
