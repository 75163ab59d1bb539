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

OUTPUT_ACTIVATIONS = ("none", "relu")
UPSAMPLE_SKIPS = ("none", "bicubic")


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

    def __post_init__(self) -> None:
        if self.upsample_skip not in UPSAMPLE_SKIPS:
            raise ValueError(f"upsample_skip must be one of {UPSAMPLE_SKIPS}, "
                             f"not {self.upsample_skip!r}")
        if self.scaling_factor not in (2, 4, 8):
            raise ValueError(f"scaling_factor must be 2, 4 or 8, not {self.scaling_factor}")
        if self.upsample_skip != "none" and self.in_channels != self.out_channels:
            raise ValueError("upsample_skip needs as many input as output channels")
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
        return max(radius, 2.0) if self.upsample_skip == "bicubic" else radius  # 4-tap cubic

    def halo_lr(self) -> int:
        return math.ceil(self.receptive_radius_lr())

    def flops_per_lr_pixel(self) -> int:
        """Multiply-adds x2 per LR input pixel (BatchNorm folded), for GFLOP/s reporting."""
        c, k2s, k2l = self.n_channels, self.small_kernel_size**2, self.large_kernel_size**2
        flops = self.in_channels * c * k2l
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


class SRResNet(nn.Module):
    """Maps normalized LR fields (N, C_in, h, w) to normalized HR fields (N, C_out, s*h, s*w)."""

    def __init__(self, config: SRResNetConfig | None = None) -> None:
        super().__init__()
        self.config = config or SRResNetConfig()
        cfg = self.config
        c = cfg.n_channels
        self.conv_block1 = ConvBlock(cfg.in_channels, c, cfg.large_kernel_size, False, "prelu")
        self.residual_blocks = nn.Sequential(
            *[ResidualBlock(cfg.small_kernel_size, c) for _ in range(cfg.n_blocks)]
        )
        self.conv_block2 = ConvBlock(c, c, cfg.small_kernel_size, True, None)
        self.subpixel_convolutional_blocks = nn.Sequential(
            *[SubPixelBlock(cfg.small_kernel_size, c) for _ in range(cfg.n_upsample_blocks)]
        )
        activation = "relu" if cfg.output_activation == "relu" else None
        self.conv_block3 = ConvBlock(c, cfg.out_channels, cfg.large_kernel_size, False, activation)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        features = self.conv_block1(lr)
        out = self.conv_block2(self.residual_blocks(features)) + features
        out = self.conv_block3(self.subpixel_convolutional_blocks(out))
        if self.config.upsample_skip == "bicubic":
            out = out + nn.functional.interpolate(lr, scale_factor=self.config.scaling_factor,
                                                  mode="bicubic", align_corners=False)
        return out


class PhysicalUnitsSR(nn.Module):
    """The exported graph: physical LR fields in, physical HR fields out.

    Normalization lives inside the graph so that an ``.onnx`` file is usable on its own, and so
    that reduced-precision builds can keep exactly these few nodes in FP32.
    """

    def __init__(self, network: SRResNet, lr_mean: list[float], lr_std: list[float],
                 hr_mean: list[float], hr_std: list[float]) -> None:
        super().__init__()
        self.network = network

        def channel_buffer(values: list[float]) -> torch.Tensor:
            return torch.tensor(values, dtype=torch.float32).reshape(1, -1, 1, 1)

        self.register_buffer("lr_mean", channel_buffer(lr_mean))
        self.register_buffer("lr_std", channel_buffer(lr_std))
        self.register_buffer("hr_mean", channel_buffer(hr_mean))
        self.register_buffer("hr_std", channel_buffer(hr_std))

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        normalized = (lr - self.lr_mean) / self.lr_std
        return self.network(normalized) * self.hr_std + self.hr_mean
