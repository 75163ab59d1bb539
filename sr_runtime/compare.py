"""One comparator for every accuracy check: export parity, engine gates, quantization, benchmarks.

A candidate's outputs against a reference's (PyTorch FP32, the FP32 ONNX model, or HR truth), in
physical units: max abs difference, RMSE, PSNR and SSIM with the reference's max - min as data
range (stated, never normalized tensors), and the count of non-finite values. One rule decides
pass or fail (:class:`GateRule`): any non-finite value fails, then each limit that is set.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

from sr_runtime.metrics import SSIM_WINDOW, ssim

#: Exact paths (another engine or graph running the same FP32 network) against the reference:
#: largest absolute difference allowed, in the variable's units (the export's parity gate).
PARITY_TOLERANCE_K = 1e-3
#: Reduced precision (INT8, BF16) against the FP32 model: RMSE limit, and the largest PSNR loss
#: against HR truth (the accuracy gate of ``sr-export quantize`` and ``sr-export tune``).
REDUCED_MAX_RMSE_K = 0.05
REDUCED_MAX_PSNR_DROP_DB = 0.1


@dataclass(frozen=True)
class Comparison:
    """Candidate vs reference over one or more arrays; infinite errors when any is non-finite."""

    max_abs: float
    rmse: float
    psnr: float
    ssim: float | None  # None for fields smaller than the SSIM window
    data_range: float
    nonfinite: int  # candidate values that are NaN or infinite
    reference_nonfinite: int
    values: int

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)

    def line(self, units: str = "K") -> str:
        text = f"max abs {self.max_abs:.3g} {units}, RMSE {self.rmse:.3g} {units}"
        if self.nonfinite:
            text += f", {self.nonfinite} non-finite values"
        return text


def compare(reference: np.ndarray | Iterable[np.ndarray],
            candidate: np.ndarray | Iterable[np.ndarray], *,
            data_range: float | None = None, with_ssim: bool = True) -> Comparison:
    """Compare arrays (or matching sequences of arrays) of the same shapes."""
    if isinstance(reference, np.ndarray) or isinstance(candidate, np.ndarray):
        pairs = [(np.asarray(reference), np.asarray(candidate))]
    else:
        pairs = list(zip(reference, candidate, strict=True))
    squared, count, max_abs = 0.0, 0, 0.0
    nonfinite = reference_nonfinite = 0
    low, high = math.inf, -math.inf
    finite_pairs = []
    for ref_values, cand_values in pairs:
        ref = np.asarray(ref_values, dtype=np.float64)
        cand = np.asarray(cand_values, dtype=np.float64)
        if ref.shape != cand.shape:
            raise ValueError(f"shapes differ: reference {ref.shape}, candidate {cand.shape}")
        bad_cand, bad_ref = ~np.isfinite(cand), ~np.isfinite(ref)
        nonfinite += int(bad_cand.sum())
        reference_nonfinite += int(bad_ref.sum())
        count += ref.size
        if bad_cand.any() or bad_ref.any():
            continue
        diff = cand - ref
        squared += float(np.sum(diff ** 2))
        max_abs = max(max_abs, float(np.max(np.abs(diff)))) if diff.size else max_abs
        if ref.size:
            low, high = min(low, float(ref.min())), max(high, float(ref.max()))
        finite_pairs.append((ref, cand))
    if nonfinite or reference_nonfinite or count == 0:
        return Comparison(math.inf, math.inf, -math.inf, None, math.nan, nonfinite,
                          reference_nonfinite, count)
    span = data_range if data_range is not None else max(high - low, 1e-12)
    rmse = math.sqrt(squared / count)
    psnr = math.inf if rmse == 0 else 20 * math.log10(span / rmse)
    ssims = [ssim(cand, ref, span) for ref, cand in finite_pairs
             if with_ssim and min(ref.shape[-2:], default=0) >= SSIM_WINDOW]
    return Comparison(max_abs, rmse, psnr, float(np.mean(ssims)) if ssims else None, span, 0, 0,
                      count)


@dataclass(frozen=True)
class GateRule:
    """Limits a comparison must meet; unset limits are not checked. Non-finite always fails."""

    max_abs: float | None = None
    rmse: float | None = None
    #: largest PSNR loss (dB) against HR truth, relative to the reference's own PSNR there
    psnr_drop: float | None = None

    def failures(self, result: Comparison, *, truth_reference: Comparison | None = None,
                 truth_candidate: Comparison | None = None, units: str = "K") -> list[str]:
        """Why ``result`` fails (empty: it passes). The truth pair scores reference and
        candidate against HR truth, for :attr:`psnr_drop`."""
        if result.reference_nonfinite:
            return [f"the reference itself has {result.reference_nonfinite} non-finite values"]
        if result.values == 0:
            return ["no values were compared"]
        if result.nonfinite:
            return [f"{result.nonfinite} of {result.values} values are NaN or infinite"]
        found = []
        if self.max_abs is not None and not result.max_abs <= self.max_abs:
            found.append(f"max abs error {result.max_abs:.3g} {units} exceeds {self.max_abs:g} "
                         f"{units}")
        if self.rmse is not None and not result.rmse <= self.rmse:
            found.append(f"RMSE {result.rmse:.3g} {units} exceeds {self.rmse:g} {units}")
        if self.psnr_drop is not None and truth_reference and truth_candidate:
            drop = truth_reference.psnr - truth_candidate.psnr
            if not drop <= self.psnr_drop:
                found.append(f"PSNR against HR truth drops {drop:.3f} dB (limit "
                             f"{self.psnr_drop:g} dB)")
        return found

    def passes(self, result: Comparison, *, truth_reference: Comparison | None = None,
               truth_candidate: Comparison | None = None) -> bool:
        return not self.failures(result, truth_reference=truth_reference,
                                 truth_candidate=truth_candidate)
