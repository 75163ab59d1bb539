"""Exact rewrites of SRResNet for inference, applied in PyTorch before export.

Each rewrite returns a module that computes the same function (up to float32 rounding) with
cheaper or better-fusing operations, so the exported ONNX graph stays plain:

``batchnorm_folded``
    every BatchNorm folded into the conv before it (eval mode).
``prelu_as_leaky_relu``
    a PReLU with one slope is ``LeakyReLU(slope)``; ONNX Runtime fuses LeakyRelu into the
    convolution before it, while PRelu runs as a separate pass over memory.
``activation_before_pixel_shuffle``
    PixelShuffle only moves values, so an element-wise activation with one slope (PReLU/LeakyReLU,
    ReLU) gives the same result before it, where it fuses into the producing conv.
``final_conv_before_pixel_shuffle``
    a k x k conv (C -> O) after PixelShuffle(s) equals a conv (s*s*C -> s*s*O) with kernel
    ``2*ceil((k//2)/s) + 1`` at the lower resolution followed by PixelShuffle(s): each output
    phase (a, b) of the high-resolution grid reads a fixed pattern of input phases. Zero padding
    matches because a high-resolution pixel lies outside the field exactly when the low-resolution
    pixel it comes from does. For the demo's 9x9 (64 -> 1) tail at x8 this is a 5x5 (256 -> 4)
    conv at a quarter of the pixels, and a wide output instead of a single channel. Needs
    ``activation_before_pixel_shuffle`` (the last block's activation must move out of the way).
    With static fields the terrain head also reads the high-resolution features, so the tail
    conv keeps its input and runs one shuffle level down on it instead: PixelUnshuffle(2), the
    equivalent conv, PixelShuffle(2) (:class:`UnshuffledConv`; unshuffle then shuffle is the
    identity, so this is exact for any input).
``final_conv_as_pointwise_and_shifts``
    a k x k conv (C -> O) with few outputs is ``sum_t shift_t(W_t x)``: one 1x1 conv (C -> k*k*O,
    a wide, efficient GEMM) followed by a depthwise conv whose kernels are one-hot (a pure shift,
    zero padded exactly like the original input) and a sum over the k*k taps; or, where k*O
    fills the SIMD blocks, a 1 x k conv (C -> k*O) with k x 1 shifts and a sum over the k rows
    (:func:`shift_form`). Same products, only the summation order differs. It removes the
    padding of O outputs to the CPU's SIMD block (8 or 16 channels), which made the narrow conv
    the slowest node per FLOP, both in FP32 and INT8.
    Applied to the tail conv made by ``final_conv_before_pixel_shuffle``, which it needs.
``bicubic_skip_as_conv``
    the bicubic upsampling skip (``SRResNetConfig(upsample_skip="bicubic")``) is linear with a
    fixed stencil per output phase: edge-replicate padding by 2 (PyTorch clamps indices at the
    border), one 5x5 conv with s*s outputs (one per phase, the separable cubic weights) at low
    resolution and PixelShuffle(s). ONNX Runtime's cubic ``Resize`` took 15 % of the shipped
    model's time; this takes a few percent.
``pixel_shuffle_as_transposed_conv``
    PixelShuffle(s) of C*s*s channels is a grouped ConvTranspose (groups C, kernel s, stride s)
    whose kernels are one-hot: every output receives exactly one input times 1.0, so the result
    is bit-identical. ONNX Runtime runs it about 4x faster than its DepthToSpace. Applied to
    the inner blocks made by ``activation_before_pixel_shuffle``; the last shuffle, which moves
    only the few output channels, stays a DepthToSpace.
``terrain_terms_at_once``
    a static model adds K terrain fields times their coefficients to its output, one slice,
    product and sum per field (K = 10 for the shipped model: 30 nodes over the HR grid). One
    broadcast product of the coefficients, viewed as (N, K, O, H, W), with the fields as
    (N, K, 1, H, W), then one sum over K, gives the same terms in another summation order
    (:class:`TerrainTermsAtOnce`): about 2 % of the shipped model's time on ONNX Runtime.

:func:`optimize_network` applies all of them that are valid and says which it applied.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import torch
from torch import nn
from torch.nn import functional as F

from sr_export.model import SRResNet, SubPixelBlock, TerrainTerms
from sr_runtime.engines.one_hot import one_hot_shuffle_kernel

BATCHNORM_FOLDED = "batchnorm_folded"
PRELU_AS_LEAKY_RELU = "prelu_as_leaky_relu"
ACTIVATION_BEFORE_PIXEL_SHUFFLE = "activation_before_pixel_shuffle"
FINAL_CONV_BEFORE_PIXEL_SHUFFLE = "final_conv_before_pixel_shuffle"
FINAL_CONV_AS_POINTWISE_AND_SHIFTS = "final_conv_as_pointwise_and_shifts"
BICUBIC_SKIP_AS_CONV = "bicubic_skip_as_conv"
PIXEL_SHUFFLE_AS_TRANSPOSED_CONV = "pixel_shuffle_as_transposed_conv"
TERRAIN_TERMS_AT_ONCE = "terrain_terms_at_once"
ALL_REWRITES = (BATCHNORM_FOLDED, PRELU_AS_LEAKY_RELU, ACTIVATION_BEFORE_PIXEL_SHUFFLE,
                FINAL_CONV_BEFORE_PIXEL_SHUFFLE, FINAL_CONV_AS_POINTWISE_AND_SHIFTS,
                BICUBIC_SKIP_AS_CONV, PIXEL_SHUFFLE_AS_TRANSPOSED_CONV, TERRAIN_TERMS_AT_ONCE)
CUBIC_A = -0.75  # PyTorch's (and ONNX Resize's default) cubic convolution coefficient
#: Rewrites that only apply on top of others (requested alone, they bring these along).
REQUIRES = {FINAL_CONV_BEFORE_PIXEL_SHUFFLE: (ACTIVATION_BEFORE_PIXEL_SHUFFLE,),
            FINAL_CONV_AS_POINTWISE_AND_SHIFTS: (FINAL_CONV_BEFORE_PIXEL_SHUFFLE,
                                                 ACTIVATION_BEFORE_PIXEL_SHUFFLE),
            PIXEL_SHUFFLE_AS_TRANSPOSED_CONV: (ACTIVATION_BEFORE_PIXEL_SHUFFLE,)}


def fold_batchnorm(network: nn.Module) -> nn.Module:
    """A copy of the network with every BatchNorm folded into the conv before it (eval mode)."""
    folded = copy.deepcopy(network).eval()
    for module in folded.modules():
        if isinstance(module, nn.Sequential):
            layers = list(module)
            for i in range(len(layers) - 1):
                if isinstance(layers[i], nn.Conv2d) and isinstance(layers[i + 1], nn.BatchNorm2d):
                    module[i] = torch.nn.utils.fusion.fuse_conv_bn_eval(layers[i], layers[i + 1])
                    module[i + 1] = nn.Identity()
    return folded


def single_slope_activation(module: nn.Module) -> nn.Module | None:
    """The element-wise activation equivalent to ``module`` if it has one slope, else None.

    A single-slope PReLU becomes ``LeakyReLU`` with that slope; ReLU, LeakyReLU and Identity are
    returned as they are. A PReLU with one slope per channel does not commute with PixelShuffle
    (channels are interleaved into space) and is refused.
    """
    if isinstance(module, nn.PReLU):
        if module.weight.numel() != 1:
            return None
        return nn.LeakyReLU(negative_slope=float(module.weight.detach().reshape(()).item()))
    if isinstance(module, (nn.ReLU, nn.LeakyReLU, nn.Identity)):
        return module
    return None


def _leaky_everywhere(network: nn.Module) -> int:
    """Replace every single-slope PReLU by the equal LeakyReLU; how many were replaced."""
    count = 0
    for parent in list(network.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.PReLU) and child.weight.numel() == 1:
                setattr(parent, name, single_slope_activation(child))
                count += 1
    return count


def _same_conv_kernel(conv: nn.Conv2d, who: str) -> int:
    """The kernel size of a plain odd square 'same' conv; ValueError for anything else."""
    k = conv.kernel_size[0]
    if (conv.kernel_size != (k, k) or k % 2 != 1 or conv.stride != (1, 1)
            or conv.dilation != (1, 1) or conv.groups != 1 or conv.padding != (k // 2, k // 2)
            or conv.padding_mode != "zeros"):
        raise ValueError(f"{who} needs an odd square 'same' conv with stride 1, dilation 1, one "
                         f"group and zero padding, not {conv}")
    return k


def conv_before_pixel_shuffle(conv: nn.Conv2d, factor: int) -> nn.Conv2d:
    """The conv at low resolution that, followed by PixelShuffle(factor), equals
    ``conv(PixelShuffle(factor)(x))``.

    ``conv`` must be a plain 'same' conv (odd square kernel, stride 1, dilation 1, one group,
    zero padding ``k // 2``). Output channel ``o * s*s + a * s + b`` of the result is phase
    (a, b) of output channel ``o``; input channel ``c * s*s + u * s + v`` is phase (u, v) of
    input channel ``c`` (PixelShuffle's ordering).
    """
    k = _same_conv_kernel(conv, "conv_before_pixel_shuffle")
    s, r = int(factor), k // 2
    radius = math.ceil(r / s)
    kernel = 2 * radius + 1
    weight = conv.weight.detach().to(torch.float64)
    c_out, c_in = weight.shape[:2]
    new = torch.zeros(c_out * s * s, c_in * s * s, kernel, kernel, dtype=torch.float64)
    out_index = torch.arange(c_out) * s * s
    in_index = torch.arange(c_in) * s * s
    for a in range(s):
        for dy in range(-r, r + 1):
            py, u = divmod(a + dy, s)
            for b in range(s):
                for dx in range(-r, r + 1):
                    px, v = divmod(b + dx, s)
                    rows = (out_index + a * s + b)[:, None]
                    cols = (in_index + u * s + v)[None, :]
                    new[rows, cols, py + radius, px + radius] = weight[:, :, dy + r, dx + r]
    result = nn.Conv2d(c_in * s * s, c_out * s * s, kernel, padding=radius,
                       bias=conv.bias is not None, dtype=conv.weight.dtype)
    with torch.no_grad():
        result.weight.copy_(new.to(conv.weight.dtype))
        if conv.bias is not None:
            result.bias.copy_(conv.bias.detach().repeat_interleave(s * s))
    return result


#: ONNX Runtime's blocked layout pads a conv's outputs to this many channels on AVX-512.
SIMD_BLOCK = 16


def shift_form(c_out: int, k: int) -> str:
    """``rows`` where a 1 x k conv to k*O channels fills the SIMD blocks well (at most 25 %
    padding), else ``taps``. Measured (``python -m benchmarks.probe_tail_conv``, amx/2c,
    2026-12-04): the default model's tail (128 -> 8, 40 row channels) 7.9-8.3 against
    9.6-10.1 ms at 128 x 128 and 136-139 against 180-183 ms at 512 x 512; the demo's (256 -> 4,
    20 row channels padded to 32) slower in rows: 12.2-12.6 against 10.4-10.8 ms."""
    padded = -(-k * c_out // SIMD_BLOCK) * SIMD_BLOCK
    return "rows" if padded <= 1.25 * k * c_out else "taps"


class PointwiseShiftConv(nn.Module):
    """A 'same' k x k conv (C -> O) as a wide conv, one-hot depthwise shifts, and a 1x1 conv
    with 0/1 weights that sums the shifted taps. Two forms (:func:`shift_form` picks one):

    - ``taps``: a 1x1 conv (C -> k*k*O, channel ``t * O + o``), k x k shifts, sum of k*k taps;
    - ``rows``: a 1 x k conv (C -> k*O, channel ``ty * O + o``: the kernel's row ``ty``),
      k x 1 vertical shifts, sum of k rows. Fewer channels to shift; used where k*O fills the
      SIMD blocks.

    Every step is a Conv, so the whole tail stays in ONNX Runtime's blocked layout. Same
    products as the conv, only the summation order differs.
    """

    def __init__(self, conv: nn.Conv2d, form: str | None = None) -> None:
        super().__init__()
        k = _same_conv_kernel(conv, "PointwiseShiftConv")
        c_out, c_in = conv.out_channels, conv.in_channels
        self.form = form or shift_form(c_out, k)
        dtype = conv.weight.dtype
        weight = conv.weight.detach()
        if self.form == "rows":
            parts, first_kernel, first_pad = k, (1, k), (0, k // 2)
            shift_kernel, shift_pad = (k, 1), (k // 2, 0)
            # weight[o, c, ty, tx] -> pointwise[ty * O + o, c, 0, tx]
            first = weight.permute(2, 0, 1, 3).reshape(k * c_out, c_in, 1, k)
        elif self.form == "taps":
            parts, first_kernel, first_pad = k * k, (1, 1), (0, 0)
            shift_kernel, shift_pad = (k, k), (k // 2, k // 2)
            # weight[o, c, ty, tx] -> pointwise[(ty * k + tx) * O + o, c]
            first = weight.permute(2, 3, 0, 1).reshape(k * k * c_out, c_in, 1, 1)
        else:
            raise ValueError(f"unknown shift form {self.form!r}: rows or taps")
        self.pointwise = nn.Conv2d(c_in, parts * c_out, first_kernel, padding=first_pad,
                                   bias=False, dtype=dtype)
        self.shift = nn.Conv2d(parts * c_out, parts * c_out, shift_kernel, padding=shift_pad,
                               groups=parts * c_out, bias=False, dtype=dtype)
        self.gather = nn.Conv2d(parts * c_out, c_out, 1, bias=True, dtype=dtype)
        with torch.no_grad():
            self.pointwise.weight.copy_(first)
            self.shift.weight.zero_()
            self.gather.weight.zero_()
            for t in range(parts):
                row, col = (t, 0) if self.form == "rows" else (t // k, t % k)
                for o in range(c_out):
                    self.shift.weight[t * c_out + o, 0, row, col] = 1.0
                    self.gather.weight[o, t * c_out + o] = 1.0
            if conv.bias is not None:
                self.gather.bias.copy_(conv.bias.detach())
            else:
                self.gather.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gather(self.shift(self.pointwise(x)))


class UnshuffleAsConv(nn.Module):
    """PixelUnshuffle(factor) as a grouped Conv (C -> C*f*f, kernel f, stride f, groups C) with
    one-hot kernels: bit-identical, and it keeps ONNX Runtime in its blocked layout, where the
    exported Reshape/Transpose/Reshape took 15 % of the static model's time."""

    def __init__(self, factor: int, channels: int, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        f = int(factor)
        self.conv = nn.Conv2d(channels, channels * f * f, f, stride=f, groups=channels,
                              bias=False, dtype=dtype)
        with torch.no_grad():
            self.conv.weight.copy_(torch.from_numpy(one_hot_shuffle_kernel(channels, f)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class UnshuffledConv(nn.Module):
    """A 'same' conv (C -> O) at high resolution, computed at 1/factor of it: PixelUnshuffle,
    the equivalent conv (:func:`conv_before_pixel_shuffle`, optionally as
    :class:`PointwiseShiftConv`), the element-wise activation, PixelShuffle. A narrow conv
    (the tail's 2 outputs) pads its outputs to the CPU's SIMD block; here it has
    ``factor**2`` times as many, at ``factor**2`` times fewer pixels."""

    def __init__(self, conv: nn.Conv2d, activation: nn.Module | None, factor: int,
                 pointwise: bool) -> None:
        super().__init__()
        inner = conv_before_pixel_shuffle(conv, factor)
        self.unshuffle = UnshuffleAsConv(factor, conv.in_channels, conv.weight.dtype)
        self.conv: nn.Module = PointwiseShiftConv(inner) if pointwise else inner
        self.activation = activation
        self.shuffle = nn.PixelShuffle(factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(self.unshuffle(x))
        if self.activation is not None:
            y = self.activation(y)
        return self.shuffle(y)


class ActivationFirstSubPixel(nn.Module):
    """conv -> element-wise activation -> [tail conv -> activation] -> PixelShuffle."""

    def __init__(self, conv: nn.Conv2d, activation: nn.Module, factor: int = 2,
                 tail: nn.Conv2d | None = None, tail_activation: nn.Module | None = None) -> None:
        super().__init__()
        self.conv = conv
        self.activation = activation
        self.tail = tail
        self.tail_activation = tail_activation
        self.pixel_shuffle = nn.PixelShuffle(factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.activation(self.conv(x))
        if self.tail is not None:
            x = self.tail(x)
            if self.tail_activation is not None:
                x = self.tail_activation(x)
        return self.pixel_shuffle(x)


class ShuffleAsTransposedConv(nn.Module):
    """PixelShuffle(factor) as ConvTranspose(C*f*f -> C, kernel f, stride f, groups C) with
    one-hot kernels: input channel ``c*f*f + a*f + b`` lands at phase (a, b) of channel c."""

    def __init__(self, factor: int, channels: int) -> None:
        super().__init__()
        f = int(factor)
        self.factor, self.channels = f, channels
        self.conv = nn.ConvTranspose2d(channels * f * f, channels, f, stride=f, groups=channels,
                                       bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.from_numpy(one_hot_shuffle_kernel(channels, f)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _cubic(x: float) -> float:
    x = abs(x)
    if x <= 1:
        return ((CUBIC_A + 2) * x - (CUBIC_A + 3)) * x * x + 1
    if x < 2:
        return ((CUBIC_A * x - 5 * CUBIC_A) * x + 8 * CUBIC_A) * x - 4 * CUBIC_A
    return 0.0


def bicubic_phase_weights(scale: int) -> torch.Tensor:
    """(scale, 5) weights: HR row ``scale * i + p`` = sum_k w[p, k] * LR row ``i + k - 2``, as
    ``F.interpolate(mode="bicubic", align_corners=False, scale_factor=scale)`` computes it."""
    weights = torch.zeros(scale, 5, dtype=torch.float64)
    for p in range(scale):
        source = (p + 0.5) / scale - 0.5  # relative to LR row i
        base = math.floor(source)
        t = source - base
        for k, distance in enumerate((t + 1, t, 1 - t, 2 - t)):
            weights[p, base - 1 + k + 2] = _cubic(distance)
    return weights


class BicubicUpsample(nn.Module):
    """Bicubic upsampling by ``scale`` (align_corners=False) as edge pad + conv + PixelShuffle."""

    def __init__(self, scale: int, channels: int = 1) -> None:
        super().__init__()
        w = bicubic_phase_weights(scale)
        kernel = torch.einsum("pk,ql->pqkl", w, w).reshape(scale * scale, 1, 5, 5)
        self.conv = nn.Conv2d(channels, channels * scale * scale, 5, groups=channels,
                              bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(kernel.repeat(channels, 1, 1, 1).to(torch.float32))
        self.pixel_shuffle = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pixel_shuffle(self.conv(F.pad(x, (2, 2, 2, 2), mode="replicate")))


class WithUpsampleSkip(nn.Module):
    """``network(x) + skip(x)``: the network with its interpolation skip taken out of it."""

    def __init__(self, network: nn.Module, skip: nn.Module, config: object = None) -> None:
        super().__init__()
        self.network = network
        self.skip = skip
        self.config = config  # the original's (scale, conservation), for PhysicalUnitsSR

    def forward(self, x: torch.Tensor, *static: torch.Tensor) -> torch.Tensor:
        clock = getattr(self.config, "clock_channels", 0)  # the skip interpolates variables only
        return self.network(x, *static) + self.skip(x[:, :-clock] if clock else x)


class TerrainTermsAtOnce(nn.Module):
    """:class:`sr_export.model.TerrainTerms` as one broadcast product and one sum over the
    terrain fields."""

    def forward(self, out: torch.Tensor, coefficients: torch.Tensor,
                terrain: torch.Tensor) -> torch.Tensor:
        per_field = coefficients.unflatten(1, (terrain.shape[1], out.shape[1]))
        return out + (per_field * terrain.unsqueeze(2)).sum(dim=1)


def _shuffles_as_transposed_convs(network: nn.Module) -> int:
    """Replace the PixelShuffles of the inner activation-first blocks (not the one that carries
    the output: its shuffle moves a few channels only, and the FP16/TensorRT islands expect the
    graph to end in Conv -> DepthToSpace)."""
    count = 0
    for block in network.modules():
        if isinstance(block, ActivationFirstSubPixel) and block.tail is None:
            factor = block.pixel_shuffle.upscale_factor
            block.pixel_shuffle = ShuffleAsTransposedConv(factor,
                                                          block.conv.out_channels // factor**2)
            count += 1
    return count


def _tail_parts(network: SRResNet) -> tuple[nn.Conv2d, nn.Module | None] | None:
    """The final conv and its activation, if the tail is conv [-> element-wise activation]."""
    layers = [m for m in network.conv_block3.conv_block if not isinstance(m, nn.Identity)]
    if not layers or not isinstance(layers[0], nn.Conv2d) or len(layers) > 2:
        return None
    activation = single_slope_activation(layers[1]) if len(layers) == 2 else None
    if len(layers) == 2 and activation is None:
        return None
    return layers[0], activation


def optimize_network(network: SRResNet,
                     rewrites: tuple[str, ...] = ALL_REWRITES) -> tuple[nn.Module, tuple[str, ...]]:
    """An eval-mode copy of ``network`` with the requested exact rewrites that apply.

    Returns the module and the names of the rewrites actually applied, in order. BatchNorm is
    always folded first (the other rewrites assume plain convs); rewrites in :data:`REQUIRES`
    bring the ones they build on.
    """
    unknown = sorted(set(rewrites) - set(ALL_REWRITES))
    if unknown:
        raise ValueError(f"unknown rewrites {unknown}; choose from {', '.join(ALL_REWRITES)}")
    rewrites = tuple(rewrites) + tuple(r for name in rewrites for r in REQUIRES.get(name, ()))
    result = fold_batchnorm(network)
    applied = [BATCHNORM_FOLDED]

    if ACTIVATION_BEFORE_PIXEL_SHUFFLE in rewrites:
        moved = 0
        blocks = result.subpixel_convolutional_blocks
        for i, block in enumerate(blocks):
            if not isinstance(block, SubPixelBlock):
                continue
            activation = single_slope_activation(block.prelu)
            if activation is None:
                continue
            if PRELU_AS_LEAKY_RELU not in rewrites:
                activation = block.prelu
            blocks[i] = ActivationFirstSubPixel(block.conv, activation,
                                                block.pixel_shuffle.upscale_factor)
            moved += 1
        if moved:
            applied.append(ACTIVATION_BEFORE_PIXEL_SHUFFLE)

    # with static fields the terrain head reads the HR features: the tail must stay apart
    tail_apart = bool(getattr(getattr(result, "config", None), "static_channels", 0))
    if FINAL_CONV_BEFORE_PIXEL_SHUFFLE in rewrites and tail_apart:
        tail = _tail_parts(result)
        last = result.subpixel_convolutional_blocks[-1]
        factor = getattr(getattr(last, "pixel_shuffle", None), "upscale_factor", None)
        if tail is not None and factor:
            pointwise = FINAL_CONV_AS_POINTWISE_AND_SHIFTS in rewrites
            result.conv_block3 = UnshuffledConv(*tail, int(factor), pointwise)
            applied.append(FINAL_CONV_BEFORE_PIXEL_SHUFFLE)
            if pointwise:
                applied.append(FINAL_CONV_AS_POINTWISE_AND_SHIFTS)
    elif FINAL_CONV_BEFORE_PIXEL_SHUFFLE in rewrites:
        last = result.subpixel_convolutional_blocks[-1]
        tail = _tail_parts(result)
        if isinstance(last, ActivationFirstSubPixel) and last.tail is None and tail is not None:
            conv, activation = tail
            factor = last.pixel_shuffle.upscale_factor
            last.tail = conv_before_pixel_shuffle(conv, factor)
            last.tail_activation = activation
            result.conv_block3 = nn.Identity()
            applied.append(FINAL_CONV_BEFORE_PIXEL_SHUFFLE)

    if FINAL_CONV_AS_POINTWISE_AND_SHIFTS in rewrites:
        last = result.subpixel_convolutional_blocks[-1]
        if isinstance(last, ActivationFirstSubPixel) and last.tail is not None:
            last.tail = PointwiseShiftConv(last.tail)
            applied.append(FINAL_CONV_AS_POINTWISE_AND_SHIFTS)

    if PRELU_AS_LEAKY_RELU in rewrites and _leaky_everywhere(result):
        applied.append(PRELU_AS_LEAKY_RELU)

    if PIXEL_SHUFFLE_AS_TRANSPOSED_CONV in rewrites and _shuffles_as_transposed_convs(result):
        applied.append(PIXEL_SHUFFLE_AS_TRANSPOSED_CONV)

    if TERRAIN_TERMS_AT_ONCE in rewrites and isinstance(getattr(result, "terrain_terms", None),
                                                         TerrainTerms):
        result.terrain_terms = TerrainTermsAtOnce()
        applied.append(TERRAIN_TERMS_AT_ONCE)

    config = getattr(result, "config", None)
    if (BICUBIC_SKIP_AS_CONV in rewrites and config is not None
            and getattr(config, "upsample_skip", "none") == "bicubic"):
        result.config = dataclasses.replace(config, upsample_skip="none")
        skip = BicubicUpsample(config.scaling_factor, config.in_channels)
        applied.append(BICUBIC_SKIP_AS_CONV)
        return WithUpsampleSkip(result, skip, config).eval(), tuple(applied)
    return result.eval(), tuple(applied)
