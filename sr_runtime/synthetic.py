"""Synthetic but realistic physical LR fields for parity and accuracy gates (no torch needed).

Used when no DataCube sample is given: smooth waves plus noise around each variable's LR mean,
with its LR standard deviation, so that every backend is checked on values like real kelvin.
"""

from __future__ import annotations

import numpy as np

from sr_runtime.description import ModelDescription


def sample_input(description: ModelDescription, shape: tuple[int, int] = (40, 48),
                 batch: int = 2, seed: int = 0) -> np.ndarray:
    """A smooth, realistic-looking physical field for parity checks when no data is given."""
    rng = np.random.default_rng(seed)
    h, w = shape
    y, x = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    out = np.empty((batch, len(description.variables), h, w), dtype=np.float32)
    for b in range(batch):
        for c, var in enumerate(description.variables):
            phase = rng.uniform(0, 2 * np.pi, size=3)
            wave = np.sin(3 * x + phase[0]) + np.cos(4 * y + phase[1]) + 0.5 * np.sin(7 * (x + y)
                                                                                      + phase[2])
            noise = rng.normal(0, 0.2, size=(h, w))
            out[b, c] = var.lr_mean + var.lr_std * (wave + noise)
    return out
