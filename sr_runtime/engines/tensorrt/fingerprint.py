"""What a TensorRT engine was built from and for, checked before the plan is ever deserialized.

A TensorRT plan has no user-metadata field and only loads with the exact TensorRT version and GPU
compute capability it was built with; otherwise TensorRT fails with messages such as "Version tag
does not match". sr-edge therefore writes a JSON sidecar next to every plan::

    model.engine        the plain TensorRT plan (usable by trtexec --loadEngine as well)
    model.engine.json   {"fingerprint": {...}, "plan_sha256": ..., "description": {...}, ...}

The fingerprint holds the ONNX model's sha256, the TensorRT version, the GPU name and compute
capability, the optimization-profile shapes and the precision recipe. Its hash is the key of the
engine cache (:mod:`sr_runtime.engines.tensorrt.cache`). ``plan_sha256`` ties the sidecar
to its plan, so a plan replaced without its sidecar is caught too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sr_runtime.description import LR_INPUT, ModelDescription
from sr_runtime.engines.tensorrt.profiles import ShapeProfile
from sr_runtime.errors import EngineUnavailableError, UsageError

FINGERPRINT_FORMAT = 1
SIDECAR_SUFFIX = ".json"


class EngineMismatchError(EngineUnavailableError):
    """The engine was built for another TensorRT, GPU or model, or has no usable fingerprint."""


@dataclass(frozen=True)
class BuildEnvironment:
    """The parts of a machine an engine depends on."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str  # "9.0"

    def describe(self) -> str:
        return (f"TensorRT {self.tensorrt_version} on {self.gpu_name} "
                f"(compute capability {self.compute_capability})")


@dataclass(frozen=True)
class Mismatch:
    field: str
    built: str
    here: str
    fatal: bool  # False: the engine loads but may be slower (another GPU of the same family)


@dataclass(frozen=True)
class EngineFingerprint:
    """Everything an engine depends on. Any change gives another cache key."""

    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    profile: ShapeProfile
    precision: str
    input_name: str = LR_INPUT
    format_version: int = FINGERPRINT_FORMAT

    @classmethod
    def create(cls, onnx_sha256: str, environment: BuildEnvironment, profile: ShapeProfile,
               precision: str) -> EngineFingerprint:
        return cls(onnx_sha256, environment.tensorrt_version, environment.gpu_name,
                   environment.compute_capability, profile, precision)

    @property
    def environment(self) -> BuildEnvironment:
        return BuildEnvironment(self.tensorrt_version, self.gpu_name, self.compute_capability)

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["profile"] = self.profile.to_dict()
        return data

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> EngineFingerprint:
        values = dict(raw)
        values["profile"] = ShapeProfile.from_dict(values["profile"])
        return cls(**values)

    def key(self) -> str:
        """Stable hash of every field: the engine cache's file name."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]

    def mismatches(self, here: BuildEnvironment) -> list[Mismatch]:
        found = []
        if self.tensorrt_version != here.tensorrt_version:
            found.append(Mismatch("TensorRT version", self.tensorrt_version,
                                  here.tensorrt_version, True))
        if self.compute_capability != here.compute_capability:
            found.append(Mismatch("compute capability", self.compute_capability,
                                  here.compute_capability, True))
        if self.gpu_name != here.gpu_name:
            found.append(Mismatch("GPU", self.gpu_name, here.gpu_name, False))
        return found


def mismatch_message(engine: Path, built: BuildEnvironment, here: BuildEnvironment,
                     mismatches: list[Mismatch], onnx_hint: str | None = None) -> str:
    """One line: what differs, why it matters and how to get a matching engine."""
    differences = ", ".join(f"{m.field} {m.built} -> {m.here}" for m in mismatches)
    fatal = any(m.fatal for m in mismatches)
    source = onnx_hint or "MODEL.onnx"
    reason = ("a TensorRT engine only loads with the TensorRT version and GPU compute capability "
              "it was built with" if fatal else
              "it would load, but its kernels were tuned for another GPU")
    return (f"{engine} was built for {built.describe()}, this machine has {here.describe()} "
            f"({differences}): {reason}. Rebuild it with `sr-export to-trt {source} --out "
            f"{engine} --overwrite`, or run {source} with --backend tensorrt, which builds and "
            "caches a matching engine")


@dataclass(frozen=True)
class EngineRecord:
    """The sidecar: fingerprint, plan checksum, model description and accuracy-gate result."""

    fingerprint: EngineFingerprint
    plan_sha256: str
    plan_bytes: int
    description: ModelDescription
    onnx_path: str | None = None
    accuracy: dict[str, object] = field(default_factory=dict)
    tool: str = ""
    built_at: str = ""

    def to_json(self) -> str:
        return json.dumps({
            "sr_edge_engine": FINGERPRINT_FORMAT,
            "key": self.fingerprint.key(),
            "fingerprint": self.fingerprint.to_dict(),
            "plan_sha256": self.plan_sha256,
            "plan_bytes": self.plan_bytes,
            "onnx": self.onnx_path,
            "description": json.loads(self.description.to_json()),
            "accuracy": self.accuracy,
            "tool": self.tool,
            "built_at": self.built_at,
        }, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, origin: str = "sidecar") -> EngineRecord:
        try:
            raw = json.loads(text)
            version = int(raw["sr_edge_engine"])
            if version > FINGERPRINT_FORMAT:
                raise EngineMismatchError(
                    f"{origin} uses engine-fingerprint format {version}, newer than this sr-edge "
                    f"({FINGERPRINT_FORMAT}); upgrade sr-edge: pip install -U sr-edge")
            return cls(
                fingerprint=EngineFingerprint.from_dict(raw["fingerprint"]),
                plan_sha256=str(raw["plan_sha256"]),
                plan_bytes=int(raw["plan_bytes"]),
                description=ModelDescription.from_json(json.dumps(raw["description"])),
                onnx_path=raw.get("onnx"),
                accuracy=dict(raw.get("accuracy") or {}),
                tool=str(raw.get("tool", "")),
                built_at=str(raw.get("built_at", "")),
            )
        except EngineMismatchError:
            raise
        except (ValueError, KeyError, TypeError, UsageError) as exc:
            raise EngineMismatchError(
                f"{origin} is not a valid sr-edge engine fingerprint ({type(exc).__name__}: "
                f"{exc}); rebuild the engine with `sr-export to-trt MODEL.onnx --overwrite`"
            ) from exc

    def source_onnx(self, engine: Path) -> Path | None:
        """The ONNX model the engine was built from, resolved next to the engine if relative."""
        if not self.onnx_path:
            return None
        path = Path(self.onnx_path)
        return path if path.is_absolute() else (Path(engine).parent / path)


def sidecar_path(engine: Path) -> Path:
    engine = Path(engine)
    return engine.with_name(engine.name + SIDECAR_SUFFIX)


def read_record(engine: Path) -> EngineRecord:
    """The sidecar of ``engine``; a clear error when it is missing or unreadable."""
    engine = Path(engine)
    if not engine.is_file():
        raise UsageError(f"engine not found: {engine}")
    side = sidecar_path(engine)
    if not side.is_file():
        raise EngineMismatchError(
            f"{engine} has no fingerprint ({side.name} is missing): sr-edge checks where a "
            "TensorRT plan was built before loading it, so it only loads engines built by "
            "`sr-export to-trt`; rebuild it with `sr-export to-trt MODEL.onnx --out "
            f"{engine} --overwrite`")
    return EngineRecord.from_json(side.read_text(), str(side))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_checked_plan(engine: Path, record: EngineRecord) -> bytes:
    """The plan bytes, verified against the sidecar's checksum."""
    plan = Path(engine).read_bytes()
    if sha256_bytes(plan) != record.plan_sha256:
        raise EngineMismatchError(
            f"{engine} does not match its fingerprint {sidecar_path(engine).name} (checksum "
            "differs: the plan was replaced or damaged); rebuild it with `sr-export to-trt "
            f"MODEL.onnx --out {engine} --overwrite`")
    return plan


def current_environment() -> BuildEnvironment:
    """TensorRT version and GPU of this machine (imports tensorrt; call only when needed)."""
    from sr_runtime.engines.gpu_backends import require_gpu, require_tensorrt

    trt = require_tensorrt()
    device = require_gpu()
    return BuildEnvironment(str(trt.__version__), device.name, device.compute_capability)


def check_compatible(engine: Path, record: EngineRecord, here: BuildEnvironment) -> list[Mismatch]:
    """Raise for fatal differences (the plan would not load); return the harmless ones."""
    found = record.fingerprint.mismatches(here)
    if any(m.fatal for m in found):
        source = record.source_onnx(engine)
        raise EngineMismatchError(mismatch_message(engine, record.fingerprint.environment, here,
                                                   found, str(source) if source else None))
    return found
