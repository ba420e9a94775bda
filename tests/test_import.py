"""COCO masks come back: files written with pycocotools (not by seglib) as CVAT and Label
Studio write them (compressed RLE, uncompressed RLE, polygons) are decoded by one parser."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from seglib.core.errors import SeglibError
from seglib.formats.coco import read_coco
from seglib.masks.trimap import load_trimap

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"


def sample_masks(n: int) -> dict[str, np.ndarray]:
    """The true object masks of the first ``n`` sample photos, by stem."""
    paths = sorted((SAMPLE / "trimaps").glob("*.png"))[:n]
    if len(paths) < n:
        pytest.skip("data/sample is missing")
    return {p.stem: load_trimap(p) == 1 for p in paths}


def rle_compressed(mask: np.ndarray) -> dict:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}


def rle_uncompressed(mask: np.ndarray) -> dict:
    """CVAT's and Detectron2's uncompressed form: run lengths in column-major order, the first
    run counting zeros."""
    flat = np.asarray(mask, np.uint8).flatten(order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0]:
        counts = [0, *counts]
    return {"size": list(mask.shape), "counts": counts}


def polygons(mask: np.ndarray) -> list[list[float]]:
    """Polygons as an annotation tool draws them (cv2 contours, not seglib's)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]


def write_coco_file(path: Path, masks: dict[str, np.ndarray], encode, *,
                    suffix: str = ".jpg", extra_images: tuple[str, ...] = (),
                    split: bool = False) -> Path:
    """A COCO instances file for ``masks`` (stem -> bool mask), segmentation by ``encode``;
    with ``split`` each mask is two annotations (left and right half)."""
    images, anns = [], []
    for i, (stem, m) in enumerate(masks.items(), start=1):
        h, w = m.shape
        images.append({"id": i, "file_name": f"images/{stem}{suffix}", "width": w, "height": h})
        parts = [m]
        if split:
            left = m.copy()
            left[:, w // 2:] = False
            parts = [left, m & ~left]
        for part in parts:
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": 1, "iscrowd": 0,
                         "segmentation": encode(part), "area": float(part.sum()),
                         "bbox": [0, 0, 1, 1]})
    for name in extra_images:
        images.append({"id": len(images) + 1, "file_name": name, "width": 10, "height": 10})
    doc = {"images": images, "annotations": anns,
           "categories": [{"id": 1, "name": "shoe", "supercategory": ""}]}
    path.write_text(json.dumps(doc))
    return path


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.mark.parametrize("encode", [rle_compressed, rle_uncompressed])
def test_rle_masks_decode_exactly(tmp_path: Path, encode) -> None:
    masks = sample_masks(4)
    got = read_coco(write_coco_file(tmp_path / "c.json", masks, encode))
    assert sorted(got.masks) == sorted(masks) and not got.problems
    for stem, m in masks.items():
        assert np.array_equal(got.masks[stem].mask, m)


def test_uncompressed_rle_helper_is_what_pycocotools_reads() -> None:
    from pycocotools import mask as mask_utils

    m = next(iter(sample_masks(1).values()))
    rle = rle_uncompressed(m)
    decoded = mask_utils.decode(mask_utils.frPyObjects(rle, *rle["size"]))
    assert np.array_equal(decoded > 0, m)


def test_polygons_decode_as_pycocotools_draws_them(tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    masks = sample_masks(4)
    path = write_coco_file(tmp_path / "c.json", masks, polygons)
    got = read_coco(path)
    coco = COCO(str(path))
    for im in coco.dataset["images"]:
        stem = Path(im["file_name"]).stem
        (ann,) = coco.loadAnns(coco.getAnnIds(imgIds=[im["id"]]))
        assert np.array_equal(got.masks[stem].mask, coco.annToMask(ann) > 0)
        assert _iou(got.masks[stem].mask, masks[stem]) > 0.97


def test_annotations_of_one_image_are_merged(tmp_path: Path) -> None:
    masks = sample_masks(3)
    got = read_coco(write_coco_file(tmp_path / "c.json", masks, rle_compressed, split=True))
    for stem, m in masks.items():
        assert got.masks[stem].annotations == 2
        assert np.array_equal(got.masks[stem].mask, m)


def test_broken_annotations_are_reported_by_image_name(tmp_path: Path) -> None:
    masks = sample_masks(5)
    path = write_coco_file(tmp_path / "c.json", masks, rle_compressed,
                           extra_images=("never_drawn.jpg",))
    doc = json.loads(path.read_text())
    doc["annotations"][0]["segmentation"] = {"size": [5, 5], "counts": [1, 2]}  # sums to 3
    doc["annotations"][1]["segmentation"] = [[1, 2, 3]]  # no polygon with 3 points
    doc["annotations"][2]["segmentation"] = {"size": [240, 240], "counts": "0"}  # garbage
    doc["annotations"][3]["segmentation"] = {"size": [240, 240], "counts": "abc"}
    doc["annotations"].append({"id": 99, "image_id": 42, "category_id": 1,
                               "segmentation": [[0, 0, 5, 0, 5, 5]]})
    path.write_text(json.dumps(doc))
    got = read_coco(path)
    stems = sorted(masks)
    assert sorted(got.masks) == stems[4:]
    assert "do not add up" in got.problems[f"images/{stems[0]}.jpg"]
    assert "no polygon" in got.problems[f"images/{stems[1]}.jpg"]
    assert "not a valid mask" in got.problems[f"images/{stems[2]}.jpg"]
    assert "Invalid RLE" in got.problems[f"images/{stems[3]}.jpg"]
    assert "image id 42" in got.problems["annotation 99"]
    assert got.without_annotations == ["never_drawn.jpg"]


def test_category_filter_and_unreadable_files(tmp_path: Path) -> None:
    masks = sample_masks(2)
    path = write_coco_file(tmp_path / "c.json", masks, rle_compressed)
    assert sorted(read_coco(path, category="shoe").masks) == sorted(masks)
    with pytest.raises(SeglibError, match="no category named 'boot'.*shoe"):
        read_coco(path, category="boot")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(SeglibError, match="not a readable JSON"):
        read_coco(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(SeglibError, match="not a COCO instances file"):
        read_coco(tmp_path / "list.json")
    with pytest.raises(SeglibError, match="file not found"):
        read_coco(tmp_path / "missing.json")


# -- into a label folder (the label store) -------------------------------------------------------
N_LABELED = 8


@pytest.fixture(scope="module")
def labeled_once(tmp_path_factory) -> Path:
    """The first 8 sample photos labeled with the opencv backend."""
    from seglib.cli import main

    labels = tmp_path_factory.mktemp("import") / "labels"
    assert main(["label", str(SAMPLE / "images"), "--out", str(labels), "--backend", "opencv",
                 "--limit", str(N_LABELED)]) == 0
    return labels


@pytest.fixture
def labels_copy(labeled_once: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(labeled_once, tmp_path / "labels"))


def fixed_masks(stems: list[str], shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Masks unlike any pick: the true mask with a rectangle cut out of it."""
    out = {}
    for i, stem in enumerate(stems):
        m = load_trimap(SAMPLE / "trimaps" / f"{stem}.png") == 1
        ys, xs = np.nonzero(m)
        cy, cx = int(ys.mean()), int(xs.mean())
        m[cy - 8 - i: cy + 8, cx - 12: cx + 12 + i] = False
        assert m.shape == shape
        out[stem] = m
    return out


def _record(labels: Path, stem: str):
    from seglib.labels.store import LabelStore

    return LabelStore(labels).get(stem)


@pytest.mark.parametrize("encode", [rle_compressed, polygons])
def test_import_makes_the_masks_labels_and_names_what_it_skips(labels_copy: Path, tmp_path: Path,
                                                               encode, capsys) -> None:
    from pycocotools.coco import COCO

    from seglib.cli import main
    from seglib.masks.trimap import mask_to_trimap

    labels = labels_copy
    stems = sorted(p.stem for p in labels.glob("*.png"))
    fixed = fixed_masks(stems[:3], (240, 240))
    other = {"stranger": np.ones((240, 240), bool),  # a photo the folder does not know
             stems[3]: np.ones((120, 240), bool)}  # a mask of another size than the photo
    before = {s: load_trimap(labels / f"{s}.png") for s in stems}
    path = write_coco_file(tmp_path / "fixed.json", {**fixed, **other}, encode)
    coco = COCO(str(path))
    drawn = {Path(coco.imgs[a["image_id"]]["file_name"]).stem: coco.annToMask(a) > 0
             for a in coco.dataset["annotations"]}
    assert main(["import", str(labels), "--coco", str(path)]) == 0
    io = capsys.readouterr()
    assert "imported 3 masks from fixed.json" in io.out and "2 skipped" in io.out
    assert "skipped images/stranger.jpg: the label folder" in io.err
    assert f"skipped images/{stems[3]}.jpg: mask is 240×120 but the photo is 240×240" in io.err
    for stem, m in fixed.items():
        t = load_trimap(labels / f"{stem}.png")
        if encode is rle_compressed:
            assert np.array_equal(t, mask_to_trimap(m))
        else:  # the polygons as pycocotools draws them
            assert np.array_equal(t == 1, drawn[stem])
        rec = _record(labels, stem)
        assert rec.source == "imported" and not rec.flagged and rec.status == "ok"
        assert "fixed.json" in rec.reason
    for stem in stems[3:]:
        assert np.array_equal(load_trimap(labels / f"{stem}.png"), before[stem])
        assert _record(labels, stem).source == "pick"
    # importing the same file again changes nothing
    assert main(["import", str(labels), "--coco", str(path)]) == 0
    assert "imported 0 masks from fixed.json" in capsys.readouterr().out


def test_imported_labels_survive_a_repick(labels_copy: Path, tmp_path: Path) -> None:
    from seglib.cli import main

    labels = labels_copy
    stems = sorted(p.stem for p in labels.glob("*.png"))
    fixed = fixed_masks(stems[:2], (240, 240))
    path = write_coco_file(tmp_path / "fixed.json", fixed, rle_uncompressed)
    assert main(["import", str(labels), "--coco", str(path)]) == 0
    assert main(["pick", str(labels), "--policy", "seed"]) in (0, 1)
    for stem, m in fixed.items():
        assert np.array_equal(load_trimap(labels / f"{stem}.png") == 1, m)
        assert _record(labels, stem).source == "imported"


def test_an_older_override_never_comes_back_over_an_imported_mask(labels_copy: Path,
                                                                  tmp_path: Path) -> None:
    from seglib.cli import main
    from seglib.labels.store import LabelStore

    labels = labels_copy
    stems = sorted(p.stem for p in labels.glob("*.png"))
    (labels / "overrides.csv").write_text(f"stem,candidate\n{stems[0]},0\n{stems[1]},0\n")
    assert main(["pick", str(labels)]) in (0, 1)  # the reviewer's choice, then a fix in CVAT
    fixed = fixed_masks(stems[:1], (240, 240))
    path = write_coco_file(tmp_path / "fixed.json", fixed, rle_uncompressed)
    assert main(["import", str(labels), "--coco", str(path)]) == 0  # the override is kept
    assert _record(labels, stems[0]).source == "override"
    assert main(["import", str(labels), "--coco", str(path), "--replace-kept"]) == 0
    assert LabelStore(labels).overrides() == {stems[1]: "0"}  # the imported photo's is gone
    for args in (["pick", str(labels)], ["pick", str(labels), "--replace-kept"]):
        main(args)
        if "--replace-kept" not in args:
            assert np.array_equal(load_trimap(labels / f"{stems[0]}.png") == 1, fixed[stems[0]])
    assert _record(labels, stems[0]).source == "pick"  # replaced on request: the policy's pick


def test_import_errors_are_one_line(labels_copy: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "bad.json").write_text("{")
    for args, words in (([str(labels_copy), "--coco", str(tmp_path / "bad.json")],
                         "not a readable JSON"),
                        ([str(tmp_path / "nowhere"), "--coco", str(tmp_path / "bad.json")],
                         "not a folder")):
        proc = subprocess.run([sys.executable, "-m", "seglib", "import", *args],
                              capture_output=True, text=True)
        assert proc.returncode == 2 and words in proc.stderr, proc.stderr
        assert proc.stderr.strip().count("\n") == 0


def _refinable_folder(root: Path, n: int = 30, size: int = 64) -> tuple[Path, Path, dict]:
    """A sample folder labeled as the labeler would, with a trouser leg in every third pick
    (as tests/test_refine.py makes it), written through the label store."""
    from seglib.course.sample import write_sample
    from seglib.labels.store import LabelStore
    from seglib.masks.candidates import Candidates

    write_sample(root / "sample", n=n, size=size)
    images, labels = root / "sample" / "images", root / "labels"
    store = LabelStore(labels)
    truth = {}
    with store.lock():
        store.remember_images(images)
        for i, path in enumerate(sorted(images.glob("*.jpg"))):
            mask = cv2.imread(str(root / "sample" / "masks" / f"{path.stem}.png"), 0) > 0
            truth[path.stem] = mask
            pick = mask.copy()
            if i % 3 == 0:  # a leg from the top edge down to the shoe
                ys, xs = np.nonzero(mask)
                x = int(xs.mean())
                pick[: ys.min() + 3, max(0, x - 5): x + 5] = True
            cands = Candidates(np.stack([pick, ~pick]), [0.9, 0.5], [0.9, 0.5],
                               ["grabcut:refine", "colour"], "opencv")
            cands.save(store.candidates_path(path.stem))
            store.write_label(path.stem, pick, source="pick", file=path.name, backend="opencv",
                              mode="classical", policy="foreground", chosen="0",
                              confidence=0.9, flagged=i % 3 == 0, pick_confidence=0.9,
                              pick_flagged=i % 3 == 0)
        store.save()
    return images, labels, truth


def test_imported_labels_survive_refine_and_train(tmp_path: Path) -> None:
    from seglib.cli import main
    from seglib.refine.rounds import refine_labels
    from seglib.refine.views import KEPT_OVERRIDE
    from seglib.training.loop import train_run

    images, labels, truth = _refinable_folder(tmp_path, n=12)
    stems = sorted(truth)
    fixed = {}
    for stem in stems[:6:3]:  # two photos with a leg: a hand-fixed mask, unlike any candidate
        m = truth[stem].copy()
        ys, xs = np.nonzero(m)
        m[int(ys.mean()):, : int(xs.mean())] = False  # only a part of the shoe
        fixed[stem] = m
    path = write_coco_file(tmp_path / "fixed.json", fixed, rle_compressed)
    assert main(["import", str(labels), "--coco", str(path)]) == 0
    s = refine_labels(images, labels, rounds=1, size=32, epochs=3, preset="smoke",
                      device="cpu", min_photos=10, progress=False, log=lambda m: None)
    assert s.kept_why[KEPT_OVERRIDE] == len(fixed)  # kept as a person drew them
    for stem, m in fixed.items():
        assert stem not in s.changed
        assert np.array_equal(load_trimap(labels / f"{stem}.png") == 1, m)
        assert _record(labels, stem).source == "imported"
    run = train_run(images, labels, tmp_path / "run", preset="smoke", size=32, epochs=1,
                    device="cpu", progress=False, log=lambda m: None)
    assert run.n_train + run.n_val == len(stems) and not run.skipped
    assert run.best.is_file()


def test_label_studio_upload_names_match_their_photo(labels_copy: Path, tmp_path: Path,
                                                     capsys) -> None:
    """Label Studio stores an uploaded sample_000.jpg as "3f2a1b2c-sample_000.jpg"."""
    from seglib.cli import main

    labels = labels_copy
    stems = sorted(p.stem for p in labels.glob("*.png"))
    fixed = fixed_masks(stems[:1], (240, 240))
    renamed = {f"3f2a1b2c-{stems[0]}": fixed[stems[0]],
               f"0badf00d-{stems[0]}": fixed[stems[0]]}  # a second upload of the same photo
    path = write_coco_file(tmp_path / "ls.json", renamed, polygons)
    assert main(["import", str(labels), "--coco", str(path)]) == 0
    io = capsys.readouterr()
    assert "imported 1 masks" in io.out
    assert f"skipped images/3f2a1b2c-{stems[0]}.jpg: images/0badf00d-{stems[0]}.jpg is the " \
           f"photo '{stems[0]}' too" in io.err
    assert _record(labels, stems[0]).source == "imported"


def test_import_keeps_what_another_run_wrote_while_it_waited_for_the_lock(
        labels_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from contextlib import contextmanager

    from seglib.core.folders import folder_lock
    from seglib.formats.coco import import_coco
    from seglib.labels.store import LabelStore

    labels = labels_copy
    stems = sorted(p.stem for p in labels.glob("*.png"))
    path = write_coco_file(tmp_path / "fixed.json", fixed_masks(stems[:1], (240, 240)),
                           rle_compressed)

    @contextmanager
    def lock_after_another_run(self: LabelStore):
        other = LabelStore(self.folder)  # e.g. a re-pick that held the lock until now
        other.get(stems[1]).reason = "written by another run"
        other.save()
        with folder_lock(self.folder) as lock:
            yield lock

    monkeypatch.setattr(LabelStore, "lock", lock_after_another_run)
    assert import_coco(labels, path).imported == [stems[0]]
    assert _record(labels, stems[1]).reason == "written by another run"
    assert _record(labels, stems[0]).source == "imported"
