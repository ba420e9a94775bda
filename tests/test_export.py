"""Export to COCO, YOLO, Oxford-IIIT Pet and VOC, each read back with its real client library
(pycocotools, torchvision, cv2.fillPoly for the YOLO polygons), never with seglib's reader."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from seglib.cli import main
from seglib.formats.export import assign_splits, split_of
from seglib.formats.items import ExportItem
from seglib.formats.polygons import mask_polygons
from seglib.labels.store import LabelStore
from seglib.masks.trimap import load_trimap

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_IMAGES = ROOT / "data" / "sample" / "images"
N = 8


@pytest.fixture(scope="module")
def labeled(tmp_path_factory) -> tuple[Path, Path]:
    """The first 8 sample photos labeled with the opencv backend: (photos, labels)."""
    if not SAMPLE_IMAGES.is_dir():
        pytest.skip("data/sample is missing")
    root = tmp_path_factory.mktemp("export")
    labels = root / "labels"
    assert main(["label", str(SAMPLE_IMAGES), "--out", str(labels), "--backend", "opencv",
                 "--limit", str(N)]) == 0
    return SAMPLE_IMAGES, labels


def _object(labels: Path, stem: str) -> np.ndarray:
    return load_trimap(labels / f"{stem}.png") == 1


def _stems(labels: Path) -> list[str]:
    return sorted(r.stem for r in LabelStore(labels).records().values() if r.ok)


def _export(photos: Path, labels: Path, out: Path, fmt: str, *extra: str) -> None:
    assert main(["export", str(labels), "--format", fmt, "--out", str(out), "--photos",
                 str(photos), "--category", "shoe", *extra]) == 0


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_coco_export_reads_back_with_pycocotools(labeled, tmp_path: Path, capsys) -> None:
    from pycocotools.coco import COCO

    photos, labels = labeled
    _export(photos, labels, tmp_path / "coco", "coco")
    assert f"exported {N} photos as coco" in capsys.readouterr().out
    coco = COCO(str(tmp_path / "coco" / "annotations" / "instances_default.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["shoe"]
    stems = _stems(labels)
    assert sorted(Path(im["file_name"]).stem for im in coco.dataset["images"]) == stems
    for im in coco.dataset["images"]:
        truth = _object(labels, Path(im["file_name"]).stem)
        assert (im["height"], im["width"]) == truth.shape
        assert (tmp_path / "coco" / "images" / im["file_name"]).is_file()
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[im["id"]]))
        assert len(anns) == 1 and anns[0]["iscrowd"] == 0
        assert np.array_equal(coco.annToMask(anns[0]).astype(bool), truth)
        ys, xs = np.nonzero(truth)
        assert anns[0]["area"] == truth.sum()
        assert anns[0]["bbox"] == [xs.min(), ys.min(), np.ptp(xs) + 1, np.ptp(ys) + 1]


def test_coco_polygons_for_label_studio(labeled, tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    photos, labels = labeled
    _export(photos, labels, tmp_path / "coco", "coco", "--polygons")
    coco = COCO(str(tmp_path / "coco" / "annotations" / "instances_default.json"))
    ious = []
    for ann in coco.dataset["annotations"]:
        assert isinstance(ann["segmentation"], list)
        im = coco.imgs[ann["image_id"]]
        ious.append(_iou(coco.annToMask(ann) > 0, _object(labels, Path(im["file_name"]).stem)))
    assert len(ious) == N and min(ious) >= 0.99, ious  # polygons through pixel centres: 0.96


def test_yolo_polygons_rasterise_back_to_the_labels(labeled, tmp_path: Path) -> None:
    import yaml

    photos, labels = labeled
    out = tmp_path / "yolo"
    _export(photos, labels, tmp_path / "no_val", "yolo", "--val", "0")
    data = yaml.safe_load((tmp_path / "no_val" / "data.yaml").read_text())
    assert data["val"] == data["train"] == "images/train"  # Ultralytics needs a val set
    _export(photos, labels, out, "yolo", "--val", "0.25")
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] == {0: "shoe"} and "path" not in data
    seen, ious = [], []
    for split in ("train", "val"):
        imgs = sorted((out / data[split]).iterdir())
        assert imgs, f"no {split} photos"
        for img in imgs:
            txt = out / "labels" / split / f"{img.stem}.txt"
            truth = _object(labels, img.stem)
            h, w = truth.shape
            assert cv2.imread(str(img)).shape[:2] == (h, w)
            polys = []
            for line in txt.read_text().splitlines():
                cls, *xy = line.split()
                assert cls == "0" and len(xy) >= 6
                polys.append(np.round(np.array(xy, float).reshape(-1, 2) * (w, h))
                             .astype(np.int32))
            drawn = np.zeros((h, w), np.uint8)
            cv2.fillPoly(drawn, polys, 1)
            ious.append(_iou(drawn > 0, truth))
            seen.append(img.stem)
    assert sorted(seen) == _stems(labels)
    assert np.mean(ious) >= 0.97, ious


def test_mask_polygons_keep_every_part() -> None:
    m = np.zeros((40, 60), bool)
    m[5:15, 5:20] = True
    m[25:35, 30:55] = True
    m[2, 40:50] = True  # a one-pixel line
    polys = mask_polygons(m)
    assert len(polys) == 3
    assert polys[0].min(0).tolist() == [30, 25]  # the largest part first
    drawn = np.zeros(m.shape, np.uint8)
    cv2.fillPoly(drawn, [p.astype(np.int32) for p in polys], 1)
    assert np.array_equal(drawn > 0, m)


def test_oxford_pet_export_reads_with_torchvision(labeled, tmp_path: Path) -> None:
    from torchvision.datasets import OxfordIIITPet

    photos, labels = labeled
    _export(photos, labels, tmp_path / "pet", "oxford-pet", "--val", "0.25")
    seen = []
    for split in ("trainval", "test"):
        ds = OxfordIIITPet(tmp_path / "pet", split=split, target_types="segmentation")
        assert len(ds) > 0
        for i in range(len(ds)):
            image, target = ds[i]
            stem = ds._images[i].stem
            trimap = load_trimap(labels / f"{stem}.png")
            assert np.array_equal(np.array(target), trimap)
            assert image.size == (trimap.shape[1], trimap.shape[0])
            seen.append(stem)
    assert sorted(seen) == _stems(labels)


def test_voc_export_reads_with_torchvision(labeled, tmp_path: Path) -> None:
    from torchvision.datasets import VOCSegmentation

    photos, labels = labeled
    _export(photos, labels, tmp_path / "voc", "voc", "--val", "0.25")
    seen = []
    for split in ("train", "val"):
        ds = VOCSegmentation(tmp_path / "voc", year="2012", image_set=split)
        assert len(ds) > 0
        for i in range(len(ds)):
            image, target = ds[i]
            stem = Path(ds.images[i]).stem
            trimap = load_trimap(labels / f"{stem}.png")
            assert target.mode == "P"
            assert target.getpalette()[3:6] == [128, 0, 0]
            t = np.array(target)
            assert np.array_equal(t == 1, trimap == 1)
            assert np.array_equal(t == 255, trimap == 3)
            assert np.array_equal(t == 0, trimap == 2)
            assert image.size == (trimap.shape[1], trimap.shape[0])
            seen.append(stem)
    assert sorted(seen) == _stems(labels)


def test_split_is_seeded_by_stem_and_stable() -> None:
    stems = [f"shoe_{i:03d}" for i in range(400)]
    first = {s: split_of(s, 0.1) for s in stems}
    assert 20 < sum(v == "val" for v in first.values()) < 60
    # a photo keeps its split when others are added, and the seed changes the split
    items = [ExportItem(s, Path(f"{s}.jpg"), Path(f"{s}.png")) for s in stems[:200]]
    assign_splits(items, 0.1)
    assert all(it.split == first[it.stem] for it in items)
    assert {s: split_of(s, 0.1, seed=1) for s in stems} != first
    two = [ExportItem(s, Path(), Path()) for s in ("a", "b")]
    assign_splits(two, 0.1)
    assert sorted(it.split for it in two) == ["train", "val"]


def test_skipped_and_flagged_photos_are_left_out(labeled, tmp_path: Path, capsys) -> None:
    photos, src = labeled
    labels = tmp_path / "labels"
    shutil.copytree(src, labels)
    store = LabelStore(labels)
    stems = sorted(store.records())
    with store.lock():
        for stem, rec in store.records().items():
            if stem == stems[0]:
                rec.status, rec.reason = "skipped", "not a readable JPEG/PNG image"
            rec.flagged = stem in stems[1:3]
            store.put(rec)
        store.save()
    (labels / f"{stems[3]}.png").unlink()
    _export(photos, labels, tmp_path / "c1", "coco", "--only-confident")
    io = capsys.readouterr()
    assert f"exported {N - 4} photos as coco" in io.out
    assert "1 skipped photos" in io.out and "2 flagged" in io.out and "1 without trimap" in io.out
    assert f"skipped {stems[3]}: no trimap" in io.err
    names = {im["file_name"] for im in json.loads(
        (tmp_path / "c1" / "annotations" / "instances_default.json").read_text())["images"]}
    assert names == {f"{s}.jpg" for s in stems[4:]}
    _export(photos, labels, tmp_path / "c2", "coco")  # flagged labels are kept without the flag
    assert f"exported {N - 2} photos" in capsys.readouterr().out


def test_photos_come_from_where_the_folder_was_labeled(labeled, tmp_path: Path,
                                                       capsys) -> None:
    photos, labels = labeled
    assert LabelStore(labels).images_dir == photos.resolve()
    assert main(["export", str(labels), "--format", "yolo", "--out", str(tmp_path / "y")]) == 0
    assert f"exported {N} photos as yolo" in capsys.readouterr().out
    assert len(list((tmp_path / "y" / "images").rglob("*.jpg"))) == N


@pytest.mark.parametrize("where", ["photos", "labels", "inside labels"])
def test_export_refuses_an_out_on_its_inputs(labeled, tmp_path: Path, where: str) -> None:
    photos, src = labeled
    labels = tmp_path / "labels"
    shutil.copytree(src, labels)
    own_photos = tmp_path / "photos"
    shutil.copytree(photos, own_photos)
    out = {"photos": own_photos, "labels": labels, "inside labels": labels / "coco"}[where]
    before = sorted(p.name for p in out.parent.rglob("*"))
    proc = subprocess.run([sys.executable, "-m", "seglib", "export", str(labels), "--format",
                           "coco", "--out", str(out), "--photos", str(own_photos)],
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.strip().count("\n") == 0
    assert "choose another --out" in proc.stderr
    assert sorted(p.name for p in out.parent.rglob("*")) == before


def test_export_without_photos_or_labels_says_what_to_pass(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    proc = subprocess.run([sys.executable, "-m", "seglib", "export", str(tmp_path / "empty"),
                           "--format", "yolo", "--out", str(tmp_path / "o"), "--photos",
                           str(SAMPLE_IMAGES)], capture_output=True, text=True)
    assert proc.returncode == 2 and "no labels.csv" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_rotated_and_png_photos_are_exported_as_the_labels_see_them(tmp_path: Path) -> None:
    """A JPEG whose EXIF says "rotate 90°" is labeled upright; the export must not copy its
    bytes (a reader that ignores EXIF would see it sideways); PNG photos become JPEGs where
    the layout asks for .jpg."""
    from PIL import Image
    from torchvision.datasets import OxfordIIITPet

    photos = tmp_path / "photos"
    photos.mkdir()
    src = Image.open(SAMPLE_IMAGES / "sample_000.jpg").resize((360, 240))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    src.save(photos / "turned.jpg", exif=exif)
    Image.open(SAMPLE_IMAGES / "sample_001.jpg").save(photos / "flat.png")
    labels = tmp_path / "labels"
    assert main(["label", str(photos), "--out", str(labels), "--backend", "opencv"]) == 0
    assert load_trimap(labels / "turned.png").shape == (360, 240)  # upright, as read_image
    _export(photos, labels, tmp_path / "coco", "coco")
    with Image.open(tmp_path / "coco" / "images" / "turned.jpg") as im:
        assert im.size == (240, 360) and im.getexif().get(0x0112, 1) == 1
    assert (tmp_path / "coco" / "images" / "flat.png").read_bytes() == \
        (photos / "flat.png").read_bytes()
    _export(photos, labels, tmp_path / "pet", "oxford-pet", "--val", "0")
    ds = OxfordIIITPet(tmp_path / "pet", target_types="segmentation")
    assert len(ds) == 2
    for image, target in (ds[0], ds[1]):
        assert image.size == target.size
    with Image.open(tmp_path / "pet" / "oxford-iiit-pet" / "images" / "flat.jpg") as im:
        assert im.format == "JPEG"


def test_a_bad_val_fraction_is_one_line(labeled, tmp_path: Path) -> None:
    photos, labels = labeled
    proc = subprocess.run([sys.executable, "-m", "seglib", "export", str(labels), "--format",
                           "voc", "--out", str(tmp_path / "o"), "--val", "1.5"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "--val must be" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and not (tmp_path / "o").exists()


def test_a_second_export_replaces_the_first_and_other_folders_are_refused(
        labeled, tmp_path: Path, capsys) -> None:
    photos, src = labeled
    labels = tmp_path / "labels"
    shutil.copytree(src, labels)
    out = tmp_path / "yolo"
    _export(photos, labels, out, "yolo", "--val", "0")
    store = LabelStore(labels)
    stems = sorted(store.records())
    with store.lock():
        rec = store.get(stems[0])
        rec.flagged = True
        store.put(rec)
        store.save()
    _export(photos, labels, out, "yolo", "--val", "0", "--only-confident")
    assert f"exported {N - 1} photos" in capsys.readouterr().out
    assert sorted(p.stem for p in (out / "images" / "train").iterdir()) == stems[1:]
    assert sorted(p.stem for p in (out / "labels" / "train").iterdir()) == stems[1:]
    # another format into the same folder, or a folder with other files, is refused
    assert main(["export", str(labels), "--format", "coco", "--out", str(out)]) == 2
    assert "holds a yolo export" in capsys.readouterr().err
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main(["export", str(labels), "--format", "coco", "--out", str(mine)]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_a_photo_changed_since_labeling_is_left_out(tmp_path: Path, capsys) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for stem in ("sample_000", "sample_001"):
        shutil.copyfile(SAMPLE_IMAGES / f"{stem}.jpg", photos / f"{stem}.jpg")
    labels = tmp_path / "labels"
    assert main(["label", str(photos), "--out", str(labels), "--backend", "opencv"]) == 0
    # another photo of the same size under the same name: its label no longer fits it
    shutil.copyfile(SAMPLE_IMAGES / "sample_002.jpg", photos / "sample_001.jpg")
    capsys.readouterr()
    _export(photos, labels, tmp_path / "voc", "voc")
    io = capsys.readouterr()
    assert "exported 1 photos" in io.out and "1 photo changed" in io.out
    assert "skipped sample_001.jpg: the photo changed since it was labeled" in io.err
