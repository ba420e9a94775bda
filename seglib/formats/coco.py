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

Nothing hostile reaches pycocotools (C code that hangs, eats memory or crashes on it): every
annotation is checked first (:func:`segmentation_rle`), and one that fails is a problem line
for its image: ids that are not a number or a text, image sizes no photo has (a side above
65535 or more than 2**28 pixels), polygon coordinates that are not finite numbers within a
photo's width/height of the image, RLE counts that are negative, not whole, or hold
characters compressed RLE does not use. An annotation with an empty mask (0 area) is skipped
with its reason (an image with nothing else is a problem, never an empty label). Without
``category``, a category named like the background (``background``, ``bg``, ``void`` ...) is
left out, and the summary says which categories were taken.
"""

from __future__ import annotations

import json
import re
import unicodedata
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
from seglib.labels.store import LABELS_CSV, PERSON_SOURCES, LabelStore
from seglib.masks.trimap import OBJECT, load_trimap

COCO_JSON = Path("annotations") / "instances_default.json"
MAX_SIDE = 65_535  # a COCO image side above this is not a photo's
MAX_PIXELS = 1 << 28
MAX_POINTS = 1_000_000  # polygon vertices of one annotation
RLE_CHARS = frozenset(chr(c) for c in range(48, 48 + 64))  # compressed RLE's alphabet
BACKGROUND_NAMES = frozenset({"background", "_background_", "__background__", "bg", "void",
                              "ignore", "unlabeled", "unlabelled"})
# Label Studio renames uploaded photos "<8 hex digits>-<name>"; the name is the photo's
UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-(?=.)")
# labels import keeps unless --replace-kept: a person's (refined labels are machine-made; the
# loop export -> fix in CVAT -> import corrects them)
IMPORT_KEEPS = tuple(s for s in PERSON_SOURCES if s != "refined")


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
    notes: list[str] = field(default_factory=list)  # e.g. which categories were taken


def file_stem(file_name: str) -> str:
    """The stem of a COCO ``file_name`` (which may hold folders, with / or \\)."""
    return PureWindowsPath(str(file_name)).stem if "\\" in str(file_name) \
        else Path(str(file_name)).stem


def _decode(rle: dict) -> np.ndarray:
    from pycocotools import mask as mask_utils

    m = mask_utils.decode(rle)
    return (m[..., 0] if m.ndim == 3 else m).astype(bool)


def coco_key(value: object) -> int | str | None:
    """An id as COCO writes it (a whole number or a text), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, str)):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _whole(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value) if float(value).is_integer() else None


def checked_size(height: object, width: object) -> tuple[int, int]:
    """``(height, width)`` when they are a photo's size; raises ValueError in one line."""
    h, w = _whole(height), _whole(width)
    if h is None or w is None or not (0 < h <= MAX_SIDE and 0 < w <= MAX_SIDE) \
            or h * w > MAX_PIXELS:
        raise ValueError(f"image size {width!r}×{height!r} is not a photo's size (whole "
                         f"numbers, 1 to {MAX_SIDE} a side)")
    return h, w


def _checked_polygons(segmentation: list, height: int, width: int) -> list[list[float]]:
    """Polygons whose coordinates are finite numbers within a photo's size of the image;
    raises ValueError naming the first bad coordinate."""
    polys = [p for p in segmentation if isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0]
    if not polys:
        raise ValueError("no polygon with 3 points or more")
    if sum(len(p) for p in polys) > 2 * MAX_POINTS:
        raise ValueError(f"polygons with more than {MAX_POINTS} points")
    for p in polys:
        for i, v in enumerate(p):
            side = width if i % 2 == 0 else height
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and \
                np.isfinite(v) and -side <= v <= 2 * side
            if not ok:
                raise ValueError(f"polygon coordinate {v!r} is not a number within the "
                                 f"image ({width}×{height})")
    return [[float(v) for v in p] for p in polys]


def _checked_counts(counts: object, h: int, w: int) -> list[int] | bytes:
    """RLE counts: whole numbers ≥ 0 adding up to h×w, or a compressed RLE string."""
    if isinstance(counts, list):  # uncompressed RLE
        whole = [_whole(c) for c in counts]
        if any(c is None or c < 0 for c in whole):
            raise ValueError("RLE counts hold a negative or not whole number")
        if sum(whole) != h * w:  # type: ignore[arg-type]
            raise ValueError("RLE counts do not add up to height × width")
        return whole  # type: ignore[return-value]
    if isinstance(counts, bytes):
        counts = counts.decode("latin-1")
    if not isinstance(counts, str):
        raise ValueError(f"RLE counts must be a list or a string, got {type(counts).__name__}")
    if not counts:
        raise ValueError("RLE counts are empty")
    if not set(counts) <= RLE_CHARS:
        raise ValueError("RLE counts hold characters COCO's compressed RLE does not use")
    return counts.encode("ascii")


def segmentation_rle(segmentation: object, height: int, width: int) -> dict:
    """One annotation's ``segmentation`` (polygons, uncompressed or compressed RLE) as a
    checked compressed RLE; raises ValueError if it is malformed (checked before pycocotools
    sees it)."""
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, list):  # polygons [[x1, y1, x2, y2, ...], ...]
        height, width = checked_size(height, width)
        polys = _checked_polygons(segmentation, height, width)
        return mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
    if not (isinstance(segmentation, dict) and {"counts", "size"} <= set(segmentation)):
        raise ValueError("segmentation is neither polygons nor RLE")
    size = segmentation["size"]
    if not (isinstance(size, list) and len(size) == 2):
        raise ValueError(f"RLE size must be [height, width], got {size!r}")
    h, w = checked_size(*size)
    counts = _checked_counts(segmentation["counts"], h, w)
    if isinstance(counts, list):
        return mask_utils.frPyObjects({"counts": counts, "size": [h, w]}, h, w)
    rle = {"counts": counts, "size": [h, w]}
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


def _categories(doc: dict) -> dict[int | str, str]:
    """Category id -> name (entries without a usable id are left out)."""
    out: dict[int | str, str] = {}
    for c in doc.get("categories") or []:
        key = coco_key(c.get("id")) if isinstance(c, dict) else None
        if key is not None:
            out[key] = str(c.get("name", ""))
    return out


def _wanted(path: Path, categories: dict[int | str, str], category: str | None,
            notes: list[str]) -> tuple[set | None, set]:
    """The ids of the category named ``category`` (None: every category) and the ids left
    out: without ``category``, those named like the background (said in ``notes``)."""
    if category is not None:
        wanted = {i for i, n in categories.items() if n == category}
        if not wanted:
            names = ", ".join(sorted(set(categories.values()))) or "none"
            raise SeglibError(f"{path}: no category named '{category}' (categories: {names})")
        return wanted, set()
    background = {i for i, n in categories.items() if n.strip().lower() in BACKGROUND_NAMES}
    taken = sorted({n for i, n in categories.items() if i not in background})
    if background:
        left = sorted({categories[i] for i in background})
        notes.append(f"left out the background categor{'y' if len(left) == 1 else 'ies'} "
                     f"{', '.join(left)}; took {', '.join(taken) or 'none'} as the object")
    elif len(taken) > 1:
        notes.append(f"merged the categories {', '.join(taken)} into the object; pass "
                     "--category NAME to take one")
    return None, background


def _images(doc: dict, problems: dict[str, str]) -> dict[object, dict]:
    """Image id -> image entry, for the entries with an id and a file name (an id that is
    not a number or a text is a problem of that image)."""
    images: dict[object, dict] = {}
    for im in doc["images"]:
        if isinstance(im, dict) and "id" in im and im.get("file_name"):
            key = coco_key(im["id"])
            if key is None:
                problems[str(im["file_name"])] = (f"its id {im['id']!r} is not a number or "
                                                  "a text")
                continue
            images[key] = im
    return images


def _annotation_rle(ann: dict, im: dict) -> dict:
    """One annotation's mask as compressed RLE, checked against its image entry's size;
    raises (ValueError, or pycocotools' plain Exception) when it is unusable."""
    h, w = im.get("height"), im.get("width")
    seg = ann.get("segmentation")
    if not h and not w and isinstance(seg, list):
        raise ValueError("polygons need the image's width and height")
    if h or w:
        h, w = checked_size(h, w)
    m = segmentation_rle(seg, h, w)
    mh, mw = (int(v) for v in m["size"])
    if h and w and (mh, mw) != (h, w):
        raise ValueError(f"mask is {mw}×{mh} but the image entry says {w}×{h}")
    return m


@dataclass
class _Union:
    """The union of each image's usable annotations as it is built (image id -> compressed
    RLE), how many went into each, and the empty ones skipped (image id -> reason)."""

    masks: dict[object, dict] = field(default_factory=dict)
    count: dict[object, int] = field(default_factory=dict)
    empty: dict[object, str] = field(default_factory=dict)


def _image_of(ann: dict, images: dict[object, dict], problems: dict[str, str]) -> dict | None:
    """The image entry an annotation names, or None (named in ``problems``)."""
    key = coco_key(ann.get("image_id"))
    im = images.get(key) if key is not None else None
    if im is None:
        problems[f"annotation {ann.get('id', '?')!r}"] = (
            f"names image id {ann.get('image_id')!r}, which the file does not list")
    return im


def _merge_annotations(annotations: list, images: dict[object, dict], *, wanted: set | None,
                       excluded: set, problems: dict[str, str]) -> _Union:
    """The union of each image's usable annotations; an image with a broken annotation is
    named in ``problems``, an empty annotation is skipped with its reason."""
    from pycocotools import mask as mask_utils

    out = _Union()
    for ann in annotations:
        if not isinstance(ann, dict):
            continue
        im = _image_of(ann, images, problems)
        cat = coco_key(ann.get("category_id"))
        if cat is None and ann.get("category_id") is not None:
            problems[f"annotation {ann.get('id', '?')!r}"] = (
                f"its category_id {ann.get('category_id')!r} is not a number or a text")
            continue
        if im is None or (wanted is not None and cat not in wanted) or cat in excluded:
            continue
        name, key = str(im["file_name"]), coco_key(im["id"])
        if name in problems:
            continue
        try:
            m = _annotation_rle(ann, im)
        except Exception as exc:  # noqa: BLE001 - pycocotools raises plain Exception too
            problems[name] = f"annotation {ann.get('id', '?')!r}: {exc}".replace("\n", " ")
            out.masks.pop(key, None)
            continue
        if not int(mask_utils.area(m)):
            out.empty.setdefault(key, f"annotation {ann.get('id', '?')!r}: an empty mask (0 "
                                      "area); skipped")
            continue
        if key in out.masks and list(out.masks[key]["size"]) != list(m["size"]):
            problems[name] = "annotations of different sizes"
            out.masks.pop(key)
            continue
        out.masks[key] = m if key not in out.masks else mask_utils.merge(
            [out.masks[key], m], intersect=False)
        out.count[key] = out.count.get(key, 0) + 1
    return out


def _collect_masks(out: CocoFile, images: dict[object, dict], union: _Union) -> None:
    """``out.masks`` by stem from the merged masks, in the file's image order; images
    without a mask go to ``out.without_annotations`` (to ``out.problems`` when their only
    annotations were empty), a second image of a stem to ``out.problems``."""
    for key, im in images.items():
        name = str(im["file_name"])
        if key not in union.masks:
            if name in out.problems:
                continue
            if key in union.empty:
                out.problems[name] = union.empty[key]
            else:
                out.without_annotations.append(name)
            continue
        stem = file_stem(name)
        if stem in out.masks:
            out.problems[name] = f"another image of the file has the stem '{stem}'"
            continue
        out.masks[stem] = CocoMask(stem, name, union.masks[key], union.count[key])


def read_coco(path: str | Path, category: str | None = None) -> CocoFile:
    """Masks by photo stem from the COCO instances file ``path`` (see the module doc).

    With ``category``, only annotations of the category of that name are read.
    """
    path = Path(path).expanduser()
    doc = _load_coco_json(path)
    out = CocoFile(path, categories=_categories(doc))
    wanted, excluded = _wanted(path, out.categories, category, out.notes)
    images = _images(doc, out.problems)
    union = _merge_annotations(doc["annotations"], images, wanted=wanted, excluded=excluded,
                               problems=out.problems)
    _collect_masks(out, images, union)
    return out


# -- importing -----------------------------------------------------------------------------------
@dataclass
class ImportSummary:
    """What an import did, and the photos it could not import (by name, with the reason)."""

    coco: Path
    labels: Path
    imported: list[str] = field(default_factory=list)  # stems whose label was replaced
    unchanged: list[str] = field(default_factory=list)  # the mask equals the label already
    kept: list[str] = field(default_factory=list)  # a person's label the mask differs from
    kept_sources: dict[str, int] = field(default_factory=dict)  # source -> labels kept
    problems: dict[str, str] = field(default_factory=dict)  # file name -> reason (skipped)
    without_annotations: int = 0
    notes: list[str] = field(default_factory=list)  # e.g. which categories were taken

    def describe(self) -> str:
        out = (f"imported {len(self.imported)} masks from {self.coco.name} into {self.labels} "
               f"({len(self.unchanged)} already equal to their label")
        if self.problems:
            out += f", {len(self.problems)} skipped"
        if self.without_annotations:
            out += f", {self.without_annotations} images without annotations left as they were"
        out += ")"
        if self.kept:
            kinds = ", ".join(f"{n} {s}" for s, n in sorted(self.kept_sources.items()))
            out += (f"; kept {len(self.kept)} labels a person made ({kinds}; e.g. "
                    f"{', '.join(self.kept[:3])}) that differ from the file's masks: "
                    "`import --replace-kept` replaces them")
        return out + "".join(f"; {n}" for n in self.notes)

    @property
    def nothing_imported(self) -> bool:
        """Nothing imported, kept or found equal, and masks were skipped: every mask of the
        file had a problem (a file read fine that changes nothing is not this)."""
        return not (self.imported or self.unchanged or self.kept) and bool(self.problems)


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
    rec = None
    for name in (stem, UPLOAD_PREFIX.sub("", stem)):
        rec = records.get(name) or records.get(_nfc(name))
        if rec is not None:
            break
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


def _nfc(name: str) -> str:
    """``name`` in Unicode NFC (macOS and some tools write names decomposed, NFD)."""
    return unicodedata.normalize("NFC", name)


def _person_label(store: LabelStore, rec: Any) -> str:
    """The source of ``rec``'s label when a person made it (``IMPORT_KEEPS``; a trimap whose
    bytes changed since seglib wrote it is ``edited`` also before a label run recorded it),
    else ``""``."""
    if rec.status != "ok":
        return ""
    if store.trimap_state(rec.stem) == "changed":
        return "edited"
    return rec.source if rec.source in IMPORT_KEEPS else ""


def _import_mask(store: LabelStore, rec: Any, cm: CocoMask, *, source: str,
                 replace_kept: bool = False) -> tuple[str, str]:
    """Write ``cm`` as the label of ``rec``'s photo: ``("imported", "")``,
    ``("unchanged", "")`` when it equals the label already, ``("kept", SOURCE)`` for a label
    a person made (unless ``replace_kept``), or ``("skipped", why)``."""
    size = _photo_size(store, rec)
    if size is None:
        return "skipped", "its photo and its label are both missing"
    if cm.shape != size:
        return "skipped", (f"mask is {cm.shape[1]}×{cm.shape[0]} but the photo is "
                           f"{size[1]}×{size[0]}")
    mask = cm.mask
    if rec.status == "ok" and _same_as_label(store, rec.stem, mask):
        return "unchanged", ""
    person = _person_label(store, rec)
    if person and not replace_kept:
        return "kept", person
    store.write_label(rec.stem, mask, source="imported", **of_person()._asdict(),
                      status="ok", reason=f"imported from {source}")
    return "imported", ""


def _import_masks(store: LabelStore, coco: CocoFile, summary: ImportSummary, *,
                  replace_kept: bool = False) -> None:
    """Every mask of ``coco`` into the (locked, reloaded) ``store``, noted in ``summary``."""
    records = store.records()
    records.update({_nfc(s): r for s, r in store.records().items() if _nfc(s) not in records})
    done: dict[str, str] = {}  # photo stem -> file name of the image imported for it
    for stem, cm in sorted(coco.masks.items()):
        rec, why = _record_for(records, stem, cm, done=done, labels=summary.labels)
        kind = "skipped"
        if rec is not None:
            kind, why = _import_mask(store, rec, cm, source=summary.coco.name,
                                     replace_kept=replace_kept)
        if kind == "skipped":
            summary.problems[cm.file_name] = why
        elif kind == "kept":
            summary.kept.append(rec.stem)
            summary.kept_sources[why] = summary.kept_sources.get(why, 0) + 1
        else:
            (summary.imported if kind == "imported" else summary.unchanged).append(rec.stem)
    overrides = store.overrides()
    if any(s in overrides for s in summary.imported):  # a choice among candidates is
        store.set_overrides({s: c for s, c in overrides.items()  # older than the mask
                             if s not in summary.imported})


def import_coco(labels: str | Path, coco_file: str | Path, *,
                category: str | None = None, replace_kept: bool = False) -> ImportSummary:
    """Make the masks of ``coco_file`` the labels of their photos in the label folder
    ``labels`` (source ``imported``, confident, not flagged). Images the folder does not know
    (stems compared also in Unicode NFC: macOS names), masks of another size than their photo
    and broken annotations are skipped and named in ``problems``; a mask equal to the photo's
    label already leaves the label as it was. A label a person made (override, edited,
    imported) that the mask differs from is kept (``kept``) unless ``replace_kept``."""
    labels, coco_file = Path(labels).expanduser(), Path(coco_file).expanduser()
    _check_label_folder(labels)
    coco = read_coco(coco_file, category)
    summary = ImportSummary(coco_file, labels, problems=dict(coco.problems),
                            without_annotations=len(coco.without_annotations),
                            notes=list(coco.notes))
    store = LabelStore(labels)
    with store.lock():
        store.reload()  # what a run that held the lock wrote before
        _import_masks(store, coco, summary, replace_kept=replace_kept)
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
