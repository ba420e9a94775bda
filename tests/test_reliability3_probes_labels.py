"""A hostile tester's probes of a label folder: a person's label is never lost (import over a
hand edit or an override, a hand edit before its photo changed, a column added to labels.csv),
and what is unclear is said in one line (names in another Unicode form, import's exit codes,
two photos with one stem, labels whose photo is gone)."""

from __future__ import annotations

import shutil
import unicodedata
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_import import rle_compressed, write_coco_file
from test_labeling import make_folder, photo

from seglib.backends.opencv import propose
from seglib.cli import main
from seglib.core.errors import SeglibError
from seglib.formats.coco import import_coco
from seglib.formats.export import export_labels
from seglib.labels.labeling import label_folder, repick_folder
from seglib.labels.store import LabelStore
from seglib.masks.trimap import load_trimap, save_trimap


def label(images: Path, out: Path, **kw):  # noqa: ANN003, ANN201
    return label_folder(images, out, propose, backend="opencv", mode="classical", **kw)


def edit(out: Path, stem: str) -> np.ndarray:
    """A hand edit: the top-left 10×10 pixels set to object."""
    tri = load_trimap(out / f"{stem}.png").copy()
    tri[:10, :10] = 1
    save_trimap(out / f"{stem}.png", tri)
    return tri


def exported(tmp_path: Path, images: Path, out: Path) -> Path:
    export_labels(out, tmp_path / "coco", "coco", photos=images, val=0)
    return tmp_path / "coco" / "annotations" / "instances_default.json"


@pytest.fixture
def folder(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    images, out = tmp_path / "img", tmp_path / "out"
    stems = make_folder(images, 4)
    label(images, out)
    return images, out, stems


# -- 1. import never replaces a person's label unless asked ---------------------------------------
def test_import_keeps_a_hand_edit_made_after_the_export(folder, tmp_path: Path, capsys) -> None:
    images, out, stems = folder
    coco = exported(tmp_path, images, out)
    tri = edit(out, stems[1])
    assert label(images, out).kept["edited"] == 1
    assert main(["import", str(out), "--coco", str(coco)]) == 0
    line = capsys.readouterr().out.strip()
    assert "imported 0 masks" in line and "kept 1" in line and "--replace-kept" in line, line
    assert line.count("\n") == 0
    assert np.array_equal(load_trimap(out / f"{stems[1]}.png"), tri)
    assert LabelStore(out).get(stems[1]).source == "edited"
    assert main(["import", str(out), "--coco", str(coco), "--replace-kept"]) == 0
    assert "imported 1 masks" in capsys.readouterr().out
    assert LabelStore(out).get(stems[1]).source == "imported"


def test_import_keeps_an_edit_no_label_run_recorded_yet(folder, tmp_path: Path) -> None:
    images, out, stems = folder
    coco = exported(tmp_path, images, out)
    tri = edit(out, stems[2])  # straight from the editor to import
    s = import_coco(out, coco)
    assert not s.imported and s.kept == [stems[2]], s.describe()
    assert np.array_equal(load_trimap(out / f"{stems[2]}.png"), tri)


def test_import_keeps_an_override_and_an_imported_label(folder, tmp_path: Path) -> None:
    images, out, stems = folder
    coco = exported(tmp_path, images, out)
    (out / "overrides.csv").write_text(f"stem,candidate\n{stems[1]},1\n")
    repick_folder(out)
    assert LabelStore(out).get(stems[1]).source == "override"
    before = load_trimap(out / f"{stems[1]}.png")
    mask = np.zeros((72, 96), bool)
    mask[20:50, 30:70] = True
    store = LabelStore(out)
    store.write_label(stems[2], mask, source="imported")
    store.write_label(stems[3], ~mask, source="refined", round=1)
    store.save()
    s = import_coco(out, coco)
    assert sorted(s.kept) == stems[1:3] and s.imported == [stems[3]], s.describe()
    assert np.array_equal(load_trimap(out / f"{stems[1]}.png"), before)
    assert LabelStore(out).overrides() == {stems[1]: "1"}
    assert np.array_equal(load_trimap(out / f"{stems[2]}.png") == 1, mask)


def test_an_untouched_round_trip_changes_nothing(folder, tmp_path: Path) -> None:
    images, out, stems = folder
    coco = exported(tmp_path, images, out)
    before = (out / "labels.csv").read_bytes()
    s = import_coco(out, coco)
    assert not s.imported and not s.kept and len(s.unchanged) == len(stems), s.describe()
    assert (out / "labels.csv").read_bytes() == before


# -- 2. a hand edit is found before the photo-changed relabel -------------------------------------
def test_a_hand_edit_survives_its_photo_changing(folder) -> None:
    images, out, stems = folder
    tri = edit(out, stems[1])
    cv2.imwrite(str(images / f"{stems[1]}.jpg"), photo(1)[::-1].copy())  # other pixels
    s = label(images, out)
    assert s.changed == 0 and s.outdated == 1 and s.edited == 1, s.describe()
    assert np.array_equal(load_trimap(out / f"{stems[1]}.png"), tri)
    assert LabelStore(out).get(stems[1]).source == "edited"


# -- 3. a column labels.csv does not have is refused, not dropped ---------------------------------
def test_a_column_added_to_labels_csv_is_refused(folder, capsys) -> None:
    images, out, _ = folder
    path = out / "labels.csv"
    lines = path.read_text().splitlines()
    lines = [lines[0] + ",my_notes"] + [x + ",nice shoe" for x in lines[1:]]
    path.write_text("\n".join(lines) + "\n")
    before = path.read_bytes()
    with pytest.raises(SeglibError, match="my_notes"):
        LabelStore(out)
    assert main(["label", str(images), "--out", str(out), "--backend", "opencv"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "my_notes" in err[0] and "another file" in err[0], err
    assert path.read_bytes() == before


# -- 4. Unicode forms of a name; import's exit codes ----------------------------------------------
def test_import_matches_a_name_in_another_unicode_form(tmp_path: Path) -> None:
    images, out = tmp_path / "img", tmp_path / "out"
    images.mkdir()
    nfc = unicodedata.normalize("NFC", "schüh")
    cv2.imwrite(str(images / f"{nfc}.jpg"), photo(3))
    label(images, out)
    mask = np.zeros((72, 96), bool)
    mask[10:60, 10:80] = True
    nfd = unicodedata.normalize("NFD", "schüh")
    assert nfd != nfc
    coco = write_coco_file(tmp_path / "mac.json", {nfd: mask}, rle_compressed)
    s = import_coco(out, coco)
    assert s.imported == [nfc] and not s.problems, s.describe()


def test_import_exit_codes(folder, tmp_path: Path, capsys) -> None:
    images, out, _ = folder
    coco = exported(tmp_path, images, out)
    assert main(["import", str(out), "--coco", str(coco)]) == 0  # read fine, nothing changed
    io = capsys.readouterr()
    assert "imported 0 masks" in io.out and "error" not in io.err
    mask = np.ones((72, 96), bool)
    strangers = write_coco_file(tmp_path / "s.json", {"stranger": mask}, rle_compressed)
    assert main(["import", str(out), "--coco", str(strangers)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert sum(x.startswith("error:") for x in err) == 1, err
    assert err[-1].startswith("error:") and "nothing" in err[-1]


# -- 5. two photos with one stem ------------------------------------------------------------------
def test_two_photos_with_one_stem_keep_the_label(tmp_path: Path) -> None:
    images, out = tmp_path / "img", tmp_path / "out"
    make_folder(images, 2)
    cv2.imwrite(str(images / "dup.png"), photo(7))
    label(images, out)
    tri = edit(out, "dup")
    cv2.imwrite(str(images / "dup.jpg"), photo(8))
    s = label(images, out)
    lines = [p for p in s.problems if "dup" in p]
    assert len(lines) == 1 and "dup.jpg" in lines[0] and "dup.png" in lines[0], s.problems
    assert "ambiguous" in lines[0] and "rename" in lines[0]
    assert s.outdated == 0 and "earlier version" not in s.describe(), s.describe()
    assert np.array_equal(load_trimap(out / "dup.png"), tri)
    rec = LabelStore(out).get("dup")
    assert rec.file == "dup.png" and rec.source == "edited"


# -- 6. a label whose photo is gone ---------------------------------------------------------------
def test_a_label_without_its_photo_is_named(folder) -> None:
    images, out, stems = folder
    tri = edit(out, stems[1])
    shutil.move(images / f"{stems[1]}.jpg", images / "renamed.jpg")
    s = label(images, out)
    assert (f"1 labels have no photo in the folder (e.g. {stems[1]}): kept; delete them or "
            "put the photo back") in s.describe(), s.describe()
    assert np.array_equal(load_trimap(out / f"{stems[1]}.png"), tri)
    assert "1 labels have no photo" in label(images, out, limit=2).describe()  # not 3
