"""Look at one result: LR | SR | HR truth side by side, and scores against the truth.

The preview uses one colour scale for all panels, a colour bar, a coastline from the land-sea
mask, latitude/longitude axes and the valid time in the title. Scores are RMSE, PSNR and SSIM
in physical units with the data range stated (HR truth max - min).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
import xarray as xr

from sr_runtime.errors import UsageError
from sr_runtime.fields import GeoField
from sr_runtime.grid import truth_cells
from sr_runtime.metrics import Scores, score
from sr_runtime.paths import atomic_output
from sr_runtime.times import as_datetime64


@dataclass
class Truth:
    """HR truth aligned with an SR raster, and the land-sea mask on that grid (if known)."""

    data: np.ndarray
    land_sea: np.ndarray | None


def read_cog_field(path: Path, time: np.datetime64, variable: str) -> GeoField:
    """The band of ``variable`` of a COG written by sr-edge (one band per variable, named by
    its description; the first band of a COG that names none) as a GeoField (ascending
    latitude)."""
    with rasterio.open(path) as cog:
        names = list(cog.descriptions)
        band = names.index(variable) + 1 if variable in names else 1
        data = cog.read(band)[::-1].astype(np.float32)
        units = cog.units[band - 1] or cog.tags().get("units", "")
        transform = cog.transform
        height, width = cog.height, cog.width
    lon = transform.c + (np.arange(width) + 0.5) * transform.a
    lat = transform.f + (np.arange(height) + 0.5) * transform.e
    return GeoField(data, lat[::-1].copy(), lon, time, variable, units)


def align_truth(truth: xr.Dataset, sr: GeoField, offset: float = 0.0) -> Truth | None:
    """The HR truth cells matching the SR grid at the SR time, or None when there is none."""
    return align_truth_grid(truth, sr.variable, sr.time, sr.latitude, sr.longitude, offset)


def align_truth_grid(truth: xr.Dataset, variable: str, time: np.datetime64,
                     latitude: np.ndarray, longitude: np.ndarray,
                     offset: float = 0.0) -> Truth | None:
    """The HR truth on the SR grid (cell centres ``latitude``/``longitude``) at ``time``, or
    None when the truth has no such variable or time. Needs only the SR grid, so it is known
    before the SR field is computed."""
    wanted = as_datetime64(time)
    if variable not in truth or wanted not in truth.time.values:
        return None
    rows = truth_cells(truth.latitude.values, latitude, "latitude")
    cols = truth_cells(truth.longitude.values, longitude, "longitude")
    if rows is None or cols is None:
        raise UsageError(f"the HR truth grid does not align with the SR output "
                         f"{latitude.size}x{longitude.size} in this region; use the "
                         "matching high-resolution store")
    window = truth.isel(latitude=rows, longitude=cols)
    data = window[variable].sel(time=wanted).values.astype(np.float32)
    land_sea = window["lsm"].values.astype(np.float32) if "lsm" in window else None
    return Truth(data + np.float32(offset), land_sea)


def report_scores(sr: GeoField, truth: Truth) -> Scores:
    return score(sr.data, truth.data, float(truth.data.max() - truth.data.min()))


def render_preview(out: Path, lr: GeoField, sr: GeoField, truth: Truth | None,
                   land_sea: np.ndarray | None = None) -> Path:
    """Write the LR | SR | HR quick-look PNG (temporary name, renamed when complete)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    panels = [("LR input", lr), ("SR (sr-edge)", sr)]
    if truth is not None:
        panels.append(("HR truth", GeoField(truth.data, sr.latitude, sr.longitude, sr.time,
                                            sr.variable, sr.units)))
    values = np.concatenate([p.data[np.isfinite(p.data)].ravel() for _, p in panels])
    vmin, vmax = np.percentile(values, [0.5, 99.5])
    mask = truth.land_sea if truth is not None and truth.land_sea is not None else land_sea
    figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels) + 1, 4.4),
                                constrained_layout=True, squeeze=False)
    for axis, (title, panel) in zip(axes[0], panels, strict=True):
        (dlat, dlon) = panel.resolution
        extent = (panel.longitude[0] - dlon / 2, panel.longitude[-1] + dlon / 2,
                  panel.latitude[0] - dlat / 2, panel.latitude[-1] + dlat / 2)
        image = axis.imshow(panel.data, origin="lower", extent=extent, cmap="RdYlBu_r",
                            vmin=vmin, vmax=vmax, interpolation="nearest")
        if mask is not None and mask.shape == sr.data.shape:
            axis.contour(sr.longitude, sr.latitude, mask, levels=[0.5], colors="black",
                         linewidths=0.6)
        axis.set_title(f"{title} {panel.data.shape[0]}x{panel.data.shape[1]}")
        axis.set_xlabel("longitude (deg E)")
        axis.set_ylabel("latitude (deg N)")
    figure.colorbar(image, ax=axes[0].tolist(), shrink=0.85, label=f"{sr.variable} ({sr.units})")
    when = pd.Timestamp(sr.time).strftime("%Y-%m-%d %H:%M UTC")
    figure.suptitle(f"{sr.variable} {when}")

    try:
        with atomic_output(out, ".png") as tmp:
            figure.savefig(tmp, dpi=100, format="png")
    finally:
        plt.close(figure)
    return out
