"""Mask -> trimap, with the labels of the Oxford-IIIT Pet dataset.

A trimap marks every pixel as object (1), background (2) or the border between them (3).
The border is the ring of background pixels that touch the object from the left, right,
top or bottom. :func:`contour_scan_loops` computes it the way the original project did, with
one horizontal and one vertical pass of pixel loops; :func:`mask_to_trimap` gives exactly the
same array with a single 4-neighbour dilation.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from seglib.core.errors import SeglibError
from seglib.core.files import write_png_atomic
from seglib.core.images import decode_image

OBJECT = 1
BACKGROUND = 2
BORDER = 3
LABELS = (OBJECT, BACKGROUND, BORDER)

_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=np.uint8)


def as_binary_mask(mask: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Check ``mask`` and return it as a 0/1 uint8 H×W array.

    Accepts bool or 0/1 integer arrays. Other values (0/255 PNGs, probabilities) need an
    explicit ``threshold``: pixels ``> threshold`` become object.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(
            f"mask must be a 2-D H×W array, got shape {mask.shape}; "
            "pass one channel (e.g. mask[..., 0])"
        )
    if mask.size == 0:
        raise ValueError(f"mask is empty (shape {mask.shape})")
    if threshold is not None:
        if not (np.issubdtype(mask.dtype, np.number) or mask.dtype == bool):
            raise ValueError(f"mask dtype {mask.dtype} is not numeric")
        return (mask > threshold).astype(np.uint8)
    if mask.dtype == bool:
        return np.ascontiguousarray(mask).view(np.uint8)
    if not np.issubdtype(mask.dtype, np.integer):
        raise ValueError(
            f"mask dtype {mask.dtype} is not bool or integer; pass threshold=0.5 to binarize it"
        )
    lo, hi = int(mask.min()), int(mask.max())
    if lo < 0 or hi > 1:
        raise ValueError(
            f"mask values must be 0/1, found {lo}..{hi}; pass threshold=127 for a 0/255 mask"
        )
    return mask.astype(np.uint8, copy=False)


def contour_scan_loops(mask: np.ndarray) -> np.ndarray:
    """The original project's trimap, pixel by pixel (the readable teaching reference).

    1. Horizontal scan: in each row, for c = 0 .. W-2, a background pixel left of an object
       pixel becomes border, and a background pixel right of an object pixel becomes border.
    2. Vertical scan: the same down each column, with the pixel below.
    3. Every pixel still 0 becomes background (2).
    """
    a = as_binary_mask(mask).copy()
    h, w = a.shape
    for r in range(h):
        for c in range(w - 1):
            if a[r, c] == 0 and a[r, c + 1] == 1:
                a[r, c] = BORDER
            if a[r, c] == 1 and a[r, c + 1] == 0:
                a[r, c + 1] = BORDER
    for c in range(w):
        for r in range(h - 1):
            if a[r, c] == 0 and a[r + 1, c] == 1:
                a[r, c] = BORDER
            if a[r, c] == 1 and a[r + 1, c] == 0:
                a[r + 1, c] = BORDER
    a[a == 0] = BACKGROUND
    return a


def mask_to_trimap(mask: np.ndarray, width: int = 1, threshold: float | None = None) -> np.ndarray:
    """Vectorized trimap: identical to :func:`contour_scan_loops` for ``width=1``.

    The loops turn a background pixel into border exactly when one of its 4 neighbours is
    object, so the border is ``dilate(mask, cross) - mask``. With ``t = dilated + 2 - 2·mask``:
    object 1+2-2 = 1, border 1+2-0 = 3, background 0+2-0 = 2. ``width`` > 1 repeats the
    dilation for a thicker border.
    """
    if int(width) != width or width < 1:
        raise ValueError(f"width must be a positive integer, got {width!r}")
    m = as_binary_mask(mask, threshold)
    t = cv2.dilate(m, _CROSS, iterations=int(width), borderType=cv2.BORDER_CONSTANT,
                   borderValue=0)
    t += 2  # in place: three cheap passes over a fresh array
    t -= m
    t -= m
    return t


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A bool mask at ``size`` (height, width); a mask already that size comes back as it is.

    Shrinking keeps a pixel when most of the area it covers is object (area interpolation, as
    the policy's features need); growing is bilinear, thresholded at one half (a smooth outline
    instead of nearest-neighbour steps). For a size fitting a longer side use ``io.fit_size``.
    """
    h, w = size
    if mask.shape == (h, w):
        return mask
    m = as_binary_mask(mask)
    if h <= m.shape[0] and w <= m.shape[1]:
        return cv2.resize(m, (w, h), interpolation=cv2.INTER_AREA) > 0
    return cv2.resize(m * 255, (w, h), interpolation=cv2.INTER_LINEAR) > 127


def trimap_to_mask(trimap: np.ndarray) -> np.ndarray:
    """Object pixels (label 1) as a bool mask."""
    return np.asarray(trimap) == OBJECT


def validate_trimap(trimap: np.ndarray, name: str = "trimap") -> np.ndarray:
    """Return ``trimap`` as uint8 H×W, or raise a one-line error if it holds other labels."""
    t = np.asarray(trimap)
    if t.ndim == 3 and t.shape[2] in (3, 4) and np.array_equal(t[..., 0], t[..., 1]):
        t = t[..., 0]
    if t.ndim != 2 or t.size == 0:
        raise SeglibError(f"{name}: expected a single-channel H×W trimap, got shape {t.shape}")
    bad = np.setdiff1d(np.unique(t), LABELS)
    if bad.size:
        raise SeglibError(
            f"{name}: labels must be 1 (object), 2 (background), 3 (border); found "
            f"{bad[:5].tolist()} — a preview image ((t-1)*127) is not a trimap"
        )
    return t.astype(np.uint8, copy=False)


def save_trimap(path: str | Path, trimap: np.ndarray) -> Path:
    """Write a single-channel uint8 PNG atomically (temp file + rename)."""
    t = validate_trimap(trimap, str(path))
    return write_png_atomic(path, t)


def load_trimap(path: str | Path) -> np.ndarray:
    """Read a trimap PNG and check its labels."""
    path = Path(path)
    data = np.fromfile(path, dtype=np.uint8) if path.is_file() else None
    if data is None:
        raise SeglibError(f"{path}: trimap file not found")
    t = decode_image(data, path, cv2.IMREAD_UNCHANGED) if data.size else None
    if t is None:
        raise SeglibError(f"{path}: not a readable PNG trimap")
    return validate_trimap(t, str(path))


def trimap_preview(trimap: np.ndarray) -> np.ndarray:
    """Human-visible grey image: object 0 (black), background 127, border 254."""
    t = np.asarray(trimap).astype(np.int16)
    return ((t - 1) * 127).clip(0, 255).astype(np.uint8)
