"""SRResNet: the demo's published size, and the receptive field the tiling halo relies on."""

from __future__ import annotations

import pytest
import torch

from sr_export.model import SRResNet, SRResNetConfig


def test_demo_configuration_matches_published_size():
    config = SRResNetConfig()  # the demo's hyper-parameters
    params = sum(p.numel() for p in SRResNet(config).parameters())
    assert round(params / 1e6, 2) == 1.68  # esa-demo.md: 1.68 M parameters
    assert round(config.flops_per_lr_pixel() / 1e6, 2) == 9.30  # 9.30 MFLOP per LR pixel


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_output_shape(scale):
    net = SRResNet(SRResNetConfig(n_channels=4, n_blocks=1, scaling_factor=scale)).eval()
    assert net(torch.zeros(2, 1, 5, 7)).shape == (2, 1, 5 * scale, 7 * scale)


def test_halo_covers_the_receptive_field():
    """Perturbing one LR pixel changes HR pixels only within halo_lr LR pixels of it."""
    torch.manual_seed(0)
    config = SRResNetConfig(n_channels=4, n_blocks=2, scaling_factor=8)
    net = SRResNet(config).eval()
    size, centre = 41, 20
    x = torch.randn(1, 1, size, size)
    y = x.clone()
    y[0, 0, centre, centre] += 10.0
    with torch.no_grad():
        changed = (net(x) - net(y)).abs()[0, 0] > 0
    rows = changed.any(dim=1).nonzero().flatten()
    reach_hr = max(centre * 8 - int(rows.min()), int(rows.max()) - (centre * 8 + 7))
    assert reach_hr > 0
    assert reach_hr / 8 <= config.halo_lr()
    assert config.halo_lr() - reach_hr / 8 < 1.0, "halo should be tight, not just large"


@pytest.mark.parametrize("bad", [{"scaling_factor": 3}, {"output_activation": "tanh"},
                                 {"large_kernel_size": 8}])
def test_invalid_configuration_is_refused(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        SRResNetConfig(**bad)


def test_bicubic_skip_adds_interpolation():
    """With the network's last conv zeroed, the output is exactly the bicubic upsampling."""
    config = SRResNetConfig(n_channels=4, n_blocks=1, upsample_skip="bicubic")
    net = SRResNet(config).eval()
    with torch.no_grad():
        net.conv_block3.conv_block[0].weight.zero_()
        net.conv_block3.conv_block[0].bias.zero_()
    x = torch.randn(1, 1, 6, 9)
    expected = torch.nn.functional.interpolate(x, scale_factor=8, mode="bicubic",
                                               align_corners=False)
    with torch.no_grad():
        assert torch.allclose(net(x), expected, atol=1e-6)
    with pytest.raises(ValueError, match="upsample_skip"):
        SRResNetConfig(upsample_skip="lanczos")
