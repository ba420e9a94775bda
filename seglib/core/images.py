"""Finding, reading, resizing and pairing photos (writing them is :mod:`seglib.core.files`)."""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from seglib.core.errors import ImageReadError, SeglibError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def is_image_name(path: Path) -> bool:
    """A visible .jpg/.jpeg/.png file name (any letter case), not a macOS ``._`` shadow."""
    name = path.name
    return (
        not name.startswith(".")
        and not name.startswith("._")
        and path.suffix.lower() in IMAGE_SUFFIXES
    )


@dataclass
class ImageScan:
    """The photos of a folder, and the entries named like photos that are not usable files
    (a broken symbolic link, a folder named ``x.jpg``), each with the reason."""

    photos: list[Path]
    skipped: list[tuple[Path, str]]

    def skipped_lines(self) -> list[str]:
        """``skipped NAME: reason`` for each entry that is not a photo file."""
        return [f"skipped {p.name}: {why}" for p, why in self.skipped]


def _not_a_file_reason(path: Path) -> str:
    """Why an entry named like a photo is not one (one short phrase)."""
    if path.is_symlink():
        try:
            os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return "a symbolic link loop (it points back to itself); remove it"
            return (f"a broken symbolic link (its target {os.readlink(path)} does not exist); "
                    "fix or remove the link")
    if path.is_dir():
        return "a folder, not a photo (subfolders are not searched)"
    return "not a regular file"


def scan_images(folder: str | Path, recursive: bool = False) -> ImageScan:
    """Sorted image files in ``folder`` (hidden and ``._*`` files are ignored) and the
    entries with a photo's name that are not readable files, with the reason."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SeglibError(f"{folder}: not a folder of images")
    it = folder.rglob("*") if recursive else folder.iterdir()
    photos, skipped = [], []
    for p in sorted(it):
        if not is_image_name(p):
            continue
        if p.is_file():
            photos.append(p)
        else:
            skipped.append((p, _not_a_file_reason(p)))
    return ImageScan(photos, skipped)


def list_images(folder: str | Path, recursive: bool = False) -> list[Path]:
    """Sorted image files in ``folder``; hidden and ``._*`` files are ignored
    (:func:`scan_images` also says which photo-named entries are not files)."""
    return scan_images(folder, recursive).photos


MAX_PIXELS = 1 << 30  # OpenCV's CV_IO_MAX_IMAGE_PIXELS: it refuses larger images


def declared_size(data: np.ndarray) -> tuple[int, int] | None:
    """``(width, height)`` a PNG's header (IHDR) or a JPEG's frame header (SOFn) claims, or
    None when the bytes are neither (or the header is cut short)."""
    head = data[:24].tobytes()
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if not head.startswith(b"\xff\xd8"):
        return None
    raw, i = data.tobytes(), 2
    while i + 9 <= len(raw) and raw[i] == 0xFF:
        marker, length = raw[i + 1], int.from_bytes(raw[i + 2:i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return int.from_bytes(raw[i + 7:i + 9], "big"), int.from_bytes(raw[i + 5:i + 7], "big")
        i += 2 + length
    return None


def decode_image(data: np.ndarray, path: Path, flags: int) -> np.ndarray | None:
    """``cv2.imdecode`` of a file's bytes, None when it is not an image. A header that claims
    more than :data:`MAX_PIXELS` pixels, or any OpenCV error while decoding, is an
    :class:`ImageReadError` naming the file with a short reason (never OpenCV's message wall)."""
    size = declared_size(data)
    if size is not None and size[0] * size[1] > MAX_PIXELS:
        raise ImageReadError(f"{path}: its header claims {size[0]}×{size[1]} pixels, more than "
                             f"{MAX_PIXELS} (damaged, or too large to read); delete or replace it")
    try:
        return cv2.imdecode(data, flags)
    except cv2.error as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        reason = (lines[-1] if lines else "decoder error").split(") ", 1)[-1][:120]
        raise ImageReadError(f"{path}: cannot be decoded ({reason}); delete or replace "
                             "it") from None


def read_image(path: str | Path, max_side: int | None = None) -> np.ndarray:
    """Read a photo as RGB uint8 H×W×3.

    The EXIF orientation is applied (a phone photo comes out upright, as every viewer shows
    it). Grayscale is expanded to 3 channels, alpha is dropped, 16-bit is scaled to 8-bit. With
    ``max_side``, larger photos are shrunk (area interpolation) so the longer side fits.
    Unreadable files raise :class:`ImageReadError` naming the file.
    """
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot open ({exc.strerror or exc})") from None
    if data.size == 0:
        raise ImageReadError(f"{path}: empty file (0 bytes); delete or replace it")
    # COLOR|ANYDEPTH applies the EXIF orientation (IMREAD_UNCHANGED would not), keeps 16 bits
    # and gives 3 channels (gray expanded, alpha dropped)
    img = decode_image(data, path, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    if img is None or img.size == 0:
        raise ImageReadError(f"{path}: not a readable JPEG/PNG image; delete or replace it")
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if max_side and max(img.shape[:2]) > max_side:
        img = resize_max_side(img, max_side)
    return np.ascontiguousarray(img)


def pixels_sha256(image: np.ndarray) -> str:
    """Hex SHA-256 of a decoded photo (its shape and RGB values, as :func:`read_image` gives
    them): what identifies a photo. A tag, rating or comment a photo manager writes into the
    file changes its bytes, not this; a rotation tag does (the photo is shown otherwise)."""
    a = np.ascontiguousarray(image)
    h = hashlib.sha256(f"{a.dtype}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def photo_pixels_sha256(path: str | Path) -> str:
    """:func:`pixels_sha256` of the photo at ``path`` (:class:`ImageReadError` if unreadable)."""
    return pixels_sha256(read_image(path))


def as_rgb(image: np.ndarray) -> np.ndarray:
    """``image`` as an array, checked to be an RGB uint8 H×W×3 photo (else ``ValueError``)."""
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 H×W×3 photo, got {img.dtype} {img.shape}")
    return img


def fit_size(shape: tuple[int, ...], max_side: int) -> tuple[int, int]:
    """``(height, width)`` of ``shape`` shrunk so that its longer side is ``max_side``, aspect
    kept; a shape that already fits comes back unchanged."""
    h, w = int(shape[0]), int(shape[1])
    if max(h, w) <= max_side:
        return h, w
    s = max_side / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def resize_image(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A photo at ``size`` (height, width), area interpolation (sharp and alias-free when
    shrinking); a photo already that size comes back as it is. Masks: ``trimap.resize_mask``."""
    h, w = size
    if img.shape[:2] == (h, w):
        return img
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)


def resize_max_side(img: np.ndarray, max_side: int) -> np.ndarray:
    """Shrink so the longer side is at most ``max_side`` (area interpolation)."""
    return resize_image(img, fit_size(img.shape, max_side))


@dataclass
class Pairing:
    """Images and label files matched by file stem, with what did not match."""

    pairs: list[tuple[Path, Path]]
    images_without_label: list[Path]
    labels_without_image: list[Path]

    def describe(self) -> str:
        """One line: how many paired, and a few names of what did not."""
        parts = [f"{len(self.pairs)} paired"]
        for what, items in (("photos without trimap", self.images_without_label),
                            ("trimaps without photo", self.labels_without_image)):
            if items:
                names = ", ".join(p.name for p in items[:3])
                more = f" (+{len(items) - 3} more)" if len(items) > 3 else ""
                parts.append(f"{len(items)} {what}: {names}{more}")
        return "; ".join(parts)


def pair_by_stem(images: Iterable[Path], labels: Iterable[Path]) -> Pairing:
    """Match images and label files (e.g. trimaps) by file stem.

    When two files share a stem (``shoe.jpg`` and ``shoe.png``) the first one is used, as
    ``label`` does.
    """
    img: dict[str, Path] = {}
    lab: dict[str, Path] = {}
    for p in images:
        img.setdefault(p.stem, p)
    for p in labels:
        lab.setdefault(p.stem, p)
    common = sorted(img.keys() & lab.keys())
    return Pairing(
        pairs=[(img[s], lab[s]) for s in common],
        images_without_label=[img[s] for s in sorted(img.keys() - lab.keys())],
        labels_without_image=[lab[s] for s in sorted(lab.keys() - img.keys())],
    )


def pick_photos(paths: Sequence[Path], show: int | str | Sequence[str] | None) -> list[Path]:
    """The photos a notebook shows: ``show`` is a count (spread evenly over the folder) or a
    list of file names / stems. Unknown names raise one line listing a few known ones."""
    paths = list(paths)
    if not paths:
        raise SeglibError("no photos to show")
    if show is None:
        return paths
    if isinstance(show, str):
        show = [s.strip() for s in show.split(",") if s.strip()]
    if isinstance(show, int | float):
        n = max(1, min(int(show), len(paths)))
        step = len(paths) / n
        return [paths[int(i * step)] for i in range(n)]
    by_stem = {p.stem: p for p in paths}
    by_name = {p.name: p for p in paths}
    chosen = []
    for s in show:
        p = by_name.get(str(s)) or by_stem.get(Path(str(s)).stem)
        if p is None:
            known = ", ".join(list(by_stem)[:5])
            raise SeglibError(f"photo {s!r} not in the folder; known names start: {known}")
        chosen.append(p)
    return chosen
