"""Exact graph rewrites: each proven equal to the original, at every size and at the edges."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from typer.testing import CliRunner

from sr_export.checkpoints import LoadedCheckpoint
from sr_export.cli import app
from sr_export.model import SRResNet, SRResNetConfig, SubPixelBlock, TerrainTerms
from sr_export.onnx_export import (
    REWRITE_TOLERANCE_K,
    export_onnx,
    onnxruntime_predict,
    physical_model,
    sample_input,
    torch_predict,
    verify_rewrites,
)
from sr_export.rewrites import (
    ACTIVATION_BEFORE_PIXEL_SHUFFLE,
    ALL_REWRITES,
    BATCHNORM_FOLDED,
    BICUBIC_SKIP_AS_CONV,
    FINAL_CONV_AS_POINTWISE_AND_SHIFTS,
    FINAL_CONV_BEFORE_PIXEL_SHUFFLE,
    PIXEL_SHUFFLE_AS_TRANSPOSED_CONV,
    PRELU_AS_LEAKY_RELU,
    REQUIRES,
    TERRAIN_TERMS_AT_ONCE,
    BicubicUpsample,
    PointwiseShiftConv,
    ShuffleAsTransposedConv,
    TerrainTermsAtOnce,
    UnshuffleAsConv,
    UnshuffledConv,
    conv_before_pixel_shuffle,
    optimize_network,
    single_slope_activation,
)
from sr_runtime.description import ModelDescription, VariableSpec
from sr_runtime.errors import AccuracyGateError

runner = CliRunner()
SIZES = [(1, 1), (1, 5), (2, 3), (5, 5), (7, 4), (9, 13)]


def same_conv(c_in: int, c_out: int, k: int, bias: bool = True, seed: int = 0) -> nn.Conv2d:
    torch.manual_seed(seed)
    conv = nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=bias, dtype=torch.float64)
    with torch.no_grad():
        conv.weight.normal_()
        if bias:
            conv.bias.normal_()
    return conv


@pytest.mark.parametrize("k", [1, 3, 5, 7, 9])
@pytest.mark.parametrize("factor", [2, 3])
def test_conv_after_pixel_shuffle_equals_conv_before_it(k, factor):
    conv = same_conv(3, 2, k, seed=k)
    before = conv_before_pixel_shuffle(conv, factor)
    radius = -(-(k // 2) // factor)
    assert before.kernel_size == (2 * radius + 1,) * 2
    assert (before.in_channels, before.out_channels) == (3 * factor**2, 2 * factor**2)
    shuffle = nn.PixelShuffle(factor)
    for h, w in SIZES:
        x = torch.randn(2, 3 * factor**2, h, w, dtype=torch.float64)
        with torch.no_grad():
            expected = conv(shuffle(x))
            got = shuffle(before(x))
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-11)


def test_the_demo_tail_becomes_a_5x5_with_four_outputs():
    before = conv_before_pixel_shuffle(same_conv(64, 1, 9), 2)
    assert before.kernel_size == (5, 5) and (before.in_channels, before.out_channels) == (256, 4)


@pytest.mark.parametrize("side", ["top", "bottom", "left", "right"])
def test_zero_padding_at_field_edges(side):
    """A field that is non-zero only on one edge row/column: the low-resolution conv must see
    the same zeros beyond the edge as the high-resolution one."""
    conv = same_conv(2, 1, 9, seed=5)
    before = conv_before_pixel_shuffle(conv, 2)
    shuffle = nn.PixelShuffle(2)
    hr = torch.zeros(1, 2, 10, 14, dtype=torch.float64)
    edge = {"top": (slice(None), slice(None), 0), "bottom": (slice(None), slice(None), -1),
            "left": (slice(None), slice(None), slice(None), 0),
            "right": (slice(None), slice(None), slice(None), -1)}[side]
    hr[edge] = torch.randn_like(hr[edge]) + 5.0
    lr = nn.PixelUnshuffle(2)(hr)  # the low-resolution tensor whose shuffle is ``hr``
    with torch.no_grad():
        expected = conv(hr)
        got = shuffle(before(lr))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-11)
    # and the outermost output rows/columns are where padding matters: they are not all bias
    assert not torch.allclose(expected, conv.bias.reshape(1, -1, 1, 1).expand_as(expected))


@pytest.mark.parametrize("form", ["taps", "rows"])
@pytest.mark.parametrize("k", [1, 3, 5, 9])
def test_pointwise_and_shifts_equal_the_conv(k, form):
    conv = same_conv(6, 3, k, seed=k)
    split = PointwiseShiftConv(conv, form)
    assert split.shift.out_channels == 3 * (k if form == "rows" else k * k)
    for h, w in SIZES:
        x = torch.randn(2, 6, h, w, dtype=torch.float64)
        with torch.no_grad():
            torch.testing.assert_close(split(x), conv(x), rtol=0, atol=1e-11)


@pytest.mark.parametrize("form", ["taps", "rows"])
def test_pointwise_and_shifts_without_bias(form):
    conv = same_conv(4, 2, 5, bias=False)
    x = torch.randn(1, 4, 6, 7, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(PointwiseShiftConv(conv, form)(x), conv(x), rtol=0,
                                   atol=1e-11)


def test_the_row_form_is_taken_where_its_channels_fill_the_simd_blocks():
    from sr_export.rewrites import shift_form

    assert shift_form(8, 5) == "rows"  # the default model's tail: 40 channels in 48
    assert shift_form(4, 5) == "taps"  # the demo's: 20 in 32
    assert shift_form(2, 5) == "taps"
    assert PointwiseShiftConv(same_conv(4, 8, 5)).form == "rows"
    with pytest.raises(ValueError, match="rows or taps"):
        PointwiseShiftConv(same_conv(4, 8, 5), "columns")


@pytest.mark.parametrize("pointwise", [False, True])
def test_a_conv_one_shuffle_level_down_equals_the_conv_on_any_high_resolution_input(pointwise):
    # the static model's tail: its input is not a PixelShuffle output, so the rewrite must hold
    # for every input, not only for shuffled ones
    conv = same_conv(4, 2, 9, seed=5)
    activation = nn.LeakyReLU(0.2)
    rewritten = UnshuffledConv(conv, activation, 2, pointwise)
    x = torch.randn(2, 4, 12, 16, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(rewritten(x), activation(conv(x)), rtol=0, atol=1e-11)
        assert rewritten.conv(rewritten.unshuffle(x)).shape[1] == 2 * 4  # O * factor**2


def test_refuses_convs_it_cannot_rewrite():
    for conv in (nn.Conv2d(2, 2, 3, padding=0), nn.Conv2d(2, 2, 3, padding=1, stride=2),
                 nn.Conv2d(2, 2, 4, padding=2), nn.Conv2d(2, 2, 3, padding=1, groups=2),
                 nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect")):
        with pytest.raises(ValueError, match="'same' conv"):
            conv_before_pixel_shuffle(conv, 2)
        with pytest.raises(ValueError, match="'same' conv"):
            PointwiseShiftConv(conv)


@pytest.mark.parametrize("factor", [2, 3, 8])
def test_pixel_shuffle_as_transposed_conv_is_bit_identical(factor):
    as_conv = ShuffleAsTransposedConv(factor, channels=3)
    x = torch.randn(2, 3 * factor**2, 5, 7)
    with torch.no_grad():
        assert torch.equal(as_conv(x), nn.PixelShuffle(factor)(x))


def test_single_slope_activation_commutes_with_pixel_shuffle():
    prelu = nn.PReLU(init=0.3)
    leaky = single_slope_activation(prelu)
    assert isinstance(leaky, nn.LeakyReLU)
    x = torch.randn(2, 8, 5, 3)
    shuffle = nn.PixelShuffle(2)
    with torch.no_grad():
        assert torch.equal(prelu(shuffle(x)), shuffle(leaky(x)))
        assert torch.equal(prelu(x), leaky(x))
    assert single_slope_activation(nn.PReLU(4)) is None  # per-channel slopes do not commute
    assert single_slope_activation(nn.Tanh()) is None


def random_network(config: SRResNetConfig, seed: int = 0) -> SRResNet:
    """Random weights, non-trivial BatchNorm statistics and PReLU slopes, as after training."""
    torch.manual_seed(seed)
    network = SRResNet(config)
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.1, 0.1)
            elif isinstance(module, nn.PReLU):
                module.weight.uniform_(-0.3, 0.5)
    return network.eval()


def loaded_checkpoint(config: SRResNetConfig, seed: int = 0) -> LoadedCheckpoint:
    description = ModelDescription(
        scale=config.scaling_factor, variables=(VariableSpec("t2m", "K", 283.2, 4.3, 283.3, 4.2),),
        arch_params=config.to_dict(), halo_lr=config.halo_lr())
    return LoadedCheckpoint(random_network(config, seed), description, "sr-edge")


@pytest.mark.parametrize("activation", ["none", "relu"])
@pytest.mark.parametrize("scale", [2, 4, 8])
def test_optimized_network_equals_the_original(activation, scale):
    config = SRResNetConfig(n_channels=8, n_blocks=2, scaling_factor=scale,
                            output_activation=activation)
    loaded = loaded_checkpoint(config, seed=scale)
    network, applied = optimize_network(loaded.model)
    inner_shuffles = (PIXEL_SHUFFLE_AS_TRANSPOSED_CONV,) if scale > 2 else ()  # x2: none
    assert applied == (BATCHNORM_FOLDED, ACTIVATION_BEFORE_PIXEL_SHUFFLE,
                       FINAL_CONV_BEFORE_PIXEL_SHUFFLE, FINAL_CONV_AS_POINTWISE_AND_SHIFTS,
                       PRELU_AS_LEAKY_RELU, *inner_shuffles)
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.PReLU)) for m in network.modules())
    reference, rewritten = physical_model(loaded), physical_model(loaded, network)
    for shape in [(1, 1), (3, 5), (17, 12)]:
        lr = sample_input(loaded.description, shape=shape, batch=2, seed=shape[0])
        report = verify_rewrites(reference, rewritten, lr)
        assert report.max_abs <= REWRITE_TOLERANCE_K


@pytest.mark.parametrize("scale", [2, 4, 8])
@pytest.mark.parametrize("channels", [1, 2])
def test_bicubic_as_pad_conv_shuffle_equals_interpolate(scale, channels):
    upsample = BicubicUpsample(scale, channels)
    for h, w in SIZES:  # 1-pixel fields too: the edge clamping is all there is
        x = torch.randn(2, channels, h, w)
        with torch.no_grad():
            expected = F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)
            torch.testing.assert_close(upsample(x), expected, rtol=0, atol=2e-6)


def test_rewrites_keep_the_bicubic_upsampling_skip():
    config = SRResNetConfig(n_channels=8, n_blocks=1, upsample_skip="bicubic")
    loaded = loaded_checkpoint(config, seed=3)
    network, applied = optimize_network(loaded.model)
    assert FINAL_CONV_AS_POINTWISE_AND_SHIFTS in applied and applied[-1] == BICUBIC_SKIP_AS_CONV
    assert loaded.model.config.upsample_skip == "bicubic"  # the original is left untouched
    lr = sample_input(loaded.description, shape=(7, 9), batch=2, seed=1)
    verify_rewrites(physical_model(loaded), physical_model(loaded, network), lr)
    plain, applied = optimize_network(loaded.model, (PRELU_AS_LEAKY_RELU,))
    assert BICUBIC_SKIP_AS_CONV not in applied
    verify_rewrites(physical_model(loaded), physical_model(loaded, plain), lr)


def test_each_rewrite_alone_is_exact():
    loaded = loaded_checkpoint(SRResNetConfig(n_channels=8, n_blocks=1, upsample_skip="bicubic"),
                               seed=2)
    lr = sample_input(loaded.description, shape=(9, 11), batch=1)
    reference = physical_model(loaded)
    for name in ALL_REWRITES:
        if name == TERRAIN_TERMS_AT_ONCE:  # static networks only: tested on one below
            continue
        network, applied = optimize_network(loaded.model, (name,))
        assert applied[0] == BATCHNORM_FOLDED and name in applied
        assert set(applied) <= {BATCHNORM_FOLDED, name, *REQUIRES.get(name, ())}
        verify_rewrites(reference, physical_model(loaded, network), lr)


@pytest.mark.parametrize("fields, outputs", [(1, 1), (3, 2), (10, 2)])
def test_terrain_terms_at_once_equal_the_loop(fields, outputs):
    torch.manual_seed(fields)
    out = torch.randn(2, outputs, 7, 9)
    coefficients = torch.randn(2, fields * outputs, 7, 9)
    terrain = torch.randn(2, fields, 7, 9)
    with torch.no_grad():
        expected = out.clone()
        for k in range(fields):  # each field times its own coefficient, per output variable
            for v in range(outputs):
                expected[:, v] += coefficients[:, k * outputs + v] * terrain[:, k]
        torch.testing.assert_close(TerrainTerms()(out, coefficients, terrain), expected,
                                   rtol=0, atol=1e-5)
        torch.testing.assert_close(TerrainTermsAtOnce()(out, coefficients, terrain), expected,
                                   rtol=0, atol=1e-5)


def test_a_static_network_gets_its_terrain_terms_at_once():
    config = SRResNetConfig(n_channels=8, n_blocks=1, static_channels=2, terrain_features=3)
    original = random_network(config, 4).eval()
    lr, static = torch.randn(2, 1, 5, 6), torch.randn(2, 2, 40, 48)  # x8 by default
    for rewrites in ((TERRAIN_TERMS_AT_ONCE,), ALL_REWRITES):
        network, applied = optimize_network(original, rewrites)
        assert TERRAIN_TERMS_AT_ONCE in applied
        assert isinstance(network.terrain_terms, TerrainTermsAtOnce)
        with torch.no_grad():
            torch.testing.assert_close(network(lr, static), original(lr, static),
                                       rtol=0, atol=1e-4)
    plain = SRResNetConfig(n_channels=8, n_blocks=1)
    assert TERRAIN_TERMS_AT_ONCE not in optimize_network(random_network(plain, 4))[1]


def test_per_channel_prelu_is_left_alone():
    loaded = loaded_checkpoint(SRResNetConfig(n_channels=8, n_blocks=1))
    for block in loaded.model.subpixel_convolutional_blocks:
        assert isinstance(block, SubPixelBlock)
        block.prelu = nn.PReLU(8, init=0.2)
    network, applied = optimize_network(loaded.model)
    assert applied == (BATCHNORM_FOLDED, PRELU_AS_LEAKY_RELU)  # the residual blocks' PReLUs
    assert all(isinstance(b, SubPixelBlock) for b in network.subpixel_convolutional_blocks)
    lr = sample_input(loaded.description, shape=(6, 7), batch=1)
    verify_rewrites(physical_model(loaded), physical_model(loaded, network), lr)


def test_unknown_rewrite_is_refused():
    with pytest.raises(ValueError, match="unknown rewrites"):
        optimize_network(random_network(SRResNetConfig(n_channels=4, n_blocks=1)), ("nope",))


def test_rewrite_gate_fails_on_a_wrong_rewrite():
    loaded = loaded_checkpoint(SRResNetConfig(n_channels=8, n_blocks=1))
    network, _ = optimize_network(loaded.model)
    with torch.no_grad():
        network.subpixel_convolutional_blocks[-1].tail.gather.bias.add_(1e-3)
    lr = sample_input(loaded.description, shape=(5, 6), batch=1)
    with pytest.raises(AccuracyGateError, match="--no-optimize"):
        verify_rewrites(physical_model(loaded), physical_model(loaded, network), lr)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One tiny model exported with the rewrites (the default)."""
    folder = tmp_path_factory.mktemp("rewrites")
    loaded = loaded_checkpoint(SRResNetConfig(n_channels=8, n_blocks=1, output_activation="relu"),
                               seed=7)
    out = folder / "optimized.onnx"
    return loaded, out, export_onnx(loaded, out)


def test_export_records_rewrites_and_matches_the_original(exported):
    loaded, out, report = exported
    proto = onnx.load(out)
    description = ModelDescription.from_metadata({p.key: p.value for p in proto.metadata_props})
    assert description.graph_rewrites[:6] == (
        BATCHNORM_FOLDED, ACTIVATION_BEFORE_PIXEL_SHUFFLE, FINAL_CONV_BEFORE_PIXEL_SHUFFLE,
        FINAL_CONV_AS_POINTWISE_AND_SHIFTS, PRELU_AS_LEAKY_RELU, PIXEL_SHUFFLE_AS_TRANSPOSED_CONV)
    assert report.rewrite_max_abs is not None and report.rewrite_max_abs <= REWRITE_TOLERANCE_K
    assert "exact rewrites" in report.summary()
    ops = [n.op_type for n in proto.graph.node]
    assert "PRelu" not in ops and ops[-3:] == ["DepthToSpace", "Mul", "Add"]
    assert ops.count("ConvTranspose") == 2  # the inner x2 upsamplings; the tail conv before the
    assert ops.count("DepthToSpace") == 1  # last one, which stays a DepthToSpace
    lr = sample_input(loaded.description, shape=(13, 10), batch=2, seed=4)
    unoptimized = torch_predict(physical_model(loaded), lr)  # BatchNorm unfolded, PReLU, 9x9
    assert np.max(np.abs(onnxruntime_predict(str(out), lr) - unoptimized)) <= 1e-4


def test_cli_no_optimize_reaches_the_exporter(monkeypatch, tmp_path):
    import sr_export.checkpoints
    import sr_export.onnx_export

    seen = {}

    def fake_export(loaded, out, **options):
        seen.update(options)
        return sr_export.onnx_export.ParityReport(0.0, 0.0, (1, 1, 4, 4), 1e-3)

    loaded = loaded_checkpoint(SRResNetConfig(n_channels=4, n_blocks=1))
    monkeypatch.setattr(sr_export.checkpoints, "load_checkpoint", lambda *a, **k: loaded)
    monkeypatch.setattr(sr_export.onnx_export, "export_onnx", fake_export)
    for flag, expected in (("--no-optimize", False), ("--optimize", True)):
        result = runner.invoke(app, ["to-onnx", str(tmp_path / "x.ckpt"), "--out",
                                     str(tmp_path / f"{expected}.onnx"), flag])
        assert result.exit_code == 0, result.output
        assert seen["optimize"] is expected


def test_no_optimize_folds_batchnorm_only():
    loaded = loaded_checkpoint(SRResNetConfig(n_channels=4, n_blocks=1))
    network, applied = optimize_network(loaded.model, ())
    assert applied == (BATCHNORM_FOLDED,)
    assert any(isinstance(m, nn.PReLU) for m in network.modules())


@pytest.mark.parametrize("factor", [2, 3])
def test_unshuffle_as_conv_is_bit_identical(factor):
    x = torch.randn(2, 3, 4 * factor, 5 * factor)
    with torch.no_grad():
        assert torch.equal(UnshuffleAsConv(factor, 3)(x), nn.PixelUnshuffle(factor)(x))
