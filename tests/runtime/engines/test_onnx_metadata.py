"""The runtime's ONNX metadata reader against files the ``onnx`` package writes."""

from __future__ import annotations

import numpy as np
import pytest

from sr_runtime.engines.onnx_metadata import read_onnx_metadata
from sr_runtime.errors import UsageError

onnx = pytest.importorskip("onnx", reason="the export extra is not installed")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def model_with(metadata: dict[str, str], weights: int = 16) -> onnx.ModelProto:
    """A one-Conv model with ``weights`` output channels of initializer and ``metadata``."""
    w = np.random.default_rng(0).normal(size=(weights, 1, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["lr", "w"], ["hr"], pads=[1, 1, 1, 1])], "g",
        [helper.make_tensor_value_info("lr", TensorProto.FLOAT, [1, 1, None, None])],
        [helper.make_tensor_value_info("hr", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)],
                              producer_name="test", doc_string="a model")
    helper.set_model_props(model, metadata)
    return model


def test_reads_what_onnx_wrote_unicode_and_long_values_included(tmp_path):
    metadata = {"sr_edge.description": '{"scale": 8, "note": "2 m temperature, \u00b0C"}',
                "empty": "", "long": "x" * 100_000, "ключ": "значение"}
    path = tmp_path / "m.onnx"
    onnx.save(model_with(metadata, weights=4096), path)  # a graph field larger than 128 kB
    assert read_onnx_metadata(path) == metadata


def test_a_model_without_metadata_has_none(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(model_with({}), path)
    assert read_onnx_metadata(path) == {}


@pytest.mark.parametrize("content", [b"", b"\xff\xff\xff", b"\x08\x07garbage" * 10,
                                     b"\x72\x10short"])
def test_a_file_that_is_not_onnx_is_one_clear_error(tmp_path, content):
    path = tmp_path / "broken.onnx"
    path.write_bytes(content)
    with pytest.raises(UsageError, match="broken.onnx is not an ONNX model"):
        read_onnx_metadata(path)


def test_a_truncated_model_is_refused(tmp_path):
    path = tmp_path / "cut.onnx"
    data = model_with({"k": "v"}).SerializeToString()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UsageError, match="cut.onnx is not an ONNX model"):
        read_onnx_metadata(path)


def test_a_missing_file_says_so(tmp_path):
    with pytest.raises(UsageError, match="model not found"):
        read_onnx_metadata(tmp_path / "none.onnx")
