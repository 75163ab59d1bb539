"""The settings that shape an output's values, recorded in it and checked by ``--resume``.

COG tags, NetCDF global attributes and Zarr store attributes carry them; a ``--resume`` run
with another model file, units, region, precision or source would mix two runs in one output,
so it is refused, naming the setting and both values.
"""

from __future__ import annotations

from collections.abc import Mapping

from sr_runtime.errors import OutputError

#: recorded key -> how a user changes it
RESUME_KEYS: dict[str, str] = {
    "model_sha256": "--model (sha256 of the model file that ran)",
    "precision": "model precision / variant",
    "units": "--units",
    "region": "region (--bbox / --global)",
    "source": "--source",
    "static": "--static (the store of the static HR fields)",
}


def _show(key: str, value: str | None) -> str:
    if value is None:
        return "nothing recorded"
    if key.endswith("sha256") and len(value) > 16:
        return value[:12] + "..."
    return repr(value)


def check_settings(found: Mapping[str, object], wanted: Mapping[str, str], where: str) -> None:
    """Raise when ``found`` (an existing output's record) differs from this run's settings."""
    for key, option in RESUME_KEYS.items():
        if key not in wanted:
            continue
        old = found.get(key)
        old_text = None if old is None else str(old)
        if old_text != wanted[key]:
            raise OutputError(f"--resume: {where} was written with {option} {_show(key, old_text)}"
                              f", this run has {_show(key, wanted[key])}; give the same settings "
                              "as before, another --out, or --overwrite")
