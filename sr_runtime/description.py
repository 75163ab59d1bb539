"""The model description that travels inside the ONNX file (``metadata_props``).

One ``.onnx`` file is self-describing: scale, variables with units and LR/HR normalization,
architecture, receptive-field halo and provenance. The runtime needs nothing else to run it.

``provenance`` says where the checkpoint came from when it was taken from an MLflow tracking
server or model registry (``source`` URI, ``mlflow_run_id``, ``mlflow_model_name``,
``mlflow_model_version``) and which tracked run exported it (``mlflow_export_run_id``). It is
optional: models without it (all older ones) read as before, and an empty one is not written, so
an export that tracks nothing gives the same bytes as before.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from sr_runtime.errors import ModelMismatchError

DESCRIPTION_KEY = "sr_edge.description"
FORMAT_VERSION = 1
LR_INPUT = "lr"
HR_STATIC_INPUT = "hr_static"
HR_OUTPUT = "hr"


@dataclass(frozen=True)
class VariableSpec:
    """A predicted variable and its normalization, in the variable's own units (t2m: K)."""

    name: str
    units: str
    lr_mean: float
    lr_std: float
    hr_mean: float
    hr_std: float


@dataclass(frozen=True)
class StaticSpec:
    """A static high-resolution field (orography, land-sea mask) fed as a second input."""

    name: str
    units: str
    mean: float
    std: float


@dataclass(frozen=True)
class ModelDescription:
    """Everything the runtime must know about a model, independent of the engine that runs it."""

    scale: int
    variables: tuple[VariableSpec, ...]
    architecture: str = "SRResNet"
    arch_params: Mapping[str, Any] = field(default_factory=dict)
    halo_lr: int = 0
    static_inputs: tuple[StaticSpec, ...] = ()
    checkpoint_sha256: str = ""
    producer: Mapping[str, str] = field(default_factory=dict)
    graph_rewrites: tuple[str, ...] = ()
    lr_step_deg: float = 0.0  # LR grid spacing the model was trained on; 0 when unknown
    format_version: int = FORMAT_VERSION
    provenance: Mapping[str, str] = field(default_factory=dict)

    @property
    def variable_names(self) -> list[str]:
        return [v.name for v in self.variables]

    def to_json(self) -> str:
        data = asdict(self)
        if not data["provenance"]:  # older readers and reproducible files: omit when empty
            del data["provenance"]
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, origin: str = "model") -> ModelDescription:
        """Parse and validate; anything malformed is a one-line :class:`ModelMismatchError`."""
        from sr_runtime.description_checks import parse_description

        return parse_description(cls, text, origin)

    def with_updates(self, **changes: object) -> ModelDescription:
        data = {**self.__dict__, **changes}
        return ModelDescription(**data)

    def to_metadata(self) -> dict[str, str]:
        """Flat ``metadata_props``: one JSON blob for machines plus readable keys for people."""
        return {
            DESCRIPTION_KEY: self.to_json(),
            "scale_factor": str(self.scale),
            "variables": ",".join(f"{v.name}[{v.units}]" for v in self.variables),
            "architecture": self.architecture,
            "halo_lr_pixels": str(self.halo_lr),
            "checkpoint_sha256": self.checkpoint_sha256,
            **{f"producer.{k}": str(v) for k, v in self.producer.items()},
            **{f"provenance.{k}": str(v) for k, v in self.provenance.items()},
        }

    @classmethod
    def from_metadata(cls, props: Mapping[str, str], origin: str = "model") -> ModelDescription:
        if DESCRIPTION_KEY not in props:
            raise ModelMismatchError(
                f"{origin} carries no sr-edge description (metadata key {DESCRIPTION_KEY!r}); "
                "export it with `sr-export to-onnx CHECKPOINT`"
            )
        return cls.from_json(props[DESCRIPTION_KEY], origin)
