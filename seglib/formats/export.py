"""A label folder in the formats other tools read: COCO, YOLO, Oxford-IIIT Pet, Pascal VOC.

The object is trimap label 1 (the border ring, label 3, counts as background except in the
Oxford-IIIT Pet trimaps, which keep it, and in VOC, where it is 255 "void"). One function per
format, :func:`write_coco`, :func:`write_yolo`, :func:`write_oxford_pet` and
:func:`write_voc`, each fed by :func:`iter_items` (the shared loop: reads each trimap, checks
it against its photo's size, shows progress). :func:`export_labels` chooses the photos (no
skipped photos; with ``only_confident`` no flagged labels), splits them into train and val
by a seeded hash of the stem (a photo stays in its split when the folder grows), and calls
the format's writer.

``OUT`` (the ``--out`` folder) is new, empty, or holds an earlier export of the same format,
which is replaced: ``OUT/seglib-export.json`` lists the files an export wrote, and they are
removed before the next one writes (a photo left out this time does not linger).

Layouts:

- ``coco``: ``OUT/annotations/instances_default.json`` and ``OUT/images/`` (CVAT's "COCO 1.0"
  layout): one annotation per photo, the whole object as RLE (``polygons=True``: polygons,
  for Label Studio), bbox and area from the mask, ``iscrowd`` 0.
- ``yolo``: ``OUT/images/{train,val}/``, ``OUT/labels/{train,val}/*.txt`` (``0 x1 y1 x2 y2
  ...`` normalised, one line per connected part), ``OUT/data.yaml`` (Ultralytics).
- ``oxford-pet``: ``OUT/oxford-iiit-pet/images/*.jpg``, ``annotations/trimaps/*.png``,
  ``annotations/trainval.txt`` and ``test.txt`` (torchvision's ``OxfordIIITPet``).
- ``voc``: ``OUT/VOCdevkit/VOC2012/JPEGImages/*.jpg``, ``SegmentationClass/*.png`` (palette
  PNG: 0 background, 1 object, 255 border), ``ImageSets/Segmentation/{train,val,trainval}.txt``
  (torchvision's ``VOCSegmentation(OUT, year="2012")``).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from seglib.core.errors import ImageReadError, SeglibError
from seglib.core.files import encode_png, file_sha256, write_bytes_atomic, write_jpeg_atomic
from seglib.core.images import read_image
from seglib.core.parallel import map_photos
from seglib.core.settings import check
from seglib.labels.store import LABELS_CSV, LabelStore
from seglib.masks.trimap import BORDER, OBJECT, load_trimap

FORMATS = ("coco", "yolo", "oxford-pet", "voc")
SPLIT_SEED = 0
COCO_JSON = Path("annotations") / "instances_default.json"
VOC_ROOT = Path("VOCdevkit") / "VOC2012"
PET_ROOT = Path("oxford-iiit-pet")
VOID = 255  # VOC's "void" label, for the border ring
JPEG_SUFFIXES = (".jpg", ".jpeg")
EXPORT_JSON = "seglib-export.json"  # in OUT: the format and the files of the export


@dataclass
class ExportItem:
    """One photo to export: its label, its photo file and its split."""

    stem: str
    photo: Path
    trimap: Path
    split: str = "train"  # "train" | "val"


@dataclass
class ExportSummary:
    """What an export wrote and what it left out (and why)."""

    fmt: str
    out: Path
    target: Path  # the file or folder a tool opens
    split: Counter = field(default_factory=Counter)  # "train"/"val" -> photos written
    left_out: Counter = field(default_factory=Counter)  # reason -> photos
    problems: list[str] = field(default_factory=list)  # "NAME: reason" of unusable files

    @property
    def exported(self) -> int:
        return sum(self.split.values())

    def describe(self) -> str:
        val = "test" if self.fmt == "oxford-pet" else "val"
        out = (f"exported {self.exported} photos as {self.fmt} to {self.target} "
               f"({self.split['train']} train, {self.split['val']} {val})")
        if self.fmt in READ_WITH:
            out += f"; read it with {READ_WITH[self.fmt].format(root=str(self.out))}"
        if self.left_out:
            out += "; left out: " + ", ".join(f"{n} {why}" for why, n in
                                              sorted(self.left_out.items()))
        return out


# -- choosing the photos -------------------------------------------------------------------------
def split_of(stem: str, val: float, seed: int = SPLIT_SEED) -> str:
    """``"val"`` for about a fraction ``val`` of stems, by a seeded hash of the stem alone."""
    h = hashlib.sha256(f"{seed}:{stem}".encode("utf-8", "surrogateescape")).digest()
    return "val" if int.from_bytes(h[:8], "big") / 2**64 < val else "train"


def assign_splits(items: list[ExportItem], val: float, seed: int = SPLIT_SEED) -> None:
    """Set each item's split; with ``val`` > 0 and two photos or more, at least one is val."""
    val = check("val", val, "--val")
    for it in items:
        it.split = split_of(it.stem, val, seed)
    if val > 0 and len(items) > 1 and not any(it.split == "val" for it in items):
        key = {it.stem: hashlib.sha256(f"{seed}:{it.stem}".encode("utf-8", "surrogateescape"))
               .digest() for it in items}
        min(items, key=lambda it: key[it.stem]).split = "val"


def _find_photo(photos: Path, stem: str, file: str) -> Path | None:
    if file and (photos / file).is_file():
        return photos / file
    for suffix in (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG"):
        if (photos / f"{stem}{suffix}").is_file():
            return photos / f"{stem}{suffix}"
    return None


def choose_items(labels: Path, photos: Path, records: list, *, only_confident: bool,
                 summary: ExportSummary) -> list[ExportItem]:
    """The label records worth exporting, with their photo; the others are counted in
    ``summary.left_out`` (and named in ``summary.problems`` when a file is missing)."""
    items = []
    for r in sorted(records, key=lambda r: r.stem):
        if r.status != "ok":
            summary.left_out[f"{r.status} photos"] += 1
            continue
        if only_confident and r.flagged:
            summary.left_out["flagged"] += 1
            continue
        trimap = labels / f"{r.stem}.png"
        if not trimap.is_file():
            summary.left_out["without trimap"] += 1
            summary.problems.append(f"{r.stem}: no trimap {trimap.name} in {labels}")
            continue
        photo = _find_photo(photos, r.stem, r.file)
        if photo is None:
            summary.left_out["photo not found"] += 1
            summary.problems.append(f"{r.file or r.stem}: photo not found in {photos}")
            continue
        if r.photo_hash and file_sha256(photo) != r.photo_hash:
            summary.left_out["photo changed"] += 1
            summary.problems.append(f"{photo.name}: the photo changed since it was labeled; "
                                    f"label it again (`label --overwrite`)")
            continue
        items.append(ExportItem(r.stem, photo, trimap))
    return items


# -- the shared loop -----------------------------------------------------------------------------
def read_item(it: ExportItem) -> tuple[np.ndarray, np.ndarray] | str:
    """One item's trimap and photo (RGB, as seglib reads it), or why it is left out."""
    try:
        return load_trimap(it.trimap), read_image(it.photo)
    except (SeglibError, ImageReadError) as exc:
        return str(exc)


def iter_items(items: list[ExportItem], summary: ExportSummary, desc: str, *,
               workers: int | None = None, engine: str = "local", address: str | None = None,
               ) -> Iterator[tuple[ExportItem, np.ndarray, np.ndarray]]:
    """Each usable item with its trimap and its photo (RGB, as seglib reads it), in order;
    unreadable files and trimaps of another size are left out with the reason.
    ``workers``/``engine``/``address`` read and decode them in parallel
    (:mod:`seglib.core.parallel`)."""
    with tqdm(total=len(items), desc=desc, unit="photo") as bar:
        for done in map_photos(read_item, items, workers=workers, engine=engine,
                               address=address, ordered=True):
            bar.update()
            it = done.item
            got = done.value if done.ok else f"{it.photo}: {done.error}"
            if isinstance(got, str):
                summary.left_out["unreadable"] += 1
                summary.problems.append(got)
                continue
            trimap, image = got
            if trimap.shape != image.shape[:2]:
                summary.left_out["size differs"] += 1
                summary.problems.append(
                    f"{it.trimap}: trimap is {trimap.shape[1]}×{trimap.shape[0]} but its photo "
                    f"is {image.shape[1]}×{image.shape[0]}; relabel the photo")
                continue
            summary.split[it.split] += 1
            yield it, trimap, image


def _exif_rotated(path: Path) -> bool:
    """True when a JPEG's EXIF orientation asks viewers to rotate or mirror it."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            return im.getexif().get(0x0112, 1) not in (0, 1)
    except Exception:  # noqa: BLE001 - unreadable EXIF: re-encode to be safe
        return True


def copy_photo(it: ExportItem, image: np.ndarray, dest: Path, *, jpeg: bool = False) -> Path:
    """The photo at ``dest`` (its suffix kept, or ``.jpg`` with ``jpeg``): the original bytes
    when they show the same pixels as the label was drawn on, else re-encoded from ``image``."""
    suffix = ".jpg" if jpeg else it.photo.suffix.lower()
    dest = dest.with_suffix(suffix)
    same_kind = it.photo.suffix.lower() in JPEG_SUFFIXES if jpeg else True
    if same_kind and not (it.photo.suffix.lower() in JPEG_SUFFIXES and _exif_rotated(it.photo)):
        return write_bytes_atomic(dest, it.photo.read_bytes())
    if suffix in JPEG_SUFFIXES:
        return write_jpeg_atomic(dest, image, quality=95)
    return write_bytes_atomic(dest, encode_png(image))


def safe_name(stem: str) -> str:
    """A stem without white space (the Oxford-IIIT Pet and VOC lists split lines on it)."""
    return re.sub(r"\s+", "_", stem.strip()) or "_"


def _unique_names(items: list[ExportItem], summary: ExportSummary) -> list[tuple[ExportItem, str]]:
    seen: dict[str, str] = {}
    out = []
    for it in items:
        name = safe_name(it.stem)
        if name in seen:
            summary.left_out["name clash"] += 1
            summary.problems.append(f"{it.photo.name}: becomes '{name}' like {seen[name]}; "
                                    f"rename one of them")
            continue
        seen[name] = it.photo.name
        out.append((it, name))
    return out


# -- masks as polygons and RLE -------------------------------------------------------------------
def mask_polygons(mask: np.ndarray, epsilon: float = 0.5) -> list[np.ndarray]:
    """The outer contours of every connected part of ``mask`` as (N, 2) arrays of pixel
    (x, y), at least 3 points each, the largest part first (a tool that reads one polygon
    per object gets the main one); ``epsilon`` (pixels) drops the points that lie within
    that distance of the simplified outline (0.5: object IoU 0.9985 on the sample's
    labels). Holes are filled (polygon formats have none)."""
    m = np.ascontiguousarray(mask, dtype=np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    contours = sorted(contours, key=lambda c: -cv2.contourArea(c))
    out = []
    for c in contours:
        if epsilon > 0:
            c = cv2.approxPolyDP(c, epsilon, True)
        pts = c.reshape(-1, 2)
        if len(pts) >= 3:
            out.append(pts)
        elif len(pts) > 0:  # a part 1 or 2 pixels thick along a line: its box as a polygon
            x0, y0 = pts.min(0)
            x1, y1 = pts.max(0)
            out.append(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))
    return out


def outline_polygons(mask: np.ndarray, epsilon: float = 0.5) -> list[np.ndarray]:
    """Polygons in continuous image coordinates (pixel ``i`` spans ``i`` to ``i + 1``), as
    COCO tools (pycocotools, CVAT, Label Studio) draw them: the contours of the mask drawn
    4× larger, so each polygon runs 1/8 pixel inside the outline of its pixels, and the
    pixels it encloses are the mask's (:func:`mask_polygons` runs through pixel centres,
    as ``cv2.fillPoly`` and Ultralytics draw polygons)."""
    h, w = mask.shape
    f = 4 if h * w <= 4_000_000 else 2 if h * w <= 16_000_000 else 1
    big = cv2.resize(np.ascontiguousarray(mask, dtype=np.uint8), (w * f, h * f),
                     interpolation=cv2.INTER_NEAREST)
    return [(p + 0.5) / f for p in mask_polygons(big, epsilon * f)]


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


# -- the formats ---------------------------------------------------------------------------------
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
            segmentation = [[round(float(v), 3) for v in p.reshape(-1)]
                            for p in outline_polygons(mask)]
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


def write_yolo(items: list[ExportItem], out: Path, summary: ExportSummary, *,
               category: str = "object",
               spread: dict | None = None) -> Path:
    """Ultralytics segmentation layout: ``images/``, ``labels/``, ``data.yaml``."""
    for it, trimap, image in iter_items(items, summary, "yolo", **(spread or {})):
        mask = trimap == OBJECT
        h, w = mask.shape
        copy_photo(it, image, out / "images" / it.split / it.photo.name)
        lines = []
        for p in mask_polygons(mask):
            xy = p.astype(np.float64) / (w, h)
            lines.append("0 " + " ".join(f"{v:.6f}" for v in xy.reshape(-1)))
        write_bytes_atomic(out / "labels" / it.split / f"{it.photo.stem}.txt",
                           "".join(f"{line}\n" for line in lines).encode("utf-8"))
    # no "path": Ultralytics then reads the folders next to this file, wherever it is moved;
    # it needs a val set, so without val photos (--val 0) it validates on the training photos
    val = "images/val" if summary.split["val"] else "images/train"
    text = (f"# Ultralytics segmentation data set exported by seglib\n"
            f"train: images/train\nval: {val}\nnames:\n  0: {json.dumps(category)}\n")
    return write_bytes_atomic(out / "data.yaml", text.encode("utf-8"))


def write_oxford_pet(items: list[ExportItem], out: Path, summary: ExportSummary, *,
                     category: str = "object",
                     spread: dict | None = None) -> Path:
    """``OUT/oxford-iiit-pet``: JPEG photos, the trimaps as they are, trainval/test lists."""
    root = out / PET_ROOT
    lists: dict[str, list[str]] = {"train": [], "val": []}
    named = dict((it.stem, name) for it, name in _unique_names(items, summary))
    for it, trimap, image in iter_items([i for i in items if i.stem in named], summary,
                                        "oxford-pet", **(spread or {})):
        name = named[it.stem]
        copy_photo(it, image, root / "images" / name, jpeg=True)
        write_bytes_atomic(root / "annotations" / "trimaps" / f"{name}.png", encode_png(trimap))
        lists[it.split].append(name)
    # "IMAGE CLASS-ID SPECIES BREED-ID" as in the original list files; one class here
    for fname, split in (("trainval.txt", "train"), ("test.txt", "val")):
        text = "".join(f"{name} 1 1 1\n" for name in lists[split])
        write_bytes_atomic(root / "annotations" / fname, text.encode("utf-8"))
    return root


VOC_PALETTE = [0, 0, 0, 128, 0, 0] + [0, 0, 0] * 253 + [224, 224, 192]


def voc_label(trimap: np.ndarray) -> np.ndarray:
    """Trimap -> VOC class map: 0 background, 1 object, 255 border ("void")."""
    out = np.zeros(trimap.shape, np.uint8)
    out[trimap == OBJECT] = 1
    out[trimap == BORDER] = VOID
    return out


def _palette_png(label: np.ndarray) -> bytes:
    import io

    from PIL import Image

    label = np.ascontiguousarray(label, dtype=np.uint8)
    im = Image.frombytes("P", (label.shape[1], label.shape[0]), label.tobytes())
    im.putpalette(VOC_PALETTE)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def write_voc(items: list[ExportItem], out: Path, summary: ExportSummary, *,
              category: str = "object",
              spread: dict | None = None) -> Path:
    """``OUT/VOCdevkit/VOC2012``: JPEG photos, palette PNG class maps, split lists."""
    root = out / VOC_ROOT
    lists: dict[str, list[str]] = {"train": [], "val": []}
    named = dict((it.stem, name) for it, name in _unique_names(items, summary))
    for it, trimap, image in iter_items([i for i in items if i.stem in named], summary, "voc",
                                          **(spread or {})):
        name = named[it.stem]
        copy_photo(it, image, root / "JPEGImages" / name, jpeg=True)
        write_bytes_atomic(root / "SegmentationClass" / f"{name}.png",
                           _palette_png(voc_label(trimap)))
        lists[it.split].append(name)
    sets = root / "ImageSets" / "Segmentation"
    for fname, names in (("train.txt", lists["train"]), ("val.txt", lists["val"]),
                         ("trainval.txt", sorted(lists["train"] + lists["val"]))):
        write_bytes_atomic(sets / fname, "".join(f"{n}\n" for n in names).encode("utf-8"))
    # CVAT's "Segmentation mask 1.1" reads the class colours from this file
    labelmap = ("# label:color_rgb:parts:actions\nbackground:0,0,0::\n"
                f"{category}:128,0,0::\n")
    write_bytes_atomic(root / "labelmap.txt", labelmap.encode("utf-8"))
    return root


WRITERS: dict[str, Callable[..., Path]] = {
    "coco": write_coco, "yolo": write_yolo, "oxford-pet": write_oxford_pet, "voc": write_voc,
}
READ_WITH = {"oxford-pet": 'torchvision OxfordIIITPet("{root}", target_types="segmentation")',
             "voc": 'torchvision VOCSegmentation("{root}", year="2012", image_set="train")'}
TARGETS = {"coco": COCO_JSON, "yolo": Path("data.yaml"), "oxford-pet": PET_ROOT,
           "voc": VOC_ROOT}


# -- the folder ----------------------------------------------------------------------------------
def check_out(out: Path, labels: Path, photos: Path) -> None:
    """Refuse an ``out`` that is (or is inside, or holds) the photo or the label folder."""
    o = out.expanduser().resolve()
    for what, folder in (("photo folder", photos), ("label folder", labels)):
        f = folder.expanduser().resolve()
        if o == f or f in o.parents or o in f.parents:
            raise SeglibError(f"{out}: is or holds the {what} {folder}; the export would mix "
                              f"with it, choose another --out")


def prepare_out(out: Path, fmt: str) -> None:
    """Make ``out`` ready for an export: a new or empty folder, or one holding an earlier
    export of the same format, whose files are removed first (so a photo left out this time
    does not linger in the data set). Any other folder is refused."""
    if not out.exists():
        return
    if not out.is_dir():
        raise SeglibError(f"{out}: is a file; choose a folder for --out")
    marker = out / EXPORT_JSON
    if not marker.is_file():
        if any(out.iterdir()):
            raise SeglibError(f"{out}: is not empty and holds no earlier export; choose a new "
                              f"folder for --out")
        return
    try:
        doc = json.loads(marker.read_text(encoding="utf-8"))
        earlier, files = str(doc["format"]), [str(f) for f in doc["files"]]
    except (OSError, ValueError, KeyError, TypeError):
        raise SeglibError(f"{marker}: not readable; delete {out} or choose another --out") \
            from None
    if earlier != fmt:
        raise SeglibError(f"{out}: holds a {earlier} export; choose another --out for {fmt}")
    root = out.resolve()
    for rel in files:
        path = (out / rel).resolve()
        if root in path.parents and path.is_file():
            path.unlink()
    for folder in sorted((p for p in out.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(folder.iterdir()):
            folder.rmdir()


def finish_out(out: Path, fmt: str) -> Path:
    """Write ``out/seglib-export.json``: the format and every file of the export."""
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                   if p.is_file() and p.name != EXPORT_JSON)
    doc = {"kind": "export", "format": fmt, "files": files}
    return write_bytes_atomic(out / EXPORT_JSON, (json.dumps(doc, indent=1) + "\n").encode())


def export_labels(labels: str | Path, out: str | Path, fmt: str, *,
                  photos: str | Path | None = None, category: str = "object",
                  val: float = 0.1, only_confident: bool = False, polygons: bool = False,
                  seed: int = SPLIT_SEED, workers: int | None = None, engine: str = "local",
                  address: str | None = None) -> ExportSummary:
    """Export the label folder ``labels`` as ``fmt`` (one of :data:`FORMATS`) into ``out``.

    ``photos`` is the photo folder (default: where the folder was labeled from, as the label
    store remembers it);
    ``category`` names the object class; ``val`` is the fraction of photos in the val split;
    ``only_confident`` leaves out flagged labels; ``polygons`` writes COCO polygons instead
    of RLE (for Label Studio). ``workers``/``engine``/``address`` read the photos and
    trimaps in parallel (:mod:`seglib.core.parallel`; the same files). Problems with single
    photos are printed as ``skipped NAME: reason`` lines and counted in the summary.
    """
    if fmt not in WRITERS:
        raise SeglibError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    labels, out = Path(labels).expanduser(), Path(out).expanduser()
    if not labels.is_dir():
        raise SeglibError(f"{labels}: not a folder; pass the output folder of "
                          f"`python -m seglib label`")
    if not category.strip():
        raise SeglibError("--category must name the object, e.g. --category shoe")
    if not (labels / LABELS_CSV).is_file():
        raise SeglibError(f"{labels}: no {LABELS_CSV}; pass the output folder of "
                          f"`python -m seglib label`")
    store = LabelStore(labels)
    photos = Path(photos).expanduser() if photos is not None else store.images_dir
    if photos is None:
        raise SeglibError(f"{labels}: the label folder does not say where its photos are; "
                          f"pass --photos PHOTOS")
    if not photos.is_dir():
        raise SeglibError(f"{photos}: photo folder not found; pass --photos PHOTOS")
    check_out(out, labels, photos)
    summary = ExportSummary(fmt, out, out / TARGETS[fmt])
    items = choose_items(labels, photos, list(store.records().values()),
                         only_confident=only_confident, summary=summary)
    assign_splits(items, val, seed)
    prepare_out(out, fmt)
    kwargs = {"polygons": polygons} if fmt == "coco" else {}
    spread = {"workers": workers, "engine": engine, "address": address}
    summary.target = WRITERS[fmt](items, out, summary, category=category.strip(), spread=spread,
                                  **kwargs)
    finish_out(out, fmt)
    for line in summary.problems:
        print(f"skipped {line}", file=sys.stderr)
    return summary
