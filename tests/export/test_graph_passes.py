"""Exact passes on the exported graph (sr_export.graph_passes), on real traced graphs."""

from __future__ import annotations

import numpy as np
import onnx
import torch
from torch import nn

from sr_export.graph_passes import drop_unshuffle_of_shuffle
from sr_export.onnx_export import DEFAULT_OPSET
from sr_export.rewrites import ShuffleAsTransposedConv, UnshuffleAsConv
from sr_runtime.engines.onnxruntime import open_session


class ShuffleThenUnshuffle(nn.Module):
    """x -> PixelShuffle(2) (as a one-hot ConvTranspose) -> y; y feeds a 3x3 conv directly and,
    PixelUnshuffled (a one-hot strided conv), a 1x1 conv: the pair the static model's tail
    makes. ``real``: the shuffle's kernel is perturbed (it computes, so nothing is dropped)."""

    def __init__(self, real: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.shuffle = ShuffleAsTransposedConv(2, 3)
        if real:
            with torch.no_grad():
                self.shuffle.conv.weight[0, 0, 0, 0] = 0.5
        self.unshuffle = UnshuffleAsConv(2, 3)
        self.hr_conv = nn.Conv2d(3, 2, 3, padding=1)
        self.lr_conv = nn.Conv2d(12, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.shuffle(x)
        return self.hr_conv(y), self.lr_conv(self.unshuffle(y))


def traced(module: nn.Module) -> onnx.ModelProto:
    x = torch.randn(1, 12, 5, 6)
    return torch.onnx.export(module.eval(), (x,), dynamo=True, external_data=False,
                             opset_version=DEFAULT_OPSET).model_proto


def run(proto: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    return open_session(proto.SerializeToString(), options=None).run(None, {"x": x})


def test_an_unshuffle_of_a_shuffle_output_reads_the_shuffle_input_bit_identically():
    proto = traced(ShuffleThenUnshuffle())
    x = np.random.default_rng(2).normal(size=(1, 12, 5, 6)).astype(np.float32)
    before = run(proto, x)
    convs = sum(n.op_type == "Conv" for n in proto.graph.node)
    assert drop_unshuffle_of_shuffle(proto) == 1
    onnx.checker.check_model(proto, full_check=True)
    assert sum(n.op_type == "Conv" for n in proto.graph.node) == convs - 1
    assert [n.op_type for n in proto.graph.node].count("ConvTranspose") == 1  # hr_conv's input
    for a, b in zip(run(proto, x), before, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_shuffle_that_computes_keeps_its_unshuffle():
    proto = traced(ShuffleThenUnshuffle(real=True))
    assert drop_unshuffle_of_shuffle(proto) == 0
