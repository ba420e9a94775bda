"""The label store: labels keyed by content, never silently stale, undone or overwritten."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_labeling import CountingProposer, make_folder, photo

from seglib.backends.opencv import propose
from seglib.cli import main
from seglib.core.errors import SeglibError
from seglib.core.tables import write_csv
from seglib.labels.labeling import label_folder, repick_folder
from seglib.labels.store import COLUMNS, LabelRecord, LabelStore, record_from_row
from seglib.masks.candidates import Candidates
from seglib.masks.trimap import load_trimap, mask_to_trimap, save_trimap


def label(images: Path, out: Path, proposer=propose, **kw):  # noqa: ANN001, ANN201
    return label_folder(images, out, proposer, backend="opencv", mode="classical", **kw)


def trimaps(out: Path) -> dict[str, np.ndarray]:
    return {p.stem: load_trimap(p) for p in sorted(out.glob("*.png"))}


def other_photos(folder: Path, stems: list[str]) -> None:
    """Photos of other objects under the same names (camera names repeat)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, stem in enumerate(stems):
        cv2.imwrite(str(folder / f"{stem}.jpg"), photo(100 + i, h=80, w=64))


def test_a_second_folder_with_the_same_names_is_labeled_again(tmp_path: Path) -> None:
    stems = make_folder(tmp_path / "A", 3)
    other_photos(tmp_path / "B", stems)
    label(tmp_path / "B", tmp_path / "B_alone")  # what B's labels must be
    out = tmp_path / "lab"
    label(tmp_path / "A", out)
    counting = CountingProposer()
    s = label(tmp_path / "B", out, counting)
    assert counting.calls == 3 and s.changed == 3 and s.existing == 0
    assert "3 relabeled: the photo changed" in s.describe()
    got, want = trimaps(out), trimaps(tmp_path / "B_alone")
    assert all(np.array_equal(got[st], want[st]) for st in stems)
    for st_ in stems:
        c = Candidates.load(out / "candidates" / f"{st_}.npz")
        ref = Candidates.load(tmp_path / "B_alone" / "candidates" / f"{st_}.npz")
        assert np.array_equal(c.masks, ref.masks)  # no candidate of A's photo reused
    # and back: nothing is "already done" when the photos differ
    s = label(tmp_path / "A", out)
    assert s.changed == 3 and s.existing == 0


def test_a_photo_replaced_in_place_is_labeled_again(tmp_path: Path) -> None:
    images, out = tmp_path / "img", tmp_path / "out"
    stems = make_folder(images, 3)
    label(images, out)
    before = trimaps(out)
    cv2.imwrite(str(images / f"{stems[1]}.jpg"), photo(77, h=80, w=64))
    counting = CountingProposer()
    s = label(images, out, counting)
    assert counting.calls == 1 and s.changed == 1 and s.existing == 2
    assert "1 relabeled: the photo changed" in s.describe()
    after = trimaps(out)
    assert after[stems[1]].shape == (80, 64) and not np.array_equal(after[stems[0]], 0)
    assert np.array_equal(after[stems[0]], before[stems[0]])


def test_a_changed_photo_drops_its_override(tmp_path: Path) -> None:
    images, out = tmp_path / "img", tmp_path / "out"
    stems = make_folder(images, 2)
    label(images, out)
    (out / "overrides.csv").write_text(f"stem,candidate\n{stems[0]},1\n")
    repick_folder(out)
    cv2.imwrite(str(images / f"{stems[0]}.jpg"), photo(55))
    s = label(images, out)  # a person's choice: kept until --replace-kept (issue 23)
    assert "kept 1 override" in s.describe() and LabelStore(out).overrides()
    s = label(images, out, replace_kept=True)
    assert "1 overrides dropped" in s.describe()
    assert LabelStore(out).overrides() == {}
    assert LabelStore(out).get(stems[0]).source == "pick"


def _refined(out: Path, stem: str) -> np.ndarray:
    """Draw a label as refinement would (a shrunk pick, recorded as round 1)."""
    store = LabelStore(out)
    mask = load_trimap(out / f"{stem}.png") == 1
    mask = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    store.write_label(stem, mask, source="refined", round=1, reason="refined in round 1")
    store.save()
    return load_trimap(out / f"{stem}.png")


def test_repick_keeps_refined_imported_and_hand_edited_labels(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture
                                                               ) -> None:
    images, out = tmp_path / "img", tmp_path / "out"
    stems = make_folder(images, 4)
    label(images, out)
    refined = _refined(out, stems[0])
    store = LabelStore(out)
    imported = np.zeros((72, 96), bool)
    imported[10:40, 20:70] = True
    store.write_label(stems[1], imported, source="imported", confidence=1.0)
    store.save()
    edited = load_trimap(out / f"{stems[2]}.png").copy()
    edited[:5, :] = 1  # a hand edit in an image editor
    save_trimap(out / f"{stems[2]}.png", edited)
    for command in (["pick", str(out)], ["pick", str(out), "--policy", "seed"]):
        assert main(command) == 0
        text = capsys.readouterr().out
        assert "kept 1 edited, 1 imported, 1 refined labels" in text
        tri = trimaps(out)
        assert np.array_equal(tri[stems[0]], refined)
        assert np.array_equal(tri[stems[1]], mask_to_trimap(imported))
        assert np.array_equal(tri[stems[2]], edited)
    recs = LabelStore(out).records()
    assert [recs[s].source for s in stems] == ["refined", "imported", "edited", "pick"]
    assert recs[stems[0]].round == 1 and recs[stems[3]].policy == "seed"
    # asked for: they are replaced, and the summary says so
    assert main(["pick", str(out), "--replace-kept"]) == 0
    assert "replaced 1 edited, 1 imported, 1 refined labels" in capsys.readouterr().out
    assert {r.source for r in LabelStore(out).records().values()} == {"pick"}


def test_an_override_applies_to_a_refined_label(tmp_path: Path) -> None:
    images, out = tmp_path / "img", tmp_path / "out"
    stems = make_folder(images, 2)
    label(images, out)
    _refined(out, stems[0])
    (out / "overrides.csv").write_text(f"stem,candidate\n{stems[0]},1\n")
    s = repick_folder(out)
    assert s.overrides == 1 and LabelStore(out).get(stems[0]).source == "override"
    c = Candidates.load(out / "candidates" / f"{stems[0]}.npz")
    assert np.array_equal(load_trimap(out / f"{stems[0]}.png"), mask_to_trimap(c.masks[1]))


def test_label_rerun_and_overwrite_keep_a_hand_edited_trimap(tmp_path: Path) -> None:
    images, out = tmp_path / "img", tmp_path / "out"
    stems = make_folder(images, 2)
    label(images, out)
    edited = load_trimap(out / f"{stems[0]}.png").copy()
    edited[-6:, :] = 1
    save_trimap(out / f"{stems[0]}.png", edited)
    s = label(images, out)
    assert s.edited == 1 and "1 trimaps edited by hand" in s.describe()
    s = label(images, out, overwrite=True)
    assert "kept 1 edited labels" in s.describe() and s.labeled == 1
    assert np.array_equal(load_trimap(out / f"{stems[0]}.png"), edited)
    s = label(images, out, overwrite=True, replace_kept=True)
    assert "replaced 1 edited labels" in s.describe()
    assert not np.array_equal(load_trimap(out / f"{stems[0]}.png"), edited)


def test_a_trimap_written_before_a_kill_is_not_taken_for_a_hand_edit(tmp_path: Path) -> None:
    """A run killed after a trimap was rewritten but before labels.csv was: the trimap is what
    seglib writes from the cached candidates, so it is not an edit."""
    images, out = tmp_path / "img", tmp_path / "out"
    stems = make_folder(images, 2)
    label(images, out)
    rows = (out / "labels.csv").read_bytes()
    (out / "overrides.csv").write_text(f"stem,candidate\n{stems[0]},1\n")
    repick_folder(out)
    (out / "labels.csv").write_bytes(rows)  # the rewrite of labels.csv was lost
    s = repick_folder(out)
    assert s.edited == 0 and LabelStore(out).get(stems[0]).source == "override"
    (out / "labels.csv").write_bytes(rows)
    s = label(images, out)
    assert s.edited == 0 and s.existing == 2


def test_a_labels_csv_of_the_first_schema_is_migrated(tmp_path: Path) -> None:
    images, out = tmp_path / "img", tmp_path / "out"
    stems = make_folder(images, 3)
    label(images, out)
    old_cols = ("stem", "file", "backend", "mode", "policy", "chosen", "predicted_iou",
                "stability", "score", "confidence", "flagged", "seconds", "status", "reason")
    rows = [{**r.row(), "reason": ""} for r in LabelStore(out).records().values()]
    rows[0]["reason"] = "refined r2 (grabcut:cnn, was 0)"
    rows[1]["chosen"] = "1"
    write_csv(out / "labels.csv", rows, old_cols)
    for npz in (out / "candidates").glob("*.npz"):  # the first schema's candidates files
        c = Candidates.load(npz)
        c.photo_hash = ""
        c.save(npz)
    (out / "overrides.csv").write_text(f"stem,candidate\n{stems[1]},1\n")
    store = LabelStore(out)
    assert store.migrated == 3
    recs = store.records()
    assert (recs[stems[0]].source, recs[stems[0]].round) == ("refined", 2)
    assert recs[stems[1]].source == "override" and recs[stems[2]].source == "pick"
    counting = CountingProposer()
    s = label(images, out, counting)
    assert counting.calls == 0 and s.existing == 3 and "older seglib" in s.describe()
    with open(out / "labels.csv", newline="") as f:
        header = next(csv.reader(f))
    assert tuple(header) == COLUMNS
    assert all(len(r.photo_hash) == 64 for r in LabelStore(out).records().values())


def test_flagged_is_a_bool_everywhere(tmp_path: Path) -> None:
    images, out = tmp_path / "img", tmp_path / "out"
    make_folder(images, 2)
    label(images, out)
    for r in LabelStore(out).records().values():
        assert isinstance(r.flagged, bool) and r.row()["flagged"] in ("0", "1")


def test_overrides_for_unknown_photos_are_named(tmp_path: Path) -> None:
    images, out = tmp_path / "img", tmp_path / "out"
    make_folder(images, 2)
    label(images, out)
    (out / "overrides.csv").write_text("stem,candidate\nnot_a_photo,1\n")
    s = repick_folder(out)
    assert "overrides.csv names 1 photos this folder has no label for: not_a_photo" in \
        s.describe()


def test_formula_file_names_are_escaped_in_labels_csv(tmp_path: Path) -> None:
    images, out = tmp_path / "img", tmp_path / "out"
    images.mkdir()
    cv2.imwrite(str(images / "=cmd.jpg"), photo(1))
    label(images, out)
    with open(out / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["stem"] == "'=cmd" and rows[0]["file"] == "'=cmd.jpg"
    assert LabelStore(out).get("=cmd").file == "=cmd.jpg"


ROW = st.fixed_dictionaries({c: st.one_of(st.text(max_size=8), st.sampled_from(
    ["", "1", "0", "ok", "skipped", "pick", "refined", "nan", "inf", "-1", "2"]))
    for c in COLUMNS})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ROW, max_size=4))
def test_random_rows_give_records(rows: list[dict[str, str]]) -> None:
    for r in rows:
        rec = record_from_row(r)
        if rec is not None:
            assert rec.status in ("ok", "skipped", "failed") and isinstance(rec.flagged, bool)
            assert rec.source in ("pick", "override", "refined", "imported", "edited")
            assert rec.confidence is None or np.isfinite(rec.confidence)
            assert record_from_row(rec.row()) == rec  # a written record reads back the same


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400))
def test_random_bytes_in_labels_and_overrides_csv(tmp_path: Path, data: bytes) -> None:
    for name in ("labels.csv", "overrides.csv"):
        (tmp_path / name).write_bytes(data)
    try:
        store = LabelStore(tmp_path)
        store.records()
        store.overrides()
    except SeglibError as exc:
        assert "\n" not in str(exc)


def test_record_round_trip_keeps_every_field() -> None:
    rec = LabelRecord(stem="a", file="a.jpg", photo_hash="f" * 64, confidence=0.5, flagged=True,
                      doubt="the network and the pick disagree on 30 % of the object",
                      pick_confidence=0.75, pick_flagged=False, source="refined", round=2,
                      seconds=1.25, reason="x, y")
    assert record_from_row(rec.row()) == rec


def test_pick_names_the_photos_it_could_not_re_pick(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    images, out = tmp_path / "img", tmp_path / "out"
    stems = make_folder(images, 3)
    label(images, out)
    (out / "candidates" / f"{stems[0]}.npz").write_bytes(b"junk")
    (out / "overrides.csv").write_text(f"stem,candidate\n{stems[1]},99\n")
    assert main(["pick", str(out)]) == 0
    io = capsys.readouterr()
    assert f"{stems[0]}: not re-picked" in io.err
    assert f"{stems[1]}: override ignored (candidate '99'" in io.err
    assert "2/3 photos re-picked" in io.out and "1 failed" in io.out


def test_counts_never_exceed_the_photos(tmp_path: Path) -> None:
    images, out = tmp_path / "img", tmp_path / "out"
    make_folder(images, 4)
    label(images, out)
    fewer = tmp_path / "fewer"
    make_folder(fewer, 2)  # the same first two photos
    s = label(fewer, out)
    assert s.total == 2 and s.ok == 2 and s.describe().startswith("2/2 photos labeled")
    cv2.imwrite(str(fewer / "shoe_000.png"), photo(0))  # dup.jpg + dup.png
    s = label(fewer, out)
    assert s.skipped == 1 and "1 skipped" in s.describe() and s.ok == 2


def test_broken_candidates_never_undo_an_imported_label(tmp_path: Path) -> None:
    """pick cannot read a photo's candidates: the imported label stays ok, so the next label
    run does not draw a pick over it."""
    images, out = tmp_path / "img", tmp_path / "out"
    stems = make_folder(images, 2)
    label(images, out)
    store = LabelStore(out)
    imported = np.zeros((72, 96), bool)
    imported[10:40, 20:70] = True
    store.write_label(stems[0], imported, source="imported", confidence=1.0)
    store.save()
    (out / "candidates" / f"{stems[0]}.npz").write_bytes(b"junk")
    s = repick_folder(out)
    assert s.failed == 1 and f"{stems[0]}: not re-picked" in s.problems[0]
    assert LabelStore(out).get(stems[0]).ok
    s = label(images, out)
    assert np.array_equal(load_trimap(out / f"{stems[0]}.png"), mask_to_trimap(imported))
    assert LabelStore(out).get(stems[0]).source == "imported"


def test_a_mask_saved_over_a_trimap_is_not_replaced(tmp_path: Path) -> None:
    """A 0/255 mask saved in place of a trimap (an image editor's export) is the user's work:
    label and pick leave the file and say what is wrong with it."""
    images, out = tmp_path / "img", tmp_path / "out"
    stems = make_folder(images, 2)
    label(images, out)
    path = out / f"{stems[0]}.png"
    mask = np.where(load_trimap(path) == 1, 255, 0).astype(np.uint8)
    mask[:5] = 255
    cv2.imwrite(str(path), mask)
    data = path.read_bytes()
    s = label(images, out)
    assert path.read_bytes() == data and s.labeled == 0
    assert any(p.startswith(f"{stems[0]}.png: not a trimap") for p in s.problems)
    s = repick_folder(out)
    assert path.read_bytes() == data
    assert any(p.startswith(f"{stems[0]}.png: not a trimap") for p in s.problems)
    s = label(images, out, overwrite=True)
    assert path.read_bytes() == data
    path.unlink()  # what the message says to do
    s = label(images, out)
    assert s.labeled == 1 and load_trimap(path).shape == (72, 96)


def test_a_trimap_without_a_record_is_kept_when_seglib_did_not_draw_it(tmp_path: Path) -> None:
    """labels.csv deleted: a refined (or hand-drawn) trimap is kept as edited, a trimap that is
    a pick of any policy is recognised as seglib's."""
    images, out = tmp_path / "img", tmp_path / "out"
    stems = make_folder(images, 3)
    label(images, out, policy="seed")
    refined = _refined(out, stems[0])
    (out / "labels.csv").unlink()
    s = label(images, out)
    assert np.array_equal(load_trimap(out / f"{stems[0]}.png"), refined)
    recs = LabelStore(out).records()
    assert recs[stems[0]].source == "edited" and s.edited == 1
    assert [recs[st_].source for st_ in stems[1:]] == ["pick", "pick"]
    # the candidates deleted as well: the same, once they are proposed again
    (out / "labels.csv").unlink()
    import shutil
    shutil.rmtree(out / "candidates")
    s = label(images, out)
    assert np.array_equal(load_trimap(out / f"{stems[0]}.png"), refined)
    assert LabelStore(out).get(stems[0]).source == "edited" and s.edited == 1


def test_a_photo_whose_label_cannot_be_written_is_a_failed_row(tmp_path: Path,
                                                               monkeypatch) -> None:
    import seglib.labels.store
    images, out = tmp_path / "img", tmp_path / "out"
    stems = make_folder(images, 3)
    real = seglib.masks.trimap.save_trimap

    def refuse(path, trimap):  # noqa: ANN001, ANN202
        if Path(path).stem == stems[1]:
            raise SeglibError(f"{path}: File name too long; rename the photo")
        return real(path, trimap)

    monkeypatch.setattr(seglib.labels.store, "save_trimap", refuse)
    s = label(images, out)
    assert s.ok == 2 and s.failed == 1
    assert "File name too long" in LabelStore(out).get(stems[1]).reason
    monkeypatch.undo()
    assert label(images, out).ok == 3  # the next run redoes it


def test_overwrite_never_applies_an_override_to_other_candidates(tmp_path: Path) -> None:
    """`label --overwrite` with another backend: the override named a candidate of the old
    set; the same number in the new set is another mask, so the override is dropped (and said)
    instead of drawing that mask as a person's choice. The same candidates keep it."""
    images, out = tmp_path / "img", tmp_path / "out"
    stems = make_folder(images, 2)
    label(images, out)
    (out / "overrides.csv").write_text(f"stem,candidate\n{stems[0]},1\n")
    repick_folder(out)
    s = label(images, out, overwrite=True)  # the same backend: the same candidates
    assert LabelStore(out).get(stems[0]).source == "override" and "dropped" not in s.describe()

    def rotated(image: np.ndarray) -> Candidates:
        c = propose(image)
        order = np.roll(np.arange(len(c)), 1)
        return Candidates(c.masks[order], c.predicted_iou[order], c.stability[order],
                          [c.sources[i] for i in order], "other")

    s = label(images, out, rotated, overwrite=True)  # a person's choice: kept (issue 23)
    assert "kept 1 override" in s.describe() and LabelStore(out).overrides()
    s = label(images, out, rotated, overwrite=True, replace_kept=True)
    assert "1 overrides dropped" in s.describe()
    rec = LabelStore(out).get(stems[0])
    assert rec.source == "pick" and LabelStore(out).overrides() == {}


def test_a_folder_loop_reads_labels_csv_once_not_once_per_photo(tmp_path, monkeypatch):
    """policy_report and the reviewer's photos load each photo's candidates without reading
    labels.csv again (it was read once per photo: 825 photos took 32 s instead of 5 s)."""
    from seglib.course.widgets import Reviewer
    from seglib.labels import review, store

    images = tmp_path / "images"
    make_folder(images, 6)
    labels = tmp_path / "labels"
    label(images, labels)
    reads = []
    real = store.LabelStore.reload
    monkeypatch.setattr(store.LabelStore, "reload",
                        lambda self: (reads.append(1), real(self))[1])
    report = review.policy_report(labels, None, progress=False)
    assert len(report) == 6 and len(reads) == 1
    rv = Reviewer(labels, images)
    reads.clear()
    for stem in rv.stems:
        rv.state(stem)
    assert reads == []
