"""Clock inputs (sr_runtime.clock): local solar hour and season channels, and their description."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sr_runtime.clock import CLOCK_FEATURES, TROPICAL_YEAR_DAYS, clock_fields, with_clock
from sr_runtime.description import DESCRIPTION_KEY, ModelDescription, VariableSpec
from sr_runtime.errors import SrEdgeError, UsageError


def when(text: str) -> np.ndarray:
    return np.asarray([np.datetime64(text, "ns")])


def test_solar_hour_follows_longitude_and_wraps_any_convention():
    """12 UTC is local noon at 0 E, 18 h at 90 E, 6 h at 90 W; -180 and 180 (and 0 and 360)
    are the same meridian."""
    lon = np.array([0.0, 90.0, -90.0, -180.0, 180.0, 360.0])
    fields = clock_fields(when("2024-06-21T12:00"), lon, rows=3)
    assert fields.shape == (1, 4, 3, 6) and fields.dtype == np.float32
    sin, cos = fields[0, 0, 0], fields[0, 1, 0]
    expected_hours = np.array([12.0, 18.0, 6.0, 0.0, 0.0, 12.0])
    angle = 2 * np.pi * expected_hours / 24.0
    np.testing.assert_allclose(sin, np.sin(angle), atol=1e-6)
    np.testing.assert_allclose(cos, np.cos(angle), atol=1e-6)
    assert np.all(fields[0, :, 1] == fields[0, :, 0])  # the same on every row


def test_season_turns_once_per_tropical_year_and_is_the_same_on_every_cell():
    start = clock_fields(when("2000-01-01T00:00"), np.array([0.0, 10.0]), rows=2)[0]
    np.testing.assert_allclose(start[2:], [[[0.0, 0.0]] * 2, [[1.0, 1.0]] * 2], atol=1e-7)
    half = np.datetime64("2000-01-01T00:00", "ns") + np.timedelta64(
        int(TROPICAL_YEAR_DAYS / 2 * 86_400), "s")
    later = clock_fields(np.asarray([half]), np.array([0.0]), rows=1)[0]
    assert later[3, 0, 0] == pytest.approx(-1.0, abs=1e-6)
    a_year_on = clock_fields(when("2024-10-11T12:00"), np.array([5.0]), rows=1)[0]
    a_year_before = clock_fields(when("2023-10-12T06:11"), np.array([5.0]), rows=1)[0]
    np.testing.assert_allclose(a_year_on[2:], a_year_before[2:], atol=1e-3)  # a tropical year


def test_with_clock_appends_the_channels_after_the_variables():
    lr = np.full((2, 3, 4), 280.0, dtype=np.float32)
    lon = np.linspace(5.0, 8.0, 4)
    time = np.datetime64("2024-10-11T06:00", "ns")
    fed = with_clock(lr, time, lon, CLOCK_FEATURES)
    assert fed.shape == (6, 3, 4)
    np.testing.assert_array_equal(fed[:2], lr)
    np.testing.assert_array_equal(fed[2:], clock_fields(np.asarray([time]), lon, 3)[0])
    assert with_clock(lr, time, lon, ()) is lr  # a model without clock inputs: unchanged


def test_with_clock_refuses_a_missing_time_and_unknown_features():
    lr = np.zeros((1, 2, 2), dtype=np.float32)
    with pytest.raises(UsageError, match="give the field a time coordinate"):
        with_clock(lr, np.datetime64("NaT", "ns"), np.zeros(2), CLOCK_FEATURES)
    with pytest.raises(ValueError, match="unknown clock inputs"):
        with_clock(lr, np.datetime64("2024-10-11T00", "ns"), np.zeros(2), ("hour",))


def described(clock: tuple[str, ...] = ()) -> ModelDescription:
    return ModelDescription(scale=8, variables=(VariableSpec("t2m", "K", 283.0, 4.0, 283.0,
                                                             4.0),), clock_inputs=clock)


def test_description_records_clock_inputs_as_format_2_and_omits_them_otherwise():
    plain = json.loads(described().to_json())
    assert "clock_inputs" not in plain and plain["format_version"] == 1  # bytes as before
    with_clock_json = described(CLOCK_FEATURES).to_json()
    raw = json.loads(with_clock_json)
    assert raw["clock_inputs"] == list(CLOCK_FEATURES) and raw["format_version"] == 2
    again = ModelDescription.from_metadata({DESCRIPTION_KEY: with_clock_json})
    assert again.clock_inputs == CLOCK_FEATURES and again.input_channels == 5


@pytest.mark.parametrize("value", [["season_cos", "season_sin", "solar_hour_sin",
                                    "solar_hour_cos"], "solar_hour_sin", [1, 2]])
def test_description_with_clock_inputs_this_sr_edge_cannot_compute_is_refused(value):
    raw = json.loads(described().to_json())
    raw["clock_inputs"] = value
    with pytest.raises(SrEdgeError) as info:
        ModelDescription.from_metadata({DESCRIPTION_KEY: json.dumps(raw)}, "m.onnx")
    assert "clock_inputs" in str(info.value) and "\n" not in str(info.value)
