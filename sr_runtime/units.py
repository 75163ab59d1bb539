"""Source units against the model's, and the physical range a value must lie in to be believed.

A store states its units in the CF ``units`` attribute. Temperatures are converted by a small
table (kelvin, Celsius, Fahrenheit in their usual spellings); any other unit must equal the
model's exactly. A missing or unknown unit is refused rather than guessed, as CF-aware tools
(xclim, MetPy) do: a guess is how a degC store becomes a field off by 273 K.
"""

from __future__ import annotations

import numpy as np

from sr_runtime.errors import VariableError

# lower-cased spelling -> (scale, offset) such that kelvin = value * scale + offset
_F = 5.0 / 9.0
TEMPERATURE: dict[str, tuple[float, float]] = {
    **dict.fromkeys(("k", "kelvin", "kelvins", "degk", "deg_k", "degree_kelvin",
                     "degrees_kelvin"), (1.0, 0.0)),
    **dict.fromkeys(("degc", "deg_c", "°c", "celsius", "degree_celsius", "degrees_celsius",
                     "degree_c", "degrees_c"), (1.0, 273.15)),
    **dict.fromkeys(("degf", "deg_f", "°f", "fahrenheit", "degree_fahrenheit",
                     "degrees_fahrenheit", "degree_f", "degrees_f"), (_F, 273.15 - 32.0 * _F)),
}
KNOWN = "K, kelvin, degC, deg_C, °C, Celsius, degF, deg_F, °F, Fahrenheit"

# variable -> (low, high) in kelvin: values outside were never measured at 2 m on Earth
PLAUSIBLE_K: dict[str, tuple[float, float]] = {"t2m": (150.0, 350.0), "d2m": (150.0, 350.0),
                                               "skt": (150.0, 350.0)}


def _temperature(units: str) -> tuple[float, float] | None:
    return TEMPERATURE.get(units.strip().lower())


def source_units(attrs: dict, name: str, label: str) -> str:
    """The ``units`` attribute of ``name``; its absence is an error that says how to fix it."""
    units = attrs.get("units")
    if not isinstance(units, str) or not units.strip():
        raise VariableError(
            f"{label}: {name} has no units attribute and sr-run does not guess units; set it "
            f"in the store (e.g. ds.{name}.attrs['units'] = 'K'); known units: {KNOWN}")
    return units.strip()


def check_convertible(units: str, wanted: str, name: str, label: str) -> None:
    if units == wanted or (_temperature(units) and _temperature(wanted)):
        return
    known = KNOWN if _temperature(wanted) else repr(wanted)
    raise VariableError(f"{label}: {name} is in {units!r}, which sr-run cannot convert to the "
                        f"model's {wanted!r}; known units: {known}")


def convert(values: np.ndarray, units: str, wanted: str) -> np.ndarray:
    """``values`` from ``units`` to ``wanted`` (float32); see :func:`check_convertible`."""
    if units == wanted:
        return values.astype(np.float32, copy=False)
    scale_in, offset_in = _temperature(units) or (1.0, 0.0)
    scale_out, offset_out = _temperature(wanted) or (1.0, 0.0)
    kelvin = values.astype(np.float64) * scale_in + offset_in
    return ((kelvin - offset_out) / scale_out).astype(np.float32)


def plausible_range(name: str, units: str) -> tuple[float, float] | None:
    """The range of ``name`` in ``units``, when sr-run knows one."""
    bounds = PLAUSIBLE_K.get(name)
    factors = _temperature(units)
    if bounds is None or factors is None:
        return None
    scale, offset = factors
    low, high = ((b - offset) / scale for b in bounds)
    return float(low), float(high)
