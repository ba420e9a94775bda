"""Issue 25: a hostile tester's course probes (smoke preset, the sample photos).

Each test here failed before its fix: notebook 01's flagged-photo sheet with the flagged
photos deleted; the README loop with the COCO file corrected in OUT/export/coco; the line
"N photos new/gone" missing after a run that did not finish; a partial notebook of a killed
run kept as a student's; ``-p truth_dir`` not a folder; the device checked only at notebook
03; a user's own picture under a figure's name replaced.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
from conftest import ROOT, SAMPLE
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from seglib.core.errors import SeglibError
from seglib.course import runner as course


def _photos(folder: Path, numbers) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in numbers:
        src = SAMPLE / "images" / f"sample_{i:03d}.jpg"
        shutil.copyfile(src, folder / src.name)
    return folder


def _notebook(path: Path, code: str) -> Path:
    nb = new_notebook()
    nb.cells = [new_markdown_cell("# test"),
                new_code_cell("out_dir = 'x'\nimages_dir = 'y'", metadata={"tags": ["parameters"]}),
                new_code_cell("import pathlib, time\nprint(out_dir)"),
                new_code_cell(code)]
    nbformat.write(nb, str(path))
    return path


def _labeled(tmp_path: Path) -> tuple[Path, Path]:
    """Four photos labeled by a fake proposer, the last two flagged."""
    from seglib.core.files import write_png_atomic
    from seglib.labels.labeling import label_folder
    from seglib.labels.store import LabelStore
    from seglib.masks.candidates import Candidates

    images = tmp_path / "images"
    obj = np.zeros((40, 40), bool)
    obj[10:30, 12:28] = True
    for i in range(4):
        img = np.full((40, 40, 3), 200, np.uint8)
        img[obj] = (30 * i, 60, 90)
        write_png_atomic(images / f"p{i}.png", img)

    def proposer(image: np.ndarray) -> Candidates:
        return Candidates(np.stack([obj, ~obj]), [0.80, 0.95], [0.9, 0.9], ["a", "b"], "fake")

    labels = tmp_path / "labels"
    label_folder(images, labels, proposer, backend="fake", mode="test")
    _flag(labels, ["p2", "p3"])
    assert sorted(r.stem for r in LabelStore(labels).ok_records() if r.flagged) == ["p2", "p3"]
    return images, labels


def _flag(labels: Path, stems: list[str]) -> None:
    path = labels / "labels.csv"
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["flagged"] = "1" if row["stem"] in stems else "0"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


# -- 1. the flagged-photo sheet with the flagged photos deleted ---------------------------------
def test_review_sheet_shows_only_labels_whose_photo_is_there(tmp_path: Path) -> None:
    from seglib.labels import review

    images, labels = _labeled(tmp_path)
    (images / "p2.png").unlink()
    pictures, captions = review.review_sheet(labels, images, 1, flagged_only=True)
    assert len(pictures) == 1 and captions[0].startswith("p3 ")  # was: p2 took the slot
    (images / "p3.png").unlink()
    assert review.review_sheet(labels, images, 4, flagged_only=True) == ([], [])
    pictures, captions = review.review_sheet(labels, images, 4)
    assert sorted(c.split(" ")[0] for c in captions) == ["p0", "p1"]


def _nb01_cell(marker: str) -> str:
    nb = json.loads((ROOT / "notebooks" / "01_sam_masks.ipynb").read_text(encoding="utf-8"))
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    return next(c for c in cells if marker in c)


def test_notebook_01_flagged_sheet_with_the_flagged_photos_gone(tmp_path: Path,
                                                                capsys) -> None:
    """Notebook 01's flagged-photo cell, run as it is in the notebook."""
    from seglib.course import figures as viz
    from seglib.labels import review, store

    images, labels = _labeled(tmp_path)
    for stem in ("p2", "p3"):
        (images / f"{stem}.png").unlink()
    from seglib.core import images as io

    photos = io.list_images(images)
    ns = {"store": store, "review": review, "viz": viz, "labels_dir": labels,
          "images_dir": images, "review_photos": 12, "policy": "foreground",
          "reports": tmp_path / "reports", "photos": photos,
          "rows": store.LabelStore(labels).records(),
          "labeled": photos}
    (tmp_path / "reports").mkdir()
    exec(_nb01_cell("flagged_only=True"), ns)  # was: ValueError from captioned_grid
    out = capsys.readouterr().out
    assert "0 of 2 photos flagged" in out and "no flagged photo" in out
    assert not (tmp_path / "reports" / "01_flagged.png").exists()


# -- 2. the README loop with the COCO file corrected in place ------------------------------------
def test_course_export_keeps_a_corrected_coco_file_aside(tmp_path: Path, capsys) -> None:
    from seglib.formats.export import export_labels

    images, labels = _labeled(tmp_path)
    out = tmp_path / "export" / "coco"
    export_labels(labels, out, "coco", photos=images)
    ann = out / "annotations" / "instances_default.json"
    doc = json.loads(ann.read_text())
    doc["annotations"] = doc["annotations"][:1]
    corrected = json.dumps(doc).encode()
    ann.write_bytes(corrected)
    with pytest.raises(SeglibError, match="changed since seglib exported it"):
        export_labels(labels, out, "coco", photos=images)  # the export command still refuses
    capsys.readouterr()
    summary = export_labels(labels, out, "coco", photos=images, keep_edited=True)
    kept = out / "annotations" / "instances_default.edited-1.json"
    assert kept.read_bytes() == corrected  # never deleted
    assert len(json.loads(ann.read_text())["annotations"]) == 4 and summary.target
    said = [ln for ln in capsys.readouterr().out.splitlines() if "edited-1" in ln]
    assert len(said) == 1 and "instances_default.json" in said[0]
    export_labels(labels, out, "coco", photos=images, keep_edited=True)  # nothing to keep
    assert not (out / "annotations" / "instances_default.edited-2.json").exists()
    assert kept.read_bytes() == corrected


def test_notebook_01_exports_with_keep_edited() -> None:
    assert "keep_edited=True" in _nb01_cell("export_labels(")


# -- 3. the line "N photos new/gone" after a run that did not finish -----------------------------
PATTERNS = {  # first photos -> (removed, added)
    "2 removed, 2 added": (range(12), [0, 1], [20, 21]),
    "1 removed, 1 added": (range(12), [2], [22]),
    "put back, 2 new": (range(12), [], [3, 23, 24]),
}


@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_course_rerun_says_which_photos_changed_until_a_run_finishes(tmp_path: Path,
                                                                     pattern: str) -> None:
    first, removed, added = PATTERNS[pattern]
    images = _photos(tmp_path / "photos", [i for i in first if i != 3])
    if pattern == "put back, 2 new":  # photo 3 was there, taken out, and a run finished
        shutil.copyfile(SAMPLE / "images" / "sample_003.jpg", images / "sample_003.jpg")
    ok = _notebook(tmp_path / "01_ok.ipynb", "print('ok')")
    bad = _notebook(tmp_path / "01_bad.ipynb", "raise ValueError('boom')")
    out = tmp_path / "out"
    run = dict(out=out, html=False)
    course.run_course("smoke", images=images, notebooks=[ok], log=lambda s: None, **run)
    if pattern == "put back, 2 new":
        (images / "sample_003.jpg").unlink()
        course.run_course("smoke", images=images, notebooks=[ok], log=lambda s: None, **run)
    for i in removed:
        (images / f"sample_{i:03d}.jpg").unlink()
    _photos(images, added)
    for nb, fails in ((bad, True), (bad, True), (ok, False)):
        said: list[str] = []
        if fails:
            with pytest.raises(SeglibError, match="boom"):
                course.run_course("smoke", images=images, notebooks=[nb], log=said.append, **run)
        else:
            course.run_course("smoke", images=images, notebooks=[nb], log=said.append, **run)
        line = [s for s in said if "since the last run" in s]
        assert len(line) == 1, said  # was: missing after the first failed run
        for i in added:
            assert f"sample_{i:03d}" in line[0]
        for i in removed:
            assert f"sample_{i:03d}" in line[0]
    said = []
    course.run_course("smoke", images=images, notebooks=[ok], log=said.append, **run)
    assert not [s for s in said if "since the last run" in s]  # that run finished


# -- 4. a notebook left by a killed or failed run is the kit's ----------------------------------
def test_notebook_of_a_killed_run_is_replaced_not_kept(tmp_path: Path) -> None:
    images = _photos(tmp_path / "photos", range(3))
    out = tmp_path / "out"
    slow = _notebook(tmp_path / "01_slow.ipynb",
                     "pathlib.Path(out_dir, 'started').write_text('x')\ntime.sleep(120)")
    code = ("import sys; from seglib.course import runner as r; "
            f"r.run_course('smoke', images={str(images)!r}, out={str(out)!r}, "
            f"notebooks=[{str(slow)!r}], html=False)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (out / "started").exists() and time.time() < deadline:
            time.sleep(0.5)
        assert (out / "started").exists()
        time.sleep(1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the run and its kernel, as a killed terminal
        proc.wait()
    assert (out / "01_slow.ipynb").is_file()  # half-written by the killed run
    (out / ".seglib.lock").unlink(missing_ok=True)
    ok = _notebook(tmp_path / "01_slow.ipynb", "print('ok')")
    said: list[str] = []
    course.run_course("smoke", images=images, out=out, notebooks=[ok], html=False,
                      log=said.append)
    assert not [s for s in said if "changed since the course wrote it" in s], said
    assert not list(out.glob("*.edited-*"))


def test_notebook_of_a_failed_run_is_replaced_and_a_students_is_kept(tmp_path: Path) -> None:
    images = _photos(tmp_path / "photos", range(3))
    out = tmp_path / "out"
    nb = _notebook(tmp_path / "01_x.ipynb", "raise ValueError('boom')")
    for _ in range(2):
        said: list[str] = []
        with pytest.raises(SeglibError, match="boom"):
            course.run_course("smoke", images=images, out=out, notebooks=[nb], html=False,
                              log=said.append)
        assert not [s for s in said if "changed since the course wrote it" in s], said
    assert not list(out.glob("*.edited-*"))
    (out / "01_x.ipynb").write_text((out / "01_x.ipynb").read_text() + " ")  # a student's
    with pytest.raises(SeglibError, match="boom"):
        course.run_course("smoke", images=images, out=out, notebooks=[nb], html=False,
                          log=lambda s: None)
    assert (out / "01_x.edited-1.ipynb").is_file()


# -- 5. truth_dir given but not a folder ---------------------------------------------------
def test_truth_dir_that_is_not_a_folder_is_one_line_before_notebook_01(tmp_path: Path) -> None:
    images = _photos(tmp_path / "photos", range(3))
    with pytest.raises(SeglibError) as err:
        course.build_parameters("smoke", images, out=tmp_path / "out",
                                overrides={"truth_dir": str(tmp_path / "nonexistent")})
    msg = str(err.value)
    assert "\n" not in msg and "truth_dir" in msg and "not a folder" in msg
    params = course.build_parameters("smoke", images, out=tmp_path / "out",
                                     overrides={"truth_dir": ""})  # "" means none
    assert params["truth_dir"] == ""


# -- 6. the device is checked before notebook 01 ------------------------------------------
def test_device_is_checked_before_notebook_01(tmp_path: Path, monkeypatch) -> None:
    import torch

    images = _photos(tmp_path / "photos", range(3))
    monkeypatch.setenv("SEGLIB_DEVICE", "bogus")
    with pytest.raises(SeglibError, match="unknown device 'bogus'"):
        course.build_parameters("smoke", images, out=tmp_path / "out")
    monkeypatch.setenv("SEGLIB_DEVICE", "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(SeglibError, match="no CUDA GPU is visible"):
            course.build_parameters("smoke", images, out=tmp_path / "out",
                                    overrides={"device": "cuda"})
    assert course.build_parameters("smoke", images, out=tmp_path / "out",
                                   overrides={"device": "cpu"})["device"] == "cpu"


# -- 7. a user's own picture under a figure's name ----------------------------------------
def test_save_figure_keeps_a_picture_it_did_not_write(tmp_path: Path, capsys) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from seglib.course.figures import save_figure

    reports = tmp_path / "reports"
    path = reports / "04_side_by_side.png"
    save_figure(plt.figure(), path)
    save_figure(plt.figure(), path)  # the kit's own figure: replaced, nothing kept
    assert not list(reports.glob("*.edited-*"))
    mine = b"\x89PNG my own picture"
    path.write_bytes(mine)
    capsys.readouterr()
    save_figure(plt.figure(), path)
    assert (reports / "04_side_by_side.edited-1.png").read_bytes() == mine
    said = capsys.readouterr().out.strip().splitlines()
    assert len(said) == 1 and "04_side_by_side.edited-1.png" in said[0]
    other = reports / "01_timing.png"  # a picture the kit never wrote there
    other.write_bytes(mine)
    save_figure(plt.figure(), other)
    assert (reports / "01_timing.edited-1.png").read_bytes() == mine
    plt.close("all")


# -- 1 and 2 together, as the tester ran them: notebook 01 of the smoke course ---------------------
def test_notebook_01_reruns_with_flagged_photos_deleted_and_the_coco_file_corrected(
        tmp_path: Path) -> None:
    from seglib.cli import main
    from seglib.formats.coco import COCO_JSON
    from seglib.labels.store import LabelStore

    images, out = _photos(tmp_path / "photos", range(12)), tmp_path / "out"
    run = dict(images=images, out=out, html=False, notebooks=course.notebook_paths()[:1])
    course.run_course("smoke", log=lambda s: None, **run)
    labels = out / "labels"
    flagged = sorted(r.stem for r in LabelStore(labels).ok_records() if r.flagged)
    if not flagged:  # the tester's folder had flagged labels; make sure this one does
        flagged = sorted(LabelStore(labels).records())[:2]
        _flag(labels, flagged)
    for stem in flagged:
        (images / f"{stem}.jpg").unlink()
    course.run_course("smoke", log=lambda s: None, **run)  # was: captioned_grid ValueError
    text = (out / "01_sam_masks.ipynb").read_text()
    assert "no flagged photo to show" in text or "0 of" not in text
    # the README loop: correct the export in place, import it, run the same command again
    ann = out / "export" / "coco" / COCO_JSON
    doc = json.loads(ann.read_text())
    im = doc["images"][0]
    w, h = im["width"], im["height"]
    box = [w * 0.25, h * 0.25, w * 0.75, h * 0.25, w * 0.75, h * 0.75, w * 0.25, h * 0.75]
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] != im["id"]]
    doc["annotations"].append({"id": 999, "image_id": im["id"], "category_id": 1,
                               "segmentation": [box], "iscrowd": 0})
    corrected = json.dumps(doc).encode()
    ann.write_bytes(corrected)
    assert main(["import", str(labels), "--coco", str(ann)]) == 0
    course.run_course("smoke", log=lambda s: None, **run)  # was: refused, rc 2
    kept = ann.with_name("instances_default.edited-1.json")
    assert kept.read_bytes() == corrected
    assert "kept as instances_default.edited-1.json" in (out / "01_sam_masks.ipynb").read_text()
    assert LabelStore(labels).records()[Path(im["file_name"]).stem].source == "imported"
