"""The accuracy gate of reduced precision (INT8 variants, OpenVINO BF16): no onnx, no torch.

A reduced-precision output is compared with the FP32 model's on the same LR fields, and both with
HR truth where there is some, through the one comparator (:mod:`sr_runtime.compare`): RMSE vs
FP32 at most 0.05 K, PSNR against the truth at most 0.1 dB below FP32's, no non-finite value.
``sr-export quantize`` gates its variants with it, ``sr-export tune`` the BF16 path.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sr_runtime.compare import REDUCED_MAX_PSNR_DROP_DB, REDUCED_MAX_RMSE_K
from sr_runtime.errors import UsageError

if TYPE_CHECKING:
    from sr_runtime.description import ModelDescription

MAX_RMSE_K = REDUCED_MAX_RMSE_K
MAX_PSNR_DROP_DB = REDUCED_MAX_PSNR_DROP_DB


@dataclass(frozen=True)
class GateResult:
    """The variant against the FP32 model and, when available, against HR truth."""

    rmse_vs_fp32: float
    max_abs_vs_fp32: float
    max_rmse: float
    samples: int
    input_shape: tuple[int, ...]
    psnr_fp32: float | None = None
    psnr_variant: float | None = None
    max_psnr_drop: float = MAX_PSNR_DROP_DB
    truth: str = ""
    note: str = ""

    @property
    def psnr_drop(self) -> float | None:
        if self.psnr_fp32 is None or self.psnr_variant is None:
            return None
        return self.psnr_fp32 - self.psnr_variant

    failures: tuple[str, ...] = ()  # from :class:`sr_runtime.compare.GateRule`

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self, units: str = "K") -> str:
        text = (f"RMSE vs FP32 {self.rmse_vs_fp32:.4f} {units} (limit {self.max_rmse} {units}), "
                f"max abs {self.max_abs_vs_fp32:.3f} {units}")
        drop = self.psnr_drop
        if drop is not None:
            text += (f"; PSNR vs HR truth {self.psnr_variant:.2f} dB, FP32 {self.psnr_fp32:.2f} "
                     f"dB, drop {drop:.3f} dB (limit {self.max_psnr_drop} dB)")
        if self.note:
            text += f"; {self.note}"
        return f"{text}: {'PASSED' if self.passed else 'FAILED'}"

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data.update(psnr_drop=self.psnr_drop, passed=self.passed)
        return data


def accuracy_gate(reference: np.ndarray, candidate: np.ndarray, truth: np.ndarray | None = None,
                  *, max_rmse: float = MAX_RMSE_K, max_psnr_drop: float = MAX_PSNR_DROP_DB,
                  truth_label: str = "", note: str = "") -> GateResult:
    """Compare a reduced-precision output with the FP32 output (and both with HR truth)."""
    from sr_runtime.compare import GateRule, compare

    vs_fp32 = compare(reference, candidate, with_ssim=False)
    truth_reference = truth_candidate = None
    if truth is not None:
        if truth.shape != reference.shape:
            raise UsageError(f"HR truth {truth.shape} does not match the model output "
                             f"{reference.shape}; use the HR store that matches the LR source")
        truth_reference = compare(truth, reference, with_ssim=False)
        truth_candidate = compare(truth, candidate, with_ssim=False)
    elif not note:
        note = "no HR truth: gated against FP32 only"
    failures = GateRule(rmse=max_rmse, psnr_drop=max_psnr_drop).failures(
        vs_fp32, truth_reference=truth_reference, truth_candidate=truth_candidate)
    return GateResult(vs_fp32.rmse, vs_fp32.max_abs, max_rmse, int(reference.shape[0]),
                      tuple(reference.shape),
                      truth_reference.psnr if truth_reference else None,
                      truth_candidate.psnr if truth_candidate else None, max_psnr_drop,
                      truth_label, note, tuple(failures))


def refuse_static(description: ModelDescription, model: Path, command: str) -> None:
    """INT8 calibration and its gate read LR fields alone so far: a model with static HR
    inputs or clock inputs is refused by ``sr-export quantize`` before any work, with what to
    run instead."""
    if description.static_inputs or description.clock_inputs:
        names = ", ".join([s.name for s in description.static_inputs]
                          + list(description.clock_inputs))
        raise UsageError(f"{model} takes static HR fields or clock inputs ({names}); "
                         f"sr-export {command} "
                         "handles LR-only models so far: run it in FP32 (sr-run --precision "
                         "fp32, the default without a tune record), or let sr-export tune gate "
                         "and time OpenVINO FP32 and BF16 for it")
