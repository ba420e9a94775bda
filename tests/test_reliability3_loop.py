"""Issue 23, root cause 3: the loop a course is for, review -> fix -> retrain.

Each test here failed before its fix: a rerun after changed labels retrains the models whose
inputs changed (the old run moved aside, said in one line) instead of refusing; a course
folder takes added and removed photos and keeps the reviewer's work; training refuses a
photo replaced since its label was made; an untouched COCO polygon round trip changes
nothing; ``label --policy seed`` re-picks the picks of another policy; and the README's
find → fix → retrain loop runs end to end on the sample (smoke preset).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLE, copy_pairs

from seglib.core.errors import SeglibError

FAST = dict(preset="smoke", size=16, epochs=1, device="cpu", amp=False, progress=False)


# -- 1. a finished model whose inputs changed is trained again ----------------------------------
def _train_standard(images: Path, trimaps: Path, out: Path, said: list[str]) -> dict:
    from seglib.training.loop import train_standard

    kw = {k: v for k, v in FAST.items() if k != "progress"}
    return train_standard(images, trimaps, out, subsets=("10", "711"), log=said.append, **kw)


def _flip_label(trimaps: Path, stem: str) -> None:
    from seglib.masks.trimap import load_trimap, save_trimap

    t = load_trimap(trimaps / f"{stem}.png")
    save_trimap(trimaps / f"{stem}.png", np.ascontiguousarray(t[:, ::-1]))


def test_standard_models_whose_labels_changed_are_trained_again(tmp_path: Path,
                                                                _one_torch_thread) -> None:
    images, trimaps, models = tmp_path / "images", tmp_path / "trimaps", tmp_path / "models"
    stems = copy_pairs(images, trimaps, 12)
    said: list[str] = []
    first = _train_standard(images, trimaps, models, said)
    best = {n: (models / f"model_{n}" / "best.pt").read_bytes() for n in first}
    said.clear()
    again = _train_standard(images, trimaps, models, said)  # unchanged: reused as they were
    assert {n: (models / f"model_{n}" / "best.pt").read_bytes() for n in again} == best
    assert not list(models.glob("*.old-*")) and not any("again" in s for s in said)
    _flip_label(trimaps, stems[0])
    said.clear()
    _train_standard(images, trimaps, models, said)  # was: RunMismatchError ... delete model_10
    for name in ("10", "711"):
        old = models / f"model_{name}.old-1"
        assert (old / "best.pt").read_bytes() == best[name]  # the old run is kept, moved aside
        assert (models / f"model_{name}" / "manifest.json").is_file()
        lines = [s for s in said if f"model_{name}:" in s and "trained again" in s]
        assert len(lines) == 1 and "\n" not in lines[0], said
        assert "1 label changed" in lines[0] and old.name in lines[0]
    assert not (models / "model_10" / ".seglib.lock").exists()


def test_train_standard_command_retrains_a_changed_model(tmp_path: Path, cli,
                                                         _one_torch_thread) -> None:
    images, trimaps, models = tmp_path / "images", tmp_path / "trimaps", tmp_path / "models"
    stems = copy_pairs(images, trimaps, 8)
    args = ("train", images, trimaps, "--out", models, "--standard", "--preset", "smoke",
            "--size", "16", "--epochs", "1", "--no-amp", "--device", "cpu")
    assert cli(*args)[0] == 0
    _flip_label(trimaps, stems[1])
    code, out, err = cli(*args)
    assert code == 0, err
    assert "trained again" in err + out and "old-1" in err + out
    assert (models / "model_711B.old-1" / "best.pt").is_file()


def test_a_single_resume_with_other_labels_still_refuses(tmp_path: Path,
                                                         _one_torch_thread) -> None:
    """``train --resume`` of one run still names the difference (the user asked to
    continue that run); only the standard models are trained again by themselves."""
    from seglib.training.checkpoints import RunMismatchError
    from seglib.training.loop import train_run

    images, trimaps = tmp_path / "images", tmp_path / "trimaps"
    stems = copy_pairs(images, trimaps, 6)
    train_run(images, trimaps, tmp_path / "run", log=lambda m: None, **FAST)
    _flip_label(trimaps, stems[0])
    with pytest.raises(RunMismatchError, match="1 label changed"):
        train_run(images, trimaps, tmp_path / "run", resume=True, log=lambda m: None, **FAST)


# -- 2. a course folder takes added and removed photos, keeping the reviewer's work ------------
def _course_photos(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        src = SAMPLE / "images" / f"sample_{i:03d}.jpg"
        (folder / src.name).write_bytes(src.read_bytes())
    return folder


def test_course_folder_takes_added_and_removed_photos(tmp_path: Path) -> None:
    from seglib.course.runner import claim_course_folder, course_photos, finish_course

    images, out = _course_photos(tmp_path / "photos", 4), tmp_path / "out"
    claim_course_folder(out, images, "smoke", log=lambda s: None)
    (out / "labels").mkdir()
    (out / "labels" / "labels.csv").write_text("stem\nsample_000\n")
    (out / "labels" / "overrides.csv").write_text("stem,candidate\nsample_001,2\n")
    (images / "sample_003.jpg").unlink()
    src = SAMPLE / "images" / "sample_010.jpg"
    (images / src.name).write_bytes(src.read_bytes())
    said: list[str] = []
    claim_course_folder(out, images, "smoke", log=said.append)  # was: refused, --fresh
    assert len(said) == 1 and "\n" not in said[0]
    assert "1 photo is new (sample_010)" in said[0] and "1 photo is gone (sample_003)" in said[0]
    assert (out / "labels" / "overrides.csv").read_text() == "stem,candidate\nsample_001,2\n"
    photos = json.loads((out / "course.json").read_text())["photos"]
    assert sorted(photos) == ["sample_000", "sample_001", "sample_002", "sample_003"]
    said.clear()
    claim_course_folder(out, images, "smoke", log=said.append)  # that run did not finish
    assert len(said) == 1 and "1 photo is new (sample_010)" in said[0]
    finish_course(out, course_photos(images))  # a run finished on these photos
    photos = json.loads((out / "course.json").read_text())["photos"]
    assert sorted(photos) == ["sample_000", "sample_001", "sample_002", "sample_010"]
    said.clear()
    claim_course_folder(out, images, "smoke", log=said.append)
    assert said == []  # nothing changed, nothing said
    with pytest.raises(SeglibError, match="was made with preset 'smoke', not 'demo'"):
        claim_course_folder(out, images, "demo", log=said.append)
    other = tmp_path / "other"  # no photo in common: another folder's course, refused
    other.mkdir()
    for i in range(3):
        src = SAMPLE / "images" / f"sample_{20 + i:03d}.jpg"
        (other / f"sample_00{i}.jpg").write_bytes(src.read_bytes())
    with pytest.raises(SeglibError, match="was made from other photos"):
        claim_course_folder(out, other, "smoke", log=said.append)


# -- 3. training refuses a photo replaced since its label was made ------------------------------
def _fake_labeled(tmp_path: Path, n: int = 4) -> tuple[Path, Path]:
    """``n`` sample photos labeled by a fake proposer (their true mask and its complement)."""
    from seglib.labels.labeling import label_folder
    from seglib.masks.candidates import Candidates
    from seglib.masks.trimap import OBJECT, load_trimap

    images, labels = tmp_path / "images", tmp_path / "labels"
    stems = copy_pairs(images, tmp_path / "truth", n)
    truth = {}
    from seglib.core.images import read_image

    for s in stems:
        truth[read_image(images / f"{s}.jpg").tobytes()] = load_trimap(
            tmp_path / "truth" / f"{s}.png") == OBJECT

    def proposer(image: np.ndarray) -> Candidates:
        obj = truth[image.tobytes()]
        return Candidates(np.stack([obj, ~obj]), [0.80, 0.95], [0.9, 0.9], ["a", "b"], "fake")

    label_folder(images, labels, proposer, backend="fake", mode="test")
    return images, labels


def test_training_skips_a_photo_replaced_since_its_label_was_made(tmp_path: Path) -> None:
    from seglib.training.data import load_dataset

    images, labels = _fake_labeled(tmp_path, 4)
    stems = sorted(p.stem for p in images.iterdir())
    other = SAMPLE / "images" / "sample_030.jpg"  # another photo under the same name
    (images / f"{stems[0]}.jpg").write_bytes(other.read_bytes())
    said: list[str] = []
    ds = load_dataset(images, labels, 16, log=said.append)
    used = set(ds.train.stems) | set(ds.val.stems)
    assert stems[0] not in used and len(used) == 3
    assert [s.path.name for s in ds.skipped] == [f"{stems[0]}.jpg"]
    assert "changed since it was labeled" in ds.skipped[0].reason
    lines = [s for s in said if stems[0] in s]
    assert len(lines) == 1 and "label" in lines[0]


def test_training_keeps_a_photo_whose_bytes_changed_but_not_its_pixels(tmp_path: Path) -> None:
    """A tag written into the JPEG (a photo manager) leaves the photo its label was drawn on:
    training pairs it as before (a photo is its decoded pixels, README)."""
    from seglib.training.data import load_dataset

    images, labels = _fake_labeled(tmp_path, 4)
    stems = sorted(p.stem for p in images.iterdir())
    path = images / f"{stems[0]}.jpg"
    data = path.read_bytes()
    path.write_bytes(data[:2] + b"\xff\xfe\x00\x0arating=5" + data[2:])  # a JPEG comment
    said: list[str] = []
    ds = load_dataset(images, labels, 16, log=said.append)
    assert set(ds.train.stems) | set(ds.val.stems) == set(stems)
    assert ds.skipped == [] and not [s for s in said if stems[0] in s]


# -- 4. an untouched COCO polygon round trip changes nothing ------------------------------------
def test_untouched_polygon_round_trip_changes_nothing(tmp_path: Path) -> None:
    from seglib.formats.coco import COCO_JSON, import_coco
    from seglib.formats.export import export_labels
    from seglib.labels.store import LabelStore

    images, labels = _fake_labeled(tmp_path, 8)
    store = LabelStore(labels)
    flagged = sorted(store.records())[:3]
    for s in flagged:
        rec = store.get(s)
        rec.flagged = True
        store.put(rec)
    store.save()
    before = (labels / "labels.csv").read_bytes()
    trimaps = {p.name: p.read_bytes() for p in labels.glob("*.png")}
    export_labels(labels, tmp_path / "coco", "coco", polygons=True)
    s = import_coco(labels, tmp_path / "coco" / COCO_JSON)
    assert s.imported == [] and len(s.unchanged) == 8, s.describe()
    assert (labels / "labels.csv").read_bytes() == before
    assert {p.name: p.read_bytes() for p in labels.glob("*.png")} == trimaps
    # a real correction is still imported
    doc = json.loads((tmp_path / "coco" / COCO_JSON).read_text())
    ann = doc["annotations"][0]
    ann["segmentation"] = [[2.0, 2.0, 30.0, 2.0, 30.0, 30.0, 2.0, 30.0]]
    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps(doc))
    s = import_coco(labels, fixed)
    assert len(s.imported) == 1 and len(s.unchanged) == 7


# -- 5. label --policy seed on a labeled folder re-picks the picks ------------------------------
def test_label_with_another_policy_repicks_the_picks(tmp_path: Path) -> None:
    from seglib.labels.labeling import label_folder, repick_folder
    from seglib.labels.store import LabelStore

    images, labels = _fake_labeled(tmp_path, 3)
    stems = sorted(LabelStore(labels).records())
    LabelStore(labels).set_overrides({stems[2]: "0"})  # a person's choice stays
    repick_folder(labels, "foreground")
    assert LabelStore(labels).get(stems[2]).source == "override"
    from seglib.masks.candidates import Candidates

    def never(image: np.ndarray) -> Candidates:
        raise AssertionError("the model must not run: the candidates are cached")

    first = label_folder(images, labels, never, backend="fake", mode="test", policy="seed")
    recs = LabelStore(labels).records()
    assert [recs[s].policy for s in stems[:2]] == ["seed", "seed"]
    assert [recs[s].chosen for s in stems] == ["1", "1", "0"]
    assert recs[stems[2]].source == "override"
    text = first.describe()
    assert "2 picks redone with policy seed (were foreground)" in text
    again = label_folder(images, labels, never, backend="fake", mode="test", policy="seed")
    assert "redone" not in again.describe() and again.existing == 3


# -- 6. the README's loop end to end: course -> import a fix and an override -> course again ---
def _notebook_text(path: Path) -> str:
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", []) if o.get("output_type") == "stream")


def test_fix_labels_and_retrain_loop_on_the_sample(tmp_path: Path) -> None:
    import shutil

    from seglib.cli import main
    from seglib.course import runner as course
    from seglib.formats.coco import COCO_JSON
    from seglib.labels.store import LabelStore
    from seglib.masks.trimap import OBJECT, load_trimap

    sample = tmp_path / "sample"  # a copy, so that a photo can be added and removed below
    shutil.copytree(SAMPLE, sample)
    out = tmp_path / "course"
    smoke = dict(images=sample / "images", out=out, html=False)
    course.run_course("smoke", log=lambda s: None, **smoke)
    labels, models = out / "labels", out / "models"
    trained = {p.name: (p / "best.pt").read_bytes() for p in models.glob("model_*")}
    # the README's way: fix a mask in CVAT (here: the export notebook 01 wrote, one
    # annotation redrawn as a box) and import it; choose a candidate for another photo
    doc = json.loads((out / "export" / "coco" / COCO_JSON).read_text())
    im = doc["images"][0]
    fixed_stem = Path(im["file_name"]).stem
    w, h = im["width"], im["height"]
    box = [w * 0.25, h * 0.25, w * 0.75, h * 0.25, w * 0.75, h * 0.75, w * 0.25, h * 0.75]
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] != im["id"]]
    doc["annotations"].append({"id": 999, "image_id": im["id"], "category_id": 1,
                               "segmentation": [box], "iscrowd": 0})
    (tmp_path / "fixed.json").write_text(json.dumps(doc))
    assert main(["import", str(labels), "--coco", str(tmp_path / "fixed.json")]) == 0
    imported = (labels / f"{fixed_stem}.png").read_bytes()
    other = sorted(s for s in LabelStore(labels).records() if s != fixed_stem)[0]
    (labels / "overrides.csv").write_text(f"stem,candidate\n{other},1\n")
    said: list[str] = []
    course.run_course("smoke", log=said.append, **smoke)  # was: RunMismatchError
    recs = LabelStore(labels).records()
    assert recs[fixed_stem].source == "imported"
    assert (labels / f"{fixed_stem}.png").read_bytes() == imported
    box_mask = load_trimap(labels / f"{fixed_stem}.png") == OBJECT
    assert abs(box_mask.mean() - 0.25) < 0.03
    assert recs[other].source == "override" and recs[other].chosen == "1"
    text = _notebook_text(out / "03_train_10_161_207_711.ipynb")
    again = [ln for ln in text.splitlines() if "trained again" in ln]
    assert again, text
    for name, old in trained.items():
        moved = models / f"{name}.old-1"
        if any(ln.startswith(f"{name}:") for ln in again):
            assert (moved / "best.pt").read_bytes() == old  # kept, moved aside
            manifests = [json.loads((d / "manifest.json").read_text())["labels"]
                         for d in (moved, models / name)]
            assert manifests[0] != manifests[1]  # trained on the labels as they are now
        else:
            assert not moved.exists()
    assert (out / "04_compare.ipynb").is_file() and (out / "reports" / "summary.json").is_file()
    # a photo added and one removed: the course goes on, labels the new one, keeps the rest
    (sample / "images" / "sample_002.jpg").unlink()
    shutil.copyfile(sample / "images" / "sample_040.jpg", sample / "images" / "sample_000b.jpg")
    said.clear()
    course.run_course("smoke", log=said.append, **smoke)  # was: refused, --out or --fresh
    line = [s for s in said if "since the last run" in s]
    assert len(line) == 1 and "1 photo is new (sample_000b)" in line[0]
    assert "1 photo is gone (sample_002)" in line[0]
    recs = LabelStore(labels).records()
    assert recs["sample_000b"].ok and recs[fixed_stem].source == "imported"
    assert (labels / f"{fixed_stem}.png").read_bytes() == imported
    assert recs[other].source == "override" and recs[other].chosen == "1"
    assert "sample_002" not in json.loads((models / "model_711" / "manifest.json").read_text())[
        "photos"]  # the label of a photo that is gone is not trained on


def test_only_the_models_that_use_a_changed_label_are_trained_again(tmp_path: Path,
                                                                    _one_torch_thread) -> None:
    images, trimaps, models = tmp_path / "images", tmp_path / "trimaps", tmp_path / "models"
    copy_pairs(images, trimaps, 12)
    said: list[str] = []
    _train_standard(images, trimaps, models, said)
    used = {n: set(json.loads((models / f"model_{n}" / "manifest.json").read_text())["labels"])
            for n in ("10", "711")}
    assert used["10"] < used["711"]  # model_10: its 2 training photos and the validation
    stem = sorted(used["711"] - used["10"])[0]
    _flip_label(trimaps, stem)
    said.clear()
    _train_standard(images, trimaps, models, said)
    assert [s.split(":")[0] for s in said if "trained again" in s] == ["model_711"]
    assert not (models / "model_10.old-1").exists()
