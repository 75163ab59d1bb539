"""The one-hot kernel that writes PixelShuffle / PixelUnshuffle as a grouped (transposed) conv.

sr-edge's exact rewrites (:mod:`sr_export.rewrites`) use it because ONNX Runtime runs such a conv
in its blocked layout faster than a DepthToSpace or a Reshape/Transpose; the OpenVINO engine
(:mod:`sr_runtime.engines.openvino_graph`) and the export's graph pass recognize it by it.
"""

from __future__ import annotations

import numpy as np


def one_hot_shuffle_kernel(channels: int, factor: int) -> np.ndarray:
    """Weights (C*f*f, 1, f, f), ONNX layout for both ConvTranspose (in, out/groups, kh, kw) and
    Conv (out, in/groups, kh, kw) with ``groups=C``, kernel and stride f: channel
    ``c*f*f + a*f + b`` is phase (a, b) of channel c (PixelShuffle's order), weight 1, else 0."""
    f = int(factor)
    kernel = np.zeros((channels * f * f, 1, f, f), np.float32)
    for phase in range(f * f):
        kernel[phase::f * f, 0, phase // f, phase % f] = 1.0
    return kernel


def shuffle_factor(weights: np.ndarray) -> int | None:
    """``f`` when ``weights`` (any shape holding (C*f*f, 1, f, f) in order) are exactly
    :func:`one_hot_shuffle_kernel` for some C and f >= 2, else None."""
    w = np.asarray(weights)
    if w.ndim < 3 or w.shape[-1] != w.shape[-2] or w.shape[-1] < 2:
        return None
    f = int(w.shape[-1])
    if w.size % (f ** 4):
        return None
    channels = w.size // f ** 4
    expected = one_hot_shuffle_kernel(channels, f)
    return f if np.array_equal(w.reshape(expected.shape), expected) else None
