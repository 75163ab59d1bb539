"""NetCDF writer (``--out x.nc``): one step per file, CF-1.8 attributes, xarray + scipy.

netCDF-3 (64-bit offsets) through scipy needs no HDF5 library; the attributes make the file
self-explaining to CF tools: ``standard_name``/``units``/``long_name`` on the variable,
latitude/longitude coordinate attributes and a ``crs`` grid mapping (WGS 84 lat/lon, the
EPSG:4326 WKT). The provenance and settings tags go to the global attributes. Written to a
temporary name and renamed when complete.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np

from sr_runtime.errors import EngineUnavailableError
from sr_runtime.fields import GeoField, as_fields
from sr_runtime.paths import atomic_output

if TYPE_CHECKING:
    import xarray as xr

NETCDF_ENGINE: Final = "scipy"
#: CF names of the variables sr-edge knows (ECMWF short name -> standard_name, long_name)
CF_NAMES = {"t2m": ("air_temperature", "2 metre temperature"),
            "d2m": ("dew_point_temperature", "2 metre dewpoint temperature")}


def _wgs84_wkt() -> str:
    from rasterio.crs import CRS

    return CRS.from_epsg(4326).to_wkt()


def _cf_variable(field: GeoField) -> tuple[tuple[str, ...], np.ndarray, dict[str, str]]:
    standard, long_name = CF_NAMES.get(field.variable, (None, field.variable))
    attrs = {"units": field.units, "long_name": long_name, "grid_mapping": "crs"}
    if standard:
        attrs["standard_name"] = standard
    return ("time", "latitude", "longitude"), np.asarray(field.data, dtype=np.float32)[None], (
        attrs)


def netcdf_dataset(field: GeoField | Sequence[GeoField]) -> xr.Dataset:
    """``field`` (or every variable of a step) as a CF-described xarray Dataset (time,
    latitude, longitude), one data variable per field."""
    import xarray as xr

    from sr_runtime.times import as_datetime64

    fields = as_fields(field)
    field = fields[0]
    ds = xr.Dataset(
        {**{each.variable: _cf_variable(each) for each in fields},
         "crs": ((), np.int32(0), {"grid_mapping_name": "latitude_longitude",
                                   "semi_major_axis": 6378137.0,
                                   "inverse_flattening": 298.257223563,
                                   "crs_wkt": _wgs84_wkt()})},
        coords={"time": [as_datetime64(field.time)],
                "latitude": np.asarray(field.latitude, dtype=np.float64),
                "longitude": np.asarray(field.longitude, dtype=np.float64)})
    ds.time.attrs.update(standard_name="time", axis="T")
    ds.latitude.attrs.update(units="degrees_north", standard_name="latitude",
                             long_name="latitude", axis="Y")
    ds.longitude.attrs.update(units="degrees_east", standard_name="longitude",
                              long_name="longitude", axis="X")
    ds.attrs.update({"Conventions": "CF-1.8",
                     "title": f"{', '.join(f.variable for f in fields)} super-resolved by "
                              "sr-edge",
                     **{k: str(v) for k, v in field.tags.items()}})
    for each in fields:
        ds[each.variable].encoding.update(_FillValue=np.float32(np.nan))
    ds.time.encoding.update(units="hours since 1970-01-01 00:00:00", _FillValue=None,
                            calendar="proleptic_gregorian", dtype="float64")
    return ds


def require_netcdf() -> None:
    try:
        import scipy.io  # noqa: F401
    except ImportError:
        raise EngineUnavailableError("--out *.nc needs scipy to write NetCDF: pip install scipy"
                                     ) from None


def write_netcdf(field: GeoField | Sequence[GeoField], out: Path) -> Path:
    """Write ``field`` as NetCDF at ``out``; nothing appears at ``out`` unless it is complete."""
    require_netcdf()
    out = Path(out)
    ds = netcdf_dataset(field)
    with atomic_output(out, ".nc") as tmp:
        ds.to_netcdf(tmp, engine=NETCDF_ENGINE, format="NETCDF3_64BIT")
    return out


def read_netcdf_attrs(path: Path) -> dict[str, str]:
    import xarray as xr

    with xr.open_dataset(path, engine=NETCDF_ENGINE) as ds:
        return {str(k): str(v) for k, v in ds.attrs.items()}
