"""Checkpoint -> self-describing ONNX, accepted only if ONNX Runtime matches PyTorch.

The exported graph takes physical LR fields and returns physical HR fields (normalization inside,
see :class:`sr_export.model.PhysicalUnitsSR`), has dynamic batch/height/width, BatchNorm folded,
passes ``onnx.checker`` (full check) and carries a :class:`ModelDescription` in metadata_props.

With ``optimize=True`` (the default) the network is first rewritten in PyTorch into a faster,
mathematically identical one (:mod:`sr_export.rewrites`); the rewritten network must match the
original within :data:`REWRITE_TOLERANCE_K` before export, and the names of the rewrites applied
are recorded in ``ModelDescription.graph_rewrites``.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from sr_export.checkpoints import LoadedCheckpoint
from sr_export.graph_passes import (
    CONV_SPLIT_AT_STATIC_INPUTS,
    UNSHUFFLE_OF_SHUFFLE_DROPPED,
    drop_unshuffle_of_shuffle,
    split_conv_at_static_inputs,
)
from sr_export.model import PhysicalUnitsSR
from sr_export.rewrites import BATCHNORM_FOLDED, fold_batchnorm, optimize_network
from sr_export.static_split import write_split
from sr_runtime.compare import PARITY_TOLERANCE_K
from sr_runtime.compare import compare as compare_fields
from sr_runtime.description import HR_OUTPUT, HR_STATIC_INPUT, LR_INPUT, ModelDescription
from sr_runtime.errors import AccuracyGateError, UsageError
from sr_runtime.paths import write_atomically
from sr_runtime.synthetic import sample_input, sample_statics
from sr_runtime.units import dew_point_pairs

DEFAULT_OPSET = 18
#: The rewritten network against the original, both in PyTorch FP32 (kelvin).
REWRITE_TOLERANCE_K = 1e-4

__all__ = ["export_onnx", "fold_batchnorm", "physical_model", "sample_input", "torch_predict",
           "onnxruntime_predict", "compare", "ParityReport", "verify_rewrites"]


@dataclass(frozen=True)
class ParityReport:
    """ONNX Runtime against PyTorch on the same physical input, in the variable's units."""

    max_abs: float
    rmse: float
    input_shape: tuple[int, ...]
    tolerance: float
    rewrites: tuple[str, ...] = ()
    rewrite_max_abs: float | None = None  # rewritten vs original network, both PyTorch

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.max_abs)) and self.max_abs <= self.tolerance

    def summary(self, units: str = "K") -> str:
        verdict = "OK" if self.passed else "FAILED"
        text = (f"parity ONNX Runtime vs PyTorch on LR input {self.input_shape}: max abs error "
                f"{self.max_abs:.2e} {units}, RMSE {self.rmse:.2e} {units} "
                f"(tolerance {self.tolerance:.0e} {units}): {verdict}")
        if self.rewrite_max_abs is not None:
            text += (f"; exact rewrites {', '.join(self.rewrites)} checked in PyTorch: max abs "
                     f"error {self.rewrite_max_abs:.2e} {units}")
        return text


def physical_model(loaded: LoadedCheckpoint, network: nn.Module | None = None) -> PhysicalUnitsSR:
    """The export graph of ``loaded``: normalization in the graph, the conservation layer if its
    config asks for it, and dew points capped at their air temperature."""
    desc = loaded.description
    return PhysicalUnitsSR(
        network if network is not None else loaded.model,
        [v.lr_mean for v in desc.variables], [v.lr_std for v in desc.variables],
        [v.hr_mean for v in desc.variables], [v.hr_std for v in desc.variables],
        [s.mean for s in desc.static_inputs] or None, [s.std for s in desc.static_inputs] or None,
        dew_point_pairs(desc.variable_names),
    ).eval()


def _tensor(values: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))


def torch_predict(model: nn.Module, lr: np.ndarray, hr_static: np.ndarray | None = None
                  ) -> np.ndarray:
    with torch.inference_mode():
        if hr_static is None:
            return model(_tensor(lr)).numpy()
        return model(_tensor(lr), _tensor(hr_static)).numpy()


def onnxruntime_predict(path_or_bytes: str | bytes, lr: np.ndarray,
                        hr_static: np.ndarray | None = None) -> np.ndarray:
    from sr_runtime.engines.onnxruntime import open_session

    session = open_session(path_or_bytes if isinstance(path_or_bytes, bytes)
                           else Path(path_or_bytes), options=None)
    feeds = {LR_INPUT: lr.astype(np.float32)}
    if hr_static is not None:
        feeds[HR_STATIC_INPUT] = hr_static.astype(np.float32)
    return session.run(None, feeds)[0]


def compare(reference: np.ndarray, candidate: np.ndarray, tolerance: float,
            input_shape: tuple[int, ...] = ()) -> ParityReport:
    """PyTorch vs ONNX Runtime through the one comparator (:mod:`sr_runtime.compare`)."""
    result = compare_fields(reference, candidate, with_ssim=False)
    return ParityReport(result.max_abs, result.rmse, tuple(input_shape or reference.shape),
                        tolerance)


def _producer() -> dict[str, str]:
    from sr_runtime import __version__

    versions = {"tool": f"sr-edge {__version__}", "torch": torch.__version__,
                "onnx": onnx.__version__}
    for dist in ("onnxscript", "onnxruntime"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def trace_to_onnx(model: nn.Module, example: np.ndarray, opset: int,
                  static: np.ndarray | None = None, scale: int = 8) -> onnx.ModelProto:
    """torch.onnx (dynamo) export with dynamic batch, height and width, weights inline; with
    ``static``, a second input ``hr_static`` whose height and width are ``scale`` x the LR's."""
    batch = torch.export.Dim("batch")
    height = torch.export.Dim("height", min=1)
    width = torch.export.Dim("width", min=1)
    args: tuple[torch.Tensor, ...] = (torch.from_numpy(example),)
    names = [LR_INPUT]
    shapes: dict[str, dict[int, object]] = {"lr": {0: batch, 2: height, 3: width}}
    if static is not None:
        args += (torch.from_numpy(np.ascontiguousarray(static, dtype=np.float32)),)
        names.append(HR_STATIC_INPUT)
        shapes["hr_static"] = {0: batch, 2: scale * height, 3: scale * width}
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model, args, dynamo=True, external_data=False,
            opset_version=opset, input_names=names, output_names=[HR_OUTPUT],
            dynamic_shapes=shapes, verbose=False,
        )
    return program.model_proto


def measured_halo(data: bytes, description: ModelDescription, out: Path) -> int:
    """The halo to record: the architecture's receptive field, or more if the exported graph
    reaches further (the same probe the runtime repeats at load)."""

    from sr_runtime.engines.graph_check import check_session
    from sr_runtime.engines.onnxruntime import open_session

    session = open_session(data, options=None)
    return check_session(session, description, f"the exported graph for {out}").halo_lr


BUILD_METADATA_FIELDS = ("metadata_props", "doc_string")


def _scrub(message) -> None:
    """Clear every metadata_props and doc_string in ``message`` and all messages inside it."""
    for field, value in message.ListFields():
        if field.name in BUILD_METADATA_FIELDS:
            message.ClearField(field.name)
        elif field.message_type is not None:
            repeated = (field.is_repeated if hasattr(field, "is_repeated")  # protobuf >= 6
                        else field.label == field.LABEL_REPEATED)
            for child in (value if repeated else [value]):
                _scrub(child)


def strip_build_metadata(proto: onnx.ModelProto) -> None:
    """Drop what the exporter records about the machine that ran it: the dynamo exporter puts
    stack traces with source file paths, FX node text and name scopes into the metadata and doc
    strings of nodes, values, functions and the graph. The file then depends only on the
    checkpoint and the tool versions (the model's own metadata_props and doc_string are set
    afterwards by :func:`set_metadata`)."""
    for field, _ in proto.ListFields():
        if field.name in BUILD_METADATA_FIELDS:
            proto.ClearField(field.name)
    _scrub(proto.graph)
    for function in proto.functions:
        _scrub(function)


def set_metadata(proto: onnx.ModelProto, description: ModelDescription) -> None:
    del proto.metadata_props[:]
    for key, value in description.to_metadata().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = (f"sr-edge x{description.scale} {description.architecture} for "
                        f"{', '.join(description.variable_names)}")


def verify_rewrites(reference: nn.Module, rewritten: nn.Module, lr: np.ndarray,
                    tolerance: float = REWRITE_TOLERANCE_K,
                    static: np.ndarray | None = None) -> ParityReport:
    """The rewritten physical model against the original, both PyTorch FP32."""
    report = compare(torch_predict(reference, lr, static), torch_predict(rewritten, lr, static),
                     tolerance, lr.shape)
    if not report.passed:
        raise AccuracyGateError(
            f"the exact graph rewrites changed the output by up to {report.max_abs:.2e} "
            f"(tolerance {tolerance:.0e}); this is a bug in sr-edge, please report it; export "
            "without them meanwhile: sr-export to-onnx --no-optimize")
    return report


def export_onnx(loaded: LoadedCheckpoint, out: Path, *, opset: int = DEFAULT_OPSET,
                parity_input: np.ndarray | None = None,
                tolerance: float = PARITY_TOLERANCE_K, optimize: bool = True,
                rewrites: tuple[str, ...] | None = None,
                provenance: Mapping[str, str] | None = None) -> ParityReport:
    """Export, check and verify; write ``out`` only if ONNX Runtime matches PyTorch.

    ``optimize``: apply the exact rewrites of :mod:`sr_export.rewrites` (checked against the
    original network within :data:`REWRITE_TOLERANCE_K` first); otherwise fold BatchNorm only.
    ``rewrites``: a subset of them to apply instead of all (benchmarks measure what each gives).
    ``provenance``: where the checkpoint came from (MLflow run, registry version), recorded in
    the description.
    """
    out = Path(out)
    if not out.parent.is_dir():
        raise UsageError(f"output folder {out.parent} does not exist; create it first")
    reference_model = physical_model(loaded)
    lr = parity_input if parity_input is not None else sample_input(loaded.description)
    static = sample_statics(loaded.description, lr.shape[-2:], lr.shape[0])
    rewrite_check: ParityReport | None = None
    if optimize:
        network, applied = (optimize_network(loaded.model) if rewrites is None
                            else optimize_network(loaded.model, rewrites))
        export_model = physical_model(loaded, network)
        rewrite_check = verify_rewrites(reference_model, export_model, lr, static=static)
    else:
        export_model = physical_model(loaded, fold_batchnorm(loaded.model))
        applied = (BATCHNORM_FOLDED,)

    proto = trace_to_onnx(export_model, lr[:1], opset,
                          None if static is None else static[:1], loaded.description.scale)
    # graph passes on the traced proto: checked by the parity with PyTorch below
    passes = ((*((UNSHUFFLE_OF_SHUFFLE_DROPPED,) if drop_unshuffle_of_shuffle(proto) else ()),
               *((CONV_SPLIT_AT_STATIC_INPUTS,) if split_conv_at_static_inputs(proto) else ()))
              if optimize else ())
    strip_build_metadata(proto)
    if any(node.op_type == "BatchNormalization" for node in proto.graph.node):
        raise AccuracyGateError("BatchNorm survived export; this is a bug in sr-edge, please "
                                "report it with your torch version")
    description = loaded.description.with_updates(
        producer={**_producer(), "opset": str(opset)},
        graph_rewrites=(*applied, *passes, *(r for r in loaded.description.graph_rewrites
                                              if r not in (*applied, *passes))),
        provenance={**loaded.description.provenance, **(provenance or {})},
    )
    set_metadata(proto, description)
    onnx.checker.check_model(proto, full_check=True)
    data = proto.SerializeToString()

    report = compare(torch_predict(reference_model, lr, static),
                     onnxruntime_predict(data, lr, static), tolerance, lr.shape)
    halo = measured_halo(data, description, out)
    if halo != description.halo_lr:  # the graph reaches further than the architecture formula
        set_metadata(proto, description.with_updates(halo_lr=halo))
        data = proto.SerializeToString()
    if rewrite_check is not None:
        report = dataclasses.replace(report, rewrites=applied,
                                     rewrite_max_abs=rewrite_check.max_abs)
    if not report.passed:
        raise AccuracyGateError(report.summary() + f"; {out} was not written")
    write_atomically(data, out)
    write_split(out)  # a model with static inputs: its static part, run once per tile
    return report
