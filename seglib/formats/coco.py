"""Reading object masks from a COCO instances file (as CVAT, Label Studio and pycocotools write
it), matched to photos by file-name stem.

:func:`read_coco` is the one parser: it decodes every annotation's ``segmentation`` with
pycocotools, whether polygons, uncompressed RLE (``counts`` a list) or compressed RLE
(``counts`` a string), and merges the annotations of one image into one mask (their union).
Images without annotations are not returned (a file listing every photo of a task says
nothing about the ones nobody drew on); problems are kept per image, never raised, except for
a file that is not COCO at all.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath

import numpy as np

from seglib.core.errors import SeglibError

# Label Studio renames uploaded photos "<8 hex digits>-<name>"; the name is the photo's
UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-(?=.)")


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


def decode_segmentation(segmentation: object, height: int, width: int) -> np.ndarray:
    """One annotation's ``segmentation`` as a bool H×W mask (raises ValueError if malformed)."""
    return _decode(segmentation_rle(segmentation, height, width))


def read_coco(path: str | Path, category: str | None = None) -> CocoFile:
    """Masks by photo stem from the COCO instances file ``path`` (see the module doc).

    With ``category``, only annotations of the category of that name are read.
    """
    from pycocotools import mask as mask_utils

    path = Path(path).expanduser()
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
    out = CocoFile(path)
    for c in doc.get("categories") or []:
        if isinstance(c, dict) and "id" in c:
            out.categories[c["id"]] = str(c.get("name", ""))
    wanted = None
    if category is not None:
        wanted = {i for i, n in out.categories.items() if n == category}
        if not wanted:
            names = ", ".join(sorted(set(out.categories.values()))) or "none"
            raise SeglibError(f"{path}: no category named '{category}' (categories: {names})")
    images: dict[object, dict] = {}
    for im in doc["images"]:
        if isinstance(im, dict) and "id" in im and im.get("file_name"):
            images[im["id"]] = im
    union: dict[object, dict] = {}  # image id -> compressed RLE
    count: dict[object, int] = {}
    for ann in doc["annotations"]:
        if not isinstance(ann, dict):
            continue
        im = images.get(ann.get("image_id"))
        if im is None:
            out.problems[f"annotation {ann.get('id', '?')}"] = (
                f"names image id {ann.get('image_id')!r}, which the file does not list")
            continue
        if wanted is not None and ann.get("category_id") not in wanted:
            continue
        name = str(im["file_name"])
        if name in out.problems:
            continue
        try:
            h, w = int(im.get("height") or 0), int(im.get("width") or 0)
            seg = ann.get("segmentation")
            if isinstance(seg, list) and (h <= 0 or w <= 0):
                raise ValueError("polygons need the image's width and height")
            m = segmentation_rle(seg, h, w)
            mh, mw = (int(v) for v in m["size"])
            if h > 0 and w > 0 and (mh, mw) != (h, w):
                raise ValueError(f"mask is {mw}×{mh} but the image entry says {w}×{h}")
        except Exception as exc:  # noqa: BLE001 - pycocotools raises plain Exception too
            out.problems[name] = f"annotation {ann.get('id', '?')}: {exc}"
            union.pop(im["id"], None)
            continue
        key = im["id"]
        if key in union and list(union[key]["size"]) != list(m["size"]):
            out.problems[name] = "annotations of different sizes"
            union.pop(key)
            continue
        union[key] = m if key not in union else mask_utils.merge([union[key], m],
                                                                 intersect=False)
        count[key] = count.get(key, 0) + 1
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
    return out


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


def import_coco(labels: str | Path, coco_file: str | Path, *,
                category: str | None = None) -> ImportSummary:
    """Make the masks of ``coco_file`` the labels of their photos in the label folder
    ``labels`` (source ``imported``, confident, not flagged). Images the folder does not know,
    masks of another size than their photo and broken annotations are skipped and named in
    ``problems``; a mask equal to the photo's label already leaves the label as it was."""
    from seglib.labels.confidence import of_person
    from seglib.labels.store import LABELS_CSV, LabelStore
    from seglib.masks.trimap import OBJECT, load_trimap

    labels, coco_file = Path(labels).expanduser(), Path(coco_file).expanduser()
    if not labels.is_dir():
        raise SeglibError(f"{labels}: not a folder; pass the output folder of "
                          f"`python -m seglib label`")
    if not (labels / LABELS_CSV).is_file():
        raise SeglibError(f"{labels}: no {LABELS_CSV}; pass the output folder of "
                          f"`python -m seglib label`")
    coco = read_coco(coco_file, category)
    summary = ImportSummary(coco_file, labels, problems=dict(coco.problems),
                            without_annotations=len(coco.without_annotations))
    store = LabelStore(labels)
    with store.lock():
        store.reload()  # what a run that held the lock wrote before
        records = store.records()
        done: dict[str, str] = {}  # photo stem -> file name of the image imported for it
        for stem, cm in sorted(coco.masks.items()):
            rec = records.get(stem) or records.get(UPLOAD_PREFIX.sub("", stem))
            if rec is None:
                summary.problems[cm.file_name] = f"the label folder {labels} has no photo " \
                                                 f"'{stem}'"
                continue
            if rec.stem in done:
                summary.problems[cm.file_name] = f"{done[rec.stem]} is the photo " \
                                                 f"'{rec.stem}' too"
                continue
            done[rec.stem] = cm.file_name
            if rec.status == "skipped":
                summary.problems[cm.file_name] = f"its photo was skipped ({rec.reason})"
                continue
            size = _photo_size(store, rec)
            if size is None:
                summary.problems[cm.file_name] = "its photo and its label are both missing"
                continue
            if cm.shape != size:
                summary.problems[cm.file_name] = (
                    f"mask is {cm.shape[1]}×{cm.shape[0]} but the photo is "
                    f"{size[1]}×{size[0]}")
                continue
            trimap_path = store.trimap_path(rec.stem)
            mask = cm.mask
            try:
                same = rec.status == "ok" and np.array_equal(
                    load_trimap(trimap_path) == OBJECT, mask)
            except SeglibError:
                same = False
            if same:
                summary.unchanged.append(rec.stem)
                continue
            store.write_label(rec.stem, mask, source="imported", **of_person()._asdict(),
                              status="ok", reason=f"imported from {coco_file.name}")
            summary.imported.append(rec.stem)
        overrides = store.overrides()
        if any(s in overrides for s in summary.imported):  # a choice among candidates is
            store.set_overrides({s: c for s, c in overrides.items()  # older than the mask
                                 if s not in summary.imported})
        store.save()
    return summary


def _photo_size(store, rec) -> tuple[int, int] | None:
    """(height, width) of a record's photo: its trimap's size, else the photo read again."""
    from seglib.core.images import read_image
    from seglib.masks.trimap import load_trimap

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
