"""Checkpoints and models in an MLflow model registry: fetch one to export, register one.

``models:/NAME/VERSION`` (or ``models:/NAME@ALIAS``) and ``runs:/RUN_ID/path`` name a checkpoint
in a tracking store; :func:`fetch` downloads it (``mlflow.artifacts.download_artifacts``) and
says where it came from, so the export can record it (``ModelDescription.provenance``).
:func:`register` logs a local model or checkpoint into a run and registers it, with its
sr-edge description as tags on the version.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sr_export.tracking import (
    TRACKING_ENV,
    MlflowTracker,
    client_for,
    import_mlflow,
    redact,
    resolve_uri,
    store_error,
)
from sr_runtime.description import DESCRIPTION_KEY, ModelDescription
from sr_runtime.errors import SrEdgeError, UsageError

CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth")
DEMO_CONFIG = "config.json"
#: Where ``register`` stores a file in its run (the model version's source).
REGISTERED_FOLDER = "model"
_MODELS = re.compile(r"models:/(?P<name>[^/@]+)(?:/(?P<version>[^/]+)|@(?P<alias>[^/]+))/?$")
_RUNS = re.compile(r"runs:/(?P<run>[0-9a-zA-Z]+)(?P<path>/.*)?$")


def is_mlflow_uri(text: str) -> bool:
    return text.startswith(("models:/", "runs:/"))


@dataclass(frozen=True)
class Fetched:
    """A checkpoint (downloaded, or a local file), its demo config.json, and its origin."""

    checkpoint: Path
    config: Path | None
    provenance: Mapping[str, str] = field(default_factory=dict)
    default_name: str = "model"  # for the default output file name
    label: str = ""  # what messages and tracked params call it (no local folder for URIs)
    default_out: Path = Path("model.onnx")


@contextlib.contextmanager
def checkpoint_source(text: str, config: Path | None, mlflow: str | None) -> Iterator[Fetched]:
    """A local checkpoint as it is, or one named by ``models:/`` / ``runs:/`` downloaded into a
    temporary folder that lasts as long as the block; ``mlflow``: ``--mlflow`` (or the
    environment)."""
    if not is_mlflow_uri(text):
        path = Path(text)
        yield Fetched(path, config, {}, path.stem, path.name, path.with_suffix(".onnx"))
        return
    with tempfile.TemporaryDirectory(prefix="sr-edge-fetch-") as scratch:
        fetched = fetch(text, resolve_uri(mlflow), Path(scratch))
        yield dataclasses.replace(fetched, config=config or fetched.config, label=text,
                                  default_out=Path(f"{fetched.default_name}.onnx"))


def _version_of(client: Any, uri: str, source: str) -> Any:
    """The model version ``source`` (``models:/...``) names, or a one-line error."""
    from mlflow.exceptions import MlflowException

    match = _MODELS.match(source)
    if match is None:
        raise UsageError(f"{source}: write models:/NAME/VERSION or models:/NAME@ALIAS")
    name = match["name"]
    try:
        if match["alias"]:
            return client.get_model_version_by_alias(name, match["alias"])
        if not match["version"].isdigit():
            raise UsageError(f"{source}: the version must be a number (models:/{name}/1) or an "
                             f"alias (models:/{name}@champion)")
        return client.get_model_version(name, match["version"])
    except MlflowException as exc:
        if getattr(exc, "error_code", "") not in ("RESOURCE_DOES_NOT_EXIST",
                                                  "INVALID_PARAMETER_VALUE"):
            raise store_error(exc, uri, f"looking up {source}") from None
        try:
            versions = sorted(int(v.version) for v in
                              client.search_model_versions(f"name = '{name}'"))
        except Exception:  # the lookup above already failed: say what we know
            versions = []
        where = redact(uri)
        if not versions:
            raise UsageError(f"{source}: no registered model {name!r} in {where}; register one "
                             f"with `sr-export register CHECKPOINT --name {name}`") from None
        raise UsageError(f"{source}: not found in {where}; {name!r} has version(s) "
                         f"{', '.join(map(str, versions))}") from None
    except SrEdgeError:
        raise
    except Exception as exc:
        raise store_error(exc, uri, f"looking up {source}") from None


def _download(uri: str, artifact_uri: str, dst: Path, source: str) -> Path:
    mlflow = import_mlflow(uri)
    from mlflow.exceptions import MlflowException

    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=artifact_uri,
                                                        dst_path=str(dst), tracking_uri=uri))
    except MlflowException as exc:
        if getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
            raise UsageError(f"{source}: not found in {redact(uri)} ({str(exc)[:200]})") from None
        raise store_error(exc, uri, f"downloading {source}") from None
    except OSError as exc:  # a missing artifact file of a local store
        raise UsageError(f"{source}: its files cannot be read from {redact(uri)} "
                         f"({exc.strerror or type(exc).__name__})") from None
    except Exception as exc:
        raise store_error(exc, uri, f"downloading {source}") from None


def _checkpoint_in(folder: Path, source: str) -> tuple[Path, Path | None]:
    """The one checkpoint file in a downloaded artifact (file or folder) and its config.json."""
    if folder.is_file():
        files = [folder]
        folder = folder.parent
    else:
        files = sorted(p for p in folder.rglob("*") if p.is_file())
    checkpoints = [p for p in files if p.suffix in CHECKPOINT_SUFFIXES]
    config = next((p for p in files if p.name == DEMO_CONFIG), None)
    if len(checkpoints) == 1:
        return checkpoints[0], config
    if not checkpoints and any(p.suffix == ".onnx" for p in files):
        raise UsageError(f"{source} holds an exported ONNX model, not a checkpoint: it needs no "
                         "to-onnx; download it with mlflow artifacts download or export the "
                         "checkpoint it came from")
    names = ", ".join(p.name for p in files[:6]) or "nothing"
    raise UsageError(f"{source} must hold one checkpoint (.ckpt/.pt), it holds {names}")


def fetch(source: str, uri: str | None, dst: Path) -> Fetched:
    """Download the checkpoint ``source`` names into ``dst``; where it came from."""
    if uri is None:
        raise UsageError(f"{source} is read from an MLflow tracking store: say which with "
                         f"--mlflow URI (or {TRACKING_ENV}); --mlflow local is ./mlruns.db")
    client = client_for(uri)
    provenance = {"source": source}
    if source.startswith("models:/"):
        version = _version_of(client, uri, source)
        provenance.update(mlflow_model_name=str(version.name),
                          mlflow_model_version=str(version.version))
        if version.run_id:
            provenance["mlflow_run_id"] = str(version.run_id)
        try:  # the version's source, read through this client (not MLflow's global registry)
            artifact = client.get_model_version_download_uri(version.name, version.version)
        except Exception as exc:
            raise store_error(exc, uri, f"looking up {source}") from None
        default_name = f"{version.name}-v{version.version}"
    else:
        match = _RUNS.match(source)
        if match is None:
            raise UsageError(f"{source}: write runs:/RUN_ID/path/to/checkpoint")
        provenance["mlflow_run_id"] = match["run"]
        artifact = source
        default_name = Path(match["path"] or "model").stem or "model"
    downloaded = _download(uri, artifact, dst, source)
    checkpoint, config = _checkpoint_in(downloaded, source)
    if source.startswith("runs:/"):
        default_name = checkpoint.stem
    return Fetched(checkpoint, config, provenance, default_name)


def description_tags(description: ModelDescription, kind: str) -> dict[str, str]:
    """The sr-edge description as model-version tags: readable keys plus the whole JSON."""
    tags = {f"sr_edge.{key}": value for key, value in description.to_metadata().items()
            if key != DESCRIPTION_KEY and value != ""}
    tags.update({f"sr_edge.arch.{k}": str(v) for k, v in description.arch_params.items()})
    tags["sr_edge.kind"] = kind
    tags["sr_edge.description"] = description.to_json()
    return tags


def _describe(path: Path, config: Path | None) -> tuple[ModelDescription, str]:
    if path.suffix == ".onnx":
        from sr_runtime.engines.onnxruntime import read_description

        return read_description(path), "onnx"
    if path.suffix in CHECKPOINT_SUFFIXES:
        from sr_export.extras import require_extra

        require_extra("register", "torch")
        from sr_export.checkpoints import load_checkpoint

        return load_checkpoint(path, config).description, "checkpoint"
    raise UsageError(f"{path.name}: register an sr-edge .onnx model or a checkpoint "
                     "(.ckpt/.pt), or a runs:/RUN_ID/path of one")


@dataclass(frozen=True)
class Registered:
    name: str
    version: str
    run_id: str
    source: str
    description: ModelDescription


def register(model: str, name: str, uri: str | None, *, config: Path | None = None,
             dst: Path | None = None) -> Registered:
    """Register a local ``.onnx`` / checkpoint (logged into a new run first) or a
    ``runs:/RUN_ID/path`` already in the store, tagged with its description."""
    if uri is None:
        raise UsageError(f"say which MLflow registry to register in: --mlflow URI (or "
                         f"{TRACKING_ENV}); --mlflow local is ./mlruns.db")
    if not re.fullmatch(r"[\w.\- ]+", name):
        raise UsageError(f"--name {name!r}: use letters, digits, '_', '-', '.' and spaces")
    if model.startswith("models:/"):
        raise UsageError(f"{model} is registered already; register a file or a runs:/ URI")
    if model.startswith("runs:/"):
        if dst is None:
            raise UsageError("internal: a download folder is needed for runs:/ sources")
        fetched_dir = _download(uri, model, dst, model)
        files = [fetched_dir] if fetched_dir.is_file() else sorted(
            p for p in fetched_dir.rglob("*") if p.suffix in (".onnx", *CHECKPOINT_SUFFIXES))
        if len(files) != 1:
            raise UsageError(f"{model} must hold one .onnx model or checkpoint, it holds "
                             f"{len(files)}")
        local_config = next(iter(fetched_dir.rglob(DEMO_CONFIG)), None) \
            if fetched_dir.is_dir() else None
        description, kind = _describe(files[0], config or local_config)
        match = _RUNS.match(model)
        if match is None:
            raise UsageError(f"{model}: write runs:/RUN_ID/path")
        run_id, source = match["run"], model
    else:
        path = Path(model)
        if not path.is_file():
            raise UsageError(f"model not found: {path}")
        description, kind = _describe(path, config)
        tracker = MlflowTracker(uri, command="register", run_name=f"register {name}",
                                tags={"sr_edge.registered_model": name})
        try:
            tracker.log_artifact(path, REGISTERED_FOLDER)
            if config is not None and kind == "checkpoint":
                tracker.log_artifact(config, REGISTERED_FOLDER)
            tracker.log_params({"register.file": path.name, "register.kind": kind,
                                "register.sha256": _sha256(path)})
        except BaseException as exc:
            tracker.close(exc)
            raise
        tracker.close()
        assert tracker.run_id is not None
        run_id, source = tracker.run_id, f"runs:/{tracker.run_id}/{REGISTERED_FOLDER}"
    return _create_version(uri, name, source, run_id, description, kind)


def _sha256(path: Path) -> str:
    from sr_runtime.paths import sha256_file

    return sha256_file(path)


def _create_version(uri: str, name: str, source: str, run_id: str,
                    description: ModelDescription, kind: str) -> Registered:
    from mlflow.exceptions import MlflowException

    client = client_for(uri)
    try:
        try:
            client.get_registered_model(name)
        except MlflowException as exc:
            if getattr(exc, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
                raise
            client.create_registered_model(name, description="sr-edge super-resolution model")
        version = client.create_model_version(name, source, run_id=run_id,
                                              tags=description_tags(description, kind))
    except Exception as exc:
        raise store_error(exc, uri, f"registering {name}") from None
    return Registered(name, str(version.version), run_id, source, description)
