"""Notebook 01's fix panel without a display: prompts on the photo shown (points, a box, undo,
clear), the mask they draw, Keep (a ``prompted`` label that a re-pick keeps), the picture and
the conversion of a pointer event's position to the photo's pixels. The browser test
(tests/test_browser.py) clicks the same panel in a real JupyterLab."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from seglib.core.errors import SeglibError
from seglib.masks.draw import BOX_COLOR, NEGATIVE_COLOR, POSITIVE_COLOR, prompts_picture

OBJ = (slice(12, 36), slice(14, 34))  # rows, columns of the object in the 48x48 photos


def _labeled_folder(tmp_path: Path) -> tuple[Path, Path]:
    """Three 48x48 photos (a dark block on a light textured floor) labeled by a fake proposer
    whose pick is wrong: its candidates are the left half of the photo and the right half."""
    from seglib.core.files import write_png_atomic
    from seglib.labels.labeling import label_folder
    from seglib.masks.candidates import Candidates

    rng = np.random.default_rng(0)
    images = tmp_path / "images"
    for i in range(3):
        img = rng.integers(190, 230, (48, 48, 3)).astype(np.uint8)
        img[OBJ] = rng.integers(20, 50, (24, 20, 3)).astype(np.uint8) + 10 * i
        write_png_atomic(images / f"p{i}.png", img)
    left = np.zeros((48, 48), bool)
    left[:, :24] = True

    def proposer(image: np.ndarray) -> Candidates:
        return Candidates(np.stack([left, ~left]), [0.9, 0.7], [0.9, 0.9], ["a", "b"], "fake")

    label_folder(images, tmp_path / "labels", proposer, backend="fake", mode="test")
    return images, tmp_path / "labels"


def _truth() -> np.ndarray:
    m = np.zeros((48, 48), bool)
    m[OBJ] = True
    return m


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _rows(labels: Path, name: str = "labels.csv") -> dict[str, dict[str, str]]:
    with open(labels / name, newline="", encoding="utf-8") as f:
        return {r["stem"]: r for r in csv.DictReader(f)}


def test_prompts_picture_enlarges_the_photo_and_draws_the_prompts() -> None:
    photo = np.full((40, 60, 3), 128, np.uint8)
    mask = np.zeros((40, 60), bool)
    pic = prompts_picture(photo, mask, 2.0, positive=[(10, 10)], negative=[(50, 30)],
                          box=(5, 5, 40, 35))
    assert pic.shape == (80, 120, 3) and pic.dtype == np.uint8
    assert tuple(pic[20, 20]) == POSITIVE_COLOR  # (x 10, y 10) at 2x: the dot's centre
    assert tuple(pic[60, 100]) == NEGATIVE_COLOR
    assert tuple(pic[40, 10]) == BOX_COLOR  # the box's left side, x 5 at 2x
    assert tuple(pic[75, 60]) == (128, 128, 128)  # outside everything: the photo
    small = prompts_picture(np.zeros((400, 600, 3), np.uint8), None, 0.5)
    assert small.shape == (200, 300, 3)


def test_event_to_photo_divides_by_the_display_scale_and_stays_in_the_photo() -> None:
    from seglib.course.widgets import event_to_photo, fix_scale

    assert fix_scale((240, 240, 3)) == 2.0  # a 240 px photo shows at 2x
    assert fix_scale((480, 960)) == 0.5
    shape = (240, 320)
    # ipyevents' dataX/dataY: the PNG's pixels; pixel centres map to pixel centres, so the
    # two screen pixels 100 and 101 over photo pixel 50 give 49.75 and 50.25
    assert event_to_photo({"dataX": 101, "dataY": 41}, 2.0, shape) == (50.25, 20.25)
    assert event_to_photo({"dataX": 100, "dataY": 40}, 2.0, shape) == (49.75, 19.75)
    assert event_to_photo({"dataX": 0, "dataY": 0}, 2.0, shape) == (0.0, 0.0)  # kept inside
    # without them, the position on the element (shown at the PNG's size)
    assert event_to_photo({"relativeX": 201, "relativeY": 11}, 2.0, shape) == (100.25, 5.25)
    assert event_to_photo({"offsetX": 9, "offsetY": 19}, 0.5, shape) == (18.5, 38.5)
    assert event_to_photo({"dataX": 5000, "dataY": -3}, 2.0, shape) == (319.0, 0.0)
    with pytest.raises(SeglibError, match="without a position"):
        event_to_photo({"type": "mouseup"}, 2.0, shape)


def test_prompts_add_undo_clear_and_preview(tmp_path: Path) -> None:
    from seglib.course.widgets import Reviewer

    images, labels = _labeled_folder(tmp_path)
    rv = Reviewer(labels, images)
    assert rv.prompts.is_empty() and rv.preview() is None
    first = rv.stem
    rv.add_box(36, 38, 11, 9)  # any two opposite corners
    assert rv.prompts.box == (11.0, 9.0, 36.0, 38.0)
    assert _iou(rv.preview(), _truth()) > 0.85
    rv.add_point(24, 24)
    rv.add_point(2, 2, positive=False)
    assert rv.prompts.positive == ((24.0, 24.0),) and rv.prompts.negative == ((2.0, 2.0),)
    assert rv.preview().shape == (48, 48)
    rv.undo()
    assert rv.prompts.negative == () and rv.prompts.positive == ((24.0, 24.0),)
    rv.clear()
    assert rv.prompts.is_empty() and rv.preview() is None
    rv.undo()  # the clear is taken back
    assert rv.prompts.box is not None and rv.prompts.positive
    rv.index += 1  # another photo: its own prompts
    assert rv.stem != first and rv.prompts.is_empty()
    rv.add_point(5, 5, positive=False)  # only a negative point: no mask, a note says why
    view = rv.fix_picture()
    assert "only negative" in view.note and view.picture.shape == (480, 480, 3)
    assert rv.undo().is_empty() and rv.undo().is_empty()  # nothing more to undo
    with pytest.raises(SeglibError, match="no prompt yet"):
        rv.keep()


def test_keep_writes_a_prompted_label_that_a_repick_keeps(tmp_path: Path) -> None:
    from seglib.course.widgets import Reviewer
    from seglib.masks.trimap import OBJECT, load_trimap

    images, labels = _labeled_folder(tmp_path)
    rv = Reviewer(labels, images)
    stem = rv.stem
    assert _iou(load_trimap(labels / f"{stem}.png") == OBJECT, _truth()) < 0.5  # wrong pick
    rv.add_box(11, 9, 36, 38)
    rv.add_point(24, 24)
    shown = rv.preview()
    result = rv.keep()
    assert result.record is not None and result.record.source == "prompted"
    written = load_trimap(labels / f"{stem}.png") == OBJECT
    assert np.array_equal(written, shown) and _iou(written, _truth()) > 0.85
    row = _rows(labels)[stem]
    assert row["source"] == "prompted" and row["flagged"] == "0"
    assert '"box":[11.0,9.0,36.0,38.0]' in _rows(labels, "prompts.csv")[stem]["prompts"]
    assert rv.stem == rv.stems[1] and rv.prompts.is_empty()  # the next photo comes up
    assert rv.rows[stem].source == "prompted"
    rv.repick()  # the reviewer's re-pick keeps the person's label
    assert _rows(labels)[stem]["source"] == "prompted"
    assert np.array_equal(load_trimap(labels / f"{stem}.png") == OBJECT, written)


def test_the_fix_panel_builds_headless_and_turns_pointer_events_into_prompts(
        tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    from seglib.course.widgets import Reviewer

    images, labels = _labeled_folder(tmp_path)
    rv = Reviewer(labels, images)
    ui = rv.widget()  # no display, no kernel: it builds and waits on nothing
    assert ui.children and rv._ui["fix_image"].value[:4] == b"\x89PNG"
    assert rv._ui["keep"].disabled and rv._ui["fix_scale"] == 10.0  # 48 px at 480 px
    stem = rv.stem

    def press(kind: str, x: float, y: float, **keys: bool) -> None:  # photo pixel -> screen
        rv._pointer({"type": kind, "dataX": x * 10 + 4.5, "dataY": y * 10 + 4.5, **keys})

    press("mousedown", 11, 9)
    press("mouseup", 36, 38)  # a drag: the box
    assert rv.prompts.box == (11.0, 9.0, 36.0, 38.0) and not rv._ui["keep"].disabled
    press("mousedown", 24, 24)
    press("mouseup", 24.2, 24)  # a click (moved less than a few screen pixels): a point
    press("mousedown", 3, 3)
    press("mouseup", 3, 3, shiftKey=True)  # Shift: not the object
    assert rv.prompts.positive == ((24.2, 24.0),) and rv.prompts.negative == ((3.0, 3.0),)
    rv._ui["mode"].value = "negative"
    press("mousedown", 44, 44)
    press("mouseup", 44, 44)
    assert rv.prompts.negative[-1] == (44.0, 44.0)
    press("mouseup", 40, 40)  # a release without a press (it began outside): nothing
    assert len(rv.prompts.negative) == 2
    rv._ui["undo"].click()
    assert len(rv.prompts.negative) == 1
    before = rv._ui["fix_image"].value
    rv._ui["keep"].click()
    assert _rows(labels)[stem]["source"] == "prompted" and rv.stem != stem
    assert f"{stem}: source prompted" in rv._ui["status"].value
    assert rv._ui["fix_image"].value != before and rv._ui["keep"].disabled
    rv._ui["clear"].click()  # nothing to clear: no error
    plt.close("all")


def test_keep_on_a_photo_with_an_override_stays_after_the_repick(tmp_path: Path) -> None:
    from seglib.course.widgets import Reviewer

    images, labels = _labeled_folder(tmp_path)
    rv = Reviewer(labels, images)
    stem = rv.stem
    rv.choose(stem, "1")  # a candidate chosen first, then the label drawn by hand
    rv.add_box(11, 9, 36, 38)
    rv.keep()
    rv.repick()
    assert _rows(labels)[stem]["source"] == "prompted"
