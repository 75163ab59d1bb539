"""Synthetic but realistic physical LR fields for parity and accuracy gates (no torch needed).

Used when no DataCube sample is given: smooth waves plus noise around each variable's LR mean,
with its LR standard deviation, so that every backend is checked on values like real kelvin.
"""

from __future__ import annotations

import numpy as np

from sr_runtime.description import ModelDescription
from sr_runtime.units import dew_point_pairs


def sample_input(description: ModelDescription, shape: tuple[int, int] = (40, 48),
                 batch: int = 2, seed: int = 0) -> np.ndarray:
    """A smooth, realistic-looking physical field for parity checks when no data is given
    (then the model's clock channels, for models that take them); a dew point never above its
    air temperature."""
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
    for dew, air in dew_point_pairs(description.variable_names):  # physical: never above
        out[:, dew] = np.minimum(out[:, dew], out[:, air])
    if not description.clock_inputs:
        return out
    from sr_runtime.clock import clock_fields  # real clock channels: hours apart, 0-30 E

    times = np.datetime64("2024-10-11T00", "ns") + np.arange(batch) * np.timedelta64(7, "h")
    return np.concatenate([out, clock_fields(times, np.linspace(0.0, 30.0, w), h)], axis=1)


#: Typical values of the static fields sr-edge knows, for probes when no store is given:
#: (low, high) clip of the physical range, so a probe never feeds an impossible field.
STATIC_CLIP = {"lsm": (0.0, 1.0), "orog": (-500.0, 9000.0)}


def sample_statics(description: ModelDescription, shape: tuple[int, int] = (40, 48),
                   batch: int = 2, seed: int = 0) -> np.ndarray | None:
    """(N, S, s*h, s*w) static HR fields for an LR field of ``shape`` (None for LR-only
    models): smooth terrain-like waves around each static input's mean, with its std."""
    if not description.static_inputs:
        return None
    rng = np.random.default_rng(seed + 7919)
    s = description.scale
    h, w = shape[0] * s, shape[1] * s
    y, x = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    out = np.empty((batch, len(description.static_inputs), h, w), dtype=np.float32)
    for b in range(batch):
        for c, spec in enumerate(description.static_inputs):
            phase = rng.uniform(0, 2 * np.pi, size=3)
            wave = (np.sin(5 * x + phase[0]) * np.cos(4 * y + phase[1])
                    + 0.3 * np.sin(23 * (x - y) + phase[2]))
            values = spec.mean + spec.std * (wave + rng.normal(0, 0.1, size=(h, w)))
            low, high = STATIC_CLIP.get(spec.name, (-np.inf, np.inf))
            out[b, c] = np.clip(values, low, high)
    return out


def sample_feed(description: ModelDescription, shape: tuple[int, int] = (40, 48),
                batch: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """Every graph input for a parity check, by name: ``lr`` and, for models with static
    inputs, ``hr_static`` on the matching HR grid."""
    from sr_runtime.description import HR_STATIC_INPUT, LR_INPUT

    feed = {LR_INPUT: sample_input(description, shape, batch, seed)}
    statics = sample_statics(description, shape, batch, seed)
    if statics is not None:
        feed[HR_STATIC_INPUT] = statics
    return feed
