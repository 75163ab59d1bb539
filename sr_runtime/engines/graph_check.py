"""Check at load that an ONNX graph does what its description claims, with ONNX Runtime alone.

The description (scale, variables, receptive-field halo) is metadata anyone can get wrong; the
graph is what runs. Before a model is used, a few tiny probe inputs go through it:

- inputs and outputs: input ``lr`` (N x C x h x w, any h and w), float32, and ``hr_static``
  (N x S x s*h x s*w) exactly when the description lists S static inputs;
- scale and channels: the output of an h x w probe must be C x (s*h) x (s*w);
- finite output on a finite, typical input (NaN/inf weights show up here);
- receptive field: one LR cell of a random field is changed (up and down) and the furthest LR row
  (column) whose HR cells change at all is the receptive-field radius along that axis. Outside the
  receptive field the computation is bit-identical, so "changed" needs no tolerance. For models
  with static inputs the s x s static HR cells under one LR cell are changed the same way: the
  halo must cover how far both inputs reach. Tall and wide probes three cells across keep this
  cheap (tens of milliseconds for the shipped model), and the probe grows until the change no
  longer reaches its border.

The runtime tiles with ``max(claimed halo, measured radius)``, so a description that claims too
small a halo can no longer cause seams. The ``onnx`` package is not needed (it is not part of the
runtime install).

What the probes found depends only on the model file's bytes, its description and the ONNX
Runtime version, so a passed check is remembered on disk under that key
(``$SR_EDGE_CHECK_CACHE``, else ``$XDG_CACHE_HOME/sr-edge/graph-checks``; ``off`` turns it off):
the next ``sr-run`` on the same model skips the probes (tens of milliseconds of start-up). A
model that fails a check is never remembered, and an unreadable entry is probed again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sr_runtime.description import HR_STATIC_INPUT, LR_INPUT, ModelDescription
from sr_runtime.description_checks import PHYSICAL_RANGE
from sr_runtime.errors import ModelMismatchError

if TYPE_CHECKING:
    import onnxruntime as ort

LOG = logging.getLogger("sr_runtime")

#: The probe grows (doubling) up to this radius; a change reaching further means the output
#: depends on the whole field, which halo tiles cannot reproduce.
MAX_PROBE_RADIUS_LR = 256
MIN_PROBE_RADIUS_LR = 8
PROBE_WIDTH = 3  # cells across a tall (wide) probe: the changed cell has neighbours both sides
#: Typical-field centre for the probe, per unit (the graph's own normalization applies inside).
PROBE_CENTRE = {"K": (200.0, 320.0)}

#: ``run(lr)`` for LR-only models, ``run(lr, hr_static)`` for models with static inputs.
Run = Callable[..., np.ndarray]


@dataclass(frozen=True)
class GraphCheck:
    """What the probes found: the graph's scale and its receptive-field radius in LR cells."""

    scale: int
    receptive_field_lr: int
    claimed_halo_lr: int

    @property
    def halo_lr(self) -> int:
        """The halo to tile with: never less than what the graph needs."""
        return max(self.claimed_halo_lr, self.receptive_field_lr)


_CHECKED: dict[tuple[str, str], GraphCheck] = {}
CHECK_CACHE_ENV = "SR_EDGE_CHECK_CACHE"
#: Bump when the probes change what they measure: older entries are then ignored.
CHECK_FORMAT = 1


def check_cache_dir() -> Path | None:
    """Where passed checks are remembered, or None when ``$SR_EDGE_CHECK_CACHE`` is ``off``."""
    override = os.environ.get(CHECK_CACHE_ENV)
    if override:
        return None if override.lower() == "off" else Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "sr-edge" / "graph-checks"


def _cache_file(key: str, description: ModelDescription) -> Path | None:
    folder = check_cache_dir()
    if folder is None:
        return None
    try:
        import onnxruntime

        runtime = onnxruntime.__version__
    except ImportError:
        runtime = ""
    digest = hashlib.sha256(json.dumps([CHECK_FORMAT, key, description.to_json(), runtime])
                            .encode()).hexdigest()
    return folder / f"{digest}.json"


def _remembered(path: Path | None, description: ModelDescription) -> GraphCheck | None:
    if path is None or not path.is_file():
        return None
    try:
        found = GraphCheck(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if found.scale != description.scale or found.claimed_halo_lr != description.halo_lr:
        return None
    return found


def _remember(path: Path | None, result: GraphCheck) -> None:
    if path is None:
        return
    from sr_runtime.paths import write_atomically

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(json.dumps(asdict(result)).encode(), path)
    except OSError as exc:  # a read-only home: probe again next time
        LOG.debug("graph check not cached in %s: %s", path.parent, exc)


def _fix() -> str:
    return "re-export it with `sr-export to-onnx CHECKPOINT`"


def _tensor_arg(arg, name: str, origin: str) -> list:
    """A float32 rank-4 input ``name``; its shape (ints for fixed axes, names for free ones)."""
    if arg.type != "tensor(float)":
        raise ModelMismatchError(f"{origin}: input {name!r} is {arg.type}, not "
                                 f"tensor(float) (float32): {_fix()}")
    shape = list(arg.shape) if arg.shape is not None else []
    if len(shape) != 4:
        raise ModelMismatchError(f"{origin}: input {name!r} has shape {shape}, not "
                                 f"N x C x h x w: {_fix()}")
    return shape


def check_signature(inputs: list, description: ModelDescription, origin: str) -> None:
    """Input ``lr`` (float32, N x C x h x w, free h and w, C = number of variables) and, when
    the description lists static inputs, ``hr_static`` (float32, N x S x s*h x s*w, S = number
    of static inputs); nothing else.

    ``inputs`` are ONNX Runtime ``NodeArg`` objects (``name``, ``shape``, ``type``).
    """
    names = [i.name for i in inputs]
    statics = description.static_inputs
    static_names = ", ".join(s.name for s in statics)
    if statics and HR_STATIC_INPUT not in names:
        raise ModelMismatchError(f"{origin}: its description lists static inputs "
                                 f"({static_names}) but its graph has no input "
                                 f"{HR_STATIC_INPUT!r} (it takes {', '.join(map(repr, names))})"
                                 f": {_fix()}")
    if not statics and HR_STATIC_INPUT in names:
        raise ModelMismatchError(f"{origin}: its graph takes static HR fields "
                                 f"({HR_STATIC_INPUT!r}) but its description lists no "
                                 f"static_inputs, so sr-edge cannot tell which fields to feed: "
                                 f"{_fix()}")
    wanted = [LR_INPUT, HR_STATIC_INPUT] if statics else [LR_INPUT]
    if sorted(names) != sorted(wanted):
        takes = (f"one input {LR_INPUT!r} (N x C x h x w physical fields)" if not statics else
                 f"{LR_INPUT!r} (N x C x h x w physical fields) and {HR_STATIC_INPUT!r} (the "
                 "static HR fields) when their description lists static inputs")
        raise ModelMismatchError(f"{origin} takes the input(s) {', '.join(map(repr, names))}; "
                                 f"sr-edge models take {takes}: {_fix()}")
    by_name = {i.name: i for i in inputs}
    shape = _tensor_arg(by_name[LR_INPUT], LR_INPUT, origin)
    channels = description.input_channels
    if isinstance(shape[1], int) and shape[1] != channels:
        clock = (f" and {len(description.clock_inputs)} clock input(s)"
                 if description.clock_inputs else "")
        raise ModelMismatchError(f"{origin} takes {shape[1]} input channel(s) but its "
                                 f"description lists {len(description.variables)} variable(s) "
                                 f"({', '.join(description.variable_names)}){clock}: {_fix()}")
    if isinstance(shape[2], int) or isinstance(shape[3], int):
        raise ModelMismatchError(f"{origin} only takes LR fields of {shape[2]} x {shape[3]} "
                                 "cells; sr-edge models take any height and width (dynamic "
                                 f"axes): {_fix()}")
    if not statics:
        return
    static = _tensor_arg(by_name[HR_STATIC_INPUT], HR_STATIC_INPUT, origin)
    if isinstance(static[1], int) and static[1] != len(statics):
        raise ModelMismatchError(f"{origin} takes {static[1]} static channel(s) in "
                                 f"{HR_STATIC_INPUT!r} but its description lists "
                                 f"{len(statics)} static input(s) ({static_names}): {_fix()}")
    if isinstance(static[2], int) or isinstance(static[3], int):
        raise ModelMismatchError(f"{origin} only takes static fields of {static[2]} x "
                                 f"{static[3]} cells; {HR_STATIC_INPUT!r} must take any height "
                                 f"and width (dynamic axes): {_fix()}")


def _background(description: ModelDescription, shape: tuple[int, int]) -> np.ndarray:
    rng = np.random.default_rng(12)
    field = np.empty((1, len(description.variables), *shape), dtype=np.float32)
    for c, var in enumerate(description.variables):
        low, high = PROBE_CENTRE.get(var.units, PHYSICAL_RANGE.get(var.units, (0.0, 1.0)))
        centre = float(np.clip(var.lr_mean, low, high))
        spread = float(np.clip(var.lr_std, 0.5, 10.0))
        field[0, c] = centre + spread * rng.standard_normal(shape)
    if description.clock_inputs:  # a mid-latitude October noon: typical, in range
        from sr_runtime.clock import clock_fields

        clock = clock_fields(np.asarray([np.datetime64("2024-10-11T12", "ns")]),
                             np.linspace(5.0, 15.0, shape[1]), shape[0])
        field = np.concatenate([field, clock], axis=1)
    return field


def _static_background(description: ModelDescription,
                       shape: tuple[int, int]) -> np.ndarray | None:
    """Typical static HR fields under an LR probe of ``shape`` (None for LR-only models)."""
    from sr_runtime.synthetic import STATIC_CLIP

    if not description.static_inputs:
        return None
    rng = np.random.default_rng(13)
    s = description.scale
    field = np.empty((1, len(description.static_inputs), shape[0] * s, shape[1] * s),
                     dtype=np.float32)
    for c, spec in enumerate(description.static_inputs):
        low, high = STATIC_CLIP.get(spec.name, (-np.inf, np.inf))
        noise = rng.standard_normal(field.shape[2:])
        field[0, c] = np.clip(spec.mean + 0.5 * spec.std * noise, low, high)
    return field


def _call(run: Run, lr: np.ndarray, static: np.ndarray | None) -> np.ndarray:
    return np.asarray(run(lr) if static is None else run(lr, static))


def _spread(run: Run, description: ModelDescription, radius: int, axis: int,
            origin: str, changed_input: str = LR_INPUT) -> int:
    """Furthest LR cell (along ``axis``: 2 rows, 3 columns) changed by a change at the centre
    of ``changed_input``: the centre LR cell of ``lr``, or the s x s HR cells under it in
    every channel of ``hr_static``."""
    long_side = 2 * radius + 1
    shape = (long_side, PROBE_WIDTH) if axis == 2 else (PROBE_WIDTH, long_side)
    base = _background(description, shape)
    base_static = _static_background(description, shape)
    centre = (radius, PROBE_WIDTH // 2) if axis == 2 else (PROBE_WIDTH // 2, radius)
    scale = description.scale
    if changed_input == LR_INPUT:
        bump = 3.0 * np.asarray([np.clip(v.lr_std, 0.5, 10.0) for v in description.variables],
                                dtype=np.float32)
    else:
        bump = 2.0 * np.asarray([s.std for s in description.static_inputs], dtype=np.float32)
    rows = slice(centre[0] * scale, (centre[0] + 1) * scale)
    cols = slice(centre[1] * scale, (centre[1] + 1) * scale)
    outputs = []
    for sign in (0.0, 1.0, -1.0):
        probe = base.copy()
        static = None if base_static is None else base_static.copy()
        if changed_input == LR_INPUT:
            probe[0, :bump.size, centre[0], centre[1]] += sign * bump  # variables, not clock
        elif static is not None:
            static[0, :, rows, cols] += sign * bump[:, None, None]
        try:
            out = _call(run, probe, static)
        except Exception as exc:  # ONNX Runtime errors on shapes, ops, missing inputs
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else repr(exc)
            raise ModelMismatchError(f"{origin} cannot run a {shape[0]} x {shape[1]} LR field "
                                     f"({first}); sr-edge models take any field size: "
                                     f"{_fix()}") from None
        _check_output(out, probe.shape, description, origin)
        outputs.append(out.astype(np.float64))
    changed = np.maximum(np.abs(outputs[1] - outputs[0]), np.abs(outputs[2] - outputs[0]))
    per_cell = changed[0].max(axis=0)  # over channels: (s*h, s*w)
    lr_cells = per_cell.reshape(shape[0], scale, shape[1], scale).max(axis=(1, 3))
    profile = lr_cells.max(axis=1 if axis == 2 else 0)
    reached = np.nonzero(profile > 0)[0]
    if reached.size == 0:
        return 0
    return int(np.max(np.abs(reached - radius)))


def _check_output(out: np.ndarray, in_shape: tuple[int, ...], description: ModelDescription,
                  origin: str) -> None:
    n, c, h, w = in_shape
    scale, channels = description.scale, len(description.variables)
    if out.ndim != 4 or out.shape[0] != n:
        raise ModelMismatchError(f"{origin} turns a {n}x{c}x{h}x{w} input into "
                                 f"{'x'.join(map(str, out.shape))}, not N x C x H x W: {_fix()}")
    if out.shape[2:] != (scale * h, scale * w):
        ratio = out.shape[2] / h
        what = f"x{ratio:g}" if out.shape[2] * w == out.shape[3] * h else "by unequal factors"
        raise ModelMismatchError(
            f"{origin}: its graph upsamples {h}x{w} to {out.shape[2]}x{out.shape[3]} ({what}) "
            f"but its description says x{scale}: {_fix()}")
    if out.shape[1] != channels:
        raise ModelMismatchError(f"{origin} returns {out.shape[1]} channel(s) but its "
                                 f"description lists {channels} variable(s): {_fix()}")
    bad = int(np.count_nonzero(~np.isfinite(out)))
    if bad:
        raise ModelMismatchError(
            f"{origin} returns non-finite values (NaN/inf: {bad} of {out.size}) for a finite, "
            f"typical input: its weights are corrupt; {_fix()}")


def check_graph(run: Run, description: ModelDescription, origin: str,
                key: str | None = None) -> GraphCheck:
    """Probe ``run`` (N x C x h x w physical LR -> HR) against ``description``.

    ``key`` (the model file's sha256) caches the result for this process and, once passed, on
    disk (see the module's docstring): a model loaded again is not probed again.
    """
    cache_key = (key, description.to_json()) if key else None
    if cache_key is not None and cache_key in _CHECKED:
        return _CHECKED[cache_key]
    stored = _cache_file(key, description) if key else None
    result = _remembered(stored, description)
    if result is None:
        result = GraphCheck(description.scale, _receptive_field(run, description, origin),
                            description.halo_lr)
        _remember(stored, result)
    if result.halo_lr > result.claimed_halo_lr:
        LOG.warning("%s claims a %d-cell halo but its receptive field reaches %d LR cells; "
                    "tiling with %d", origin, result.claimed_halo_lr, result.receptive_field_lr,
                    result.halo_lr)
    if cache_key is not None:
        _CHECKED[cache_key] = result
    return result


def _receptive_field(run: Run, description: ModelDescription, origin: str) -> int:
    """The furthest LR cell (either axis) whose change reaches the output, by probing."""
    claimed = description.halo_lr
    measured = 0
    changed_inputs = [LR_INPUT, HR_STATIC_INPUT] if description.static_inputs else [LR_INPUT]
    for axis, changed_input in ((a, i) for a in (2, 3) for i in changed_inputs):
        radius = min(max(claimed + 2, MIN_PROBE_RADIUS_LR), MAX_PROBE_RADIUS_LR)
        while True:
            reach = _spread(run, description, radius, axis, origin, changed_input)
            if reach < radius:
                break
            if radius >= MAX_PROBE_RADIUS_LR:
                raise ModelMismatchError(
                    f"{origin}: a change in one LR cell changes the output more than "
                    f"{MAX_PROBE_RADIUS_LR} cells away (its output depends on the whole "
                    "field), so it cannot be run in halo tiles; sr-edge runs convolutional "
                    "models with a bounded receptive field")
            radius = min(2 * radius, MAX_PROBE_RADIUS_LR)
        measured = max(measured, reach)
    return measured


def checked(description: ModelDescription, check: GraphCheck) -> ModelDescription:
    """The description with the halo the graph needs."""
    if check.halo_lr == description.halo_lr:
        return description
    return description.with_updates(halo_lr=check.halo_lr)


def check_session(session: ort.InferenceSession, description: ModelDescription, origin: str,
                  key: str | None = None) -> GraphCheck:
    """:func:`check_signature` and :func:`check_graph` on an ONNX Runtime session."""
    check_signature(session.get_inputs(), description, origin)
    if not session.get_outputs():
        raise ModelMismatchError(f"{origin} has no output: {_fix()}")

    def run(lr: np.ndarray, hr_static: np.ndarray | None = None) -> np.ndarray:
        feed = {LR_INPUT: lr} if hr_static is None else {LR_INPUT: lr, HR_STATIC_INPUT: hr_static}
        return session.run(None, feed)[0]

    return check_graph(run, description, origin, key)


def check_onnx_file(path: Path) -> tuple[ModelDescription, GraphCheck]:
    """Description of an ``.onnx`` file with the halo its graph needs, checked on ORT CPU."""
    from sr_runtime.engines.onnxruntime import open_cpu_session
    from sr_runtime.paths import sha256_file

    session = open_cpu_session(path)
    metadata = session.get_modelmeta().custom_metadata_map
    description = ModelDescription.from_metadata(metadata, str(path))
    check = check_session(session, description, str(path), sha256_file(path))
    return checked(description, check), check
