"""COCO read and write in one place: the instances file as CVAT, Label Studio and pycocotools
write it.

Writing (:func:`write_coco`, the ``coco`` export format): ``OUT/annotations/
instances_default.json`` and ``OUT/images/`` (CVAT's "COCO 1.0" layout): one annotation per
photo, the whole object (trimap label 1) as RLE (``polygons=True``: polygons, for Label
Studio), bbox and area from the mask, ``iscrowd`` 0.

Reading (:func:`read_coco`, the one parser): it decodes every annotation's ``segmentation``
with pycocotools, whether polygons, uncompressed RLE (``counts`` a list) or compressed RLE
(``counts`` a string), and merges the annotations of one image into one mask (their union),
matched to photos by file-name stem. Images without annotations are not returned (a file
listing every photo of a task says nothing about the ones nobody drew on); problems are kept
per image, never raised, except for a file that is not COCO at all. :func:`import_coco` makes
those masks the labels of their photos.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import Any

import numpy as np

from seglib.core.errors import SeglibError
from seglib.core.files import write_bytes_atomic
from seglib.core.images import read_image
from seglib.formats.items import ExportItem, ExportSummary, copy_photo, iter_items
from seglib.formats.polygons import outline_polygons
from seglib.labels.confidence import of_person
from seglib.labels.store import LABELS_CSV, LabelStore
from seglib.masks.trimap import OBJECT, load_trimap

COCO_JSON = Path("annotations") / "instances_default.json"
# Label Studio renames uploaded photos "<8 hex digits>-<name>"; the name is the photo's
UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-(?=.)")


# -- writing -------------------------------------------------------------------------------------
def mask_rle(mask: np.ndarray) -> dict:
    """``mask`` as COCO compressed RLE (pycocotools), ``counts`` as a str for JSON."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def mask_bbox(mask: np.ndarray) -> list[float]:
    """COCO ``[x, y, width, height]`` of the mask's pixels (all zeros for an empty mask)."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return [0.0, 0.0, 0.0, 0.0]
    return [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
            float(ys.max() - ys.min() + 1)]


def polygon_segmentation(mask: np.ndarray) -> list[list[float]]:
    """``mask`` as the COCO polygons an export with ``polygons=True`` writes."""
    return [[round(float(v), 3) for v in p.reshape(-1)] for p in outline_polygons(mask)]


def as_exported_polygons(mask: np.ndarray) -> np.ndarray | None:
    """The mask a tool reads back from :func:`polygon_segmentation` of ``mask`` (polygons
    are lossy: holes filled, corners cut); ``None`` for an empty mask (no annotation)."""
    if not mask.any():
        return None
    h, w = mask.shape
    return _decode(segmentation_rle(polygon_segmentation(mask), h, w))


def write_coco(items: list[ExportItem], out: Path, summary: ExportSummary, *,
               category: str = "object", polygons: bool = False,
               spread: dict | None = None) -> Path:
    """``OUT/annotations/instances_default.json`` and ``OUT/images/`` (see the module doc)."""
    images, annotations = [], []
    for it, trimap, image in iter_items(items, summary, "coco", **(spread or {})):
        mask = trimap == OBJECT
        h, w = mask.shape
        photo = copy_photo(it, image, out / "images" / it.photo.name)
        image_id = len(images) + 1
        images.append({"id": image_id, "file_name": photo.name, "width": w, "height": h})
        if not mask.any():
            continue
        if polygons:
            segmentation = polygon_segmentation(mask)
        else:
            segmentation = mask_rle(mask)
        annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                            "segmentation": segmentation, "area": float(mask.sum()),
                            "bbox": mask_bbox(mask), "iscrowd": 0, "attributes": {}})
    doc = {"info": {"description": "labels exported by seglib", "version": "1.0"},
           "licenses": [], "images": images, "annotations": annotations,
           "categories": [{"id": 1, "name": category, "supercategory": ""}]}
    path = out / COCO_JSON
    write_bytes_atomic(path, json.dumps(doc, ensure_ascii=False).encode("utf-8"))
    return path


# -- reading -------------------------------------------------------------------------------------
@dataclass
class CocoMask:
    """The union of one image's annotations, kept as compressed RLE (a few kB per photo,
    whatever its size) and decoded on demand."""

    stem: str
    file_name: str
    rle: dict  # pycocotools compressed RLE: {"size": [h, w], "counts": bytes}
    annotations: int

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.rle["size"][0]), int(self.rle["size"][1])

    @property
    def mask(self) -> np.ndarray:
        """The mask as bool H×W."""
        return _decode(self.rle)


@dataclass
class CocoFile:
    """What :func:`read_coco` found: masks by stem, and images it could not use (by name)."""

    path: Path
    masks: dict[str, CocoMask] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # file name -> reason
    without_annotations: list[str] = field(default_factory=list)  # file names
    categories: dict[int, str] = field(default_factory=dict)


def file_stem(file_name: str) -> str:
    """The stem of a COCO ``file_name`` (which may hold folders, with / or \\)."""
    return PureWindowsPath(str(file_name)).stem if "\\" in str(file_name) \
        else Path(str(file_name)).stem


def _decode(rle: dict) -> np.ndarray:
    from pycocotools import mask as mask_utils

    m = mask_utils.decode(rle)
    return (m[..., 0] if m.ndim == 3 else m).astype(bool)


def segmentation_rle(segmentation: object, height: int, width: int) -> dict:
    """One annotation's ``segmentation`` (polygons, uncompressed or compressed RLE) as a
    checked compressed RLE; raises ValueError if it is malformed."""
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, list):  # polygons [[x1, y1, x2, y2, ...], ...]
        polys = [[float(v) for v in p] for p in segmentation
                 if isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0]
        if not polys:
            raise ValueError("no polygon with 3 points or more")
        return mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
    if not (isinstance(segmentation, dict) and {"counts", "size"} <= set(segmentation)):
        raise ValueError("segmentation is neither polygons nor RLE")
    size = segmentation["size"]
    if not (isinstance(size, list) and len(size) == 2 and all(int(v) > 0 for v in size)):
        raise ValueError(f"RLE size must be [height, width], got {size!r}")
    h, w = int(size[0]), int(size[1])
    counts = segmentation["counts"]
    if isinstance(counts, list):  # uncompressed RLE
        if sum(int(c) for c in counts) != h * w:
            raise ValueError("RLE counts do not add up to height × width")
        return mask_utils.frPyObjects({"counts": [int(c) for c in counts], "size": [h, w]},
                                      h, w)
    if not isinstance(counts, (str, bytes)):
        raise ValueError(f"RLE counts must be a list or a string, got {type(counts).__name__}")
    rle = {"counts": counts.encode("ascii") if isinstance(counts, str) else counts,
           "size": [h, w]}
    m = mask_utils.decode(rle)  # a broken string raises, or decodes to values other than 0/1
    if m.max(initial=0) > 1 or int(m.sum()) != int(mask_utils.area(rle)):
        raise ValueError("RLE counts are not a valid mask")
    return rle


def _load_coco_json(path: Path) -> dict:
    """The parsed file, checked to be a COCO instances file (else a one-line error)."""
    try:
        doc = json.loads(path.read_bytes().decode("utf-8-sig"))
    except FileNotFoundError:
        raise SeglibError(f"{path}: file not found; pass the COCO JSON exported by CVAT or "
                          f"Label Studio") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SeglibError(f"{path}: not a readable JSON file ({exc}); pass a COCO instances "
                          f"file") from None
    if not (isinstance(doc, dict) and isinstance(doc.get("images"), list)
            and isinstance(doc.get("annotations"), list)):
        raise SeglibError(f"{path}: not a COCO instances file (it needs 'images' and "
                          f"'annotations' lists)")
    return doc


def _categories(doc: dict) -> dict[int, str]:
    """Category id -> name."""
    out: dict[int, str] = {}
    for c in doc.get("categories") or []:
        if isinstance(c, dict) and "id" in c:
            out[c["id"]] = str(c.get("name", ""))
    return out


def _wanted(path: Path, categories: dict[int, str], category: str | None) -> set | None:
    """The ids of the category named ``category`` (None: every category)."""
    if category is None:
        return None
    wanted = {i for i, n in categories.items() if n == category}
    if not wanted:
        names = ", ".join(sorted(set(categories.values()))) or "none"
        raise SeglibError(f"{path}: no category named '{category}' (categories: {names})")
    return wanted


def _images(doc: dict) -> dict[object, dict]:
    """Image id -> image entry, for the entries with an id and a file name."""
    images: dict[object, dict] = {}
    for im in doc["images"]:
        if isinstance(im, dict) and "id" in im and im.get("file_name"):
            images[im["id"]] = im
    return images


def _annotation_rle(ann: dict, im: dict) -> dict:
    """One annotation's mask as compressed RLE, checked against its image entry's size;
    raises (ValueError, or pycocotools' plain Exception) when it is unusable."""
    h, w = int(im.get("height") or 0), int(im.get("width") or 0)
    seg = ann.get("segmentation")
    if isinstance(seg, list) and (h <= 0 or w <= 0):
        raise ValueError("polygons need the image's width and height")
    m = segmentation_rle(seg, h, w)
    mh, mw = (int(v) for v in m["size"])
    if h > 0 and w > 0 and (mh, mw) != (h, w):
        raise ValueError(f"mask is {mw}×{mh} but the image entry says {w}×{h}")
    return m


def _merge_annotations(annotations: list, images: dict[object, dict], *, wanted: set | None,
                       problems: dict[str, str]) -> tuple[dict[object, dict], dict[object, int]]:
    """The union of each image's usable annotations (image id -> compressed RLE) and how
    many went into it; an image with a broken annotation is named in ``problems``."""
    from pycocotools import mask as mask_utils

    union: dict[object, dict] = {}  # image id -> compressed RLE
    count: dict[object, int] = {}
    for ann in annotations:
        if not isinstance(ann, dict):
            continue
        im = images.get(ann.get("image_id"))
        if im is None:
            problems[f"annotation {ann.get('id', '?')}"] = (
                f"names image id {ann.get('image_id')!r}, which the file does not list")
            continue
        if wanted is not None and ann.get("category_id") not in wanted:
            continue
        name = str(im["file_name"])
        if name in problems:
            continue
        try:
            m = _annotation_rle(ann, im)
        except Exception as exc:  # noqa: BLE001 - pycocotools raises plain Exception too
            problems[name] = f"annotation {ann.get('id', '?')}: {exc}"
            union.pop(im["id"], None)
            continue
        key = im["id"]
        if key in union and list(union[key]["size"]) != list(m["size"]):
            problems[name] = "annotations of different sizes"
            union.pop(key)
            continue
        union[key] = m if key not in union else mask_utils.merge([union[key], m],
                                                                 intersect=False)
        count[key] = count.get(key, 0) + 1
    return union, count


def _collect_masks(out: CocoFile, images: dict[object, dict], union: dict[object, dict],
                   count: dict[object, int]) -> None:
    """``out.masks`` by stem from the merged masks, in the file's image order; images
    without a mask go to ``out.without_annotations``, a second image of a stem to
    ``out.problems``."""
    for key, im in images.items():
        name = str(im["file_name"])
        if key not in union:
            if name not in out.problems:
                out.without_annotations.append(name)
            continue
        stem = file_stem(name)
        if stem in out.masks:
            out.problems[name] = f"another image of the file has the stem '{stem}'"
            continue
        out.masks[stem] = CocoMask(stem, name, union[key], count[key])


def read_coco(path: str | Path, category: str | None = None) -> CocoFile:
    """Masks by photo stem from the COCO instances file ``path`` (see the module doc).

    With ``category``, only annotations of the category of that name are read.
    """
    path = Path(path).expanduser()
    doc = _load_coco_json(path)
    out = CocoFile(path, categories=_categories(doc))
    wanted = _wanted(path, out.categories, category)
    images = _images(doc)
    union, count = _merge_annotations(doc["annotations"], images, wanted=wanted,
                                      problems=out.problems)
    _collect_masks(out, images, union, count)
    return out


# -- importing -----------------------------------------------------------------------------------
@dataclass
class ImportSummary:
    """What an import did, and the photos it could not import (by name, with the reason)."""

    coco: Path
    labels: Path
    imported: list[str] = field(default_factory=list)  # stems whose label was replaced
    unchanged: list[str] = field(default_factory=list)  # the mask equals the label already
    problems: dict[str, str] = field(default_factory=dict)  # file name -> reason (skipped)
    without_annotations: int = 0

    def describe(self) -> str:
        out = (f"imported {len(self.imported)} masks from {self.coco.name} into {self.labels} "
               f"({len(self.unchanged)} already equal to their label")
        if self.problems:
            out += f", {len(self.problems)} skipped"
        if self.without_annotations:
            out += f", {self.without_annotations} images without annotations left as they were"
        return out + ")"


def _check_label_folder(labels: Path) -> None:
    """Refuse a ``labels`` that is not a label folder."""
    if not labels.is_dir():
        raise SeglibError(f"{labels}: not a folder; pass the output folder of "
                          f"`python -m seglib label`")
    if not (labels / LABELS_CSV).is_file():
        raise SeglibError(f"{labels}: no {LABELS_CSV}; pass the output folder of "
                          f"`python -m seglib label`")


def _record_for(records: dict[str, Any], stem: str, cm: CocoMask, *, done: dict[str, str],
                labels: Path) -> tuple[Any, str]:
    """The label record of the photo a mask is for, or why there is none to import into
    (``done``: photo stem -> file name of the image imported for it, updated here)."""
    rec = records.get(stem) or records.get(UPLOAD_PREFIX.sub("", stem))
    if rec is None:
        return None, f"the label folder {labels} has no photo '{stem}'"
    if rec.stem in done:
        return None, f"{done[rec.stem]} is the photo '{rec.stem}' too"
    done[rec.stem] = cm.file_name
    if rec.status == "skipped":
        return None, f"its photo was skipped ({rec.reason})"
    return rec, ""


def _same_as_label(store: LabelStore, stem: str, mask: np.ndarray) -> bool:
    """Whether ``mask`` is the photo's label as export wrote it: the label itself (RLE is
    exact) or the label as polygons (``--polygons``; an untouched round trip changes
    nothing)."""
    try:
        label = load_trimap(store.trimap_path(stem)) == OBJECT
    except SeglibError:
        return False
    if label.shape != mask.shape:
        return False
    if np.array_equal(label, mask):
        return True
    polygons = as_exported_polygons(label)
    return polygons is not None and np.array_equal(polygons, mask)


def _import_mask(store: LabelStore, rec: Any, cm: CocoMask, *, source: str) -> tuple[str, str]:
    """Write ``cm`` as the label of ``rec``'s photo: ``("imported", "")``,
    ``("unchanged", "")`` when it equals the label already, or ``("skipped", why)``."""
    size = _photo_size(store, rec)
    if size is None:
        return "skipped", "its photo and its label are both missing"
    if cm.shape != size:
        return "skipped", (f"mask is {cm.shape[1]}×{cm.shape[0]} but the photo is "
                           f"{size[1]}×{size[0]}")
    mask = cm.mask
    if rec.status == "ok" and _same_as_label(store, rec.stem, mask):
        return "unchanged", ""
    store.write_label(rec.stem, mask, source="imported", **of_person()._asdict(),
                      status="ok", reason=f"imported from {source}")
    return "imported", ""


def _import_masks(store: LabelStore, coco: CocoFile, summary: ImportSummary) -> None:
    """Every mask of ``coco`` into the (locked, reloaded) ``store``, noted in ``summary``."""
    records = store.records()
    done: dict[str, str] = {}  # photo stem -> file name of the image imported for it
    for stem, cm in sorted(coco.masks.items()):
        rec, why = _record_for(records, stem, cm, done=done, labels=summary.labels)
        kind = "skipped"
        if rec is not None:
            kind, why = _import_mask(store, rec, cm, source=summary.coco.name)
        if kind == "skipped":
            summary.problems[cm.file_name] = why
        else:
            (summary.imported if kind == "imported" else summary.unchanged).append(rec.stem)
    overrides = store.overrides()
    if any(s in overrides for s in summary.imported):  # a choice among candidates is
        store.set_overrides({s: c for s, c in overrides.items()  # older than the mask
                             if s not in summary.imported})


def import_coco(labels: str | Path, coco_file: str | Path, *,
                category: str | None = None) -> ImportSummary:
    """Make the masks of ``coco_file`` the labels of their photos in the label folder
    ``labels`` (source ``imported``, confident, not flagged). Images the folder does not know,
    masks of another size than their photo and broken annotations are skipped and named in
    ``problems``; a mask equal to the photo's label already leaves the label as it was."""
    labels, coco_file = Path(labels).expanduser(), Path(coco_file).expanduser()
    _check_label_folder(labels)
    coco = read_coco(coco_file, category)
    summary = ImportSummary(coco_file, labels, problems=dict(coco.problems),
                            without_annotations=len(coco.without_annotations))
    store = LabelStore(labels)
    with store.lock():
        store.reload()  # what a run that held the lock wrote before
        _import_masks(store, coco, summary)
        store.save()
    return summary


def _photo_size(store: LabelStore, rec: Any) -> tuple[int, int] | None:
    """(height, width) of a record's photo: its trimap's size, else the photo read again."""
    try:
        return load_trimap(store.trimap_path(rec.stem)).shape[:2]
    except SeglibError:
        pass
    if store.images_dir is not None and rec.file:
        try:
            return read_image(Path(store.images_dir) / rec.file).shape[:2]
        except SeglibError:
            return None
    return None
