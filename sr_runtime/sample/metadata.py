"""Earth Data Hub-like attributes for the sample stores and variables.

Code written against the real Climate DT stores reads these (units, names, GRIB keys), so
the sample carries the same kinds of attributes; global attributes also say loudly that the
content is synthetic.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from sr_runtime.defaults import HR_STORE_NAME, LR_STORE_NAME

__all__ = ["HR_STORE_NAME", "LR_STORE_NAME", "Resolution"]

Resolution = Literal["standard", "high"]


SAMPLE_NOTICE = (
    "SYNTHETIC SAMPLE derived from real terrain (GLOBE 30-arc-second elevation and land mask); "
    "NOT Climate DT output. Built by sr_runtime.sample for tests, demos and the Quickstart."
)
TERRAIN_CITATION = (
    "GLOBE Task Team and others (1999), The Global Land One-kilometer Base Elevation (GLOBE) "
    "Digital Elevation Model, Version 1.0, NOAA NGDC; land mask from global-land-mask 1.0.0 "
    "(MIT, (c) 2019 Tod Karin), derived from GLOBE"
)


def _grid_attrs(lat: np.ndarray, lon: np.ndarray) -> dict[str, object]:
    """GRIB-style description of the global regular grid the box was cut from."""
    return {
        "GRIB_gridType": "regular_ll",
        "GRIB_Nx": int(lon.size),
        "GRIB_Ny": int(lat.size),
        "GRIB_iDirectionIncrementInDegrees": float(lon[1] - lon[0]),
        "GRIB_jDirectionIncrementInDegrees": float(lat[1] - lat[0]),
        "GRIB_iScansNegatively": 0,
        "GRIB_jScansPositively": 1,
        "GRIB_latitudeOfFirstGridPointInDegrees": float(lat[0]),
        "GRIB_latitudeOfLastGridPointInDegrees": float(lat[-1]),
        "GRIB_longitudeOfFirstGridPointInDegrees": float(lon[0]),
        "GRIB_longitudeOfLastGridPointInDegrees": float(lon[-1]),
    }


def t2m_attrs(global_lat: np.ndarray, global_lon: np.ndarray) -> dict[str, object]:
    """Attributes of ``t2m`` as on the Earth Data Hub (CF names plus GRIB_* keys)."""
    return {
        "units": "K",
        "standard_name": "air_temperature",
        "long_name": "2 metre temperature",
        "GRIB_paramId": 167,
        "GRIB_shortName": "2t",
        "GRIB_cfVarName": "t2m",
        "GRIB_cfName": "air_temperature",
        "GRIB_name": "2 metre temperature",
        "GRIB_units": "K",
        "GRIB_typeOfLevel": "heightAboveGround",
        "GRIB_stepType": "instant",
        **_grid_attrs(global_lat, global_lon),
    }


def d2m_attrs(global_lat: np.ndarray, global_lon: np.ndarray) -> dict[str, object]:
    """Attributes of ``d2m`` (2 m dew point) as on the Earth Data Hub."""
    return {
        "units": "K",
        "standard_name": "dew_point_temperature",
        "long_name": "2 metre dewpoint temperature",
        "GRIB_paramId": 168,
        "GRIB_shortName": "2d",
        "GRIB_cfVarName": "d2m",
        "GRIB_name": "2 metre dewpoint temperature",
        "GRIB_units": "K",
        "GRIB_typeOfLevel": "heightAboveGround",
        "GRIB_stepType": "instant",
        **_grid_attrs(global_lat, global_lon),
    }


def lsm_attrs(global_lat: np.ndarray, global_lon: np.ndarray) -> dict[str, object]:
    """Attributes of the static land-sea mask (land fraction of the cell, 0..1)."""
    return {
        "units": "(0 - 1)",
        "standard_name": "land_binary_mask",
        "long_name": "Land-sea mask",
        "comment": "Fraction of the cell's 30-arc-second GLOBE cells that are land.",
        "GRIB_paramId": 172,
        "GRIB_shortName": "lsm",
        "GRIB_cfVarName": "lsm",
        "GRIB_name": "Land-sea mask",
        "GRIB_units": "(0 - 1)",
        "GRIB_typeOfLevel": "surface",
        "GRIB_stepType": "instant",
        **_grid_attrs(global_lat, global_lon),
    }


def orog_attrs(global_lat: np.ndarray, global_lon: np.ndarray) -> dict[str, object]:
    """Attributes of the static orography (what the sample stores is said in ``comment``)."""
    return {
        "units": "m",
        "long_name": "Orography",
        "comment": (
            "On the Earth Data Hub orog is the model's surface geopotential height (m). "
            "Stored here: the mean GLOBE 30-arc-second elevation over the cell (m, sea = 0), "
            "the height this grid's t2m lapse-rate term sees."
        ),
        "GRIB_paramId": 228002,
        "GRIB_shortName": "orog",
        "GRIB_cfVarName": "orog",
        "GRIB_name": "Orography",
        "GRIB_units": "m",
        "GRIB_typeOfLevel": "surface",
        "GRIB_stepType": "instant",
        **_grid_attrs(global_lat, global_lon),
    }


def coord_attrs() -> dict[str, dict[str, str]]:
    """CF attributes of the coordinates."""
    return {
        "latitude": {"units": "degrees_north", "standard_name": "latitude",
                     "long_name": "latitude", "stored_direction": "increasing"},
        "longitude": {"units": "degrees_east", "standard_name": "longitude",
                      "long_name": "longitude"},
        "time": {"standard_name": "time", "long_name": "time"},
    }


def global_attrs(resolution: Resolution, seed: int) -> dict[str, object]:
    """Store-level attributes: Climate DT-like identity keys plus the sample's provenance."""
    variant = "standard" if resolution == "standard" else "high-maps"
    return {
        "title": f"IFS-NEMO SSP3-7.0 hourly surface fields, {variant} (sr-edge SAMPLE)",
        "summary": SAMPLE_NOTICE,
        "Conventions": "CF-1.7",
        "dataset": "climate-dt",
        "activity": "ScenarioMIP",
        "experiment": "SSP3-7.0",
        "model": "IFS-NEMO",
        "generation": "2",
        "realization": "1",
        "resolution": resolution,
        "levtype": "sfc",
        "frequency": "hourly",
        "source": "sr_runtime.sample (sr-edge), physically motivated synthetic field",
        "terrain_source": TERRAIN_CITATION,
        "sample": "true",
        "sample_seed": int(seed),
        "history": "python -m sr_runtime.sample.builder",
    }
