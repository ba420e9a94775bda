"""Issue 23, root cause 1: every write goes through the output-safety rule
(:func:`seglib.core.folders.refuse_output`), and bookkeeping lists only what the kit wrote."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import SAMPLE

from seglib.cli import main
from seglib.core.folders import mark_folder

N = 3


@pytest.fixture(scope="module")
def labeled(tmp_path_factory) -> tuple[Path, Path]:
    """The first 3 sample photos (copied) labeled with the opencv backend: (photos, labels)."""
    root = tmp_path_factory.mktemp("writes")
    photos = root / "photos"
    photos.mkdir()
    for p in sorted((SAMPLE / "images").glob("*.jpg"))[:N]:
        shutil.copyfile(p, photos / p.name)
    labels = root / "labels"
    assert main(["label", str(photos), "--out", str(labels), "--backend", "opencv"]) == 0
    return photos, labels


def _one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# -- evaluate --csv ------------------------------------------------------------------------------
def test_evaluate_csv_never_replaces_a_label_index_or_a_photo(labeled, cli) -> None:
    photos, labels = labeled
    index = (labels / "labels.csv").read_bytes()
    photo = sorted(photos.glob("*.jpg"))[0]
    before = photo.read_bytes()
    for target in (labels / "labels.csv", photo, photos / "new.png", labels / "manifest.json"):
        code, _, err = cli("evaluate", labels, labels, "--csv", target)
        assert code != 0
        assert "--csv" in _one_line(err)
    assert (labels / "labels.csv").read_bytes() == index
    assert photo.read_bytes() == before
    assert not (photos / "new.png").exists() and not (labels / "manifest.json").exists()


def test_evaluate_csv_rewrites_its_own_file(labeled, cli, tmp_path: Path) -> None:
    _, labels = labeled
    target = tmp_path / "metrics.csv"
    assert cli("evaluate", labels, labels, "--csv", target)[0] == 0
    assert cli("evaluate", labels, labels, "--csv", target)[0] == 0  # its own: rewritten
    (tmp_path / "notes.csv").write_text("my,notes\n1,2\n")
    code, _, err = cli("evaluate", labels, labels, "--csv", tmp_path / "notes.csv")
    assert code != 0 and "notes.csv" in _one_line(err)
    assert (tmp_path / "notes.csv").read_text() == "my,notes\n1,2\n"


# -- label --out -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["predictions", "run", "export", "photos", "trimaps"])
def test_label_out_refuses_another_kind_of_folder(labeled, cli, tmp_path: Path,
                                                  kind: str) -> None:
    photos, _ = labeled
    out = tmp_path / kind
    out.mkdir()
    if kind == "run":
        (out / "history.csv").write_text("epoch,loss\n")
    elif kind == "export":
        (out / "seglib-export.json").write_text('{"kind": "export", "format": "coco", '
                                                 '"files": []}')
    elif kind == "photos":
        shutil.copyfile(next(photos.glob("*.jpg")), out / "holiday.jpg")
    else:
        mark_folder(out, kind)
        for p in photos.glob("*.jpg"):  # a trimap per photo, as predict writes them
            shutil.copyfile(SAMPLE / "trimaps" / f"{p.stem}.png", out / f"{p.stem}.png")
    before = sorted(p.name for p in out.iterdir())
    code, _, err = cli("label", photos, "--out", out, "--backend", "opencv")
    assert code != 0
    assert "--out" in _one_line(err)
    assert sorted(p.name for p in out.iterdir()) == before


def test_label_out_accepts_its_own_folder_and_a_new_or_empty_one(labeled, cli,
                                                                 tmp_path: Path) -> None:
    photos, labels = labeled
    assert cli("label", photos, "--out", labels, "--backend", "opencv")[0] == 0
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "empty", tmp_path / "new"):
        assert cli("label", photos, "--out", out, "--backend", "opencv", "--limit", 1)[0] == 0
        assert (out / "labels.csv").is_file()


# -- export bookkeeping ----------------------------------------------------------------------------
def _export(labels: Path, photos: Path, out: Path, fmt: str = "coco") -> int:
    return main(["export", str(labels), "--format", fmt, "--out", str(out), "--photos",
                 str(photos)])


def test_export_lists_and_replaces_only_the_files_it_wrote(labeled, tmp_path: Path) -> None:
    photos, labels = labeled
    out = tmp_path / "export"
    assert _export(labels, photos, out) == 0
    (out / "corrected.json").write_text("{}")  # a person's files saved in the export folder
    shutil.copytree(labels, out / "my-labels")
    written = json.loads((out / "seglib-export.json").read_text())["files"]
    assert _export(labels, photos, out) == 0
    assert (out / "corrected.json").read_text() == "{}"
    assert (out / "my-labels" / "labels.csv").is_file()
    doc = json.loads((out / "seglib-export.json").read_text())
    assert sorted(doc["files"]) == sorted(written)
    assert not any(f.startswith("my-labels") or f == "corrected.json" for f in doc["files"])


def test_export_never_deletes_a_file_edited_since_it_wrote_it(labeled, tmp_path: Path,
                                                              capsys) -> None:
    photos, labels = labeled
    out = tmp_path / "export"
    assert _export(labels, photos, out) == 0
    ann = out / "annotations" / "instances_default.json"
    ann.write_text('{"corrected": true}')  # CVAT's corrected file saved over the export's
    capsys.readouterr()
    assert _export(labels, photos, out) != 0
    assert "instances_default.json" in _one_line(capsys.readouterr().err)
    assert ann.read_text() == '{"corrected": true}'


@pytest.mark.parametrize("stop", [KeyboardInterrupt(), OSError(28, "No space left on device")])
def test_an_interrupted_export_is_resumed_by_the_same_command(labeled, tmp_path: Path,
                                                              monkeypatch, capsys,
                                                              stop: BaseException) -> None:
    from seglib.core import files

    photos, labels = labeled
    out = tmp_path / "export"
    real, calls = files.write_bytes_atomic, []

    def full_disk(path, data):
        calls.append(path)
        if len(calls) == 2:
            raise stop
        return real(path, data)

    monkeypatch.setattr("seglib.formats.items.write_bytes_atomic", full_disk)
    assert _export(labels, photos, out, "yolo") != 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if isinstance(stop, KeyboardInterrupt):
        assert "again to resume" in err
    monkeypatch.undo()
    assert _export(labels, photos, out, "yolo") == 0
    doc = json.loads((out / "seglib-export.json").read_text())
    assert "data.yaml" in doc["files"]


# -- the course rerun ------------------------------------------------------------------------------
def test_a_course_rerun_keeps_a_notebook_a_student_edited(labeled, tmp_path: Path) -> None:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    from seglib.course import runner as course

    photos, _ = labeled
    nb = new_notebook()
    nb.cells = [new_code_cell("out_dir = 'x'\nimages_dir = 'y'",
                              metadata={"tags": ["parameters"]}), new_code_cell("print(1)")]
    path = tmp_path / "01_notes.ipynb"
    nbformat.write(nb, str(path))
    out, said = tmp_path / "course", []
    run = dict(images=photos, out=out, notebooks=[path], html=False, log=said.append)
    course.run_course("quick", **run)
    executed = out / "01_notes.ipynb"
    course.run_course("quick", **run)  # untouched: rewritten, nothing kept aside
    assert sorted(p.name for p in out.glob("01_notes*")) == ["01_notes.ipynb"]
    student = nbformat.read(str(executed), as_version=4)
    student.cells.append(nbformat.v4.new_markdown_cell("my notes: the border is wrong"))
    nbformat.write(student, str(executed))
    notes = executed.read_bytes()
    said.clear()
    course.run_course("quick", **run)
    kept = [p for p in out.glob("01_notes*.ipynb") if p.name != "01_notes.ipynb"]
    assert len(kept) == 1 and kept[0].read_bytes() == notes
    lines = [s for s in said if kept[0].name in s]
    assert len(lines) == 1 and "edited" in lines[0]
    assert b"my notes" not in executed.read_bytes()  # the new run's notebook
