"""Every output of a model that predicts a dew point with its air temperature is checked for
supersaturation (d2m above t2m), whatever units the model's variables are in."""

from __future__ import annotations

import numpy as np
import pytest

from sr_runtime.description import VariableSpec
from sr_runtime.errors import ModelOutputError
from sr_runtime.steps import check_dew_points
from sr_runtime.units import dew_point_pairs

WHEN = np.datetime64("2024-10-11T12:00", "ns")


def spec(name: str, units: str = "K") -> VariableSpec:
    return VariableSpec(name=name, units=units, lr_mean=280.0, lr_std=5.0, hr_mean=280.0,
                        hr_std=5.0)


def test_pairs_are_found_by_name_in_any_order():
    assert dew_point_pairs(["t2m", "d2m"]) == [(1, 0)]
    assert dew_point_pairs(["d2m", "u10", "t2m"]) == [(0, 2)]
    assert dew_point_pairs(["t2m"]) == [] and dew_point_pairs(["d2m"]) == []


def test_a_dew_point_at_or_below_the_temperature_passes():
    t2m = np.full((4, 4), 280.0, dtype=np.float32)
    check_dew_points(np.stack([t2m, t2m]), [spec("t2m"), spec("d2m")], WHEN)
    check_dew_points(np.stack([t2m, t2m - 3]), [spec("t2m"), spec("d2m")], WHEN)


def test_a_dew_point_above_the_temperature_is_refused_with_the_count_and_the_fix():
    t2m = np.full((4, 4), 280.0, dtype=np.float32)
    d2m = t2m - 2
    d2m[1, 2], d2m[3, 3] = 280.5, 281.25
    with pytest.raises(ModelOutputError, match=r"at 2024-10-11T12:00 has d2m above t2m in 2 of "
                                               r"16 cells \(by up to 1.25 K.*sr-export to-onnx"):
        check_dew_points(np.stack([t2m, d2m]), [spec("t2m"), spec("d2m")], WHEN)


def test_units_are_converted_before_comparing():
    t2m_c = np.full((2, 2), 7.0, dtype=np.float32)  # 280.15 K
    d2m_k = np.full((2, 2), 280.0, dtype=np.float32)
    check_dew_points(np.stack([t2m_c, d2m_k]), [spec("t2m", "degC"), spec("d2m")], WHEN)
    with pytest.raises(ModelOutputError, match="d2m above t2m in 4 of 4"):
        check_dew_points(np.stack([t2m_c - 1, d2m_k]), [spec("t2m", "degC"), spec("d2m")],
                         WHEN)
