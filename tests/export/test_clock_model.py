"""Clock channels in the network and the exported graph (SRResNetConfig.clock_channels)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from sr_export.model import PhysicalUnitsSR, SRResNet, SRResNetConfig
from sr_export.onnx_export import DEFAULT_OPSET, onnxruntime_predict, trace_to_onnx
from sr_export.rewrites import optimize_network
from sr_runtime.clock import CLOCK_FEATURES, clock_fields
from sr_runtime.compare import REDUCED_MAX_RMSE_K, compare
from sr_runtime.description import LR_INPUT
from sr_runtime.machine import has_bf16

MEAN, STD = [285.0, 278.0], [6.0, 5.0]


def clock_network(**options) -> SRResNet:
    torch.manual_seed(0)
    config = SRResNetConfig(n_channels=8, n_blocks=1, in_channels=2, out_channels=2,
                            upsample_skip="bicubic", clock_channels=len(CLOCK_FEATURES),
                            **options)
    return SRResNet(config).eval()


def lr_with_clock(h: int = 5, w: int = 6) -> torch.Tensor:
    rng = np.random.default_rng(1)
    fields = np.stack([m + s * rng.standard_normal((h, w)) for m, s in zip(MEAN, STD, strict=True)])
    clock = clock_fields(np.asarray([np.datetime64("2024-10-11T15", "ns")]),
                         np.linspace(5.0, 9.0, w), h)[0]
    return torch.from_numpy(np.concatenate([fields, clock])[None].astype(np.float32))


def test_the_graph_normalizes_the_variables_and_passes_the_clock_channels_as_they_are():
    network = clock_network()
    physical = PhysicalUnitsSR(network, MEAN, STD, MEAN, [6.5, 5.5]).eval()
    lr = lr_with_clock()
    mean = torch.tensor(MEAN).reshape(1, 2, 1, 1)
    std = torch.tensor(STD).reshape(1, 2, 1, 1)
    by_hand = torch.cat([(lr[:, :2] - mean) / std, lr[:, 2:]], dim=1)
    with torch.inference_mode():
        expected = network(by_hand) * torch.tensor([6.5, 5.5]).reshape(1, 2, 1, 1) + mean
        assert torch.allclose(physical(lr), expected, atol=1e-4)
        assert physical(lr).shape == (1, 2, 40, 48)
        moved = lr.clone()
        moved[:, 2:] = -moved[:, 2:]  # another hour and season, the same fields
        assert float((physical(moved) - physical(lr)).abs().max()) > 1e-3


def test_conservation_keeps_the_block_means_of_the_variables_not_of_the_clock():
    network = clock_network(conservation="block_mean")
    physical = PhysicalUnitsSR(network, MEAN, STD, MEAN, STD).eval()
    lr = lr_with_clock()
    with torch.inference_mode():
        hr = physical(lr)
    means = hr.reshape(1, 2, 5, 8, 6, 8).mean(dim=(3, 5), dtype=torch.float64)
    assert float((means - lr[:, :2].double()).abs().max()) < 1e-3


def test_exact_rewrites_keep_a_clock_network_unchanged():
    network = clock_network()
    rewritten, applied = optimize_network(network)
    assert "bicubic_skip_as_conv" in applied  # the skip interpolates the variables only
    lr = torch.randn(1, 6, 7, 9)
    with torch.inference_mode():
        assert float((rewritten(lr) - network(lr)).abs().max()) < 1e-4


def test_clock_channels_other_than_the_four_features_are_refused():
    with pytest.raises(ValueError, match="clock_channels must be 0 or 4"):
        SRResNetConfig(clock_channels=3)


def test_the_graph_caps_the_dew_point_at_the_air_temperature_and_nothing_else():
    """d2m (channel 1) is capped at t2m (channel 0) cell by cell; where the network's d2m is
    already below t2m, and for t2m everywhere, the output is the network's."""
    network = clock_network()
    # hr means 1 K apart: the untrained network puts d2m above t2m in about half the cells
    free = PhysicalUnitsSR(network, MEAN, STD, [285.0, 284.8], STD).eval()
    capped = PhysicalUnitsSR(network, MEAN, STD, [285.0, 284.8], STD,
                             dew_point_pairs=[(1, 0)]).eval()
    lr = lr_with_clock()
    with torch.inference_mode():
        before, after = free(lr), capped(lr)
    above = before[:, 1] > before[:, 0]
    assert 0.05 < float(above.double().mean()) < 0.95  # the case is exercised
    assert bool((after[:, 1] <= after[:, 0]).all())
    assert torch.equal(after[:, 0], before[:, 0])
    assert torch.equal(after[:, 1][~above], before[:, 1][~above])
    assert torch.equal(after[:, 1][above], before[:, 0][above])


def test_conservation_with_a_dew_point_keeps_both_block_means_and_the_dew_point_below():
    network = clock_network(conservation="block_mean")
    capped = PhysicalUnitsSR(network, MEAN, STD, [285.0, 284.8], STD,
                             dew_point_pairs=[(1, 0)]).eval()
    free = PhysicalUnitsSR(network, MEAN, STD, [285.0, 284.8], STD).eval()
    lr = lr_with_clock()
    rng = np.random.default_rng(3)
    depression = np.abs(rng.normal(0.0, 2.0, size=lr.shape[-2:])).astype(np.float32)
    depression[0, :3] = 0.0  # saturated LR cells
    lr[0, 1] = lr[0, 0] - torch.from_numpy(depression)
    with torch.inference_mode():
        before, after = free(lr), capped(lr)
    assert bool((before[:, 1] > before[:, 0] + 0.01).any())  # the raw network breaks it
    assert bool((after[:, 1] <= after[:, 0] + 1e-4).all())
    means = after.reshape(1, 2, 5, 8, 6, 8).mean(dim=(3, 5), dtype=torch.float64)
    assert float((means - lr[:, :2].double()).abs().max()) < 1e-3
    assert torch.equal(after[:, 0], before[:, 0])  # the air temperature is as before
    # an LR cell whose dew point is above its temperature gives a saturated block
    wet = lr.clone()
    wet[0, 1, 2, 2] = wet[0, 0, 2, 2] + 1.5
    with torch.inference_mode():
        block = capped(wet)[0, :, 16:24, 16:24]
    assert float((block[1] - block[0]).abs().max()) < 1e-4


def exported_clock_model(tmp_path) -> tuple[Path, np.ndarray]:
    """A clock network exported as `sr-export to-onnx` traces it, and an LR input in kelvin."""
    physical = PhysicalUnitsSR(clock_network(), MEAN, STD, MEAN, [6.5, 5.5]).eval()
    lr = lr_with_clock(12, 12).numpy()
    path = tmp_path / "clock.onnx"
    path.write_bytes(trace_to_onnx(physical, lr, DEFAULT_OPSET).SerializeToString())
    return path, lr


def test_the_exported_graph_normalizes_the_raw_input_before_any_other_op(tmp_path):
    # a Slice (or anything) between the input and its normalization lets a BF16 engine round the
    # raw kelvin: 285 K in BF16 is 2 K coarse
    path, lr = exported_clock_model(tmp_path)
    graph = onnx.load(str(path)).graph
    readers = [n for n in graph.node if LR_INPUT in n.input]
    assert [n.op_type for n in readers] == ["Sub"]
    by_name = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    mean = by_name[readers[0].input[1]].ravel()
    np.testing.assert_array_equal(mean, [*MEAN, 0.0, 0.0, 0.0, 0.0])


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="extra openvino absent")
@pytest.mark.skipif(not has_bf16(), reason="this CPU has neither avx512_bf16 nor AMX")
def test_openvino_bf16_runs_a_clock_model_within_the_reduced_precision_gate(tmp_path):
    import openvino as ov

    path, lr = exported_clock_model(tmp_path)
    reference = onnxruntime_predict(str(path), lr)
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "bf16"})
    assert compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.bf16
    result = compare(reference, np.asarray(compiled(lr)[0]), with_ssim=False)
    assert 0 < result.rmse <= REDUCED_MAX_RMSE_K, result.line("K")
