"""The shared loop of every export format: the photos to write and how each is read.

:class:`ExportItem` is one photo with its trimap and split, :class:`ExportSummary` what an
export wrote and left out. :func:`iter_items` reads each item's trimap and photo (in
parallel with ``workers``), checks that they have the same size and shows progress; every
writer of :mod:`seglib.formats.registry` runs its items through it. :func:`copy_photo`,
:func:`safe_name` and :func:`unique_names` are the helpers the writers share.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from seglib.core.errors import ImageReadError, SeglibError
from seglib.core.files import encode_png, write_bytes_atomic, write_jpeg_atomic
from seglib.core.images import read_image
from seglib.core.parallel import map_photos
from seglib.masks.trimap import load_trimap

JPEG_SUFFIXES = (".jpg", ".jpeg")


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
    val_name: str = "val"  # what the format calls the val split
    read_with: str | None = None  # how to read the export, "{root}" standing for ``out``

    @property
    def exported(self) -> int:
        return sum(self.split.values())

    def describe(self) -> str:
        out = (f"exported {self.exported} photos as {self.fmt} to {self.target} "
               f"({self.split['train']} train, {self.split['val']} {self.val_name})")
        if self.read_with:
            out += f"; read it with {self.read_with.format(root=str(self.out))}"
        if self.left_out:
            out += "; left out: " + ", ".join(f"{n} {why}" for why, n in
                                              sorted(self.left_out.items()))
        return out


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


def unique_names(items: list[ExportItem], summary: ExportSummary,
                 ) -> list[tuple[ExportItem, str]]:
    """Each item with its :func:`safe_name`; an item whose name an earlier one has already
    is left out (counted as a name clash)."""
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
