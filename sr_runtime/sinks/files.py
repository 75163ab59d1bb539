"""One file per time step (COG or NetCDF), each written atomically under its final name.

An existing file is therefore whole: ``--resume`` keeps it when the settings it records (see
:mod:`sr_runtime.sinks.settings`) are this run's, and refuses otherwise.
"""

from __future__ import annotations

import glob
from collections.abc import Mapping, Sequence
from pathlib import Path

from sr_runtime.errors import OutputError
from sr_runtime.fields import GeoField
from sr_runtime.paths import PART, check_output, check_writable
from sr_runtime.sinks.kinds import COG, NETCDF
from sr_runtime.sinks.settings import check_settings


def _read_record(path: Path, kind: str) -> dict[str, str]:
    if kind == NETCDF:
        from sr_runtime.sinks.netcdf import read_netcdf_attrs

        return read_netcdf_attrs(path)
    import rasterio

    with rasterio.open(path) as src:
        return dict(src.tags())


class FileSteps:
    """Step ``i`` goes to ``paths[i]`` (picklable: Dask workers write their own steps)."""

    def __init__(self, paths: Sequence[Path], kind: str = COG,
                 settings: Mapping[str, str] | None = None, option: str = "--out") -> None:
        self.paths = [Path(p) for p in paths]
        self.kind, self.option = kind, option
        self.settings = dict(settings or {})

    def check(self, overwrite: bool, resume: bool) -> None:
        """Before any work: every name is usable, and every folder takes a temporary file."""
        longest: dict[Path, Path] = {}
        for path in self.paths:
            check_output(path, overwrite or resume, self.option, probe=False)
            best = longest.get(path.parent)
            if best is None or len(path.name) > len(best.name):
                longest[path.parent] = path
        for path in longest.values():
            check_writable(path, self.option)

    def done_steps(self, overwrite: bool, resume: bool) -> set[int]:
        """Remove temporaries left by a killed run; with ``resume``, the steps already written
        (each checked to be made with this run's settings)."""
        for path in self.paths:
            for stale in path.parent.glob(f".{glob.escape(path.name)}.*{PART}.*"):
                stale.unlink(missing_ok=True)
        if not resume or overwrite:
            return set()
        done = set()
        for index, path in enumerate(self.paths):
            if not path.is_file():
                continue
            try:
                record = _read_record(path, self.kind)
            except Exception as exc:  # noqa: BLE001 - any unreadable file is the same problem
                raise OutputError(f"--resume: {path} cannot be read ({type(exc).__name__}); "
                                  "delete it or pass --overwrite") from None
            check_settings(record, self.settings, str(path))
            done.add(index)
        return done


    def create(self) -> None:
        """Nothing to set up: each file appears whole when its step is written."""

    def discard_if_empty(self) -> None:
        """Nothing to undo: a failed step leaves no file."""

    def write_step(self, index: int, fields: GeoField | Sequence[GeoField]) -> str:
        """One file with every variable of the step (COG bands, NetCDF variables)."""
        if self.kind == NETCDF:
            from sr_runtime.sinks.netcdf import write_netcdf

            return str(write_netcdf(fields, self.paths[index]))
        from sr_runtime.sinks.cog import write_cog

        return str(write_cog(fields, self.paths[index]))
