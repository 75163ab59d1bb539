"""The files a result is offered as: the SR and LR data COGs and the colour-mapped RGBA COG.

Shared by the web app (download buttons) and the HTTP service (``GET /cog/...``) so both write
the same files with the same names and tags. Each is written atomically into a folder the
caller owns; the caller deletes it when the file has been handed over.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from sr_runtime.api import write_cog
from sr_runtime.errors import UsageError
from sr_runtime.render import ColourScale, scale_for, write_rgba_cog
from sr_runtime.results import Result

Kind = Literal["sr", "lr", "rgb"]
KINDS: tuple[Kind, ...] = ("sr", "lr", "rgb")


def product_name(result: Result, kind: Kind) -> str:
    """``t2m_sr_20241011T1200_K.tif``: variable, product, time, units (no region: see tags)."""
    if kind not in KINDS:
        raise UsageError(f"unknown product {kind!r}; choose one of {', '.join(KINDS)}")
    return f"{result.sr.name}_{kind}_{result.key.stamp}_{result.key.units}.tif"


def product_tags(result: Result, source_label: str) -> dict[str, str]:
    sr = result.sr
    return {"source": source_label, "model_sha256": result.key.model_sha256,
            "checkpoint_sha256": str(sr.attrs.get("sr_edge_checkpoint_sha256", "")),
            "backend": result.backend, "precision": result.precision,
            "scale": str(sr.attrs.get("sr_edge_scale", ""))}


def default_scale(result: Result) -> ColourScale:
    """The scale the app's maps use: LR, SR and truth together."""
    return scale_for(result.lr.values, result.sr.values,
                     None if result.truth is None else result.truth.values,
                     units=result.key.units)


def write_product(result: Result, kind: Kind, folder: Path, source_label: str,
                  scale: ColourScale | None = None) -> Path:
    """Write one product of ``result`` into ``folder``; returns its path."""
    out = Path(folder) / product_name(result, kind)
    tags = product_tags(result, source_label)
    scale_text = f"SR x{tags['scale']}"
    if kind == "sr":
        return write_cog(result.sr, out, {**tags, "resolution": scale_text})
    if kind == "lr":
        return write_cog(result.lr, out, {**tags, "resolution": "LR input"})
    return write_rgba_cog(result.sr, out, scale or default_scale(result),
                          {**tags, "resolution": scale_text})
