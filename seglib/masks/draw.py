"""Pictures of masks as numpy arrays (no matplotlib): a mask tinted over its photo, a
spotlight on a region, a trimap in colour. Figures, predictions and the reviewer use them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from seglib.masks.trimap import trimap_preview

MASK_COLOR = (0.12, 0.56, 1.0)


def overlay(image: np.ndarray, mask: np.ndarray, color: Sequence[float] = MASK_COLOR,
            alpha: float = 0.5, edge: np.ndarray | None = None,
            edge_color: Sequence[float] | None = None) -> np.ndarray:
    """The photo with ``mask`` tinted in ``color`` (RGB 0..1) and an outline drawn in
    ``edge_color`` (default ``color``): the mask's own outline, or the pixels of ``edge`` when
    given (a trimap's border: ``overlay(photo, t == OBJECT, edge=t == BORDER)``)."""
    img = np.asarray(image, dtype=np.float32) / 255.0
    m = np.asarray(mask, dtype=bool)
    if m.shape != img.shape[:2]:
        raise ValueError(f"mask shape {m.shape} does not match photo shape {img.shape[:2]}")
    out = img.copy()
    c = np.asarray(color, dtype=np.float32)
    out[m] = (1 - alpha) * out[m] + alpha * c
    line = m & ~_erode(m) if edge is None else np.asarray(edge, dtype=bool)
    out[line] = c if edge_color is None else np.asarray(edge_color, dtype=np.float32)
    return (out * 255).round().astype(np.uint8)


def spotlight(image: np.ndarray, mask: np.ndarray, color: Sequence[float] = (1.0, 0.85, 0.0),
              dim: float = 0.3) -> np.ndarray:
    """The photo with everything outside ``mask`` dimmed and the mask outlined in ``color``:
    the selected region stands out whatever the colours of the object."""
    img = np.asarray(image, dtype=np.float32)
    m = np.asarray(mask, dtype=bool)
    if m.shape != img.shape[:2]:
        raise ValueError(f"mask shape {m.shape} does not match photo shape {img.shape[:2]}")
    out = img.copy()
    out[~m] *= dim
    inner = _erode(m)
    edge = m & ~_erode(inner) if max(m.shape) >= 64 else m & ~inner
    out[edge] = np.asarray(color, dtype=np.float32) * 255
    return out.round().clip(0, 255).astype(np.uint8)


def _erode(m: np.ndarray) -> np.ndarray:
    p = np.pad(m, 1, constant_values=False)
    return p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]


def trimap_rgb(trimap: np.ndarray) -> np.ndarray:
    """A trimap as a grey RGB picture: object black, background grey, border white."""
    g = trimap_preview(trimap)
    return np.repeat(g[..., None], 3, axis=2)


POSITIVE_COLOR = (0, 200, 0)  # RGB 0..255: a click on the object
NEGATIVE_COLOR = (230, 0, 0)  # a click on what is not the object
BOX_COLOR = (255, 215, 0)


def prompts_picture(image: np.ndarray, mask: np.ndarray | None, scale: float,
                    positive: Sequence[Sequence[float]] = (),
                    negative: Sequence[Sequence[float]] = (),
                    box: Sequence[float] | None = None,
                    color: Sequence[float] = MASK_COLOR) -> np.ndarray:
    """The photo enlarged ``scale`` times with ``mask`` tinted over it and the prompts drawn
    on top (photo coordinates): green dots on the object, red dots off it, the box in yellow.
    The reviewer's fix panel shows it; cv2 draws it, fast enough to redraw on every click."""
    import cv2

    img = np.asarray(image, dtype=np.uint8)
    if mask is not None:
        img = overlay(img, mask, color=color, alpha=0.45)
    h, w = img.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    out = np.ascontiguousarray(cv2.resize(img, size, interpolation=cv2.INTER_NEAREST
                                          if scale >= 1 else cv2.INTER_AREA))
    line = max(2, round(min(size) / 200))

    def at(x: float, y: float) -> tuple[int, int]:
        return round((x + 0.5) * scale - 0.5), round((y + 0.5) * scale - 0.5)

    if box is not None:
        x0, y0, x1, y1 = box
        cv2.rectangle(out, at(x0, y0), at(x1, y1), BOX_COLOR, line, cv2.LINE_AA)
    for points, c in ((positive, POSITIVE_COLOR), (negative, NEGATIVE_COLOR)):
        for x, y in points:
            cv2.circle(out, at(x, y), 3 * line, (255, 255, 255), -1, cv2.LINE_AA)
            cv2.circle(out, at(x, y), 2 * line, c, -1, cv2.LINE_AA)
    return out
