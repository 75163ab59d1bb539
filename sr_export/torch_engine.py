"""The PyTorch baseline engine: the original checkpoint run eagerly (needs the `export` extra).

This is the reference every other engine is compared with, and what the demo does. The runtime
never imports it: it is registered as ``--backend torch`` through the ``sr_edge.engines`` entry
point (:data:`ENGINE_SPEC`, see pyproject.toml), and this module imports torch only when the
engine is loaded.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from sr_runtime.description import HR_STATIC_INPUT
from sr_runtime.engines.base import EngineBase, EngineSpec, LoadOptions
from sr_runtime.errors import UsageError

CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth")


def torch_available() -> str | None:
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):  # a broken or blocked installation counts as absent
        spec = None
    if spec is None:
        return "torch is not installed: pip install 'sr-edge[export]'"
    return None


class TorchEngine(EngineBase):
    """Eager PyTorch FP32, NCHW (the demo's way) or channels_last."""

    def __init__(self, checkpoint: Path, config: Path | None = None,
                 channels_last: bool = False) -> None:
        if Path(checkpoint).suffix == ".onnx":
            raise UsageError("the torch backend runs the original checkpoint: pass --model "
                             "model.ckpt (plus --config for demo checkpoints), not an ONNX file")
        import torch

        from sr_export.checkpoints import load_checkpoint
        from sr_export.onnx_export import physical_model

        loaded = load_checkpoint(checkpoint, config)
        self.description = loaded.description
        self.model_file = self.path = Path(checkpoint)
        self.model_file_sha256 = loaded.description.checkpoint_sha256  # the file that runs
        self.model = physical_model(loaded)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = self.model.to(memory_format=self.memory_format)
        self.name = "torch-channels-last" if channels_last else "torch"
        self._torch = torch

    def infer(self, lr: np.ndarray, **inputs: np.ndarray) -> np.ndarray:
        """``lr`` and, for a model with static inputs, ``hr_static`` (N, S, s*h, s*w): the
        physical model is called as ``model(lr, hr_static)``, as it is exported."""
        wanted = [HR_STATIC_INPUT] if self.description.static_inputs else []
        if sorted(inputs) != wanted:
            takes = " and ".join(["the LR field", *map(repr, wanted)])
            raise UsageError(f"the torch baseline takes {takes}, not {sorted(inputs) or 'only lr'}")
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(lr, dtype=np.float32))
            args = [x.contiguous(memory_format=self.memory_format)]
            if wanted:
                static = torch.from_numpy(np.ascontiguousarray(inputs[HR_STATIC_INPUT],
                                                               dtype=np.float32))
                args.append(static.contiguous(memory_format=self.memory_format))
            out = self.model(*args)
            return out.contiguous().numpy()


def load_torch(path: Path, options: LoadOptions) -> TorchEngine:
    return TorchEngine(path, options.config)


#: What the runtime's registry finds through the ``sr_edge.engines`` entry point ``torch``.
ENGINE_SPEC = EngineSpec("torch", torch_available, load_torch, accepts=CHECKPOINT_SUFFIXES)
