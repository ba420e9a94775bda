"""The course notebooks: committed clean, and all four run headless with the smoke preset."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import nbformat
import numpy as np
import pytest

from seglib.course import runner as course

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(course.NOTEBOOKS_DIR.glob("*.ipynb"))
REPORTS = ("01_timing.png", "01_seed_vs_foreground.png", "01_policies.png", "01_confidence.png",
           "01_review_first.png", "02_trimap_gallery.png", "03_loss_curves.png",
           "04_side_by_side.png", "04_learning_curve.png", "04_confidence.png")


def test_the_four_course_notebooks_exist() -> None:
    assert [p.stem for p in NOTEBOOKS] == list(course.NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {i + 1} has outputs; clear them"
            assert cell.execution_count is None, f"{path.name} cell {i + 1} has a count"
        assert "papermill" not in cell.metadata and "execution" not in cell.metadata
    assert "widgets" not in nb.metadata, f"{path.name} stores widget state"
    assert "papermill" not in nb.metadata


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_structure(path: Path) -> None:
    raw = json.loads(path.read_text(encoding="utf-8"))
    ids = [c.get("id") for c in raw["cells"]]
    assert all(ids) and len(set(ids)) == len(ids), f"{path.name}: cells need unique ids"
    nb = nbformat.read(str(path), as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged 'parameters'"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    assert len(nb.cells[0].source.split("\n", 1)[1].strip()) > 200  # an intro paragraph
    params = course.declared_parameters(path)
    assert {"images_dir", "out_dir"} <= set(params)
    # every code cell after the parameters is introduced by a markdown sentence
    start = nb.cells.index(tagged[0])
    for i in range(start + 1, len(nb.cells)):
        if nb.cells[i].cell_type == "code":
            assert nb.cells[i - 1].cell_type == "markdown" or nb.cells[i - 2].cell_type == \
                "markdown", f"{path.name} cell {i + 1} has no explanation before it"


def test_runner_passes_only_declared_parameters() -> None:
    declared = {p.stem: course.declared_parameters(p) for p in NOTEBOOKS}
    params = course.build_parameters("smoke", out="/tmp/unused-out")
    assert all(any(k in d for d in declared.values()) for k in params), \
        "a preset parameter that no notebook declares"


def test_smoke_run_writes_notebooks_html_and_reports(smoke_run: course.CourseResult) -> None:
    out = smoke_run.out
    for name in course.NOTEBOOKS:
        assert (out / f"{name}.ipynb").is_file()
        html = (out / f"{name}.html").read_text(encoding="utf-8")
        assert "<html" in html and "data:image/png;base64" in html
    names = {p.name for p in smoke_run.reports}
    for r in REPORTS:
        assert r in names, f"missing report {r}"
        img = cv2.imread(str(out / "reports" / r))
        assert img is not None and img.shape[0] > 100 and img.std() > 5
    assert any(n.startswith("01_candidates_") for n in names)
    grid = cv2.imread(str(out / "reports" / "04_side_by_side.png"))
    assert grid.shape[1] > grid.shape[0]  # 7 columns, 3 photos
    assert (out / "labels" / "labels.csv").is_file()
    for name in ("10", "161", "207", "711", "711B"):
        assert (out / "models" / f"model_{name}" / "best.pt").is_file()


def _outputs(path: Path) -> tuple[str, int, list[str]]:
    nb = nbformat.read(str(path), as_version=4)
    text, images, errors = [], 0, []
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        for o in c.outputs:
            if o.output_type == "error":
                errors.append(o.ename)
            text.append(o.get("text", ""))
            data = o.get("data", {})
            text.append(data.get("text/plain", ""))
            images += "image/png" in data
    return "\n".join(text), images, errors


def test_smoke_notebooks_have_inline_figures_and_no_errors(smoke_run) -> None:
    for path in smoke_run.notebooks:
        text, images, errors = _outputs(path)
        assert not errors, f"{path.name}: {errors}"
        assert images >= 1, f"{path.name} shows no figure"
        nb = nbformat.read(str(path), as_version=4)
        injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert len(injected) == 1 and str(smoke_run.out) in injected[0].source
    text, _, _ = _outputs(smoke_run.out / "02_trimaps.ipynb")
    assert "identical on the tiny mask: True" in text
    assert "every label identical on every mask: True" in text
    assert "x faster" in text
    text, _, _ = _outputs(smoke_run.out / "01_sam_masks.ipynb")
    assert "before: object IoU of the labels 0." in text  # refine = True in smoke ...
    assert "refinement skipped (only" in text  # ... but 16 photos are too few to train on
    text, _, _ = _outputs(smoke_run.out / "03_train_10_161_207_711.ipynb")
    assert "the subsets shrink" in text  # the embedded sample has fewer than 811 photos


def test_smoke_run_without_checkpoint_says_so_in_one_line(smoke_run, monkeypatch) -> None:
    from seglib.backends.sam_weights import find_checkpoint

    if find_checkpoint() is not None:
        pytest.skip("a SAM checkpoint is installed on this machine")
    text, _, _ = _outputs(smoke_run.out / "01_sam_masks.ipynb")
    lines = [ln for ln in text.splitlines() if "checkpoint found" in ln]
    assert len(lines) == 1 and "python -m seglib weights" in lines[0] and "opencv" in lines[0]


def test_headless_run_builds_no_widget_and_says_so(smoke_run) -> None:
    for name in ("01_sam_masks", "04_compare"):
        path = smoke_run.out / f"{name}.ipynb"
        text, _, _ = _outputs(path)
        assert "Headless run:" in text, name
        nb = nbformat.read(str(path), as_version=4)
        boxes = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
                 if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
                 and o["data"].get("text/plain", "").startswith(("VBox", "HBox"))]
        assert not boxes, f"{name}: a widget was built in a headless run"


def test_photo_picker_redraws_the_grid_for_the_picked_photos(smoke_run, monkeypatch) -> None:
    from seglib.core import images as io
    from seglib.course import compare, widgets

    runs = compare.load_runs(smoke_run.out / "models", ["10", "711"], device="cpu")
    photos = io.list_images(ROOT / "data" / "sample" / "images")[:10]
    drawn: list[list[str]] = []
    real = compare.predictions

    def recording(runs_, sel, labels_dir):
        drawn.append([p.stem for p in sel])
        return real(runs_, sel, labels_dir)

    monkeypatch.setattr(compare, "predictions", recording)
    ui = widgets.photo_picker(runs, photos, photos[:2], smoke_run.out / "labels")
    picker, _grid = ui.children
    assert drawn == [[p.stem for p in photos[:2]]]  # drawn once when built
    picker.value = tuple(p.stem for p in photos)
    assert drawn[-1] == [p.stem for p in photos[:8]]  # at most 8 photos in the grid
    picker.value = ()
    assert len(drawn) == 2  # nothing picked: nothing drawn


def test_rerun_reuses_labels(smoke_run) -> None:
    first = course.notebook_paths()[0]
    res = course.run_course("smoke", out=smoke_run.out, notebooks=[first], html=False,
                            log=lambda s: None)
    text, _, _ = _outputs(res.notebooks[0])
    n = course.PRESETS["smoke"].params["label_limit"]
    assert f"(0 now, {n} already done" in text


def test_notebook_01_ends_by_exporting_the_labels_for_annotation_tools(smoke_run) -> None:
    from pycocotools.coco import COCO

    text, _, _ = _outputs(smoke_run.out / "01_sam_masks.ipynb")
    assert "exported 16 photos as coco" in text and "seglib import" in text
    coco = COCO(str(smoke_run.out / "export" / "coco" / "annotations" / "instances_default.json"))
    assert len(coco.dataset["images"]) == 16
    for ann in coco.dataset["annotations"]:
        im = coco.imgs[ann["image_id"]]
        trimap = cv2.imread(str(smoke_run.out / "labels" / f"{Path(im['file_name']).stem}.png"),
                            cv2.IMREAD_UNCHANGED)
        assert np.array_equal(coco.annToMask(ann) > 0, trimap == 1)


def _html_table(path: Path, cell_id: str) -> list[dict[str, str]]:
    """The rows of the viz.Table shown by cell ``cell_id`` of an executed notebook."""
    import re

    nb = nbformat.read(str(path), as_version=4)
    cell = next(c for c in nb.cells if c.get("id") == cell_id)
    html = next(o["data"]["text/html"] for o in cell.outputs if "text/html" in o.get("data", {}))
    head = re.findall(r"<th>(.*?)</th>", html)
    body = re.findall(r"<tr>((?:<td>.*?</td>)+)</tr>", html)
    return [dict(zip(head, re.findall(r"<td>(.*?)</td>", row), strict=True)) for row in body]


def test_summary_json_matches_the_notebooks_tables(smoke_run) -> None:
    doc = json.loads((smoke_run.out / "reports" / "summary.json").read_text())
    assert doc["iou_against"] in ("truth", "labels")
    curve = _html_table(smoke_run.out / "04_compare.ipynb", "c15")
    assert [r["model"] for r in curve] == [r["model"] for r in doc["learning_curve"]] == [
        "10", "161", "207", "711", "711B"]
    for shown, row in zip(curve, doc["learning_curve"], strict=True):
        assert int(shown["photos"]) == row["photos"] and int(shown["repeats"]) == row["repeats"]
        assert float(shown["object_iou"]) == pytest.approx(row["object_iou"], abs=5e-4)
        assert row["repeats"] == 1 and row["ci_low"] is None and row["ci_high"] is None
    by_run = {r["model"]: r["object_iou"] for r in doc["learning_curve"]}
    eff = doc["shuffle_effect"]
    assert eff["difference"] == pytest.approx(by_run["711"] - by_run["711B"])
    assert eff["ci_low"] is None and eff["ci_high"] is None  # one repeat in smoke: no interval
    text, _, _ = _outputs(smoke_run.out / "04_compare.ipynb")
    assert "from one pair of runs: no interval" in text
    stats = {r["measure"]: r["value"] for r in _html_table(smoke_run.out / "01_sam_masks.ipynb",
                                                           "c18")}
    lab = doc["labeling"]
    assert lab["backend"] == "opencv" and lab["photos"] == int(stats["photos"]) == 16
    for key in ("policy_agreement", "seed_background_rate", "mean_iou_seed",
                "mean_iou_foreground"):
        assert float(stats[key]) == pytest.approx(lab[key], abs=5e-4), key
    assert lab["seed_background_rate"] > 0.3 > lab["foreground_background_rate"]
    assert lab["mean_iou_foreground"] > lab["mean_iou_seed"] + 0.3
    # which labels to review first: the sentence notebook 04 prints, in numbers
    rev = lab["review"]
    assert rev["review"] == round(0.2 * 16) and rev["bad"] is not None
    assert (f"Review the first {rev['review']} photos of 16 in the reviewer (flagged, then the "
            f"least confident): they hold an estimated {rev['estimated_bad_there']:.0f} of the "
            f"{rev['estimated_bad']:.0f}") in text
    assert f"against the true masks: {rev['bad_there']} of the {rev['bad']} labels" in text
