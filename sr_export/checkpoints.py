"""Load trained weights from sr-edge checkpoints and the ESA demo's formats.

Accepted:
- sr-edge Lightning checkpoints (hyper-parameters and normalization saved inside);
- the demo's Lightning ``.ckpt`` (``state_dict`` keys prefixed ``model.``, no hyper-parameters)
  plus its ``config.json``;
- the demo's plain ``.pt`` network state dict plus its ``config.json``.

Every file is read with ``torch.load(..., weights_only=True)``: a checkpoint is data, never code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from sr_export.demo_config import read_demo_config
from sr_export.model import SRResNet, SRResNetConfig
from sr_runtime.clock import CLOCK_FEATURES
from sr_runtime.description import ModelDescription, StaticSpec, VariableSpec
from sr_runtime.errors import ModelMismatchError, UsageError
from sr_runtime.paths import sha256_file

SR_EDGE_HPARAMS_KEY = "sr_edge"


@dataclass
class LoadedCheckpoint:
    """A network ready for inference (eval mode) and the description that goes with it."""

    model: SRResNet
    description: ModelDescription
    source_format: str  # "sr-edge", "demo-lightning" or "demo-state-dict"

    def with_conservation(self, conservation: str) -> LoadedCheckpoint:
        """The same weights with the block-mean conservation layer switched on or off (it has
        no parameters, so a model trained without it can be exported with it, and scored)."""
        import dataclasses

        try:
            config = dataclasses.replace(self.model.config, conservation=conservation)
        except ValueError as exc:
            raise UsageError(f"--conservation: {exc}") from None
        self.model.config = config
        return dataclasses.replace(self, description=self.description.with_updates(
            arch_params=config.to_dict()))


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
    demo = read_demo_config(config_path)
    guess = _guess_from_state(state)
    channels = {"in_channels": guess.get("in_channels", 1),
                "out_channels": guess.get("out_channels", 1)}
    for key, count in channels.items():
        if count != len(demo.targets):
            raise ModelMismatchError(
                f"{config_path} names {len(demo.targets)} variable(s) "
                f"({', '.join(demo.targets)}) but the weights have {count} "
                f"{key.split('_')[0]}put channel(s); list one name per channel in "
                "dataset.data_variable and dataset.data_target")
    try:
        model_config = SRResNetConfig(**demo.model, **channels,
                                      output_activation="relu")  # the demo's final ReLU
    except ValueError as exc:
        raise UsageError(f"{config_path}: {exc}") from None
    specs = tuple(VariableSpec(name=name, units="K", **demo.stats_k) for name in demo.targets)
    description = ModelDescription(
        scale=model_config.scaling_factor, variables=specs, architecture="SRResNet",
        arch_params=model_config.to_dict(), halo_lr=model_config.halo_lr(),
    )
    return model_config, description


def _sr_edge_description(saved: object, path: Path) -> tuple[SRResNetConfig, ModelDescription]:
    """Architecture and description saved by ``sr-export train``, checked like ONNX metadata."""
    try:
        model_config = SRResNetConfig.from_dict(saved["model"])  # type: ignore[index]
        description = ModelDescription(
            scale=model_config.scaling_factor,
            variables=tuple(VariableSpec(**v) for v in saved["variables"]),  # type: ignore[index]
            arch_params=model_config.to_dict(),
            halo_lr=model_config.halo_lr(),
            static_inputs=tuple(StaticSpec(**s) for s in
                                saved.get("static_inputs", [])),  # type: ignore[union-attr]
            lr_step_deg=float(saved.get("lr_step_deg", 0.0)),  # type: ignore[union-attr]
            clock_inputs=CLOCK_FEATURES if model_config.clock_channels else (),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UsageError(f"{path}: its sr-edge hyper-parameters are incomplete or invalid "
                         f"({type(exc).__name__}: {exc}); retrain or re-save it with sr-export "
                         "train") from None
    ModelDescription.from_json(description.to_json(), str(path))  # same checks as ONNX metadata
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
        model_config, description = _sr_edge_description(hparams[SR_EDGE_HPARAMS_KEY], path)
        state = _strip_prefix(raw["state_dict"], "model.")
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
