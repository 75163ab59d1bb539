"""MLflow tracking: what train, to-onnx, quantize, tune and log-benchmark record, read back with
MLflow's own client from a real SQLite store; nothing MLflow-related without --mlflow."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from sr_export.cli import app
from sr_export.tracking import normalize_uri, redact, resolve_uri
from sr_runtime.errors import UsageError
from tests.runtime.test_runtime_without_torch import blocker

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
#: A real results file written by the benchmark harness (checked in by the benchmarks' owner).
HARNESS_RESULTS = REPO / "benchmarks" / "results" / "full-latest.json"
MLFLOW_MODULES = ("mlflow", "sqlalchemy", "alembic")


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> Path:
    """An MLflow SQLite store with its tables made once (MLflow's migrations take seconds)."""
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    database = tmp_path_factory.mktemp("mlflow-template") / "mlruns.db"
    MlflowClient(tracking_uri=f"sqlite:///{database}").search_experiments()
    return database


@pytest.fixture
def store(empty_store, tmp_path, monkeypatch) -> str:
    """A private copy of the empty store; the working folder is a fresh one beside it."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_DISABLE_TELEMETRY"):
        monkeypatch.delenv(name, raising=False)
    shutil.copy(empty_store, tmp_path / "mlruns.db")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    return f"sqlite:///{tmp_path / 'mlruns.db'}"


def client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def runs_of(uri: str, command: str) -> list:
    found = client(uri).search_runs(
        [e.experiment_id for e in client(uri).search_experiments()],
        filter_string=f"tags.`sr_edge.command` = '{command}'")
    return list(found)


def only_run(uri: str, command: str):
    runs = runs_of(uri, command)
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return runs[0]


def artifact_bytes(uri: str, run_id: str, path: str, dst: Path) -> bytes:
    import mlflow

    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path,
                                                dst_path=str(dst), tracking_uri=uri)
    return Path(local).read_bytes()


def onnx_props(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tiny_checkpoint(path: Path) -> Path:
    from tests.runtime.engines.test_tensorrt_build import write_sr_edge_checkpoint

    return write_sr_edge_checkpoint(path, seed=5)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- URIs, no mlflow


def test_uris_are_resolved_and_credentials_never_shown(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_uri(None) is None
    assert normalize_uri("local") == f"sqlite:///{tmp_path / 'mlruns.db'}"
    assert normalize_uri("runs.db") == f"sqlite:///{tmp_path / 'runs.db'}"
    assert normalize_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://mlflow.example.org")
    assert resolve_uri(None) == "https://mlflow.example.org"
    with pytest.raises(UsageError, match="--mlflow local"):
        normalize_uri("model.ckpt")
    assert redact("postgresql://alice:s3cret@db.example.org:5432/mlflow?password=x") == \
        "postgresql://db.example.org:5432/mlflow"
    assert redact("https://bob:tok@host/path#frag") == "https://host/path"
    assert redact("sqlite:////abs/mlruns.db") == "sqlite:////abs/mlruns.db"


def test_nothing_mlflow_related_is_imported_without_mlflow_option_or_env(tmp_path):
    """A real command (tune) in a fresh interpreter: no mlflow, sqlalchemy or alembic module
    is loaded; the same command with MLFLOW_TRACKING_URI set does load mlflow (the check can
    fail)."""
    from tests.export.test_quantize import tiny_sr_model

    model = tiny_sr_model(tmp_path / "m.onnx", seed=6)
    code = textwrap.dedent(f"""
        import json, sys
        from sr_export.cli import main
        sys.argv = ["sr-export", "tune", {str(model)!r}, "--tiles", "8", "--repeats", "1"]
        try:
            main()
        except SystemExit as exc:
            code = exc.code
        loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set({MLFLOW_MODULES!r}))
        print(json.dumps({{"code": code, "loaded": loaded}}))
    """)
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("MLFLOW_")}
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=env, cwd=tmp_path, timeout=300, check=False)
    result = json.loads(plain.stdout.strip().splitlines()[-1])
    assert result == {"code": 0, "loaded": []}, plain.stderr[-2000:]
    assert (tmp_path / "m.tune.json").is_file()
    assert not list(tmp_path.glob("*.db")) and not (tmp_path / "mlruns").exists()

    pytest.importorskip("mlflow")
    tracked = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**env, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/t.db"},
                             cwd=tmp_path, timeout=300, check=False)
    result = json.loads(tracked.stdout.strip().splitlines()[-1])
    assert result["code"] == 0 and "mlflow" in result["loaded"], tracked.stderr[-2000:]


def test_without_mlflow_installed_the_error_says_what_to_install(tmp_path):
    from tests.export.test_quantize import tiny_sr_model

    model = tiny_sr_model(tmp_path / "m.onnx", seed=7)
    code = blocker({"mlflow"}) + textwrap.dedent(f"""
        import sys
        from sr_export.cli import main
        sys.argv = ["sr-export", "tune", {str(model)!r}, "--tiles", "8", "--repeats", "1",
                    "--mlflow", "sqlite:///{tmp_path}/t.db"]
        main()
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300, check=False)
    assert done.returncode == 1
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "pip install 'sr-edge[mlops]'" in lines[0], done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "m.tune.json").exists()


# ------------------------------------------------------------------ tracked runs, read back


def test_training_run_logs_params_metrics_and_checkpoint(store, tmp_path):
    import torch

    from sr_export.evaluate import evaluate_held_out
    from sr_runtime.machine import cpu_class

    out = tmp_path / "run"
    result = runner.invoke(app, ["train", "--out-dir", str(out), "--channels", "4", "--blocks",
                                 "1", "--batch-size", "4", "--every", "24", "--max-steps", "10",
                                 "--val-every", "5", "--heldout-every", "21", "--seed", "3",
                                 "--mlflow", store])
    assert result.exit_code == 0, result.output
    run = only_run(store, "train")
    params = run.data.params
    assert params["model.n_channels"] == "4" and params["model.n_blocks"] == "1"
    assert params["data.steps"] == "24" and params["data.first_time"] == "2024-10-01T00:00"
    assert params["train.seed"] == "3" and params["train.max_steps"] == "10"
    assert params["machine.cpu_class"] == cpu_class()
    assert params["version.torch"] == torch.__version__
    assert run.info.status == "FINISHED"

    mlflow_client = client(store)
    losses = mlflow_client.get_metric_history(run.info.run_id, "train_loss")
    assert len(losses) >= 2 and all(np.isfinite(m.value) for m in losses)
    rmse = mlflow_client.get_metric_history(run.info.run_id, "val_rmse_K")
    assert len(rmse) >= 2  # per validation epoch, by step
    assert sorted(m.step for m in rmse) == sorted({m.step for m in rmse})
    assert {"val_psnr_dB", "val_ssim", "heldout.model.ssim"} <= set(run.data.metrics)

    logged = tmp_path / "logged"
    assert artifact_bytes(store, run.info.run_id, "checkpoint/model.ckpt", logged) == \
        (out / "model.ckpt").read_bytes()
    # the held-out figures belong to the checkpoint that was logged
    again = evaluate_held_out(logged / "model.ckpt", every=21)
    model_scores = next(s for n, s in again.scores.items() if n.startswith("sr-edge model"))
    assert run.data.metrics["heldout.model.rmse_K"] == pytest.approx(model_scores.rmse)
    assert run.data.metrics["heldout.bicubic.rmse_K"] == pytest.approx(
        again.scores["bicubic"].rmse)
    assert not any(Path.cwd().iterdir())  # nothing written where the command ran


@pytest.fixture(scope="module")
def registered_export(empty_store, tmp_path_factory):
    """A checkpoint registered (version 1) and exported from models:/tiny-t2m/1, tracked."""
    folder = tmp_path_factory.mktemp("registry")
    shutil.copy(empty_store, folder / "mlruns.db")
    uri = f"sqlite:///{folder / 'mlruns.db'}"
    checkpoint = tiny_checkpoint(folder / "tiny.ckpt")
    registered = runner.invoke(app, ["register", str(checkpoint), "--name", "tiny-t2m",
                                     "--mlflow", uri])
    assert registered.exit_code == 0, registered.output
    out = folder / "exported.onnx"
    exported = runner.invoke(app, ["to-onnx", "models:/tiny-t2m/1", "--out", str(out),
                                   "--mlflow", uri])
    assert exported.exit_code == 0, exported.output
    return uri, checkpoint, out, folder


def test_registered_checkpoint_exports_from_models_uri_with_its_run_id(registered_export):
    uri, checkpoint, out, _ = registered_export
    version = client(uri).get_model_version("tiny-t2m", "1")
    props = onnx_props(out)
    assert props["provenance.mlflow_run_id"] == version.run_id
    assert props["provenance.mlflow_model_version"] == "1"
    assert props["provenance.source"] == "models:/tiny-t2m/1"
    assert props["checkpoint_sha256"] == sha256(checkpoint)  # the very file registered
    description = json.loads(props["sr_edge.description"])
    assert description["provenance"]["mlflow_model_name"] == "tiny-t2m"
    # the version carries the description as tags
    assert version.tags["sr_edge.kind"] == "checkpoint"
    assert version.tags["sr_edge.checkpoint_sha256"] == sha256(checkpoint)
    assert json.loads(version.tags["sr_edge.description"])["arch_params"]["n_channels"] == 8


def test_export_run_logs_parity_the_onnx_and_its_card(registered_export, tmp_path):
    uri, _, out, _ = registered_export
    run = only_run(uri, "to-onnx")
    assert onnx_props(out)["provenance.mlflow_export_run_id"] == run.info.run_id
    assert run.data.params["export.source"] == "models:/tiny-t2m/1"
    assert run.data.params["model.n_channels"] == "8"
    assert 0 <= run.data.metrics["parity.max_abs_K"] <= 1e-3
    assert run.data.metrics["parity.passed"] == 1.0
    assert artifact_bytes(uri, run.info.run_id, f"onnx/{out.name}", tmp_path) == \
        out.read_bytes()
    card = artifact_bytes(uri, run.info.run_id, "onnx/model_card.txt", tmp_path).decode()
    assert "provenance:" in card and "mlflow_model_version=1" in card


def test_registered_onnx_carries_its_description_as_tags(registered_export):
    uri, _, out, _ = registered_export
    done = runner.invoke(app, ["register", str(out), "--name", "tiny-t2m", "--mlflow", uri])
    assert done.exit_code == 0, done.output
    version = client(uri).get_model_version("tiny-t2m", "2")
    assert version.tags["sr_edge.kind"] == "onnx"
    assert version.tags["sr_edge.scale_factor"] == "8"
    assert version.tags["sr_edge.description"] == onnx_props(out)["sr_edge.description"]


def test_missing_version_and_unreachable_server_are_one_line_errors(registered_export,
                                                                    tmp_path):
    uri, _, _, _ = registered_export
    missing = runner.invoke(app, ["to-onnx", "models:/tiny-t2m/7", "--out",
                                  str(tmp_path / "x.onnx"), "--mlflow", uri])
    assert missing.exit_code == 2
    text = " ".join(missing.output.split())
    assert "models:/tiny-t2m/7: not found" in text and "version(s) 1" in text
    unknown = runner.invoke(app, ["to-onnx", "models:/nothing/1", "--mlflow", uri])
    assert unknown.exit_code == 2 and "no registered model 'nothing'" in unknown.output
    server = f"http://alice:s3cret@127.0.0.1:{closed_port()}"
    down = runner.invoke(app, ["to-onnx", "runs:/0123abcd/checkpoint", "--mlflow", server])
    assert down.exit_code == 1
    text = " ".join(down.output.split())
    assert "cannot reach the MLflow tracking server at http://127.0.0.1:" in text
    assert "s3cret" not in down.output and "alice" not in down.output
    assert not (tmp_path / "x.onnx").exists()


def test_benchmark_results_are_logged_as_metrics_params_and_artifact(store, tmp_path):
    from sr_export.tracking import log_benchmark

    results = json.loads(HARNESS_RESULTS.read_text())
    run_id = log_benchmark(HARNESS_RESULTS, store, gate={"passed": True})
    run = client(store).get_run(run_id)
    shipped = results["models"]["sr-edge-t2m-x8"]
    metrics = run.data.metrics
    assert metrics["sr-edge-t2m-x8.speed.onnxruntime_32.ratio_vs_torch"] == pytest.approx(
        shipped["speed"]["onnxruntime@32"]["ratio_vs_torch"])
    assert metrics["sr-edge-t2m-x8.parity.onnxruntime-fp16.max_abs"] == pytest.approx(
        shipped["accuracy"]["parity"]["onnxruntime-fp16"]["max_abs"])
    lapse = shipped["accuracy"]["skill"]["bicubic + lapse rate (HR terrain)"]["rmse"]
    assert metrics["sr-edge-t2m-x8.skill.bicubic _ lapse rate _HR terrain_.rmse"] == \
        pytest.approx(lapse)
    assert metrics["gate.passed"] == 1.0 and metrics["wall_s"] == results["wall_s"]
    assert run.data.params["benchmark.profile"] == "full"
    assert run.data.params["benchmark.machine.cpu"] == results["machine"]["cpu"]
    assert artifact_bytes(store, run_id, f"benchmark/{HARNESS_RESULTS.name}", tmp_path) == \
        HARNESS_RESULTS.read_bytes()


def test_log_benchmark_cli_with_a_bare_mlflow_uses_the_local_store(empty_store, tmp_path):
    """`--mlflow` without a value (through the real entry point) is ./mlruns.db."""
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("MLFLOW_")}
    shutil.copy(HARNESS_RESULTS, tmp_path / "quick.json")
    code = ("import sys; from sr_export.cli import main; sys.argv[0] = 'sr-export'; main()")
    done = subprocess.run([sys.executable, "-c", code, "log-benchmark", "quick.json",
                           "--mlflow"], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    assert only_run(uri, "log-benchmark").data.params["benchmark.profile"] == "full"
    assert (tmp_path / "mlartifacts").is_dir() and not (tmp_path / "mlflow.db").exists()
    bad = runner.invoke(app, ["log-benchmark", str(tmp_path / "quick.json"), "--mlflow",
                              "quick.json"])
    assert bad.exit_code == 2 and "--mlflow takes an MLflow tracking URI" in bad.output
    missing = runner.invoke(app, ["log-benchmark", str(tmp_path / "none.json"), "--mlflow",
                                  uri])
    assert missing.exit_code == 2 and "not found" in missing.output


def test_tune_and_quantize_runs_log_throughput_gate_and_files(store, tmp_path):
    import os

    from tests.export.test_quantize import tiny_sr_model

    model = tiny_sr_model(tmp_path / "m.onnx", seed=8)
    quantized = runner.invoke(app, ["quantize", str(model), "--source", "synthetic",
                                    "--mlflow", store])
    assert quantized.exit_code == 0, quantized.output
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"  # MLflow's usage telemetry off
    run = only_run(store, "quantize")
    variant = tmp_path / "m.int8.onnx"
    assert run.data.metrics["gate.passed"] == 1.0
    assert 0 <= run.data.metrics["gate.rmse_vs_fp32"] <= run.data.metrics["gate.max_rmse"]
    assert artifact_bytes(store, run.info.run_id, f"onnx/{variant.name}", tmp_path / "q") == \
        variant.read_bytes()

    tuned = runner.invoke(app, ["tune", str(model), "--tiles", "8,16", "--repeats", "1",
                                "--mlflow", store])
    assert tuned.exit_code == 0, tuned.output
    record = json.loads((tmp_path / "m.tune.json").read_text())
    run = only_run(store, "tune")
    assert run.data.params["tune.best_variant"] == record["best_variant"]
    for name, entry in record["variants"].items():
        assert run.data.metrics[f"tune.{name}.hr_mpix_s"] == pytest.approx(entry["hr_mpix_s"])
        assert f"tune.{name}.tile_16.ms" in run.data.metrics
    assert artifact_bytes(store, run.info.run_id, "tune/m.tune.json", tmp_path / "t") == \
        (tmp_path / "m.tune.json").read_bytes()


def test_failed_command_ends_its_run_failed_with_the_reason(store, tmp_path):
    from tests.export.test_quantize import tiny_sr_model

    model = tiny_sr_model(tmp_path / "m.onnx", seed=9)
    refused = runner.invoke(app, ["quantize", str(model), "--source", "synthetic",
                                  "--max-rmse", "0", "--mlflow", store])
    assert refused.exit_code == 1 and not (tmp_path / "m.int8.onnx").exists()
    run = only_run(store, "quantize")
    assert run.info.status == "FAILED"
    assert run.data.tags["sr_edge.error"].startswith("INT8 variant refused")


def test_to_trt_without_tensorrt_ends_its_run_failed(store, tmp_path):
    pytest.importorskip("torch")
    from sr_runtime.engines.gpu_backends import tensorrt_reason

    if tensorrt_reason() is None:
        pytest.skip("TensorRT is usable here: the build would run")
    from tests.export.test_quantize import tiny_sr_model

    model = tiny_sr_model(tmp_path / "m.onnx", seed=10)
    done = runner.invoke(app, ["to-trt", str(model), "--mlflow", store])
    assert done.exit_code == 1
    run = only_run(store, "to-trt")
    assert run.info.status == "FAILED" and run.data.tags["sr_edge.error"]
    assert not list(tmp_path.glob("*.engine"))
