"""The orography-aware SRResNet: static HR fields, terrain head, exact block-mean conservation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sr_export.model import (
    PhysicalUnitsSR,
    SRResNet,
    SRResNetConfig,
    TerrainPyramid,
    block_anomaly,
    conserve_block_means,
    relative_to_surroundings,
)
from sr_export.rewrites import UnshuffledConv, optimize_network

STATIC = dict(n_channels=6, n_blocks=1, in_channels=2, out_channels=2, static_channels=2,
              upsample_skip="bicubic")
#: Without and with the HR terrain network (learned terrain features beside the anomalies).
TERRAIN = pytest.mark.parametrize("terrain_features", [0, 3])


def physical(config: SRResNetConfig, seed: int = 0) -> PhysicalUnitsSR:
    torch.manual_seed(seed)
    network = SRResNet(config).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics and terrain coefficients
        for module in network.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    return PhysicalUnitsSR(network, [285.0, 278.0], [6.0, 5.0], [285.0, 278.0], [6.5, 5.5],
                           [600.0, 0.6], [700.0, 0.45]).eval()


def inputs(h: int = 9, w: int = 11, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lr = 280.0 + 5.0 * torch.randn(2, 2, h, w, generator=g)
    static = torch.stack([3000.0 * torch.rand(2, h * 8, w * 8, generator=g),
                          torch.rand(2, h * 8, w * 8, generator=g)], dim=1)
    return lr, static


def test_block_anomaly_has_zero_block_means_and_keeps_detail():
    static = torch.rand(1, 2, 16, 24)
    anomaly = block_anomaly(static, 8)
    assert torch.nn.functional.avg_pool2d(anomaly, 8).abs().max() < 1e-6
    # inside one block the anomaly differs from the field by a constant only
    block = (static - anomaly)[0, 0, :8, :8]
    assert torch.allclose(block, block[0, 0].expand_as(block))


@TERRAIN
def test_conservation_layer_keeps_every_block_mean_within_1e_3_kelvin(terrain_features):
    model = physical(SRResNetConfig(**STATIC, conservation="block_mean",
                                    terrain_features=terrain_features))
    lr, static = inputs()
    with torch.no_grad():
        hr = model(lr, static)
    means = torch.nn.functional.avg_pool2d(hr.double(), 8)
    assert (means - lr.double()).abs().max() < 1e-3
    # same weights without the layer: not conserved
    free = physical(SRResNetConfig(**STATIC, terrain_features=terrain_features))
    with torch.no_grad():
        drift = (torch.nn.functional.avg_pool2d(free(lr, static), 8) - lr).abs().max()
    assert drift > 1e-2


def test_conserve_block_means_changes_only_the_block_means():
    hr = 280 + torch.randn(1, 1, 16, 16)
    lr = 281 + torch.randn(1, 1, 2, 2)
    out = conserve_block_means(hr, lr, 8)
    assert torch.allclose(block_anomaly(out, 8), block_anomaly(hr, 8), atol=1e-4)
    assert torch.allclose(torch.nn.functional.avg_pool2d(out, 8), lr, atol=1e-4)


@TERRAIN
def test_output_follows_the_static_terrain(terrain_features):
    """Same LR input, two terrains: the HR output differs, and only through the static path."""
    model = physical(SRResNetConfig(**STATIC, terrain_features=terrain_features))
    lr, static = inputs()
    other = static.clone()
    other[:, 0] = torch.flip(other[:, 0], dims=[-1])
    with torch.no_grad():
        a, b = model(lr, static), model(lr, other)
    assert (a - b).abs().max() > 1e-3
    with pytest.raises(ValueError, match="static"):
        model(lr)


def test_lr_only_layout_is_unchanged_for_demo_state_dicts():
    keys = set(SRResNet(SRResNetConfig(n_channels=4, n_blocks=1)).state_dict())
    assert not any(k.startswith(("static_encoder", "terrain_head")) for k in keys)
    static_keys = set(SRResNet(SRResNetConfig(n_channels=4, n_blocks=1, static_channels=2))
                      .state_dict())
    assert keys < static_keys
    assert {k.split(".")[0] for k in static_keys - keys} == {"static_encoder", "terrain_head"}
    terrain = SRResNet(SRResNetConfig(n_channels=4, n_blocks=1, static_channels=2,
                                      terrain_features=3)).state_dict()
    assert {k.split(".")[0] for k in set(terrain) - static_keys} == {"terrain_net"}
    # one coefficient per anomaly and per learned feature
    assert terrain["terrain_head.weight"].shape[0] == 2 + 3


def terrain_rows_moved_by_a_bump(config: SRResNetConfig, size: int) -> torch.Tensor:
    """HR rows whose terrain features change when one static cell in the middle is raised."""
    torch.manual_seed(0)
    net = SRResNet(config).eval()
    static = torch.randn(1, 1, size, size)
    bumped = static.clone()
    bumped[0, 0, size // 2, size // 2] += 5.0
    with torch.no_grad():
        features = net.terrain_net(static, block_anomaly(static, 8), static)
        moved = net.terrain_net(bumped, block_anomaly(bumped, 8), bumped)
    return ((features - moved).abs()[0, 0] > 0).any(dim=1).nonzero().flatten()


def test_terrain_features_see_terrain_beyond_the_block():
    """The anomalies are block-local; the terrain net sees neighbouring blocks' terrain (a
    ridge beside a valley), within its stated reach, and no farther."""
    config = SRResNetConfig(n_channels=4, n_blocks=1, static_channels=1, terrain_features=2)
    rows = terrain_rows_moved_by_a_bump(config, size=40)
    # the bump moves its block's mean (HR rows 16-23), so the reach counts from that block
    assert (int(rows.min()), int(rows.max())) == (16 - 7, 23 + 7)
    assert config.receptive_radius_lr() * 8 >= 7 + 1  # net plus the 3x3 head, in HR cells


def test_terrain_pyramid_is_each_field_minus_its_gaussian_smoothing():
    """Inside the field the pyramid is the field minus a normalized Gaussian of the stated
    sigma (checked against a direct 2-D sum); at the edge it averages only cells that exist."""
    g = torch.Generator().manual_seed(3)
    static = torch.randn(1, 2, 30, 34, generator=g, dtype=torch.float64)
    sigma = 2.5
    with torch.no_grad():
        out = TerrainPyramid((sigma,)).double()(static.float().double())
    radius = 8  # ceil(3 * 2.5)
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 * (offsets[:, None] ** 2 + offsets[None, :] ** 2) / sigma**2)
    field = static[0, 1].numpy()
    for r, c in ((15, 17), (0, 0), (29, 5)):  # centre, corner, edge
        rows = np.clip(offsets + r, -1, 30)
        cols = np.clip(offsets + c, -1, 34)
        keep = ((rows[:, None] >= 0) & (rows[:, None] < 30)
                & (cols[None, :] >= 0) & (cols[None, :] < 34))
        w = np.where(keep, weights, 0.0)
        values = field[np.clip(rows, 0, 29)][:, np.clip(cols, 0, 33)]
        expected = field[r, c] - (w * values).sum() / w.sum()
        assert abs(float(out[0, 1, r, c]) - expected) < 1e-5
    # a constant field has no relative height at any scale
    flat = torch.full((1, 1, 20, 20), 1234.0)
    assert TerrainPyramid((1.0, 4.0))(flat).abs().max() < 1e-3


def test_terrain_scales_reach_far_and_keep_tiles_exact():
    """With a terrain pyramid the terrain network sees terrain tens of HR cells away (a basin's
    rim), the halo covers it, and a tile cut with that halo gives the whole field's values."""
    config = SRResNetConfig(n_channels=4, n_blocks=1, static_channels=1, terrain_features=2,
                            terrain_scales=(2.0, 8.0))
    rows = terrain_rows_moved_by_a_bump(config, size=120)
    net = SRResNet(config).eval()
    assert 60 - int(rows.min()) >= 24 + 7  # 3 sigma of the 8-cell scale, plus the net
    assert config.receptive_radius_lr() * 8 >= 24 + 7 + 1
    lr = torch.randn(1, 1, 40, 40)
    field = torch.randn(1, 1, 320, 320)
    h = config.halo_lr()
    with torch.no_grad():
        whole = net(lr, field)[..., 80:160, 80:160]
        tile = net(lr[..., 10 - h:20 + h, 10 - h:20 + h],
                   field[..., (10 - h) * 8:(20 + h) * 8, (10 - h) * 8:(20 + h) * 8])
    assert (whole - tile[..., h * 8:h * 8 + 80, h * 8:h * 8 + 80]).abs().max() < 1e-4
    with pytest.raises(ValueError, match="terrain_features"):
        SRResNetConfig(static_channels=1, terrain_scales=(2.0,))
    with pytest.raises(ValueError, match="positive"):
        SRResNetConfig(static_channels=1, terrain_features=2, terrain_scales=(0.0,))


@pytest.mark.parametrize("extra", [{}, {"terrain_features": 2, "relative_static": (0,)},
                                   {"terrain_features": 2, "terrain_scales": (3.0,)}])
def test_halo_covers_the_static_input_too(extra):
    """Perturbing one LR cell's static sub-grid changes HR cells only within halo_lr."""
    config = SRResNetConfig(n_channels=4, n_blocks=2, static_channels=1, **extra)
    torch.manual_seed(0)
    net = SRResNet(config).eval()
    size, centre = 41, 20
    lr = torch.randn(1, 1, size, size)
    static = torch.randn(1, 1, size * 8, size * 8)
    bumped = static.clone()
    bumped[0, 0, centre * 8:(centre + 1) * 8, centre * 8:(centre + 1) * 8] += 5.0
    with torch.no_grad():
        changed = (net(lr, static) - net(lr, bumped)).abs()[0, 0] > 0
    rows = changed.any(dim=1).nonzero().flatten()
    reach = max(centre * 8 - int(rows.min()), int(rows.max()) - (centre * 8 + 7))
    assert 0 < reach / 8 <= config.halo_lr()


def test_relative_orography_makes_the_output_blind_to_absolute_height():
    """Orography seen relative to its surroundings: the same terrain 1500 m higher gives the
    same output (a mountain range higher than any in training looks like one it knows),
    while the land-sea mask, still absolute, changes it."""
    config = SRResNetConfig(**{**STATIC, "terrain_features": 3, "relative_static": (0,),
                               "terrain_scales": (2.0, 6.0)})
    model = physical(config)
    lr, static = inputs()
    higher, wetter = static.clone(), static.clone()
    higher[:, 0] += 1500.0
    wetter[:, 1] = 1.0 - wetter[:, 1]
    with torch.no_grad():
        base = model(lr, static)
        assert (base - model(lr, higher)).abs().max() < 1e-3
        assert (base - model(lr, wetter)).abs().max() > 1e-2
    absolute = physical(SRResNetConfig(**STATIC, terrain_features=3))
    with torch.no_grad():
        assert (absolute(lr, static) - absolute(lr, higher)).abs().max() > 1e-2
    relative = relative_to_surroundings(static, 8)
    assert torch.allclose(block_anomaly(relative, 8), block_anomaly(static, 8), atol=1e-3)
    with pytest.raises(ValueError, match="relative_static"):
        SRResNetConfig(static_channels=1, relative_static=(1,))


@TERRAIN
@pytest.mark.parametrize("conservation", ["none", "block_mean"])
def test_rewrites_keep_the_static_model_exact(conservation, terrain_features):
    config = SRResNetConfig(**STATIC, conservation=conservation,
                            terrain_features=terrain_features,
                            relative_static=(0,) if terrain_features else (),
                            terrain_scales=(2.0, 4.0) if terrain_features else ())
    reference = physical(config)
    network, applied = optimize_network(reference.network)
    rewritten = PhysicalUnitsSR(network, [285.0, 278.0], [6.0, 5.0], [285.0, 278.0],
                                [6.5, 5.5], [600.0, 0.6], [700.0, 0.45]).eval()
    lr, static = inputs()
    with torch.no_grad():
        diff = (reference(lr, static) - rewritten(lr, static)).abs().max()
    assert float(diff) < 1e-4
    # the terrain head reads the HR features, so the tail conv runs one shuffle level down on
    # them rather than inside the last sub-pixel block
    assert {"final_conv_before_pixel_shuffle", "final_conv_as_pointwise_and_shifts",
            "bicubic_skip_as_conv"} <= set(applied)
    assert isinstance(network.network.conv_block3, UnshuffledConv)


def test_invalid_static_configurations_are_refused():
    with pytest.raises(ValueError, match="conservation"):
        SRResNetConfig(conservation="mass")
    with pytest.raises(ValueError, match="conservation needs"):
        SRResNetConfig(in_channels=2, out_channels=1, conservation="block_mean")
    with pytest.raises(ValueError, match="static_channels"):
        SRResNetConfig(static_channels=-1)
    with pytest.raises(ValueError, match="terrain_features needs static"):
        SRResNetConfig(terrain_features=4)


def test_flops_grow_with_the_static_path():
    plain = SRResNetConfig(n_channels=32, n_blocks=8)
    static = SRResNetConfig(n_channels=32, n_blocks=8, static_channels=2)
    assert static.flops_per_lr_pixel() > plain.flops_per_lr_pixel()
    assert np.isclose(static.halo_lr(), plain.halo_lr())
    terrain = SRResNetConfig(n_channels=32, n_blocks=8, static_channels=2, terrain_features=8)
    assert terrain.flops_per_lr_pixel() > static.flops_per_lr_pixel()
    pyramid = SRResNetConfig(n_channels=32, n_blocks=8, static_channels=2, terrain_features=8,
                             terrain_scales=(2.0, 16.0))
    assert pyramid.flops_per_lr_pixel() > terrain.flops_per_lr_pixel()
