"""SRResNet (Ledig et al. 2017) with the ESA demo's hyper-parameters as options.

Module and parameter names follow the demo's layout so that its state dicts load unchanged:
``conv_block1.conv_block.0`` (9x9 conv), ``residual_blocks.N.conv_block{1,2}.conv_block.{0,1,2}``,
``conv_block2``, ``subpixel_convolutional_blocks.N.{conv,prelu}``, ``conv_block3.conv_block.0``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from sr_runtime.clock import CLOCK_FEATURES

OUTPUT_ACTIVATIONS = ("none", "relu")
UPSAMPLE_SKIPS = ("none", "bicubic")
CONSERVATIONS = ("none", "block_mean")
#: Channels the static encoder summarizes each LR cell's s x s static sub-grid into.
STATIC_FEATURES = 16
#: Width and dilations of the HR terrain network (:class:`TerrainNet`): 3x3 convs dilated
#: 1, 2 and 4 see +-7 HR cells (~30 km), the scale of the ridges around an Alpine valley.
TERRAIN_WIDTH = 16
TERRAIN_DILATIONS = (1, 2, 4)
#: Surroundings (LR cells either side) that a relative static field is measured against.
RELATIVE_RADIUS_LR = 2
#: A Gaussian of sigma s HR cells is cut at this many sigmas (kernel radius ceil(3 s)).
SCALE_TRUNCATE = 3.0


@dataclass(frozen=True)
class SRResNetConfig:
    """Architecture options. The demo's network is the default except ``output_activation``."""

    large_kernel_size: int = 9
    small_kernel_size: int = 3
    n_channels: int = 64
    n_blocks: int = 16
    scaling_factor: int = 8
    in_channels: int = 1
    out_channels: int = 1
    output_activation: str = "none"
    #: "bicubic" adds the bicubic upsampling of the input to the output, so the network learns
    #: only the detail interpolation misses (the demo has "none").
    upsample_skip: str = "none"
    #: Static HR fields (orography, land-sea mask) taken as a second input; 0: LR only (demo).
    static_channels: int = 0
    #: "block_mean" makes every s x s block mean of the output equal its LR input cell
    #: (:func:`conserve_block_means`, applied in physical units by :class:`PhysicalUnitsSR`).
    conservation: str = "none"
    #: Terrain features a small HR network derives from the static fields (valley floors,
    #: ridges, coasts), each multiplied by a weather-dependent coefficient of the terrain head,
    #: as the block anomalies are; 0: the anomalies alone.
    terrain_features: int = 0
    #: Static channels the network sees relative to their surroundings (heights above the mean
    #: of the 5 x 5 LR cells around, not absolute heights), so that terrain higher than any
    #: seen in training looks like terrain it knows; the block anomalies are unchanged.
    relative_static: tuple[int, ...] = ()
    #: Gaussian sigmas (HR cells) of a terrain pyramid the terrain network also sees: each
    #: static field minus its smoothing at each scale (a topographic position index: valley
    #: floors and basins below their surroundings, land near the sea), since cold pools, basins
    #: and sea breezes reach further than the terrain network's +-7 cells; (): none.
    terrain_scales: tuple[float, ...] = ()
    #: Clock channels (:data:`sr_runtime.clock.CLOCK_FEATURES`: local solar hour and season,
    #: sin/cos) after the LR variables in the input, not normalized; 0: none (demo).
    clock_channels: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "relative_static", tuple(int(i) for i in self.relative_static))
        object.__setattr__(self, "terrain_scales",
                           tuple(float(v) for v in self.terrain_scales))
        if self.terrain_scales and not self.terrain_features:
            raise ValueError("terrain_scales feed the terrain network: give terrain_features "
                             "> 0 too")
        if any(not v > 0 for v in self.terrain_scales):
            raise ValueError(f"terrain_scales must be positive sigmas in HR cells, not "
                             f"{list(self.terrain_scales)}")
        if any(not 0 <= i < self.static_channels for i in self.relative_static):
            raise ValueError(f"relative_static {list(self.relative_static)} must index the "
                             f"{self.static_channels} static channels")
        if self.upsample_skip not in UPSAMPLE_SKIPS:
            raise ValueError(f"upsample_skip must be one of {UPSAMPLE_SKIPS}, "
                             f"not {self.upsample_skip!r}")
        if self.scaling_factor not in (2, 4, 8):
            raise ValueError(f"scaling_factor must be 2, 4 or 8, not {self.scaling_factor}")
        if self.upsample_skip != "none" and self.in_channels != self.out_channels:
            raise ValueError("upsample_skip needs as many input as output channels")
        if self.conservation not in CONSERVATIONS:
            raise ValueError(f"conservation must be one of {CONSERVATIONS}, "
                             f"not {self.conservation!r}")
        if self.conservation != "none" and self.in_channels != self.out_channels:
            raise ValueError("conservation needs as many input as output channels")
        if self.static_channels < 0:
            raise ValueError(f"static_channels must be >= 0, not {self.static_channels}")
        if self.clock_channels not in (0, len(CLOCK_FEATURES)):
            raise ValueError(f"clock_channels must be 0 or {len(CLOCK_FEATURES)}, "
                             f"not {self.clock_channels}")
        if self.terrain_features < 0 or (self.terrain_features and not self.static_channels):
            raise ValueError("terrain_features needs static fields (static_channels > 0) and "
                             f"must be >= 0, not {self.terrain_features}")
        if self.output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(
                f"output_activation must be one of {OUTPUT_ACTIVATIONS}, "
                f"not {self.output_activation!r}"
            )
        for name in ("large_kernel_size", "small_kernel_size"):
            if getattr(self, name) % 2 != 1:
                raise ValueError(f"{name} must be odd, not {getattr(self, name)}")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> SRResNetConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    @property
    def n_upsample_blocks(self) -> int:
        return int(math.log2(self.scaling_factor))

    def receptive_radius_lr(self) -> float:
        """Receptive-field radius in LR pixels: how far an output pixel 'sees' into the input.

        Convs at LR scale add ``k // 2`` LR pixels; a conv after the j-th x2 upsampling adds
        ``k // 2 / 2**j``. Used as the tiling halo so that tiled output equals whole-field output.
        """
        large, small = self.large_kernel_size // 2, self.small_kernel_size // 2
        radius = float(large + 2 * small * self.n_blocks + small)
        for j in range(self.n_upsample_blocks):
            radius += small / 2**j
        radius += large / self.scaling_factor
        if self.terrain_features:  # the pyramid, the terrain net, then the 3x3 terrain head
            reach = sum(TERRAIN_DILATIONS) + small + max(
                (scale_radius(v) for v in self.terrain_scales), default=0)
            radius = max(radius, reach / self.scaling_factor)
        if self.relative_static:  # static inputs are first measured against their surroundings
            radius += RELATIVE_RADIUS_LR
        return max(radius, 2.0) if self.upsample_skip == "bicubic" else radius  # 4-tap cubic

    def halo_lr(self) -> int:
        return math.ceil(self.receptive_radius_lr())

    def flops_per_lr_pixel(self) -> int:
        """Multiply-adds x2 per LR input pixel (BatchNorm folded), for GFLOP/s reporting."""
        c, k2s, k2l = self.n_channels, self.small_kernel_size**2, self.large_kernel_size**2
        s2 = self.scaling_factor ** 2
        head_in = self.in_channels + self.clock_channels + (
            STATIC_FEATURES if self.static_channels else 0)
        flops = head_in * c * k2l
        if self.static_channels:  # encoder at LR, terrain head (3x3, c -> C*S) at HR
            flops += self.static_channels * s2 * STATIC_FEATURES
            features = self.static_channels + self.terrain_features
            flops += s2 * c * self.out_channels * features * k2s
            if self.terrain_features:
                width = TERRAIN_WIDTH
                pyramid = len(self.terrain_scales) * self.static_channels
                flops += s2 * sum(2 * (2 * scale_radius(v) + 1) * (self.static_channels + 1)
                                  for v in self.terrain_scales)
                flops += s2 * ((2 * self.static_channels + pyramid) * width * k2s
                               + (len(TERRAIN_DILATIONS) - 1) * width * width * k2s
                               + width * self.terrain_features)
        flops += (2 * self.n_blocks + 1) * c * c * k2s
        area = 1
        for _ in range(self.n_upsample_blocks):
            flops += area * c * 4 * c * k2s
            area *= 4
        flops += area * c * self.out_channels * k2l
        return 2 * flops


class ConvBlock(nn.Module):
    """conv -> optional BatchNorm -> optional activation, as ``self.conv_block`` (demo layout)."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, batch_norm: bool, activation: str | None
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(c_out))
        if activation == "prelu":
            layers.append(nn.PReLU())
        elif activation == "relu":
            layers.append(nn.ReLU())
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_block(x)


class ResidualBlock(nn.Module):
    def __init__(self, kernel: int, channels: int) -> None:
        super().__init__()
        self.conv_block1 = ConvBlock(channels, channels, kernel, True, "prelu")
        self.conv_block2 = ConvBlock(channels, channels, kernel, True, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block2(self.conv_block1(x))


class SubPixelBlock(nn.Module):
    """conv (C -> 4C) -> PixelShuffle(2) -> PReLU: one x2 upsampling."""

    def __init__(self, kernel: int, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * 4, kernel, padding=kernel // 2)
        self.pixel_shuffle = nn.PixelShuffle(2)
        self.prelu = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.prelu(self.pixel_shuffle(self.conv(x)))


def block_anomaly(static: torch.Tensor, scale: int) -> torch.Tensor:
    """Each static HR cell minus the mean of its s x s block: the sub-grid terrain detail that
    one LR cell cannot see. Block-local, so halo tiles give the same values as the whole field."""
    means = nn.functional.avg_pool2d(static, scale)
    return static - nn.functional.interpolate(means, scale_factor=scale, mode="nearest")


def relative_to_surroundings(static: torch.Tensor, scale: int,
                             radius: int = RELATIVE_RADIUS_LR) -> torch.Tensor:
    """Each static HR cell minus the mean of the (2 radius + 1)^2 LR blocks around its own
    (edges: the blocks that exist). Constant per block, so block anomalies are unchanged, and
    block-aligned, so halo tiles give the whole field's values."""
    means = nn.functional.avg_pool2d(static, scale)
    around = nn.functional.avg_pool2d(means, 2 * radius + 1, stride=1, padding=radius,
                                      count_include_pad=False)
    return static - nn.functional.interpolate(around, scale_factor=scale, mode="nearest")


def scale_radius(sigma: float) -> int:
    """Kernel radius (HR cells) of a terrain-pyramid Gaussian of ``sigma`` HR cells."""
    return max(1, math.ceil(SCALE_TRUNCATE * sigma))


class TerrainPyramid(nn.Module):
    """Each static field minus its Gaussian smoothing at each scale: (N, S * len(scales), H, W).

    Separable fixed-weight convs (grouped, so every engine runs them as plain Conv nodes); the
    smoothing is normalized by that of a field of ones, so the edge of a field averages only
    the cells that exist, and a tile with enough halo gives the whole field's values.
    """

    def __init__(self, scales: tuple[float, ...]) -> None:
        super().__init__()
        self.radii = [scale_radius(v) for v in scales]
        for i, (sigma, radius) in enumerate(zip(scales, self.radii, strict=True)):
            offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
            kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
            self.register_buffer(f"kernel{i}", (kernel / kernel.sum()).float())

    def _smooth(self, x: torch.Tensor, kernel: torch.Tensor, radius: int) -> torch.Tensor:
        c = x.shape[1]
        rows = kernel.reshape(1, 1, -1, 1).expand(c, 1, -1, 1)
        cols = kernel.reshape(1, 1, 1, -1).expand(c, 1, 1, -1)
        x = nn.functional.conv2d(x, rows, padding=(radius, 0), groups=c)
        return nn.functional.conv2d(x, cols, padding=(0, radius), groups=c)

    def forward(self, static: torch.Tensor) -> torch.Tensor:
        ones = torch.ones_like(static[:, :1])
        out = []
        for i, radius in enumerate(self.radii):
            kernel = getattr(self, f"kernel{i}")
            smoothed = self._smooth(static, kernel, radius) / self._smooth(ones, kernel, radius)
            out.append(static - smoothed)
        return torch.cat(out, dim=1)


def conserve_block_means(hr: torch.Tensor, lr: torch.Tensor, scale: int) -> torch.Tensor:
    """``hr`` shifted per s x s block so that each block mean equals its LR cell exactly
    (same units for both). A block mean of the correction is the correction itself, so the
    result's block means are ``lr`` up to float rounding."""
    correction = lr - nn.functional.avg_pool2d(hr, scale)
    return hr + nn.functional.interpolate(correction, scale_factor=scale, mode="nearest")


class TerrainNet(nn.Module):
    """Terrain features at HR from the static fields and their block anomalies.

    What the sample's (and a climate model's) fine-scale temperature follows besides height is
    the terrain's shape: valley floors that pool cold air at night, ridges, basins, the coast.
    These are local but not block-local; three dilated 3x3 convs find them. Their values depend
    on terrain only, so the terrain head's coefficients carry the weather (hour, cloud, season).
    """

    def __init__(self, static_channels: int, features: int,
                 scales: tuple[float, ...] = ()) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = (2 + len(scales)) * static_channels
        self.pyramid = TerrainPyramid(scales) if scales else None
        for dilation in TERRAIN_DILATIONS:
            layers += [nn.Conv2d(c_in, TERRAIN_WIDTH, 3, padding=dilation, dilation=dilation),
                       nn.PReLU()]
            c_in = TERRAIN_WIDTH
        layers.append(nn.Conv2d(c_in, features, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, seen: torch.Tensor, anomaly: torch.Tensor,
                static: torch.Tensor | None = None) -> torch.Tensor:
        """``seen``: the static fields as the network sees them (absolute or relative);
        ``static``: as given, for the pyramid (differences, so blind to height anyway)."""
        inputs = [seen, anomaly]
        if self.pyramid is not None:
            inputs.append(self.pyramid(seen if static is None else static))
        return self.layers(torch.cat(inputs, dim=1))


class TerrainTerms(nn.Module):
    """``out`` plus, per variable, each terrain field times its coefficient: the terrain head's
    output (N, K * O, H, W, field-major) against the K terrain fields (N, K, H, W). A module of
    its own so that export can swap in :class:`sr_export.rewrites.TerrainTermsAtOnce`."""

    def forward(self, out: torch.Tensor, coefficients: torch.Tensor,
                terrain: torch.Tensor) -> torch.Tensor:
        n_out = out.shape[1]
        for k in range(terrain.shape[1]):
            out = out + coefficients[:, k * n_out:(k + 1) * n_out] * terrain[:, k:k + 1]
        return out


class SRResNet(nn.Module):
    """Maps normalized LR fields (N, C_in, h, w), and with ``static_channels`` normalized static
    HR fields (N, S, s*h, s*w), to normalized HR fields (N, C_out, s*h, s*w).

    Static fields enter twice. At LR, each cell's s x s static sub-grid (pixel-unshuffled) is
    summarized by a 1x1 encoder into :data:`STATIC_FEATURES` channels beside the LR variables,
    so the trunk knows the terrain the LR cell hides. At HR, a 3x3 terrain head predicts, per HR
    cell and variable, one coefficient per static field, multiplied by that field's block anomaly
    (:func:`block_anomaly`): a lapse rate, or a coastal contrast, that the network infers from
    the weather around it instead of memorizing one region's terrain. With
    ``terrain_features``, a :class:`TerrainNet` adds learned terrain features (valley floors,
    ridges, coasts) beside the anomalies, each with its own coefficient.
    """

    def __init__(self, config: SRResNetConfig | None = None) -> None:
        super().__init__()
        self.config = config or SRResNetConfig()
        cfg = self.config
        c = cfg.n_channels
        head_in = cfg.in_channels + cfg.clock_channels + (
            STATIC_FEATURES if cfg.static_channels else 0)
        if cfg.static_channels:
            self.static_encoder = nn.Sequential(
                nn.PixelUnshuffle(cfg.scaling_factor),
                nn.Conv2d(cfg.static_channels * cfg.scaling_factor ** 2, STATIC_FEATURES, 1),
                nn.PReLU())
        self.conv_block1 = ConvBlock(head_in, c, cfg.large_kernel_size, False, "prelu")
        self.residual_blocks = nn.Sequential(
            *[ResidualBlock(cfg.small_kernel_size, c) for _ in range(cfg.n_blocks)]
        )
        self.conv_block2 = ConvBlock(c, c, cfg.small_kernel_size, True, None)
        self.subpixel_convolutional_blocks = nn.Sequential(
            *[SubPixelBlock(cfg.small_kernel_size, c) for _ in range(cfg.n_upsample_blocks)]
        )
        activation = "relu" if cfg.output_activation == "relu" else None
        self.conv_block3 = ConvBlock(c, cfg.out_channels, cfg.large_kernel_size, False, activation)
        if cfg.static_channels:
            self.terrain_head = nn.Conv2d(
                c, cfg.out_channels * (cfg.static_channels + cfg.terrain_features),
                cfg.small_kernel_size, padding=cfg.small_kernel_size // 2)
            self.terrain_terms = TerrainTerms()
        if cfg.terrain_features:
            self.terrain_net = TerrainNet(cfg.static_channels, cfg.terrain_features,
                                          cfg.terrain_scales)

    def forward(self, lr: torch.Tensor, static: torch.Tensor | None = None) -> torch.Tensor:
        cfg = self.config
        seen = static
        if cfg.static_channels:
            if static is None:
                raise ValueError("this network takes static HR fields as a second input")
            if cfg.relative_static:
                relative = relative_to_surroundings(static, cfg.scaling_factor)
                seen = torch.cat([relative[:, k:k + 1] if k in cfg.relative_static
                                  else static[:, k:k + 1] for k in range(cfg.static_channels)],
                                 dim=1)
            head_in = torch.cat([lr, self.static_encoder(seen)], dim=1)
        else:
            head_in = lr
        features = self.conv_block1(head_in)
        out = self.conv_block2(self.residual_blocks(features)) + features
        hr_features = self.subpixel_convolutional_blocks(out)
        out = self.conv_block3(hr_features)
        if cfg.static_channels:
            assert static is not None and seen is not None
            coefficients = self.terrain_head(hr_features)
            anomaly = block_anomaly(static, cfg.scaling_factor)
            terrain = anomaly
            if cfg.terrain_features:
                terrain = torch.cat([anomaly, self.terrain_net(seen, anomaly, static)], dim=1)
            out = self.terrain_terms(out, coefficients, terrain)
        if cfg.upsample_skip == "bicubic":
            variables = lr[:, :cfg.in_channels] if cfg.clock_channels else lr
            out = out + nn.functional.interpolate(variables, scale_factor=cfg.scaling_factor,
                                                  mode="bicubic", align_corners=False)
        return out


def cap_dew_points(hr: torch.Tensor, pairs: list[tuple[int, int]]) -> torch.Tensor:
    """``hr`` (N, C, H, W, physical units) with each dew-point channel capped at its air
    temperature channel (``pairs``: (dew, air) indices): the network, trained on each variable
    alone, can put the dew point a little above the temperature where air is near saturation
    (1-3 % of cells, up to ~2 K, for the shipped model), which is not physical. One Min per
    pair: exact and cell-wise, so tiles and every engine keep it."""
    channels = list(hr.unbind(dim=1))
    for dew, air in pairs:
        channels[dew] = torch.minimum(channels[dew], channels[air])
    return torch.stack(channels, dim=1)


def conserve_with_dew_points(hr: torch.Tensor, lr: torch.Tensor, scale: int,
                             pairs: list[tuple[int, int]]) -> torch.Tensor:
    """:func:`conserve_block_means` that also keeps each dew point at or below its air
    temperature (a cap after it would break the dew point's block means).

    The air temperature is conserved as before; the dew point is rebuilt from its depression
    (air minus dew point), made non-negative and then given the LR cell's depression as its
    block mean: by a constant shift where the block's mean is too low (adding keeps it >= 0),
    by scaling where it is too high (a factor in [0, 1) keeps it >= 0), after the
    positivity-preserving constraint layers of Harder et al. (2023, JMLR, "Hard-constrained
    deep learning for climate downscaling"). Both block means are then exact, except where
    the LR cell's own dew point is above its temperature (not physical): that block is
    saturated (its dew point's mean is the temperature's), so the output stays physical."""
    out = conserve_block_means(hr, lr, scale)
    channels = list(out.unbind(dim=1))
    for dew, air in pairs:
        depression = torch.relu(channels[air] - channels[dew]).unsqueeze(1)
        target = torch.relu(lr[:, air] - lr[:, dew]).unsqueeze(1)  # saturated at most
        mean = nn.functional.avg_pool2d(depression, scale)
        shift = target - mean
        ratio = target / torch.where(mean > 0, mean, torch.ones_like(mean))
        scale_it = (shift < 0) & (mean > 0)
        up = nn.functional.interpolate
        kept = torch.where(up(scale_it.float(), scale_factor=scale, mode="nearest") > 0.5,
                           depression * up(ratio, scale_factor=scale, mode="nearest"),
                           depression + up(shift, scale_factor=scale, mode="nearest"))
        channels[dew] = channels[air] - kept[:, 0]
    return torch.stack(channels, dim=1)


class PhysicalUnitsSR(nn.Module):
    """The exported graph: physical LR fields (and static HR fields) in, physical HR fields out.

    Normalization lives inside the graph so that an ``.onnx`` file is usable on its own, and so
    that reduced-precision builds can keep exactly these few nodes in FP32. The conservation
    layer, when the network's config asks for it, acts here in physical units.
    """

    def __init__(self, network: nn.Module, lr_mean: list[float], lr_std: list[float],
                 hr_mean: list[float], hr_std: list[float],
                 static_mean: list[float] | None = None,
                 static_std: list[float] | None = None,
                 dew_point_pairs: list[tuple[int, int]] | None = None) -> None:
        super().__init__()
        self.network = network
        self.dew_point_pairs = list(dew_point_pairs or [])
        config = getattr(network, "config", None)
        self.scale = int(config.scaling_factor) if config is not None else 8
        self.conservation = getattr(config, "conservation", "none")
        self.clock_channels = int(getattr(config, "clock_channels", 0))
        self.has_static = bool(static_mean)

        def channel_buffer(values: list[float]) -> torch.Tensor:
            return torch.tensor(values, dtype=torch.float32).reshape(1, -1, 1, 1)

        self.register_buffer("lr_mean", channel_buffer(lr_mean))
        self.register_buffer("lr_std", channel_buffer(lr_std))
        self.register_buffer("hr_mean", channel_buffer(hr_mean))
        self.register_buffer("hr_std", channel_buffer(hr_std))
        if self.has_static:
            self.register_buffer("static_mean", channel_buffer(list(static_mean or [])))
            self.register_buffer("static_std", channel_buffer(list(static_std or [])))
        # Every LR input channel is normalized by one Sub and one Div on the graph input itself;
        # the clock channels enter as they are (mean 0, std 1: exact). Any other op first (a
        # Slice splitting off the clock) lets OpenVINO's BF16 path round the raw fields: 287 K
        # in BF16 is 2 K coarse, 0.50 K RMSE, where normalizing first gives 0.02 K.
        clock = self.clock_channels
        self.register_buffer("input_mean", channel_buffer([*lr_mean, *[0.0] * clock]),
                             persistent=False)
        self.register_buffer("input_std", channel_buffer([*lr_std, *[1.0] * clock]),
                             persistent=False)

    def forward(self, lr: torch.Tensor, hr_static: torch.Tensor | None = None) -> torch.Tensor:
        normalized = (lr - self.input_mean) / self.input_std
        if self.clock_channels:  # the conservation layer acts on the variables only
            lr = lr[:, :-self.clock_channels]
        if self.has_static:
            if hr_static is None:
                raise ValueError("this model takes static HR fields (hr_static)")
            static = (hr_static - self.static_mean) / self.static_std
            out = self.network(normalized, static) * self.hr_std + self.hr_mean
        else:
            out = self.network(normalized) * self.hr_std + self.hr_mean
        if self.conservation == "block_mean" and self.dew_point_pairs:
            out = conserve_with_dew_points(out, lr, self.scale, self.dew_point_pairs)
        elif self.conservation == "block_mean":
            out = conserve_block_means(out, lr, self.scale)
        elif self.dew_point_pairs:
            out = cap_dew_points(out, self.dew_point_pairs)
        return out
