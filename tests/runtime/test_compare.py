"""The one comparator and gate rule every accuracy check uses (sr_runtime.compare)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sr_runtime.compare import GateRule, compare


@pytest.fixture
def fields() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    reference = (280 + 10 * rng.random((2, 1, 32, 32))).astype(np.float32)
    return reference, reference + rng.normal(0, 0.01, reference.shape).astype(np.float32)


def test_metrics_match_their_definitions(fields):
    reference, candidate = fields
    result = compare(reference, candidate)
    diff = candidate.astype(np.float64) - reference
    assert result.max_abs == pytest.approx(np.abs(diff).max())
    assert result.rmse == pytest.approx(np.sqrt(np.mean(diff ** 2)))
    span = float(reference.max() - reference.min())
    assert result.data_range == pytest.approx(span)
    assert result.psnr == pytest.approx(20 * np.log10(span / result.rmse))
    assert result.ssim is not None and 0.99 < result.ssim <= 1
    assert result.values == reference.size and result.nonfinite == 0


def test_sequences_aggregate_like_one_array(fields):
    reference, candidate = fields
    whole = compare(reference, candidate, with_ssim=False)
    pieces = compare(list(reference), list(candidate), with_ssim=False)
    assert pieces.rmse == pytest.approx(whole.rmse) and pieces.max_abs == whole.max_abs


def test_identical_fields_are_exact(fields):
    reference, _ = fields
    result = compare(reference, reference.copy())
    assert result.max_abs == 0 and result.rmse == 0 and math.isinf(result.psnr)


def test_non_finite_candidate_always_fails(fields):
    reference, candidate = fields
    candidate = candidate.copy()
    candidate[0, 0, 3, 4] = np.nan
    candidate[1, 0, 0, 0] = np.inf
    result = compare(reference, candidate)
    assert result.nonfinite == 2 and math.isinf(result.rmse)
    failures = GateRule().failures(result)
    assert failures == [f"2 of {reference.size} values are NaN or infinite"]


def test_rule_checks_each_limit_it_sets(fields):
    reference, candidate = fields
    result = compare(reference, candidate)
    assert GateRule(max_abs=1.0, rmse=1.0).passes(result)
    assert GateRule(rmse=result.rmse / 2).failures(result)[0].startswith("RMSE")
    assert GateRule(max_abs=result.max_abs / 2).failures(result)[0].startswith("max abs")


def test_psnr_drop_against_truth(fields):
    truth, reference = fields
    worse = truth + 0.05
    rule = GateRule(rmse=1.0, psnr_drop=0.1)
    vs_fp32 = compare(reference, worse)
    assert not rule.passes(vs_fp32, truth_reference=compare(truth, reference),
                           truth_candidate=compare(truth, worse))
    assert rule.passes(vs_fp32, truth_reference=compare(truth, reference),
                       truth_candidate=compare(truth, reference))


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shapes differ"):
        compare(np.zeros((1, 4, 4)), np.zeros((1, 4, 5)))
