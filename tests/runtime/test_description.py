"""The model description carried in ONNX metadata (sr_runtime.description)."""

from __future__ import annotations

import json

import pytest

from sr_runtime.description import DESCRIPTION_KEY, ModelDescription, VariableSpec
from sr_runtime.errors import SrEdgeError


def described() -> ModelDescription:
    return ModelDescription(scale=8, variables=(VariableSpec("t2m", "K", 283.2, 4.3, 283.2,
                                                             4.2),), halo_lr=12)


def test_round_trip_through_metadata_is_exact():
    original = described()
    metadata = {DESCRIPTION_KEY: original.to_json()}
    again = ModelDescription.from_metadata(metadata, "model.onnx")
    assert again == original
    assert json.loads(metadata[DESCRIPTION_KEY])["scale"] == 8


@pytest.mark.parametrize("broken", ["{not json", json.dumps({"variables": []}),
                                    json.dumps({"scale": 0, "variables": []})])
def test_broken_metadata_is_one_clear_error(broken):
    with pytest.raises(SrEdgeError) as info:
        ModelDescription.from_metadata({DESCRIPTION_KEY: broken}, "model.onnx")
    assert "model.onnx" in str(info.value) and "\n" not in str(info.value)


def test_missing_description_says_how_to_get_one():
    with pytest.raises(SrEdgeError, match="sr-export"):
        ModelDescription.from_metadata({}, "plain.onnx")


def test_provenance_round_trips_and_is_absent_when_empty():
    """Where an MLflow-fetched checkpoint came from travels in the description; models without
    it (all older ones) read as before and an empty one is not written at all."""
    plain = described()
    assert "provenance" not in json.loads(plain.to_json())  # older readers see no new key
    tracked = plain.with_updates(provenance={"source": "models:/t2m/3",
                                             "mlflow_run_id": "abc123"})
    props = tracked.to_metadata()
    assert props["provenance.source"] == "models:/t2m/3"
    again = ModelDescription.from_metadata(props, "model.onnx")
    assert again.provenance == {"source": "models:/t2m/3", "mlflow_run_id": "abc123"}
    old = json.loads(plain.to_json())
    assert ModelDescription.from_json(json.dumps(old)).provenance == {}


def test_provenance_that_is_not_text_is_refused():
    raw = json.loads(described().to_json())
    raw["provenance"] = {"mlflow_model_version": 3}
    with pytest.raises(SrEdgeError, match="'provenance' must be an object of strings"):
        ModelDescription.from_json(json.dumps(raw), "model.onnx")
