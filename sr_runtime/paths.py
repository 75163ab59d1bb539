"""Output path checks done before any work, so a user mistake costs nothing."""

from __future__ import annotations

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
