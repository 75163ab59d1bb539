"""What a run did, step by step and in total: outputs, seconds per stage, throughput."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from sr_runtime.steps import StepOutcome


@dataclass
class StreamSummary:
    steps: int = 0
    skipped: int = 0
    seconds: float = 0.0
    engine_seconds: float = 0.0
    read_seconds: float = 0.0
    write_seconds: float = 0.0
    hr_pixels: int = 0
    backend: str = ""
    workers: int = 1
    outputs: list[str] = field(default_factory=list)
    skill: dict[str, float | str] | None = None  # --report: RMSE/PSNR/SSIM against HR truth
    # --report, by variable (every variable the HR truth has); ``skill`` is the first of them
    skills: dict[str, dict[str, float | str]] = field(default_factory=dict)

    @property
    def hr_mpix_per_s(self) -> float:
        return self.hr_pixels / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def add(self, outcome: StepOutcome) -> None:
        self.steps += 1
        self.hr_pixels += outcome.hr_pixels
        self.outputs.extend(o for o in outcome.outputs if o not in self.outputs[-4:])
        self.read_seconds += outcome.seconds.get("read", 0.0)
        self.engine_seconds += outcome.seconds.get("infer", 0.0)
        self.write_seconds += outcome.seconds.get("write", 0.0)

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["hr_mpix_per_s"] = round(self.hr_mpix_per_s, 3)
        for key in ("seconds", "engine_seconds", "read_seconds", "write_seconds"):
            data[key] = round(float(data[key]), 3)
        return data



Progress = Callable[[StepOutcome, StreamSummary], None]
