"""Confusion matrix, IoU, and comparing folders of trimaps."""

from __future__ import annotations

import numpy as np
import pytest

from seglib.core.errors import SeglibError
from seglib.core.files import write_png_atomic
from seglib.masks.metrics import (
    Scores,
    confusion,
    evaluate_folders,
    format_table,
    iou_per_class,
    object_iou,
    summarize,
)


def test_confusion_and_iou_by_hand():
    truth = np.array([[0, 0, 1], [1, 1, 2]])
    pred = np.array([[0, 1, 1], [1, 2, 2]])
    cm = confusion(pred, truth)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 1], [0, 0, 1]]
    iou = iou_per_class(cm)
    # object: tp 1 / (1 + 1 + 0); background: 2 / (3 + 3 - 2); border: 1 / (2 + 1 - 1)
    assert iou.tolist() == pytest.approx([0.5, 0.5, 0.5])
    s = summarize(cm)
    assert s["pixel_accuracy"] == pytest.approx(4 / 6)
    assert s["mean_iou"] == pytest.approx(0.5) and s["iou_object"] == pytest.approx(0.5)


def test_absent_class_is_nan_and_left_out_of_mean():
    cm = confusion(np.array([0, 1, 1]), np.array([0, 1, 0]))
    iou = iou_per_class(cm)
    assert np.isnan(iou[2])
    s = summarize(cm)
    assert s["iou"]["border"] is None
    assert s["mean_iou"] == pytest.approx((0.5 + 0.5) / 2)


def test_object_iou_per_photo_and_scores():
    a = np.zeros((4, 4), int) + 1
    b = a.copy()
    a[:2, :2] = 0
    b[:2, :1] = 0
    assert object_iou(a, b) == pytest.approx(0.5)
    assert object_iou(np.ones((2, 2)), np.ones((2, 2))) == 1.0  # no object anywhere
    s = Scores()
    s.add(np.stack([a, a]), np.stack([b, a]))
    s.add_loss(0.5, 10)
    out = s.summary()
    assert out["n_photos"] == 2 and out["iou_object_per_photo"] == pytest.approx(0.75)
    assert out["val_loss"] == pytest.approx(0.5)


def test_evaluate_folders(tmp_path):
    truth, pred = tmp_path / "truth", tmp_path / "pred"
    t = np.full((8, 10), 2, np.uint8)
    t[2:5, 3:7] = 1
    for i in range(3):
        write_png_atomic(truth / f"a{i}.png", t)
    write_png_atomic(pred / "a0.png", t)
    p = t.copy()
    p[2:5, 3:5] = 2
    write_png_atomic(pred / "a1.png", p)
    write_png_atomic(pred / "a2.png", np.full((4, 4), 2, np.uint8))  # wrong size: skipped
    res = evaluate_folders(pred, truth)
    assert [r["stem"] for r in res.rows] == ["a0", "a1"]
    assert res.rows[0]["iou_object"] == 1.0 and res.rows[1]["iou_object"] == pytest.approx(0.5)
    assert res.skipped[0][0] == "a2" and "4×4" in res.skipped[0][1]
    assert res.summary["iou_object"] == pytest.approx(18 / 24)
    table = format_table(res.summary)
    assert "IoU object" in table and "0.7500" in table
    with pytest.raises(SeglibError, match="no predicted trimap"):
        evaluate_folders(pred, tmp_path / "pred" / "..")
