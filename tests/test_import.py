"""COCO masks come back: files written with pycocotools (not by seglib) as CVAT and Label
Studio write them (compressed RLE, uncompressed RLE, polygons) are decoded by one parser."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from seglib.coco import read_coco
from seglib.errors import SeglibError
from seglib.trimap import load_trimap

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
    masks = sample_masks(3)
    path = write_coco_file(tmp_path / "c.json", masks, rle_compressed,
                           extra_images=("never_drawn.jpg",))
    doc = json.loads(path.read_text())
    doc["annotations"][0]["segmentation"] = {"size": [5, 5], "counts": [1, 2]}  # sums to 3
    doc["annotations"][1]["segmentation"] = [[1, 2, 3]]  # no polygon with 3 points
    doc["annotations"].append({"id": 99, "image_id": 42, "category_id": 1,
                               "segmentation": [[0, 0, 5, 0, 5, 5]]})
    path.write_text(json.dumps(doc))
    got = read_coco(path)
    stems = sorted(masks)
    assert sorted(got.masks) == stems[2:]
    assert "do not add up" in got.problems[f"images/{stems[0]}.jpg"]
    assert "no polygon" in got.problems[f"images/{stems[1]}.jpg"]
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
