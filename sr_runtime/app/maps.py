"""The app's maps: LR | SR | HR truth on one colour scale, as a matplotlib figure.

Each panel has latitude/longitude axes in degrees with the aspect of a degree at the panel's
latitude (1 / cos(latitude)), the coastline drawn from the land-sea mask (offline, nothing
fetched), and the figure has one colour bar with the units and the valid time in its title.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from sr_runtime.products import default_scale
from sr_runtime.results import Result

LONG_NAMES = {"t2m": "2 m temperature", "d2m": "2 m dew point"}


def _extent(field: xr.DataArray) -> tuple[float, float, float, float]:
    lat = np.asarray(field.latitude.values, np.float64)
    lon = np.asarray(field.longitude.values, np.float64)
    dlat, dlon = float(np.diff(lat).mean()), float(np.diff(lon).mean())
    return (lon[0] - dlon / 2, lon[-1] + dlon / 2, lat[0] - dlat / 2, lat[-1] + dlat / 2)


def figure_for(result: Result, time_label: str):
    """A matplotlib Figure (not attached to pyplot, so threads never share state)."""
    from matplotlib.figure import Figure

    panels = [(f"LR input {result.lr.shape[0]}x{result.lr.shape[1]}", result.lr),
              (f"SR x{result.sr.attrs.get('sr_edge_scale', '')} "
               f"{result.sr.shape[0]}x{result.sr.shape[1]}", result.sr)]
    if result.truth is not None:
        panels.append((f"HR truth {result.truth.shape[0]}x{result.truth.shape[1]}",
                       result.truth))
    scale = default_scale(result)
    mid_lat = float(np.mean(result.sr.latitude.values))
    aspect = 1.0 / max(np.cos(np.radians(mid_lat)), 0.05)
    figure = Figure(figsize=(4.6 * len(panels) + 1.2, 5.4), dpi=100, layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    image = None
    for axis, (title, field) in zip(axes, panels, strict=True):
        image = axis.imshow(np.asarray(field.values), origin="lower", extent=_extent(field),
                            cmap=scale.colour_map, vmin=scale.vmin, vmax=scale.vmax,
                            interpolation="nearest", aspect=aspect)
        if result.land_sea is not None and result.land_sea.shape == result.sr.shape and \
                np.nanmin(result.land_sea) < 0.5 < np.nanmax(result.land_sea):
            axis.contour(result.sr.longitude.values, result.sr.latitude.values,
                         result.land_sea, levels=[0.5], colors="black", linewidths=0.7)
        axis.set_title(title)
        axis.set_xlabel("longitude (°E)")
        axis.set_ylabel("latitude (°N)")
    name = str(result.sr.name)
    if image is None:
        raise ValueError("no field to draw")
    figure.colorbar(image, ax=list(axes), shrink=0.8,
                    label=f"{LONG_NAMES.get(name, name)} ({result.key.units})")
    note = "" if result.truth is not None else " (no HR truth at this time)"
    figure.suptitle(f"{name} {time_label}{note}")
    return figure


def figure_png(result: Result, time_label: str) -> bytes:
    """The figure as PNG bytes."""
    import io

    buffer = io.BytesIO()
    figure_for(result, time_label).savefig(buffer, format="png")
    return buffer.getvalue()
