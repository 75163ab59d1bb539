"""Colour-mapped pictures of a field: the RGBA COG for web maps and story tools, map tiles.

The demo made its picture COGs by shelling out to ``gdaldem color-relief``; here the colours come
from one :class:`ColourScale` (a matplotlib colour map between two values in the field's units),
written with rasterio/rio-cogeo. The scale travels inside the file as tags (``colour_map``,
``colour_min``, ``colour_max``, ``units`` and ``colour_legend``: value -> colour stops as JSON),
so a story tool can draw the legend without guessing. Cells without a value are transparent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from sr_runtime.errors import UsageError
from sr_runtime.paths import atomic_output

DEFAULT_COLOUR_MAP = "RdYlBu_r"
#: Percentiles of the shown values that bound the default scale (outliers do not stretch it).
SCALE_PERCENTILES = (0.5, 99.5)
LEGEND_STOPS = 11


@dataclass(frozen=True)
class ColourScale:
    """Values ``vmin``..``vmax`` (in ``units``) mapped linearly onto ``colour_map``."""

    vmin: float
    vmax: float
    units: str
    colour_map: str = DEFAULT_COLOUR_MAP

    def __post_init__(self) -> None:
        if not (np.isfinite(self.vmin) and np.isfinite(self.vmax)) or self.vmin >= self.vmax:
            raise UsageError(f"a colour scale needs finite vmin < vmax, not {self.vmin:g}.."
                             f"{self.vmax:g}")
        _colour_map(self.colour_map)  # an unknown name fails here, with the valid ones

    def lut(self) -> np.ndarray:
        """(256, 4) uint8 RGBA table, index 0 at ``vmin`` and 255 at ``vmax``."""
        table = _colour_map(self.colour_map)(np.linspace(0.0, 1.0, 256))
        return np.round(table * 255).astype(np.uint8)

    def legend(self, stops: int = LEGEND_STOPS) -> list[tuple[float, str]]:
        """Evenly spaced (value, '#rrggbb') pairs from ``vmin`` to ``vmax``."""
        lut = self.lut()
        values = np.linspace(self.vmin, self.vmax, stops)
        return [(round(float(v), 3), "#{:02x}{:02x}{:02x}".format(*lut[i, :3]))
                for v, i in zip(values, self.indices(values), strict=True)]

    def indices(self, values: np.ndarray) -> np.ndarray:
        """LUT index of each value (clipped to the scale's ends)."""
        scaled = (np.asarray(values, np.float64) - self.vmin) / (self.vmax - self.vmin)
        return np.clip(np.round(np.nan_to_num(scaled) * 255), 0, 255).astype(np.uint8)

    def tags(self) -> dict[str, str]:
        return {"colour_map": self.colour_map, "colour_min": f"{self.vmin:.4f}",
                "colour_max": f"{self.vmax:.4f}", "colour_units": self.units,
                "colour_legend": json.dumps(self.legend())}

    def as_dict(self) -> dict[str, object]:
        return {"colour_map": self.colour_map, "vmin": self.vmin, "vmax": self.vmax,
                "units": self.units, "legend": self.legend()}


def _colour_map(name: str):
    from matplotlib import colormaps

    try:
        return colormaps[name]
    except KeyError:
        raise UsageError(f"unknown colour map {name!r}; use a matplotlib name such as "
                         f"{DEFAULT_COLOUR_MAP}, viridis or coolwarm") from None


def scale_for(*fields: np.ndarray | xr.DataArray | None, units: str,
              colour_map: str = DEFAULT_COLOUR_MAP) -> ColourScale:
    """One scale for all ``fields`` (the 0.5-99.5 percentiles of their finite values)."""
    values = [np.asarray(f, np.float64).ravel() for f in fields if f is not None]
    finite = np.concatenate(values) if values else np.empty(0)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        raise UsageError("no finite value to derive a colour scale from")
    vmin, vmax = (float(v) for v in np.percentile(finite, SCALE_PERCENTILES))
    if vmax - vmin < 1e-3:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    return ColourScale(round(vmin, 2), round(vmax, 2), units, colour_map)


def colourize(data: np.ndarray, scale: ColourScale) -> np.ndarray:
    """(H, W) values -> (4, H, W) uint8 RGBA; non-finite cells are fully transparent."""
    data = np.asarray(data)
    rgba = np.moveaxis(scale.lut()[scale.indices(data)], -1, 0).copy()
    rgba[3] = np.where(np.isfinite(data), 255, 0).astype(np.uint8)
    return rgba


def write_rgba_cog(field: xr.DataArray, out: str | Path, scale: ColourScale,
                   tags: dict[str, str] | None = None) -> Path:
    """Write ``field`` (latitude, longitude) as an RGBA COG with overviews, atomically."""
    import rasterio
    from rasterio.enums import ColorInterp
    from rasterio.io import MemoryFile
    from rio_cogeo.cogeo import cog_translate
    from rio_cogeo.profiles import cog_profiles

    from sr_runtime.api import to_geofield
    from sr_runtime.sinks.cog import cog_tags, field_transform, overview_levels

    geo = to_geofield(field, tags)
    height, width = geo.data.shape
    rgba = colourize(geo.data[::-1], scale)  # north-up rows
    block = 512 if min(height, width) >= 2048 else 256
    profile = {"driver": "GTiff", "dtype": "uint8", "count": 4, "height": height,
               "width": width, "crs": "EPSG:4326", "transform": field_transform(geo),
               "photometric": "RGB", "alpha": "YES"}
    dst_profile = cog_profiles.get("deflate")
    dst_profile.update(blockxsize=block, blockysize=block, zlevel=6, photometric="RGB")
    all_tags = {**cog_tags(geo), **scale.tags(), "content": "colour-mapped picture (RGBA)"}

    out = Path(out)
    with atomic_output(out, ".tif") as tmp, MemoryFile() as memory:
        with memory.open(**profile) as staging:
            staging.write(rgba)
        with memory.open() as src:
            cog_translate(src, str(tmp), dst_profile, overview_level=overview_levels(
                height, width, block), overview_resampling="nearest", in_memory=True,
                quiet=True, additional_cog_metadata=all_tags, use_cog_driver=False)
        with rasterio.open(tmp) as check:
            if check.count != 4 or check.colorinterp[3] != ColorInterp.alpha:
                raise UsageError(f"the RGBA COG {out.name} lost its alpha band; "
                                 "upgrade rasterio/rio-cogeo")
    return out

