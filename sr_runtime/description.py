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
#: Descriptions this sr-edge reads. Format 2 adds ``clock_inputs``; a model without them is
#: written as format 1, byte for byte as before, so older readers still run it.
FORMAT_VERSION = 2
CLOCK_FORMAT_VERSION = 2
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
    format_version: int = 1
    provenance: Mapping[str, str] = field(default_factory=dict)
    #: Channels the runtime appends to the LR variables in the ``lr`` input, computed from each
    #: step's time and the cells' longitudes (:mod:`sr_runtime.clock`); () for most models.
    clock_inputs: tuple[str, ...] = ()

    @property
    def variable_names(self) -> list[str]:
        return [v.name for v in self.variables]

    @property
    def input_channels(self) -> int:
        """Channels of the ``lr`` input: the LR variables, then the clock inputs."""
        return len(self.variables) + len(self.clock_inputs)

    def to_json(self) -> str:
        data = asdict(self)
        for key in ("provenance", "clock_inputs"):  # older readers, reproducible files
            if not data[key]:
                del data[key]
        if self.clock_inputs:  # an older reader must refuse it, not feed too few channels
            data["format_version"] = max(self.format_version, CLOCK_FORMAT_VERSION)
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
