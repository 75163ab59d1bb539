"""Output names per time step: ``sr_{time:%Y%m%dT%H}.tif`` -> ``sr_20241011T03.tif``."""

from __future__ import annotations

import string
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sr_runtime.errors import UsageError


def is_template(out: str | Path) -> bool:
    return "{" in str(out)


FIELDS = ("time", "variable")


def _refuse(template: str | Path, why: str) -> UsageError:
    return UsageError(f"--out {str(template)!r} is not a valid name template ({why}); use "
                      "fields {time:%Y%m%dT%H} and {variable}")


def check_template(template: str | Path) -> None:
    """Only ``{time}``/``{time:strftime codes}`` and ``{variable}``: no attribute, index,
    conversion or nested field, which would put Python reprs into file names."""
    try:
        parts = list(string.Formatter().parse(str(template)))
    except ValueError as exc:
        raise _refuse(template, str(exc)) from None
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in FIELDS:
            raise _refuse(template, f"unknown field {{{name}}}")
        if conversion or (spec and ("{" in spec or "}" in spec)):
            raise _refuse(template, f"{{{name}}} takes only a strftime format such as :%Y%m%d")


def render(template: str | Path, time: np.datetime64, variable: str = "") -> Path:
    """The output path of the step at ``time`` (``{time:...}`` takes strftime codes)."""
    check_template(template)
    try:
        return Path(str(template).format(time=pd.Timestamp(time).to_pydatetime(),
                                         variable=variable))
    except (KeyError, IndexError, ValueError) as exc:
        raise UsageError(f"--out {str(template)!r} is not a valid name template ({exc}); use "
                         "fields {time:%Y%m%dT%H} and {variable}") from None


def render_all(template: str | Path, times: Sequence[np.datetime64] | np.ndarray,
               variable: str = "") -> list[Path]:
    """One distinct path per step, or a UsageError that says how to make them distinct."""
    paths = [render(template, t, variable) for t in times]
    if len(set(paths)) != len(paths):
        raise UsageError(f"--out {str(template)!r} gives the same file name to several time steps;"
                         " put the time in it, e.g. --out 'sr_{time:%Y%m%dT%H}.tif', or write "
                         "one Zarr store with --out sr.zarr")
    return paths
