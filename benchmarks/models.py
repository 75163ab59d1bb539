"""Benchmark models: seeded random-weight checkpoints, their ONNX exports, the shipped model.

Every benchmark model is written the way users get one: an sr-edge checkpoint (format of
:mod:`sr_export.checkpoints`) exported with :func:`sr_export.onnx_export.export_onnx` (which
refuses to write a file ONNX Runtime does not reproduce), plus the FP16 graph of
:mod:`sr_runtime.engines.tensorrt.fp16`. Nothing here is shipped; it needs the ``export`` extra.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sr_runtime.defaults import LR_ONLY_MODEL

#: The shipped default model and the checkpoint it was exported from (repo root).
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CHECKPOINT = REPO_ROOT / "models" / "sr-edge-t2m-x8.ckpt"
#: The checkpoint of the runtime's default model (orography-aware, t2m and d2m).
OROGRAPHY_CHECKPOINT = REPO_ROOT / "models" / "sr-edge-t2m-d2m-orog-x8.ckpt"

#: Normalization of the demo (t2m in degC there), in kelvin.
T2M_STATS_K = {"lr_mean": 283.157, "lr_std": 4.3036, "hr_mean": 283.244, "hr_std": 4.2342}


@dataclass(frozen=True)
class ModelSpec:
    """A model to benchmark: a random-weight architecture, or the shipped files."""

    name: str
    n_channels: int = 64
    n_blocks: int = 16
    seed: int = 0
    shipped: bool = False

    def label(self) -> str:
        if self.shipped:
            return f"{self.name} (shipped default model)"
        return f"{self.name} (SRResNet x8, {self.n_channels} ch, {self.n_blocks} blocks, " \
               f"random weights seed {self.seed})"


DEMO = ModelSpec("demo-64ch-16b")
CI = ModelSpec("ci-32ch-4b", n_channels=32, n_blocks=4)
TINY = ModelSpec("tiny-8ch-1b", n_channels=8, n_blocks=1)  # gate self-tests only
SHIPPED = ModelSpec("sr-edge-t2m-x8", shipped=True)


@dataclass(frozen=True)
class ModelFiles:
    """Files of one benchmark model; ``fp16`` is None where the conversion is unavailable."""

    spec: ModelSpec
    checkpoint: Path
    onnx: Path
    fp16: Path | None
    flops_per_lr_pixel: int
    fp16_skip_reason: str = ""
    reference: Path | None = None  # the last accepted ONNX artefact (see benchmarks.harness)
    reference_skip_reason: str = ""


def shipped_missing_reason(model: Path = LR_ONLY_MODEL, checkpoint: Path = DEFAULT_CHECKPOINT
                           ) -> str | None:
    """None when a shipped model (default: the LR-only one) and its checkpoint are present."""
    missing = [str(p.relative_to(REPO_ROOT)) for p in (model, checkpoint) if not p.is_file()]
    if missing:
        return f"shipped model {model.stem} not benchmarked: {', '.join(missing)} absent"
    return None


def random_network(spec: ModelSpec):
    """SRResNet of ``spec`` with seeded random weights and non-trivial BatchNorm statistics
    (so that BatchNorm folding is exercised), in eval mode."""
    import torch

    from sr_export.model import SRResNet, SRResNetConfig

    torch.manual_seed(spec.seed)
    config = SRResNetConfig(n_channels=spec.n_channels, n_blocks=spec.n_blocks)
    network = SRResNet(config)
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return network.eval()


def random_checkpoint(spec: ModelSpec):
    """:func:`random_network` as a loaded sr-edge checkpoint (t2m in kelvin), without a file."""
    from sr_export.checkpoints import LoadedCheckpoint
    from sr_runtime.description import ModelDescription, VariableSpec

    network = random_network(spec)
    config = network.config
    description = ModelDescription(scale=config.scaling_factor,
                                   variables=(VariableSpec("t2m", "K", **T2M_STATS_K),),
                                   arch_params=config.to_dict(), halo_lr=config.halo_lr())
    return LoadedCheckpoint(network, description, "sr-edge")


def write_random_checkpoint(spec: ModelSpec, path: Path) -> Path:
    """An sr-edge checkpoint file of :func:`random_network`."""
    import torch

    network = random_network(spec)
    config = network.config
    variables = [{"name": "t2m", "units": "K", **T2M_STATS_K}]
    torch.save({
        "state_dict": {f"model.{k}": v for k, v in network.state_dict().items()},
        "hyper_parameters": {"sr_edge": {"model": config.to_dict(), "variables": variables,
                                         "static_inputs": [], "lr_step_deg": 0.0}},
    }, path)
    return path


def perturb_onnx(path: Path, relative_sigma: float, seed: int = 1) -> None:
    """Test-only: add Gaussian noise (``relative_sigma`` x each tensor's std) to the conv
    weights of an exported model, in place, so that parity against PyTorch degrades."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(path))
    rng = np.random.default_rng(seed)
    for i, init in enumerate(proto.graph.initializer):
        values = numpy_helper.to_array(init)
        if values.ndim == 4 and values.dtype == np.float32:
            noise = rng.normal(0.0, relative_sigma * float(values.std()), values.shape)
            proto.graph.initializer[i].CopyFrom(
                numpy_helper.from_array((values + noise).astype(np.float32), init.name))
    onnx.save(proto, str(path))


def write_fp16(onnx_path: Path, out: Path) -> Path:
    import onnx

    from sr_runtime.engines.tensorrt.fp16 import convert_to_fp16

    converted, _ = convert_to_fp16(onnx.load(str(onnx_path)))
    onnx.save(converted, str(out))
    return out


def reference_artifact(spec: ModelSpec, reference_dir: Path) -> tuple[Path | None, str]:
    """The last accepted ONNX of ``spec`` (the committed shipped model, or
    ``reference_dir/<name>.onnx``), or None and why it is absent."""
    path = LR_ONLY_MODEL if spec.shipped else reference_dir / f"{spec.name}.onnx"
    if path.is_file():
        return path, ""
    return None, (f"no reference artefact {path}; accept the current export as the reference: "
                  "python -m benchmarks.gate --profile PROFILE --update-baseline")


def prepare(spec: ModelSpec, workdir: Path, perturb: float = 0.0,
            reference_dir: Path | None = None, drop_rewrite: str = "") -> ModelFiles:
    """Checkpoint, FP32 ONNX and FP16 ONNX of ``spec`` in ``workdir``.

    The ONNX file is always a fresh export by the current code, the shipped model's too (from
    its committed checkpoint): it is the candidate, measured against the reference artefact
    (``reference_dir``; None: no reference). ``perturb`` (test-only) perturbs the ONNX weights
    after export, never the checkpoint; ``drop_rewrite`` (test-only) exports without that
    graph rewrite.
    """
    from sr_export.checkpoints import load_checkpoint
    from sr_export.model import SRResNetConfig
    from sr_export.onnx_export import export_onnx
    from sr_export.rewrites import ALL_REWRITES, REQUIRES

    workdir.mkdir(parents=True, exist_ok=True)
    if spec.shipped:
        reason = shipped_missing_reason()
        if reason:
            raise FileNotFoundError(reason)
        checkpoint = DEFAULT_CHECKPOINT
    else:
        checkpoint = workdir / f"{spec.name}.ckpt"
        if not checkpoint.is_file():  # seeded: reuse is exact
            write_random_checkpoint(spec, checkpoint)
    tag = f"-without-{drop_rewrite}" if drop_rewrite else ""
    onnx_path = workdir / f"{spec.name}{tag}.onnx"
    if drop_rewrite and drop_rewrite not in ALL_REWRITES:
        raise SystemExit(f"unknown rewrite {drop_rewrite!r}; choose from "
                         f"{', '.join(ALL_REWRITES)}")
    # the rewrites that need the dropped one go with it
    kept = tuple(r for r in ALL_REWRITES if r != drop_rewrite
                 and drop_rewrite not in REQUIRES.get(r, ())) if drop_rewrite else None
    export_onnx(load_checkpoint(checkpoint), onnx_path, rewrites=kept)  # always the current code
    reference, reference_reason = (reference_artifact(spec, reference_dir) if reference_dir
                                   else (None, "no reference folder given"))
    if perturb:
        perturbed = workdir / f"{spec.name}-perturbed.onnx"
        perturbed.write_bytes(onnx_path.read_bytes())
        perturb_onnx(perturbed, perturb)
        onnx_path = perturbed
    loaded = load_checkpoint(checkpoint)
    flops = SRResNetConfig.from_dict(dict(loaded.description.arch_params)).flops_per_lr_pixel()
    fp16: Path | None = None
    reason = ""
    try:
        fp16 = write_fp16(onnx_path, workdir / f"{onnx_path.stem}-fp16.onnx")
    except Exception as exc:  # the FP16 pass is optional for benchmarking
        reason = f"FP16 conversion failed: {exc}"
    return ModelFiles(spec, checkpoint, onnx_path, fp16, flops, reason, reference,
                      reference_reason)


def spec_dict(spec: ModelSpec) -> dict[str, object]:
    return {**asdict(spec), "label": spec.label()}


__all__ = ["CI", "DEMO", "SHIPPED", "TINY", "ModelFiles", "ModelSpec", "prepare",
           "shipped_missing_reason"]
