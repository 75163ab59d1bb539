"""Web-map tiles (``/tiles/{z}/{x}/{y}.png``) of a super-resolved field, with rio-tiler.

The SR field is held as its float32 data COG in memory; each tile opens it afresh (rasterio
datasets are not shared between threads), reads the Web Mercator tile, and colours the values with
the request's :class:`~sr_runtime.render.ColourScale` exactly as the RGBA COG is coloured
(:func:`~sr_runtime.render.colourize`), cells outside the field transparent.
"""

from __future__ import annotations

import numpy as np
from rasterio.crs import CRS
from rasterio.io import MemoryFile
from rio_tiler.errors import TileOutsideBounds
from rio_tiler.io import Reader
from rio_tiler.utils import render

from sr_runtime.errors import UsageError
from sr_runtime.render import ColourScale, colourize
from sr_runtime.results import NotInCubeError

TILE_SIZE = 256
MAX_ZOOM = 18
WGS84 = CRS.from_epsg(4326)


def render_tile(cog: bytes, z: int, x: int, y: int, scale: ColourScale) -> bytes:
    """PNG bytes of tile z/x/y of the data COG ``cog`` coloured with ``scale``."""
    if not 0 <= z <= MAX_ZOOM or not (0 <= x < 2**z and 0 <= y < 2**z):
        raise UsageError(f"tile {z}/{x}/{y} does not exist: need 0 <= z <= {MAX_ZOOM} and "
                         f"0 <= x, y < 2**z")
    with MemoryFile(cog) as memory, memory.open() as dataset, \
            Reader(None, dataset=dataset) as reader:
        try:
            image = reader.tile(x, y, z, tilesize=TILE_SIZE, resampling_method="bilinear")
        except TileOutsideBounds:
            raise NotInCubeError(f"tile {z}/{x}/{y} lies outside the field, which covers "
                                 f"{_bounds(reader.get_geographic_bounds(WGS84))}") from None
    values = np.ma.filled(image.array[0].astype(np.float64), np.nan)
    rgba = colourize(values, scale)
    return render(rgba[:3], mask=rgba[3], img_format="PNG")


def geographic_bounds(cog: bytes) -> tuple[float, float, float, float]:
    with MemoryFile(cog) as memory, memory.open() as dataset, \
            Reader(None, dataset=dataset) as reader:
        west, south, east, north = reader.get_geographic_bounds(WGS84)
        return float(west), float(south), float(east), float(north)


def _bounds(box: tuple[float, ...]) -> str:
    return "W,S,E,N " + ",".join(f"{v:.3f}" for v in box)
