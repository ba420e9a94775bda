"""Repeats and intervals of notebook 04, and reports/summary.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seglib.course import compare


def test_interval_is_students_t_over_the_repeats() -> None:
    mean, lo, hi = compare.interval([0.6, 0.7, 0.8])
    assert mean == pytest.approx(0.7)
    half = 4.303 * 0.1 / 3 ** 0.5  # t(0.975, 2) · s / sqrt(n), s = 0.1
    assert lo == pytest.approx(0.7 - half) and hi == pytest.approx(0.7 + half)
    assert compare.interval([0.5]) == (0.5, None, None)  # one run: no interval
    assert compare.interval([]) == (None, None, None)
    assert compare.interval([0.5, None, 0.7])[0] == pytest.approx(0.6)  # missing scores skipped
    m, lo11, hi11 = compare.interval([0.1 * i for i in range(11)])  # df 10
    assert hi11 - m == pytest.approx(2.228 * 0.3317 / 11 ** 0.5, rel=1e-3)


def _rows(scores: dict[str, float | None]) -> list[dict]:
    return [{"model": k, "photos": 5, "object IoU": v} for k, v in scores.items()]


def test_curve_rows_and_paired_shuffle_effect() -> None:
    groups = {"711": ["711", "711_r2", "711_r3"], "711B": ["711B", "711B_r2", "711B_r3"]}
    rows = _rows({"711": 0.80, "711_r2": 0.82, "711_r3": 0.84,
                  "711B": 0.70, "711B_r2": 0.73, "711B_r3": 0.72})
    curve = compare.curve_rows(rows, groups)
    assert [r["model"] for r in curve] == ["711", "711B"]
    assert curve[0]["repeats"] == 3 and curve[0]["object_iou"] == pytest.approx(0.82)
    assert curve[0]["ci_low"] < 0.82 < curve[0]["ci_high"]
    eff = compare.shuffle_effect(rows, groups)
    assert eff["pairs"] == 3 and eff["difference"] == pytest.approx(0.1033, abs=1e-4)
    assert eff["excludes_zero"] is True and eff["ci_low"] > 0  # differences 0.10, 0.09, 0.12
    noisy = _rows({"711": 0.80, "711_r2": 0.60, "711_r3": 0.84,
                   "711B": 0.70, "711B_r2": 0.73, "711B_r3": 0.72})
    assert compare.shuffle_effect(noisy, groups)["excludes_zero"] is False
    one = compare.shuffle_effect(_rows({"711": 0.8, "711B": 0.7}),
                                 {"711": ["711"], "711B": ["711B"]})
    assert one["difference"] == pytest.approx(0.1) and one["ci_low"] is None
    assert one["excludes_zero"] is None


def test_summary_json_writes_null_for_what_cannot_be_computed(tmp_path: Path) -> None:
    path = compare.write_summary_json(
        tmp_path / "reports" / "summary.json", {"backend": "opencv", "mean_iou_seed": None},
        [{"model": "10", "object_iou": float("nan"), "ci_low": None}],
        {"difference": 0.1, "ci_low": None}, "labels")
    doc = json.loads(path.read_text())
    assert doc["iou_against"] == "labels" and doc["labeling"]["mean_iou_seed"] is None
    assert doc["learning_curve"][0]["object_iou"] is None  # NaN is not JSON
    assert doc["shuffle_effect"] == {"difference": 0.1, "ci_low": None}


def test_an_iou_interval_stays_within_0_and_1() -> None:
    """Three spread repeats near 1 (model 161 of the demo: 0.75, 0.93, 0.98) gave an upper
    bound of 1.033 before; an IoU cannot exceed 1, nor a difference of two leave [-1, 1]."""
    groups = {"161": ["161", "161_r2", "161_r3"], "711": ["711", "711_r2"],
              "711B": ["711B", "711B_r2"]}
    rows = _rows({"161": 0.75, "161_r2": 0.93, "161_r3": 0.98, "711": 0.99, "711_r2": 0.05,
                  "711B": 0.02, "711B_r2": 0.98})
    assert compare.interval([0.75, 0.93, 0.98])[2] > 1  # the plain t-interval
    curve = compare.curve_rows(rows, groups)
    assert curve[0]["ci_high"] == 1.0 and curve[0]["ci_low"] == pytest.approx(
        compare.interval([0.75, 0.93, 0.98])[1])
    assert curve[1]["ci_low"] == 0.0
    eff = compare.shuffle_effect(rows, groups)
    assert eff["ci_low"] == -1.0 and eff["ci_high"] == 1.0
