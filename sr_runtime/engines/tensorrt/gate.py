"""The accuracy gate every TensorRT engine must pass before it is written (pure numpy).

The candidate engine and a reference (PyTorch FP32 from a checkpoint, or the validated FP32 ONNX
model on ONNX Runtime CPU) run the same realistic physical fields: RMSE <= 0.02 K and no NaN/Inf,
with max abs error, PSNR and SSIM reported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sr_runtime.compare import Comparison, GateRule, compare
from sr_runtime.description import HR_STATIC_INPUT, LR_INPUT, ModelDescription
from sr_runtime.engines.tensorrt.profiles import ShapeProfile
from sr_runtime.synthetic import sample_feed

RMSE_LIMIT_K = 0.02

#: ``reference(lr)``, or ``reference(lr, hr_static)`` for models with static inputs.
Reference = Callable[..., np.ndarray]
Feed = dict[str, np.ndarray]


#: The gate's metrics: the one comparator's result (:mod:`sr_runtime.compare`).
GateMetrics = Comparison


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
                f"{m.psnr:.1f} dB, SSIM {ssim}: {verdict}")

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self.metrics), "rmse_limit": self.rmse_limit, "passed": self.passed,
                "reason": self.reason, "reference": self.reference}


def compare_outputs(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> GateMetrics:
    """(reference, candidate) pairs of any shapes -> aggregated metrics (pure numpy)."""
    return compare([np.asarray(r) for r, _ in pairs], [np.asarray(c) for _, c in pairs])


def gate_decision(metrics: GateMetrics, rmse_limit: float = RMSE_LIMIT_K) -> tuple[bool, str]:
    """The gate's rule, free of any GPU (:class:`sr_runtime.compare.GateRule`): finite values
    and RMSE within the limit."""
    failures = GateRule(rmse=rmse_limit).failures(metrics)
    if not failures:
        return True, "within limits"
    hint = " (FP16 overflow?)" if metrics.nonfinite and not metrics.reference_nonfinite else ""
    return False, failures[0] + hint


def evaluate_gate(pairs: Sequence[tuple[np.ndarray, np.ndarray]], reference_name: str,
                  rmse_limit: float = RMSE_LIMIT_K) -> GateReport:
    metrics = compare_outputs(pairs)
    passed, reason = gate_decision(metrics, rmse_limit)
    return GateReport(metrics, rmse_limit, passed, reason, reference_name)


def gate_inputs(description: ModelDescription, profile: ShapeProfile) -> list[Feed]:
    """Sample feeds (``lr`` and, for models with static inputs, ``hr_static``) at the profile's
    opt shape and, if larger, its max shape."""
    opt = (int(profile.opt[2]), int(profile.opt[3]))
    inputs = [sample_feed(description, opt, min(profile.opt[0], 2), seed=1)]
    if profile.max[2:] != profile.opt[2:]:
        inputs.append(sample_feed(description, (int(profile.max[2]), int(profile.max[3])), 1,
                                  seed=2))
    return inputs


def run_reference(reference: Reference, feed: Feed) -> np.ndarray:
    """``reference`` on a feed of :func:`gate_inputs`."""
    if HR_STATIC_INPUT in feed:
        return np.asarray(reference(feed[LR_INPUT], feed[HR_STATIC_INPUT]))
    return np.asarray(reference(feed[LR_INPUT]))


def onnxruntime_reference(onnx_path: Path) -> Reference:
    """The validated FP32 ONNX model on ONNX Runtime CPU."""
    from sr_runtime.engines.onnxruntime import open_session

    session = open_session(onnx_path, options=None)

    def run(lr: np.ndarray, hr_static: np.ndarray | None = None) -> np.ndarray:
        feed = {LR_INPUT: np.ascontiguousarray(lr, np.float32)}
        if hr_static is not None:
            feed[HR_STATIC_INPUT] = np.ascontiguousarray(hr_static, np.float32)
        return session.run(None, feed)[0]

    return run

