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
