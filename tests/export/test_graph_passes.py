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


def _feed(model, seed: int = 0) -> dict[str, np.ndarray]:
    from sr_runtime.engines.onnxruntime import read_description
    from sr_runtime.synthetic import sample_feed

    return sample_feed(read_description(model), (9, 11), batch=2, seed=seed)


def test_a_conv_of_step_and_static_channels_becomes_two_convs_and_a_sum(static_models):
    from sr_export.graph_passes import split_conv_at_static_inputs
    from sr_export.static_split import split_model

    proto = onnx.load(static_models["two"])  # hr_conv reads cat([upsampled LR, static conv])
    feed = _feed(static_models["two"])
    before = open_session(proto.SerializeToString(), options=None).run(None, feed)[0]
    convs = [n.op_type for n in proto.graph.node].count("Conv")
    concats = [n.op_type for n in proto.graph.node].count("Concat")
    kernels = len(proto.graph.initializer)
    assert split_static_part_convs(proto) == 0  # before the pass: only the static conv
    assert split_conv_at_static_inputs(proto) == 1
    onnx.checker.check_model(proto, full_check=True)
    assert [n.op_type for n in proto.graph.node].count("Conv") == convs + 1
    assert [n.op_type for n in proto.graph.node].count("Concat") == concats - 1  # only it read it
    assert len(proto.graph.initializer) == kernels + 1  # two halves for one whole kernel
    after = open_session(proto.SerializeToString(), options=None).run(None, feed)[0]
    np.testing.assert_allclose(after, before, rtol=0, atol=1e-4)  # K: summation order only
    # the static half now belongs to the static part, so a run computes it once per tile
    assert split_static_part_convs(proto) == 1
    static_part, _ = split_model(proto, "sha")
    assert any(n.op_type == "Conv" and n.input[1].endswith("_static_weight")
               for n in static_part.graph.node)
    assert split_conv_at_static_inputs(proto) == 0  # nothing left to split


def split_static_part_convs(proto: onnx.ModelProto) -> int:
    """How many convs of a Concat's static share the static split would hoist."""
    from sr_export.static_split import static_inputs_of, static_nodes

    return sum(n.op_type == "Conv" and n.input[1].endswith("_static_weight")
               for n in static_nodes(proto.graph, static_inputs_of(proto.graph)))


def test_a_conv_of_step_channels_alone_is_left_alone():
    from sr_export.graph_passes import split_conv_at_static_inputs

    proto = traced(ShuffleThenUnshuffle())  # no static input at all
    nodes = [n.op_type for n in proto.graph.node]
    assert split_conv_at_static_inputs(proto) == 0
    assert [n.op_type for n in proto.graph.node] == nodes
