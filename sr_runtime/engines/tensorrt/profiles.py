"""TensorRT optimization profiles: the input shapes an engine accepts, and how users give them.

An engine is tuned for one ``opt`` shape and accepts ``min <= shape <= max``. ``--tile`` gives a
static engine (fastest, one shape); ``--min/--opt/--max`` a dynamic one; the default accepts
the variable windows of halo tiling (any tile up to 256 x 256 LR cells, tuned for 128 x 128).
Profiles are given for the LR input ``lr``; a model with static HR inputs gets the matching
profile for ``hr_static`` (:func:`static_profile`: S channels, s times the LR height and
width), so every shape the tiler feeds fits both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from sr_runtime.errors import UsageError

if TYPE_CHECKING:
    from sr_runtime.description import ModelDescription

Shape = tuple[int, int, int, int]

DEFAULT_OPT_TILE = (128, 128)
DEFAULT_MAX_TILE = (256, 256)


def format_shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape)


@dataclass(frozen=True)
class ShapeProfile:
    """One TensorRT optimization profile for the NCHW input ``lr``: min <= opt <= max."""

    min: Shape
    opt: Shape
    max: Shape

    def __post_init__(self) -> None:
        for label in ("min", "opt", "max"):
            shape = getattr(self, label)
            if len(shape) != 4 or any(int(d) < 1 for d in shape):
                raise UsageError(f"--{label} shape {format_shape(shape)} must have four positive "
                                 "dimensions N x C x H x W")
        if not (self.min[1] == self.opt[1] == self.max[1]):
            raise UsageError("--min, --opt and --max must have the same channel count, not "
                             f"{self.min[1]}, {self.opt[1]}, {self.max[1]}")
        for axis, name in enumerate("NCHW"):
            low, mid, high = self.min[axis], self.opt[axis], self.max[axis]
            if not low <= mid <= high:
                raise UsageError(f"profile dimension {name} must satisfy min <= opt <= max, got "
                                 f"{low} / {mid} / {high} (shapes {self.describe()})")

    @property
    def is_static(self) -> bool:
        return self.min == self.opt == self.max

    @property
    def channels(self) -> int:
        return self.opt[1]

    def contains(self, shape: tuple[int, ...]) -> bool:
        return len(shape) == 4 and all(lo <= d <= hi for lo, d, hi in
                                       zip(self.min, shape, self.max, strict=True))

    def describe(self) -> str:
        if self.is_static:
            return f"static {format_shape(self.opt)}"
        return (f"min {format_shape(self.min)}, opt {format_shape(self.opt)}, "
                f"max {format_shape(self.max)}")

    def to_dict(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}

    @classmethod
    def from_dict(cls, raw: dict[str, list[int]]) -> ShapeProfile:
        return cls(*(cast(Shape, tuple(int(d) for d in raw[k])) for k in ("min", "opt", "max")))


def runtime_profile(channels: int, tile: tuple[int, int] | None = None,
                    batch: int | None = None) -> ShapeProfile:
    """The default profile: static for a given tile, else any tile up to 256 x 256 LR cells.

    A static engine (``tile``) is fastest but accepts only that shape; the dynamic default
    accepts the variable windows of halo tiling (``sr_runtime.tiling``), tuned for 128 x 128.
    """
    n = int(batch or 1)
    if tile is not None:
        shape = (n, channels, int(tile[0]), int(tile[1]))
        return ShapeProfile(shape, shape, shape)
    return ShapeProfile((1, channels, 1, 1), (n, channels, *DEFAULT_OPT_TILE),
                        (n, channels, *DEFAULT_MAX_TILE))


_DIMS = re.compile(r"\s*(\d+)(?:\s*[x,]\s*(\d+))*\s*")


def _dims(text: str) -> list[int] | None:
    """``"128,128"`` / ``"1x1x128x128"`` -> integers; None when malformed."""
    if not _DIMS.fullmatch(text.lower()):
        return None
    return [int(part) for part in re.split(r"\s*[x,]\s*", text.strip().lower())]


def parse_tile(text: str) -> tuple[int, int]:
    """``"128,128"``, ``"128x128"`` or ``"128"`` -> (H, W) in LR pixels."""
    dims = _dims(text)
    if dims is not None and len(dims) == 1:
        dims = dims * 2
    if dims is None or len(dims) != 2 or min(dims) < 1:
        raise UsageError(f"--tile {text!r} is not H,W (two positive integers, e.g. 128,128)")
    return dims[0], dims[1]


def parse_shape(text: str, channels: int, batch: int, label: str) -> Shape:
    """``"H,W"`` / ``"HxW"`` (batch from --batch, channels from the model) or ``"NxCxHxW"``."""
    dims = _dims(text) or []
    if len(dims) == 2:
        dims = [batch, channels, *dims]
    if len(dims) != 4:
        raise UsageError(f"--{label} {text!r} is not a shape: give H,W (e.g. 128,128) or "
                         f"NxCxHxW (e.g. 1x{channels}x128x128)")
    if dims[1] != channels:
        raise UsageError(f"--{label} {text!r} has {dims[1]} channels, the model takes "
                         f"{channels}; give H,W to take the model's channel count")
    return (dims[0], dims[1], dims[2], dims[3])


def resolve_profile(channels: int, tile: str | tuple[int, int] | None = None,
                    min_shape: str | None = None, opt_shape: str | None = None,
                    max_shape: str | None = None, batch: int = 1) -> ShapeProfile:
    """The optimization profile: ``--tile`` (static), ``--min/--opt/--max``, or the default
    dynamic profile (any tile up to 256 x 256, tuned for 128 x 128; see ``runtime_profile``)."""
    if batch < 1:
        raise UsageError(f"--batch must be at least 1, not {batch}")
    explicit = [s is not None for s in (min_shape, opt_shape, max_shape)]
    if any(explicit):
        if tile is not None:
            raise UsageError("give either --tile (a static engine) or --min/--opt/--max "
                             "(a dynamic one), not both")
        if min_shape is None or opt_shape is None or max_shape is None:
            raise UsageError("give --min, --opt and --max together (e.g. --min 32,32 --opt "
                             "128,128 --max 256,256)")
        return ShapeProfile(parse_shape(min_shape, channels, 1, "min"),
                            parse_shape(opt_shape, channels, batch, "opt"),
                            parse_shape(max_shape, channels, batch, "max"))
    if tile is None:
        return runtime_profile(channels, None, batch)
    return runtime_profile(channels, parse_tile(tile) if isinstance(tile, str) else tile, batch)


def static_profile(profile: ShapeProfile, channels: int, scale: int) -> ShapeProfile:
    """The ``hr_static`` profile that goes with the ``lr`` profile ``profile``: the same batch,
    ``channels`` static fields, ``scale`` x the LR height and width at min, opt and max."""
    if channels < 1 or scale < 1:
        raise UsageError(f"a static profile needs at least one channel and a positive scale, "
                         f"not {channels} and {scale}")

    def shape(lr: Shape) -> Shape:
        return (lr[0], channels, lr[2] * scale, lr[3] * scale)

    return ShapeProfile(shape(profile.min), shape(profile.opt), shape(profile.max))


def input_profiles(profile: ShapeProfile, description: ModelDescription
                   ) -> dict[str, ShapeProfile]:
    """Every input's profile by name: ``lr``, and ``hr_static`` for models with static inputs."""
    from sr_runtime.description import HR_STATIC_INPUT, LR_INPUT

    profiles = {LR_INPUT: profile}
    if description.static_inputs:
        profiles[HR_STATIC_INPUT] = static_profile(profile, len(description.static_inputs),
                                                   description.scale)
    return profiles
