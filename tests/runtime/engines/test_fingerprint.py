"""Engine fingerprints, cache keys and sidecars: pure Python, no GPU."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from sr_runtime.description import ModelDescription, VariableSpec
from sr_runtime.engines.tensorrt.cache import EngineCache, default_cache_dir
from sr_runtime.engines.tensorrt.fingerprint import (
    BuildEnvironment,
    EngineFingerprint,
    EngineMismatchError,
    EngineRecord,
    check_compatible,
    read_checked_plan,
    read_record,
    sha256_bytes,
    sidecar_path,
)
from sr_runtime.engines.tensorrt.profiles import ShapeProfile, runtime_profile
from sr_runtime.errors import EngineUnavailableError, UsageError
from sr_runtime.paths import write_atomically

H100 = BuildEnvironment("10.11.0.33", "NVIDIA H100 80GB HBM3", "9.0")
PROFILE = ShapeProfile((1, 1, 128, 128), (1, 1, 128, 128), (1, 1, 128, 128))
DESCRIPTION = ModelDescription(scale=8, variables=(VariableSpec("t2m", "K", 283.2, 4.3,
                                                                283.2, 4.2),))


def fingerprint(**changes: object) -> EngineFingerprint:
    base = EngineFingerprint.create("a" * 64, H100, PROFILE, "fp16:trt10-builder-flag")
    return dataclasses.replace(base, **changes)


def test_key_is_stable_and_round_trips():
    fp = fingerprint()
    assert fp.key() == fingerprint().key()
    assert len(fp.key()) == 32
    again = EngineFingerprint.from_dict(json.loads(json.dumps(fp.to_dict())))
    assert again == fp and again.key() == fp.key()


@pytest.mark.parametrize("field, value", [
    ("onnx_sha256", "b" * 64),
    ("tensorrt_version", "10.11.0.34"),
    ("gpu_name", "NVIDIA H200"),
    ("compute_capability", "8.9"),
    ("profile", ShapeProfile((1, 1, 64, 64), (1, 1, 128, 128), (1, 1, 128, 128))),
    ("profile", ShapeProfile((2, 1, 128, 128), (2, 1, 128, 128), (2, 1, 128, 128))),
    ("precision", "fp16:trt11-strongly-typed"),
    ("input_name", "x"),
    ("format_version", 2),
])
def test_changing_any_field_changes_the_key(field, value):
    assert fingerprint(**{field: value}).key() != fingerprint().key()


def test_mismatches_and_message():
    fp = fingerprint()
    assert fp.mismatches(H100) == []
    elsewhere = BuildEnvironment("10.8.0.43", "NVIDIA A100-SXM4-80GB", "8.0")
    found = fp.mismatches(elsewhere)
    assert [(m.field, m.fatal) for m in found] == [("TensorRT version", True),
                                                   ("compute capability", True),
                                                   ("GPU", False)]
    record = EngineRecord(fp, "0" * 64, 10, DESCRIPTION, onnx_path="model.onnx")
    with pytest.raises(EngineMismatchError) as err:
        check_compatible(Path("/models/model.engine"), record, elsewhere)
    message = str(err.value)
    assert isinstance(err.value, EngineUnavailableError)
    assert "TensorRT 10.11.0.33 on NVIDIA H100 80GB HBM3 (compute capability 9.0)" in message
    assert "TensorRT 10.8.0.43 on NVIDIA A100-SXM4-80GB (compute capability 8.0)" in message
    assert "sr-export to-trt /models/model.onnx --out /models/model.engine --overwrite" in message
    assert "\n" not in message


def test_same_family_other_gpu_is_not_fatal():
    here = dataclasses.replace(H100, gpu_name="NVIDIA H100 PCIe")
    record = EngineRecord(fingerprint(), "0" * 64, 10, DESCRIPTION)
    found = check_compatible(Path("m.engine"), record, here)
    assert [m.field for m in found] == ["GPU"] and not found[0].fatal


def test_profile_validation():
    with pytest.raises(UsageError, match="min <= opt <= max"):
        ShapeProfile((1, 1, 256, 256), (1, 1, 128, 128), (1, 1, 512, 512))
    with pytest.raises(UsageError, match="same channel count"):
        ShapeProfile((1, 1, 8, 8), (1, 2, 8, 8), (1, 2, 8, 8))
    with pytest.raises(UsageError, match="four positive"):
        ShapeProfile((1, 1, 0, 8), (1, 1, 8, 8), (1, 1, 8, 8))
    dynamic = runtime_profile(1)
    assert not dynamic.is_static and dynamic.contains((1, 1, 40, 200))
    assert not dynamic.contains((1, 1, 300, 40))
    assert runtime_profile(2, (64, 96), 4) == ShapeProfile(*[(4, 2, 64, 96)] * 3)


def test_sidecar_round_trip_and_plan_checksum(tmp_path):
    plan = b"\x00fake plan bytes"
    engine = tmp_path / "model.engine"
    write_atomically(plan, engine)
    record = EngineRecord(fingerprint(), sha256_bytes(plan), len(plan), DESCRIPTION,
                          onnx_path="model.onnx", accuracy={"rmse": 0.001}, tool="sr-edge test")
    write_atomically(record.to_json().encode(), sidecar_path(engine))
    assert sidecar_path(engine).name == "model.engine.json"
    loaded = read_record(engine)
    assert loaded == record
    assert loaded.source_onnx(engine) == tmp_path / "model.onnx"
    assert read_checked_plan(engine, loaded) == plan
    assert oct(engine.stat().st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode

    engine.write_bytes(b"another plan")
    with pytest.raises(EngineMismatchError, match="checksum differs"):
        read_checked_plan(engine, loaded)


def test_missing_or_broken_sidecar_is_explained(tmp_path):
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"plan")
    with pytest.raises(EngineMismatchError, match="has no fingerprint .*model.engine.json"):
        read_record(engine)
    sidecar_path(engine).write_text("{not json")
    with pytest.raises(EngineMismatchError, match="not a valid sr-edge engine fingerprint"):
        read_record(engine)
    sidecar_path(engine).write_text(json.dumps({"sr_edge_engine": 99}))
    with pytest.raises(EngineMismatchError, match="upgrade sr-edge"):
        read_record(engine)
    with pytest.raises(UsageError, match="engine not found"):
        read_record(tmp_path / "missing.engine")


def test_cache_lookup_by_fingerprint(tmp_path):
    cache = EngineCache(tmp_path / "cache")
    cache.ensure()
    fp = fingerprint()
    assert cache.lookup(fp) is None
    path = cache.engine_path(fp)
    plan = b"plan"
    write_atomically(plan, path)
    write_atomically(EngineRecord(fp, sha256_bytes(plan), 4, DESCRIPTION).to_json().encode(),
                     sidecar_path(path))
    assert cache.lookup(fp) == path
    assert cache.lookup(fingerprint(precision="fp32")) is None
    timing = cache.timing_cache_path(H100)
    assert timing.parent == tmp_path / "cache" / "timing"
    assert "10.11.0.33" in timing.name and "sm90" in timing.name


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("SR_EDGE_ENGINE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "sr-edge" / "engines"
    monkeypatch.setenv("SR_EDGE_ENGINE_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"

