"""The Winograd probe times a correct transform: its graph gives the conv's output."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from benchmarks.probe_winograd import graphs, main


@pytest.mark.parametrize("channels, outputs, size", [(3, 5, 8), (16, 32, 12)])
def test_the_winograd_graph_equals_the_conv(channels, outputs, size):
    rng = np.random.default_rng(channels)
    weight = rng.standard_normal((outputs, channels, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(outputs).astype(np.float32)
    x = rng.standard_normal((1, channels, size, size)).astype(np.float32)
    results = [ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
               .run(None, {"x": x})[0] for m in graphs(weight, bias, size)]
    assert results[0].shape == (1, outputs, size, size)
    np.testing.assert_allclose(results[1], results[0], rtol=0, atol=1e-4 * np.abs(results[0]).max())


def test_an_odd_size_is_refused():
    with pytest.raises(ValueError, match="even"):
        graphs(np.zeros((2, 2, 3, 3), np.float32), np.zeros(2, np.float32), 7)


def test_the_probe_reports_both_graphs(capsys):
    assert main(["--channels", "4", "--outputs", "8", "--size", "8", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "machine:" in out and "winograd against conv: max abs difference" in out
    assert "conv:" in out and "winograd:" in out
