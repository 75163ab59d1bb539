"""Load trained weights from sr-edge checkpoints and the ESA demo's formats.

Accepted:
- sr-edge Lightning checkpoints (hyper-parameters and normalization saved inside);
- the demo's Lightning ``.ckpt`` (``state_dict`` keys prefixed ``model.``, no hyper-parameters)
  plus its ``config.json``;
- the demo's plain ``.pt`` network state dict plus its ``config.json``.

Every file is read with ``torch.load(..., weights_only=True)``: a checkpoint is data, never code.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from sr_export.model import SRResNet, SRResNetConfig
from sr_runtime.description import ModelDescription, StaticSpec, VariableSpec
from sr_runtime.errors import ModelMismatchError, UsageError
from sr_runtime.paths import sha256_file

CELSIUS_OFFSET = 273.15
SR_EDGE_HPARAMS_KEY = "sr_edge"
DEMO_STAT_KEYS = ("lr_mean", "lr_std", "hr_mean", "hr_std")
DEMO_MODEL_KEYS = ("large_kernel_size", "small_kernel_size", "n_channels", "n_blocks",
                   "scaling_factor")


@dataclass
class LoadedCheckpoint:
    """A network ready for inference (eval mode) and the description that goes with it."""

    model: SRResNet
    description: ModelDescription
    source_format: str  # "sr-edge", "demo-lightning" or "demo-state-dict"


def _read_torch_file(path: Path) -> object:
    if not path.is_file():
        raise UsageError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, zip errors, forbidden globals
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(
            f"{path} is not a loadable weights-only PyTorch checkpoint ({first_line}); "
            "pass a Lightning .ckpt or a state-dict .pt"
        ) from exc


def _strip_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The network's weights from a LightningModule state dict (``self.model`` -> ``model.``).

    Other entries of the module (metric states, buffers) are not part of the network.
    """
    if any(key.startswith(prefix) for key in state):
        return {key[len(prefix):]: value for key, value in state.items()
                if key.startswith(prefix)}
    return state


def _guess_from_state(state: dict[str, torch.Tensor]) -> dict[str, int]:
    """Architecture values readable from weight shapes, to suggest fixes for a wrong config."""
    guess: dict[str, int] = {}
    first = state.get("conv_block1.conv_block.0.weight")
    if first is not None and first.ndim == 4:
        guess["n_channels"], guess["in_channels"], guess["large_kernel_size"] = (
            int(first.shape[0]), int(first.shape[1]), int(first.shape[2]))
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"residual_blocks\.(\d+)\.", k))}
    if blocks:
        guess["n_blocks"] = max(blocks) + 1
    ups = {int(m.group(1)) for k in state
           if (m := re.match(r"subpixel_convolutional_blocks\.(\d+)\.", k))}
    if ups:
        guess["scaling_factor"] = 2 ** (max(ups) + 1)
    last = state.get("conv_block3.conv_block.0.weight")
    if last is not None and last.ndim == 4:
        guess["out_channels"] = int(last.shape[0])
    return guess


def build_model(config: SRResNetConfig, state: dict[str, torch.Tensor], origin: str,
                fix_hint: str) -> SRResNet:
    """Instantiate the network and load weights, explaining any architecture mismatch."""
    model = SRResNet(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(k for k in set(expected) & set(state)
                         if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong_shape:
        guess = _guess_from_state(state)
        differs = {k: v for k, v in guess.items() if getattr(config, k, v) != v}
        parts = [f"{origin} does not match an SRResNet with {config.to_dict()}"]
        if missing:
            parts.append(f"missing keys ({len(missing)}): {', '.join(missing[:4])}"
                         + (" ..." if len(missing) > 4 else ""))
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected[:4])}"
                         + (" ..." if len(unexpected) > 4 else ""))
        if wrong_shape:
            parts.append(f"shape mismatch: {', '.join(wrong_shape[:4])}")
        if differs and not unexpected_is_foreign(unexpected, expected):
            settings = ", ".join(f"{k}: {v}" for k, v in differs.items())
            parts.append(f"the weights look like {settings}; set that in {fix_hint}")
        else:
            parts.append(f"this is not an sr-edge/demo SRResNet checkpoint; check {fix_hint}")
        raise ModelMismatchError("; ".join(parts))
    model.load_state_dict(state, strict=True)
    return model.eval()


def unexpected_is_foreign(unexpected: list[str], expected: dict[str, torch.Tensor]) -> bool:
    """True when none of the unexpected keys belongs to SRResNet's module families."""
    families = {key.split(".")[0] for key in expected}
    return bool(unexpected) and not any(key.split(".")[0] in families for key in unexpected)


def _demo_description(config_path: Path | None, state: dict[str, torch.Tensor],
                      fmt: str) -> tuple[SRResNetConfig, ModelDescription]:
    if config_path is None:
        raise UsageError(
            f"a demo-format checkpoint ({fmt}) carries no architecture or normalization: pass "
            "--config path/to/config.json (the one written next to it by the demo's training)"
        )
    if not config_path.is_file():
        raise UsageError(f"config file not found: {config_path}")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as exc:
        raise UsageError(f"{config_path} is not valid JSON ({exc.msg} at line {exc.lineno})") \
            from exc
    model_section = config.get("model") or {}
    dataset = config.get("dataset") or {}
    missing = [f"model.{k}" for k in DEMO_MODEL_KEYS if k not in model_section]
    missing += [f"dataset.{k}" for k in DEMO_STAT_KEYS if k not in dataset]
    if missing:
        raise UsageError(f"{config_path} lacks values needed to rebuild the model: "
                         f"{', '.join(missing)}; add them (the demo writes them after training)")
    arch = model_section.get("architecture", "SRResNet")
    if arch != "SRResNet":
        raise ModelMismatchError(f"{config_path} describes a {arch!r} model; sr-edge exports "
                                 "SRResNet only")
    guess = _guess_from_state(state)
    model_config = SRResNetConfig(
        **{k: int(model_section[k]) for k in DEMO_MODEL_KEYS},
        in_channels=guess.get("in_channels", 1),
        out_channels=guess.get("out_channels", 1),
        output_activation="relu",  # the demo's final ReLU, reproduced exactly
    )
    variables = [str(v) for v in dataset.get("data_target", dataset.get("data_variable", ["t2m"]))]
    unit = str(dataset.get("unit", "Temperature (C)"))
    in_celsius = "(C)" in unit or unit.strip().lower() in ("c", "degc", "celsius")
    offset = CELSIUS_OFFSET if in_celsius else 0.0
    specs = tuple(
        VariableSpec(name=name, units="K",
                     lr_mean=float(dataset["lr_mean"]) + offset, lr_std=float(dataset["lr_std"]),
                     hr_mean=float(dataset["hr_mean"]) + offset, hr_std=float(dataset["hr_std"]))
        for name in variables
    )
    description = ModelDescription(
        scale=model_config.scaling_factor, variables=specs, architecture="SRResNet",
        arch_params=model_config.to_dict(), halo_lr=model_config.halo_lr(),
    )
    return model_config, description


def load_checkpoint(path: str | Path, config_path: str | Path | None = None) -> LoadedCheckpoint:
    """Load any supported checkpoint into an eval-mode SRResNet and its description."""
    path = Path(path)
    config_path = Path(config_path) if config_path is not None else None
    raw = _read_torch_file(path)
    if not isinstance(raw, dict):
        raise UsageError(f"{path} holds a {type(raw).__name__}, not a checkpoint dictionary")

    hparams = raw.get("hyper_parameters") or {}
    if "state_dict" in raw and SR_EDGE_HPARAMS_KEY in hparams:
        saved = hparams[SR_EDGE_HPARAMS_KEY]
        model_config = SRResNetConfig.from_dict(saved["model"])
        state = _strip_prefix(raw["state_dict"], "model.")
        description = ModelDescription(
            scale=model_config.scaling_factor,
            variables=tuple(VariableSpec(**v) for v in saved["variables"]),
            arch_params=model_config.to_dict(),
            halo_lr=model_config.halo_lr(),
            static_inputs=tuple(StaticSpec(**s) for s in saved.get("static_inputs", [])),
            lr_step_deg=float(saved.get("lr_step_deg", 0.0)),
        )
        fmt, hint = "sr-edge", "the checkpoint's hyper_parameters"
    elif "state_dict" in raw:
        state = _strip_prefix(raw["state_dict"], "model.")
        model_config, description = _demo_description(config_path, state, "Lightning .ckpt")
        fmt, hint = "demo-lightning", f"{config_path} (model section)"
    elif raw and all(isinstance(v, torch.Tensor) for v in raw.values()):
        state = _strip_prefix(raw, "model.")
        model_config, description = _demo_description(config_path, state, "state-dict .pt")
        fmt, hint = "demo-state-dict", f"{config_path} (model section)"
    else:
        raise UsageError(f"{path} is neither a Lightning checkpoint (no 'state_dict') nor a "
                         "state dict of tensors")

    model = build_model(model_config, state, str(path), hint)
    description = description.with_updates(checkpoint_sha256=sha256_file(path))
    return LoadedCheckpoint(model=model, description=description, source_format=fmt)
