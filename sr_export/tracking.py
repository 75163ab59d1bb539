"""MLflow tracking, only when asked: open a run, log params / metrics / artifacts, close it.

A command tracks when ``--mlflow URI`` is given or ``MLFLOW_TRACKING_URI`` is set; otherwise it
gets the no-op :class:`Tracker` and MLflow is never imported. ``--mlflow local`` (or a bare
``--mlflow`` on the command line) is a SQLite file ``mlruns.db`` in the working folder, with the
artifacts in ``mlartifacts/`` beside it: nothing leaves the machine unless a URI says so, and
MLflow's own usage telemetry is switched off (``MLFLOW_DISABLE_TELEMETRY``, unless set).

What is never logged: credentials (user:password and query strings are cut from every URI this
module shows or records) and the environment.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sr_runtime.errors import EngineUnavailableError, SourceError, SrEdgeError, UsageError
from sr_runtime.machine import library_versions

TRACKING_ENV = "MLFLOW_TRACKING_URI"
EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_NAME"
DEFAULT_EXPERIMENT = "sr-edge"
LOCAL = "local"
LOCAL_STORE = "mlruns.db"
LOCAL_ARTIFACTS = "mlartifacts"
MLOPS_EXTRA = "pip install 'sr-edge[mlops]'"
#: URI schemes MLflow's client stores accept (SQLAlchemy dialects may carry a ``+driver``).
SCHEMES = ("sqlite", "file", "http", "https", "postgresql", "mysql", "mssql", "databricks",
           "databricks-uc")
#: Quiet, bounded HTTP behaviour unless the user chose otherwise: an unreachable server is said
#: within seconds, not after MLflow's default of 7 retries with exponential backoff.
MLFLOW_DEFAULTS = {"MLFLOW_DISABLE_TELEMETRY": "true",
                   "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
                   "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
                   "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                   "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
#: MLflow names: alphanumerics, underscore, dash, period, space, colon and slash.
_NAME_BAD = re.compile(r"[^/\w.\- :]")
MAX_PARAM_CHARS = 6000
LIBRARIES = ("sr-edge", "torch", "lightning", "onnx", "onnxscript", "onnxruntime",
             "onnxruntime-gpu", "tensorrt", "numpy", "mlflow-skinny", "mlflow")
HELP = ("Track this run in MLflow: a tracking URI (sqlite:///path.db, http://127.0.0.1:5000, "
        "file:///path) or 'local' for sqlite:///mlruns.db in the working folder; default: "
        f"${TRACKING_ENV}, else no tracking")


def resolve_uri(option: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """The tracking URI from ``--mlflow`` or the environment; None means: do not track."""
    env = os.environ if env is None else env
    if option is not None:
        return normalize_uri(option, "--mlflow")
    value = env.get(TRACKING_ENV, "").strip()
    return normalize_uri(value, TRACKING_ENV) if value else None


def normalize_uri(value: str, what: str = "--mlflow") -> str:
    """``local`` -> the SQLite file in the working folder; ``x.db`` -> ``sqlite:///abs/x.db``;
    a URI of a known scheme as it is; anything else is refused."""
    value = value.strip()
    if value in ("", LOCAL):
        return f"sqlite:///{Path.cwd() / LOCAL_STORE}"
    scheme = urlsplit(value).scheme.split("+")[0].lower()
    if scheme in SCHEMES and ("://" in value or scheme.startswith("databricks")):
        return value
    if not scheme and value.endswith(".db"):
        return f"sqlite:///{Path(value).expanduser().resolve()}"
    raise UsageError(f"{what} takes an MLflow tracking URI (sqlite:///mlruns.db, "
                     f"http://127.0.0.1:5000, file:///path/mlruns) or 'local', not "
                     f"{redact(value)!r}; to use the local store put --mlflow after the "
                     "command's arguments or write --mlflow local")


def redact(uri: str) -> str:
    """``uri`` without user:password, query or fragment: what may be shown and recorded."""
    bare = uri.split("#", 1)[0].split("?", 1)[0]
    scheme, sep, rest = bare.partition("://")
    if not sep:
        return bare
    authority, slash, path = rest.partition("/")
    return f"{scheme}://{authority.rsplit('@', 1)[-1]}{slash}{path}"


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for other stores or in-memory)."""
    if not uri.startswith("sqlite:///") or uri == "sqlite:///:memory:":
        return None
    return Path(uri[len("sqlite:///"):])


def metric_name(name: str) -> str:
    return _NAME_BAD.sub("_", name)


def numeric(value: object) -> float | None:
    """A finite float, or None for what is no metric (text, None, NaN, infinity)."""
    if isinstance(value, bool):
        return float(value)
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as ``a.b.c`` keys (lists stay values)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def environment_params() -> dict[str, object]:
    """What every tracked command records about where it ran (never environment variables)."""
    from sr_runtime.machine import cpu_class, cpu_model, physical_cores

    params: dict[str, object] = {"machine.cpu_class": cpu_class(), "machine.cpu": cpu_model(),
                                 "machine.physical_cores": physical_cores()}
    versions = library_versions(LIBRARIES)
    params.update({f"version.{name}": version for name, version in versions.items()})
    return params


class Tracker:
    """The no-op tracker: what every command calls when nothing is tracked."""

    enabled = False
    run_id: str | None = None
    uri: str | None = None  # redacted, for messages

    def log_params(self, params: Mapping[str, object]) -> None:
        """Record settings (each key once per run)."""

    def log_metrics(self, metrics: Mapping[str, object], step: int | None = None) -> None:
        """Record figures; non-numeric and non-finite values are skipped."""

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        """Copy a file into the run's artifacts."""

    def log_text(self, text: str, name: str) -> None:
        """Store ``text`` as the artifact ``name``."""

    def set_tags(self, tags: Mapping[str, object]) -> None:
        """Label the run."""

    def close(self, error: BaseException | None = None) -> None:
        """End the run: FINISHED, or FAILED with the error's first line as a tag."""


def import_mlflow(uri: str) -> Any:
    """``mlflow`` with quiet, private defaults, or one line saying how to install it."""
    for key, value in MLFLOW_DEFAULTS.items():
        os.environ.setdefault(key, value)
    needed = ["mlflow"] + (["sqlalchemy", "alembic"] if uri.startswith("sqlite:") else [])
    for name in needed:
        try:
            module = __import__(name)
        except ImportError:
            raise EngineUnavailableError(
                f"--mlflow needs {name}, which is not installed here: {MLOPS_EXTRA}") from None
        if name == "mlflow":
            mlflow = module
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return mlflow


def client_for(uri: str) -> Any:
    """An ``MlflowClient`` bound to ``uri`` for tracking and registry (no global state)."""
    import_mlflow(uri)
    from mlflow.tracking import MlflowClient

    database = sqlite_file(uri)
    if database is not None and not database.parent.is_dir():
        raise UsageError(f"the folder of the MLflow store {database} does not exist; create it "
                         "or pass another --mlflow URI")
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def store_error(exc: Exception, uri: str, doing: str) -> SrEdgeError:
    """A one-line error for a store that cannot be reached or used (never the raw message of
    an HTTP failure: it may repeat the URL with its credentials)."""
    shown = redact(uri)
    if uri.startswith(("http://", "https://")):
        return SourceError(f"cannot reach the MLflow tracking server at {shown} while {doing} "
                           f"({type(exc).__name__}); start it, or check --mlflow / "
                           f"{TRACKING_ENV}")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return SourceError(f"cannot use the MLflow store {shown} while {doing} ({first[:200]}); "
                       f"check --mlflow / {TRACKING_ENV}")


def experiment_id(client: Any, uri: str, name: str) -> str:
    """The experiment's id, created if needed (for a local SQLite store with its artifacts in
    ``mlartifacts/`` beside the database, wherever the command runs)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    database = sqlite_file(uri)
    location = (database.parent / LOCAL_ARTIFACTS / name).resolve().as_uri() if database \
        else None
    return str(client.create_experiment(name, artifact_location=location))


class MlflowTracker(Tracker):
    """One MLflow run, logged through an explicit client (MLflow's global run stack unused)."""

    enabled = True

    def __init__(self, uri: str, *, command: str, run_name: str | None = None,
                 tags: Mapping[str, object] | None = None,
                 experiment: str | None = None) -> None:
        self.tracking_uri = uri
        self.uri = redact(uri)
        self.client = client_for(uri)
        name = experiment or os.environ.get(EXPERIMENT_ENV) or DEFAULT_EXPERIMENT
        all_tags = {"sr_edge.command": command, **(tags or {})}
        try:
            run = self.client.create_run(experiment_id(self.client, uri, name),
                                         run_name=run_name or command,
                                         tags={k: str(v) for k, v in all_tags.items()})
        except Exception as exc:  # MlflowException, requests / SQLAlchemy errors
            raise store_error(exc, uri, "starting a run") from None
        self.run_id = run.info.run_id
        self._params: dict[str, str] = {}
        self.log_params(environment_params())

    def _call(self, doing: str, method: str, *args: object, **kwargs: object) -> None:
        try:
            getattr(self.client, method)(*args, **kwargs)
        except Exception as exc:
            raise store_error(exc, self.tracking_uri, doing) from None

    def log_params(self, params: Mapping[str, object]) -> None:
        from mlflow.entities import Param

        fresh = {}
        for key, value in params.items():
            if value is None:
                continue
            name = metric_name(key)
            text = value if isinstance(value, str) else json.dumps(value, default=str) \
                if isinstance(value, (list, tuple, dict)) else str(value)
            text = text[:MAX_PARAM_CHARS]
            if self._params.get(name) == text:
                continue
            self._params[name] = fresh[name] = text
        if fresh:
            self._call("logging parameters", "log_batch", self.run_id,
                       params=[Param(k, v) for k, v in fresh.items()])

    def log_metrics(self, metrics: Mapping[str, object], step: int | None = None) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(metric_name(k), number, now, step or 0) for k, v in metrics.items()
                 if (number := numeric(v)) is not None]
        if batch:
            self._call("logging metrics", "log_batch", self.run_id, metrics=batch)

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        self._call(f"storing {Path(path).name}", "log_artifact", self.run_id, str(path),
                   folder)

    def log_text(self, text: str, name: str) -> None:
        self._call(f"storing {name}", "log_text", self.run_id, text, name)

    def set_tags(self, tags: Mapping[str, object]) -> None:
        for key, value in tags.items():
            self._call("tagging the run", "set_tag", self.run_id, metric_name(key),
                       str(value)[:MAX_PARAM_CHARS])

    def close(self, error: BaseException | None = None) -> None:
        if error is not None:
            first = str(error).strip().splitlines()[0] if str(error).strip() \
                else type(error).__name__
            with contextlib.suppress(Exception):
                self.client.set_tag(self.run_id, "sr_edge.error", first[:MAX_PARAM_CHARS])
        status = "FAILED" if error is not None else "FINISHED"
        with contextlib.suppress(Exception):  # a run left open is better than a lost result
            self.client.set_terminated(self.run_id, status)


def open_tracker(option: str | None, *, command: str, run_name: str | None = None,
                 tags: Mapping[str, object] | None = None) -> Tracker:
    """The tracker for ``--mlflow`` / ``MLFLOW_TRACKING_URI``; the no-op one without either."""
    uri = resolve_uri(option)
    if uri is None:
        return Tracker()
    return MlflowTracker(uri, command=command, run_name=run_name, tags=tags)


@contextlib.contextmanager
def tracking(option: str | None, *, command: str, run_name: str | None = None,
             tags: Mapping[str, object] | None = None) -> Iterator[Tracker]:
    """A tracked run around a command: FINISHED when it returns, FAILED when it raises."""
    tracker = open_tracker(option, command=command, run_name=run_name, tags=tags)
    try:
        yield tracker
    except BaseException as exc:
        tracker.close(exc)
        raise
    tracker.close()


# ------------------------------------------------------------------------------ benchmarks

def benchmark_figures(results: Mapping[str, Any]) -> tuple[dict[str, object], dict[str, float]]:
    """Params and metrics of a harness results file (``benchmarks/results/latest/*.json``).

    Metrics: per model, ``speed.<backend>@<tile>.<figure>`` (ratios to PyTorch and to the
    reference artefact, ms, HR Mpix/s, GFLOP/s), ``parity.<backend>.<figure>`` and
    ``skill.<method>.<figure>`` in kelvin / dB, and the run's wall time.
    """
    params: dict[str, object] = {"benchmark.profile": results.get("profile"),
                                 "benchmark.schema": results.get("schema"),
                                 "benchmark.created": results.get("created")}
    machine = results.get("machine") or {}
    for key in ("cpu", "cpu_model", "cpu_class", "physical_cores", "logical_cpus", "threads",
                "python", "torch", "onnxruntime", "numpy"):
        if key in machine:
            params[f"benchmark.machine.{key}"] = machine[key]
    for key, value in (results.get("settings") or {}).items():
        if not key.endswith("_dir"):  # a folder of the machine that ran it
            params[f"benchmark.settings.{key}"] = value
    for name, why in (results.get("skipped_models") or {}).items():
        params[f"benchmark.skipped.{name}"] = why
    metrics: dict[str, float] = {}
    for model, entry in (results.get("models") or {}).items():
        for key, row in (entry.get("speed") or {}).items():
            for figure in ("ratio_vs_torch", "ratio_vs_reference", "median_ms", "cpu_ms",
                           "hr_mpix_s", "gflop_s"):
                if (number := numeric(row.get(figure))) is not None:
                    metrics[f"{model}.speed.{key}.{figure}"] = number
        accuracy = entry.get("accuracy") or {}
        for kind in ("parity", "skill"):
            for method, scores in (accuracy.get(kind) or {}).items():
                for figure in ("rmse", "max_abs", "psnr", "ssim"):
                    if (number := numeric(scores.get(figure))) is not None:
                        metrics[f"{model}.{kind}.{method}.{figure}"] = number
        for what, timing in (entry.get("endtoend") or {}).items():
            if isinstance(timing, Mapping) and (number := numeric(timing.get("median_ms"))):
                metrics[f"{model}.endtoend.{what}.median_ms"] = number
    if (wall := numeric(results.get("wall_s"))) is not None:
        metrics["wall_s"] = wall
    return params, metrics


def log_benchmark(results_json_path: str | Path, uri: str | None = None, *,
                  gate: Mapping[str, object] | None = None) -> str:
    """Log one benchmark results JSON as an MLflow run; returns the run id.

    ``uri``: tracking URI (default ``MLFLOW_TRACKING_URI``, as ``--mlflow``); ``gate``: optional
    figures of the gate's verdict (e.g. ``{"passed": True, "failed_checks": 0}``) as metrics.
    """
    path = Path(results_json_path)
    try:
        results = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"benchmark results not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path} is not a readable benchmark results JSON ({exc}); run "
                         "python -m benchmarks.harness first") from None
    if not isinstance(results, dict) or "models" not in results:
        raise UsageError(f"{path} is not a benchmark results file (no 'models'); pass "
                         "benchmarks/results/latest/<profile>.json")
    resolved = resolve_uri(uri)
    if resolved is None:
        raise UsageError(f"say where to log {path.name}: --mlflow URI (or {TRACKING_ENV})")
    params, metrics = benchmark_figures(results)
    tracker = MlflowTracker(resolved, command="log-benchmark",
                            run_name=f"benchmark {results.get('profile', '')}".strip(),
                            tags={"sr_edge.benchmark.profile": results.get("profile", "")})
    try:
        tracker.log_params(params)
        tracker.log_metrics(metrics)
        if gate:
            tracker.log_metrics({f"gate.{k}": v for k, v in gate.items()})
        tracker.log_artifact(path, "benchmark")
    except BaseException as exc:
        tracker.close(exc)
        raise
    tracker.close()
    assert tracker.run_id is not None
    return tracker.run_id
