"""A label folder in the formats other tools read: COCO, YOLO, Oxford-IIIT Pet, Pascal VOC.

The object is trimap label 1 (the border ring, label 3, counts as background except in the
Oxford-IIIT Pet trimaps, which keep it, and in VOC, where it is 255 "void"). Each format is
one module with its writer (:mod:`seglib.formats.coco`, :mod:`~seglib.formats.yolo`,
:mod:`~seglib.formats.oxford_pet`, :mod:`~seglib.formats.voc`) and one entry of
:data:`seglib.formats.registry.FORMATS`; every writer runs its photos through the shared loop
:func:`seglib.formats.items.iter_items` (reads each trimap, checks it against its photo's
size, shows progress). :func:`export_labels` chooses the photos (no skipped photos; with
``only_confident`` no flagged labels), splits them into train and val by a seeded hash of the
stem (a photo stays in its split when the folder grows), and calls the format's writer.

``OUT`` (the ``--out`` folder) is new, empty, or holds an earlier export of the same format,
which is replaced: ``OUT/seglib-export.json`` lists the files an export wrote (only those,
with their SHA-256), and they are removed before the next one writes (a photo left out this
time does not linger). Other files saved there are never touched; a file the export wrote and
a person changed since refuses the next export with its name (the course's export,
``keep_edited=True``, moves it aside as ``NAME.edited-K.EXT`` with one line instead). The
marker is written before the first file and again when an export is cut short, so the same
command resumes it.

Layouts (each module's doc says more):

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
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from seglib.core.errors import SeglibError
from seglib.core.files import file_sha256, move_aside, write_bytes_atomic
from seglib.core.folders import refuse_output
from seglib.core.settings import check
from seglib.formats.items import ExportItem, ExportSummary
from seglib.formats.registry import FORMATS
from seglib.labels.store import LABELS_CSV, LabelStore

SPLIT_SEED = 0
EXPORT_JSON = "seglib-export.json"  # in OUT: the format and the files of the export


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


# -- the folder ----------------------------------------------------------------------------------
def check_out(out: Path, labels: Path, photos: Path) -> None:
    """Refuse an ``out`` that is (or is inside, or holds) the photo or the label folder."""
    o = out.expanduser().resolve()
    for what, folder in (("photo folder", photos), ("label folder", labels)):
        f = folder.expanduser().resolve()
        if o == f or f in o.parents or o in f.parents:
            raise SeglibError(f"{out}: is or holds the {what} {folder}; the export would mix "
                              f"with it, choose another --out")


def prepare_out(out: Path, fmt: str, inputs: tuple[Path, ...] = (),
                keep_edited: bool = False) -> None:
    """Make ``out`` ready for an export: a new or empty folder, or one holding an earlier
    export of the same format (finished or cut short), whose files are removed first (so a
    photo left out this time does not linger in the data set). Only the files that export
    wrote are removed; one changed since (e.g. a corrected file saved over it) is never
    deleted: the export is refused with its name, or with ``keep_edited`` moved aside as
    ``NAME.edited-K.EXT`` with one line. Any other folder is refused."""
    refuse_output(out, inputs=inputs, allow="export")
    if not out.exists():
        return
    marker = out / EXPORT_JSON
    if not marker.is_file():
        if any(out.iterdir()):
            raise SeglibError(f"{out}: is not empty and holds no earlier export; choose a new "
                              f"folder for --out")
        return
    earlier, files = _read_marker(marker)
    if earlier != fmt:
        raise SeglibError(f"{out}: holds a {earlier} export; choose another --out for {fmt}")
    mine = _written_files(out, files, keep_edited)
    for path in mine:
        path.unlink()
    for folder in sorted((p for p in out.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(folder.iterdir()):
            folder.rmdir()


def _read_marker(marker: Path) -> tuple[str, dict[str, str]]:
    """The format and ``{file: sha256}`` of an earlier export (an older seglib's list of
    files, which may name files it did not write, gives no file to remove)."""
    try:
        doc = json.loads(marker.read_text(encoding="utf-8"))
        earlier, files = str(doc["format"]), doc["files"]
        files = {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise SeglibError(f"{marker}: not readable; delete {marker.parent} or choose another "
                          "--out") from None
    return earlier, files


def _written_files(out: Path, files: dict[str, str], keep_edited: bool = False
                   ) -> list[Path]:
    """The files of ``files`` still as the export wrote them; refuses one changed since
    (``keep_edited``: moves it aside, :func:`_keep_aside`)."""
    root, mine = out.resolve(), []
    for rel, digest in sorted(files.items()):
        path = (out / rel).resolve()
        if root not in path.parents or not path.is_file():
            continue
        if file_sha256(path) == digest:
            mine.append(path)
        elif keep_edited:
            _keep_aside(out / rel)
        else:
            raise SeglibError(f"{out / rel}: changed since seglib exported it (a corrected "
                              "file?); the next export would replace it: move it out of "
                              f"{out}, or choose another --out")
    return mine


def _keep_aside(path: Path) -> Path:
    """Rename ``path`` (a file a person changed) to ``NAME.edited-K.EXT``; says so."""
    kept = move_aside(path)
    print(f"{path}: changed since seglib exported it (a corrected file?); kept as "
          f"{kept.name}, and exported again")
    return kept


def _stats(out: Path) -> dict[str, tuple[int, int, int]]:
    """``{file: (inode, mtime, size)}`` of the files under ``out``."""
    found = {}
    for p in out.rglob("*") if out.is_dir() else ():
        try:
            st = p.stat()
        except OSError:
            continue
        if p.is_file() and p.name != EXPORT_JSON:
            found[p.relative_to(out).as_posix()] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return found


def finish_out(out: Path, fmt: str, before: dict[str, tuple[int, int, int]],
               complete: bool = True) -> Path:
    """Write ``out/seglib-export.json``: the format and ``{file: sha256}`` of the files this
    export wrote (those new or rewritten since ``before``, a :func:`_stats` snapshot), so the
    next export removes exactly those; ``complete`` False marks one cut short (the same
    command resumes it)."""
    files = {rel: file_sha256(out / rel) for rel, st in sorted(_stats(out).items())
             if before.get(rel) != st and (out / rel).is_file()}
    doc = {"kind": "export", "format": fmt, "complete": complete, "files": files}
    return write_bytes_atomic(out / EXPORT_JSON, (json.dumps(doc, indent=1) + "\n").encode())


@contextmanager
def recording(out: Path, fmt: str) -> Iterator[None]:
    """Record what the export writes into ``out`` (:func:`finish_out`), also when it is cut
    short (Ctrl-C, a full disk), so the same command accepts the folder and resumes."""
    out.mkdir(parents=True, exist_ok=True)
    finish_out(out, fmt, _stats(out), complete=False)  # the folder is this export's from now
    before = _stats(out)
    try:
        yield
    except BaseException:
        try:
            finish_out(out, fmt, before, complete=False)
        except OSError:
            pass
        raise
    finish_out(out, fmt, before)


def export_labels(labels: str | Path, out: str | Path, fmt: str, *,
                  photos: str | Path | None = None, category: str = "object",
                  val: float = 0.1, only_confident: bool = False, polygons: bool = False,
                  seed: int = SPLIT_SEED, workers: int | None = None, engine: str = "local",
                  address: str | None = None, keep_edited: bool = False) -> ExportSummary:
    """Export the label folder ``labels`` as ``fmt`` (a name in :data:`FORMATS`, the
    registry of :mod:`seglib.formats.registry`) into ``out``.

    ``photos`` is the photo folder (default: where the folder was labeled from, as the label
    store remembers it);
    ``category`` names the object class; ``val`` is the fraction of photos in the val split;
    ``only_confident`` leaves out flagged labels; ``polygons`` writes COCO polygons instead
    of RLE (for Label Studio). ``keep_edited`` moves a file the last export wrote and a
    person changed since aside (``NAME.edited-K.EXT``, one line) instead of refusing (the
    course's export). ``workers``/``engine``/``address`` read the photos and
    trimaps in parallel (:mod:`seglib.core.parallel`; the same files). Problems with single
    photos are printed as ``skipped NAME: reason`` lines and counted in the summary.
    """
    if fmt not in FORMATS:
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
    spec = FORMATS[fmt]
    summary = ExportSummary(fmt, out, out / spec.target, val_name=spec.val_name,
                            read_with=spec.read_with)
    items = choose_items(labels, photos, list(store.records().values()),
                         only_confident=only_confident, summary=summary)
    assign_splits(items, val, seed)
    prepare_out(out, fmt, (labels, photos), keep_edited)
    options = {k: v for k, v in {"polygons": polygons}.items() if k in spec.options}
    spread = {"workers": workers, "engine": engine, "address": address}
    with recording(out, fmt):
        summary.target = spec.write(items, out, summary, category=category.strip(),
                                    spread=spread, **options)
    for line in summary.problems:
        print(f"skipped {line}", file=sys.stderr)
    return summary
