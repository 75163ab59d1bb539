"""The output boundary: where the steps of a run go (COG or NetCDF files, one Zarr store).

The run calls, in order: ``check`` (before any work: names usable, existing outputs may be
replaced or resumed), ``done_steps`` (steps a resumed output already holds, after checking that
they were made with this run's settings), ``create`` (just before the first write, so a run that
fails earlier changes nothing), ``write_step`` for each step (each written whole or not at all),
and ``discard_if_empty`` after a failure (remove what ``create`` made if no step completed).
Sinks are picklable: Dask workers write their own steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from sr_runtime.fields import GeoField


@runtime_checkable
class Sink(Protocol):
    """Step ``index`` of the run goes to slot ``index`` of the output: every variable of the
    step (one field, or one per variable of the model) in that one slot."""

    def check(self, overwrite: bool, resume: bool) -> None: ...

    def done_steps(self, overwrite: bool, resume: bool) -> set[int]: ...

    def create(self) -> None: ...

    def write_step(self, index: int, fields: GeoField | Sequence[GeoField]) -> str: ...

    def discard_if_empty(self) -> None: ...
