"""Source units against the model's, and the physical range a value must lie in to be believed.

A store states its units in the CF ``units`` attribute. Each unit belongs to a family with its
usual spellings (temperatures: kelvin, Celsius, Fahrenheit; heights: metres, kilometres, feet;
fractions: ``(0 - 1)`` as ECMWF writes it, ``1``, ``fraction``, ``%``) and converts within its
family; any other unit must equal the model's exactly. A missing or unknown unit is refused
rather than guessed, as CF-aware tools (xclim, MetPy) do: a guess is how a degC store becomes a
field off by 273 K, or an orography in feet a mountain three times too high.
"""

from __future__ import annotations

import numpy as np

from sr_runtime.errors import VariableError

# lower-cased spelling -> (scale, offset) such that base unit = value * scale + offset
_F = 5.0 / 9.0
TEMPERATURE: dict[str, tuple[float, float]] = {
    **dict.fromkeys(("k", "kelvin", "kelvins", "degk", "deg_k", "degree_kelvin",
                     "degrees_kelvin"), (1.0, 0.0)),
    **dict.fromkeys(("degc", "deg_c", "°c", "celsius", "degree_celsius", "degrees_celsius",
                     "degree_c", "degrees_c"), (1.0, 273.15)),
    **dict.fromkeys(("degf", "deg_f", "°f", "fahrenheit", "degree_fahrenheit",
                     "degrees_fahrenheit", "degree_f", "degrees_f"), (_F, 273.15 - 32.0 * _F)),
}
#: heights (orography): base metres
LENGTH: dict[str, tuple[float, float]] = {
    **dict.fromkeys(("m", "metre", "metres", "meter", "meters", "gpm"), (1.0, 0.0)),
    **dict.fromkeys(("km", "kilometre", "kilometres", "kilometer", "kilometers"), (1000.0, 0.0)),
    **dict.fromkeys(("ft", "foot", "feet"), (0.3048, 0.0)),
}
#: fractions (land-sea mask): base 0..1
FRACTION: dict[str, tuple[float, float]] = {
    **dict.fromkeys(("(0 - 1)", "0 - 1", "(0-1)", "0-1", "1", "fraction", "dimensionless"),
                    (1.0, 0.0)),
    **dict.fromkeys(("%", "percent"), (0.01, 0.0)),
}
FAMILIES = (TEMPERATURE, LENGTH, FRACTION)
KNOWN = "K, kelvin, degC, deg_C, °C, Celsius, degF, deg_F, °F, Fahrenheit"
KNOWN_BY_FAMILY = {id(TEMPERATURE): KNOWN, id(LENGTH): "m, metres, km, ft",
                   id(FRACTION): "(0 - 1), 0-1, 1, fraction, %"}

# variable -> (low, high) in its family's base unit: values outside were never measured on
# Earth (kelvin at 2 m; metres of surface height, the Dead Sea shore to above Everest; 0..1)
PLAUSIBLE_K: dict[str, tuple[float, float]] = {"t2m": (150.0, 350.0), "d2m": (150.0, 350.0),
                                               "skt": (150.0, 350.0)}
PLAUSIBLE_M: dict[str, tuple[float, float]] = {"orog": (-500.0, 9000.0)}
PLAUSIBLE_FRACTION: dict[str, tuple[float, float]] = {"lsm": (0.0, 1.0)}
_PLAUSIBLE = ((TEMPERATURE, PLAUSIBLE_K), (LENGTH, PLAUSIBLE_M), (FRACTION, PLAUSIBLE_FRACTION))


def _family(units: str) -> dict[str, tuple[float, float]] | None:
    key = units.strip().lower()
    return next((family for family in FAMILIES if key in family), None)


def _factors(units: str) -> tuple[float, float] | None:
    family = _family(units)
    return None if family is None else family[units.strip().lower()]


def _temperature(units: str) -> tuple[float, float] | None:
    return TEMPERATURE.get(units.strip().lower())


def is_temperature(units: str) -> bool:
    """Whether ``units`` is a temperature unit (``--units degC`` converts those)."""
    return _temperature(units) is not None


def source_units(attrs: dict, name: str, label: str) -> str:
    """The ``units`` attribute of ``name``; its absence is an error that says how to fix it."""
    units = attrs.get("units")
    if not isinstance(units, str) or not units.strip():
        raise VariableError(
            f"{label}: {name} has no units attribute and sr-run does not guess units; set it "
            f"in the store (e.g. ds.{name}.attrs['units'] = 'K'); known units: {KNOWN}")
    return units.strip()


def check_convertible(units: str, wanted: str, name: str, label: str) -> None:
    family = _family(wanted)
    if units == wanted or (family is not None and _family(units) is family):
        return
    known = KNOWN_BY_FAMILY[id(family)] if family is not None else repr(wanted)
    raise VariableError(f"{label}: {name} is in {units!r}, which sr-run cannot convert to the "
                        f"model's {wanted!r}; known units: {known}")


def convert(values: np.ndarray, units: str, wanted: str) -> np.ndarray:
    """``values`` from ``units`` to ``wanted`` (float32); see :func:`check_convertible`."""
    if units == wanted:
        return values.astype(np.float32, copy=False)
    scale_in, offset_in = _factors(units) or (1.0, 0.0)
    scale_out, offset_out = _factors(wanted) or (1.0, 0.0)
    if (scale_in, offset_in) == (scale_out, offset_out):
        return values.astype(np.float32, copy=False)
    base = values.astype(np.float64) * scale_in + offset_in
    return ((base - offset_out) / scale_out).astype(np.float32)


def plausible_range(name: str, units: str) -> tuple[float, float] | None:
    """The range of ``name`` in ``units``, when sr-run knows one."""
    family = _family(units)
    factors = _factors(units)
    bounds = next((table.get(name) for fam, table in _PLAUSIBLE if fam is family), None)
    if bounds is None or factors is None:
        return None
    scale, offset = factors
    low, high = ((b - offset) / scale for b in bounds)
    return float(low), float(high)


#: Dew-point variables and the air temperature they cannot exceed (saturation): a model that
#: predicts both caps the first at the second in its graph, and every output is checked for it.
DEW_POINT_OF = {"d2m": "t2m"}
#: Dew point above air temperature tolerated in an output (K): rounding, never physics.
DEW_POINT_EXCESS_TOLERANCE_K = 1e-3


def dew_point_pairs(names: list[str] | tuple[str, ...]) -> list[tuple[int, int]]:
    """(dew point index, air temperature index) of each dew point among ``names`` whose air
    temperature is there too."""
    return [(names.index(dew), names.index(air)) for dew, air in DEW_POINT_OF.items()
            if dew in names and air in names]
