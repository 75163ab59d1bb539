"""The accuracy gate every TensorRT engine must pass before it is written (pure numpy).

The candidate engine and a reference (PyTorch FP32 from a checkpoint, or the validated FP32 ONNX
model on ONNX Runtime CPU) run the same realistic physical fields: RMSE <= 0.02 K and no NaN/Inf,
with max abs error, PSNR and SSIM reported.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sr_runtime.description import LR_INPUT, ModelDescription
from sr_runtime.engines.tensorrt.profiles import ShapeProfile
from sr_runtime.synthetic import sample_input

RMSE_LIMIT_K = 0.02

Reference = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class GateMetrics:
    """Candidate vs reference over all sample tiles, in the variable's units (K)."""

    rmse: float
    max_abs: float
    psnr_db: float
    ssim: float | None
    nonfinite: int  # NaN/Inf values in the candidate
    reference_nonfinite: int
    values: int


@dataclass(frozen=True)
class GateReport:
    metrics: GateMetrics
    rmse_limit: float
    passed: bool
    reason: str
    reference: str

    def summary(self, units: str = "K") -> str:
        m = self.metrics
        ssim = f"{m.ssim:.5f}" if m.ssim is not None else "n/a"
        verdict = "OK" if self.passed else f"FAILED ({self.reason})"
        return (f"accuracy vs {self.reference}: RMSE {m.rmse:.2e} {units} (limit "
                f"{self.rmse_limit:g} {units}), max abs {m.max_abs:.2e} {units}, PSNR "
                f"{m.psnr_db:.1f} dB, SSIM {ssim}: {verdict}")

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self.metrics), "rmse_limit": self.rmse_limit, "passed": self.passed,
                "reason": self.reason, "reference": self.reference}


def _ssim(reference: np.ndarray, candidate: np.ndarray, data_range: float) -> float | None:
    """Mean SSIM (``sr_runtime.metrics``); None for fields smaller than its window."""
    from sr_runtime.metrics import SSIM_WINDOW, ssim

    if min(reference.shape[-2:]) < SSIM_WINDOW:
        return None
    return ssim(candidate, reference, data_range)


def compare_outputs(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> GateMetrics:
    """Pure numpy: (reference, candidate) pairs of any shapes -> aggregated metrics."""
    squared = 0.0
    count = 0
    max_abs = 0.0
    nonfinite = reference_nonfinite = 0
    low, high = math.inf, -math.inf
    ssims = []
    for reference, candidate in pairs:
        ref = np.asarray(reference, dtype=np.float64)
        cand = np.asarray(candidate, dtype=np.float64)
        if ref.shape != cand.shape:
            raise ValueError(f"shapes differ: reference {ref.shape}, candidate {cand.shape}")
        bad = ~np.isfinite(cand)
        nonfinite += int(bad.sum())
        reference_nonfinite += int((~np.isfinite(ref)).sum())
        count += ref.size
        if bad.any() or not np.isfinite(ref).all():
            continue
        diff = cand - ref
        squared += float(np.sum(diff**2))
        max_abs = max(max_abs, float(np.max(np.abs(diff))))
        low, high = min(low, float(ref.min())), max(high, float(ref.max()))
        ssims.append(_ssim(ref, cand, max(high - low, 1e-12)))
    if nonfinite or reference_nonfinite or count == 0:
        return GateMetrics(math.inf, math.inf, -math.inf, None, nonfinite, reference_nonfinite,
                           count)
    rmse = math.sqrt(squared / count)
    data_range = max(high - low, 1e-12)
    psnr = math.inf if rmse == 0 else 20 * math.log10(data_range / rmse)
    known = [s for s in ssims if s is not None]
    return GateMetrics(rmse, max_abs, psnr, float(np.mean(known)) if known else None, 0, 0,
                       count)


def gate_decision(metrics: GateMetrics, rmse_limit: float = RMSE_LIMIT_K) -> tuple[bool, str]:
    """The gate's rule, free of any GPU: finite values and RMSE within the limit."""
    if metrics.reference_nonfinite:
        return False, (f"the reference produced {metrics.reference_nonfinite} non-finite values; "
                       "check the sample input")
    if metrics.nonfinite:
        return False, (f"{metrics.nonfinite} of {metrics.values} values are NaN/Inf (FP16 "
                       "overflow?)")
    if metrics.values == 0:
        return False, "no values were compared"
    if not metrics.rmse <= rmse_limit:
        return False, f"RMSE {metrics.rmse:.3g} K exceeds {rmse_limit:g} K"
    return True, "within limits"


def evaluate_gate(pairs: Sequence[tuple[np.ndarray, np.ndarray]], reference_name: str,
                  rmse_limit: float = RMSE_LIMIT_K) -> GateReport:
    metrics = compare_outputs(pairs)
    passed, reason = gate_decision(metrics, rmse_limit)
    return GateReport(metrics, rmse_limit, passed, reason, reference_name)


def gate_inputs(description: ModelDescription, profile: ShapeProfile) -> list[np.ndarray]:
    """Sample batches at the profile's opt shape and, if larger, its max shape."""
    inputs = [sample_input(description, profile.opt[2:], min(profile.opt[0], 2), seed=1)]
    if profile.max[2:] != profile.opt[2:]:
        inputs.append(sample_input(description, profile.max[2:], 1, seed=2))
    return inputs


def onnxruntime_reference(onnx_path: Path) -> Reference:
    """The validated FP32 ONNX model on ONNX Runtime CPU."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return lambda lr: session.run(None, {LR_INPUT: np.ascontiguousarray(lr, np.float32)})[0]

