"""Issue 23, root cause 2: a kept label is never replaced because its record cannot be read
exactly. A person's label (override, edited, imported, refined) is replaced only on an
explicit ``--replace-kept``; a ``labels.csv`` that cannot be read exactly is refused with one
line naming the row; a photo is its decoded pixels, not its bytes."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_labeling import CountingProposer, make_folder, photo

from seglib.backends.opencv import propose
from seglib.cli import main
from seglib.core.errors import SeglibError
from seglib.core.tables import read_csv, write_csv
from seglib.formats.export import export_labels
from seglib.labels.labeling import label_folder, repick_folder
from seglib.labels.store import LabelStore
from seglib.masks.trimap import load_trimap, mask_to_trimap, save_trimap


def label(images: Path, out: Path, proposer=propose, **kw):  # noqa: ANN001, ANN201
    return label_folder(images, out, proposer, backend="opencv", mode="classical", **kw)


def retag(path: Path, text: bytes = b"rating=5") -> None:
    """What a photo manager does: a comment segment written into the JPEG; pixels unchanged."""
    data = path.read_bytes()
    assert data[:2] == b"\xff\xd8"
    segment = b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text
    path.write_bytes(data[:2] + segment + data[2:])


def person_labels(images: Path, out: Path, stems: list[str]) -> dict[str, np.ndarray]:
    """stems[0] edited by hand, stems[1] imported, stems[2] an override, stems[3] refined."""
    label(images, out)
    tri = load_trimap(out / f"{stems[0]}.png").copy()
    tri[:6, :] = 1
    save_trimap(out / f"{stems[0]}.png", tri)
    store = LabelStore(out)
    mask = np.zeros((72, 96), bool)
    mask[10:40, 20:70] = True
    store.write_label(stems[1], mask, source="imported", confidence=1.0)
    store.write_label(stems[3], ~mask, source="refined", round=1)
    store.save()
    (out / "overrides.csv").write_text(f"stem,candidate\n{stems[2]},1\n")
    repick_folder(out)
    assert [LabelStore(out).get(s).source for s in stems[:4]] == \
        ["edited", "imported", "override", "refined"]
    return {p.stem: load_trimap(p) for p in out.glob("*.png")}


# -- a photo is its pixels -----------------------------------------------------------------------
def test_a_retagged_photo_keeps_every_label(tmp_path: Path) -> None:
    images, out = tmp_path / "img", tmp_path / "out"
    stems = make_folder(images, 5)
    before = person_labels(images, out, stems)
    for s in stems:
        retag(images / f"{s}.jpg")
    counting = CountingProposer()
    s = label(images, out, counting)
    assert counting.calls == 0 and s.changed == 0, s.describe()
    recs = LabelStore(out).records()
    assert [recs[x].source for x in stems] == ["edited", "imported", "override", "refined", "pick"]
    after = {p.stem: load_trimap(p) for p in out.glob("*.png")}
    assert all(np.array_equal(before[x], after[x]) for x in stems)
    s = label(images, out, CountingProposer())  # settled: nothing to do on the next run
    assert s.existing == 5 and s.changed == 0 and "kept" not in s.describe()
    e = export_labels(out, tmp_path / "coco", "coco", photos=images)
    assert not e.left_out.get("photo changed"), e.left_out


def test_an_older_row_without_pixels_hash_keeps_working(tmp_path: Path) -> None:
    images, out = tmp_path / "img", tmp_path / "out"
    stems = make_folder(images, 5)
    person_labels(images, out, stems)
    rows = read_csv(out / "labels.csv")
    cols = [c for c in rows[0] if c != "pixels_hash"]
    write_csv(out / "labels.csv", [{**r, "schema": "3"} for r in rows], cols)
    s = label(images, out, CountingProposer())  # an old row: read as it was
    assert s.existing == 5 and s.changed == 0
    retag(images / f"{stems[0]}.jpg")
    retag(images / f"{stems[4]}.jpg")
    counting = CountingProposer()
    s = label(images, out, counting)
    assert counting.calls == 0 and s.changed == 0
    assert LabelStore(out).get(stems[0]).source == "edited"


# -- a person's label is replaced only on --replace-kept -----------------------------------------
def test_a_persons_label_on_a_changed_photo_is_kept_unless_replace_kept(tmp_path: Path) -> None:
    images, out = tmp_path / "img", tmp_path / "out"
    stems = make_folder(images, 5)
    before = person_labels(images, out, stems)
    for i, s in enumerate(stems):
        cv2.imwrite(str(images / f"{s}.jpg"), photo(50 + i))  # really other photos
    for kw in ({}, {"overwrite": True}):
        s = label(images, out, **kw)
        text = s.describe()
        assert "kept 1 edited, 1 imported, 1 override, 1 refined labels" in text, text
        assert s.changed == (0 if kw else 1)  # the pick, once
        recs = LabelStore(out).records()
        assert [recs[x].source for x in stems[:4]] == \
            ["edited", "imported", "override", "refined"]
        assert all(np.array_equal(before[x], load_trimap(out / f"{x}.png")) for x in stems[:4])
        assert LabelStore(out).overrides() == {stems[2]: "1"}
    s = label(images, out, replace_kept=True)
    assert s.changed == 4 and "replaced" in s.describe()
    assert {r.source for r in LabelStore(out).records().values()} == {"pick"}


def test_overwrite_keeps_an_override_unless_replace_kept(tmp_path: Path) -> None:
    images, out = tmp_path / "img", tmp_path / "out"
    stems = make_folder(images, 2)
    label(images, out)
    (out / "overrides.csv").write_text(f"stem,candidate\n{stems[0]},1\n")
    repick_folder(out)
    s = label(images, out, overwrite=True)
    assert "kept 1 override labels" in s.describe()
    assert LabelStore(out).get(stems[0]).source == "override"


# -- pick without labels.csv: the same rule as label --------------------------------------------
def test_pick_without_labels_csv_keeps_hand_edited_trimaps(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture
                                                           ) -> None:
    images, out = tmp_path / "img", tmp_path / "out"
    stems = make_folder(images, 3)
    label(images, out)
    edited = load_trimap(out / f"{stems[0]}.png").copy()
    edited[:8, :] = 1
    save_trimap(out / f"{stems[0]}.png", edited)
    (out / "labels.csv").unlink()
    assert main(["pick", str(out), "--policy", "seed"]) == 0
    assert "kept 1 edited" in capsys.readouterr().out
    assert np.array_equal(load_trimap(out / f"{stems[0]}.png"), edited)
    recs = LabelStore(out).records()
    assert recs[stems[0]].source == "edited" and recs[stems[1]].source == "pick"
    # label, in the same situation, decides the same
    (out / "labels.csv").unlink()
    s = label(images, out)
    assert s.kept["edited"] == 1
    assert np.array_equal(load_trimap(out / f"{stems[0]}.png"), edited)
    # --replace-kept is the way to redo it
    assert main(["pick", str(out), "--replace-kept"]) == 0
    assert LabelStore(out).get(stems[0]).source == "pick"


# -- a labels.csv that cannot be read exactly is refused ----------------------------------------
def _drop(column: str):  # noqa: ANN202
    def change(rows: list[dict[str, str]], cols: list[str]) -> tuple[list, list]:
        return rows, [c for c in cols if c != column]
    return change


def _dup(rows: list[dict[str, str]], cols: list[str]) -> tuple[list, list]:
    return rows + [{**rows[0], "source": "pick"}], cols


def _cell(column: str, value: str):  # noqa: ANN202
    def change(rows: list[dict[str, str]], cols: list[str]) -> tuple[list, list]:
        rows[1] = {**rows[1], column: value}
        return rows, cols
    return change


BROKEN = {
    "no schema column": (_drop("schema"), "schema"),
    "no status column": (_drop("status"), "status"),
    "duplicated stem": (_dup, "twice"),
    "unknown status": (_cell("status", "okk"), "status"),
    "unknown source": (_cell("source", "edted"), "source"),
    "bad confidence": (_cell("confidence", "high"), "confidence"),
    "bad round": (_cell("round", "x"), "round"),
    "bad flag": (_cell("flagged", "maybe"), "flagged"),
    "bad hash": (_cell("photo_hash", "abc"), "photo_hash"),
    "newer schema": (_cell("schema", "99"), "schema"),
    "empty stem": (_cell("stem", ""), "stem"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_labels_csv_that_cannot_be_read_exactly_is_refused(tmp_path: Path, case: str,
                                                             capsys: pytest.CaptureFixture
                                                             ) -> None:
    images, out = tmp_path / "img", tmp_path / "out"
    stems = make_folder(images, 3)
    label(images, out)
    store = LabelStore(out)
    store.write_label(stems[0], np.ones((72, 96), bool), source="imported", confidence=1.0)
    store.save()
    rows = read_csv(out / "labels.csv")
    change, word = BROKEN[case]
    rows, cols = change(rows, list(rows[0]))
    write_csv(out / "labels.csv", rows, cols)
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(SeglibError) as err:
        LabelStore(out)
    msg = str(err.value)
    assert "\n" not in msg and "labels.csv" in msg and word in msg, msg
    if case not in ("no schema column", "no status column"):
        assert "row " in msg, msg
    for command in (["pick", str(out)],
                    ["label", str(images), "--out", str(out), "--backend", "opencv"]):
        assert main(command) != 0
        assert "labels.csv" in capsys.readouterr().err
    after = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # nothing written


# -- a stem ending in a space --------------------------------------------------------------------
def test_a_stem_ending_in_a_space_round_trips(tmp_path: Path) -> None:
    images, out = tmp_path / "img", tmp_path / "out"
    images.mkdir()
    cv2.imwrite(str(images / "shoe .jpg"), photo(1))
    cv2.imwrite(str(images / " boot.jpg"), photo(2))
    label(images, out)
    assert sorted(LabelStore(out).records()) == [" boot", "shoe "]
    counting = CountingProposer()
    s = label(images, out, counting)
    assert counting.calls == 0 and s.existing == 2, s.describe()
    e = export_labels(out, tmp_path / "coco", "coco", photos=images)
    coco = json.loads((tmp_path / "coco" / "annotations" / "instances_default.json").read_text())
    assert len(coco["images"]) == 2 and not e.left_out, (e.left_out, e.problems)
    # an override names the stem exactly
    (out / "overrides.csv").write_text('stem,candidate\n"shoe ",1\n')
    s = repick_folder(out)
    assert s.overrides == 1 and LabelStore(out).get("shoe ").source == "override"
    assert mask_to_trimap is not None
