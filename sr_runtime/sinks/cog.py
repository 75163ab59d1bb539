"""Cloud-Optimized GeoTIFF writer (rasterio, GDAL's COG driver): float32 values, not pictures.

EPSG:4326, north-up, pixel-is-area transform derived from the cell centres, NaN nodata,
internal tiles, overviews (averaged), DEFLATE with the floating-point predictor, one band per
variable (band description = variable name, band unit, band tags ``variable``/``units``), and
tags that say what the values are and where they came from (``variable``: the names, comma
separated, in band order). Written to a temporary name and renamed when complete.

GDAL's own COG driver lays the file out (rio-cogeo validates it in the tests): the same layout
rio-cogeo's ``cog_translate`` produces, without importing rio-cogeo and its tile-matrix stack
(morecantile, pyproj) at every ``sr-run`` start.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
from rasterio.transform import from_origin

from sr_runtime.fields import GeoField, as_fields
from sr_runtime.grid import grid_step
from sr_runtime.paths import atomic_output


def field_transform(field: GeoField) -> rasterio.Affine:
    """Affine of the north-west corner of the north-west cell (pixel-is-area)."""
    dlat = grid_step(field.latitude, "latitude")
    dlon = grid_step(field.longitude, "longitude")
    west = float(field.longitude[0]) - dlon / 2
    north = float(field.latitude[-1]) + dlat / 2
    return from_origin(west, north, dlon, dlat)


def cog_tags(field: GeoField | Sequence[GeoField]) -> dict[str, str]:
    fields = as_fields(field)
    first = fields[0]
    valid_time = pd.Timestamp(first.time).strftime("%Y-%m-%dT%H:%M:%SZ")
    units = list(dict.fromkeys(f.units for f in fields))
    return {"variable": ",".join(f.variable for f in fields), "units": ",".join(units),
            "valid_time": valid_time, **first.tags}


def overview_levels(height: int, width: int, block: int) -> int:
    """Halvings until the raster fits one tile; at least one, so viewers always get a preview."""
    levels, size = 0, max(height, width)
    while size > block:
        size, levels = size // 2, levels + 1
    return max(levels, 1) if min(height, width) >= 2 else 0


def write_cog(field: GeoField | Sequence[GeoField], out: Path,
              blocksize: int | None = None) -> Path:
    """Write ``field`` (or one band per field of a step) as a COG at ``out``; nothing appears at
    ``out`` unless it is complete."""
    out = Path(out)
    fields = as_fields(field)
    field = fields[0]
    height, width = field.data.shape
    block = blocksize or (512 if min(height, width) >= 2048 else 128)
    levels = overview_levels(height, width, block)
    profile = {
        "driver": "COG", "dtype": "float32", "count": len(fields), "height": height,
        "width": width,
        "crs": "EPSG:4326", "transform": field_transform(field), "nodata": float("nan"),
        "BLOCKSIZE": block, "COMPRESS": "DEFLATE", "PREDICTOR": "FLOATING_POINT", "LEVEL": 6,
        "OVERVIEW_RESAMPLING": "AVERAGE",
        **({"OVERVIEW_COUNT": levels} if levels else {"OVERVIEWS": "NONE"}),
    }
    with atomic_output(out, ".tif") as tmp_name, rasterio.open(tmp_name, "w", **profile) as cog:
        for band, each in enumerate(fields, 1):
            cog.write(np.ascontiguousarray(each.data[::-1], dtype=np.float32), band)
            cog.set_band_description(band, each.variable)
            cog.set_band_unit(band, each.units)
            cog.update_tags(band, variable=each.variable, units=each.units)
        cog.update_tags(**cog_tags(fields))
    return out
